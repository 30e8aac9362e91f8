/* cru-kernels-simd.c — AVX2 kernels of cru-kernels.h
 *
 * Only "avx2" is enabled for these functions, not "fma": with FMA available the compiler
 * could fuse a multiply and an add (one rounding instead of two) and the results would
 * differ from the scalar reference. Each kernel handles blocks of 8 and hands the rest to
 * its scalar twin.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-kernels-private.h"

#include <math.h>
#include <string.h>

#include "cru-fixed-sum.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CRU_X86 1
#endif

gboolean
_cru_kernels_simd_supported (void)
{
#ifdef CRU_X86
  static int supported = -1;   /* atomic: worker threads ask at the same time */
  int v = g_atomic_int_get (&supported);

  if (v < 0)
    {
      __builtin_cpu_init ();
      v = __builtin_cpu_supports ("avx2");
      g_atomic_int_set (&supported, v);
    }
  return v;
#else
  return FALSE;
#endif
}

#ifdef CRU_X86

#define CRU_SIMD_TARGET __attribute__ ((target ("avx2")))

CRU_SIMD_TARGET void
_cru_weighted_sum_simd (float *restrict out, const float *const *x, const float *w,
                        int n_models, guint64 n, gboolean divide, float divisor)
{
  const __m256 vdiv = _mm256_set1_ps (divisor);
  const __m256 w0 = _mm256_set1_ps (w[0]);
  guint64 i = 0;

  if (n_models == 2)
    {
      const __m256 w1 = _mm256_set1_ps (w[1]);
      const float *restrict x0 = x[0], *restrict x1 = x[1];

      for (; i + 8 <= n; i += 8)
        {
          __m256 acc = _mm256_mul_ps (w0, _mm256_loadu_ps (x0 + i));
          acc = _mm256_add_ps (acc, _mm256_mul_ps (w1, _mm256_loadu_ps (x1 + i)));
          if (divide)
            acc = _mm256_div_ps (acc, vdiv);
          _mm256_storeu_ps (out + i, acc);
        }
    }
  else
    for (; i + 8 <= n; i += 8)
      {
        __m256 acc = _mm256_mul_ps (w0, _mm256_loadu_ps (x[0] + i));
        for (int m = 1; m < n_models; m++)
          acc = _mm256_add_ps (acc, _mm256_mul_ps (_mm256_set1_ps (w[m]),
                                                   _mm256_loadu_ps (x[m] + i)));
        if (divide)
          acc = _mm256_div_ps (acc, vdiv);
        _mm256_storeu_ps (out + i, acc);
      }
  _cru_weighted_sum_scalar (out, x, w, n_models, i, n, divide, divisor);
}

CRU_SIMD_TARGET void
_cru_lerp2_simd (float *restrict out, const float *restrict a, float sa,
                 const float *restrict b, float sb, guint64 n)
{
  const __m256 va = _mm256_set1_ps (sa), vb = _mm256_set1_ps (sb);
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_add_ps (_mm256_mul_ps (va, _mm256_loadu_ps (a + i)),
                                              _mm256_mul_ps (vb, _mm256_loadu_ps (b + i))));
  _cru_lerp2_scalar (out, a, sa, b, sb, i, n);
}

CRU_SIMD_TARGET void
_cru_sub_simd (float *restrict out, const float *restrict a, const float *restrict b,
               guint64 n)
{
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_sub_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i)));
  _cru_sub_scalar (out, a, b, i, n);
}

CRU_SIMD_TARGET void
_cru_add_base_simd (float *restrict out, const float *restrict base, guint64 n)
{
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_add_ps (_mm256_loadu_ps (base + i), _mm256_loadu_ps (out + i)));
  _cru_add_base_scalar (out, base, i, n);
}

/* byte j of spread_bits[m] = bit j of m */
static guint64 spread_bits[256];

/* byte j of pack_lanes[m] = the index of the (j + 1)-th set bit of m (0 past the last):
 * the lanes _mm256_permutevar8x32_epi32 moves to the front to pack the selected ones */
static guint64 pack_lanes[256];

static void __attribute__ ((constructor))
init_spread_bits (void)
{
  for (guint m = 0; m < 256; m++)
    {
      guint k = 0;

      for (guint j = 0; j < 8; j++)
        {
          spread_bits[m] |= (guint64) ((m >> j) & 1) << (8 * j);
          if (m & (1u << j))
            pack_lanes[m] |= (guint64) j << (8 * k++);
        }
    }
}

CRU_SIMD_TARGET guint64
_cru_topk_mask_simd (const float *restrict v, guint64 n, uint32_t key_t, guint64 take,
                     guint8 *restrict mask)
{
  const __m256i abs_mask = _mm256_set1_epi32 (0x7fffffff);
  const __m256i vt = _mm256_set1_epi32 ((int) key_t);
  guint64 i = 0;

  /* |v| keys are below 2^31, so signed comparisons order them. */
  for (; i + 8 <= n; i += 8)
    {
      __m256i key = _mm256_and_si256 (_mm256_loadu_si256 ((const __m256i *) (v + i)), abs_mask);
      guint keep = (guint) _mm256_movemask_ps (_mm256_castsi256_ps (_mm256_cmpgt_epi32 (key, vt)));
      guint equal = (guint) _mm256_movemask_ps (_mm256_castsi256_ps (_mm256_cmpeq_epi32 (key, vt)));
      guint64 bytes;

      /* Elements equal to the threshold: the first ones by index are kept — all eight
       * while eight or more are still to take (no branch on the data then). */
      if (take >= 8)
        {
          keep |= equal;
          take -= (guint64) __builtin_popcount (equal);
        }
      else
        while (take > 0 && equal != 0)
          {
            keep |= equal & -equal;
            equal &= equal - 1;
            take--;
          }
      bytes = spread_bits[keep];
      memcpy (mask + i, &bytes, 8);
    }
  return _cru_topk_mask_scalar (v, i, n, key_t, take, mask);
}

