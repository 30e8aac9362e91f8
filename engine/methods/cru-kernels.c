/* cru-kernels.c — scalar reference kernels and the run-time choice of their AVX2 and
 * AVX-512 twins
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-kernels.h"
#include "cru-kernels-private.h"

#include <math.h>

#include "cru-fixed-sum.h"
#include "cru-select.h"

static gint isa_state = -1;   /* -1 unknown, else a CruKernelsIsa */

static CruKernelsIsa
isa_best (void)
{
  if (_cru_kernels_avx512_supported ())
    return CRU_KERNELS_AVX512;
  return _cru_kernels_simd_supported () ? CRU_KERNELS_AVX2 : CRU_KERNELS_SCALAR;
}

gboolean
cru_kernels_simd_available (void)
{
  return _cru_kernels_simd_supported ();
}

CruKernelsIsa
cru_kernels_isa_available (void)
{
  return isa_best ();
}

void
cru_kernels_set_isa (CruKernelsIsa isa)
{
  g_atomic_int_set (&isa_state, MIN (isa, isa_best ()));
}

void
cru_kernels_set_simd_enabled (gboolean enabled)
{
  cru_kernels_set_isa (enabled ? CRU_KERNELS_AVX512 : CRU_KERNELS_SCALAR);
}

static inline CruKernelsIsa
isa (void)
{
  gint s = g_atomic_int_get (&isa_state);

  if (G_UNLIKELY (s < 0))
    {
      s = isa_best ();
      g_atomic_int_set (&isa_state, s);
    }
  return s;
}

static inline gboolean
use_simd (void)
{
  return isa () >= CRU_KERNELS_AVX2;
}

static inline gboolean
use_avx512 (void)
{
  return isa () >= CRU_KERNELS_AVX512;
}

/* ---- scalar references (also the tails of the SIMD kernels) ---- */

void
_cru_weighted_sum_scalar (float *restrict out, const float *const *x, const float *w,
                          int n_models, guint64 begin, guint64 n, gboolean divide,
                          float divisor)
{
  for (guint64 i = begin; i < n; i++)
    {
      float acc = w[0] * x[0][i];
      for (int m = 1; m < n_models; m++)
        acc = acc + w[m] * x[m][i];
      out[i] = divide ? acc / divisor : acc;
    }
}

void
_cru_lerp2_scalar (float *restrict out, const float *restrict a, float sa,
                   const float *restrict b, float sb, guint64 begin, guint64 n)
{
  for (guint64 i = begin; i < n; i++)
    out[i] = sa * a[i] + sb * b[i];
}

void
_cru_sub_scalar (float *restrict out, const float *restrict a, const float *restrict b,
                 guint64 begin, guint64 n)
{
  for (guint64 i = begin; i < n; i++)
    out[i] = a[i] - b[i];
}

void
_cru_add_base_scalar (float *restrict out, const float *restrict base, guint64 begin, guint64 n)
{
  for (guint64 i = begin; i < n; i++)
    out[i] = base[i] + out[i];
}

guint64
_cru_topk_mask_scalar (const float *restrict v, guint64 begin, guint64 n, uint32_t key_t,
                       guint64 take, guint8 *restrict mask)
{
  for (guint64 i = begin; i < n; i++)
    {
      uint32_t key = cru_select_key (v[i], CRU_SELECT_ABS);
      guint8 keep = key > key_t;
      if (key == key_t && take > 0)
        {
          keep = 1;
          take--;
        }
      mask[i] = keep;
    }
  return take;
}

guint64
_cru_diff_topk_scale_scalar (float *restrict delta, const float *restrict x,
                             const float *restrict base, guint64 begin, guint64 n,
                             uint32_t key_t, guint64 take, CruKernelScale scale, float factor,
                             float w)
{
  for (guint64 i = begin; i < n; i++)
    {
      guint8 keep;

      delta[i] = x[i] - base[i];
      take = _cru_topk_mask_scalar (delta + i, 0, 1, key_t, take, &keep);
      _cru_mask_scale_scalar (delta + i, &keep, 0, 1, scale, factor, w);
    }
  return take;
}

void
_cru_mask_scale_scalar (float *restrict delta, const guint8 *restrict mask, guint64 begin,
                        guint64 n, CruKernelScale scale, float factor, float w)
{
  for (guint64 i = begin; i < n; i++)
    {
      float v = delta[i];
      if (scale != CRU_KERNEL_SCALE_NONE)
        {
          v = mask[i] ? v : 0.0f;
          if (scale == CRU_KERNEL_SCALE_MUL)
            v = v * factor;
          else if (scale == CRU_KERNEL_SCALE_DIV)
            v = v / factor;
        }
      delta[i] = v * w;
    }
}

