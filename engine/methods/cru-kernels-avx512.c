/* cru-kernels-avx512.c — AVX-512 twins of DARE's bit kernels (cru-kernels.h)
 *
 * Drawing DARE's Philox masks was most of its time with AVX2; with 512-bit lanes a round
 * handles eight blocks per multiply, the three-way XORs are one instruction, and the
 * comparisons give mask bits directly. As in cru-kernels-simd.c, every element gets exactly
 * the scalar code's operations (the engine is built with -ffp-contract=off, so no multiply
 * and add fuse), and the tails go to the scalar twins.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-kernels-private.h"

#include <math.h>
#include <string.h>

#include "cru-fixed-sum.h"

#if defined(__x86_64__)
#include <immintrin.h>

gboolean
_cru_kernels_avx512_supported (void)
{
  static int supported = -1;   /* atomic: worker threads ask at the same time */
  int v = g_atomic_int_get (&supported);

  if (v < 0)
    {
      __builtin_cpu_init ();
      v = __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
          && __builtin_cpu_supports ("avx512dq") && __builtin_cpu_supports ("avx512vl")
          && __builtin_cpu_supports ("bmi2") && __builtin_cpu_supports ("avx2");
      g_atomic_int_set (&supported, v);
    }
  return v;
}

#define CRU_AVX512_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512dq,avx512vl,bmi2")))

/* Philox-4x32-10 (cru-rng.c), eight blocks per vector: a block's counter words live in the
 * low halves of 64-bit lanes, where _mm512_mul_epu32 gives a round's whole product. */
typedef struct {
  __m512i c[4];
} Philox8;

static inline __attribute__ ((always_inline)) CRU_AVX512_TARGET void
philox8_init (Philox8 *s, guint64 block, __m512i name, __m512i model)
{
  __m512i b = _mm512_add_epi64 (_mm512_set1_epi64 ((long long) block),
                                _mm512_setr_epi64 (0, 1, 2, 3, 4, 5, 6, 7));

  s->c[0] = b;                          /* the high half is ignored until the end */
  s->c[1] = _mm512_srli_epi64 (b, 32);
  s->c[2] = name;
  s->c[3] = model;
}

static inline __attribute__ ((always_inline)) CRU_AVX512_TARGET void
philox8_round (Philox8 *s, __m512i m0, __m512i m1, __m512i k0, __m512i k1)
{
  __m512i p0 = _mm512_mul_epu32 (s->c[0], m0);
  __m512i p1 = _mm512_mul_epu32 (s->c[2], m1);

  /* (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); 0x96 is the truth table of a ^ b ^ c */
  s->c[0] = _mm512_ternarylogic_epi64 (_mm512_srli_epi64 (p1, 32), s->c[1], k0, 0x96);
  s->c[2] = _mm512_ternarylogic_epi64 (_mm512_srli_epi64 (p0, 32), s->c[3], k1, 0x96);
  s->c[1] = p1;
  s->c[3] = p0;
}

/* The 32 masks of eight blocks in element order (bit 4j + w = word w of block j). The
 * uniform u = (x >> 8) · 2^-24 is below p exactly when the integer x >> 8 is below
 * @threshold (see _cru_random_bits_avx512). */
static inline __attribute__ ((always_inline)) CRU_AVX512_TARGET uint32_t
philox8_bits (const Philox8 *s, __m512i threshold)
{
  const __m512i low = _mm512_set1_epi64 (0xffffffffu);
  uint32_t out = 0;

  for (int w = 0; w < 4; w++)
    {
      __m512i u24 = _mm512_srli_epi64 (_mm512_and_si512 (s->c[w], low), 8);
      __mmask8 m = _mm512_cmplt_epu64_mask (u24, threshold);

      out |= _pdep_u32 (m, 0x11111111u << w);
    }
  return out;
}

static inline void
store_bits32 (guint8 *bits, uint32_t v)
{
  v = GUINT32_TO_LE (v);
  memcpy (bits, &v, 4);
}

/* Thirty-two blocks (128 elements) per step: four independent sets hide the multiplies'
 * latency. */
CRU_AVX512_TARGET void
_cru_random_bits_avx512 (const CruRng *rng, guint64 first, guint64 n, float p,
                         guint8 *restrict bits)
{
  const __m512i m0 = _mm512_set1_epi64 (0xD2511F53u);
  const __m512i m1 = _mm512_set1_epi64 (0xCD9E8D57u);
  const __m512i name = _mm512_set1_epi64 (rng->name_hash);
  const __m512i model = _mm512_set1_epi64 (rng->model_key);
  __m512i k0[10], k1[10], threshold;
  uint32_t a = rng->key[0], b = rng->key[1];
  double t = (double) p * 16777216.0;   /* exact: p is a float */
  guint64 i = 0;

  /* For an integer x < 2^24: x · 2^-24 < p ⟺ x < p · 2^24 ⟺ x < ⌈p · 2^24⌉; a NaN or
   * negative p keeps nothing, a p above 1 everything. */
  if (!(t > 0.0))
    t = 0.0;
  else if (t > 16777216.0)
    t = 16777216.0;
  threshold = _mm512_set1_epi64 ((long long) ceil (t));

  for (int r = 0; r < 10; r++)
    {
      if (r > 0)
        {
          a += 0x9E3779B9u;
          b += 0xBB67AE85u;
        }
      k0[r] = _mm512_set1_epi64 (a);
      k1[r] = _mm512_set1_epi64 (b);
    }
  for (; i + 128 <= n; i += 128)
    {
      guint64 blk = (first + i) / 4;
      Philox8 s0, s1, s2, s3;

      philox8_init (&s0, blk, name, model);
      philox8_init (&s1, blk + 8, name, model);
      philox8_init (&s2, blk + 16, name, model);
      philox8_init (&s3, blk + 24, name, model);
#pragma GCC unroll 10
      for (int r = 0; r < 10; r++)
        {
          philox8_round (&s0, m0, m1, k0[r], k1[r]);
          philox8_round (&s1, m0, m1, k0[r], k1[r]);
          philox8_round (&s2, m0, m1, k0[r], k1[r]);
          philox8_round (&s3, m0, m1, k0[r], k1[r]);
        }
      store_bits32 (bits + i / 8, philox8_bits (&s0, threshold));
      store_bits32 (bits + i / 8 + 4, philox8_bits (&s1, threshold));
      store_bits32 (bits + i / 8 + 8, philox8_bits (&s2, threshold));
      store_bits32 (bits + i / 8 + 12, philox8_bits (&s3, threshold));
    }
  _cru_random_bits_scalar (rng, first, i, n, p, bits);
}

