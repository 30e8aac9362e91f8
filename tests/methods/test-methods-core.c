/* test-methods-core.c — parameter values, RNG, selection, registry and validation
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <stdlib.h>

#include "cru-rng.h"
#include "cru-select.h"
#include "cru-value.h"
#include "test-methods-util.h"

/* ---- values ---- */

static void
test_value_filter_first_match (void)
{
  g_autoptr(CruValue) v = cru_value_new_filtered ();
  double out = -1;

  cru_value_add_filter (v, "self_attn", cru_value_new_scalar (0.3));
  cru_value_add_filter (v, "attn", cru_value_new_scalar (0.9));   /* shadowed for self_attn */
  cru_value_add_filter (v, "mlp", cru_value_new_scalar (0.7));
  cru_value_add_filter (v, NULL, cru_value_new_scalar (0.5));

  g_assert_true (cru_value_resolve (v, "model.layers.1.self_attn.q_proj.weight", 0, &out));
  g_assert_cmpfloat (out, ==, 0.3);
  g_assert_true (cru_value_resolve (v, "model.layers.1.cross_attn.q_proj.weight", 0, &out));
  g_assert_cmpfloat (out, ==, 0.9);
  g_assert_true (cru_value_resolve (v, "model.layers.1.mlp.up_proj.weight", 0, &out));
  g_assert_cmpfloat (out, ==, 0.7);
  g_assert_true (cru_value_resolve (v, "model.norm.weight", 0, &out));
  g_assert_cmpfloat (out, ==, 0.5);
}

static void
test_value_filter_star_and_no_match (void)
{
  g_autoptr(CruValue) v = cru_value_new_filtered ();
  g_autoptr(CruValue) star = cru_value_new_filtered ();
  double out = -1;

  cru_value_add_filter (v, "mlp", cru_value_new_scalar (0.7));
  g_assert_false (cru_value_resolve (v, "model.norm.weight", 0, &out));
  g_assert_cmpfloat (out, ==, -1);

  cru_value_add_filter (star, "*", cru_value_new_scalar (0.25));
  cru_value_add_filter (star, "mlp", cru_value_new_scalar (0.7));
  g_assert_true (cru_value_resolve (star, "model.layers.0.mlp.up_proj.weight", 0, &out));
  g_assert_cmpfloat (out, ==, 0.25);
}

static void
test_value_gradient_interpolation (void)
{
  const double pts[] = { 0.0, 0.5, 1.0, 0.5, 0.0 };
  g_autoptr(CruValue) v = cru_value_new_gradient (pts, 5);
  double out;

  /* slice of 9 layers: layer idx 1 → t = 1/8 → s = 0.5 → halfway between 0 and 0.5 */
  g_assert_true (cru_value_resolve (v, "x", cru_value_layer_t (1, 9), &out));
  g_assert_cmpfloat_with_epsilon (out, 0.25, 1e-12);
  g_assert_true (cru_value_resolve (v, "x", cru_value_layer_t (4, 9), &out));
  g_assert_cmpfloat_with_epsilon (out, 1.0, 1e-12);
  g_assert_true (cru_value_resolve (v, "x", cru_value_layer_t (8, 9), &out));
  g_assert_cmpfloat_with_epsilon (out, 0.0, 1e-12);
  g_assert_true (cru_value_resolve (v, "x", cru_value_layer_t (3, 9), &out));
  g_assert_cmpfloat_with_epsilon (out, 0.75, 1e-12);
}

static void
test_value_layer_t_rules (void)
{
  const double pts[] = { 0.2, 0.8 };
  g_autoptr(CruValue) v = cru_value_new_gradient (pts, 2);
  double out;

  g_assert_cmpfloat (cru_value_layer_t (0, 1), ==, 1.0);   /* n = 1 → t = 1 */
  g_assert_cmpfloat (cru_value_layer_t (-1, 32), ==, 0.0); /* outside layers → t = 0 */
  g_assert_cmpfloat (cru_value_layer_t (0, 32), ==, 0.0);
  g_assert_cmpfloat (cru_value_layer_t (31, 32), ==, 1.0);
  g_assert_true (cru_value_resolve (v, "model.embed_tokens.weight", cru_value_layer_t (-1, 32), &out));
  g_assert_cmpfloat_with_epsilon (out, 0.2, 1e-12);
  g_assert_true (cru_value_resolve (v, "x", cru_value_layer_t (0, 1), &out));
  g_assert_cmpfloat_with_epsilon (out, 0.8, 1e-12);
}

