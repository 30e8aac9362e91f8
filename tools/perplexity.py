#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Perplexity of a Llama-style model on byte-level eval texts (data/demo/README.md protocol).

numpy only: a float32 forward pass of transformers' LlamaForCausalLM (eager attention, fp32
RMSNorm and softmax, rotate-half RoPE), reading safetensors files with a small built-in reader
(F32, F16 and BF16 are widened exactly to float32). NLL is summed in float64.

Usage:
  tools/perplexity.py MODEL_DIR [MODEL_DIR …] [--eval-dir DIR] [--texts python,c,prose] [--json OUT]
  tools/perplexity.py --check-reference          # reproduce data/demo/REFERENCE.json

Protocol: read the eval file as bytes, cut it into consecutive chunks of 255 bytes, run each as
[<s>=256] + chunk; logits at position j predict chunk[j]; ppl = exp(Σ NLL / file size).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
DEMO_DIR = os.path.join(SOURCE_DIR, "data", "demo")
BOS = 256
CHUNK = 255


# ---- safetensors ------------------------------------------------------------------------

def _widen(raw, dtype):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if dtype == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32)
    if dtype == "F64":
        return np.frombuffer(raw, dtype="<f8").astype(np.float32)
    raise ValueError("unsupported dtype %s" % dtype)