/* cru_kernel_mask_scale's rule on eight elements: v where @keep (+0.0 elsewhere), times or
 * divided by @vf, times @vw, stored. */
static inline __attribute__ ((always_inline)) CRU_SIMD_TARGET void
store_kept_scaled (float *out, __m256 v, __m256 keep, CruKernelScale scale, __m256 vf,
                   __m256 vw)
{
  v = _mm256_and_ps (keep, v);   /* +0.0 where dropped */
  if (scale == CRU_KERNEL_SCALE_MUL)
    v = _mm256_mul_ps (v, vf);
  else if (scale == CRU_KERNEL_SCALE_DIV)
    v = _mm256_div_ps (v, vf);
  _mm256_storeu_ps (out, _mm256_mul_ps (v, vw));
}

/* _cru_topk_mask_simd and _cru_mask_scale_simd on Δ made in registers: the mask never leaves
 * them. The equal keys to take are the first by index, as there. */
CRU_SIMD_TARGET guint64
_cru_diff_topk_scale_simd (float *restrict delta, const float *restrict x,
                           const float *restrict base, guint64 n, uint32_t key_t, guint64 take,
                           CruKernelScale scale, float factor, float w)
{
  const __m256i abs_mask = _mm256_set1_epi32 (0x7fffffff);
  const __m256i vt = _mm256_set1_epi32 ((int) key_t);
  const __m256i select = _mm256_setr_epi32 (1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 vw = _mm256_set1_ps (w), vf = _mm256_set1_ps (factor);
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_sub_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (base + i));
      __m256i key = _mm256_and_si256 (_mm256_castps_si256 (v), abs_mask);
      __m256i keep = _mm256_cmpgt_epi32 (key, vt);   /* keys are below 2^31: signed is fine */
      __m256i equal = _mm256_cmpeq_epi32 (key, vt);

      if (take >= 8)
        {
          keep = _mm256_or_si256 (keep, equal);
          take -= (guint64) __builtin_popcount (_mm256_movemask_ps (_mm256_castsi256_ps (equal)));
        }
      else if (take > 0)
        {
          guint eq = (guint) _mm256_movemask_ps (_mm256_castsi256_ps (equal)), taken = 0;

          while (take > 0 && eq != 0)
            {
              taken |= eq & -eq;
              eq &= eq - 1;
              take--;
            }
          keep = _mm256_or_si256 (keep, _mm256_cmpeq_epi32 (_mm256_and_si256 (
                                                              _mm256_set1_epi32 ((int) taken),
                                                              select), select));
        }
      store_kept_scaled (delta + i, v, _mm256_castsi256_ps (keep), scale, vf, vw);
    }
  return _cru_diff_topk_scale_scalar (delta, x, base, i, n, key_t, take, scale, factor, w);
}

/* cru-fixed-sum.h's order: in each block of 1024, lane l (0 … 31) adds elements l, l + 32,
 * … in turn — eight vectors of four lanes here — then the lanes' tree and the running
 * total. */
CRU_SIMD_TARGET void
_cru_l1_masked_simd (const float *restrict a, const guint8 *restrict mask, guint64 n,
                     double acc[2])
{
  const __m256d sign = _mm256_set1_pd (-0.0);
  const __m256i zero = _mm256_setzero_si256 ();
  guint64 start = 0;

  for (; start + CRU_FIXED_SUM_BLOCK <= n; start += CRU_FIXED_SUM_BLOCK)
    {
      __m256d l0[8], l1[8];
      double lanes0[CRU_FIXED_SUM_LANES], lanes1[CRU_FIXED_SUM_LANES];

      for (int q = 0; q < 8; q++)
        l0[q] = l1[q] = _mm256_setzero_pd ();
      for (guint64 r = 0; r < CRU_FIXED_SUM_BLOCK; r += CRU_FIXED_SUM_LANES)
        for (int q = 0; q < 8; q++)
          {
            guint64 j = start + r + 4 * (guint64) q;
            __m256d t = _mm256_andnot_pd (sign, _mm256_cvtps_pd (_mm_loadu_ps (a + j)));
            int m4;
            __m256i m;

            memcpy (&m4, mask + j, 4);
            m = _mm256_cvtepu8_epi64 (_mm_cvtsi32_si128 (m4));
            l0[q] = _mm256_add_pd (l0[q], t);
            l1[q] = _mm256_add_pd (l1[q], _mm256_andnot_pd (_mm256_castsi256_pd (
                                                              _mm256_cmpeq_epi64 (m, zero)), t));
          }
      for (int q = 0; q < 8; q++)
        {
          _mm256_storeu_pd (lanes0 + 4 * q, l0[q]);
          _mm256_storeu_pd (lanes1 + 4 * q, l1[q]);
        }
      acc[0] += cru_fixed_sum_lanes (lanes0);
      acc[1] += cru_fixed_sum_lanes (lanes1);
    }
  if (start < n)
    {
      double sums[2];
      cru_fixed_sum_l1_masked (a + start, mask + start, n - start, sums);
      acc[0] += sums[0];
      acc[1] += sums[1];
    }
}