/* Each fixed-sum block's 32 lanes are four vectors of eight doubles; a lane whose bit is
 * clear is left alone, which is adding +0.0: the sums start at +0.0 and their terms are
 * ≥ 0, so they are never −0.0. */
CRU_AVX512_TARGET void
_cru_diff_l1_bits_avx512 (const float *restrict x, const float *restrict base,
                          const guint8 *restrict bits, guint64 n, double acc[2])
{
  guint64 start = 0;

  for (; start + CRU_FIXED_SUM_BLOCK <= n; start += CRU_FIXED_SUM_BLOCK)
    {
      __m512d l0[4], l1[4];
      double lanes0[CRU_FIXED_SUM_LANES], lanes1[CRU_FIXED_SUM_LANES];

      for (int q = 0; q < 4; q++)
        l0[q] = l1[q] = _mm512_setzero_pd ();
      for (guint64 r = 0; r < CRU_FIXED_SUM_BLOCK; r += CRU_FIXED_SUM_LANES)
        {
          guint64 j = start + r;
          __m512 d0 = _mm512_sub_ps (_mm512_loadu_ps (x + j), _mm512_loadu_ps (base + j));
          __m512 d1 = _mm512_sub_ps (_mm512_loadu_ps (x + j + 16),
                                     _mm512_loadu_ps (base + j + 16));
          __m512d t[4];
          uint32_t m;

          memcpy (&m, bits + j / 8, 4);
          m = GUINT32_FROM_LE (m);
          t[0] = _mm512_abs_pd (_mm512_cvtps_pd (_mm512_castps512_ps256 (d0)));
          t[1] = _mm512_abs_pd (_mm512_cvtps_pd (_mm512_extractf32x8_ps (d0, 1)));
          t[2] = _mm512_abs_pd (_mm512_cvtps_pd (_mm512_castps512_ps256 (d1)));
          t[3] = _mm512_abs_pd (_mm512_cvtps_pd (_mm512_extractf32x8_ps (d1, 1)));
          for (int q = 0; q < 4; q++)
            {
              l0[q] = _mm512_add_pd (l0[q], t[q]);
              l1[q] = _mm512_mask_add_pd (l1[q], (__mmask8) (m >> (8 * q)), l1[q], t[q]);
            }
        }
      for (int q = 0; q < 4; q++)
        {
          _mm512_storeu_pd (lanes0 + 8 * q, l0[q]);
          _mm512_storeu_pd (lanes1 + 8 * q, l1[q]);
        }
      acc[0] += cru_fixed_sum_lanes (lanes0);
      acc[1] += cru_fixed_sum_lanes (lanes1);
    }
  _cru_diff_l1_bits_scalar (x, base, bits, start, n, acc);
}

CRU_AVX512_TARGET void
_cru_diff_mask_scale_bits_avx512 (float *restrict delta, const float *restrict x,
                                  const float *restrict base, const guint8 *restrict bits,
                                  guint64 n, CruKernelScale scale, float factor, float w)
{
  const __m512 vw = _mm512_set1_ps (w), vf = _mm512_set1_ps (factor);
  guint64 i = 0;

  for (; i + 16 <= n; i += 16)
    {
      __m512 v = _mm512_sub_ps (_mm512_loadu_ps (x + i), _mm512_loadu_ps (base + i));
      guint16 m;

      memcpy (&m, bits + i / 8, 2);
      v = _mm512_maskz_mov_ps ((__mmask16) GUINT16_FROM_LE (m), v);   /* +0.0 where dropped */
      if (scale == CRU_KERNEL_SCALE_MUL)
        v = _mm512_mul_ps (v, vf);
      else if (scale == CRU_KERNEL_SCALE_DIV)
        v = _mm512_div_ps (v, vf);
      _mm512_storeu_ps (delta + i, _mm512_mul_ps (v, vw));
    }
  _cru_diff_mask_scale_bits_scalar (delta, x, base, bits, i, n, scale, factor, w);
}

#else /* not x86-64: never called, _cru_kernels_avx512_supported () is FALSE */

gboolean
_cru_kernels_avx512_supported (void)
{
  return FALSE;
}

void
_cru_random_bits_avx512 (const CruRng *rng, guint64 first, guint64 n, float p,
                         guint8 *restrict bits)
{
  g_assert_not_reached ();
}

void
_cru_diff_l1_bits_avx512 (const float *restrict x, const float *restrict base,
                          const guint8 *restrict bits, guint64 n, double acc[2])
{
  g_assert_not_reached ();
}

void
_cru_diff_mask_scale_bits_avx512 (float *restrict delta, const float *restrict x,
                                  const float *restrict base, const guint8 *restrict bits,
                                  guint64 n, CruKernelScale scale, float factor, float w)
{
  g_assert_not_reached ();
}

#endif
