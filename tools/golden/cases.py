# SPDX-License-Identifier: GPL-3.0-or-later
"""The golden cases: a mergekit recipe each, how its reference is made and how it is checked.

source: "mergekit" (run mergekit-yaml / mergekit-multi) or "numpy" (sdm_ref.py).
expect: "full" (the whole output committed) or "summary" (per-tensor statistics + samples).
check:  "exact" (≤ 1e-5 × max|expected| per tensor) or "random" (DARE/DELLA: distribution
        checks described by the "random" entry; the mergekit output is kept for reference).
Paths in the recipes are relative to tests/golden/configs/.
"""

T = "../models/tiny-"
D = "../../../data/demo/"


def tiny(name, yaml, **kw):
    c = {"name": name, "config": name + ".yml", "source": "mergekit", "expect": "full",
         "check": "exact", "yaml": yaml}
    c.update(kw)
    return c


def demo(name, yaml, **kw):
    c = tiny(name, yaml, **kw)
    c["expect"] = "summary"
    return c


CASES = [
    tiny("linear-normalize", f"""
merge_method: linear
models:
  - model: {T}ft1
    parameters: {{weight: 0.5}}
  - model: {T}ft2
    parameters: {{weight: 0.3}}
  - model: {T}ft3
    parameters:
      weight: [0.2, 0.6, 1.0]
parameters:
  normalize: true
dtype: float32
out_dtype: float32
"""),
    tiny("linear-filters-nonorm", f"""
merge_method: linear
models:
  - model: {T}ft1
    parameters:
      weight:
        - filter: self_attn
          value: 0.7
        - filter: mlp
          value: [0.1, 0.9]
        - value: 0.25
  - model: {T}ft2
    parameters:
      weight: 0.35
parameters:
  normalize: false
dtype: float32
out_dtype: float32
"""),
    tiny("linear-vocab-tied", f"""
merge_method: linear
models:
  - model: {T}base
    parameters: {{weight: 0.4}}
  - model: {T}ft-vocab40
    parameters: {{weight: 0.35}}
  - model: {T}ft-tied
    parameters: {{weight: 0.25}}
dtype: float32
out_dtype: float32
""", mergekit_flags=["--unsafe-truncate-embeddings"]),
    tiny("slerp-scalar", f"""
merge_method: slerp
base_model: {T}base
models:
  - model: {T}base
  - model: {T}ft2
parameters:
  t: 0.3
dtype: float32
out_dtype: float32
"""),
    tiny("slerp-gradient-filters", f"""
merge_method: slerp
base_model: {T}ft1
models:
  - model: {T}ft1
  - model: {T}ft3
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.45
dtype: float32
out_dtype: float32
"""),
    tiny("slerp-slices", f"""
slices:
  - sources:
      - model: {T}base
        layer_range: [0, 2]
      - model: {T}ft2
        layer_range: [0, 2]
  - sources:
      - model: {T}base
        layer_range: [2, 3]
      - model: {T}ft2
        layer_range: [2, 3]
merge_method: slerp
base_model: {T}base
parameters:
  t: [0.1, 0.9]
dtype: float32
out_dtype: float32
"""),
    tiny("nuslerp-flatten", f"""
merge_method: nuslerp
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.3}}
  - model: {T}ft2
    parameters: {{weight: 0.7}}
dtype: float32
out_dtype: float32
"""),
    tiny("nuslerp-rows", f"""
merge_method: nuslerp
models:
  - model: {T}ft1
    parameters: {{weight: 2.0}}
  - model: {T}ft3
    parameters: {{weight: 1.0}}
parameters:
  nuslerp_flatten: false
dtype: float32
out_dtype: float32
"""),
    tiny("nuslerp-rowwise", f"""
merge_method: nuslerp
base_model: {T}base
models:
  - model: {T}ft2
    parameters: {{weight: 0.4}}
  - model: {T}ft3
    parameters: {{weight: 0.6}}
parameters:
  nuslerp_flatten: false
  nuslerp_row_wise: true
dtype: float32
out_dtype: float32
"""),
    tiny("multislerp", f"""
merge_method: multislerp
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.5}}
  - model: {T}ft2
    parameters: {{weight: 0.2}}
  - model: {T}ft3
    parameters: {{weight: 0.3}}
dtype: float32
out_dtype: float32
"""),
    tiny("karcher", f"""
merge_method: karcher
models:
  - model: {T}ft1
  - model: {T}ft2
  - model: {T}ft3
parameters:
  max_iter: 25
  tol: 1.0e-6
dtype: float32
out_dtype: float32
"""),
    tiny("task-arithmetic", f"""
merge_method: task_arithmetic
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.6}}
  - model: {T}ft2
    parameters: {{weight: [0.2, 0.5]}}
  - model: {T}ft3
    parameters: {{weight: 0.9}}
parameters:
  lambda: 0.8
dtype: float32
out_dtype: float32
"""),
    tiny("task-arithmetic-vocab", f"""
merge_method: task_arithmetic
base_model: {T}base
models:
  - model: {T}ft-vocab40
    parameters: {{weight: 0.7}}
  - model: {T}ft1
    parameters: {{weight: 0.5}}
dtype: float32
out_dtype: float32
""", mergekit_flags=["--unsafe-truncate-embeddings"]),
    tiny("ties", f"""
merge_method: ties
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.5, density: 0.3}}
  - model: {T}ft2
    parameters: {{weight: 0.3, density: 0.7}}
  - model: {T}ft3
    parameters: {{weight: 0.8, density: 0.5}}
dtype: float32
out_dtype: float32
"""),
    tiny("ties-nonorm-filters", f"""
merge_method: ties
base_model: {T}base
models:
  - model: {T}ft1
    parameters:
      weight: 1.0
      density:
        - filter: mlp
          value: 0.3
        - value: 0.7
  - model: {T}ft2
    parameters: {{weight: 0.6, density: 0.5}}
parameters:
  normalize: false
  lambda: 1.3
dtype: float32
out_dtype: float32
"""),
    tiny("breadcrumbs", f"""
merge_method: breadcrumbs
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.5, density: 0.8}}
  - model: {T}ft2
    parameters: {{weight: 0.5, density: 0.7}}
parameters:
  gamma: 0.1
dtype: float32
out_dtype: float32
"""),
    tiny("breadcrumbs-ties", f"""
merge_method: breadcrumbs_ties
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.7, density: 0.75}}
  - model: {T}ft2
    parameters: {{weight: 0.5, density: 0.6}}
  - model: {T}ft3
    parameters: {{weight: 0.4, density: 0.8}}
parameters:
  gamma: 0.12
dtype: float32
out_dtype: float32
"""),
    tiny("sce", f"""
merge_method: sce
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft2
  - model: {T}ft3
parameters:
  select_topk: 0.5
dtype: float32
out_dtype: float32
"""),
    tiny("ram", f"""
merge_method: ram
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft2
  - model: {T}ft3
parameters:
  epsilon: 1.0e-3
dtype: float32
out_dtype: float32
"""),
    tiny("ramplus-tl", f"""
merge_method: ramplus_tl
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft2
  - model: {T}ft3
parameters:
  epsilon: 1.0e-3
  r: 0.3
  alpha: 0.4
dtype: float32
out_dtype: float32
"""),
    tiny("model-stock", f"""
merge_method: model_stock
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft2
  - model: {T}ft3
dtype: float32
out_dtype: float32
"""),
    tiny("model-stock-filterwise", f"""
merge_method: model_stock
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft3
parameters:
  filter_wise: true
dtype: float32
out_dtype: float32
"""),
    tiny("nearswap", f"""
merge_method: nearswap
base_model: {T}base
models:
  - model: {T}ft2
parameters:
  t: 0.02
dtype: float32
out_dtype: float32
"""),
    tiny("arcee-fusion", f"""
merge_method: arcee_fusion
base_model: {T}base
models:
  - model: {T}ft2
dtype: float32
out_dtype: float32
"""),
    tiny("passthrough-scale", f"""
merge_method: passthrough
models:
  - model: {T}ft3
    parameters:
      scale:
        - filter: o_proj
          value: 0.5
        - filter: down_proj
          value: 0.25
        - value: 1.0
dtype: float32
out_dtype: float32
"""),
    tiny("passthrough-slices", f"""
slices:
  - sources:
      - model: {T}base
        layer_range: [0, 2]
  - sources:
      - model: {T}ft1
        layer_range: [1, 3]
        parameters:
          scale:
            - filter: o_proj
              value: 0.0
            - filter: down_proj
              value: 0.0
            - value: 1.0
  - sources:
      - model: {T}ft2
        layer_range: [2, 3]
merge_method: passthrough
dtype: float32
out_dtype: float32
"""),
    tiny("multi-stage", f"""
name: stage-ties
merge_method: ties
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.6, density: 0.6}}
  - model: {T}ft2
    parameters: {{weight: 0.4, density: 0.6}}
dtype: float32
out_dtype: float32
---
merge_method: slerp
base_model: {T}ft3
models:
  - model: {T}ft3
  - model: stage-ties
parameters:
  t: 0.4
dtype: float32
out_dtype: float32
""", multi=True),
    # ---- the real demo models --------------------------------------------------------------
    demo("demo-linear", f"""
merge_method: linear
models:
  - model: {D}ft-python
    parameters: {{weight: 1.0}}
  - model: {D}ft-c
    parameters: {{weight: 1.0}}
  - model: {D}ft-prose
    parameters: {{weight: 1.0}}
dtype: float32
out_dtype: float32
"""),
    # Densities chosen so that no tensor has two equal |Δ| at the k-th largest: mergekit
    # picks among those with torch's unstable argsort (no defined order), Crucible keeps the
    # lowest indices (at 0.6, ft-prose's layers.3.post_attention_layernorm has such a tie).
    demo("demo-ties", f"""
merge_method: ties
base_model: {D}base
models:
  - model: {D}ft-python
    parameters: {{weight: 1.0, density: 0.5}}
  - model: {D}ft-c
    parameters: {{weight: 1.0, density: 0.4}}
  - model: {D}ft-prose
    parameters: {{weight: 0.8, density: 0.65}}
dtype: float32
out_dtype: float32
"""),
    demo("demo-slerp", f"""
merge_method: slerp
base_model: {D}ft-python
models:
  - model: {D}ft-python
  - model: {D}ft-c
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: float32
out_dtype: float32
"""),
    demo("demo-breadcrumbs-ties", f"""
merge_method: breadcrumbs_ties
base_model: {D}base
models:
  - model: {D}ft-python
    parameters: {{weight: 0.5, density: 0.9}}
  - model: {D}ft-c
    parameters: {{weight: 0.5, density: 0.8}}
parameters:
  gamma: 0.02
dtype: float32
out_dtype: float32
"""),
    demo("demo-model-stock", f"""
merge_method: model_stock
base_model: {D}base
models:
  - model: {D}ft-python
  - model: {D}ft-c
  - model: {D}ft-prose
dtype: float32
out_dtype: float32
"""),
    # ---- SDM-W (numpy reference) -------------------------------------------------------------
    tiny("sdm-w-tiny-linear", f"""
merge_method: sdm_w
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft2
  - model: {T}ft3
parameters:
  k: 10
  normalization: linear
dtype: float32
out_dtype: float32
""", source="numpy"),
    tiny("sdm-w-tiny-square", f"""
merge_method: sdm_w
base_model: {T}base
models:
  - model: {T}ft1
  - model: {T}ft2
parameters:
  k: 30
  normalization: square
dtype: float32
out_dtype: float32
""", source="numpy"),
    demo("sdm-w-demo-linear", f"""
merge_method: sdm_w
base_model: {D}base
models:
  - model: {D}ft-python
  - model: {D}ft-c
  - model: {D}ft-prose
parameters:
  k: 10
  normalization: linear
dtype: float32
out_dtype: float32
""", source="numpy"),
    demo("sdm-w-demo-square", f"""
merge_method: sdm_w
base_model: {D}base
models:
  - model: {D}ft-python
  - model: {D}ft-c
  - model: {D}ft-prose
parameters:
  k: 10
  normalization: square
dtype: float32
out_dtype: float32
""", source="numpy"),
    # ---- random methods: distribution checks (mergekit outputs kept for reference) ----------
    demo("demo-dare-linear", f"""
merge_method: dare_linear
base_model: {D}base
models:
  - model: {D}ft-python
    parameters: {{weight: 1.0, density: 0.3}}
dtype: float32
out_dtype: float32
""", check="random", seed=7,
         random={"kind": "single", "density": 0.3, "base": D + "base",
                 "models": [D + "ft-python"]}),
    demo("demo-della-linear", f"""
merge_method: della_linear
base_model: {D}base
models:
  - model: {D}ft-c
    parameters: {{weight: 1.0, density: 0.4}}
parameters:
  epsilon: 0.1
dtype: float32
out_dtype: float32
""", check="random", seed=7,
         random={"kind": "della-single", "density": 0.4, "epsilon": 0.1,
                 "base": D + "base", "models": [D + "ft-c"]}),
    tiny("dare-linear", f"""
merge_method: dare_linear
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 1.0, density: 0.4}}
dtype: float32
out_dtype: float32
""", check="random", seed=7,
         random={"kind": "single", "density": 0.4, "base": T + "base", "models": [T + "ft1"]}),
    tiny("della-linear", f"""
merge_method: della_linear
base_model: {T}base
models:
  - model: {T}ft3
    parameters: {{weight: 1.0, density: 0.5}}
parameters:
  epsilon: 0.25
dtype: float32
out_dtype: float32
""", check="random", seed=7,
         random={"kind": "della-single", "density": 0.5, "epsilon": 0.25, "base": T + "base",
                 "models": [T + "ft3"]}),
    tiny("dare-ties", f"""
merge_method: dare_ties
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.6, density: 0.5}}
  - model: {T}ft2
    parameters: {{weight: 0.4, density: 0.7}}
dtype: float32
out_dtype: float32
""", check="random", seed=7,
         random={"kind": "ties-pair", "density": [0.5, 0.7], "weight": [0.6, 0.4],
                 "base": T + "base", "models": [T + "ft1", T + "ft2"]}),
    demo("demo-dare-ties", f"""
merge_method: dare_ties
base_model: {D}base
models:
  - model: {D}ft-python
    parameters: {{weight: 1.0, density: 0.5}}
  - model: {D}ft-c
    parameters: {{weight: 1.0, density: 0.5}}
  - model: {D}ft-prose
    parameters: {{weight: 1.0, density: 0.5}}
dtype: float32
out_dtype: float32
""", check="random", seed=7, random={"kind": "determinism"}),
    tiny("della", f"""
merge_method: della
base_model: {T}base
models:
  - model: {T}ft1
    parameters: {{weight: 0.5, density: 0.6}}
  - model: {T}ft3
    parameters: {{weight: 0.5, density: 0.6}}
parameters:
  epsilon: 0.2
dtype: float32
out_dtype: float32
""", check="random", seed=7, random={"kind": "determinism"}),
]