/* Whole blocks of the kept sum in cru-fixed-sum.h's order (lane l of a block adds elements
 * l, l + 32, …: eight vectors of four lanes) of t = |x − base|, or |x| without @base. The
 * test and t are in single precision: for a float t, (double) t ≥ p exactly when t ≥ the
 * smallest float not below p, and a kept 0 adds +0.0 as a dropped one does. Returns how
 * many elements it did. */
static inline __attribute__ ((always_inline)) CRU_SIMD_TARGET guint64
kept_sum_blocks (const float *restrict x, const float *restrict base, guint64 n, double p,
                 double *acc)
{
  const __m128 sign = _mm_set1_ps (-0.0f);
  float pf = (float) p;
  __m128 vp;
  guint64 start = 0;

  if ((double) pf < p)
    pf = nextafterf (pf, INFINITY);
  vp = _mm_set1_ps (pf);   /* NaN when p is: nothing kept, as in double */
  for (; start + CRU_FIXED_SUM_BLOCK <= n; start += CRU_FIXED_SUM_BLOCK)
    {
      __m256d l[8];
      double lanes[CRU_FIXED_SUM_LANES];

      for (int q = 0; q < 8; q++)
        l[q] = _mm256_setzero_pd ();
      for (guint64 r = 0; r < CRU_FIXED_SUM_BLOCK; r += CRU_FIXED_SUM_LANES)
        for (int q = 0; q < 8; q++)
          {
            guint64 j = start + r + 4 * (guint64) q;
            __m128 v = _mm_loadu_ps (x + j), t, keep;

            if (base)
              v = _mm_sub_ps (v, _mm_loadu_ps (base + j));
            t = _mm_andnot_ps (sign, v);
            keep = _mm_cmp_ps (t, vp, _CMP_GE_OQ);
            l[q] = _mm256_add_pd (l[q], _mm256_cvtps_pd (_mm_and_ps (keep, t)));
          }
      for (int q = 0; q < 8; q++)
        _mm256_storeu_pd (lanes + 4 * q, l[q]);
      *acc += cru_fixed_sum_lanes (lanes);
    }
  return start;
}

CRU_SIMD_TARGET void
_cru_kept_sum_simd (const float *restrict a, guint64 n, double p, double *acc)
{
  guint64 start = kept_sum_blocks (a, NULL, n, p, acc);

  if (start < n)
    *acc += cru_fixed_sum_kept (a + start, n - start, p);
}

CRU_SIMD_TARGET void
_cru_mask_scale_simd (float *restrict delta, const guint8 *restrict mask, guint64 n,
                      CruKernelScale scale, float factor, float w)
{
  const __m256 vw = _mm256_set1_ps (w), vf = _mm256_set1_ps (factor);
  const __m256i zero = _mm256_setzero_si256 ();
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_loadu_ps (delta + i);
      __m256 keep = _mm256_castsi256_ps (_mm256_set1_epi32 (-1));   /* SCALE_NONE: all */

      if (scale != CRU_KERNEL_SCALE_NONE)
        {
          __m256i m = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (mask + i)));

          keep = _mm256_castsi256_ps (_mm256_xor_si256 (_mm256_cmpeq_epi32 (m, zero),
                                                        _mm256_set1_epi32 (-1)));
        }
      store_kept_scaled (delta + i, v, keep, scale, vf, vw);
    }
  _cru_mask_scale_scalar (delta, mask, i, n, scale, factor, w);
}

/* Adding +0.0 where the scalar code adds nothing leaves the sums unchanged: they start at
 * +0.0 and only a sum of two −0.0 is −0.0 in round-to-nearest, so they are never −0.0. */
CRU_SIMD_TARGET void
_cru_consensus_simd (float *restrict out, const float *restrict base,
                     const float *const *deltas, const float *w, int n_models, guint64 n,
                     gboolean normalize, float lambda)
{
  const __m256 zero = _mm256_setzero_ps (), one = _mm256_set1_ps (1.0f);
  const __m256 vlambda = _mm256_set1_ps (lambda);
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 total = zero, mixed = zero, divisor = zero, positive;

      for (int m = 0; m < n_models; m++)
        total = _mm256_add_ps (total, _mm256_loadu_ps (deltas[m] + i));
      positive = _mm256_cmp_ps (total, zero, _CMP_GE_OQ);   /* NaN: negative, as in C */
      for (int m = 0; m < n_models; m++)
        {
          __m256 d = _mm256_loadu_ps (deltas[m] + i);
          __m256 agree = _mm256_blendv_ps (_mm256_cmp_ps (d, zero, _CMP_LT_OQ),
                                           _mm256_cmp_ps (d, zero, _CMP_GT_OQ), positive);
          mixed = _mm256_add_ps (mixed, _mm256_and_ps (agree, d));
          divisor = _mm256_add_ps (divisor, _mm256_and_ps (agree, _mm256_set1_ps (w[m])));
        }
      divisor = _mm256_blendv_ps (divisor, one, _mm256_cmp_ps (divisor, zero, _CMP_EQ_OQ));
      if (normalize)
        mixed = _mm256_div_ps (mixed, divisor);
      if (lambda != 1.0f)
        mixed = _mm256_mul_ps (mixed, vlambda);
      _mm256_storeu_ps (out + i, _mm256_add_ps (_mm256_loadu_ps (base + i), mixed));
    }
  _cru_consensus_scalar (out, base, deltas, w, n_models, i, n, normalize, lambda);
}

