/* test-methods-kernels.c — the SIMD kernels give the same bits as their scalar twins
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "cru-fixed-sum.h"
#include "cru-kernels.h"
#include "cru-method.h"
#include "cru-select.h"

#define N_MAX 4133   /* not a multiple of 8: every kernel has a scalar tail */

static guint32 rng_state = 12345;

static guint32
next_u32 (void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Mostly small normal values, with zeros of both signs, exact duplicates, denormals,
 * infinities and NaN mixed in. */
static void
fill (float *v, guint64 n, gboolean specials)
{
  for (guint64 i = 0; i < n; i++)
    {
      guint32 r = next_u32 ();
      float x = ((float) (r >> 8) / (float) (1u << 24) - 0.5f) * 0.01f;

      switch (specials ? r % 41 : 99)
        {
        case 0: x = 0.0f; break;
        case 1: x = -0.0f; break;
        case 2: x = 0.00125f; break;
        case 3: x = -0.00125f; break;
        case 4: x = 1e-40f; break;
        case 5: x = INFINITY; break;
        case 6: x = -INFINITY; break;
        case 7: x = NAN; break;
        default: break;
        }
      v[i] = x;
    }
}

static void
assert_same_bits (const void *a, const void *b, gsize bytes)
{
  if (memcmp (a, b, bytes) != 0)
    for (gsize i = 0; i < bytes; i++)
      if (((const guint8 *) a)[i] != ((const guint8 *) b)[i])
        g_error ("first difference at byte %" G_GSIZE_FORMAT, i);
}

/* Bit for bit, except that any NaN matches any NaN: x86 returns the first operand's NaN and
 * a compiler may order the operands of a commutative + either way (gcc does so differently
 * with -fsanitize), so the sign of a NaN result is not the scalar code's to promise. */
static void
assert_same_floats (const float *a, const float *b, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (memcmp (&a[i], &b[i], sizeof (float)) != 0 && !(isnan (a[i]) && isnan (b[i])))
      g_error ("first difference at element %" G_GSIZE_FORMAT ": %a and %a", i, a[i], b[i]);
}

typedef struct {
  float  *x[4];
  float  *base;
  float  *out_simd, *out_scalar;
  guint8 *mask;
} Buffers;

static void
buffers_init (Buffers *b, gboolean specials)
{
  for (int m = 0; m < 4; m++)
    {
      b->x[m] = g_new (float, N_MAX);
      fill (b->x[m], N_MAX, specials);
    }
  b->base = g_new (float, N_MAX);
  fill (b->base, N_MAX, specials);
  b->out_simd = g_new (float, N_MAX);
  b->out_scalar = g_new (float, N_MAX);
  b->mask = g_new (guint8, N_MAX);
  for (guint64 i = 0; i < N_MAX; i++)
    b->mask[i] = next_u32 () % 3 != 0;
}

static void
buffers_clear (Buffers *b)
{
  for (int m = 0; m < 4; m++)
    g_free (b->x[m]);
  g_free (b->base);
  g_free (b->out_simd);
  g_free (b->out_scalar);
  g_free (b->mask);
}

/* Runs @body once with SIMD and once without into the two outputs, for several lengths and
 * a misaligned start. */
#define BOTH_PATHS(b, ...)                                                      \
  do                                                                            \
    {                                                                           \
      for (guint64 n = 0; n < N_MAX; n = n < 40 ? n + 1 : n * 3 + 7)             \
        for (guint64 skew = 0; skew < 2; skew++)                                \
          {                                                                     \
            guint64 len = MIN (n, N_MAX - skew);                                \
            for (int simd = 1; simd >= 0; simd--)                               \
              {                                                                 \
                float *out = simd ? (b)->out_simd : (b)->out_scalar;            \
                cru_kernels_set_simd_enabled (simd);                            \
                memset (out, 0x5a, N_MAX * sizeof (float));                     \
                __VA_ARGS__;                                                    \
              }                                                                 \
            assert_same_floats ((b)->out_simd, (b)->out_scalar, N_MAX);       \
          }                                                                     \
      cru_kernels_set_simd_enabled (TRUE);                                      \
    }                                                                           \
  while (0)

static gboolean
need_simd (void)
{
  if (!cru_kernels_simd_available ())
    {
      g_test_skip ("this CPU has no AVX2");
      return FALSE;
    }
  return TRUE;
}

static void
test_weighted_sum (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  static const float w[4] = { 0.6f, 0.4f, -0.25f, 1.5f };
  Buffers b;

  if (!need_simd ())
    return;
  buffers_init (&b, specials);
  for (int nm = 1; nm <= 4; nm++)
    for (int divide = 0; divide < 2; divide++)
      {
        const float *x[4] = { b.x[0], b.x[1], b.x[2], b.x[3] };
        BOTH_PATHS (&b, {
          const float *xs[4] = { x[0] + skew, x[1] + skew, x[2] + skew, x[3] + skew };
          cru_kernel_weighted_sum (out + skew, xs, w, nm, len, divide, 0.7f);
        });
      }
  buffers_clear (&b);
}

static void
test_lerp_and_sub (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  Buffers b;

  if (!need_simd ())
    return;
  buffers_init (&b, specials);
  BOTH_PATHS (&b, cru_kernel_lerp2 (out + skew, b.x[0] + skew, 0.3f, b.x[1] + skew, 0.71f, len));
  BOTH_PATHS (&b, cru_kernel_sub (out + skew, b.x[0] + skew, b.base + skew, len));
  BOTH_PATHS (&b, {
    memcpy (out, b.x[1], N_MAX * sizeof (float));
    cru_kernel_add_base (out + skew, b.base + skew, len);
  });
  buffers_clear (&b);
}

static void
test_mask_scale (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  Buffers b;

  if (!need_simd ())
    return;
  buffers_init (&b, specials);
  for (int scale = CRU_KERNEL_SCALE_NONE; scale <= CRU_KERNEL_SCALE_DIV; scale++)
    for (int neg = 0; neg < 2; neg++)
      BOTH_PATHS (&b, {
        memcpy (out, b.x[0], N_MAX * sizeof (float));
        cru_kernel_mask_scale (out + skew, b.mask + skew, len, scale, 1.7f,
                               neg ? -0.8f : 0.8f);
      });
  buffers_clear (&b);
}

static void
test_consensus (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  static const float w[4] = { 0.6f, 0.4f, 0.0f, -0.3f };
  Buffers b;

  if (!need_simd ())
    return;
  buffers_init (&b, specials);
  for (int nm = 1; nm <= 4; nm++)
    for (int normalize = 0; normalize < 2; normalize++)
      for (int l = 0; l < 2; l++)
        {
          BOTH_PATHS (&b, {
            const float *d[4] = { b.x[0] + skew, b.x[1] + skew, b.x[2] + skew, b.x[3] + skew };
            cru_kernel_consensus (out + skew, b.base + skew, d, w, nm, len, normalize,
                                  l ? 0.9f : 1.0f);
          });
          BOTH_PATHS (&b, {
            const float *d[4] = { b.x[0] + skew, b.x[1] + skew, b.x[2] + skew, b.x[3] + skew };
            cru_kernel_sum_deltas (out + skew, b.base + skew, d, nm, len, normalize, 1.3f,
                                   l ? 0.9f : 1.0f);
          });
        }
  buffers_clear (&b);
}

/* The mask from a threshold equals cru_select_topk_mask, ties included. */
static void
test_topk_mask (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  g_autofree float *v = g_new (float, N_MAX);
  g_autofree guint8 *expected = g_new (guint8, N_MAX);
  g_autofree guint8 *got = g_new (guint8, N_MAX);

  if (!need_simd ())
    return;
  fill (v, N_MAX, specials);
  for (guint64 i = 0; i < N_MAX; i++)   /* no NaN: selection callers never pass one */
    if (isnan (v[i]))
      v[i] = 0.00125f;
  for (guint64 k = 1; k <= N_MAX; k += 37)
    for (int simd = 0; simd < 2; simd++)
      {
        uint32_t key;
        guint64 take;

        cru_kernels_set_simd_enabled (simd);
        cru_select_topk_mask (v, N_MAX, k, CRU_SELECT_ABS, expected);
        cru_select_topk_threshold (v, N_MAX, k, CRU_SELECT_ABS, &key, &take);
        cru_kernel_topk_mask (v, N_MAX, key, take, got);
        assert_same_bits (expected, got, N_MAX);
      }
  cru_kernels_set_simd_enabled (TRUE);
}

/* The fused sums equal three separate double loops. */
static void
test_sums3 (void)
{
  g_autofree float *a = g_new (float, N_MAX);
  g_autofree float *b = g_new (float, N_MAX);
  double sums[3] = { 0, 0, 0 }, aa = 0, bb = 0, ab = 0;

  fill (a, N_MAX, FALSE);
  fill (b, N_MAX, FALSE);
  for (guint64 i = 0; i < N_MAX; i++)
    aa += (double) a[i] * (double) a[i];
  for (guint64 i = 0; i < N_MAX; i++)
    bb += (double) b[i] * (double) b[i];
  for (guint64 i = 0; i < N_MAX; i++)
    ab += (double) a[i] * (double) b[i];
  cru_kernel_sums3 (a, b, N_MAX, sums);
  g_assert_true (memcmp (&sums[0], &aa, 8) == 0);
  g_assert_true (memcmp (&sums[1], &bb, 8) == 0);
  g_assert_true (memcmp (&sums[2], &ab, 8) == 0);
}

/* SDM-W's conditional sum, with thresholds that are and are not floats. */
static void
test_sdm_add (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  static const double thresholds[] = { 0.0, 0.001, 0.0012500000000000000260, 0.00125,
                                       0.0012499999, 1e-41, 1e300, -1.0 };
  Buffers b;

  if (!need_simd ())
    return;
  buffers_init (&b, specials);
  for (guint t = 0; t < G_N_ELEMENTS (thresholds); t++)
    BOTH_PATHS (&b, {
      memset (out, 0, N_MAX * sizeof (float));
      cru_kernel_sdm_add (out + skew, b.x[0] + skew, b.base + skew, len, 0.55f, thresholds[t]);
      cru_kernel_sdm_add (out + skew, b.x[1] + skew, b.base + skew, len, -0.45f, thresholds[t]);
    });
  buffers_clear (&b);
}

/* The fixed-order sums, continued over chunks of whole blocks, equal cru-fixed-sum.h's over
 * the whole buffer — on both paths; so does the kept sum of Δ = x − base made in place, for
 * thresholds p that are some |Δ| exactly, a double just above or below one (between two
 * floats), zero, negative, infinite and NaN. */
static void
test_fixed_sums (void)
{
  const guint64 n = 5 * CRU_FIXED_SUM_BLOCK + 77;
  g_autofree float *a = g_new (float, n);
  g_autofree float *x = g_new (float, n);
  g_autofree float *b = g_new (float, n);
  g_autofree float *d = g_new (float, n);
  g_autofree guint8 *mask = g_new (guint8, n);
  double ps[] = { 0.0, 0.001, 0.00125, 1.0, -1.0, INFINITY, NAN, 0.0, 0.0, 0.0 };

  fill (a, n, FALSE);
  fill (x, n, FALSE);
  fill (b, n, FALSE);
  for (guint64 i = 0; i < n; i++)
    {
      mask[i] = next_u32 () % 3 != 0;
      if (i % 17 == 0)
        a[i] = 0.0f;
      if (i % 13 == 0)   /* Δ = 0, then tiny (denormal), NaN: never kept */
        x[i] = i % 3 == 0 ? b[i] : i % 3 == 1 ? 1e-40f : NAN;
    }
  cru_kernels_set_simd_enabled (FALSE);
  cru_kernel_sub (d, x, b, n);
  ps[7] = fabs ((double) d[101]);
  ps[8] = nextafter (ps[7], INFINITY);
  ps[9] = nextafter (ps[7], 0.0);
  for (int simd = 0; simd < 2; simd++)
    for (guint64 chunk = CRU_FIXED_SUM_BLOCK; chunk <= n + CRU_FIXED_SUM_BLOCK;
         chunk += 2 * CRU_FIXED_SUM_BLOCK)
      {
        double expected[2], got[2] = { 0.0, 0.0 };

        cru_kernels_set_simd_enabled (simd);
        cru_fixed_sum_l1_masked (a, mask, n, expected);
        for (guint64 off = 0; off < n; off += chunk)
          cru_kernel_l1_masked (a + off, mask + off, MIN (chunk, n - off), got);
        g_assert_true (memcmp (expected, got, sizeof got) == 0);
        for (guint i = 0; i < G_N_ELEMENTS (ps); i++)
          {
            double want = cru_fixed_sum_kept (a, n, ps[i]), have = 0.0;
            for (guint64 off = 0; off < n; off += chunk)
              cru_kernel_kept_sum (a + off, MIN (chunk, n - off), ps[i], &have);
            g_assert_true (memcmp (&want, &have, sizeof have) == 0);

            want = cru_fixed_sum_kept (d, n, ps[i]);
            have = 0.0;
            for (guint64 off = 0; off < n; off += chunk)
              cru_kernel_diff_kept_sum (x + off, b + off, MIN (chunk, n - off), ps[i], &have);
            if (memcmp (&want, &have, sizeof have) != 0 && !(isnan (want) && isnan (have)))
              g_error ("simd %d, p %a: kept sum of Δ %a, expected %a", simd, ps[i], have,
                       want);
          }
      }
  cru_kernels_set_simd_enabled (TRUE);
}

/* DARE's mask bits equal cru_rng_uniform1 () < p, element by element, for any start (the
 * block counter's high word included), any length and p (0, 1, above 1 and NaN included),
 * with every kernel set this CPU has; nothing is written past the last byte, whose spare
 * bits are zero. */
static void
test_random_bits (void)
{
  static const guint64 firsts[] = { 0, 1, 3, 8, 1000000, 1000006,
                                     (G_GUINT64_CONSTANT (1) << 34) - 8 };
  /* the last three: p at and around one element's own uniform, below 0.5 (finer than 2^-24) */
  float ps[] = { 0.3f, 0.9f, 0.0f, 1.0f, 0.5f + 1e-7f, 1.5f, -0.2f, NAN, 0.0f, 0.0f, 0.0f };
  g_autofree guint8 *expected = g_new (guint8, N_MAX / 8 + 2);
  g_autofree guint8 *got = g_new (guint8, N_MAX / 8 + 2);
  CruRng rng;
  guint checked = 0;

  cru_rng_init (&rng, G_GUINT64_CONSTANT (0x123456789), "model.layers.0.mlp.up_proj.weight", 1);
  for (guint64 i = 0; ps[8] == 0.0f; i++)
    if (cru_rng_uniform1 (&rng, i) < 0.5f)
      ps[8] = cru_rng_uniform1 (&rng, i);
  ps[9] = nextafterf (ps[8], 1.0f);
  ps[10] = nextafterf (ps[8], 0.0f);
  for (guint f = 0; f < G_N_ELEMENTS (firsts); f++)
    for (guint64 n = 0; n < N_MAX; n = n < 140 ? n + 1 : n * 3 + 1)
      for (guint pi = 0; pi < G_N_ELEMENTS (ps); pi++)
        {
          guint64 bytes = (n + 7) / 8;

          memset (expected, 0, bytes);
          for (guint64 i = 0; i < n; i++)
            if (cru_rng_uniform1 (&rng, firsts[f] + i) < ps[pi])
              expected[i / 8] |= (guint8) (1u << (i % 8));
          for (int isa = CRU_KERNELS_SCALAR; isa <= (int) cru_kernels_isa_available (); isa++)
            {
              memset (got, 0xa5, N_MAX / 8 + 2);
              cru_kernels_set_isa (isa);
              cru_kernel_random_bits (&rng, firsts[f], n, ps[pi], got);
              assert_same_bits (expected, got, bytes);
              g_assert_cmpint (got[bytes], ==, 0xa5);
              checked++;
            }
        }
  cru_kernels_set_simd_enabled (TRUE);
  g_assert_cmpuint (checked, >, 0);
  if (cru_kernels_isa_available () < CRU_KERNELS_AVX512)
    g_test_message ("this CPU has no AVX-512: its kernels were not compared");
}

/* The fused DARE kernels: Δ's L1 sums under mask bits (continued over chunks of whole
 * blocks) equal cru_kernel_sub + unpack + cru_fixed_sum_l1_masked, and the masked, scaled,
 * weighted Δ equals cru_kernel_sub + cru_kernel_mask_scale — with every kernel set, for
 * every length and specials (NaN, infinities, zeros of both signs, denormals). */
static void
test_bits_kernels (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  const guint64 nmax = 5 * CRU_FIXED_SUM_BLOCK + 77;
  g_autofree float *x = g_new (float, nmax);
  g_autofree float *b = g_new (float, nmax);
  g_autofree float *d = g_new (float, nmax);
  g_autofree float *want = g_new (float, nmax);
  g_autofree float *got = g_new (float, nmax);
  g_autofree guint8 *mask = g_new (guint8, nmax);
  g_autofree guint8 *bits = g_new (guint8, nmax / 8 + 1);
  static const CruKernelScale scales[] = { CRU_KERNEL_SCALE_MASK, CRU_KERNEL_SCALE_MUL,
                                           CRU_KERNEL_SCALE_DIV };

  fill (x, nmax, specials);
  fill (b, nmax, specials);
  for (guint64 i = 0; i < nmax; i++)
    mask[i] = next_u32 () % 3 != 0;
  cru_kernel_mask_pack (mask, nmax, bits);
  for (guint64 n = 0; n <= nmax; n = n < 40 ? n + 1 : n * 2 + 13)
    {
      double expected[2] = { 0.0, 0.0 };

      cru_kernels_set_simd_enabled (FALSE);
      cru_kernel_sub (d, x, b, n);
      cru_kernel_l1_masked (d, mask, n, expected);
      for (int isa = CRU_KERNELS_SCALAR; isa <= (int) cru_kernels_isa_available (); isa++)
        {
          cru_kernels_set_isa (isa);
          for (guint64 chunk = CRU_FIXED_SUM_BLOCK; chunk <= n + CRU_FIXED_SUM_BLOCK;
               chunk += 2 * CRU_FIXED_SUM_BLOCK)
            {
              double sums[2] = { 0.0, 0.0 };

              for (guint64 off = 0; off < n; off += chunk)
                cru_kernel_diff_l1_bits (x + off, b + off, bits + off / 8, MIN (chunk, n - off),
                                         sums);
              if (memcmp (sums, expected, sizeof sums) != 0
                  && !(isnan (sums[0]) && isnan (expected[0]) && isnan (sums[1])
                       && isnan (expected[1])))
                g_error ("set %d, n %" G_GUINT64_FORMAT ": L1 sums %a %a, expected %a %a", isa,
                         n, sums[0], sums[1], expected[0], expected[1]);
            }
          for (guint s = 0; s < G_N_ELEMENTS (scales); s++)
            {
              cru_kernels_set_simd_enabled (FALSE);
              cru_kernel_sub (want, x, b, n);
              cru_kernel_mask_scale (want, mask, n, scales[s], 1.75f, -0.6f);
              cru_kernels_set_isa (isa);
              memset (got, 0x5a, nmax * sizeof (float));
              cru_kernel_diff_mask_scale_bits (got, x, b, bits, n, scales[s], 1.75f, -0.6f);
              assert_same_floats (want, got, n);
              if (n < nmax)
                g_assert_cmphex (((guint32 *) got)[n], ==, 0x5a5a5a5a);
            }
        }
    }
  cru_kernels_set_simd_enabled (TRUE);
}

/* TIES's fused kernel equals cru_kernel_sub + cru_kernel_topk_mask + cru_kernel_mask_scale
 * with every kernel set, for every length, scale, number of equal keys to take (none, some,
 * all; a threshold key that many elements share, and a run of them) and specials, and
 * continues over chunks. */
static void
test_topk_fused (gconstpointer data)
{
  gboolean specials = GPOINTER_TO_INT (data);
  const guint64 nmax = 3 * 1024 + 77;
  g_autofree float *x = g_new (float, nmax);
  g_autofree float *b = g_new (float, nmax);
  g_autofree float *want = g_new (float, nmax);
  g_autofree float *got = g_new (float, nmax);
  g_autofree guint8 *mask = g_new (guint8, nmax);
  static const CruKernelScale scales[] = { CRU_KERNEL_SCALE_MASK, CRU_KERNEL_SCALE_MUL,
                                           CRU_KERNEL_SCALE_DIV };
  static const guint64 takes[] = { 0, 1, 5, 7, 8, 9, 15, 40, G_MAXUINT64 };
  uint32_t key_t;

  for (guint64 i = 0; i < nmax; i++)   /* Δ exact, in {−4 … 4} / 8: many equal |Δ| */
    {
      b[i] = (float) ((int) (next_u32 () % 64) - 32) / 64.0f;
      x[i] = b[i] + (float) ((int) (next_u32 () % 9) - 4) / 8.0f;
      if (i < 100)   /* a run of equal |Δ|: whole vectors of keys equal to the threshold */
        x[i] = b[i] + (next_u32 () % 2 ? 0.25f : -0.25f);
    }
  if (specials)
    {
      fill (x, nmax / 3, TRUE);
      fill (b + nmax / 2, nmax / 3, TRUE);
    }
  key_t = cru_select_key (0.25f, CRU_SELECT_ABS);
  for (guint64 n = 0; n <= nmax; n = n < 40 ? n + 1 : n * 2 + 13)
    for (guint s = 0; s < G_N_ELEMENTS (scales); s++)
      for (guint t = 0; t < G_N_ELEMENTS (takes); t++)
        {
          guint64 want_left, got_left;

          cru_kernels_set_simd_enabled (FALSE);
          cru_kernel_sub (want, x, b, n);
          want_left = cru_kernel_topk_mask (want, n, key_t, takes[t], mask);
          cru_kernel_mask_scale (want, mask, n, scales[s], 1.75f, -0.6f);
          for (int isa = CRU_KERNELS_SCALAR; isa <= (int) cru_kernels_isa_available (); isa++)
            for (guint64 chunk = 64; chunk <= n + 64; chunk += 1000)
              {
                cru_kernels_set_isa (isa);
                memset (got, 0x5a, nmax * sizeof (float));
                got_left = takes[t];
                for (guint64 off = 0; off < n; off += chunk)
                  got_left = cru_kernel_diff_topk_scale (got + off, x + off, b + off,
                                                         MIN (chunk, n - off), key_t, got_left,
                                                         scales[s], 1.75f, -0.6f);
                assert_same_floats (want, got, n);
                g_assert_cmpuint (got_left, ==, want_left);
                if (n < nmax)
                  g_assert_cmphex (((guint32 *) got)[n], ==, 0x5a5a5a5a);
              }
        }
  cru_kernels_set_simd_enabled (TRUE);
}

/* DARE's cached masks: packing puts element i in bit i % 8 of byte i / 8 with the last
 * byte's spare bits zero, and unpacking gives the 0/1 bytes back, for every length. */
static void
test_mask_pack (void)
{
  g_autofree guint8 *mask = g_new (guint8, 300);
  g_autofree guint8 *back = g_new (guint8, 300);
  guint8 bits[40];
  guint32 r = 12345;

  for (guint64 n = 0; n <= 300; n++)
    {
      for (guint64 i = 0; i < n; i++)
        {
          r = r * 1664525u + 1013904223u;
          mask[i] = (r >> 28) & 1;
        }
      memset (bits, 0xa5, sizeof bits);
      memset (back, 0xa5, 300);
      cru_kernel_mask_pack (mask, n, bits);
      for (guint64 i = 0; i < (n + 7) / 8 * 8; i++)
        g_assert_cmpint ((bits[i / 8] >> (i % 8)) & 1, ==, i < n ? mask[i] : 0);
      cru_kernel_mask_unpack (bits, n, back);
      g_assert_cmpmem (back, n, mask, n);
      if (n < 300)
        g_assert_cmpint (back[n], ==, 0xa5);   /* nothing written past n */
    }
}

/* The fused Δ kernels count and sum the same on both paths, and as sub + select/sum do. */
static void
test_diff_kernels (void)
{
  const guint64 n = 3 * 1024 + 13;
  g_autofree float *x = g_new (float, n);
  g_autofree float *b = g_new (float, n);
  g_autofree float *d = g_new (float, n);
  g_autofree guint32 *h0 = g_new0 (guint32, 65536);
  g_autofree guint32 *h1 = g_new0 (guint32, 65536);

  fill (x, n, TRUE);
  fill (b, n, TRUE);
  for (guint64 i = 0; i < n; i += 5)
    b[i] = x[i];   /* zeros */
  for (guint64 i = 0; i < n; i++)
    if (isnan (x[i]) || isnan (b[i]))
      x[i] = b[i] = 0.5f;
  cru_kernel_sub (d, x, b, n);
  for (int simd = 0; simd < 2; simd++)
    {
      guint64 zeros = 0, expected_zeros = 0;
      uint32_t high, next_low = 65536, expected_next = 65536;
      double kept = 0.0, expected_kept = 0.0;

      cru_kernels_set_simd_enabled (simd);
      memset (h0, 0, 65536 * sizeof (guint32));
      memset (h1, 0, 65536 * sizeof (guint32));
      cru_kernel_diff_hist_high (x, b, n, h0, &zeros);
      cru_select_hist_high (d, n, CRU_SELECT_ABS, h1);
      for (guint64 i = 0; i < n; i++)
        expected_zeros += d[i] == 0.0f;
      g_assert_true (memcmp (h0, h1, 65536 * sizeof (guint32)) == 0);
      g_assert_cmpuint (zeros, ==, expected_zeros);

      high = cru_select_key (d[7], CRU_SELECT_ABS) >> 16;
      memset (h0, 0, 65536 * sizeof (guint32));
      memset (h1, 0, 65536 * sizeof (guint32));
      cru_kernel_diff_hist_low (x, b, n, high, h0, high + 1, &next_low);
      cru_select_hist_low (d, n, CRU_SELECT_ABS, high, h1);
      for (guint64 i = 0; i < n; i++)
        if ((cru_select_key (d[i], CRU_SELECT_ABS) >> 16) == high + 1)
          expected_next = MIN (expected_next, cru_select_key (d[i], CRU_SELECT_ABS) & 0xffffu);
      g_assert_true (memcmp (h0, h1, 65536 * sizeof (guint32)) == 0);
      g_assert_cmpuint (next_low, ==, expected_next);

      /* the window: the high counts as above, and the low halves of three digits (one of
       * them the zeros' digit 0) in one pass, with or without the high counts, with or
       * without the counts above each digit */
      {
        const uint32_t digits[CRU_HIST_WINDOW] = { high, 0, high + 1 };
        g_autofree guint32 *window = g_new0 (guint32, CRU_HIST_WINDOW * 65536);
        g_autofree guint32 *expected_window = g_new0 (guint32, CRU_HIST_WINDOW * 65536);
        guint64 expected_above[CRU_HIST_WINDOW] = { 0 };

        for (guint64 i = 0; i < n; i++)
          {
            uint32_t key = cru_select_key (d[i], CRU_SELECT_ABS);
            for (int j = 0; j < CRU_HIST_WINDOW; j++)
              {
                if ((key >> 16) == digits[j])
                  expected_window[(j << 16) | (key & 0xffffu)]++;
                expected_above[j] += (key >> 16) > digits[j];
              }
          }
        for (int mode = 0; mode < 4; mode++)
          {
            gboolean with_high = mode & 1, with_above = mode & 2;
            guint64 above[CRU_HIST_WINDOW] = { 7, 7, 7 };   /* added to */

            memset (h0, 0, 65536 * sizeof (guint32));
            memset (window, 0, CRU_HIST_WINDOW * 65536 * sizeof (guint32));
            zeros = 0;
            cru_kernel_diff_hist_window (x, b, n, with_high ? h0 : NULL,
                                         with_high ? &zeros : NULL, digits, window,
                                         with_above ? above : NULL);
            g_assert_true (memcmp (window, expected_window,
                                   CRU_HIST_WINDOW * 65536 * sizeof (guint32)) == 0);
            for (int j = 0; j < CRU_HIST_WINDOW; j++)
              g_assert_cmpuint (above[j], ==, with_above ? expected_above[j] + 7 : 7);
            if (with_high)
              {
                memset (h1, 0, 65536 * sizeof (guint32));
                cru_select_hist_high (d, n, CRU_SELECT_ABS, h1);
                g_assert_true (memcmp (h0, h1, 65536 * sizeof (guint32)) == 0);
                g_assert_cmpuint (zeros, ==, expected_zeros);
              }
          }
      }

      cru_kernel_diff_kept_sum (x, b, n, 0.001, &kept);
      cru_kernel_kept_sum (d, n, 0.001, &expected_kept);
      g_assert_true (memcmp (&kept, &expected_kept, sizeof kept) == 0);
    }
  cru_kernels_set_simd_enabled (TRUE);
}

/* The low-half counts are the same for a digit holding few keys, one holding many (the
 * zeros, a fifth of them; a value repeated in runs), and without the next digit's minimum;
 * and the top-k mask for a threshold shared by long runs of equal magnitudes. */
static void
test_dense_digits (void)
{
  const guint64 n = 5 * 1024 + 21;
  g_autofree float *x = g_new (float, n);
  g_autofree float *b = g_new (float, n);
  g_autofree float *d = g_new (float, n);
  g_autofree guint32 *h0 = g_new0 (guint32, 65536);
  g_autofree guint32 *h1 = g_new0 (guint32, 65536);
  g_autofree guint8 *expected = g_new (guint8, n);
  g_autofree guint8 *got = g_new (guint8, n);

  fill (x, n, FALSE);
  fill (b, n, FALSE);
  for (guint64 i = 0; i < n; i++)
    {
      if (i % 5 == 0)
        b[i] = x[i];                                   /* Δ = 0 */
      else if (i % 7 < 3 || (i / 64) % 3 == 0)
        x[i] = b[i] + (i % 2 ? 0.00125f : -0.00125f);  /* runs of nearly equal |Δ| */
    }
  cru_kernel_sub (d, x, b, n);
  for (int c = 0; c < 4; c++)
    for (int simd = 0; simd < 2; simd++)
      {
        uint32_t high = c == 0 ? 0 : cru_select_key (d[c == 1 ? 1 : c == 2 ? 7 : 3], CRU_SELECT_ABS) >> 16;
        uint32_t next_low = 65536;

        cru_kernels_set_simd_enabled (simd);
        memset (h0, 0, 65536 * sizeof (guint32));
        memset (h1, 0, 65536 * sizeof (guint32));
        if (c == 3)
          cru_kernel_diff_hist_low (x, b, n, high, h0, 65536, NULL);
        else
          cru_kernel_diff_hist_low (x, b, n, high, h0, high + 1, &next_low);
        cru_select_hist_low (d, n, CRU_SELECT_ABS, high, h1);
        g_assert_true (memcmp (h0, h1, 65536 * sizeof (guint32)) == 0);
      }
  for (guint64 k = 1; k <= n; k += 97)
    for (int simd = 0; simd < 2; simd++)
      {
        uint32_t key;
        guint64 take;

        cru_kernels_set_simd_enabled (simd);
        cru_select_topk_mask (d, n, k, CRU_SELECT_ABS, expected);
        cru_select_topk_threshold (d, n, k, CRU_SELECT_ABS, &key, &take);
        cru_kernel_topk_mask (d, n, key, take, got);
        assert_same_bits (expected, got, n);
        /* in two chunks, the count of equal keys to take carried over */
        take = cru_kernel_topk_mask (d, 1000, key, take, got);
        cru_kernel_topk_mask (d + 1000, n - 1000, key, take, got + 1000);
        assert_same_bits (expected, got, n);
      }
  cru_kernels_set_simd_enabled (TRUE);
}

/* The streamed percentile equals cru_select_percentile, with the lower and upper samples in
 * the same or in different radix digits, in the first digit (denormals), with zeros and
 * duplicates — resolved by pass 0's window (guessed from the first chunk), by pass 1's
 * high counts and second window, and by pass 2's low counts. */
static void
test_percentile_stream (void)
{
  const guint64 n = 5 * 1024 + 321;
  static const double qs[] = { 0.0, 0.01, 10.0, 33.3, 50.0, 77.7, 99.0, 99.99, 100.0 };
  g_autofree float *v = g_new (float, n);
  g_autofree float *zeros = g_new0 (float, n);
  guint resolved_by[3] = { 0, 0, 0 };

  rng_state = 12345;   /* the same data whatever ran before */
  for (int data = 0; data < 4; data++)
    {
      for (guint64 i = 0; i < n; i++)
        {
          guint32 r = next_u32 ();
          float x = ldexpf (1.0f + (float) (r >> 9) / 8388608.0f, -(int) (r % 30));
          if (data == 1 && r % 5 == 0)
            x = ldexpf ((float) (r % 300 + 1), -149);   /* denormals: the first digit */
          if (data == 2)
            x = (float) (r % 7) * 0.25f;                /* few values, many ties */
          if (data == 3)   /* the first chunk's values 3 % smaller: its guess is a bit off */
            x = ldexpf (1.0f + (float) (r >> 9) / 8388608.0f, -2) * (i < 1024 ? 0.97f : 1.0f);
          if (r % 9 == 0)
            x = 0.0f;
          v[i] = r & 2 ? x : -x;
        }
      for (guint t = 0; t < G_N_ELEMENTS (qs); t++)
        for (guint64 chunk = 1024; chunk <= n; chunk *= 3)
          {
            g_autofree CruPercentileStream *ps = g_new0 (CruPercentileStream, 1);
            double expected = 0.0, got;
            gboolean has = cru_select_percentile (v, n, qs[t], CRU_SELECT_ABS, TRUE, &expected);
            int pass;

            for (pass = 0; pass < 3 && !cru_percentile_stream_resolved (ps); pass++)
              {
                if (!cru_percentile_stream_needs (ps, pass))
                  continue;
                for (guint64 off = 0; off < n; off += chunk)
                  cru_percentile_stream_pass (ps, pass, v + off, zeros + off,
                                              MIN (chunk, n - off), qs[t]);
                if (!cru_percentile_stream_end (ps, pass, n, qs[t]))
                  break;
              }
            g_assert_cmpint (cru_percentile_stream_resolved (ps), ==, has);
            if (!has)
              continue;
            resolved_by[pass - 1]++;
            got = cru_percentile_stream_value (ps);
            g_assert_true (memcmp (&expected, &got, sizeof got) == 0);
          }
    }
  g_test_message ("resolved by pass 0 in %u runs, by pass 1 in %u, by pass 2 in %u",
                  resolved_by[0], resolved_by[1], resolved_by[2]);
  for (int pass = 0; pass < 3; pass++)
    g_assert_cmpuint (resolved_by[pass], >, 0);
}

/* SDM-W's streamed statistics pass finds the same percentiles and masses as the whole-tensor
 * one: values spread over many binades put the percentile's two samples in different radix
 * digits, so every branch of the streamed percentile runs. */
static void
test_sdm_streamed_statistics (void)
{
  const CruMethod *sdm = cru_method_lookup ("sdm_w");
  const guint64 n = 3 * 1024 + 500, chunk = 1024;
  static const double ks[] = { 0.0, 10.0, 33.3, 50.0, 90.0, 99.0, 99.99, 100.0 };
  g_autofree float *base = g_new0 (float, n);
  g_autofree float *x = g_new (float, n);
  g_autofree float *out_whole = g_new (float, n);
  g_autofree float *out_streamed = g_new (float, n);
  g_autofree double *params = g_new (double, sdm->n_params);
  gpointer workspace = g_malloc (sdm->workspace_bytes (1, n));

  for (guint64 i = 0; i < n; i++)
    {
      guint32 r = next_u32 ();
      x[i] = ldexpf (1.0f + (float) (r >> 9) / 8388608.0f, -(int) (r % 24)) * (r & 1 ? 1 : -1);
      if (r % 11 == 0)
        x[i] = 0.0f;
      if (r % 13 == 0)
        x[i] = 0.25f;
      base[i] = (r % 7 == 0) ? 0.125f : 0.0f;
    }
  cru_method_fill_defaults (sdm, params);
  for (guint t = 0; t < G_N_ELEMENTS (ks); t++)
    for (int scope = 0; scope < 2; scope++)
      {
        const float *models[1] = { x };
        gpointer stats_whole = sdm->stats_new (sdm, 1);
        gpointer stats_streamed = sdm->stats_new (sdm, 1);
        gpointer state = g_malloc0 (sdm->stream_state_bytes (1, n));
        int64_t shape[1] = { (int64_t) n };
        CruMethodCall call = { 0 };

        params[cru_method_find_param (sdm, "k")] = ks[t];
        params[cru_method_find_param (sdm, "weights_scope")] = scope;
        call.tensor_name = "t";
        call.ndim = 1;
        call.shape = shape;
        call.numel = n;
        call.n_models = 1;
        call.params = params;
        call.model_params = NULL;

        /* whole */
        call.count = n;
        call.base = base;
        call.models = models;
        call.workspace = workspace;
        sdm->stats_accumulate (stats_whole, &call);
        g_assert_true (sdm->stats_finish (stats_whole, NULL));

        /* streamed: three passes over 1024-element chunks */
        for (int pass = 0; pass < sdm->stream_n_passes (sdm, params); pass++)
          {
            for (guint64 off = 0; off < n; off += chunk)
              {
                const float *chunk_models[1] = { x + off };
                CruMethodCall c = call;
                c.offset = off;
                c.count = MIN (chunk, n - off);
                c.base = base + off;
                c.models = chunk_models;
                c.stream = state;
                sdm->stream_pass (sdm, &c, pass, state);
              }
            call.stream = state;
            g_assert_true (sdm->stream_pass_end (sdm, &call, pass, state, NULL));
          }
        {
          CruMethodCall c = call;
          c.base = NULL;
          c.models = NULL;
          c.workspace = NULL;
          sdm->stats_accumulate (stats_streamed, &c);
        }
        g_assert_true (sdm->stats_finish (stats_streamed, NULL));
        g_assert_true (memcmp (sdm->stats_get_weights (stats_whole),
                               sdm->stats_get_weights (stats_streamed), sizeof (double)) == 0);

        /* the merges from each set of statistics */
        call.stream = NULL;
        call.out = out_whole;
        call.stats = stats_whole;
        g_assert_true (sdm->apply (sdm, &call, NULL));
        call.out = out_streamed;
        call.stats = stats_streamed;
        g_assert_true (sdm->apply (sdm, &call, NULL));
        assert_same_bits (out_whole, out_streamed, n * sizeof (float));

        sdm->stats_free (stats_whole);
        sdm->stats_free (stats_streamed);
        g_free (state);
      }
  g_free (workspace);
}

/* TIES streamed over chunks gives the bits of one whole call in the three ways its
 * threshold can be found: in pass 0's window of digits (guessed from the first chunk), so
 * that passes 1 and 2 are skipped; in pass 1's second window, next to the first on the
 * side of the threshold (the first chunk's changes are mostly the smaller ones), so that
 * only pass 2 is skipped; and by passes 1 and 2 (all the high halves, then the low halves
 * in one digit), where the first chunk's changes are a thousand times smaller than the
 * others'. Δ takes 17 values (as bf16 fine-tunes take few), so many |Δ| are equal. */
static void
test_ties_stream_window (void)
{
  const CruMethod *ties = cru_method_lookup ("ties");
  const guint64 n = 8 * 1024 + 300, chunk = 1024;
  g_autofree float *base = g_new (float, n);
  g_autofree float *x0 = g_new (float, n);
  g_autofree float *x1 = g_new (float, n);
  g_autofree float *out_whole = g_new (float, n);
  g_autofree float *out_streamed = g_new (float, n);
  g_autofree double *params = g_new (double, ties->n_params);
  g_autofree double *model_params = g_new (double, 2 * ties->n_params);
  gpointer workspace = g_malloc (ties->workspace_bytes (2, n));
  const float *models[2] = { x0, x1 };
  int64_t shape[2] = { 8, (int64_t) n / 8 };   /* n is a multiple of 8 */
  int pd = cru_method_find_param (ties, "density"), pw = cru_method_find_param (ties, "weight");

  cru_method_fill_defaults (ties, params);
  for (int m = 0; m < 2; m++)
    {
      cru_method_fill_defaults (ties, model_params + m * ties->n_params);
      model_params[m * ties->n_params + pd] = m ? 0.7 : 0.4;
      model_params[m * ties->n_params + pw] = m ? 0.5 : 0.6;
    }
  for (int miss = 0; miss < 3; miss++)
    {
      gpointer state = g_malloc0 (ties->stream_state_bytes (2, n));
      CruMethodCall call = { 0 };
      int skipped = 0;

      for (guint64 i = 0; i < n; i++)
        {
          base[i] = (float) (next_u32 () % 2001) / 1000.0f - 1.0f;
          for (int m = 0; m < 2; m++)
            {
              float d = (float) ((int) (next_u32 () % 17) - 8) / 64.0f;

              if (miss == 1 && i < chunk && next_u32 () % 4 != 0)
                d = (float) ((int) (next_u32 () % 5) - 2) / 64.0f;
              ((float *) models[m])[i] = base[i] + (miss == 2 && i < chunk ? d / 1024.0f : d);
            }
        }
      call.tensor_name = "t";
      call.ndim = 2;
      call.shape = shape;
      call.numel = n;
      call.n_models = 2;
      call.params = params;
      call.model_params = model_params;
      call.count = n;
      call.base = base;
      call.models = models;
      call.workspace = workspace;
      call.out = out_whole;
      g_assert_true (ties->apply (ties, &call, NULL));

      for (int pass = 0; pass < cru_method_stream_passes (ties, params); pass++)
        {
          if (ties->stream_pass_skip (ties, pass, state))
            {
              skipped++;
              continue;
            }
          for (guint64 off = 0; off < n; off += chunk)
            {
              const float *chunk_models[2] = { x0 + off, x1 + off };
              CruMethodCall c = call;

              c.offset = off;
              c.count = MIN (chunk, n - off);
              c.base = base + off;
              c.models = chunk_models;
              c.stream = state;
              ties->stream_pass (ties, &c, pass, state);
            }
          call.stream = state;
          g_assert_true (ties->stream_pass_end (ties, &call, pass, state, NULL));
        }
      g_assert_cmpint (skipped, ==, 2 - miss);
      for (guint64 off = 0; off < n; off += chunk)
        {
          const float *chunk_models[2] = { x0 + off, x1 + off };
          CruMethodCall c = call;

          c.offset = off;
          c.count = MIN (chunk, n - off);
          c.base = base + off;
          c.models = chunk_models;
          c.stream = state;
          c.out = out_streamed + off;
          g_assert_true (ties->apply (ties, &c, NULL));
        }
      assert_same_bits (out_whole, out_streamed, n * sizeof (float));
      g_free (state);
    }
  g_free (workspace);
}

static int
compare_u32 (gconstpointer a, gconstpointer b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;
  return x < y ? -1 : x > y;
}

/* Large inputs take the two-pass 16-bit radix select: compare with sorting. */
static void
test_select_large (void)
{
  const guint64 n = 200003;
  g_autofree float *v = g_new (float, n);
  g_autofree guint32 *keys = g_new (guint32, n);

  fill (v, n, TRUE);
  for (guint64 i = 0; i < n; i++)
    if (isnan (v[i]))
      v[i] = -0.00125f;
  for (int order = CRU_SELECT_ABS; order <= CRU_SELECT_SIGNED; order++)
    for (int skip = 0; skip < 2; skip++)
      {
        guint64 m = 0;

        for (guint64 i = 0; i < n; i++)
          if (!skip || v[i] != 0.0f)
            keys[m++] = cru_select_key (v[i], order);
        qsort (keys, m, sizeof (guint32), compare_u32);
        g_assert_cmpuint (cru_select_count (v, n, order, skip), ==, m);
        for (guint64 k = 0; k < m; k += 997)
          g_assert_cmphex (cru_select_kth_key (v, n, k, order, skip), ==, keys[k]);
        g_assert_cmphex (cru_select_kth_key (v, n, m - 1, order, skip), ==, keys[m - 1]);
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (int specials = 0; specials < 2; specials++)
    {
      const char *suffix = specials ? "with-nan-inf-zeros" : "plain";
      g_autofree char *p1 = g_strdup_printf ("/methods/kernels/weighted-sum-simd-equals-scalar/%s", suffix);
      g_autofree char *p2 = g_strdup_printf ("/methods/kernels/lerp-and-sub-simd-equal-scalar/%s", suffix);
      g_autofree char *p3 = g_strdup_printf ("/methods/kernels/mask-scale-simd-equals-scalar/%s", suffix);
      g_autofree char *p4 = g_strdup_printf ("/methods/kernels/consensus-simd-equals-scalar/%s", suffix);
      g_autofree char *p5 = g_strdup_printf ("/methods/kernels/topk-mask-equals-select/%s", suffix);
      g_test_add_data_func (p1, GINT_TO_POINTER (specials), test_weighted_sum);
      g_test_add_data_func (p2, GINT_TO_POINTER (specials), test_lerp_and_sub);
      g_test_add_data_func (p3, GINT_TO_POINTER (specials), test_mask_scale);
      g_test_add_data_func (p4, GINT_TO_POINTER (specials), test_consensus);
      g_test_add_data_func (p5, GINT_TO_POINTER (specials), test_topk_mask);
      {
        g_autofree char *p6 = g_strdup_printf ("/methods/kernels/sdm-add-simd-equals-scalar/%s", suffix);
        g_test_add_data_func (p6, GINT_TO_POINTER (specials), test_sdm_add);
      }
    }
  g_test_add_func ("/methods/kernels/sums3-equals-three-loops", test_sums3);
  g_test_add_func ("/methods/select/large-inputs-match-sorting", test_select_large);
  g_test_add_func ("/methods/kernels/random-bits-equal-rng", test_random_bits);
  g_test_add_data_func ("/methods/kernels/dare-bits-fused", GINT_TO_POINTER (FALSE),
                        test_bits_kernels);
  g_test_add_data_func ("/methods/kernels/dare-bits-fused-specials", GINT_TO_POINTER (TRUE),
                        test_bits_kernels);
  g_test_add_data_func ("/methods/kernels/ties-topk-fused", GINT_TO_POINTER (FALSE),
                        test_topk_fused);
  g_test_add_data_func ("/methods/kernels/ties-topk-fused-specials", GINT_TO_POINTER (TRUE),
                        test_topk_fused);
  g_test_add_func ("/methods/kernels/mask-pack-unpack", test_mask_pack);
  g_test_add_func ("/methods/kernels/fixed-sums-continue-over-chunks", test_fixed_sums);
  g_test_add_func ("/methods/sdm/streamed-statistics-equal-whole", test_sdm_streamed_statistics);
  g_test_add_func ("/methods/ties/streamed-window-hit-and-miss", test_ties_stream_window);
  g_test_add_func ("/methods/select/streamed-percentile-equals-whole", test_percentile_stream);
  g_test_add_func ("/methods/kernels/fused-difference-counts-and-sums", test_diff_kernels);
  g_test_add_func ("/methods/kernels/dense-digits-and-equal-runs", test_dense_digits);
  return g_test_run ();
}
