#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Perplexity of merges of the demo models (tests/golden/QUALITY.md).

  tools/golden/quality.py --engine crucible [--cli build/src/cli/crucible-cli]
  tools/golden/quality.py --engine numpy        # independent numpy merges (no Crucible)

Each recipe of tools/golden/quality/*.yml is merged (by crucible-cli merge, or by the numpy
implementations below that follow METHODS.md), then tools/perplexity.py scores it on the
python/c/prose eval texts. Needs numpy and pyyaml. Prints a Markdown table.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SRC, "tools"))
import stio  # noqa: E402
import sdm_ref  # noqa: E402
import perplexity  # noqa: E402

QDIR = os.path.join(HERE, "quality")
DEMO = os.path.join(SRC, "data", "demo")
TEXTS = ["python", "c", "prose"]


# ---- numpy merges (METHODS.md) -------------------------------------------------------------

def topk_mask(d, density):
    k = int(density * d.size)
    if density >= 1:
        return np.ones(d.shape, bool)
    a = np.abs(d).reshape(-1)
    idx = np.argpartition(-a, k - 1)[:k]
    m = np.zeros(a.size, bool)
    m[idx] = True
    return m.reshape(d.shape)


def task_vector_merge(base, models, weights, densities, method, seed=7):
    rng = np.random.default_rng(seed)
    out = {}
    for n, b in base.items():
        D = []
        for m, w, rho in zip(models, weights, densities):
            d = (m[n] - b).astype(np.float32)
            if method == "ties":
                d = d * topk_mask(d, rho)
            elif method == "dare_ties" and rho < 1:
                mask = rng.random(d.shape) < rho
                l1, l1k = np.abs(d).sum(dtype=np.float64), np.abs(d * mask).sum(dtype=np.float64)
                d = d * mask
                if l1 >= 1e-7 and l1k >= 1e-7:
                    d = (d * (l1 / l1k)).astype(np.float32)
            D.append(np.float32(w) * d)
        D = np.stack(D)
        W = np.array(weights, np.float32).reshape(-1, *([1] * b.ndim))
        if method in ("ties", "dare_ties"):
            s = np.where(D.sum(0) >= 0, 1, -1)
            agree = np.sign(D) == s
            mixed = (D * agree).sum(0)
            div = (W * agree).sum(0)
            div[div == 0] = 1
            if method == "ties":                    # normalize: true by default for ties only
                mixed = mixed / div
        else:
            mixed = D.sum(0)
        out[n] = (b + mixed).astype(np.float32)
    return out


def numpy_merge(cfg_path):
    cfg = yaml.safe_load(open(cfg_path))
    method = cfg["merge_method"]
    if method == "sdm_w":
        t, info = sdm_ref.run(cfg_path)
        return t, "W = " + ", ".join("%.4f" % w for w in info["weights"])
    d = os.path.dirname(cfg_path)
    load = lambda p: stio.read_folder(os.path.normpath(os.path.join(d, p)))  # noqa: E731
    models = [load(m["model"]) for m in cfg["models"]]
    ps = [m.get("parameters") or {} for m in cfg["models"]]
    weights = [float(p.get("weight", 1.0)) for p in ps]
    if method == "linear":
        s = sum(weights)
        return {n: (sum(np.float32(w) * m[n] for w, m in zip(weights, models)) / np.float32(s))
                .astype(np.float32) for n in models[0]}, ""
    base = load(cfg["base_model"])
    dens = [float(p.get("density", 1.0)) for p in ps]
    return task_vector_merge(base, models, weights, dens, method), ""


# ---- driver ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["crucible", "numpy"], default="crucible")
    ap.add_argument("--cli", default=os.path.join(SRC, "build", "src", "cli", "crucible-cli"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--recompute-inputs", dest="inputs_from_reference", action="store_false",
                    help="score the input models too instead of taking REFERENCE.json")
    a = ap.parse_args()
    rows = []
    for m in ("base", "ft-python", "ft-c", "ft-prose"):
        rows.append(("`%s` (input)" % m, os.path.join(DEMO, m), ""))
    results = {}
    with tempfile.TemporaryDirectory(prefix="crucible-quality-") as tmp:
        for cfg in sorted(glob.glob(os.path.join(QDIR, "*.yml"))):
            name = os.path.basename(cfg)[:-4]
            if a.only and name not in a.only:
                continue
            out = os.path.join(tmp, name)
            note = ""
            if a.engine == "crucible":
                r = subprocess.run([a.cli, "merge", cfg, out, "--threads", "2", "--seed", "7"],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit("crucible-cli merge %s failed:\n%s%s" % (cfg, r.stdout, r.stderr))
                note = r.stdout.strip().replace("\n", " ")[-200:]
            else:
                t, note = numpy_merge(cfg)
                os.makedirs(out)
                stio.write(os.path.join(out, "model.safetensors"), t)
                with open(os.path.join(out, "config.json"), "w") as f:
                    json.dump(json.load(open(os.path.join(DEMO, "base", "config.json"))), f)
            rows.append(("`%s`" % name, out, note))
        print("| model | python ppl | c ppl | prose ppl | mean NLL (nats/byte) | note |")
        print("|---|---|---|---|---|---|")
        ref = json.load(open(os.path.join(DEMO, "REFERENCE.json")))["perplexity"]
        for label, folder, note in rows:
            if a.inputs_from_reference and folder.startswith(DEMO):
                # tools/perplexity.py --check-reference reproduces these to < 1e-8 relative
                r = ref[os.path.basename(folder)]
                note = "REFERENCE.json"
            else:
                r = perplexity.perplexities(folder, os.path.join(DEMO, "eval"), TEXTS)
            results[label] = r
            tot = sum(r[t]["mean_nll"] * r[t]["scored_tokens"] for t in TEXTS)
            cnt = sum(r[t]["scored_tokens"] for t in TEXTS)
            print("| %s | %.4f | %.4f | %.4f | %.4f | %s |" % (
                label, r["python"]["ppl"], r["c"]["ppl"], r["prose"]["ppl"], tot / cnt, note),
                flush=True)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
