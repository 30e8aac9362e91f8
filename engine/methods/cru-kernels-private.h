/* cru-kernels-private.h — the scalar, AVX2 and AVX-512 parts of cru-kernels.h
 *
 * The scalar functions work on [begin, n) so that the SIMD ones can hand them their tails.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-kernels.h"

G_BEGIN_DECLS

gboolean _cru_kernels_simd_supported (void);

void    _cru_weighted_sum_scalar (float *restrict out, const float *const *x, const float *w,
                                  int n_models, guint64 begin, guint64 n, gboolean divide,
                                  float divisor);
void    _cru_lerp2_scalar        (float *restrict out, const float *restrict a, float sa,
                                  const float *restrict b, float sb, guint64 begin, guint64 n);
void    _cru_sub_scalar          (float *restrict out, const float *restrict a,
                                  const float *restrict b, guint64 begin, guint64 n);
void    _cru_add_base_scalar     (float *restrict out, const float *restrict base,
                                  guint64 begin, guint64 n);
/* Returns how many equal keys are still to take. */
guint64 _cru_topk_mask_scalar    (const float *restrict v, guint64 begin, guint64 n,
                                  uint32_t key_t, guint64 take, guint8 *restrict mask);
guint64 _cru_diff_topk_scale_scalar (float *restrict delta, const float *restrict x,
                                     const float *restrict base, guint64 begin, guint64 n,
                                     uint32_t key_t, guint64 take, CruKernelScale scale,
                                     float factor, float w);
void    _cru_mask_scale_scalar   (float *restrict delta, const guint8 *restrict mask,
                                  guint64 begin, guint64 n, CruKernelScale scale, float factor,
                                  float w);
void    _cru_consensus_scalar    (float *restrict out, const float *restrict base,
                                  const float *const *deltas, const float *w, int n_models,
                                  guint64 begin, guint64 n, gboolean normalize, float lambda);
void    _cru_sum_deltas_scalar   (float *restrict out, const float *restrict base,
                                  const float *const *deltas, int n_models, guint64 begin,
                                  guint64 n, gboolean normalize, float divisor, float lambda);
void    _cru_sdm_add_scalar      (float *restrict out, const float *restrict x,
                                  const float *restrict base, guint64 begin, guint64 n,
                                  float w, double p);
void    _cru_diff_hist_high_scalar (const float *restrict x, const float *restrict base,
                                    guint64 begin, guint64 n, guint32 *restrict hist,
                                    guint64 *zeros);
void    _cru_diff_hist_low_scalar  (const float *restrict x, const float *restrict base,
                                    guint64 begin, guint64 n, uint32_t high,
                                    guint32 *restrict hist, uint32_t next_high,
                                    uint32_t *next_low);
void    _cru_diff_hist_window_scalar (const float *restrict x, const float *restrict base,
                                      guint64 begin, guint64 n, guint32 *restrict hist,
                                      guint64 *zeros, const uint32_t *digits,
                                      guint32 *restrict window, guint64 *above);
void    _cru_random_mask_scalar  (const CruRng *rng, guint64 first, guint64 begin, guint64 n,
                                  float p, guint8 *restrict mask);

/* @begin is a multiple of 8 */
void    _cru_random_bits_scalar  (const CruRng *rng, guint64 first, guint64 begin, guint64 n,
                                  float p, guint8 *restrict bits);
void    _cru_diff_l1_bits_scalar (const float *restrict x, const float *restrict base,
                                  const guint8 *restrict bits, guint64 begin, guint64 n,
                                  double acc[2]);
void    _cru_diff_mask_scale_bits_scalar (float *restrict delta, const float *restrict x,
                                          const float *restrict base,
                                          const guint8 *restrict bits, guint64 begin,
                                          guint64 n, CruKernelScale scale, float factor,
                                          float w);
void    _cru_weighted_sum_simd   (float *restrict out, const float *const *x, const float *w,
                                  int n_models, guint64 n, gboolean divide, float divisor);
void    _cru_lerp2_simd          (float *restrict out, const float *restrict a, float sa,
                                  const float *restrict b, float sb, guint64 n);
void    _cru_sub_simd            (float *restrict out, const float *restrict a,
                                  const float *restrict b, guint64 n);
void    _cru_add_base_simd       (float *restrict out, const float *restrict base, guint64 n);
guint64 _cru_topk_mask_simd      (const float *restrict v, guint64 n, uint32_t key_t,
                                  guint64 take, guint8 *restrict mask);
guint64 _cru_diff_topk_scale_simd (float *restrict delta, const float *restrict x,
                                   const float *restrict base, guint64 n, uint32_t key_t,
                                   guint64 take, CruKernelScale scale, float factor, float w);
void    _cru_l1_masked_simd      (const float *restrict a, const guint8 *restrict mask,
                                  guint64 n, double acc[2]);
void    _cru_kept_sum_simd       (const float *restrict a, guint64 n, double p, double *acc);
void    _cru_mask_scale_simd     (float *restrict delta, const guint8 *restrict mask,
                                  guint64 n, CruKernelScale scale, float factor, float w);
void    _cru_consensus_simd      (float *restrict out, const float *restrict base,
                                  const float *const *deltas, const float *w, int n_models,
                                  guint64 n, gboolean normalize, float lambda);
void    _cru_sum_deltas_simd     (float *restrict out, const float *restrict base,
                                  const float *const *deltas, int n_models, guint64 n,
                                  gboolean normalize, float divisor, float lambda);
void    _cru_sdm_add_simd        (float *restrict out, const float *restrict x,
                                  const float *restrict base, guint64 n, float w, float p_up);
void    _cru_diff_hist_high_simd (const float *restrict x, const float *restrict base,
                                  guint64 n, guint32 *restrict hist, guint64 *zeros);
void    _cru_diff_hist_low_simd  (const float *restrict x, const float *restrict base,
                                  guint64 n, uint32_t high, guint32 *restrict hist,
                                  uint32_t next_high, uint32_t *next_low);
void    _cru_diff_hist_window_simd (const float *restrict x, const float *restrict base,
                                    guint64 n, guint32 *restrict hist, guint64 *zeros,
                                    const uint32_t *digits, guint32 *restrict window,
                                    guint64 *above);
void    _cru_diff_kept_sum_simd  (const float *restrict x, const float *restrict base,
                                  guint64 n, double p, double *acc);

void    _cru_random_bits_simd    (const CruRng *rng, guint64 first, guint64 n, float p,
                                  guint8 *restrict bits);
void    _cru_diff_l1_bits_simd   (const float *restrict x, const float *restrict base,
                                  const guint8 *restrict bits, guint64 n, double acc[2]);
void    _cru_diff_mask_scale_bits_simd (float *restrict delta, const float *restrict x,
                                        const float *restrict base,
                                        const guint8 *restrict bits, guint64 n,
                                        CruKernelScale scale, float factor, float w);

/* cru-kernels-avx512.c */
gboolean _cru_kernels_avx512_supported (void);
void    _cru_random_bits_avx512  (const CruRng *rng, guint64 first, guint64 n, float p,
                                  guint8 *restrict bits);
void    _cru_diff_l1_bits_avx512 (const float *restrict x, const float *restrict base,
                                  const guint8 *restrict bits, guint64 n, double acc[2]);
void    _cru_diff_mask_scale_bits_avx512 (float *restrict delta, const float *restrict x,
                                          const float *restrict base,
                                          const guint8 *restrict bits, guint64 n,
                                          CruKernelScale scale, float factor, float w);
G_END_DECLS
