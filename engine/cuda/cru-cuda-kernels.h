/* cru-cuda-kernels.h — C entry points of the CUDA kernels (cru-cuda-kernels.cu,
 * cru-cuda-select.cu). Every function queues work on @s; the ones that return host values
 * (reductions, selections) synchronize @s before returning.
 *
 * Float arithmetic is written in the same order as the CPU methods in engine/methods and the
 * kernels are compiled with -fmad=false, so element-wise results are bit-identical to the CPU.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "cru-cuda-math.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CRU_CUDA_MAX_MODELS 32

typedef struct {
  const float *p[CRU_CUDA_MAX_MODELS];
} CruCudaPtrs;

typedef struct {
  float v[CRU_CUDA_MAX_MODELS];
} CruCudaFloats;

/* ---- element-wise ---- */
cudaError_t cru_cuda_linear        (cudaStream_t s, CruCudaPtrs x, CruCudaFloats w, int nm,
                                    int normalize, float wsum, float *out, uint64_t n);
cudaError_t cru_cuda_sub_inplace   (cudaStream_t s, float *x, const float *b, uint64_t n);
cudaError_t cru_cuda_dare_mask     (cudaStream_t s, uint8_t *mask, uint64_t n, uint64_t offset,
                                    CruCudaRng rng, float p);
/* out[i] = the uniform float of element first + i (cru_rng_uniform) */
cudaError_t cru_cuda_uniform       (cudaStream_t s, CruCudaRng rng, uint64_t first, float *out,
                                    uint64_t n);
/* d = mask ? (mask[i] ? d : 0) : d; then mode 1: d·factor, mode 2: d/factor; then d·w */
cudaError_t cru_cuda_task_scale    (cudaStream_t s, float *d, const uint8_t *mask, uint64_t n,
                                    int mode, float factor, float w);
cudaError_t cru_cuda_task_combine  (cudaStream_t s, const float *b, CruCudaPtrs d,
                                    CruCudaFloats w, int nm, int consensus, int normalize,
                                    float divisor, float lambda, float *out, uint64_t n);
cudaError_t cru_cuda_nearswap      (cudaStream_t s, const float *b, const float *x, float t,
                                    float *out, uint64_t n);
/* unique_scale NULL: plain ram */
cudaError_t cru_cuda_ram_combine   (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                    float eps, const CruCudaFloats *unique_scale, float *out,
                                    uint64_t n);
/* counts[2m] = shared, counts[2m+1] = unique active positions of model m */
cudaError_t cru_cuda_ram_counts    (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                    float eps, uint64_t n, unsigned long long *counts);
cudaError_t cru_cuda_scale         (cudaStream_t s, const float *x, float scale, float *out,
                                    uint64_t n);
/* out = s0·v0 + s1·v1 */
cudaError_t cru_cuda_axpby         (cudaStream_t s, float s0, const float *v0, float s1,
                                    const float *v1, float *out, uint64_t n);
cudaError_t cru_cuda_div_scalar    (cudaStream_t s, float *a, float f, uint64_t n);
cudaError_t cru_cuda_mul_scalar    (cudaStream_t s, float *a, float f, uint64_t n);
/* model_stock: out = t·(Σx/nm) + (1−t)·b, t per row of @row_len (t_rows on the device) or
 * the scalar @t when t_rows is NULL */
cudaError_t cru_cuda_stock_out     (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                    const float *t_rows, float t, uint64_t row_len,
                                    float *out, uint64_t n);
/* sdm_w: out = b + Σ_m w_m·d where |d| ≠ 0 and |d| ≥ p_m, d = @x_m (the deltas x_m − b),
 * over the active models */
cudaError_t cru_cuda_sdm_out       (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                    CruCudaFloats w, const double *p, const int *active,
                                    float *out, uint64_t n);
cudaError_t cru_cuda_nuslerp_out   (cudaStream_t s, const float *b, const float *x0,
                                    const float *x1, const float *coef, uint64_t outer,
                                    uint64_t inner, int vec_is_outer, float *out);
/* acc[3j..3j+2] = Σ v0², Σ v1², Σ v0·v1 per vector j (double), v = x − b or x */
cudaError_t cru_cuda_nuslerp_acc   (cudaStream_t s, const float *b, const float *x0,
                                    const float *x1, uint64_t outer, uint64_t inner,
                                    int vec_is_outer, double *acc);
cudaError_t cru_cuda_mslerp_mean   (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                    CruCudaFloats inv, CruCudaFloats w, float *mean,
                                    uint64_t n);
cudaError_t cru_cuda_mslerp_tangent (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                     CruCudaFloats inv, CruCudaFloats dots, CruCudaFloats w,
                                     const float *mean, float *out, uint64_t n);
cudaError_t cru_cuda_mslerp_final  (cudaStream_t s, const float *b, const float *mean,
                                    float c0, float c1, float avg_norm, float *out, uint64_t n);
cudaError_t cru_cuda_mslerp_pair   (cudaStream_t s, const float *b, const float *x0,
                                    const float *x1, float w0, float w1, float *out,
                                    uint64_t n);
/* karcher: mean = Σ alpha_m·(x_m/nf_m) over alpha_m ≠ 0 */
cudaError_t cru_cuda_karcher_init  (cudaStream_t s, CruCudaPtrs x, int nm, CruCudaFloats alpha,
                                    CruCudaFloats nf, float *mean, uint64_t n);
