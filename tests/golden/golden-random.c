/* golden-random.c — DARE / DELLA: torch's RNG cannot be matched, so check the distribution
 * (kept fraction within 3σ of the binomial), the l1 rescale on the kept elements, the sign
 * election, and determinism by seed (threads 1, 2, 8 give the same bytes; another seed not).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "golden-common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

typedef struct {
  double n, kept;        /* observed */
  double e, v;           /* expected count and variance (della) */
} Tally;

static void
tally_check (const Tally *t, const char *what)
{
  double sd = sqrt (t->v);
  g_test_message ("%s: kept %.0f of %.0f (%.4f), expected %.1f ± %.1f", what, t->kept, t->n,
                  t->n > 0 ? t->kept / t->n : 0, t->e, sd);
  if (t->n < 100)
    {
      g_test_fail_printf ("%s: only %.0f elements to count (need ≥ 100)", what, t->n);
      return;
    }
  if (!(fabs (t->kept - t->e) <= 3.0 * sd))
    g_test_fail_printf ("%s: kept %.0f of %.0f elements (fraction %.4f), expected %.1f ± 3×%.1f",
                        what, t->kept, t->n, t->kept / t->n, t->e, sd);
}

static double
jdouble (JsonObject *o, const char *name, guint i)
{
  JsonNode *n = json_object_get_member (o, name);
  if (JSON_NODE_HOLDS_ARRAY (n))
    return json_array_get_double_element (json_node_get_array (n), i);
  return json_node_get_double (n);
}

static double
max_abs (const float *v, guint64 n)
{
  double m = 0;
  for (guint64 k = 0; k < n; k++)
    m = MAX (m, fabs (v[k]));
  return m;
}

/* Rank of each element's |Δ| within its row (last dimension), normalized to [0, 1]. */
static const float *sort_key;

static int
cmp_idx (const void *a, const void *b)
{
  guint32 i = *(const guint32 *) a, j = *(const guint32 *) b;
  float x = fabsf (sort_key[i]), y = fabsf (sort_key[j]);
  return x < y ? -1 : x > y ? 1 : (i > j) - (i < j);
}

static double *
row_ranks (const float *d, const CruTensorInfo *info)
{
  guint64 n = info->numel;
  guint64 len = info->ndim >= 2 ? (guint64) info->shape[info->ndim - 1] : n;
  double *r = g_new (double, n);
  guint32 *idx = g_new (guint32, len);
  for (guint64 row = 0; row < n / len; row++)
    {
      for (guint64 k = 0; k < len; k++)
        idx[k] = (guint32) (row * len + k);
      sort_key = d;
      qsort (idx, len, sizeof (guint32), cmp_idx);
      for (guint64 k = 0; k < len; k++)
        r[idx[k]] = len > 1 ? (double) k / (double) (len - 1) : 0.0;
    }
  g_free (idx);
  return r;
}

/* One fine-tune with weight 1, no sign election: out = b + Δ·mask·r, r = L1(Δ)/L1(Δ⊙mask). */
static void
check_single (CruModel *out, JsonObject *rnd)
{
  JsonArray *models = json_object_get_array_member (rnd, "models");
  g_autoptr(CruModel) base = golden_open_model (json_object_get_string_member (rnd, "base"));
  g_autoptr(CruModel) ft = golden_open_model (json_array_get_string_element (models, 0));
  gboolean della = json_object_has_member (rnd, "epsilon");
  double rho = jdouble (rnd, "density", 0);
  double eps = della ? json_object_get_double_member (rnd, "epsilon") : 0;
  Tally all = { 0 }, top = { 0 }, bottom = { 0 };
  guint bad = 0;

  for (guint i = 0; i < cru_model_get_n_tensors (base); i++)
    {
      const CruModelTensor *bt = cru_model_get_tensor (base, i);
      const char *name = bt->info->name;
      const CruModelTensor *xt = cru_model_lookup (ft, name), *ot = cru_model_lookup (out, name);
      if (xt == NULL || ot == NULL || ot->info->numel != bt->info->numel)
        {
          g_test_fail_printf ("%s: missing or reshaped in the output", name);
          continue;
        }
      guint64 n = bt->info->numel;
      g_autofree float *b = golden_read (base, bt);
      g_autofree float *x = golden_read (ft, xt);
      g_autofree float *o = golden_read (out, ot);
      g_autofree float *d = g_new (float, n);
      double l1 = 0, l1k = 0;
      for (guint64 k = 0; k < n; k++)
        {
          d[k] = x[k] - b[k];
          l1 += fabs (d[k]);
          if (d[k] != 0 && o[k] != b[k])
            l1k += fabs (d[k]);
        }
      double r = (l1 >= 1e-7 && l1k >= 1e-7) ? l1 / l1k : 1.0;
      double tol = TOL * MAX (max_abs (o, n), 1e-30);
      g_autofree double *rank = della ? row_ranks (d, bt->info) : NULL;
      for (guint64 k = 0; k < n; k++)
        {
          gboolean kept = d[k] != 0 && o[k] != b[k];
          double want = kept ? b[k] + (double) d[k] * r : b[k];
          if (!(fabs (o[k] - want) <= tol) && bad++ < 5)
            g_test_fail_printf ("%s[%" G_GUINT64_FORMAT "] = %.9g, but base %.9g + Δ %.9g × "
                                "l1 rescale %.6f (kept) or the base (dropped) was expected",
                                name, k, o[k], b[k], d[k], r);
          if (d[k] == 0)
            continue;
          double p = della ? rho - eps + 2 * eps * rank[k] : rho;
          Tally *half = della && rank[k] >= 0.5 ? &top : &bottom;
          Tally *sets[2] = { &all, half };
          for (int s = 0; s < (della ? 2 : 1); s++)
            {
              sets[s]->n += 1;
              sets[s]->kept += kept;
              sets[s]->e += p;
              sets[s]->v += p * (1 - p);
            }
        }
    }
  tally_check (&all, "all elements");
  if (della)
    {
      tally_check (&top, "upper half of |Δ| ranks (della keeps more)");
      tally_check (&bottom, "lower half of |Δ| ranks (della keeps fewer)");
    }
}

