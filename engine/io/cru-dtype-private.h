/* cru-dtype-private.h — SIMD kernels of the dtype conversions (cru-dtype-simd.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-dtype.h"

G_BEGIN_DECLS

#define CRU_BF16_CANONICAL_NAN 0x7fc0u
#define CRU_F16_CANONICAL_NAN  0x7e00u

/* TRUE when the CPU has AVX2, F16C and FMA (checked once). */
gboolean _cru_dtype_simd_supported (void);

/* Same contracts as the scalar loops: forward, in-place widening from the tail allowed. */
void _cru_bf16_to_f32_simd (const void *src, float *dst, gsize n);
void _cru_f16_to_f32_simd  (const void *src, float *dst, gsize n);
void _cru_f32_to_bf16_simd (const float *src, void *dst, gsize n);
void _cru_f32_to_f16_simd  (const float *src, void *dst, gsize n);

G_END_DECLS