static void
test_value_filtered_gradient_and_json (void)
{
  const double pts[] = { 0.0, 1.0 };
  g_autoptr(CruValue) v = cru_value_new_filtered ();
  g_autoptr(CruValue) back = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *display = NULL;
  double out;

  cru_value_add_filter (v, "self_attn", cru_value_new_gradient (pts, 2));
  cru_value_add_filter (v, NULL, cru_value_new_scalar (0.5));
  g_assert_true (cru_value_resolve (v, "layers.2.self_attn.k_proj", 0.25, &out));
  g_assert_cmpfloat_with_epsilon (out, 0.25, 1e-12);

  node = cru_value_to_json (v);
  back = cru_value_from_json (node, &error);
  g_assert_no_error (error);
  g_assert_true (cru_value_equal (v, back));

  display = cru_value_to_display (v);
  g_assert_nonnull (strstr (display, "self_attn"));
  g_assert_nonnull (strstr (display, "0.5"));
}

static void
test_value_json_kinds (void)
{
  const char *texts[] = { "0.5", "true", "\"square\"", "[1, 2, 3]", "[\"a\", \"b\"]" };
  const CruValueKind kinds[] = { CRU_VALUE_SCALAR, CRU_VALUE_SCALAR, CRU_VALUE_STRING,
                                 CRU_VALUE_GRADIENT, CRU_VALUE_STRINGS };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(JsonNode) node = json_from_string (texts[i], NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(CruValue) v = cru_value_from_json (node, &error);
      g_autoptr(JsonNode) again = NULL;
      g_autoptr(CruValue) v2 = NULL;
      g_assert_no_error (error);
      g_assert_cmpint (v->kind, ==, kinds[i]);
      again = cru_value_to_json (v);
      v2 = cru_value_from_json (again, &error);
      g_assert_no_error (error);
      g_assert_true (cru_value_equal (v, v2));
    }
  {
    g_autoptr(JsonNode) node = json_from_string ("[1, \"x\"]", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CruValue) v = cru_value_from_json (node, &error);
    g_assert_null (v);
    g_assert_nonnull (error);
  }
}

/* ---- RNG ---- */

static void
test_rng_philox_known_answers (void)
{
  const uint32_t ctr[3][4] = { { 0, 0, 0, 0 },
                               { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff },
                               { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 } };
  const uint32_t key[3][2] = { { 0, 0 }, { 0xffffffff, 0xffffffff }, { 0xa4093822, 0x299f31d0 } };
  const uint32_t expect[3][4] = { { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 },
                                  { 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd },
                                  { 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 } };
  for (int t = 0; t < 3; t++)
    {
      uint32_t out[4];
      cru_philox4x32_10 (ctr[t], key[t], out);
      for (int j = 0; j < 4; j++)
        g_assert_cmphex (out[j], ==, expect[t][j]);
    }
}

static void
test_rng_same_for_any_chunking (void)
{
  CruRng rng, other;
  float whole[1003], piece[1003];

  cru_rng_init (&rng, 1234, "model.layers.3.mlp.down_proj.weight", 2);
  cru_rng_uniform (&rng, 0, 1003, whole);
  /* odd chunk boundaries, not multiples of 4 */
  for (guint64 start = 0, len = 1; start < 1003; start += len, len = len * 3 % 97 + 1)
    cru_rng_uniform (&rng, start, MIN (len, 1003 - start), piece + start);
  g_assert_cmpmem (whole, sizeof whole, piece, sizeof piece);
  for (int i = 0; i < 1003; i++)
    {
      g_assert_cmpfloat (whole[i], ==, cru_rng_uniform1 (&rng, i));
      g_assert_cmpfloat (whole[i], >=, 0.0f);
      g_assert_cmpfloat (whole[i], <, 1.0f);
    }

  /* a different model key or tensor name gives different numbers */
  cru_rng_init (&other, 1234, "model.layers.3.mlp.down_proj.weight", 3);
  g_assert_cmpfloat (cru_rng_uniform1 (&other, 0), !=, whole[0]);
  cru_rng_init (&other, 1234, "model.layers.4.mlp.down_proj.weight", 2);
  g_assert_cmpfloat (cru_rng_uniform1 (&other, 0), !=, whole[0]);
}

/* ---- selection ---- */

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return x < y ? -1 : x > y;
}

