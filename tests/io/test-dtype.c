/* test-dtype.c — exact dtype conversions, SIMD against scalar bit for bit
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-dtype.h"

#include <math.h>
#include <string.h>

static uint32_t
bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  return u;
}

static float
from_bits (uint32_t u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

/* Independent expectation of an f16 value: sign · mantissa · 2^exponent with ldexp. */
static double
f16_expected (uint16_t h)
{
  int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v;

  if (exp == 31)
    return mant ? NAN : (sign ? -INFINITY : INFINITY);
  v = exp == 0 ? ldexp (mant, -24) : ldexp (1024 + mant, exp - 25);
  return sign ? -v : v;
}

static void
test_f16_to_f32_all (void)
{
  for (guint i = 0; i < 65536; i++)
    {
      float got = cru_f16_to_f32 ((uint16_t) i);
      double want = f16_expected ((uint16_t) i);

      if (isnan (want))
        {
          g_assert_true (isnan (got));
          /* Quieted, payload and sign kept (as vcvtph2ps does). */
          g_assert_cmphex (bits (got), ==, ((i & 0x8000u) << 16) | 0x7fc00000u | ((i & 0x3ffu) << 13));
        }
      else
        {
          g_assert_cmpfloat ((double) got, ==, want);
          g_assert_cmpint (signbit (got) != 0, ==, (i & 0x8000) != 0);
        }
    }
}

static void
test_bf16_to_f32_all (void)
{
  for (guint i = 0; i < 65536; i++)
    {
      float got = cru_bf16_to_f32 ((uint16_t) i);
      int sign = i >> 15, exp = (i >> 7) & 255, mant = i & 127;
      double want;

      if (exp == 255)
        {
          g_assert_true (mant ? isnan (got) : isinf (got));
          g_assert_cmphex (bits (got), ==, (uint32_t) i << 16);
          continue;
        }
      want = exp == 0 ? ldexp (mant, -133) : ldexp (128 + mant, exp - 134);
      g_assert_cmpfloat ((double) got, ==, sign ? -want : want);
      g_assert_cmpint (signbit (got) != 0, ==, sign);
    }
}

/* Independent rounding: the nearest of the neighbouring halves (found by binary search over
 * all of them, computed with ldexp), ties to the even one, in double arithmetic. */
static uint16_t
f16_reference (float f)
{
  static double table[31744];   /* all finite non-negative halves, increasing */
  static gboolean init;
  double x = fabs ((double) f);
  uint16_t sign = signbit (f) ? 0x8000 : 0;
  guint lo = 0, hi = 31743;

  if (!init)
    {
      for (guint i = 0; i < 31744; i++)
        table[i] = f16_expected ((uint16_t) i);
      init = TRUE;
    }
  if (isnan (f))
    return 0x7e00;
  if (x >= 65520.0)   /* halfway between 65504 and 2^16: ties go to the even one, Inf */
    return sign | 0x7c00;
  if (x >= table[hi])
    return sign | (uint16_t) hi;
  while (hi - lo > 1)   /* table[lo] <= x < table[hi] */
    {
      guint mid = (lo + hi) / 2;
      if (table[mid] <= x)
        lo = mid;
      else
        hi = mid;
    }
  if (x - table[lo] < table[hi] - x)
    return sign | (uint16_t) lo;
  if (x - table[lo] > table[hi] - x)
    return sign | (uint16_t) hi;
  return sign | (uint16_t) ((lo & 1) ? hi : lo);
}