void
_cru_consensus_scalar (float *restrict out, const float *restrict base,
                       const float *const *deltas, const float *w, int n_models,
                       guint64 begin, guint64 n, gboolean normalize, float lambda)
{
  for (guint64 i = begin; i < n; i++)
    {
      float total = 0.0f, mixed = 0.0f, divisor = 0.0f;
      float sign;

      for (int m = 0; m < n_models; m++)
        total += deltas[m][i];
      sign = total >= 0.0f ? 1.0f : -1.0f;
      for (int m = 0; m < n_models; m++)
        {
          float d = deltas[m][i];
          float s = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
          if (s == sign)
            {
              mixed += d;
              divisor += w[m];
            }
        }
      if (divisor == 0.0f)
        divisor = 1.0f;
      if (normalize)
        mixed = mixed / divisor;
      if (lambda != 1.0f)
        mixed = mixed * lambda;
      out[i] = base[i] + mixed;
    }
}

void
_cru_sum_deltas_scalar (float *restrict out, const float *restrict base,
                        const float *const *deltas, int n_models, guint64 begin, guint64 n,
                        gboolean normalize, float divisor, float lambda)
{
  for (guint64 i = begin; i < n; i++)
    {
      float mixed = deltas[0][i];
      for (int m = 1; m < n_models; m++)
        mixed = mixed + deltas[m][i];
      if (normalize)
        mixed = mixed / divisor;
      if (lambda != 1.0f)
        mixed = mixed * lambda;
      out[i] = base[i] + mixed;
    }
}

void
_cru_sdm_add_scalar (float *restrict out, const float *restrict x, const float *restrict base,
                     guint64 begin, guint64 n, float w, double p)
{
  for (guint64 i = begin; i < n; i++)
    {
      float d = x[i] - base[i];
      double a = fabs ((double) d);
      if (a != 0.0 && a >= p)
        out[i] += w * d;
    }
}

void
_cru_diff_hist_high_scalar (const float *restrict x, const float *restrict base, guint64 begin,
                            guint64 n, guint32 *restrict hist, guint64 *zeros)
{
  guint64 z = 0;

  for (guint64 i = begin; i < n; i++)
    {
      float d = x[i] - base[i];
      hist[cru_select_key (d, CRU_SELECT_ABS) >> 16]++;
      z += d == 0.0f;
    }
  if (zeros)
    *zeros += z;
}

void
_cru_diff_hist_low_scalar (const float *restrict x, const float *restrict base, guint64 begin,
                           guint64 n, uint32_t high, guint32 *restrict hist,
                           uint32_t next_high, uint32_t *next_low)
{
  for (guint64 i = begin; i < n; i++)
    {
      uint32_t key = cru_select_key (x[i] - base[i], CRU_SELECT_ABS);

      if ((key >> 16) == high)
        hist[key & 0xffffu]++;
      else if ((key >> 16) == next_high && (key & 0xffffu) < *next_low)
        *next_low = key & 0xffffu;
    }
}

void
_cru_diff_hist_window_scalar (const float *restrict x, const float *restrict base,
                              guint64 begin, guint64 n, guint32 *restrict hist, guint64 *zeros,
                              const uint32_t *digits, guint32 *restrict window, guint64 *above)
{
  guint64 z = 0;

  for (guint64 i = begin; i < n; i++)
    {
      float d = x[i] - base[i];
      uint32_t key = cru_select_key (d, CRU_SELECT_ABS);

      if (hist)
        hist[key >> 16]++;
      for (guint j = 0; j < CRU_HIST_WINDOW; j++)
        {
          if ((key >> 16) == digits[j])
            window[(j << 16) | (key & 0xffffu)]++;
          if (above)
            above[j] += (key >> 16) > digits[j];
        }
      z += d == 0.0f;
    }
  if (zeros)
    *zeros += z;
}

void
_cru_random_mask_scalar (const CruRng *rng, guint64 first, guint64 begin, guint64 n, float p,
                         guint8 *restrict mask)
{
  guint64 i = begin;

  while (i < n)
    {
      guint64 index = first + i, block = index / 4;
      uint32_t ctr[4] = { (uint32_t) block, (uint32_t) (block >> 32), rng->name_hash,
                          rng->model_key };
      uint32_t x[4];

      cru_philox4x32_10 (ctr, rng->key, x);
      for (guint w = index % 4; w < 4 && i < n; w++, i++)
        mask[i] = (float) (x[w] >> 8) * (1.0f / 16777216.0f) < p;
    }
}

