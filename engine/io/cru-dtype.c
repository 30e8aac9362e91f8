/* cru-dtype.c — element types of safetensors files and exact conversions to/from f32
 *
 * The scalar functions here are the reference: the SIMD paths in cru-dtype-simd.c must give
 * the same bits for every input (the io tests compare them exhaustively for 16-bit inputs).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-dtype.h"
#include "cru-dtype-private.h"

#include <math.h>
#include <string.h>

static const struct {
  const char *name;
  const char *torch;
  gsize       size;
} dtype_table[CRU_DTYPE_N] = {
  [CRU_DTYPE_INVALID] = { NULL, NULL, 0 },
  [CRU_DTYPE_F64]     = { "F64", "float64", 8 },
  [CRU_DTYPE_F32]     = { "F32", "float32", 4 },
  [CRU_DTYPE_F16]     = { "F16", "float16", 2 },
  [CRU_DTYPE_BF16]    = { "BF16", "bfloat16", 2 },
  [CRU_DTYPE_I64]     = { "I64", "int64", 8 },
  [CRU_DTYPE_I32]     = { "I32", "int32", 4 },
  [CRU_DTYPE_I16]     = { "I16", "int16", 2 },
  [CRU_DTYPE_I8]      = { "I8", "int8", 1 },
  [CRU_DTYPE_U64]     = { "U64", "uint64", 8 },
  [CRU_DTYPE_U32]     = { "U32", "uint32", 4 },
  [CRU_DTYPE_U16]     = { "U16", "uint16", 2 },
  [CRU_DTYPE_U8]      = { "U8", "uint8", 1 },
  [CRU_DTYPE_BOOL]    = { "BOOL", "bool", 1 },
  [CRU_DTYPE_F8_E4M3] = { "F8_E4M3", "float8_e4m3fn", 1 },
  [CRU_DTYPE_F8_E5M2] = { "F8_E5M2", "float8_e5m2", 1 },
};

gsize
cru_dtype_size (CruDType dtype)
{
  if ((guint) dtype >= CRU_DTYPE_N)
    return 0;
  return dtype_table[dtype].size;
}

const char *
cru_dtype_to_string (CruDType dtype)
{
  if ((guint) dtype >= CRU_DTYPE_N)
    return NULL;
  return dtype_table[dtype].name;
}

const char *
cru_dtype_to_torch_string (CruDType dtype)
{
  if ((guint) dtype >= CRU_DTYPE_N)
    return NULL;
  return dtype_table[dtype].torch;
}

CruDType
cru_dtype_from_string (const char *str)
{
  if (str == NULL)
    return CRU_DTYPE_INVALID;
  for (guint i = 1; i < CRU_DTYPE_N; i++)
    if (strcmp (str, dtype_table[i].name) == 0)
      return (CruDType) i;
  return CRU_DTYPE_INVALID;
}

CruDType
cru_dtype_from_user_string (const char *str)
{
  static const struct { const char *alias; CruDType dtype; } aliases[] = {
    { "f32", CRU_DTYPE_F32 }, { "float32", CRU_DTYPE_F32 }, { "fp32", CRU_DTYPE_F32 },
    { "float", CRU_DTYPE_F32 },
    { "f16", CRU_DTYPE_F16 }, { "float16", CRU_DTYPE_F16 }, { "fp16", CRU_DTYPE_F16 },
    { "half", CRU_DTYPE_F16 },
    { "bf16", CRU_DTYPE_BF16 }, { "bfloat16", CRU_DTYPE_BF16 },
    { "f64", CRU_DTYPE_F64 }, { "float64", CRU_DTYPE_F64 }, { "double", CRU_DTYPE_F64 },
    { "float8_e4m3fn", CRU_DTYPE_F8_E4M3 }, { "float8_e5m2", CRU_DTYPE_F8_E5M2 },
  };

  if (str == NULL)
    return CRU_DTYPE_INVALID;
  if (g_str_has_prefix (str, "torch."))
    str += strlen ("torch.");
  for (guint i = 0; i < G_N_ELEMENTS (aliases); i++)
    if (g_ascii_strcasecmp (str, aliases[i].alias) == 0)
      return aliases[i].dtype;
  for (guint i = 1; i < CRU_DTYPE_N; i++)
    if (g_ascii_strcasecmp (str, dtype_table[i].name) == 0
        || g_ascii_strcasecmp (str, dtype_table[i].torch) == 0)
      return (CruDType) i;
  return CRU_DTYPE_INVALID;
}

gboolean
cru_dtype_is_convertible (CruDType dtype)
{
  return dtype > CRU_DTYPE_INVALID && dtype < CRU_DTYPE_N;
}

/* ---- scalar reference conversions ------------------------------------------------- */

