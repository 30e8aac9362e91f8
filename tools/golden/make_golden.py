#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate the golden references of tests/golden from mergekit (and numpy for SDM-W).

Needs mergekit (and torch) in a virtualenv outside the repository, e.g.
  python3 -m venv /work/venv-mergekit && /work/venv-mergekit/bin/pip install mergekit
  /work/venv-mergekit/bin/python tools/golden/make_golden.py [--only NAME …] [--skip-models]
CI never runs this; it runs tests/golden/golden-test.c against the committed outputs.

Writes:
  tests/golden/models/tiny-*/        tiny synthetic Llama models (float32)
  tests/golden/configs/*.yml         mergekit recipes (paths relative to the config's folder)
  tests/golden/expected/NAME.safetensors   full outputs (tiny models)
  tests/golden/expected/NAME.json          per-tensor summaries (demo models)
  tests/golden/cases.json            the manifest the C test reads
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
import sdm_ref  # noqa: E402
from cases import CASES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(SRC, "tests", "golden")
MODELS = os.path.join(GOLDEN, "models")
CONFIGS = os.path.join(GOLDEN, "configs")
EXPECTED = os.path.join(GOLDEN, "expected")

HIDDEN, INTER, LAYERS, HEADS, KV_HEADS = 12, 20, 3, 2, 1


# ---- tiny synthetic models ------------------------------------------------------------------

def tiny_config(vocab, tied):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HIDDEN // HEADS,
        "hidden_act": "silu",
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
        "attention_bias": False,
        "mlp_bias": False,
    }


def tiny_shapes(vocab, tied):
    hd = HIDDEN // HEADS
    s = {"model.embed_tokens.weight": (vocab, HIDDEN), "model.norm.weight": (HIDDEN,)}
    if not tied:
        s["lm_head.weight"] = (vocab, HIDDEN)
    for i in range(LAYERS):
        p = "model.layers.%d." % i
        s[p + "self_attn.q_proj.weight"] = (HEADS * hd, HIDDEN)
        s[p + "self_attn.k_proj.weight"] = (KV_HEADS * hd, HIDDEN)
        s[p + "self_attn.v_proj.weight"] = (KV_HEADS * hd, HIDDEN)
        s[p + "self_attn.o_proj.weight"] = (HIDDEN, HEADS * hd)
        s[p + "mlp.gate_proj.weight"] = (INTER, HIDDEN)
        s[p + "mlp.up_proj.weight"] = (INTER, HIDDEN)
        s[p + "mlp.down_proj.weight"] = (HIDDEN, INTER)
        s[p + "input_layernorm.weight"] = (HIDDEN,)
        s[p + "post_attention_layernorm.weight"] = (HIDDEN,)
    return s


def save_model(name, tensors, vocab, tied):
    d = os.path.join(MODELS, name)
    os.makedirs(d, exist_ok=True)
    stio.write(os.path.join(d, "model.safetensors"), tensors)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(tiny_config(vocab, tied), f, indent=2)
        f.write("\n")


def make_models():
    rng = np.random.default_rng(20261125)
    shapes = tiny_shapes(37, False)
    base = {}
    for n, s in shapes.items():
        if len(s) == 1:
            base[n] = (1.0 + 0.1 * rng.standard_normal(s)).astype(np.float32)
        else:
            base[n] = (0.2 * rng.standard_normal(s)).astype(np.float32)
    save_model("tiny-base", base, 37, False)

    def finetune(scale, zero_frac, like=None, flip=0.0):
        out = {}
        for j, (n, b) in enumerate(sorted(base.items())):
            sc = scale * (0.5 + (j % 5) * 0.4)               # varied per tensor
            d = sc * rng.standard_normal(b.shape)
            if like is not None:                              # partly opposite to another ft
                other = like[n] - base[n]
                opp = rng.random(b.shape) < flip
                d = np.where(opp, -0.8 * other + 0.2 * d, d)
            d[rng.random(b.shape) < zero_frac] = 0.0          # exact zeros
            out[n] = (b + d).astype(np.float32)
            # exact zeros must survive float rounding: re-zero where d == 0
            out[n][d == 0] = b[d == 0]
        return out

    ft1 = finetune(0.02, 0.3)
    ft2 = finetune(0.05, 0.4, like=ft1, flip=0.5)             # many sign conflicts with ft1
    ft3 = finetune(0.01, 0.1)
    save_model("tiny-ft1", ft1, 37, False)
    save_model("tiny-ft2", ft2, 37, False)
    save_model("tiny-ft3", ft3, 37, False)

    # vocabulary 40 (3 extra rows in embed_tokens and lm_head)
    v40 = finetune(0.03, 0.2)
    for n in ("model.embed_tokens.weight", "lm_head.weight"):
        extra = (0.2 * rng.standard_normal((3, HIDDEN))).astype(np.float32)
        v40[n] = np.concatenate([v40[n], extra], axis=0)
    save_model("tiny-ft-vocab40", v40, 40, False)

    # tied embeddings: no lm_head
    tied = finetune(0.02, 0.2)
    del tied["lm_head.weight"]
    save_model("tiny-ft-tied", tied, 37, True)


# ---- running mergekit -----------------------------------------------------------------------

def mergekit_bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def run_mergekit(case):
    cfg = os.path.join(CONFIGS, case["config"])
    tmp = tempfile.mkdtemp(prefix="golden-")
    out = os.path.join(tmp, "out")
    tool = "mergekit-multi" if case.get("multi") else "mergekit-yaml"
    cmd = [mergekit_bin(tool), cfg]
    if case.get("multi"):
        cmd += ["--intermediate-dir", os.path.join(tmp, "stages"), "--out-path", out]
    else:
        cmd += [out]
    cmd += ["--lazy-unpickle", "--no-copy-tokenizer", "--out-shard-size", "1000B"]
    cmd += case.get("mergekit_flags", [])
    cmd += case.get("mergekit_flags", [])
    if case.get("seed") is not None:
        cmd += ["--random-seed", str(case["seed"])]
    # mergekit resolves relative model paths against the working directory: run in the
    # config's folder so that the same relative paths work for Crucible (config-relative).
    r = subprocess.run(cmd, cwd=CONFIGS, capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(tmp)
        raise RuntimeError("%s failed:\n%s\n%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
    tensors = stio.read_folder(out)
    shutil.rmtree(tmp)
    return tensors


def write_expected(case, tensors):
    if case["expect"] == "full":
        path = case["name"] + ".safetensors"
        stio.write(os.path.join(EXPECTED, path), tensors)
    else:
        path = case["name"] + ".json"
        with open(os.path.join(EXPECTED, path), "w") as f:
            json.dump(stio.summarize(tensors), f, separators=(",", ":"))
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*",
                    help="regenerate only these cases (none: only rewrite configs + manifest)")
    ap.add_argument("--skip-models", action="store_true")
    a = ap.parse_args()
    os.makedirs(CONFIGS, exist_ok=True)
    os.makedirs(EXPECTED, exist_ok=True)
    if not a.skip_models:
        make_models()
    manifest_path = os.path.join(GOLDEN, "cases.json")
    old = {}
    if os.path.exists(manifest_path):
        old = {c["name"]: c for c in json.load(open(manifest_path))["cases"]}
    cases = []
    for case in CASES:
        with open(os.path.join(CONFIGS, case["config"]), "w") as f:
            f.write(case["yaml"].lstrip())
        entry = {k: v for k, v in case.items() if k != "yaml"}
        if a.only is not None and case["name"] not in a.only:
            if case["name"] in old:       # keep what was generated, refresh the description
                for k in ("expected", "error", "weights", "masses"):
                    if k in old[case["name"]]:
                        entry[k] = old[case["name"]][k]
                cases.append(entry)
            continue
        print("==", case["name"], flush=True)
        try:
            if case["source"] == "mergekit":
                tensors = run_mergekit(case)
            else:                                     # numpy reference (SDM-W)
                tensors, info = sdm_ref.run(os.path.join(CONFIGS, case["config"]))
                entry["weights"] = info["weights"]
                entry["masses"] = info["masses"]
                print("   W =", info["weights"], " M =", info["masses"], flush=True)
        except Exception as e:  # keep going; the case is recorded as not generated
            print("   FAILED:", e, flush=True)
            entry["error"] = str(e)[-2000:]
            cases.append(entry)
            continue
        entry["expected"] = write_expected(case, tensors)
        cases.append(entry)
    versions = {}
    try:
        from importlib.metadata import version
        versions = {"mergekit": version("mergekit"), "torch": version("torch"),
                    "numpy": np.__version__}
    except Exception:
        pass
    with open(manifest_path, "w") as f:
        json.dump({"generated_with": versions, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