/* Two fine-tunes with sign election, normalize false (dare_ties): every element of the
 * output must be one of the four (kept1, kept2) outcomes; the rescale factor of each model
 * (read on elements where only it changed) must be the l1 formula for a mask consistent
 * with the output; kept fractions on those elements within 3σ. */
static void
check_ties_pair (CruModel *out, JsonObject *rnd)
{
  JsonArray *models = json_object_get_array_member (rnd, "models");
  g_autoptr(CruModel) base = golden_open_model (json_object_get_string_member (rnd, "base"));
  CruModel *ft[2] = { golden_open_model (json_array_get_string_element (models, 0)),
                      golden_open_model (json_array_get_string_element (models, 1)) };
  double w[2] = { jdouble (rnd, "weight", 0), jdouble (rnd, "weight", 1) };
  double rho[2] = { jdouble (rnd, "density", 0), jdouble (rnd, "density", 1) };
  Tally tl[2] = { { 0 }, { 0 } };
  guint checked = 0, skipped = 0, bad = 0;

  for (guint i = 0; i < cru_model_get_n_tensors (base); i++)
    {
      const CruModelTensor *bt = cru_model_get_tensor (base, i);
      const char *name = bt->info->name;
      const CruModelTensor *ot = cru_model_lookup (out, name);
      guint64 n = bt->info->numel;
      if (ot == NULL || ot->info->numel != n)
        {
          g_test_fail_printf ("%s: missing or reshaped in the output", name);
          continue;
        }
      g_autofree float *b = golden_read (base, bt);
      g_autofree float *o = golden_read (out, ot);
      float *d[2] = { NULL, NULL };
      double r[2] = { 0, 0 }, l1[2] = { 0, 0 }, known[2] = { 0, 0 }, amb[2] = { 0, 0 };
      for (int m = 0; m < 2; m++)
        {
          const CruModelTensor *xt = cru_model_lookup (ft[m], name);
          g_autofree float *x = golden_read (ft[m], xt);
          d[m] = g_new (float, n);
          for (guint64 k = 0; k < n; k++)
            {
              d[m][k] = x[k] - b[k];
              l1[m] += fabs (d[m][k]);
            }
        }
      /* rescale of model m from its exclusive kept element of largest |Δ| */
      gboolean ok = TRUE;
      for (int m = 0; m < 2; m++)
        {
          double best = 0;
          for (guint64 k = 0; k < n; k++)
            if (d[m][k] != 0 && d[1 - m][k] == 0 && o[k] != b[k] && fabs (d[m][k]) > best)
              {
                best = fabs (d[m][k]);
                r[m] = ((double) o[k] - b[k]) / (w[m] * d[m][k]);
              }
          ok = ok && best > 0;
        }
      if (!ok)
        {
          skipped++;
          g_free (d[0]);
          g_free (d[1]);
          continue;
        }
      checked++;
      double tol = TOL * MAX (max_abs (o, n), 1e-30);
      for (guint64 k = 0; k < n; k++)
        {
          int match = 0, kept_if[2][2] = { { 0, 0 }, { 0, 0 } };  /* [model][kept] seen */
          for (int c = 0; c < 4; c++)
            {
              int kk[2] = { c & 1, c >> 1 };
              double D[2], sum = 0, mixed = 0;
              if ((kk[0] && d[0][k] == 0) || (kk[1] && d[1][k] == 0))
                continue;
              for (int m = 0; m < 2; m++)
                sum += D[m] = kk[m] ? w[m] * r[m] * d[m][k] : 0.0;
              int s = sum >= 0 ? 1 : -1;
              for (int m = 0; m < 2; m++)
                if ((D[m] > 0 && s > 0) || (D[m] < 0 && s < 0))
                  mixed += D[m];
              if (fabs (o[k] - (b[k] + mixed)) <= tol)
                {
                  match++;
                  for (int m = 0; m < 2; m++)
                    kept_if[m][kk[m]] = 1;
                }
            }
          if (match == 0)
            {
              if (bad++ < 5)
                g_test_fail_printf ("%s[%" G_GUINT64_FORMAT "] = %.9g matches no kept/dropped "
                                    "combination of Δ1 %.6g, Δ2 %.6g with sign election "
                                    "(base %.9g, rescale %.6f, %.6f)", name, k, o[k],
                                    d[0][k], d[1][k], b[k], r[0], r[1]);
              continue;
            }
          for (int m = 0; m < 2; m++)
            {
              if (d[m][k] == 0)
                continue;
              if (kept_if[m][0] && kept_if[m][1])
                amb[m] += fabs (d[m][k]);
              else if (kept_if[m][1])
                known[m] += fabs (d[m][k]);
              if (d[1 - m][k] == 0)     /* exclusive: unambiguous, count it */
                {
                  tl[m].n += 1;
                  tl[m].kept += kept_if[m][1];
                  tl[m].e += rho[m];
                  tl[m].v += rho[m] * (1 - rho[m]);
                }
            }
        }
      for (int m = 0; m < 2; m++)
        {
          double lo = l1[m] / (known[m] + amb[m]), hi = known[m] > 0 ? l1[m] / known[m] : INFINITY;
          if (!(r[m] >= lo * (1 - 1e-4) && r[m] <= hi * (1 + 1e-4)))
            g_test_fail_printf ("%s: model %d is rescaled by %.6f but the l1 rule gives a "
                                "value in [%.6f, %.6f] for the kept elements", name, m + 1,
                                r[m], lo, hi);
        }
      g_free (d[0]);
      g_free (d[1]);
    }
  cru_model_unref (ft[0]);
  cru_model_unref (ft[1]);
  g_test_message ("%u tensors checked, %u without an exclusive kept element", checked, skipped);
  if (checked < skipped)
    g_test_fail_printf ("only %u tensors could be checked (%u skipped)", checked, skipped);
  tally_check (&tl[0], "model 1 (exclusive elements)");
  tally_check (&tl[1], "model 2 (exclusive elements)");
}