/* Bit i % 8 of byte i / 8 is element @first + i's DARE mask; @begin is a multiple of 8. */
void
_cru_random_bits_scalar (const CruRng *rng, guint64 first, guint64 begin, guint64 n, float p,
                         guint8 *restrict bits)
{
  guint8 mask[64];

  for (guint64 i = begin; i < n; i += 64)
    {
      guint64 len = MIN (n - i, (guint64) 64);

      _cru_random_mask_scalar (rng, first + i, 0, len, p, mask);
      cru_kernel_mask_pack (mask, len, bits + i / 8);
    }
}

/* The reference of the fused L1 kernel: Δ and the 0/1 mask of each block, then the sums. */
void
_cru_diff_l1_bits_scalar (const float *restrict x, const float *restrict base,
                          const guint8 *restrict bits, guint64 begin, guint64 n, double acc[2])
{
  float d[CRU_FIXED_SUM_BLOCK];
  guint8 mask[CRU_FIXED_SUM_BLOCK];

  for (guint64 start = begin; start < n; start += CRU_FIXED_SUM_BLOCK)
    {
      double sums[2];
      guint64 len = MIN (n - start, (guint64) CRU_FIXED_SUM_BLOCK);

      _cru_sub_scalar (d, x + start, base + start, 0, len);
      cru_kernel_mask_unpack (bits + start / 8, len, mask);
      cru_fixed_sum_l1_masked (d, mask, len, sums);
      acc[0] += sums[0];
      acc[1] += sums[1];
    }
}

void
_cru_diff_mask_scale_bits_scalar (float *restrict delta, const float *restrict x,
                                  const float *restrict base, const guint8 *restrict bits,
                                  guint64 begin, guint64 n, CruKernelScale scale, float factor,
                                  float w)
{
  for (guint64 i = begin; i < n; i++)
    {
      float v = x[i] - base[i];

      v = (bits[i / 8] >> (i % 8)) & 1 ? v : 0.0f;
      if (scale == CRU_KERNEL_SCALE_MUL)
        v = v * factor;
      else if (scale == CRU_KERNEL_SCALE_DIV)
        v = v / factor;
      delta[i] = v * w;
    }
}

/* ---- public entry points ---- */

void
cru_kernel_weighted_sum (float *restrict out, const float *const *x, const float *w,
                         int n_models, guint64 n, gboolean divide, float divisor)
{
  g_return_if_fail (n_models >= 1);
  if (use_simd ())
    _cru_weighted_sum_simd (out, x, w, n_models, n, divide, divisor);
  else
    _cru_weighted_sum_scalar (out, x, w, n_models, 0, n, divide, divisor);
}

void
cru_kernel_lerp2 (float *restrict out, const float *restrict a, float sa,
                  const float *restrict b, float sb, guint64 n)
{
  if (use_simd ())
    _cru_lerp2_simd (out, a, sa, b, sb, n);
  else
    _cru_lerp2_scalar (out, a, sa, b, sb, 0, n);
}

void
cru_kernel_sums3 (const float *restrict a, const float *restrict b, guint64 n, double sums[3])
{
  /* Three dependent chains of double additions, interleaved: as fast as one. SIMD cannot
   * help without reassociating the sums, which would change their rounding. */
  double aa = sums[0], bb = sums[1], ab = sums[2];

  for (guint64 i = 0; i < n; i++)
    {
      double x = a[i], y = b[i];
      aa += x * x;
      bb += y * y;
      ab += x * y;
    }
  sums[0] = aa;
  sums[1] = bb;
  sums[2] = ab;
}

void
cru_kernel_sub (float *restrict out, const float *restrict a, const float *restrict b,
                guint64 n)
{
  if (use_simd ())
    _cru_sub_simd (out, a, b, n);
  else
    _cru_sub_scalar (out, a, b, 0, n);
}

void
cru_kernel_add_base (float *restrict out, const float *restrict base, guint64 n)
{
  if (use_simd ())
    _cru_add_base_simd (out, base, n);
  else
    _cru_add_base_scalar (out, base, 0, n);
}

guint64
cru_kernel_topk_mask (const float *restrict v, guint64 n, uint32_t key_t, guint64 n_equal_take,
                      guint8 *restrict mask)
{
  if (use_simd ())
    return _cru_topk_mask_simd (v, n, key_t, n_equal_take, mask);
  return _cru_topk_mask_scalar (v, 0, n, key_t, n_equal_take, mask);
}

