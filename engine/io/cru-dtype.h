/* cru-dtype.h — element types of safetensors files and exact conversions to/from f32
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum {
  CRU_DTYPE_INVALID = 0,
  CRU_DTYPE_F64,
  CRU_DTYPE_F32,
  CRU_DTYPE_F16,
  CRU_DTYPE_BF16,
  CRU_DTYPE_I64,
  CRU_DTYPE_I32,
  CRU_DTYPE_I16,
  CRU_DTYPE_I8,
  CRU_DTYPE_U64,
  CRU_DTYPE_U32,
  CRU_DTYPE_U16,
  CRU_DTYPE_U8,
  CRU_DTYPE_BOOL,
  CRU_DTYPE_F8_E4M3,
  CRU_DTYPE_F8_E5M2,
  CRU_DTYPE_N
} CruDType;

/* Bytes per element (0 for INVALID). */
gsize       cru_dtype_size        (CruDType dtype);
/* safetensors spelling: "F32", "BF16", … ; NULL for INVALID. */
const char *cru_dtype_to_string   (CruDType dtype);
/* Parses the safetensors spelling; CRU_DTYPE_INVALID when unknown. */
CruDType    cru_dtype_from_string (const char *str);
/* Parses user spellings: "f32", "float32", "bf16", "bfloat16", "f16", "float16", "fp16" …
 * (case-insensitive); also the safetensors ones. */
CruDType    cru_dtype_from_user_string (const char *str);
/* transformers' torch_dtype spelling: "float32", "bfloat16", "float16". */
const char *cru_dtype_to_torch_string (CruDType dtype);
/* TRUE for dtypes that can be converted to f32 (all numeric ones and BOOL). */
gboolean    cru_dtype_is_convertible (CruDType dtype);

/* Exact widening of n elements of @dtype at @src into f32 at @dst. */
void cru_convert_to_f32   (CruDType dtype, const void *src, float *dst, gsize n);
/* Narrowing of n f32 elements into @dtype: F32 copies, F16/BF16 round to nearest even,
 * overflow → ±Inf, subnormals exact, any NaN → one canonical quiet NaN (0x7fc0 bf16, 0x7e00 f16).
 * Only F32, F16, BF16 (and F64) are valid output dtypes. */
void cru_convert_from_f32 (CruDType dtype, const float *src, void *dst, gsize n);

/* Scalar reference conversions (the SIMD paths must match them bit for bit). */
float    cru_bf16_to_f32 (uint16_t h);
uint16_t cru_f32_to_bf16 (float f);
float    cru_f16_to_f32  (uint16_t h);
uint16_t cru_f32_to_f16  (float f);

/* Force the scalar paths (tests compare them with the SIMD ones). */
void     cru_dtype_set_simd_enabled (gboolean enabled);
gboolean cru_dtype_simd_available (void);

G_END_DECLS