/* zeros of both signs, many duplicates, magnitudes over ten decades */
static void
make_tricky (float *v, guint64 n, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  for (guint64 i = 0; i < n; i++)
    {
      int kind = g_rand_int_range (r, 0, 6);
      if (kind == 0)
        v[i] = 0.0f;
      else if (kind == 1)
        v[i] = -0.0f;
      else if (kind == 2)
        v[i] = (float) g_rand_int_range (r, -3, 4) * 0.5f;
      else
        v[i] = (float) g_rand_double_range (r, -2.0, 2.0) * powf (10.0f, g_rand_int_range (r, -8, 3));
    }
  g_rand_free (r);
}

static void
test_select_matches_sort (void)
{
  for (guint32 seed = 1; seed <= 20; seed++)
    {
      guint64 n = 1 + seed * 97;
      g_autofree float *v = g_new (float, n);
      g_autofree float *sorted = g_new (float, n);
      g_autofree float *abs_sorted = g_new (float, n);

      make_tricky (v, n, seed);
      memcpy (sorted, v, n * sizeof (float));
      qsort (sorted, n, sizeof (float), cmp_float);
      for (guint64 i = 0; i < n; i++)
        abs_sorted[i] = fabsf (v[i]);
      qsort (abs_sorted, n, sizeof (float), cmp_float);

      for (guint64 k = 0; k < n; k += 1 + n / 13)
        {
          g_assert_cmpfloat (cru_select_kth (v, n, k, CRU_SELECT_SIGNED, FALSE), ==, sorted[k]);
          g_assert_cmpfloat (cru_select_kth (v, n, k, CRU_SELECT_ABS, FALSE), ==, abs_sorted[k]);
        }
    }
}

static void
test_select_topk_exact_count_lowest_index_ties (void)
{
  const float v[] = { 1, -3, 2, 3, -2, 2, 0, 3, -1 };
  guint8 mask[9];
  /* |v| descending: 3,3,3,2,2,2,…; k = 4 → the three 3s and the first 2 (index 2) */
  const guint8 expect[9] = { 0, 1, 1, 1, 0, 0, 0, 1, 0 };

  cru_select_topk_mask (v, 9, 4, CRU_SELECT_ABS, mask);
  g_assert_cmpmem (mask, 9, expect, 9);

  for (guint32 seed = 1; seed <= 10; seed++)
    {
      guint64 n = 500 + seed;
      g_autofree float *w = g_new (float, n);
      g_autofree guint8 *m = g_new (guint8, n);
      make_tricky (w, n, seed + 100);
      for (guint64 k = 0; k <= n; k += 37)
        {
          guint64 kept = 0;
          float min_kept = INFINITY, max_dropped = 0;
          cru_select_topk_mask (w, n, k, CRU_SELECT_ABS, m);
          for (guint64 i = 0; i < n; i++)
            {
              kept += m[i];
              if (m[i])
                min_kept = MIN (min_kept, fabsf (w[i]));
              else
                max_dropped = MAX (max_dropped, fabsf (w[i]));
            }
          g_assert_cmpuint (kept, ==, k);
          if (k > 0 && k < n)
            g_assert_cmpfloat (min_kept, >=, max_dropped);
        }
    }
}

static void
test_select_rank_range_is_stable_sort (void)
{
  const float v[] = { 2, 1, 2, 0, 2, 1 };
  guint8 mask[6];
  /* stable ascending ranks: i3→0, i1→1, i5→2, i0→3, i2→4, i4→5; ranks [2, 5) */
  const guint8 expect[6] = { 1, 0, 1, 0, 0, 1 };

  cru_select_rank_range_mask (v, 6, 2, 5, CRU_SELECT_ABS, mask);
  g_assert_cmpmem (mask, 6, expect, 6);
}

static double
numpy_percentile (const float *v, guint64 n, double q)
{
  g_autofree float *s = g_new (float, n);
  guint64 m = 0, lo, hi;
  double pos, f;

  for (guint64 i = 0; i < n; i++)
    if (v[i] != 0.0f)
      s[m++] = fabsf (v[i]);
  qsort (s, m, sizeof (float), cmp_float);
  pos = q / 100.0 * (double) (m - 1);
  lo = (guint64) floor (pos);
  hi = MIN (lo + 1, m - 1);
  f = pos - lo;
  return s[lo] + ((double) s[hi] - s[lo]) * f;
}