/* tangent += coef·((x/nf) − dot·mean) */
cudaError_t cru_cuda_karcher_tangent (cudaStream_t s, const float *x, float nf, float coef,
                                      float dot, const float *mean, float *tangent,
                                      uint64_t n);
/* mean = c·mean + sn·(tangent/tn) */
cudaError_t cru_cuda_karcher_step  (cudaStream_t s, float *mean, const float *tangent, float c,
                                    float sn, float tn, uint64_t n);
/* sce: var = population variance of the τ_m per element; *nonzero = #(var ≠ 0) */
cudaError_t cru_cuda_sce_var       (cudaStream_t s, CruCudaPtrs tau, int nm, float *var,
                                    uint64_t n, unsigned long long *nonzero);
cudaError_t cru_cuda_mask_zero     (cudaStream_t s, float *a, const uint8_t *mask, uint64_t n);
cudaError_t cru_cuda_sce_combine   (cudaStream_t s, const float *b, CruCudaPtrs tau, int nm,
                                    CruCudaFloats omega, float *out, uint64_t n);
/* arcee_fusion: importance = |x − b|·KL(row) */
cudaError_t cru_cuda_arcee_importance (cudaStream_t s, const float *b, const float *x,
                                       uint64_t n_rows, uint64_t row_len, float *importance);
cudaError_t cru_cuda_arcee_out     (cudaStream_t s, const float *b, const float *x,
                                    const float *importance, float threshold, float *out,
                                    uint64_t n);
/* model_stock filter_wise: per row r, res[r·(nm + pairs) + …] = norms² then pair dots */
cudaError_t cru_cuda_stock_rows    (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                                    uint64_t n_rows, uint64_t row_len, double *res);

/* ---- conversions (same rounding and NaN rule as cru-dtype.c) ---- */
cudaError_t cru_cuda_f32_to_bf16   (cudaStream_t s, const float *src, uint16_t *dst, uint64_t n);
cudaError_t cru_cuda_f32_to_f16    (cudaStream_t s, const float *src, uint16_t *dst, uint64_t n);
cudaError_t cru_cuda_bf16_to_f32   (cudaStream_t s, const uint16_t *src, float *dst, uint64_t n);
cudaError_t cru_cuda_f16_to_f32    (cudaStream_t s, const uint16_t *src, float *dst, uint64_t n);

/* ---- reductions in double, deterministic for a given n (two stages, fixed order); the
 * ones marked "fixed order" add exactly as the CPU does ---- */
typedef enum {
  CRU_CUDA_RED_SUM_SQ,        /* Σ a²                                 */
  CRU_CUDA_RED_DOT,           /* Σ a·b                                */
  CRU_CUDA_RED_SUM_SQ_DIFF,   /* Σ d², d = (double)(a − c) (c may be NULL) */
  CRU_CUDA_RED_DOT_DIFF,      /* Σ (double)(a − c)·(double)(b − c)    */
  CRU_CUDA_RED_L1_MASKED,     /* r0 = Σ|a|, r1 = Σ mask·|a| (fixed order, cru-fixed-sum.h) */
  CRU_CUDA_RED_DOT_SCALED,    /* Σ (double)((a − c)/f)·b  (c may be NULL) */
  CRU_CUDA_RED_DOT_SCALED_B,  /* Σ (double)b·(double)(a/f)            */
  CRU_CUDA_RED_KEPT_MASS,     /* Σ |d| where |d| ≠ 0 and |d| ≥ p, d = a − c (c may be NULL;
                               * fixed order, cru-fixed-sum.h) */
} CruCudaReduceOp;

typedef struct {
  CruCudaReduceOp op;
  const float    *a, *b, *c;
  const uint8_t  *mask;
  float           f;
  double          p;
} CruCudaReduce;

/* result[0], result[1] (host); synchronizes @s */
cudaError_t cru_cuda_reduce        (cudaStream_t s, const CruCudaReduce *r, uint64_t n,
                                    double result[2]);

/* ---- exact selection (cru-cuda-select.cu), same tie rules as cru-select.c ---- */
cudaError_t cru_cuda_kth_key       (cudaStream_t s, const float *v, uint64_t n, uint64_t k,
                                    int signed_order, int skip_zeros, uint32_t *key);
cudaError_t cru_cuda_count_considered (cudaStream_t s, const float *v, uint64_t n,
                                       int skip_zeros, uint64_t *count);
cudaError_t cru_cuda_topk_mask     (cudaStream_t s, const float *v, uint64_t n, uint64_t k,
                                    int signed_order, uint8_t *mask);
cudaError_t cru_cuda_rank_range_mask (cudaStream_t s, const float *v, uint64_t n, uint64_t lo,
                                      uint64_t hi, int signed_order, uint8_t *mask);
/* numpy percentile ("linear") of the considered elements; *has = 0 when none */
cudaError_t cru_cuda_percentile    (cudaStream_t s, const float *v, uint64_t n, double q,
                                    int signed_order, int skip_zeros, double *out, int *has);
/* DELLA: per row, stable ascending rank of |Δ|, keep with p = ρ − ε + 2ε·r̃ */
cudaError_t cru_cuda_della_mask    (cudaStream_t s, const float *delta, uint64_t n,
                                    uint64_t row_len, uint64_t offset, CruCudaRng rng,
                                    double density, double epsilon, uint8_t *mask);

#ifdef __cplusplus
}
#endif
