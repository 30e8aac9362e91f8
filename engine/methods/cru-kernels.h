/* cru-kernels.h — the element loops of the merge methods, with SIMD twins chosen at run time
 *
 * Each kernel performs, per element, exactly the operations of the scalar code it replaced,
 * in the same order and the same precision, so the SIMD path gives the same bits: FMA is
 * deliberately not used (a fused multiply-add rounds once where the reference rounds twice)
 * and nothing is reassociated. The methods tests compare both paths bit for bit.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "cru-rng.h"

G_BEGIN_DECLS

/* What cru_kernel_mask_scale does after the mask (DARE/TIES rescaling). */
typedef enum {
  CRU_KERNEL_SCALE_NONE,   /* v = d · w              (no mask) */
  CRU_KERNEL_SCALE_MASK,   /* v = (mask ? d : 0) · w */
  CRU_KERNEL_SCALE_MUL,    /* v = ((mask ? d : 0) · factor) · w */
  CRU_KERNEL_SCALE_DIV,    /* v = ((mask ? d : 0) / factor) · w */
} CruKernelScale;

/* out = x[0]·w[0] + x[1]·w[1] + … (left to right), then / divisor when @divide. */
void cru_kernel_weighted_sum (float *restrict out, const float *const *x, const float *w,
                              int n_models, guint64 n, gboolean divide, float divisor);
/* out = sa·a + sb·b */
void cru_kernel_lerp2        (float *restrict out, const float *restrict a, float sa,
                              const float *restrict b, float sb, guint64 n);
/* sums[0] += Σ a², sums[1] += Σ b², sums[2] += Σ a·b, each in double, element by element
 * in index order (one pass instead of three; chunks in order give the whole tensor's
 * sums). */
void cru_kernel_sums3        (const float *restrict a, const float *restrict b, guint64 n,
                              double sums[3]);
/* out = a − b */
void cru_kernel_sub          (float *restrict out, const float *restrict a,
                              const float *restrict b, guint64 n);
/* out = base + out, in place */
void cru_kernel_add_base     (float *restrict out, const float *restrict base, guint64 n);
/* Top-k mask from a threshold (cru_select_topk_threshold): mask[i] = |v| key > key_t, or
 * == key_t for the first @n_equal_take such elements. Returns how many equal ones are still
 * to take (for the next chunk of the same tensor). */
guint64 cru_kernel_topk_mask (const float *restrict v, guint64 n, uint32_t key_t,
                              guint64 n_equal_take, guint8 *restrict mask);
/* TIES's kept Δ in one pass over x and base: cru_kernel_sub, cru_kernel_topk_mask on Δ and
 * cru_kernel_mask_scale (@scale MASK, MUL or DIV), bit for bit, without the mask. Returns
 * how many equal keys are still to take. */
guint64 cru_kernel_diff_topk_scale (float *restrict delta, const float *restrict x,
                                    const float *restrict base, guint64 n, uint32_t key_t,
                                    guint64 n_equal_take, CruKernelScale scale, float factor,
                                    float w);
/* delta[i] = the @scale rule above, in place. @mask is ignored for SCALE_NONE. */
void cru_kernel_mask_scale   (float *restrict delta, const guint8 *restrict mask, guint64 n,
                              CruKernelScale scale, float factor, float w);
/* TIES sign election over weighted deltas: per element, the sign of Σ d_m; the agreeing
 * deltas are summed (and divided by the sum of their weights when @normalize, 1 when that
 * is 0), times @lambda when ≠ 1, added to the base. */
void cru_kernel_consensus    (float *restrict out, const float *restrict base,
                              const float *const *deltas, const float *w, int n_models,
                              guint64 n, gboolean normalize, float lambda);
/* out = base + ((d_0 + d_1 + …) / divisor when @normalize) · lambda when ≠ 1 */
void cru_kernel_sum_deltas   (float *restrict out, const float *restrict base,
                              const float *const *deltas, int n_models, guint64 n,
                              gboolean normalize, float divisor, float lambda);

/* SDM-W: out[i] += w · (x[i] − base[i]) where that difference d is ≠ 0 and |d| ≥ @p (p in
 * double, as the threshold is; compared exactly). */
void cru_kernel_sdm_add       (float *restrict out, const float *restrict x,
                               const float *restrict base, guint64 n, float w, double p);

/* The fixed-order double sums of cru-fixed-sum.h, continued: @acc[0] += Σ |a_i|,
 * @acc[1] += Σ |a_i| over mask_i ≠ 0, block by block, exactly as cru_fixed_sum_l1_masked
 * adds them. A tensor given in chunks gives the whole tensor's sums when every chunk but
 * the last is a multiple of CRU_FIXED_SUM_BLOCK elements. */