static inline uint32_t
f32_bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  return u;
}

static inline float
bits_f32 (uint32_t u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

float
cru_bf16_to_f32 (uint16_t h)
{
  return bits_f32 ((uint32_t) h << 16);
}

uint16_t
cru_f32_to_bf16 (float f)
{
  uint32_t u = f32_bits (f);

  if ((u & 0x7fffffffu) > 0x7f800000u)
    return CRU_BF16_CANONICAL_NAN;
  /* Round to nearest even; an overflow carries into the exponent and gives ±Inf. */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}

float
cru_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;

  if (exp == 0x1f)
    /* Inf, or NaN quieted with its payload kept (what vcvtph2ps does). */
    return bits_f32 (sign | 0x7f800000u | (mant ? 0x00400000u | (mant << 13) : 0));
  if (exp == 0)
    {
      if (mant == 0)
        return bits_f32 (sign);
      /* Subnormal: normalise. */
      int e = -1;
      do
        {
          mant <<= 1;
          e++;
        }
      while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      return bits_f32 (sign | ((uint32_t) (127 - 15 - e) << 23) | (mant << 13));
    }
  return bits_f32 (sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t
cru_f32_to_f16 (float f)
{
  uint32_t x = f32_bits (f);
  uint16_t sign = (uint16_t) ((x >> 16) & 0x8000u);

  x &= 0x7fffffffu;
  if (x > 0x7f800000u)
    return CRU_F16_CANONICAL_NAN;
  if (x >= 0x477ff000u)           /* ≥ 65520: rounds (ties to even) to Inf */
    return sign | 0x7c00u;
  if (x < 0x38800000u)            /* below the smallest normal half, 2^-14 */
    {
      if (x <= 0x33000000u)       /* ≤ 2^-25: rounds to zero (2^-25 is a tie → even) */
        return sign;
      int e = (int) (x >> 23);
      uint32_t m = (x & 0x7fffffu) | 0x800000u;
      int shift = 126 - e;        /* 14 … 24 */
      uint32_t r = m >> shift;
      uint32_t rem = m & ((1u << shift) - 1u);
      uint32_t half = 1u << (shift - 1);
      if (rem > half || (rem == half && (r & 1u)))
        r++;
      return sign | (uint16_t) r;
    }
  x -= 0x38000000u;               /* rebias the exponent from 127 to 15 */
  x = (x + 0xfffu + ((x >> 13) & 1u)) >> 13;
  return sign | (uint16_t) x;
}

/* float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN. */
static float
f8_e4m3_to_f32 (uint8_t b)
{
  uint32_t sign = (uint32_t) (b & 0x80u) << 24;
  uint32_t exp = (b >> 3) & 0xfu;
  uint32_t mant = b & 0x7u;

  if (exp == 0xf && mant == 0x7)
    return bits_f32 (sign | 0x7fc00000u);
  if (exp == 0)
    return (b & 0x80u ? -1.0f : 1.0f) * ldexpf ((float) mant, -9);
  return bits_f32 (sign | ((exp + 127 - 7) << 23) | (mant << 20));
}

/* float8_e5m2 is the top byte of an IEEE half. */
static float
f8_e5m2_to_f32 (uint8_t b)
{
  return cru_f16_to_f32 ((uint16_t) b << 8);
}

/* ---- bulk conversions ------------------------------------------------------------- */

static gboolean simd_enabled = TRUE;

void
cru_dtype_set_simd_enabled (gboolean enabled)
{
  simd_enabled = enabled;
}

gboolean
cru_dtype_simd_available (void)
{
  return _cru_dtype_simd_supported ();
}

static inline gboolean
use_simd (void)
{
  return simd_enabled && _cru_dtype_simd_supported ();
}

/* Element loops read element i before writing dst[i], going forward: this lets callers
 * widen in place from the tail of @dst (see cru_safetensors_read_f32). No restrict here. */
#define WIDEN_LOOP(type, expr)                     \
  do                                               \
    {                                              \
      const type *s = src;                         \
      for (gsize i = 0; i < n; i++)                \
        {                                          \
          type v;                                  \
          memcpy (&v, s + i, sizeof v);            \
          dst[i] = (expr);                         \
        }                                          \
    }                                              \
  while (0)

void
cru_convert_to_f32 (CruDType dtype, const void *src, float *dst, gsize n)
{
  switch (dtype)
    {
    case CRU_DTYPE_F32:
      if ((const void *) dst != src)
        memmove (dst, src, n * 4);
      break;
    case CRU_DTYPE_F64:  WIDEN_LOOP (double, (float) v); break;
    case CRU_DTYPE_BF16:
      if (use_simd ())
        _cru_bf16_to_f32_simd (src, dst, n);
      else
        WIDEN_LOOP (uint16_t, cru_bf16_to_f32 (v));
      break;
    case CRU_DTYPE_F16:
      if (use_simd ())
        _cru_f16_to_f32_simd (src, dst, n);
      else
        WIDEN_LOOP (uint16_t, cru_f16_to_f32 (v));
      break;
    case CRU_DTYPE_I64:  WIDEN_LOOP (int64_t, (float) v); break;
    case CRU_DTYPE_I32:  WIDEN_LOOP (int32_t, (float) v); break;
    case CRU_DTYPE_I16:  WIDEN_LOOP (int16_t, (float) v); break;
    case CRU_DTYPE_I8:   WIDEN_LOOP (int8_t, (float) v); break;
    case CRU_DTYPE_U64:  WIDEN_LOOP (uint64_t, (float) v); break;
    case CRU_DTYPE_U32:  WIDEN_LOOP (uint32_t, (float) v); break;
    case CRU_DTYPE_U16:  WIDEN_LOOP (uint16_t, (float) v); break;
    case CRU_DTYPE_U8:   WIDEN_LOOP (uint8_t, (float) v); break;
    case CRU_DTYPE_BOOL: WIDEN_LOOP (uint8_t, v ? 1.0f : 0.0f); break;
    case CRU_DTYPE_F8_E4M3: WIDEN_LOOP (uint8_t, f8_e4m3_to_f32 (v)); break;
    case CRU_DTYPE_F8_E5M2: WIDEN_LOOP (uint8_t, f8_e5m2_to_f32 (v)); break;
    case CRU_DTYPE_INVALID:
    case CRU_DTYPE_N:
    default:
      g_return_if_reached ();
    }
}

void
cru_convert_from_f32 (CruDType dtype, const float *src, void *dst, gsize n)
{
  switch (dtype)
    {
    case CRU_DTYPE_F32:
      if ((const void *) src != dst)
        memmove (dst, src, n * 4);
      break;
    case CRU_DTYPE_F64:
      {
        double *d = dst;
        /* Backwards, so that an in-place widening from the front of @dst works. */
        for (gsize i = n; i-- > 0;)
          d[i] = (double) src[i];
      }
      break;
    case CRU_DTYPE_BF16:
      if (use_simd ())
        _cru_f32_to_bf16_simd (src, dst, n);
      else
        {
          uint16_t *d = dst;
          for (gsize i = 0; i < n; i++)
            d[i] = cru_f32_to_bf16 (src[i]);
        }
      break;
    case CRU_DTYPE_F16:
      if (use_simd ())
        _cru_f32_to_f16_simd (src, dst, n);
      else
        {
          uint16_t *d = dst;
          for (gsize i = 0; i < n; i++)
            d[i] = cru_f32_to_f16 (src[i]);
        }
      break;
    default:
      g_return_if_reached ();
    }
}