def read_safetensors(path):
    """Returns {name: float32 ndarray} for every tensor of one safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = _widen(data[b:e], info["dtype"]).reshape(info["shape"])
    return out


def read_model(folder):
    """Tensors of a Hugging Face folder (single file or shards with an index) and its config."""
    tensors = {}
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for fn in files:
        tensors.update(read_safetensors(os.path.join(folder, fn)))
    config = json.load(open(os.path.join(folder, "config.json")))
    return tensors, config


# ---- the model ----------------------------------------------------------------------------

class Llama:
    def __init__(self, folder):
        t, c = read_model(folder)
        self.c = c
        self.t = t
        self.H = c["hidden_size"]
        self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads") or self.nh
        self.hd = c.get("head_dim") or self.H // self.nh
        self.eps = np.float32(c.get("rms_norm_eps", 1e-6))
        self.L = c["num_hidden_layers"]
        self.embed = t["model.embed_tokens.weight"]
        self.lm_head = t.get("lm_head.weight")
        if self.lm_head is None:  # tie_word_embeddings
            self.lm_head = self.embed
        theta = c.get("rope_theta", 10000.0)
        # transformers: inv_freq = 1 / theta ** (arange(0, dim, 2).float() / dim), in float32
        exps = np.arange(0, self.hd, 2, dtype=np.int64).astype(np.float32) / np.float32(self.hd)
        self.inv_freq = (1.0 / (np.float32(theta) ** exps)).astype(np.float32)
        self.lw = []
        for i in range(self.L):
            p = "model.layers.%d." % i
            self.lw.append({k: t[p + k + ".weight"] for k in (
                "input_layernorm", "post_attention_layernorm", "self_attn.q_proj",
                "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")})
        self.norm = t["model.norm.weight"]

    def rms(self, x, w):
        var = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
        return (x / np.sqrt(var + self.eps)).astype(np.float32) * w

    def rope(self, T):
        pos = np.arange(T, dtype=np.float32)
        freqs = np.outer(pos, self.inv_freq).astype(np.float32)
        emb = np.concatenate([freqs, freqs], axis=-1)
        return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)

    def logits(self, ids):
        """ids: int array [B, T] → logits float32 [B, T, V]."""
        B, T = ids.shape
        x = self.embed[ids]
        cos, sin = self.rope(T)
        scale = np.float32(1.0 / math.sqrt(self.hd))
        mask = np.triu(np.full((T, T), np.finfo(np.float32).min, dtype=np.float32), 1)
        rep = self.nh // self.nkv
        for w in self.lw:
            h = self.rms(x, w["input_layernorm"])
            q = (h @ w["self_attn.q_proj"].T).reshape(B, T, self.nh, self.hd).transpose(0, 2, 1, 3)
            k = (h @ w["self_attn.k_proj"].T).reshape(B, T, self.nkv, self.hd).transpose(0, 2, 1, 3)
            v = (h @ w["self_attn.v_proj"].T).reshape(B, T, self.nkv, self.hd).transpose(0, 2, 1, 3)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            k = np.repeat(k, rep, axis=1)
            v = np.repeat(v, rep, axis=1)
            s = (q @ k.transpose(0, 1, 3, 2)) * scale + mask
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p = p / p.sum(axis=-1, keepdims=True)
            a = (p @ v).transpose(0, 2, 1, 3).reshape(B, T, self.nh * self.hd)
            x = x + a @ w["self_attn.o_proj"].T
            h = self.rms(x, w["post_attention_layernorm"])
            g = h @ w["mlp.gate_proj"].T
            u = h @ w["mlp.up_proj"].T
            x = x + ((g / (1.0 + np.exp(-g))) * u) @ w["mlp.down_proj"].T
        x = self.rms(x, self.norm)
        return (x @ self.lm_head.T).astype(np.float32)


def nll_of(model, data, batch=32):
    """Σ NLL (float64) and count over every byte of @data (bytes)."""
    ids = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    chunks = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
    total = 0.0
    n = 0
    groups = {}
    for c in chunks:
        groups.setdefault(len(c), []).append(c)
    for length, cs in groups.items():
        for i in range(0, len(cs), batch):
            tgt = np.stack(cs[i:i + batch])
            inp = np.concatenate([np.full((len(tgt), 1), BOS, dtype=np.int64), tgt], axis=1)
            lg = model.logits(inp)[:, :-1].astype(np.float64)
            m = lg.max(axis=-1, keepdims=True)
            lse = (m[..., 0] + np.log(np.exp(lg - m).sum(axis=-1)))
            picked = np.take_along_axis(lg, tgt[..., None], axis=-1)[..., 0]
            total += float((lse - picked).sum())
            n += tgt.size
    return total, n


def perplexities(folder, eval_dir, texts):
    model = Llama(folder)
    out = {}
    for name in texts:
        data = open(os.path.join(eval_dir, name + ".txt"), "rb").read()
        s, n = nll_of(model, data)
        out[name] = {"ppl": math.exp(s / n), "mean_nll": s / n, "scored_tokens": n}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", help="Hugging Face model folders")
    ap.add_argument("--eval-dir", default=os.path.join(DEMO_DIR, "eval"))
    ap.add_argument("--texts", default="python,c,prose")
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--check-reference", action="store_true",
                    help="compare base, base-bf16 and ft-* with data/demo/REFERENCE.json")
    a = ap.parse_args()
    texts = a.texts.split(",")
    results = {}
    worst = 0.0
    if a.check_reference:
        ref = json.load(open(os.path.join(DEMO_DIR, "REFERENCE.json")))["perplexity"]
        for m in ("base", "base-bf16", "ft-python", "ft-c", "ft-prose"):
            r = perplexities(os.path.join(DEMO_DIR, m), a.eval_dir, texts)
            results[m] = r
            for tx in texts:
                rel = abs(r[tx]["ppl"] - ref[m][tx]["ppl"]) / ref[m][tx]["ppl"]
                worst = max(worst, rel)
                print("%-10s %-7s ppl %.6f  reference %.6f  rel diff %.2e"
                      % (m, tx, r[tx]["ppl"], ref[m][tx]["ppl"], rel), flush=True)
        print("worst relative difference: %.2e" % worst)
    for folder in a.models:
        r = perplexities(folder, a.eval_dir, texts)
        results[folder] = r
        print("%s: %s" % (folder, "  ".join("%s %.4f" % (tx, r[tx]["ppl"]) for tx in texts)),
              flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.check_reference and worst > 1e-4:
        sys.exit(1)


if __name__ == "__main__":
    main()