CRU_SIMD_TARGET void
_cru_sum_deltas_simd (float *restrict out, const float *restrict base,
                      const float *const *deltas, int n_models, guint64 n, gboolean normalize,
                      float divisor, float lambda)
{
  const __m256 vdiv = _mm256_set1_ps (divisor), vlambda = _mm256_set1_ps (lambda);
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 mixed = _mm256_loadu_ps (deltas[0] + i);
      for (int m = 1; m < n_models; m++)
        mixed = _mm256_add_ps (mixed, _mm256_loadu_ps (deltas[m] + i));
      if (normalize)
        mixed = _mm256_div_ps (mixed, vdiv);
      if (lambda != 1.0f)
        mixed = _mm256_mul_ps (mixed, vlambda);
      _mm256_storeu_ps (out + i, _mm256_add_ps (_mm256_loadu_ps (base + i), mixed));
    }
  _cru_sum_deltas_scalar (out, base, deltas, n_models, i, n, normalize, divisor, lambda);
}

/* Adding +0.0 where the scalar code adds nothing: out starts at +0.0 (see consensus). */
CRU_SIMD_TARGET void
_cru_sdm_add_simd (float *restrict out, const float *restrict x, const float *restrict base,
                   guint64 n, float w, float p_up)
{
  const __m256 vw = _mm256_set1_ps (w), vp = _mm256_set1_ps (p_up), zero = _mm256_setzero_ps ();
  const __m256 abs_mask = _mm256_castsi256_ps (_mm256_set1_epi32 (0x7fffffff));
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 d = _mm256_sub_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (base + i));
      __m256 a = _mm256_and_ps (d, abs_mask);
      __m256 keep = _mm256_and_ps (_mm256_cmp_ps (a, zero, _CMP_NEQ_OQ),
                                   _mm256_cmp_ps (a, vp, _CMP_GE_OQ));
      __m256 add = _mm256_and_ps (keep, _mm256_mul_ps (vw, d));
      _mm256_storeu_ps (out + i, _mm256_add_ps (_mm256_loadu_ps (out + i), add));
    }
  _cru_sdm_add_scalar (out, x, base, i, n, w, (double) p_up);
}

CRU_SIMD_TARGET void
_cru_diff_hist_high_simd (const float *restrict x, const float *restrict base, guint64 n,
                          guint32 *restrict hist, guint64 *zeros)
{
  const __m256 abs_mask = _mm256_castsi256_ps (_mm256_set1_epi32 (0x7fffffff));
  const __m256 zero = _mm256_setzero_ps ();
  guint64 z = 0, i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 d = _mm256_sub_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (base + i));
      __m256i high = _mm256_srli_epi32 (_mm256_castps_si256 (_mm256_and_ps (d, abs_mask)), 16);
      uint32_t h[8];

      _mm256_storeu_si256 ((__m256i *) h, high);
      hist[h[0]]++;
      hist[h[1]]++;
      hist[h[2]]++;
      hist[h[3]]++;
      hist[h[4]]++;
      hist[h[5]]++;
      hist[h[6]]++;
      hist[h[7]]++;
      z += (guint64) __builtin_popcount (_mm256_movemask_ps (_mm256_cmp_ps (d, zero, _CMP_EQ_OQ)));
    }
  if (zeros)
    *zeros += z;
  _cru_diff_hist_high_scalar (x, base, i, n, hist, zeros);
}

/* The keys in the digit are a few percent, scattered: a branch per eight elements
 * mispredicted often. Instead every step packs the low halves of the ones in the digit to
 * the front of a vector and stores it at the end of a list (no branch), and the list is
 * counted after each block; the next digit's smallest low half is a running vector
 * minimum. */
#define HIST_LOW_BLOCK 1024

CRU_SIMD_TARGET void
_cru_diff_hist_low_simd (const float *restrict x, const float *restrict base, guint64 n,
                         uint32_t high, guint32 *restrict hist, uint32_t next_high,
                         uint32_t *next_low)
{
  const __m256i abs_mask = _mm256_set1_epi32 (0x7fffffff);
  const __m256i low_mask = _mm256_set1_epi32 (0xffff);
  const __m256i vhigh = _mm256_set1_epi32 ((int) high);
  const __m256i vnext = _mm256_set1_epi32 ((int) next_high);
  const __m256i none = _mm256_set1_epi32 (-1);
  __m256i vmin = none;
  gboolean want_next = next_low != NULL && next_high < 65536;
  uint32_t list[HIST_LOW_BLOCK + 8];
  guint64 i = 0;

  while (i + 8 <= n)
    {
      guint64 end = MIN (n, i + HIST_LOW_BLOCK) & ~(guint64) 7;
      guint len = 0;

      if (end <= i)
        break;
      for (; i < end; i += 8)
        {
          __m256 d = _mm256_sub_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (base + i));
          __m256i key = _mm256_and_si256 (_mm256_castps_si256 (d), abs_mask);
          __m256i top = _mm256_srli_epi32 (key, 16);
          __m256i low = _mm256_and_si256 (key, low_mask);
          guint in = (guint) _mm256_movemask_ps (_mm256_castsi256_ps (_mm256_cmpeq_epi32 (top, vhigh)));
          __m256i order = _mm256_cvtepu8_epi32 (_mm_cvtsi64_si128 ((long long) pack_lanes[in]));

          _mm256_storeu_si256 ((__m256i *) (list + len), _mm256_permutevar8x32_epi32 (low, order));
          len += (guint) __builtin_popcount (in);
          if (want_next)
            vmin = _mm256_min_epu32 (vmin, _mm256_blendv_epi8 (none, low,
                                                              _mm256_cmpeq_epi32 (top, vnext)));
        }
      for (guint j = 0; j < len; j++)
        hist[list[j]]++;
    }
  if (want_next)
    {
      uint32_t m[8];

      _mm256_storeu_si256 ((__m256i *) m, vmin);
      for (int j = 0; j < 8; j++)
        *next_low = MIN (*next_low, m[j]);
    }
  _cru_diff_hist_low_scalar (x, base, i, n, high, hist, next_high, next_low);
}