static uint16_t
bf16_reference (float f)
{
  uint32_t u = bits (f);
  uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
  double x = (double) f, a = (double) from_bits (lo), b;

  if (isnan (f))
    return 0x7fc0;
  if (isinf (f))
    return (uint16_t) (u >> 16);
  /* hi may be ±Inf (the exponent carried into 255): its distance is measured to ±2^128. */
  if (((hi >> 23) & 0xff) == 0xff)
    b = (signbit (f) ? -1 : 1) * ldexp (1.0, 128);
  else
    b = (double) from_bits (hi);
  if (fabs (x - a) < fabs (b - x))
    return (uint16_t) (lo >> 16);
  if (fabs (x - a) > fabs (b - x))
    return (uint16_t) (hi >> 16);
  return (uint16_t) (((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

static const uint32_t edge_cases[] = {
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000,
  0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xffffffff, 0x7fffffff,  /* NaNs */
  0x00000001, 0x80000001, 0x007fffff, 0x00800000, 0x00800001,             /* subnormals */
  0x7f7fffff, 0xff7fffff,                                                 /* max finite */
  0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000, 0xc77ff000, /* f16 max/overflow */
  0x38800000, 0x387fffff, 0x387fc000, 0x33800000, 0x33000000, 0x33000001, /* f16 subnormal edges */
  0x32ffffff, 0x33400000, 0x33c00000, 0x34200000, 0x38000000,
  0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff,                         /* bf16 ties */
  0x3f801000, 0x3f803000, 0x3f800fff, 0x3f801001,                         /* f16 ties */
  0x7f7f8000, 0x7f7f7fff, 0x7f7fc000,                                     /* bf16 overflow */
  0x00008000, 0x00018000, 0x80008000,                                     /* bf16 subnormal ties */
};

static void
test_f32_to_f16_edges (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (edge_cases); i++)
    {
      float f = from_bits (edge_cases[i]);
      g_test_message ("f16 edge %08x", edge_cases[i]);
      g_assert_cmphex (cru_f32_to_f16 (f), ==, f16_reference (f));
    }
  g_assert_cmphex (cru_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmphex (cru_f32_to_f16 (65519.996f), ==, 0x7bff);
  g_assert_cmphex (cru_f32_to_f16 (65520.0f), ==, 0x7c00);
  g_assert_cmphex (cru_f32_to_f16 (-1e30f), ==, 0xfc00);
  g_assert_cmphex (cru_f32_to_f16 (ldexpf (1, -24)), ==, 0x0001);
  g_assert_cmphex (cru_f32_to_f16 (ldexpf (1, -25)), ==, 0x0000);   /* tie → even (0) */
  g_assert_cmphex (cru_f32_to_f16 (ldexpf (3, -25)), ==, 0x0002);   /* tie → even (2) */
  g_assert_cmphex (cru_f32_to_f16 (ldexpf (1, -14)), ==, 0x0400);
  g_assert_cmphex (cru_f32_to_f16 (1.0f + ldexpf (1, -11)), ==, 0x3c00);  /* tie → even */
  g_assert_cmphex (cru_f32_to_f16 (1.0f + 3 * ldexpf (1, -11)), ==, 0x3c02);
  g_assert_cmphex (cru_f32_to_f16 (NAN), ==, 0x7e00);
  g_assert_cmphex (cru_f32_to_f16 (-NAN), ==, 0x7e00);
  g_assert_cmphex (cru_f32_to_f16 (from_bits (0x7f800001)), ==, 0x7e00);
}

static void
test_f32_to_bf16_edges (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (edge_cases); i++)
    {
      float f = from_bits (edge_cases[i]);
      g_test_message ("bf16 edge %08x", edge_cases[i]);
      g_assert_cmphex (cru_f32_to_bf16 (f), ==, bf16_reference (f));
    }
  g_assert_cmphex (cru_f32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0x3f808000)), ==, 0x3f80);  /* tie → even */
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0x3f818000)), ==, 0x3f82);  /* tie → even */
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0x7f7fffff)), ==, 0x7f80);  /* overflow → Inf */
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0x7f7f7fff)), ==, 0x7f7f);
  g_assert_cmphex (cru_f32_to_bf16 (NAN), ==, 0x7fc0);
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0xff800001)), ==, 0x7fc0);
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0x00000001)), ==, 0x0000);
  g_assert_cmphex (cru_f32_to_bf16 (from_bits (0x00018000)), ==, 0x0002);
}

