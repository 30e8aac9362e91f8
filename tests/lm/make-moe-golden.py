#!/usr/bin/env python3
"""Make tests/lm/moe-golden.json: mergekit-moe's router rows for tests/lm/moe-demo.yml, and
the perplexity of the MoE it builds, computed with transformers' MixtralForCausalLM.

Run once with a Python that has mergekit (pip install mergekit; it pulls torch and
transformers), from anywhere:
    /work/venv-mergekit/bin/python tests/lm/make-moe-golden.py

mergekit-moe loads the base model in bfloat16 to compute `hidden` gates; Crucible's contract
is mergekit run in float32 (DESIGN.md), so the float32 run patches from_pretrained's dtype.
Both runs are recorded: the bf16 one shows how far mergekit's default is from exact.
"""
import json
import math
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
YAML = os.path.join(HERE, "moe-demo.yml")


def run_mergekit(out, force_f32):
    from mergekit.scripts.moe import main

    original = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def patched(cls, *args, **kwargs):
        if force_f32:
            kwargs["torch_dtype"] = torch.float32
        return original(cls, *args, **kwargs)

    transformers.AutoModelForCausalLM.from_pretrained = classmethod(patched)
    cwd = os.getcwd()
    os.chdir(HERE)  # the YAML's model paths are relative to its folder
    try:
        main([YAML, out, "--device", "cpu", "--no-lazy-unpickle"], standalone_mode=False)
    finally:
        os.chdir(cwd)
        transformers.AutoModelForCausalLM.from_pretrained = classmethod(original)
    tensors = load_file(os.path.join(out, "model.safetensors"))
    n_layers = json.load(open(os.path.join(out, "config.json")))["num_hidden_layers"]
    # mergekit with transformers 5 writes the fused layout (mlp.gate, mlp.experts.gate_up_proj);
    # older versions the legacy one (block_sparse_moe.gate)
    names = ["model.layers.%d.block_sparse_moe.gate.weight", "model.layers.%d.mlp.gate.weight"]
    name = next(n for n in names if n % 0 in tensors)
    return tensors, [tensors[name % l].float() for l in range(n_layers)]


def perplexity(model_dir, text_bytes, ctx=256):
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    ids = list(text_bytes)
    nll = 0.0
    with torch.no_grad():
        for i in range(0, len(ids), ctx - 1):
            chunk = ids[i:i + ctx - 1]
            logits = model(torch.tensor([[256] + chunk])).logits[0, :-1]
            nll += torch.nn.functional.cross_entropy(logits.double(), torch.tensor(chunk),
                                                     reduction="sum").item()
    return math.exp(nll / len(ids))


def main():
    tmp = tempfile.mkdtemp(prefix="cru-moe-golden-")
    try:
        f32_dir = os.path.join(tmp, "f32")
        bf16_dir = os.path.join(tmp, "bf16")
        _, gates = run_mergekit(f32_dir, True)
        _, gates_bf16 = run_mergekit(bf16_dir, False)
        diff = max((a - b).abs().max().item() for a, b in zip(gates, gates_bf16))
        ppl = {}
        for name in ("python", "c", "prose"):
            data = open(os.path.join(ROOT, "data", "demo", "eval", name + ".txt"), "rb").read()
            data = data[:10240]
            data = data[:data.rindex(b"\n") + 1]
            ppl[name] = {"bytes": len(data), "ppl": perplexity(f32_dir, data)}
        import mergekit
        out = {
            "note": "router rows (model.layers.N.block_sparse_moe.gate.weight, [experts, hidden]) "
                    "written by mergekit-moe for tests/lm/moe-demo.yml with the base run in "
                    "float32; ppl: transformers MixtralForCausalLM (float32) on that MoE, "
                    "first whole lines up to 10240 bytes of each eval text, 255-byte windows",
            "mergekit_version": getattr(mergekit, "__version__", "?"),
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "max_abs_diff_bf16_default_vs_f32": diff,
            "gates": [g.tolist() for g in gates],
            "perplexity_slices": ppl,
        }
        with open(os.path.join(HERE, "moe-golden.json"), "w") as f:
            json.dump(out, f)
            f.write("\n")
        print("bf16 vs f32 gates: max abs diff %.3g" % diff, ppl, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