/* _cru_diff_hist_high_simd, and the window's entries listed as in _cru_diff_hist_low_simd:
 * j << 16 | low for a key in the window's digit j; the counts above the digits in vector
 * lanes, added up once per block. */
G_STATIC_ASSERT (CRU_HIST_WINDOW == 3);

/* −Σ of eight 32-bit lanes of compare results (−1 each), at most 2^32 − 1 in all */
static inline CRU_SIMD_TARGET guint64
lanes_negated_sum (__m256i v)
{
  uint32_t m[8];
  guint64 sum = 0;

  _mm256_storeu_si256 ((__m256i *) m, _mm256_sub_epi32 (_mm256_setzero_si256 (), v));
  for (int j = 0; j < 8; j++)
    sum += m[j];
  return sum;
}

CRU_SIMD_TARGET void
_cru_diff_hist_window_simd (const float *restrict x, const float *restrict base, guint64 n,
                            guint32 *restrict hist, guint64 *zeros, const uint32_t *digits,
                            guint32 *restrict window, guint64 *above)
{
  const __m256i abs_mask = _mm256_set1_epi32 (0x7fffffff);
  const __m256i low_mask = _mm256_set1_epi32 (0xffff);
  const __m256i d0 = _mm256_set1_epi32 ((int) digits[0]);
  const __m256i d1 = _mm256_set1_epi32 ((int) digits[1]);
  const __m256i d2 = _mm256_set1_epi32 ((int) digits[2]);
  const __m256i slot1 = _mm256_set1_epi32 (1 << 16), slot2 = _mm256_set1_epi32 (2 << 16);
  const __m256 zero = _mm256_setzero_ps ();
  uint32_t list[HIST_LOW_BLOCK + 8];
  guint64 z = 0, i = 0;

  while (i + 8 <= n)
    {
      guint64 end = MIN (n, i + HIST_LOW_BLOCK) & ~(guint64) 7;
      guint len = 0;
      __m256i a0 = _mm256_setzero_si256 (), a1 = a0, a2 = a0;   /* minus the counts above */

      for (; i < end; i += 8)
        {
          __m256 d = _mm256_sub_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (base + i));
          __m256i key = _mm256_and_si256 (_mm256_castps_si256 (d), abs_mask);
          __m256i top = _mm256_srli_epi32 (key, 16);
          __m256i e0 = _mm256_cmpeq_epi32 (top, d0), e1 = _mm256_cmpeq_epi32 (top, d1);
          __m256i e2 = _mm256_cmpeq_epi32 (top, d2);
          __m256i entry = _mm256_or_si256 (_mm256_and_si256 (key, low_mask),
                                           _mm256_or_si256 (_mm256_and_si256 (e1, slot1),
                                                            _mm256_and_si256 (e2, slot2)));
          guint in = (guint) _mm256_movemask_ps (_mm256_castsi256_ps (
                                                   _mm256_or_si256 (e0, _mm256_or_si256 (e1, e2))));
          __m256i order = _mm256_cvtepu8_epi32 (_mm_cvtsi64_si128 ((long long) pack_lanes[in]));

          if (hist)
            {
              uint32_t h[8];

              _mm256_storeu_si256 ((__m256i *) h, top);
              hist[h[0]]++;
              hist[h[1]]++;
              hist[h[2]]++;
              hist[h[3]]++;
              hist[h[4]]++;
              hist[h[5]]++;
              hist[h[6]]++;
              hist[h[7]]++;
            }
          _mm256_storeu_si256 ((__m256i *) (list + len),
                               _mm256_permutevar8x32_epi32 (entry, order));
          len += (guint) __builtin_popcount (in);
          if (zeros)
            z += (guint64) __builtin_popcount (_mm256_movemask_ps (_mm256_cmp_ps (d, zero,
                                                                                  _CMP_EQ_OQ)));
          if (above)
            {
              a0 = _mm256_add_epi32 (a0, _mm256_cmpgt_epi32 (top, d0));
              a1 = _mm256_add_epi32 (a1, _mm256_cmpgt_epi32 (top, d1));
              a2 = _mm256_add_epi32 (a2, _mm256_cmpgt_epi32 (top, d2));
            }
        }
      for (guint j = 0; j < len; j++)
        window[list[j]]++;
      if (above)
        {
          above[0] += lanes_negated_sum (a0);
          above[1] += lanes_negated_sum (a1);
          above[2] += lanes_negated_sum (a2);
        }
    }
  if (zeros)
    *zeros += z;
  _cru_diff_hist_window_scalar (x, base, i, n, hist, zeros, digits, window, above);
}

/* _cru_kept_sum_simd with Δ made in place. */
CRU_SIMD_TARGET void
_cru_diff_kept_sum_simd (const float *restrict x, const float *restrict base, guint64 n,
                         double p, double *acc)
{
  guint64 start = kept_sum_blocks (x, base, n, p, acc);

  if (start < n)
    {
      float d[CRU_FIXED_SUM_BLOCK];

      _cru_sub_simd (d, x + start, base + start, n - start);
      *acc += cru_fixed_sum_kept (d, n - start, p);
    }
}