static void
test_f32_random_sample (void)
{
  GRand *rand = g_rand_new_with_seed (20240601);
  guint n = g_test_slow () ? 20000000 : 2000000;

  for (guint i = 0; i < n; i++)
    {
      uint32_t u = g_rand_int (rand);
      float f = from_bits (u);
      uint16_t h = cru_f32_to_f16 (f), b = cru_f32_to_bf16 (f);
      if (h != f16_reference (f) || b != bf16_reference (f))
        g_error ("f32 %08x: f16 %04x (want %04x), bf16 %04x (want %04x)", u, h,
                 f16_reference (f), b, bf16_reference (f));
    }
  g_rand_free (rand);
}

/* f32 patterns: the edge cases, every f16 value widened, every bf16 prefix with random low
 * bits, and random bits. */
static float *
make_f32_patterns (gsize *n_out)
{
  gsize n = G_N_ELEMENTS (edge_cases) + 2 * 65536 + 1000003;
  float *v = g_new (float, n);
  GRand *rand = g_rand_new_with_seed (7);
  gsize k = 0;

  for (guint i = 0; i < G_N_ELEMENTS (edge_cases); i++)
    v[k++] = from_bits (edge_cases[i]);
  for (guint i = 0; i < 65536; i++)
    {
      v[k++] = cru_f16_to_f32 ((uint16_t) i);
      v[k++] = from_bits (((uint32_t) i << 16) | (g_rand_int (rand) & 0xffff));
    }
  while (k < n)
    v[k++] = from_bits (g_rand_int (rand));
  g_rand_free (rand);
  *n_out = n;
  return v;
}

static void
test_simd_matches_scalar (void)
{
  gsize n;
  g_autofree float *src = NULL;
  g_autofree uint16_t *all16 = g_new (uint16_t, 65536);
  g_autofree float *a = g_new (float, 65536);
  g_autofree float *b = g_new (float, 65536);
  g_autofree uint16_t *ha = NULL;
  g_autofree uint16_t *hb = NULL;

  if (!cru_dtype_simd_available ())
    {
      g_test_skip ("this CPU lacks AVX2/F16C: only the scalar conversions are used");
      return;
    }
  for (guint i = 0; i < 65536; i++)
    all16[i] = (uint16_t) i;

  for (int d = 0; d < 2; d++)
    {
      CruDType dt = d ? CRU_DTYPE_BF16 : CRU_DTYPE_F16;
      cru_dtype_set_simd_enabled (FALSE);
      cru_convert_to_f32 (dt, all16, a, 65536);
      cru_dtype_set_simd_enabled (TRUE);
      cru_convert_to_f32 (dt, all16, b, 65536);
      for (guint i = 0; i < 65536; i++)
        if (bits (a[i]) != bits (b[i]))
          g_error ("%s %04x → f32: scalar %08x, SIMD %08x", cru_dtype_to_string (dt), i,
                   bits (a[i]), bits (b[i]));
    }

  src = make_f32_patterns (&n);
  ha = g_new (uint16_t, n);
  hb = g_new (uint16_t, n);
  for (int d = 0; d < 2; d++)
    {
      CruDType dt = d ? CRU_DTYPE_BF16 : CRU_DTYPE_F16;
      cru_dtype_set_simd_enabled (FALSE);
      cru_convert_from_f32 (dt, src, ha, n);
      cru_dtype_set_simd_enabled (TRUE);
      cru_convert_from_f32 (dt, src, hb, n);
      for (gsize i = 0; i < n; i++)
        if (ha[i] != hb[i])
          g_error ("f32 %08x → %s: scalar %04x, SIMD %04x", bits (src[i]),
                   cru_dtype_to_string (dt), ha[i], hb[i]);
    }
}

/* Every length 0…40, scalar and SIMD: the SIMD tails, and widening in place from the tail of
 * the f32 buffer (how cru_safetensors_read_f32 reads). */