void cru_kernel_l1_masked     (const float *restrict a, const guint8 *restrict mask,
                               guint64 n, double acc[2]);
/* Likewise for cru_fixed_sum_kept: *acc += Σ |a_i| over a_i ≠ 0 and |a_i| ≥ p. */
void cru_kernel_kept_sum      (const float *restrict a, guint64 n, double p, double *acc);

/* Radix-select counts of the |Δ| keys of Δ = x − base (Δ computed as cru_kernel_sub does,
 * never stored): hist[key >> 16]++ for every element, and *zeros += the elements with Δ = 0
 * when @zeros is not NULL. */
void cru_kernel_diff_hist_high (const float *restrict x, const float *restrict base,
                                guint64 n, guint32 *restrict hist, guint64 *zeros);
/* hist[key & 0xffff]++ for the keys whose high half is @high; and *next_low = the smallest
 * low half of the keys whose high half is @next_high (when @next_high < 65536). */
void cru_kernel_diff_hist_low  (const float *restrict x, const float *restrict base,
                                guint64 n, uint32_t high, guint32 *restrict hist,
                                uint32_t next_high, uint32_t *next_low);
/* cru_kernel_diff_hist_high (when @hist is not NULL) and, in the same pass, the low halves
 * of the keys whose high half is one of the window's CRU_HIST_WINDOW distinct @digits:
 * window[j · 65536 + low]++ for digits[j]; and when @above is not NULL, above[j] += the keys
 * whose high half is above digits[j]. A streamed radix select that guesses where its digit
 * is (from a tensor's first chunk) needs no second pass when the guess holds, and with the
 * counts above the digits, no full histogram either: they place the window's digits in the
 * order of all keys. */
#define CRU_HIST_WINDOW 3
void cru_kernel_diff_hist_window (const float *restrict x, const float *restrict base,
                                  guint64 n, guint32 *restrict hist, guint64 *zeros,
                                  const uint32_t digits[CRU_HIST_WINDOW],
                                  guint32 *restrict window, guint64 *above);
/* cru_kernel_kept_sum of Δ = x − base, without storing Δ. */
void cru_kernel_diff_kept_sum  (const float *restrict x, const float *restrict base,
                                guint64 n, double p, double *acc);

/* DARE's masks as bits, fused with the passes that use them (one pass over the inputs each,
 * Δ = x − base computed as cru_kernel_sub does and never stored):
 *  - random_bits: bit i % 8 of byte i / 8 = (the uniform float of absolute element
 *    @first + i) < p, exactly as cru_rng_uniform1 () < p, one Philox block per four
 *    elements (the SIMD kernels start at a block: @first a multiple of 4); the last byte's
 *    unused bits are zero;
 *  - diff_l1_bits: cru_kernel_l1_masked of Δ under those bits (the same fixed order);
 *  - diff_mask_scale_bits: delta = cru_kernel_mask_scale of Δ under those bits (@scale is
 *    not CRU_KERNEL_SCALE_NONE). */
void cru_kernel_random_bits  (const CruRng *rng, guint64 first, guint64 n, float p,
                              guint8 *restrict bits);
void cru_kernel_diff_l1_bits (const float *restrict x, const float *restrict base,
                              const guint8 *restrict bits, guint64 n, double acc[2]);
void cru_kernel_diff_mask_scale_bits (float *restrict delta, const float *restrict x,
                                      const float *restrict base,
                                      const guint8 *restrict bits, guint64 n,
                                      CruKernelScale scale, float factor, float w);

/* A 0/1 byte mask as bits (bit i % 8 of byte i / 8, the last byte's unused bits zero), and
 * back: DARE keeps a streamed tensor's masks between its L1 pass and its apply. */
void cru_kernel_mask_pack    (const guint8 *restrict mask, guint64 n, guint8 *restrict bits);
void cru_kernel_mask_unpack  (const guint8 *restrict bits, guint64 n, guint8 *restrict mask);

/* The kernel sets, each giving the same bits: the scalar references, AVX2 twins of every
 * kernel, and AVX-512 (F, BW, DQ, VL) twins of the DARE bit kernels, whose Philox draws are
 * most of DARE's time. */
typedef enum {
  CRU_KERNELS_SCALAR,
  CRU_KERNELS_AVX2,
  CRU_KERNELS_AVX512,
} CruKernelsIsa;

/* Whether this CPU has the SIMD kernels (AVX2), and switching them off (tests compare). */
gboolean      cru_kernels_simd_available   (void);
void          cru_kernels_set_simd_enabled (gboolean enabled);
/* The best set this CPU runs, and choosing one (at most that; tests compare them all). */
CruKernelsIsa cru_kernels_isa_available    (void);
void          cru_kernels_set_isa          (CruKernelsIsa isa);

G_END_DECLS