/* Philox-4x32-10 (cru-rng.c), four blocks per vector: a block's counter words live in the
 * low halves of 64-bit lanes, where one _mm256_mul_epu32 gives a round's whole product (the
 * high halves carry garbage that no multiply reads and that is dropped at the end). */
typedef struct {
  __m256i c[4];
} PhiloxLanes;

/* What a call's blocks share. Their counter words 1–3 (the block's high word, the tensor
 * name's hash, the model) are the same, so round 1's second product, round 2's first and
 * what they feed are constants: 18 multiplies a block instead of 20 (the high word is
 * constant over 2^32 blocks; a vector that spans a change of it goes to the scalar code). */
typedef struct {
  __m256i  m0, m1;
  __m256i  k0[10], k1[10];   /* the round keys */
  __m256i  r1;               /* round 1: model ^ k1[0] */
  __m256i  r2_c0;            /* round 2: lo (name × M1) ^ k0[1] */
  __m256i  r2_c2;            /* round 2: hi (A × M0) ^ k1[1], A being round 1's c0 */
  __m256i  r3_c2;            /* round 3: lo (A × M0) ^ k1[2] */
  uint32_t high;             /* the block counter's high word these were made for */
  uint32_t key0[10], key1[10];
  uint32_t name;
} PhiloxCall;

static inline CRU_SIMD_TARGET void
philox_call_set_high (PhiloxCall *k, uint32_t high)
{
  guint64 pn = (guint64) 0xCD9E8D57u * k->name;
  uint32_t a = (uint32_t) (pn >> 32) ^ high ^ k->key0[0];
  guint64 pa = (guint64) 0xD2511F53u * a;

  k->high = high;
  k->r2_c0 = _mm256_set1_epi64x ((uint32_t) pn ^ k->key0[1]);
  k->r2_c2 = _mm256_set1_epi64x ((uint32_t) (pa >> 32) ^ k->key1[1]);
  k->r3_c2 = _mm256_set1_epi64x ((uint32_t) pa ^ k->key1[2]);
}

static inline CRU_SIMD_TARGET void
philox_call_init (PhiloxCall *k, const CruRng *rng, uint32_t high)
{
  uint32_t a = rng->key[0], b = rng->key[1];

  for (int r = 0; r < 10; r++)
    {
      if (r > 0)
        {
          a += 0x9E3779B9u;
          b += 0xBB67AE85u;
        }
      k->key0[r] = a;
      k->key1[r] = b;
      k->k0[r] = _mm256_set1_epi64x (a);
      k->k1[r] = _mm256_set1_epi64x (b);
    }
  k->m0 = _mm256_set1_epi64x (0xD2511F53u);
  k->m1 = _mm256_set1_epi64x (0xCD9E8D57u);
  k->name = rng->name_hash;
  k->r1 = _mm256_set1_epi64x (rng->model_key ^ k->key1[0]);
  philox_call_set_high (k, high);
}

/* Rounds 1–3 of the blocks whose low counter words are in @low's 64-bit lanes. */
static inline __attribute__ ((always_inline)) CRU_SIMD_TARGET void
philox_lanes_first3 (PhiloxLanes *s, __m256i low, const PhiloxCall *k)
{
  __m256i p0 = _mm256_mul_epu32 (low, k->m0);
  __m256i c2 = _mm256_xor_si256 (_mm256_srli_epi64 (p0, 32), k->r1);
  __m256i p1 = _mm256_mul_epu32 (c2, k->m1);
  __m256i c0 = _mm256_xor_si256 (_mm256_srli_epi64 (p1, 32), k->r2_c0);
  __m256i q0 = _mm256_mul_epu32 (c0, k->m0);
  __m256i q1 = _mm256_mul_epu32 (_mm256_xor_si256 (p0, k->r2_c2), k->m1);

  s->c[0] = _mm256_xor_si256 (_mm256_srli_epi64 (q1, 32), _mm256_xor_si256 (p1, k->k0[2]));
  s->c[1] = q1;
  s->c[2] = _mm256_xor_si256 (_mm256_srli_epi64 (q0, 32), k->r3_c2);
  s->c[3] = q0;
}

static inline __attribute__ ((always_inline)) CRU_SIMD_TARGET void
philox_lanes_round (PhiloxLanes *s, __m256i m0, __m256i m1, __m256i k0, __m256i k1)
{
  __m256i p0 = _mm256_mul_epu32 (s->c[0], m0);
  __m256i p1 = _mm256_mul_epu32 (s->c[2], m1);

  /* (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); XOR in any grouping gives the same bits */
  s->c[0] = _mm256_xor_si256 (_mm256_srli_epi64 (p1, 32), _mm256_xor_si256 (s->c[1], k0));
  s->c[2] = _mm256_xor_si256 (_mm256_srli_epi64 (p0, 32), _mm256_xor_si256 (s->c[3], k1));
  s->c[1] = p1;
  s->c[3] = p0;
}

/* The masks of 8 blocks (32 elements) as 32 bits in element order. @a holds blocks 0, 1, 4, 5
 * and @b blocks 2, 3, 6, 7, so that interleaving their low words puts blocks 0–3 in the low
 * 128 bits and 4–7 in the high, where a byte shuffle can reach them after the packs. The
 * mask is u < p with u = (x >> 8) × 2^-24, that is (x >> 8) < @threshold (see below). */