guint64
cru_kernel_diff_topk_scale (float *restrict delta, const float *restrict x,
                            const float *restrict base, guint64 n, uint32_t key_t,
                            guint64 n_equal_take, CruKernelScale scale, float factor, float w)
{
  g_return_val_if_fail (scale != CRU_KERNEL_SCALE_NONE, n_equal_take);
  if (use_simd ())
    return _cru_diff_topk_scale_simd (delta, x, base, n, key_t, n_equal_take, scale, factor, w);
  return _cru_diff_topk_scale_scalar (delta, x, base, 0, n, key_t, n_equal_take, scale, factor,
                                      w);
}

void
cru_kernel_l1_masked (const float *restrict a, const guint8 *restrict mask, guint64 n,
                      double acc[2])
{
  if (use_simd ())
    {
      _cru_l1_masked_simd (a, mask, n, acc);
      return;
    }
  for (guint64 start = 0; start < n; start += CRU_FIXED_SUM_BLOCK)
    {
      double sums[2];
      guint64 len = MIN (n - start, (guint64) CRU_FIXED_SUM_BLOCK);

      cru_fixed_sum_l1_masked (a + start, mask + start, len, sums);
      acc[0] += sums[0];
      acc[1] += sums[1];
    }
}

void
cru_kernel_kept_sum (const float *restrict a, guint64 n, double p, double *acc)
{
  if (use_simd ())
    {
      _cru_kept_sum_simd (a, n, p, acc);
      return;
    }
  for (guint64 start = 0; start < n; start += CRU_FIXED_SUM_BLOCK)
    *acc += cru_fixed_sum_kept (a + start, MIN (n - start, (guint64) CRU_FIXED_SUM_BLOCK), p);
}

void
cru_kernel_mask_scale (float *restrict delta, const guint8 *restrict mask, guint64 n,
                       CruKernelScale scale, float factor, float w)
{
  if (use_simd ())
    _cru_mask_scale_simd (delta, mask, n, scale, factor, w);
  else
    _cru_mask_scale_scalar (delta, mask, 0, n, scale, factor, w);
}

void
cru_kernel_consensus (float *restrict out, const float *restrict base,
                      const float *const *deltas, const float *w, int n_models, guint64 n,
                      gboolean normalize, float lambda)
{
  if (use_simd ())
    _cru_consensus_simd (out, base, deltas, w, n_models, n, normalize, lambda);
  else
    _cru_consensus_scalar (out, base, deltas, w, n_models, 0, n, normalize, lambda);
}

void
cru_kernel_sum_deltas (float *restrict out, const float *restrict base,
                       const float *const *deltas, int n_models, guint64 n, gboolean normalize,
                       float divisor, float lambda)
{
  g_return_if_fail (n_models >= 1);
  if (use_simd ())
    _cru_sum_deltas_simd (out, base, deltas, n_models, n, normalize, divisor, lambda);
  else
    _cru_sum_deltas_scalar (out, base, deltas, n_models, 0, n, normalize, divisor, lambda);
}

void
cru_kernel_random_bits (const CruRng *rng, guint64 first, guint64 n, float p,
                        guint8 *restrict bits)
{
  if (first % 4 != 0)   /* not at a Philox block: only elementwise tests chunk so */
    _cru_random_bits_scalar (rng, first, 0, n, p, bits);
  else if (use_avx512 ())
    _cru_random_bits_avx512 (rng, first, n, p, bits);
  else if (use_simd ())
    _cru_random_bits_simd (rng, first, n, p, bits);
  else
    _cru_random_bits_scalar (rng, first, 0, n, p, bits);
}

void
cru_kernel_diff_l1_bits (const float *restrict x, const float *restrict base,
                         const guint8 *restrict bits, guint64 n, double acc[2])
{
  if (use_avx512 ())
    _cru_diff_l1_bits_avx512 (x, base, bits, n, acc);
  else if (use_simd ())
    _cru_diff_l1_bits_simd (x, base, bits, n, acc);
  else
    _cru_diff_l1_bits_scalar (x, base, bits, 0, n, acc);
}

void
cru_kernel_diff_mask_scale_bits (float *restrict delta, const float *restrict x,
                                 const float *restrict base, const guint8 *restrict bits,
                                 guint64 n, CruKernelScale scale, float factor, float w)
{
  g_return_if_fail (scale != CRU_KERNEL_SCALE_NONE);
  if (use_avx512 ())
    _cru_diff_mask_scale_bits_avx512 (delta, x, base, bits, n, scale, factor, w);
  else if (use_simd ())
    _cru_diff_mask_scale_bits_simd (delta, x, base, bits, n, scale, factor, w);
  else
    _cru_diff_mask_scale_bits_scalar (delta, x, base, bits, 0, n, scale, factor, w);
}

