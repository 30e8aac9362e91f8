# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent numpy reference of SDM-W (METHODS.md, "SDM-W"), scope tensor, weights per model.

  Δ_i = x_i − b; per tensor P = numpy percentile_k (linear) of {|Δ_ij| : Δ_ij ≠ 0};
  Δ'_i = Δ_i where |Δ_i| ≥ P else 0; M_i = Σ over all tensors |Δ'_i| (float64);
  W_i = M_i/ΣM (linear) or M_i²/ΣM² (square); output b + Σ W_i Δ'_i.
Computed in float64 from the float32 inputs, output rounded to float32.
"""
import os

import numpy as np
import yaml

import stio


def sparsify(delta, k):
    a = np.abs(delta.astype(np.float64))
    s = a[delta != 0]
    if s.size == 0:
        return np.zeros_like(delta, dtype=np.float64)
    p = np.percentile(s, k)              # linear interpolation between closest ranks
    return np.where(a >= p, delta.astype(np.float64), 0.0)


def merge(base, models, k=10.0, normalization="linear"):
    """base: {name: f32 array}; models: list of such. Returns (tensors, weights, masses)."""
    sparse = []
    masses = []
    for m in models:
        sp = {n: sparsify(m[n] - base[n], k) for n in base}
        sparse.append(sp)
        masses.append(float(sum(np.abs(v).sum() for v in sp.values())))
    M = np.array(masses)
    if normalization == "square":
        M2 = M * M
        W = M2 / M2.sum() if M2.sum() > 0 else np.zeros_like(M)
    else:
        W = M / M.sum() if M.sum() > 0 else np.zeros_like(M)
    out = {}
    for n, b in base.items():
        acc = b.astype(np.float64)
        for w, sp in zip(W, sparse):
            acc = acc + w * sp[n]
        out[n] = acc.astype(np.float32)
    return out, [float(w) for w in W], masses


def run(config_path):
    cfg = yaml.safe_load(open(config_path))
    assert cfg["merge_method"] == "sdm_w"
    d = os.path.dirname(os.path.abspath(config_path))

    def load(p):
        return stio.read_folder(os.path.normpath(os.path.join(d, p)))

    base_path = cfg["base_model"]
    base = load(base_path)
    models = [load(m["model"]) for m in cfg["models"] if m["model"] != base_path]
    p = cfg.get("parameters") or {}
    out, W, M = merge(base, models, float(p.get("k", 10)), p.get("normalization", "linear"))
    return out, {"weights": W, "masses": M}