static gboolean
run_checks (CruModel *out, const GoldenCase *c)
{
  const char *kind = c->random ? json_object_get_string_member (c->random, "kind") : "";
  if (g_str_equal (kind, "single") || g_str_equal (kind, "della-single"))
    check_single (out, c->random);
  else if (g_str_equal (kind, "ties-pair"))
    check_ties_pair (out, c->random);
  else
    return FALSE;
  return TRUE;
}

/* The same checks on mergekit's own output: validates the checks themselves. */
void
golden_test_random_reference (gconstpointer data)
{
  const GoldenCase *c = data;
  g_autoptr(GError) error = NULL;
  if (c->expected == NULL || !g_str_has_suffix (c->expected, ".safetensors"))
    {
      g_test_skip ("no full mergekit output stored for this case");
      return;
    }
  g_autofree char *p = g_build_filename (golden_dir (), "expected", c->expected, NULL);
  g_autoptr(CruModel) ref = cru_model_open (p, &error);
  g_assert_no_error (error);
  if (!run_checks (ref, c))
    g_test_skip ("this case only checks determinism");
}

void
golden_test_random (gconstpointer data)
{
  const GoldenCase *c = data;
  gint64 seed = c->seed >= 0 ? c->seed : 7;
  g_autofree char *tmp = NULL;
  g_autoptr(CruModel) out = golden_merge (c, 2, seed, &tmp);
  if (out == NULL)
    {
      golden_rm_rf (tmp);
      return;
    }
  run_checks (out, c);

  /* determinism by seed, whatever the thread count */
  g_autoptr(GBytes) ref = golden_output_bytes (tmp);
  g_assert_cmpuint (g_bytes_get_size (ref), >, 0);
  const int threads[] = { 1, 8 };
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
    {
      g_autofree char *tmp2 = NULL;
      g_autoptr(CruModel) again = golden_merge (c, threads[t], seed, &tmp2);
      if (again != NULL)
        {
          g_autoptr(GBytes) b = golden_output_bytes (tmp2);
          if (!g_bytes_equal (ref, b))
            g_test_fail_printf ("seed %" G_GINT64_FORMAT ": --threads %d gives other bytes "
                                "than --threads 2", seed, threads[t]);
        }
      golden_rm_rf (tmp2);
    }
  g_autofree char *tmp3 = NULL;
  g_autoptr(CruModel) other = golden_merge (c, 2, seed + 1, &tmp3);
  if (other != NULL)
    {
      g_autoptr(GBytes) b = golden_output_bytes (tmp3);
      if (g_bytes_equal (ref, b))
        g_test_fail_printf ("seeds %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                            " give the same bytes", seed, seed + 1);
    }
  golden_rm_rf (tmp3);
  golden_rm_rf (tmp);
}