/* Eight 0/1 bytes to one byte of bits: the multiply moves byte i's bit to bit 56 + i, and
 * no two partial products meet. */
void
cru_kernel_mask_pack (const guint8 *restrict mask, guint64 n, guint8 *restrict bits)
{
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      guint64 x;

      memcpy (&x, mask + i, 8);
      x = GUINT64_FROM_LE (x) * G_GUINT64_CONSTANT (0x0102040810204080);
      bits[i / 8] = (guint8) (x >> 56);
    }
  if (i < n)
    {
      guint8 last = 0;

      for (guint64 j = i; j < n; j++)
        last |= (guint8) ((mask[j] & 1) << (j - i));
      bits[i / 8] = last;
    }
}

/* One byte of bits to eight 0/1 bytes: byte i of the copies keeps bit i, and adding 0x7f
 * carries it to the byte's top bit. */
void
cru_kernel_mask_unpack (const guint8 *restrict bits, guint64 n, guint8 *restrict mask)
{
  const guint64 ones = G_GUINT64_CONSTANT (0x0101010101010101);
  guint64 i = 0;

  for (; i + 8 <= n; i += 8)
    {
      guint64 x = (guint64) bits[i / 8] * ones & G_GUINT64_CONSTANT (0x8040201008040201);

      x = ((x + 0x7f * ones) & 0x80 * ones) >> 7;
      x = GUINT64_TO_LE (x);
      memcpy (mask + i, &x, 8);
    }
  for (; i < n; i++)
    mask[i] = (bits[i / 8] >> (i % 8)) & 1;
}

void
cru_kernel_sdm_add (float *restrict out, const float *restrict x, const float *restrict base,
                    guint64 n, float w, double p)
{
  /* For a float a, a ≥ p exactly when a ≥ the smallest float not below p. */
  float p_up = (float) p;

  if ((double) p_up < p)
    p_up = nextafterf (p_up, INFINITY);
  if (use_simd () && !isnan (p))
    _cru_sdm_add_simd (out, x, base, n, w, p_up);
  else
    _cru_sdm_add_scalar (out, x, base, 0, n, w, p);
}

void
cru_kernel_diff_hist_high (const float *restrict x, const float *restrict base, guint64 n,
                           guint32 *restrict hist, guint64 *zeros)
{
  if (use_simd ())
    _cru_diff_hist_high_simd (x, base, n, hist, zeros);
  else
    _cru_diff_hist_high_scalar (x, base, 0, n, hist, zeros);
}

void
cru_kernel_diff_hist_low (const float *restrict x, const float *restrict base, guint64 n,
                          uint32_t high, guint32 *restrict hist, uint32_t next_high,
                          uint32_t *next_low)
{
  if (use_simd ())
    _cru_diff_hist_low_simd (x, base, n, high, hist, next_high, next_low);
  else
    _cru_diff_hist_low_scalar (x, base, 0, n, high, hist, next_high, next_low);
}

void
cru_kernel_diff_hist_window (const float *restrict x, const float *restrict base, guint64 n,
                             guint32 *restrict hist, guint64 *zeros,
                             const uint32_t digits[CRU_HIST_WINDOW], guint32 *restrict window,
                             guint64 *above)
{
  if (use_simd ())
    _cru_diff_hist_window_simd (x, base, n, hist, zeros, digits, window, above);
  else
    _cru_diff_hist_window_scalar (x, base, 0, n, hist, zeros, digits, window, above);
}

void
cru_kernel_diff_kept_sum (const float *restrict x, const float *restrict base, guint64 n,
                          double p, double *acc)
{
  if (use_simd ())
    {
      _cru_diff_kept_sum_simd (x, base, n, p, acc);
      return;
    }
  /* the reference: Δ in blocks, then the fixed-order sum */
  for (guint64 start = 0; start < n; start += CRU_FIXED_SUM_BLOCK)
    {
      float d[CRU_FIXED_SUM_BLOCK];
      guint64 len = MIN (n - start, (guint64) CRU_FIXED_SUM_BLOCK);

      _cru_sub_scalar (d, x + start, base + start, 0, len);
      *acc += cru_fixed_sum_kept (d, len, p);
    }
}