static inline __attribute__ ((always_inline)) CRU_SIMD_TARGET uint32_t
philox_lanes_bits (const PhiloxLanes *a, const PhiloxLanes *b, __m256i threshold)
{
  /* byte 4w + position of a block's word w; positions 0–3 hold blocks 0, 2, 1, 3 */
  const __m256i order = _mm256_setr_epi8 (0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15,
                                          0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15);
  __m256i c[4], bytes;

  for (int w = 0; w < 4; w++)
    {
      __m256i x = _mm256_blend_epi32 (a->c[w], _mm256_slli_epi64 (b->c[w], 32), 0xaa);

      c[w] = _mm256_cmpgt_epi32 (threshold, _mm256_srli_epi32 (x, 8));
    }
  bytes = _mm256_packs_epi16 (_mm256_packs_epi32 (c[0], c[1]), _mm256_packs_epi32 (c[2], c[3]));
  return (uint32_t) _mm256_movemask_epi8 (_mm256_shuffle_epi8 (bytes, order));
}

/* For an integer m < 2^24, m × 2^-24 < p exactly when m < ⌈p × 2^24⌉ (exact in double); NaN
 * and p ≤ 0 keep nothing, p ≥ 1 everything. */
static int32_t
philox_threshold (float p)
{
  double y = (double) p * 16777216.0;

  if (!(y > 0.0))
    return 0;
  return y >= 16777216.0 ? 16777216 : (int32_t) ceil (y);
}

static inline void
store_bits32 (guint8 *bits, uint32_t v)
{
  v = GUINT32_TO_LE (v);
  memcpy (bits, &v, 4);
}

/* Eight blocks (32 elements) per step: two sets of four hide the multiplies' latency and,
 * with the constants, fit the 16 registers (four sets spilled and were slower). */
CRU_SIMD_TARGET void
_cru_random_bits_simd (const CruRng *rng, guint64 first, guint64 n, float p,
                       guint8 *restrict bits)
{
  const __m256i low_a = _mm256_setr_epi64x (0, 1, 4, 5);
  const __m256i low_b = _mm256_setr_epi64x (2, 3, 6, 7);
  const __m256i threshold = _mm256_set1_epi32 (philox_threshold (p));
  PhiloxCall k;
  guint64 i = 0;

  philox_call_init (&k, rng, (uint32_t) ((first / 4) >> 32));
  for (; i + 32 <= n; i += 32)
    {
      guint64 blk = (first + i) / 4;
      __m256i b = _mm256_set1_epi64x ((long long) blk);
      PhiloxLanes s0, s1;

      if ((blk >> 32) != ((blk + 7) >> 32))
        {
          _cru_random_bits_scalar (rng, first + i, 0, 32, p, bits + i / 8);
          continue;
        }
      if ((uint32_t) (blk >> 32) != k.high)
        philox_call_set_high (&k, (uint32_t) (blk >> 32));
      philox_lanes_first3 (&s0, _mm256_add_epi64 (b, low_a), &k);
      philox_lanes_first3 (&s1, _mm256_add_epi64 (b, low_b), &k);
#pragma GCC unroll 7
      for (int r = 3; r < 10; r++)
        {
          philox_lanes_round (&s0, k.m0, k.m1, k.k0[r], k.k1[r]);
          philox_lanes_round (&s1, k.m0, k.m1, k.k0[r], k.k1[r]);
        }
      store_bits32 (bits + i / 8, philox_lanes_bits (&s0, &s1, threshold));
    }
  _cru_random_bits_scalar (rng, first, i, n, p, bits);
}

/* A nibble of mask bits as four 64-bit lanes, all ones where its bit is set: one load
 * instead of a broadcast, an AND and a compare per four elements. */
#define NIBBLE_LANES(v) { -(int64_t) ((v) & 1), -(int64_t) (((v) >> 1) & 1), \
                          -(int64_t) (((v) >> 2) & 1), -(int64_t) (((v) >> 3) & 1) }
static const int64_t nibble_lanes[16][4] __attribute__ ((aligned (32))) = {
  NIBBLE_LANES (0), NIBBLE_LANES (1), NIBBLE_LANES (2), NIBBLE_LANES (3),
  NIBBLE_LANES (4), NIBBLE_LANES (5), NIBBLE_LANES (6), NIBBLE_LANES (7),
  NIBBLE_LANES (8), NIBBLE_LANES (9), NIBBLE_LANES (10), NIBBLE_LANES (11),
  NIBBLE_LANES (12), NIBBLE_LANES (13), NIBBLE_LANES (14), NIBBLE_LANES (15),
};

/* _cru_l1_masked_simd with Δ made in place and the mask read from bits: four elements
 * (half a byte of bits) per step. |Δ| is taken in single precision (exact, as is the
 * widening), which is half the work of taking it in double. */
CRU_SIMD_TARGET void
_cru_diff_l1_bits_simd (const float *restrict x, const float *restrict base,
                        const guint8 *restrict bits, guint64 n, double acc[2])
{
  const __m128 sign = _mm_set1_ps (-0.0f);
  guint64 start = 0;

  for (; start + CRU_FIXED_SUM_BLOCK <= n; start += CRU_FIXED_SUM_BLOCK)
    {
      __m256d l0[8], l1[8];
      double lanes0[CRU_FIXED_SUM_LANES], lanes1[CRU_FIXED_SUM_LANES];

      for (int q = 0; q < 8; q++)
        l0[q] = l1[q] = _mm256_setzero_pd ();
      for (guint64 r = 0; r < CRU_FIXED_SUM_BLOCK; r += CRU_FIXED_SUM_LANES)
        for (int q = 0; q < 8; q++)
          {
            guint64 j = start + r + 4 * (guint64) q;
            __m128 d = _mm_sub_ps (_mm_loadu_ps (x + j), _mm_loadu_ps (base + j));
            __m256d t = _mm256_cvtps_pd (_mm_andnot_ps (sign, d));
            __m256d keep = _mm256_load_pd ((const double *) nibble_lanes[(bits[j / 8] >> (j % 8))
                                                                         & 0xf]);

            l0[q] = _mm256_add_pd (l0[q], t);
            l1[q] = _mm256_add_pd (l1[q], _mm256_and_pd (keep, t));
          }
      for (int q = 0; q < 8; q++)
        {
          _mm256_storeu_pd (lanes0 + 4 * q, l0[q]);
          _mm256_storeu_pd (lanes1 + 4 * q, l1[q]);
        }
      acc[0] += cru_fixed_sum_lanes (lanes0);
      acc[1] += cru_fixed_sum_lanes (lanes1);
    }
  _cru_diff_l1_bits_scalar (x, base, bits, start, n, acc);
}