static void
test_simd_lengths_and_in_place (void)
{
  for (int simd = 0; simd < 2; simd++)
    {
      cru_dtype_set_simd_enabled (simd);
      for (gsize n = 0; n <= 40; n++)
        for (int d = 0; d < 2; d++)
          {
            CruDType dt = d ? CRU_DTYPE_BF16 : CRU_DTYPE_F16;
            float buf[48], want[48];
            uint16_t h[48];

            for (gsize i = 0; i < n; i++)
              h[i] = (uint16_t) (0x3c00 + 37 * i + 1000 * d);
            for (gsize i = 0; i < n; i++)
              want[i] = dt == CRU_DTYPE_BF16 ? cru_bf16_to_f32 (h[i]) : cru_f16_to_f32 (h[i]);
            memcpy ((guint8 *) buf + n * 2, h, n * 2);
            cru_convert_to_f32 (dt, (guint8 *) buf + n * 2, buf, n);
            for (gsize i = 0; i < n; i++)
              g_assert_cmphex (bits (buf[i]), ==, bits (want[i]));
          }
    }
  cru_dtype_set_simd_enabled (TRUE);
}

static void
test_widening_other_types (void)
{
  float out[8];
  const int8_t i8[] = { -128, -1, 0, 127 };
  const uint8_t u8[] = { 0, 1, 200, 255 };
  const int16_t i16[] = { -32768, -2, 3, 32767 };
  const uint16_t u16[] = { 0, 65535 };
  const int32_t i32[] = { -2147483647 - 1, 16777217, 5 };
  const uint32_t u32[] = { 4294967295u, 7 };
  const int64_t i64[] = { -9, (int64_t) 1 << 40 };
  const uint64_t u64[] = { 3, (uint64_t) 1 << 63 };
  const double f64[] = { 0.1, -1e300, 1e-50 };
  const uint8_t boolean[] = { 0, 1, 2, 255 };
  /* e4m3fn: 0x7e = 448 (max), 0x01 = 2^-9, 0x38 = 1, 0xb8 = -1, 0x7f NaN, 0x08 = 2^-6, 0x80 = -0 */
  const uint8_t e4m3[] = { 0x7e, 0x01, 0x38, 0xb8, 0x7f, 0x08, 0x80 };
  /* e5m2: 0x7b = 57344 (max), 0x7c = Inf, 0x01 = 2^-16, 0x3c = 1, 0x7e NaN, 0xbc = -1 */
  const uint8_t e5m2[] = { 0x7b, 0x7c, 0x01, 0x3c, 0x7e, 0xbc };

  cru_convert_to_f32 (CRU_DTYPE_I8, i8, out, 4);
  g_assert_cmpfloat (out[0], ==, -128);
  g_assert_cmpfloat (out[3], ==, 127);
  cru_convert_to_f32 (CRU_DTYPE_U8, u8, out, 4);
  g_assert_cmpfloat (out[2], ==, 200);
  g_assert_cmpfloat (out[3], ==, 255);
  cru_convert_to_f32 (CRU_DTYPE_I16, i16, out, 4);
  g_assert_cmpfloat (out[0], ==, -32768);
  g_assert_cmpfloat (out[2], ==, 3);
  cru_convert_to_f32 (CRU_DTYPE_U16, u16, out, 2);
  g_assert_cmpfloat (out[1], ==, 65535);
  cru_convert_to_f32 (CRU_DTYPE_I32, i32, out, 3);
  g_assert_cmpfloat (out[0], ==, -2147483648.0);
  g_assert_cmpfloat (out[1], ==, 16777216.0);
  cru_convert_to_f32 (CRU_DTYPE_U32, u32, out, 2);
  g_assert_cmpfloat (out[0], ==, 4294967296.0);
  cru_convert_to_f32 (CRU_DTYPE_I64, i64, out, 2);
  g_assert_cmpfloat (out[0], ==, -9);
  g_assert_cmpfloat (out[1], ==, 1099511627776.0);
  cru_convert_to_f32 (CRU_DTYPE_U64, u64, out, 2);
  g_assert_cmpfloat (out[1], ==, 9223372036854775808.0);
  cru_convert_to_f32 (CRU_DTYPE_F64, f64, out, 3);
  g_assert_cmpfloat (out[0], ==, 0.1f);
  g_assert_true (isinf (out[1]) && out[1] < 0);
  g_assert_cmpfloat (out[2], ==, 0.0f);
  cru_convert_to_f32 (CRU_DTYPE_BOOL, boolean, out, 4);
  g_assert_cmpfloat (out[0], ==, 0);
  g_assert_cmpfloat (out[1], ==, 1);
  g_assert_cmpfloat (out[2], ==, 1);
  g_assert_cmpfloat (out[3], ==, 1);
  cru_convert_to_f32 (CRU_DTYPE_F8_E4M3, e4m3, out, 7);
  g_assert_cmpfloat (out[0], ==, 448);
  g_assert_cmpfloat (out[1], ==, ldexp (1, -9));
  g_assert_cmpfloat (out[2], ==, 1);
  g_assert_cmpfloat (out[3], ==, -1);
  g_assert_true (isnan (out[4]));
  g_assert_cmpfloat (out[5], ==, ldexp (1, -6));
  g_assert_true (out[6] == 0 && signbit (out[6]));
  cru_convert_to_f32 (CRU_DTYPE_F8_E5M2, e5m2, out, 6);
  g_assert_cmpfloat (out[0], ==, 57344);
  g_assert_true (isinf (out[1]));
  g_assert_cmpfloat (out[2], ==, ldexp (1, -16));
  g_assert_cmpfloat (out[3], ==, 1);
  g_assert_true (isnan (out[4]));
  g_assert_cmpfloat (out[5], ==, -1);
}