static void
test_select_percentile_numpy_linear (void)
{
  const float v[] = { 0, 4, -1, 0, 3, 2 };   /* S = {1, 2, 3, 4} */
  const float zeros[] = { 0, -0.0f, 0 };
  double p;

  g_assert_true (cru_select_percentile (v, 6, 10, CRU_SELECT_ABS, TRUE, &p));
  g_assert_cmpfloat_with_epsilon (p, 1.3, 1e-12);   /* pos 0.3 → 1 + 0.3·1 */
  g_assert_true (cru_select_percentile (v, 6, 50, CRU_SELECT_ABS, TRUE, &p));
  g_assert_cmpfloat_with_epsilon (p, 2.5, 1e-12);
  g_assert_true (cru_select_percentile (v, 6, 100, CRU_SELECT_ABS, TRUE, &p));
  g_assert_cmpfloat_with_epsilon (p, 4.0, 1e-12);
  g_assert_false (cru_select_percentile (zeros, 3, 10, CRU_SELECT_ABS, TRUE, &p));

  for (guint32 seed = 1; seed <= 10; seed++)
    {
      guint64 n = 300 + 41 * seed;
      g_autofree float *w = g_new (float, n);
      make_tricky (w, n, seed + 7);
      for (double q = 0; q <= 100; q += 12.5)
        {
          g_assert_true (cru_select_percentile (w, n, q, CRU_SELECT_ABS, TRUE, &p));
          g_assert_cmpfloat_with_epsilon (p, numpy_percentile (w, n, q), 1e-12 + 1e-9 * fabs (p));
        }
    }
}

/* ---- registry and validation ---- */

static void
test_registry_all_methods (void)
{
  const char *names[] = { "linear", "slerp", "nuslerp", "multislerp", "karcher",
                          "task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs",
                          "breadcrumbs_ties", "della", "della_linear", "sce", "ram",
                          "ramplus_tl", "model_stock", "nearswap", "arcee_fusion",
                          "passthrough", "sdm_w" };
  const CruMethod *dare = cru_method_lookup ("dare_linear");
  double params[TC_MAX_PARAMS];
  int p;

  g_assert_cmpuint (cru_method_get_n (), ==, G_N_ELEMENTS (names));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const CruMethod *m = cru_method_lookup (names[i]);
      g_assert_nonnull (m);
      g_assert_true (cru_method_get_nth (i) == m);
      g_assert_nonnull (m->apply);
      g_assert_nonnull (m->workspace_bytes);
      g_assert_cmpint (cru_method_find_param (m, "weight"), >=, 0);
      for (int q = 0; q < m->n_params; q++)
        {
          char *msg = NULL;
          /* every default passes its own check */
          if (!cru_param_spec_check (m, &m->params[q], m->params[q].default_value, &msg))
            g_error ("%s", msg);
        }
    }
  g_assert_null (cru_method_lookup ("densty"));
  g_assert_cmpint (cru_method_find_param (cru_method_lookup ("ties"), "densty"), ==, -1);
  g_assert_true (cru_method_lookup ("sdm_w")->flags & CRU_METHOD_STATS_PASS);
  g_assert_true (cru_method_is_elementwise (cru_method_lookup ("task_arithmetic"), NULL));
  g_assert_false (cru_method_is_elementwise (cru_method_lookup ("ties"), NULL));
  g_assert_false (cru_method_is_elementwise (dare, NULL));

  p = cru_method_find_param (dare, "rescale");
  cru_method_fill_defaults (dare, params);
  g_assert_cmpfloat (params[p], ==, 1);   /* l1, mergekit's rule */
  g_assert_cmpint (cru_param_spec_find_choice (&dare->params[p], "inverse"), ==, 2);
  params[p] = 2;
  g_assert_true (cru_method_is_elementwise (dare, params));
}

static gboolean
problems_contain (GPtrArray *problems, const char *a, const char *b)
{
  for (guint i = 0; i < problems->len; i++)
    {
      const char *s = g_ptr_array_index (problems, i);
      if (strstr (s, a) && (b == NULL || strstr (s, b)))
        return TRUE;
    }
  return FALSE;
}