CRU_SIMD_TARGET void
_cru_diff_mask_scale_bits_simd (float *restrict delta, const float *restrict x,
                                const float *restrict base, const guint8 *restrict bits,
                                guint64 n, CruKernelScale scale, float factor, float w)
{
  const __m256 vw = _mm256_set1_ps (w), vf = _mm256_set1_ps (factor);
  const __m256i select = _mm256_setr_epi32 (1, 2, 4, 8, 16, 32, 64, 128);
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_sub_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (base + i));
      __m256i byte = _mm256_set1_epi32 (bits[i / 8]);
      __m256i keep = _mm256_cmpeq_epi32 (_mm256_and_si256 (byte, select), select);

      store_kept_scaled (delta + i, v, _mm256_castsi256_ps (keep), scale, vf, vw);
    }
  _cru_diff_mask_scale_bits_scalar (delta, x, base, bits, i, n, scale, factor, w);
}

#else /* no x86: never called, _cru_kernels_simd_supported () is FALSE */

void _cru_diff_hist_high_simd (const float *restrict x, const float *restrict base, guint64 n,
                               guint32 *restrict hist, guint64 *zeros)
{ g_assert_not_reached (); }
void _cru_diff_hist_low_simd (const float *restrict x, const float *restrict base, guint64 n,
                              uint32_t high, guint32 *restrict hist, uint32_t next_high,
                              uint32_t *next_low)
{ g_assert_not_reached (); }
void _cru_diff_kept_sum_simd (const float *restrict x, const float *restrict base, guint64 n,
                              double p, double *acc)
{ g_assert_not_reached (); }
void _cru_diff_hist_window_simd (const float *restrict x, const float *restrict base,
                                 guint64 n, guint32 *restrict hist, guint64 *zeros,
                                 const uint32_t *digits, guint32 *restrict window,
                                 guint64 *above)
{ g_assert_not_reached (); }

void _cru_sdm_add_simd (float *restrict out, const float *restrict x,
                        const float *restrict base, guint64 n, float w, float p_up)
{ g_assert_not_reached (); }

void _cru_random_bits_simd (const CruRng *rng, guint64 first, guint64 n, float p,
                            guint8 *restrict bits)
{ g_assert_not_reached (); }
void _cru_diff_l1_bits_simd (const float *restrict x, const float *restrict base,
                             const guint8 *restrict bits, guint64 n, double acc[2])
{ g_assert_not_reached (); }
void _cru_diff_mask_scale_bits_simd (float *restrict delta, const float *restrict x,
                                     const float *restrict base, const guint8 *restrict bits,
                                     guint64 n, CruKernelScale scale, float factor, float w)
{ g_assert_not_reached (); }

void _cru_weighted_sum_simd (float *restrict out, const float *const *x, const float *w,
                             int n_models, guint64 n, gboolean divide, float divisor)
{ g_assert_not_reached (); }
void _cru_lerp2_simd (float *restrict out, const float *restrict a, float sa,
                      const float *restrict b, float sb, guint64 n)
{ g_assert_not_reached (); }
void _cru_sub_simd (float *restrict out, const float *restrict a, const float *restrict b,
                    guint64 n)
{ g_assert_not_reached (); }
void _cru_add_base_simd (float *restrict out, const float *restrict base, guint64 n)
{ g_assert_not_reached (); }
guint64 _cru_topk_mask_simd (const float *restrict v, guint64 n, uint32_t key_t, guint64 take,
                             guint8 *restrict mask)
{ g_assert_not_reached (); return 0; }
guint64 _cru_diff_topk_scale_simd (float *restrict delta, const float *restrict x,
                                   const float *restrict base, guint64 n, uint32_t key_t,
                                   guint64 take, CruKernelScale scale, float factor, float w)
{ g_assert_not_reached (); return 0; }
void _cru_l1_masked_simd (const float *restrict a, const guint8 *restrict mask, guint64 n,
                          double acc[2])
{ g_assert_not_reached (); }
void _cru_kept_sum_simd (const float *restrict a, guint64 n, double p, double *acc)
{ g_assert_not_reached (); }
void _cru_mask_scale_simd (float *restrict delta, const guint8 *restrict mask, guint64 n,
                           CruKernelScale scale, float factor, float w)
{ g_assert_not_reached (); }
void _cru_consensus_simd (float *restrict out, const float *restrict base,
                          const float *const *deltas, const float *w, int n_models, guint64 n,
                          gboolean normalize, float lambda)
{ g_assert_not_reached (); }
void _cru_sum_deltas_simd (float *restrict out, const float *restrict base,
                           const float *const *deltas, int n_models, guint64 n,
                           gboolean normalize, float divisor, float lambda)
{ g_assert_not_reached (); }

#endif