static void
test_names (void)
{
  static const char *const names[] = {
    "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL",
    "F8_E4M3", "F8_E5M2",
  };
  static const gsize sizes[] = { 8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1, 1 };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      CruDType d = cru_dtype_from_string (names[i]);
      g_assert_cmpint (d, !=, CRU_DTYPE_INVALID);
      g_assert_cmpstr (cru_dtype_to_string (d), ==, names[i]);
      g_assert_cmpuint (cru_dtype_size (d), ==, sizes[i]);
      g_assert_true (cru_dtype_is_convertible (d));
    }
  g_assert_cmpint (cru_dtype_from_string ("f32"), ==, CRU_DTYPE_INVALID);
  g_assert_cmpint (cru_dtype_from_string ("F4"), ==, CRU_DTYPE_INVALID);
  g_assert_cmpint (cru_dtype_from_user_string ("bfloat16"), ==, CRU_DTYPE_BF16);
  g_assert_cmpint (cru_dtype_from_user_string ("FP16"), ==, CRU_DTYPE_F16);
  g_assert_cmpint (cru_dtype_from_user_string ("torch.float32"), ==, CRU_DTYPE_F32);
  g_assert_cmpint (cru_dtype_from_user_string ("float8"), ==, CRU_DTYPE_INVALID);
  g_assert_cmpstr (cru_dtype_to_torch_string (CRU_DTYPE_BF16), ==, "bfloat16");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/io/dtype/names-and-sizes", test_names);
  g_test_add_func ("/io/dtype/f16-to-f32-all-65536-exact", test_f16_to_f32_all);
  g_test_add_func ("/io/dtype/bf16-to-f32-all-65536-exact", test_bf16_to_f32_all);
  g_test_add_func ("/io/dtype/f32-to-f16-edge-cases", test_f32_to_f16_edges);
  g_test_add_func ("/io/dtype/f32-to-bf16-edge-cases", test_f32_to_bf16_edges);
  g_test_add_func ("/io/dtype/f32-random-bit-patterns-round-correctly", test_f32_random_sample);
  g_test_add_func ("/io/dtype/simd-matches-scalar-bit-for-bit", test_simd_matches_scalar);
  g_test_add_func ("/io/dtype/simd-tails-and-in-place-widening", test_simd_lengths_and_in_place);
  g_test_add_func ("/io/dtype/other-types-widen-exactly", test_widening_other_types);
  return g_test_run ();
}
