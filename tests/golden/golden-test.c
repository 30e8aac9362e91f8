/* golden-test.c — crucible-cli merge against references made with mergekit (and a numpy
 * SDM-W reference): see tests/golden/README.md and tools/golden/make_golden.py.
 *
 * For every case of cases.json: run `$CRU_CLI merge CONFIG OUT --threads 2` into a fresh
 * temporary folder and compare the output with the reference (every tensor, max |diff| ≤
 * 1e-5 × max|expected|), or, for DARE/DELLA, check the distribution (kept fraction, l1
 * rescale, sign election) and the determinism by seed.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "golden-common.h"

#include <math.h>
#include <string.h>

#define TOL 1e-5

/* ---- exact comparison ---------------------------------------------------------------- */

static void
compare_full (CruModel *out, const char *expected_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruSafetensors) exp = cru_safetensors_open (expected_path, &error);
  g_assert_no_error (error);

  guint n_exp = cru_safetensors_get_n_tensors (exp);
  for (guint i = 0; i < cru_model_get_n_tensors (out); i++)
    {
      const char *name = cru_model_get_tensor (out, i)->info->name;
      if (cru_safetensors_lookup (exp, name) == NULL)
        g_test_fail_printf ("output has a tensor mergekit does not write: %s", name);
    }
  for (guint i = 0; i < n_exp; i++)
    {
      const CruTensorInfo *e = cru_safetensors_get_tensor (exp, i);
      const CruModelTensor *o = cru_model_lookup (out, e->name);
      if (o == NULL)
        {
          g_test_fail_printf ("output lacks tensor %s", e->name);
          continue;
        }
      if (!golden_same_shape (o->info, e->ndim, e->shape))
        {
          g_test_fail_printf ("%s: shape %s, expected %s", e->name,
                              golden_shape_str (o->info->ndim, o->info->shape),
                              golden_shape_str (e->ndim, e->shape));
          continue;
        }
      g_autofree float *ev = golden_read_st (exp, e);
      g_autofree float *ov = golden_read (out, o);
      double maxabs = 0, maxdiff = 0;
      guint64 worst = 0;
      for (guint64 k = 0; k < e->numel; k++)
        maxabs = MAX (maxabs, fabs (ev[k]));
      for (guint64 k = 0; k < e->numel; k++)
        {
          double d = fabs ((double) ov[k] - ev[k]);
          if (!(d <= maxdiff))           /* catches NaN too */
            {
              maxdiff = isnan (d) ? INFINITY : d;
              worst = k;
            }
        }
      if (!(maxdiff <= TOL * maxabs))
        g_test_fail_printf ("%s: max |diff| %.3g at element %" G_GUINT64_FORMAT
                            " (got %.9g, expected %.9g) > %.0e × max|expected| %.3g",
                            e->name, maxdiff, worst, ov[worst], ev[worst], TOL, maxabs);
    }
}

static void
compare_summary (CruModel *out, const char *expected_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  json_parser_load_from_file (parser, expected_path, &error);
  g_assert_no_error (error);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  g_autoptr(GList) names = json_object_get_members (root);

  if (cru_model_get_n_tensors (out) != g_list_length (names))
    g_test_fail_printf ("output has %u tensors, expected %u", cru_model_get_n_tensors (out),
                        g_list_length (names));
  for (GList *l = names; l; l = l->next)
    {
      const char *name = l->data;
      JsonObject *s = json_object_get_object_member (root, name);
      const CruModelTensor *o = cru_model_lookup (out, name);
      if (o == NULL)
        {
          g_test_fail_printf ("output lacks tensor %s", name);
          continue;
        }
      JsonArray *shape = json_object_get_array_member (s, "shape");
      int64_t eshape[CRU_MAX_DIMS] = { 0 };
      int endim = json_array_get_length (shape);
      for (int d = 0; d < endim && d < CRU_MAX_DIMS; d++)
        eshape[d] = json_array_get_int_element (shape, d);
      if (!golden_same_shape (o->info, endim, eshape))
        {
          g_test_fail_printf ("%s: shape %s, expected %s", name,
                              golden_shape_str (o->info->ndim, o->info->shape),
                              golden_shape_str (endim, eshape));
          continue;
        }
      g_autofree float *ov = golden_read (out, o);
      guint64 n = o->info->numel;
      double maxabs = 0, sum = 0, sumsq = 0;
      for (guint64 k = 0; k < n; k++)
        {
          maxabs = MAX (maxabs, fabs (ov[k]));
          sum += ov[k];
          sumsq += (double) ov[k] * ov[k];
        }
      double emax = json_object_get_double_member (s, "max_abs");
      double esum = json_object_get_double_member (s, "sum");
      double esq = json_object_get_double_member (s, "sum_sq");
      double tol = TOL * emax;
      if (!(fabs (maxabs - emax) <= tol))
        g_test_fail_printf ("%s: max|value| %.9g, expected %.9g", name, maxabs, emax);
      if (!(fabs (sum - esum) <= tol * n))
        g_test_fail_printf ("%s: sum %.9g, expected %.9g", name, sum, esum);
      if (!(fabs (sumsq - esq) <= 2.0 * tol * emax * n + 1e-12))
        g_test_fail_printf ("%s: sum of squares %.9g, expected %.9g", name, sumsq, esq);
      JsonArray *idx = json_object_get_array_member (s, "indices");
      JsonArray *val = json_object_get_array_member (s, "values");
      for (guint k = 0; k < json_array_get_length (idx); k++)
        {
          gint64 i = json_array_get_int_element (idx, k);
          double ev = json_array_get_double_element (val, k);
          if (i < 0 || (guint64) i >= n || !(fabs (ov[i] - ev) <= tol))
            {
              g_test_fail_printf ("%s: element %" G_GINT64_FORMAT " is %.9g, expected %.9g",
                                  name, i, i >= 0 && (guint64) i < n ? ov[i] : NAN, ev);
              break;
            }
        }
    }
}

static void
test_exact (gconstpointer data)
{
  const GoldenCase *c = data;
  if (c->error != NULL)
    {
      g_test_skip_printf ("mergekit could not make this reference: %s", c->error);
      return;
    }
  g_autofree char *tmp = NULL;
  g_autoptr(CruModel) out = golden_merge (c, 2, -1, &tmp);
  if (out != NULL)
    {
      g_autofree char *exp = g_build_filename (golden_dir (), "expected", c->expected, NULL);
      if (g_str_has_suffix (c->expected, ".json"))
        compare_summary (out, exp);
      else
        compare_full (out, exp);
    }
  golden_rm_rf (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GPtrArray *cases = golden_load_cases ();
  for (guint i = 0; i < cases->len; i++)
    {
      GoldenCase *c = g_ptr_array_index (cases, i);
      g_autofree char *path = NULL;
      if (g_strcmp0 (c->check, "random") == 0)
        {
          path = g_strdup_printf ("/golden/random/%s", c->name);
          g_test_add_data_func (path, c, golden_test_random);
          g_autofree char *p2 = g_strdup_printf ("/golden/random-mergekit/%s", c->name);
          g_test_add_data_func (p2, c, golden_test_random_reference);
        }
      else
        {
          path = g_strdup_printf ("/golden/%s/%s", c->source, c->name);
          g_test_add_data_func (path, c, test_exact);
        }
    }
  int ret = g_test_run ();
  g_ptr_array_unref (cases);
  return ret;
}
