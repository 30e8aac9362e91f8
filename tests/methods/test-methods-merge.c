/* test-methods-merge.c — the math of every merge method against hand values and small
 * straightforward reference implementations (METHODS.md)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <stdlib.h>

#include "test-methods-util.h"

static void
test_linear_weighted_normalized (void)
{
  const float a[] = { 1, 2, 3 }, b[] = { 3, 6, 9 };
  const float *ms[] = { a, b };
  const float expect[] = { 2.5f, 5.0f, 7.5f };   /* (1·a + 3·b)/4 */
  const float expect_raw[] = { 10.0f, 20.0f, 30.0f };
  float out[3];
  TestCall tc;

  tc_init (&tc, "linear", 1, 3, NULL, ms, 2);
  tc_set_model (&tc, 1, "weight", 3.0);
  tc_run (&tc, out);
  assert_close (out, expect, 3, 1e-7);
  tc_set (&tc, "normalize", 0);
  tc_run (&tc, out);
  assert_close (out, expect_raw, 3, 1e-7);
}

static void
test_linear_zero_weight_sum_is_error (void)
{
  const float a[] = { 1, 2 }, b[] = { 3, 4 };
  const float *ms[] = { a, b };
  float out[2];
  TestCall tc;
  GError *error = NULL;

  tc_init (&tc, "linear", 1, 2, NULL, ms, 2);
  tc_set_model (&tc, 1, "weight", -1.0);
  g_assert_false (tc_run_chunk (&tc, 0, 2, out, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM);
  g_assert_nonnull (strstr (error->message, "add up to 0"));
  g_clear_error (&error);
}

static void
ref_slerp (double t, const float *v0, const float *v1, guint64 n, float *out)
{
  double n0 = 0, n1 = 0, d = 0, th;

  for (guint64 i = 0; i < n; i++)
    {
      n0 += (double) v0[i] * v0[i];
      n1 += (double) v1[i] * v1[i];
      d += (double) v0[i] * v1[i];
    }
  d /= sqrt (n0) * sqrt (n1);
  if (fabs (d) > 0.9995)
    {
      for (guint64 i = 0; i < n; i++)
        out[i] = (float) ((1 - t) * v0[i] + t * v1[i]);
      return;
    }
  th = acos (d);
  for (guint64 i = 0; i < n; i++)
    out[i] = (float) ((sin ((1 - t) * th) * v0[i] + sin (t * th) * v1[i]) / sin (th));
}

static void
test_slerp_endpoints_and_arc (void)
{
  float b[64], x[64], out[64], ref[64];
  const float *ms[] = { x };
  TestCall tc;

  fill_random (b, 64, 1, 1.0f);
  fill_random (x, 64, 2, 1.0f);
  tc_init (&tc, "slerp", 8, 8, b, ms, 1);
  tc_set (&tc, "t", 0.0);
  tc_run (&tc, out);
  assert_close (out, b, 64, 1e-6);
  tc_set (&tc, "t", 1.0);
  tc_run (&tc, out);
  assert_close (out, x, 64, 1e-6);
  tc_set (&tc, "t", 0.3);
  tc_run (&tc, out);
  ref_slerp (0.3, b, x, 64, ref);
  assert_close (out, ref, 64, 1e-6);
}

static void
test_slerp_colinear_uses_lerp (void)
{
  const float b[] = { 1, 2, 3, 4 }, x[] = { 2, 4, 6, 8.001f };   /* |d| > 0.9995 */
  const float *ms[] = { x };
  float out[4], expect[4];
  TestCall tc;

  for (int i = 0; i < 4; i++)
    expect[i] = 0.75f * b[i] + 0.25f * x[i];
  tc_init (&tc, "slerp", 1, 4, b, ms, 1);
  tc_set (&tc, "t", 0.25);
  tc_run (&tc, out);
  assert_close (out, expect, 4, 1e-6);
}

static void
test_nuslerp_rows_and_base (void)
{
  float b[24], x0[24], x1[24], out[24], ref[24], d0[24], d1[24];
  const float *ms[] = { x0, x1 };
  TestCall tc;

  fill_random (b, 24, 3, 1.0f);
  fill_random (x0, 24, 4, 1.0f);
  fill_random (x1, 24, 5, 1.0f);
  /* no base, per row of the last dim: t = w2/(w1+w2) = 3/4 */
  tc_init (&tc, "nuslerp", 4, 6, NULL, ms, 2);
  tc_set (&tc, "nuslerp_flatten", 0);
  tc_set_model (&tc, 1, "weight", 3.0);
  tc_run (&tc, out);
  for (int r = 0; r < 4; r++)
    ref_slerp (0.75, x0 + 6 * r, x1 + 6 * r, 6, ref + 6 * r);
  assert_close (out, ref, 24, 2e-6);

  /* row_wise: along the first dimension (columns here) */
  tc_set (&tc, "nuslerp_row_wise", 1);
  tc_run (&tc, out);
  for (int c = 0; c < 6; c++)
    {
      float c0[4], c1[4], cr[4];
      for (int r = 0; r < 4; r++)
        {
          c0[r] = x0[r * 6 + c];
          c1[r] = x1[r * 6 + c];
        }
      ref_slerp (0.75, c0, c1, 4, cr);
      for (int r = 0; r < 4; r++)
        ref[r * 6 + c] = cr[r];
    }
  assert_close (out, ref, 24, 2e-6);

  /* with a base, flattened (default): slerp of the deltas plus the base */
  tc_init (&tc, "nuslerp", 4, 6, b, ms, 2);
  tc_run (&tc, out);
  for (int i = 0; i < 24; i++)
    {
      d0[i] = x0[i] - b[i];
      d1[i] = x1[i] - b[i];
    }
  ref_slerp (0.5, d0, d1, 24, ref);
  for (int i = 0; i < 24; i++)
    ref[i] += b[i];
  assert_close (out, ref, 24, 2e-6);
}

static void
test_multislerp_matches_reference (void)
{
  enum { N = 40, M = 3 };
  float x[M][N], out[N], ref[N];
  const float *ms[] = { x[0], x[1], x[2] };
  const double w[M] = { 0.2, 0.3, 0.5 };
  double norms[M], u[M][N], mean[N] = { 0 }, mn = 0, T[N] = { 0 }, tn = 0, avg = 0;
  TestCall tc;

  for (int m = 0; m < M; m++)
    fill_random (x[m], N, 10 + m, 1.0f + m);
  for (int m = 0; m < M; m++)
    {
      double s = 0;
      for (int i = 0; i < N; i++)
        s += (double) x[m][i] * x[m][i];
      norms[m] = sqrt (s);
      for (int i = 0; i < N; i++)
        {
          u[m][i] = x[m][i] / (norms[m] + 1e-8);
          mean[i] += w[m] * u[m][i];
        }
      avg += w[m] * norms[m];
    }
  for (int i = 0; i < N; i++)
    mn += mean[i] * mean[i];
  mn = sqrt (mn);
  for (int i = 0; i < N; i++)
    mean[i] /= mn;
  for (int m = 0; m < M; m++)
    {
      double dot = 0;
      for (int i = 0; i < N; i++)
        dot += u[m][i] * mean[i];
      for (int i = 0; i < N; i++)
        T[i] += w[m] * (u[m][i] - dot * mean[i]);
    }
  for (int i = 0; i < N; i++)
    tn += T[i] * T[i];
  tn = sqrt (tn) + 1e-8;
  for (int i = 0; i < N; i++)
    ref[i] = (float) ((mean[i] * cos (tn) + T[i] * sin (tn) / tn) * avg);

  tc_init (&tc, "multislerp", 1, N, NULL, ms, M);
  for (int m = 0; m < M; m++)
    tc_set_model (&tc, m, "weight", w[m] * 10);   /* normalized to sum 1 */
  tc_run (&tc, out);
  assert_close (out, ref, N, 2e-6);
}

static void
test_multislerp_cancelling_directions (void)
{
  const float a[] = { 1, 2, 3 }, na[] = { -1, -2, -3 };
  const float *two[] = { a, na };
  const float *three[] = { a, na, a };
  const float zero[3] = { 0, 0, 0 };
  float out[3];
  TestCall tc;
  GError *error = NULL;

  /* ‖m‖ < eps with two models: the weighted sum w0·x0 + w1·x1 */
  tc_init (&tc, "multislerp", 1, 3, NULL, two, 2);
  tc_run (&tc, out);
  assert_close (out, zero, 3, 0);
  /* with more models: an error */
  tc_init (&tc, "multislerp", 1, 3, NULL, three, 3);
  tc_set_model (&tc, 1, "weight", 2);
  g_assert_false (tc_run_chunk (&tc, 0, 3, out, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM);
  g_clear_error (&error);
}

static void
test_karcher_orthogonal_pair (void)
{
  const float a[] = { 2, 0 }, b[] = { 0, 4 };
  const float *ms[] = { a, b };
  /* mean direction (1, 1)/√2, scale (2 + 4)/2 = 3 */
  const float expect[] = { (float) (3 / G_SQRT2), (float) (3 / G_SQRT2) };
  float out[2];
  TestCall tc;

  tc_init (&tc, "karcher", 1, 2, NULL, ms, 2);
  tc_run (&tc, out);
  assert_close (out, expect, 2, 1e-5);
}

static void
test_task_arithmetic_weights_lambda (void)
{
  const float b[] = { 1, 1, 1 }, x0[] = { 2, 0, 1 }, x1[] = { 1, 3, 5 };
  const float *ms[] = { x0, x1 };
  /* Δ0 = (1, −1, 0), Δ1 = (0, 2, 4); 0.5Δ0 + 2Δ1 = (0.5, 3.5, 8); λ = 2 → b + (1, 7, 16) */
  const float expect[] = { 2, 8, 17 };
  float out[3];
  TestCall tc;

  tc_init (&tc, "task_arithmetic", 1, 3, b, ms, 2);
  tc_set (&tc, "lambda", 2.0);
  tc_set_model (&tc, 0, "weight", 0.5);
  tc_set_model (&tc, 1, "weight", 2.0);
  tc_run (&tc, out);
  assert_close (out, expect, 3, 1e-7);
}

static void
test_ties_sign_election_zero_counts_positive (void)
{
  const float b[] = { 0, 0, 0, 0 };
  const float x0[] = { 1, -2, 3, 0 };
  const float x1[] = { -1, 1, 0, 0 };
  const float x2[] = { 0, 0, -1, 0 };
  const float *ms[] = { x0, x1, x2 };
  /* elem 0: Σ = 0 → +, only x0 agrees → 1/1; elem 1: Σ = −1 → −, x0 → −2/1;
   * elem 2: Σ = 2 → +, x0 only (a zero never agrees) → 3/1; elem 3: all zero → 0/1 */
  const float expect[] = { 1, -2, 3, 0 };
  float out[4];
  TestCall tc;

  tc_init (&tc, "ties", 1, 4, b, ms, 3);
  tc_run (&tc, out);
  assert_close (out, expect, 4, 0);
}

static void
test_ties_keeps_int_density_times_n (void)
{
  enum { N = 103 };
  float b[N], x[N], out[N];
  const float *ms[] = { x };
  float min_kept = INFINITY, max_dropped = 0;
  guint64 kept = 0;
  TestCall tc;

  fill_random (b, N, 20, 1.0f);
  fill_random (x, N, 21, 1.0f);
  tc_init (&tc, "ties", 1, N, b, ms, 1);
  tc_set (&tc, "density", 0.3);   /* k = int(30.9) = 30 */
  tc_run (&tc, out);
  for (int i = 0; i < N; i++)
    {
      float d = fabsf (x[i] - b[i]);
      if (out[i] != b[i])
        {
          kept++;
          min_kept = MIN (min_kept, d);
          g_assert_cmpfloat (out[i], ==, b[i] + (x[i] - b[i]));
        }
      else
        max_dropped = MAX (max_dropped, d);
    }
  g_assert_cmpuint (kept, ==, 30);
  g_assert_cmpfloat (min_kept, >=, max_dropped);
}

static void
test_ties_density_keeping_nothing_is_error (void)
{
  const float b[] = { 0, 0, 0 }, x[] = { 1, 2, 3 };
  const float *ms[] = { x };
  float out[3];
  TestCall tc;
  GError *error = NULL;

  tc_init (&tc, "ties", 1, 3, b, ms, 1);
  tc_set (&tc, "density", 0.2);   /* int(0.6) = 0 */
  g_assert_false (tc_run_chunk (&tc, 0, 3, out, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM);
  g_clear_error (&error);
}

static void
test_breadcrumbs_drops_bottom_and_top (void)
{
  const float b[10] = { 0 };
  const float x[10] = { 1, -2, 3, -4, 5, -6, 7, -8, 9, -10 };
  const float *ms[] = { x };
  float out[10];
  TestCall tc;

  /* keep = int(0.5·10) = 5, top = int(0.2·10) = 2, bot = 3 → ranks [3, 8) */
  tc_init (&tc, "breadcrumbs", 1, 10, b, ms, 1);
  tc_set (&tc, "density", 0.5);
  tc_set (&tc, "gamma", 0.2);
  tc_run (&tc, out);
  for (int i = 0; i < 10; i++)
    g_assert_cmpfloat (out[i], ==, (i >= 3 && i < 8) ? x[i] : 0.0f);

  /* bot < 0: keep = 9, top = 2 → bot = −1 → top = 1, bot = 0 → ranks [0, 9) */
  tc_set (&tc, "density", 0.9);
  tc_run (&tc, out);
  for (int i = 0; i < 10; i++)
    g_assert_cmpfloat (out[i], ==, i < 9 ? x[i] : 0.0f);

  /* top = 0 (γ·n < 1): Crucible keeps ranks [bot, n) where mergekit zeroes everything */
  tc_set (&tc, "density", 0.5);
  tc_set (&tc, "gamma", 0.01);
  tc_run (&tc, out);
  for (int i = 0; i < 10; i++)
    g_assert_cmpfloat (out[i], ==, i >= 5 ? x[i] : 0.0f);
}

static void
test_dare_kept_fraction_and_rescale (void)
{
  enum { N = 20000 };
  g_autofree float *b = g_new0 (float, N);
  g_autofree float *x = g_new (float, N);
  g_autofree float *out = g_new (float, N);
  g_autofree float *inv = g_new (float, N);
  g_autofree float *other = g_new (float, N);
  const float *ms[] = { x };
  const double rho = 0.3, sigma = sqrt (N * rho * (1 - rho));
  double l1_before = 0, l1_after = 0;
  guint64 kept = 0;
  int differ = 0;
  TestCall tc;

  for (int i = 0; i < N; i++)
    x[i] = 1.0f + (float) (i % 7);
  /* l1 (default): kept values scaled so that the L1 norm is preserved */
  tc_init (&tc, "dare_linear", 1, N, b, ms, 1);
  tc_set (&tc, "density", rho);
  tc_run (&tc, out);
  for (int i = 0; i < N; i++)
    {
      l1_before += fabs (x[i]);
      l1_after += fabs (out[i]);
      kept += out[i] != 0.0f;
    }
  g_assert_cmpfloat (fabs ((double) kept - N * rho), <, 3 * sigma);
  g_assert_cmpfloat_with_epsilon (l1_after / l1_before, 1.0, 1e-5);

  /* inverse: each kept value is Δ/ρ, same mask for the same seed */
  tc_set (&tc, "rescale", 2);
  tc_run (&tc, inv);
  for (int i = 0; i < N; i++)
    {
      g_assert_cmpint (inv[i] != 0.0f, ==, out[i] != 0.0f);
      if (inv[i] != 0.0f)
        g_assert_cmpfloat_with_epsilon (inv[i], x[i] / (float) rho, 1e-5);
    }
  /* another seed, another mask */
  tc.call.seed = 43;
  tc_run (&tc, other);
  for (int i = 0; i < N; i++)
    differ += (other[i] != 0.0f) != (out[i] != 0.0f);
  g_assert_cmpint (differ, >, 0);
}

static void
test_dare_inverse_chunked_equals_whole (void)
{
  enum { N = 1000 };
  float b[N], x0[N], x1[N], whole[N], chunked[N];
  const float *ms[] = { x0, x1 };
  TestCall tc;

  fill_random (b, N, 30, 1.0f);
  fill_random (x0, N, 31, 1.0f);
  fill_random (x1, N, 32, 1.0f);
  tc_init (&tc, "dare_ties", 1, N, b, ms, 2);
  tc_set (&tc, "density", 0.4);
  tc_set (&tc, "rescale", 2);
  g_assert_true (cru_method_is_elementwise (tc.method, tc.params));
  tc_run (&tc, whole);
  for (guint64 off = 0, len = 7; off < N; off += len, len += 13)
    {
      GError *error = NULL;
      g_assert_true (tc_run_chunk (&tc, off, MIN (len, N - off), chunked + off, &error));
      g_assert_no_error (error);
    }
  g_assert_cmpmem (whole, sizeof whole, chunked, sizeof chunked);
}

static void
test_elementwise_methods_chunk_identically (void)
{
  enum { N = 500 };
  float b[N], x0[N], x1[N], whole[N], chunked[N];
  const float *ms[] = { x0, x1 };

  fill_random (b, N, 40, 1.0f);
  fill_random (x0, N, 41, 1.0f);
  fill_random (x1, N, 42, 1.0f);
  for (guint k = 0; k < cru_method_get_n (); k++)
    {
      const CruMethod *m = cru_method_get_nth (k);
      int nm = m->max_models == 1 ? 1 : 2;
      TestCall tc;

      if (!(m->flags & CRU_METHOD_ELEMENTWISE))
        continue;
      tc_init (&tc, m->name, 1, N, (m->flags & CRU_METHOD_NEEDS_BASE) ? b : NULL, ms, nm);
      tc_run (&tc, whole);
      for (guint64 off = 0, len = 3; off < N; off += len, len += 29)
        g_assert_true (tc_run_chunk (&tc, off, MIN (len, N - off), chunked + off, NULL));
      if (memcmp (whole, chunked, sizeof whole) != 0)
        g_error ("%s gives different results in chunks", m->name);
    }
}

static void
test_della_keep_probability_follows_rank (void)
{
  enum { ROWS = 400, COLS = 50 };
  g_autofree float *b = g_new0 (float, ROWS * COLS);
  g_autofree float *x = g_new (float, ROWS * COLS);
  g_autofree float *out = g_new (float, ROWS * COLS);
  const float *ms[] = { x };
  int kept_small = 0, kept_large = 0;
  TestCall tc;

  /* each row holds 1…50 in a shuffled order with alternating signs: rank = |x| − 1 */
  for (int r = 0; r < ROWS; r++)
    for (int c = 0; c < COLS; c++)
      x[r * COLS + c] = (float) (1 + (c * 7 + r) % COLS) * (c % 2 ? -1.0f : 1.0f);
  tc_init (&tc, "della_linear", ROWS, COLS, b, ms, 1);
  tc_set (&tc, "density", 0.5);
  tc_set (&tc, "epsilon", 0.4);
  tc_set (&tc, "rescale", 0);
  tc_run (&tc, out);
  for (int i = 0; i < ROWS * COLS; i++)
    {
      if (fabsf (x[i]) == 1.0f && out[i] != 0.0f)
        kept_small++;   /* rank 0: p = 0.1 */
      if (fabsf (x[i]) == (float) COLS && out[i] != 0.0f)
        kept_large++;   /* rank 49: p = 0.9 */
      if (out[i] != 0.0f)
        g_assert_cmpfloat (out[i], ==, x[i]);
    }
  /* 400 draws each: 3σ = 18 */
  g_assert_cmpint (abs (kept_small - 40), <, 19);
  g_assert_cmpint (abs (kept_large - 360), <, 19);
}

static void
test_sce_topk_by_variance (void)
{
  const float b[] = { 0, 0, 0, 0 };
  const float x0[] = { 1, 5, 0.5f, -1 };
  const float x1[] = { 1, -5, 0.4f, 3 };
  const float *ms[] = { x0, x1 };
  float out[4];
  TestCall tc;

  /* variances 0, 25, 0.0025, 4 → 3 non-zero, k = int(3·0.67) = 2 → positions 1 and 3;
   * position 1: Σ = 0 → +, only x0 agrees → 5; position 3: Σ = 2 → +, only x1 → 3 */
  tc_init (&tc, "sce", 1, 4, b, ms, 2);
  tc_set (&tc, "select_topk", 0.67);
  tc_run (&tc, out);
  {
    const float expect[] = { 0, 5, 0, 3 };
    assert_close (out, expect, 4, 1e-6);
  }

  /* all positions: ω_i = mean(τ_i²) normalized, averaged where signs agree */
  tc_set (&tc, "select_topk", 1.0);
  tc_run (&tc, out);
  {
    double a0 = (1.0 + 25.0 + 0.25 + 1.0) / 4, a1 = (1.0 + 25.0 + 0.16 + 9.0) / 4;
    double p0 = a0 / (a0 + a1), p1 = a1 / (a0 + a1);
    const float expect[] = { 1, 5, (float) ((p0 * 0.5 + p1 * 0.4) / (p0 + p1)), 3 };
    assert_close (out, expect, 4, 1e-6);
  }
}

static void
test_ram_unique_and_shared (void)
{
  const float b[] = { 0, 0, 0, 0 };
  const float x0[] = { 2, 4, 0, 1e-6f };
  const float x1[] = { 0, 2, 0, 3 };
  const float *ms[] = { x0, x1 };
  /* unique, shared average, nobody, 1e-6 is below epsilon so x1 is unique */
  const float expect[] = { 2, 3, 0, 3 };
  /* ramplus: each model has 1 shared and 1 unique → ρ = 1 → λ = 1 + 0.1·min (1, 0.2) */
  const float expect_plus[] = { 2 * 1.02f, 3, 0, 3 * 1.02f };
  float out[4];
  TestCall tc;

  tc_init (&tc, "ram", 1, 4, b, ms, 2);
  tc_run (&tc, out);
  assert_close (out, expect, 4, 1e-7);
  tc_init (&tc, "ramplus_tl", 1, 4, b, ms, 2);
  tc_run (&tc, out);
  assert_close (out, expect_plus, 4, 1e-6);
}

static void
test_model_stock_cos_and_ratio (void)
{
  const float b[] = { 0, 0 };
  const float x0[] = { 1, 0 }, x1[] = { 0, 1 }, x2[] = { 2, 0 };
  const float *orth[] = { x0, x1 };
  const float *par[] = { x0, x2 };
  float out[2];
  TestCall tc;

  /* orthogonal deltas: cos = 0 → t = 0 → the base */
  tc_init (&tc, "model_stock", 1, 2, b, orth, 2);
  tc_run (&tc, out);
  g_assert_cmpfloat (out[0], ==, 0);
  g_assert_cmpfloat (out[1], ==, 0);
  /* parallel deltas: cos clamps to 1 → t = 1 → the mean of the models */
  tc_init (&tc, "model_stock", 1, 2, b, par, 2);
  tc_run (&tc, out);
  g_assert_cmpfloat_with_epsilon (out[0], 1.5, 1e-6);
  g_assert_cmpfloat_with_epsilon (out[1], 0.0, 1e-6);
}

static void
test_nearswap_threshold (void)
{
  const float b[] = { 0, 0, 1 }, x[] = { 0.5f, 0.05f, 1 };
  const float *ms[] = { x };
  float out[3];
  TestCall tc;

  tc_init (&tc, "nearswap", 1, 3, b, ms, 1);
  tc_set (&tc, "t", 0.1);
  tc_run (&tc, out);
  /* ω = 0.1/0.5 = 0.2 → 0.1; ω = 2 → clamped to 1 → x; equal → x */
  g_assert_cmpfloat_with_epsilon (out[0], 0.1, 1e-7);
  g_assert_cmpfloat (out[1], ==, 0.05f);
  g_assert_cmpfloat (out[2], ==, 1.0f);
}

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return x < y ? -1 : x > y;
}

static void
test_arcee_fusion_quantile_threshold (void)
{
  enum { ROWS = 16, COLS = 32, N = ROWS * COLS };
  float b[N], x[N], out[N], imp[N], sorted[N], thr;
  const float *ms[] = { x };
  int kept = 0;
  TestCall tc;

  fill_random (b, N, 50, 1.0f);
  fill_random (x, N, 51, 1.0f);
  for (int r = 0; r < ROWS; r++)
    {
      const float *xr = x + r * COLS, *br = b + r * COLS;
      double mx = -INFINITY, mb = -INFINITY, sx = 0, sb = 0, kl = 0;
      for (int c = 0; c < COLS; c++)
        {
          mx = MAX (mx, xr[c]);
          mb = MAX (mb, br[c]);
        }
      for (int c = 0; c < COLS; c++)
        {
          sx += exp (xr[c] - mx);
          sb += exp (br[c] - mb);
        }
      for (int c = 0; c < COLS; c++)
        {
          double p = exp (xr[c] - mx) / sx + 1e-8, q = exp (br[c] - mb) / sb + 1e-8;
          kl += p * log (p / q);
        }
      for (int c = 0; c < COLS; c++)
        imp[r * COLS + c] = fabsf (xr[c] - br[c]) * (float) kl;
    }
  memcpy (sorted, imp, sizeof imp);
  qsort (sorted, N, sizeof (float), cmp_float);
  thr = sorted[(int) (0.5 * (N - 1))]
        + 1.5f * (sorted[(int) (0.75 * (N - 1))] - sorted[(int) (0.25 * (N - 1))]);

  tc_init (&tc, "arcee_fusion", ROWS, COLS, b, ms, 1);
  tc_run (&tc, out);
  for (int i = 0; i < N; i++)
    {
      gboolean keep = imp[i] >= thr;
      kept += keep;
      g_assert_cmpfloat (out[i], ==, b[i] + (x[i] - b[i]) * (keep ? 1.0f : 0.0f));
    }
  g_assert_cmpint (kept, >, 0);
  g_assert_cmpint (kept, <, N);
}

static void
test_passthrough_scale (void)
{
  const float x[] = { 1, -2 };
  const float *ms[] = { x };
  float out[2];
  TestCall tc;

  tc_init (&tc, "passthrough", 1, 2, NULL, ms, 1);
  tc_set_model (&tc, 0, "scale", 0.5);
  tc_run (&tc, out);
  g_assert_cmpfloat (out[0], ==, 0.5f);
  g_assert_cmpfloat (out[1], ==, -1.0f);
}

/* k = 50: x0's S = {1,2,3,4} → P = 2.5 keeps 3, 4 (M0 = 7); x1's S = {1,2,3} → P = 2
 * keeps 2, 3 (M1 = 5) */
static void
test_sdm_w_percentile_and_weights (void)
{
  const float b[] = { 0, 0, 0, 0, 0 };
  const float x0[] = { 1, -2, 3, 4, 0 };
  const float x1[] = { 0, 0, -1, 2, 3 };
  const float *ms[] = { x0, x1 };
  const CruMethod *sdm = cru_method_lookup ("sdm_w");
  float out[5];
  TestCall tc;
  gpointer stats;
  GError *error = NULL;
  const double *w;
  void *ws;
  CruMethodCall call;

  tc_init (&tc, "sdm_w", 1, 5, b, ms, 2);
  tc_set (&tc, "k", 50);

  /* statistics pass over two tensors (the same one twice) */
  stats = sdm->stats_new (sdm, 2);
  ws = g_aligned_alloc0 (1, sdm->workspace_bytes (2, 5), 64);
  call = tc.call;
  call.workspace = ws;
  sdm->stats_accumulate (stats, &call);
  sdm->stats_accumulate (stats, &call);
  g_aligned_free (ws);
  g_assert_true (sdm->stats_finish (stats, &error));
  g_assert_no_error (error);
  w = sdm->stats_get_weights (stats);
  g_assert_cmpfloat_with_epsilon (w[0], 14.0 / 24.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (w[1], 10.0 / 24.0, 1e-12);

  tc.call.stats = stats;
  tc_run (&tc, out);
  {
    const float expect[] = { 0, 0, (float) (7.0 / 12 * 3), (float) (7.0 / 12 * 4 + 5.0 / 12 * 2),
                             (float) (5.0 / 12 * 3) };   /* x1's −1 is below its P */
    assert_close (out, expect, 5, 1e-6);
  }

  /* square normalization: W = 49/74, 25/74 */
  tc_set (&tc, "normalization", 1);
  tc_run (&tc, out);
  {
    const float expect[] = { 0, 0, (float) (49.0 / 74 * 3),
                             (float) (49.0 / 74 * 4 + 25.0 / 74 * 2), (float) (25.0 / 74 * 3) };
    assert_close (out, expect, 5, 1e-6);
  }

  /* per-tensor weights need no statistics */
  tc.call.stats = NULL;
  tc_set (&tc, "normalization", 0);
  tc_set (&tc, "weights_scope", 1);
  tc_run (&tc, out);
  {
    const float expect[] = { 0, 0, (float) (7.0 / 12 * 3), (float) (7.0 / 12 * 4 + 5.0 / 12 * 2),
                             (float) (5.0 / 12 * 3) };
    assert_close (out, expect, 5, 1e-6);
  }
  sdm->stats_free (stats);
}

static void
test_sdm_w_default_k_keeps_ninety_percent (void)
{
  enum { N = 1001 };
  float b[N], x[N], out[N];
  const float *ms[] = { x };
  int kept = 0;
  TestCall tc;

  fill_random (b, N, 60, 1.0f);
  fill_random (x, N, 61, 1.0f);
  tc_init (&tc, "sdm_w", 1, N, b, ms, 1);
  tc_set (&tc, "weights_scope", 1);
  tc_run (&tc, out);
  for (int i = 0; i < N; i++)
    kept += out[i] != b[i];
  g_assert_cmpint (kept, ==, 901);   /* P is rank 100 exactly: ranks 100…1000 (901) survive */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/methods/linear/weighted-normalized", test_linear_weighted_normalized);
  g_test_add_func ("/engine/methods/linear/zero-weight-sum-is-error", test_linear_zero_weight_sum_is_error);
  g_test_add_func ("/engine/methods/slerp/endpoints-and-arc", test_slerp_endpoints_and_arc);
  g_test_add_func ("/engine/methods/slerp/colinear-uses-lerp", test_slerp_colinear_uses_lerp);
  g_test_add_func ("/engine/methods/nuslerp/rows-columns-and-base", test_nuslerp_rows_and_base);
  g_test_add_func ("/engine/methods/multislerp/matches-reference", test_multislerp_matches_reference);
  g_test_add_func ("/engine/methods/multislerp/cancelling-directions", test_multislerp_cancelling_directions);
  g_test_add_func ("/engine/methods/karcher/orthogonal-pair", test_karcher_orthogonal_pair);
  g_test_add_func ("/engine/methods/task_arithmetic/weights-and-lambda", test_task_arithmetic_weights_lambda);
  g_test_add_func ("/engine/methods/ties/sign-election-zero-counts-positive", test_ties_sign_election_zero_counts_positive);
  g_test_add_func ("/engine/methods/ties/keeps-int-density-times-n", test_ties_keeps_int_density_times_n);
  g_test_add_func ("/engine/methods/ties/density-keeping-nothing-is-error", test_ties_density_keeping_nothing_is_error);
  g_test_add_func ("/engine/methods/breadcrumbs/drops-bottom-and-top", test_breadcrumbs_drops_bottom_and_top);
  g_test_add_func ("/engine/methods/dare/kept-fraction-and-rescale", test_dare_kept_fraction_and_rescale);
  g_test_add_func ("/engine/methods/dare/inverse-chunked-equals-whole", test_dare_inverse_chunked_equals_whole);
  g_test_add_func ("/engine/methods/elementwise/chunk-identically", test_elementwise_methods_chunk_identically);
  g_test_add_func ("/engine/methods/della/keep-probability-follows-rank", test_della_keep_probability_follows_rank);
  g_test_add_func ("/engine/methods/sce/topk-by-variance", test_sce_topk_by_variance);
  g_test_add_func ("/engine/methods/ram/unique-and-shared", test_ram_unique_and_shared);
  g_test_add_func ("/engine/methods/model_stock/cos-and-ratio", test_model_stock_cos_and_ratio);
  g_test_add_func ("/engine/methods/nearswap/threshold", test_nearswap_threshold);
  g_test_add_func ("/engine/methods/arcee_fusion/quantile-threshold", test_arcee_fusion_quantile_threshold);
  g_test_add_func ("/engine/methods/passthrough/scale", test_passthrough_scale);
  g_test_add_func ("/engine/methods/sdm_w/percentile-and-weights", test_sdm_w_percentile_and_weights);
  g_test_add_func ("/engine/methods/sdm_w/default-k-keeps-ninety-percent", test_sdm_w_default_k_keeps_ninety_percent);
  return g_test_run ();
}