static void
test_validate_reports_every_problem (void)
{
  const CruMethod *ties = cru_method_lookup ("ties");
  const CruMethod *slerp = cru_method_lookup ("slerp");
  const CruMethod *della = cru_method_lookup ("della");
  double params[TC_MAX_PARAMS], mp[3 * TC_MAX_PARAMS];
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);

  /* ties: no base and density 0 for model 2, both reported */
  cru_method_fill_defaults (ties, params);
  for (int m = 0; m < 2; m++)
    cru_method_fill_defaults (ties, mp + m * ties->n_params);
  mp[1 * ties->n_params + cru_method_find_param (ties, "density")] = 0.0;
  cru_method_validate (ties, FALSE, 2, params, mp, problems);
  g_assert_cmpuint (problems->len, ==, 2);
  g_assert_true (problems_contain (problems, "ties", "base"));
  g_assert_true (problems_contain (problems, "ties: density must be in (0, 1], got 0", "model 2"));

  /* slerp: t outside [0, 1] and three models */
  g_ptr_array_set_size (problems, 0);
  cru_method_fill_defaults (slerp, params);
  params[cru_method_find_param (slerp, "t")] = 1.5;
  for (int m = 0; m < 3; m++)
    cru_method_fill_defaults (slerp, mp + m * slerp->n_params);
  cru_method_validate (slerp, TRUE, 3, params, mp, problems);
  g_assert_cmpuint (problems->len, ==, 2);
  g_assert_true (problems_contain (problems, "slerp: t must be in [0, 1], got 1.5", NULL));
  g_assert_true (problems_contain (problems, "slerp", "at most 1"));

  /* della: ρ − ε ≤ 0 */
  g_ptr_array_set_size (problems, 0);
  cru_method_fill_defaults (della, params);
  cru_method_fill_defaults (della, mp);
  mp[cru_method_find_param (della, "density")] = 0.1;
  mp[cru_method_find_param (della, "epsilon")] = 0.15;
  cru_method_validate (della, TRUE, 1, params, mp, problems);
  g_assert_cmpuint (problems->len, ==, 1);
  g_assert_true (problems_contain (problems, "della", "epsilon"));

  /* a good call has none */
  g_ptr_array_set_size (problems, 0);
  cru_method_fill_defaults (della, mp);
  mp[cru_method_find_param (della, "density")] = 0.5;
  cru_method_validate (della, TRUE, 1, params, mp, problems);
  g_assert_cmpuint (problems->len, ==, 0);
}

static void
test_param_check_messages (void)
{
  const CruMethod *dare = cru_method_lookup ("dare_ties");
  const CruMethod *nearswap = cru_method_lookup ("nearswap");
  const CruMethod *karcher = cru_method_lookup ("karcher");
  g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;

  g_assert_false (cru_param_spec_check (dare, &dare->params[cru_method_find_param (dare, "rescale")], 5, &m1));
  g_assert_nonnull (strstr (m1, "none, l1, inverse"));
  g_assert_false (cru_param_spec_check (nearswap, &nearswap->params[cru_method_find_param (nearswap, "t")], 0, &m2));
  g_assert_nonnull (strstr (m2, "greater than 0"));
  g_assert_false (cru_param_spec_check (karcher, &karcher->params[cru_method_find_param (karcher, "max_iter")], 2.5, &m3));
  g_assert_nonnull (strstr (m3, "whole number"));
  g_assert_false (cru_param_spec_check (dare, &dare->params[cru_method_find_param (dare, "density")], NAN, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/methods/value/filter-first-match-wins", test_value_filter_first_match);
  g_test_add_func ("/engine/methods/value/filter-star-and-no-match", test_value_filter_star_and_no_match);
  g_test_add_func ("/engine/methods/value/gradient-interpolates-per-slice", test_value_gradient_interpolation);
  g_test_add_func ("/engine/methods/value/layer-t-single-layer-and-outside", test_value_layer_t_rules);
  g_test_add_func ("/engine/methods/value/filtered-gradient-json-roundtrip", test_value_filtered_gradient_and_json);
  g_test_add_func ("/engine/methods/value/json-kinds", test_value_json_kinds);
  g_test_add_func ("/engine/methods/rng/philox-known-answers", test_rng_philox_known_answers);
  g_test_add_func ("/engine/methods/rng/same-for-any-chunking", test_rng_same_for_any_chunking);
  g_test_add_func ("/engine/methods/select/kth-matches-sort", test_select_matches_sort);
  g_test_add_func ("/engine/methods/select/topk-exact-count-lowest-index-ties", test_select_topk_exact_count_lowest_index_ties);
  g_test_add_func ("/engine/methods/select/rank-range-is-stable-sort", test_select_rank_range_is_stable_sort);
  g_test_add_func ("/engine/methods/select/percentile-numpy-linear", test_select_percentile_numpy_linear);
  g_test_add_func ("/engine/methods/registry/all-methods", test_registry_all_methods);
  g_test_add_func ("/engine/methods/validate/reports-every-problem", test_validate_reports_every_problem);
  g_test_add_func ("/engine/methods/validate/param-check-messages", test_param_check_messages);
  return g_test_run ();
}
