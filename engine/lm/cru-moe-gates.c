/* cru-moe-gates.c — router rows of a built mixture of experts (mergekit-moe's
 * get_gate_params) and the condition number that flags prompts too similar to route by
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "cru-error.h"
#include "cru-forward.h"
#include "cru-moe-private.h"
#include "cru-perplexity.h"
#include "cru-rng.h"

typedef struct {
  int    n_layers;
  gsize  hidden;
  gboolean average;
  float *states;   /* [n_seqs × n_layers × H]: last token, or mean over positions */
  CruMoeLayerFunc layer_func;
  gpointer        layer_data;
} Capture;

static void
capture_layer (gpointer data, guint seq, int layer, const float *h, guint n)
{
  Capture *c = data;
  float *dst = c->states + ((gsize) seq * c->n_layers + layer) * c->hidden;

  /* Layers run one after the other, so sequence 0's calls never overlap. */
  if (seq == 0 && c->layer_func)
    c->layer_func (layer, c->n_layers, c->layer_data);

  if (!c->average)
    {
      memcpy (dst, h + (gsize) (n - 1) * c->hidden, c->hidden * sizeof (float));
      return;
    }
  for (gsize j = 0; j < c->hidden; j++)
    {
      float s = 0.f;
      for (guint t = 0; t < n; t++)
        s += h[(gsize) t * c->hidden + j];
      dst[j] = s / (float) n;
    }
}

/* [BOS] + the prompt's ids, as mergekit tokenizes bos_token + prompt without special tokens */
static GArray *
tokenize_prompt (CruTokenizer *tok, int bos, const char *prompt, GError **error)
{
  GArray *ids = cru_tokenizer_encode (tok, prompt, -1, FALSE, error);
  if (ids && bos >= 0)
    g_array_prepend_val (ids, bos);
  return ids;
}

static void
normalize_rows (float *v, gsize n_rows, gsize dim)
{
  for (gsize r = 0; r < n_rows; r++)
    {
      double ss = 0;
      for (gsize j = 0; j < dim; j++)
        ss += (double) v[r * dim + j] * v[r * dim + j];
      ss = MAX (sqrt (ss), 1e-8);
      for (gsize j = 0; j < dim; j++)
        v[r * dim + j] = (float) (v[r * dim + j] / ss);
    }
}

static void
random_gates (const CruMoeConfig *config, float *g, gsize n, double h)
{
  CruRng rng;
  float *u = g_new (float, 2 * n);

  cru_rng_init (&rng, config->seed, "moe.router", -1);
  cru_rng_uniform (&rng, 0, 2 * n, u);
  for (gsize i = 0; i < n; i++)
    {
      if (config->gate_mode == CRU_GATE_RANDOM)   /* Box–Muller */
        g[i] = (float) (sqrt (-2.0 * log (1.0 - u[2 * i])) * cos (2 * G_PI * u[2 * i + 1]));
      else
        g[i] = (float) ((2.0 * u[i] - 1.0) / sqrt (h));
    }
  g_free (u);
}

float *
cru_moe_compute_gates (const CruMoeConfig *config, CruModel *base, GPtrArray *experts,
                       GCancellable *cancellable, GError **error)
{
  return _cru_moe_compute_gates_full (config, base, experts, NULL, NULL, cancellable, error);
}

float *
_cru_moe_compute_gates_full (const CruMoeConfig *config, CruModel *base, GPtrArray *experts,
                             CruMoeLayerFunc layer_func, gpointer user_data,
                             GCancellable *cancellable, GError **error)
{
  g_autoptr (CruTokenizer) tok = NULL;
  g_autoptr (GPtrArray) prompts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  CruForward *fw = NULL;
  const CruLmConfig *cfg;
  int L, E = (int) experts->len, bos;
  gsize H;
  float *gates = NULL, *per_seq = NULL;
  GArray *first = g_array_new (FALSE, FALSE, sizeof (guint)); /* per expert: pos, neg, end */

  if (!(fw = cru_forward_new (base, error)))
    goto out;
  cfg = cru_forward_get_config (fw);
  L = cfg->n_layers;
  H = cfg->hidden_size;
  gates = g_new0 (float, (gsize) L * E * H);

  if (config->gate_mode == CRU_GATE_RANDOM || config->gate_mode == CRU_GATE_UNIFORM_RANDOM)
    {
      random_gates (config, gates, (gsize) L * E * H, (double) H);
      goto out;
    }

  if (!(tok = cru_tokenizer_new_for_model (base, error)))
    goto fail;
  bos = cfg->bos_token_id >= 0 ? cfg->bos_token_id : cru_tokenizer_get_bos_id (tok);
  for (int e = 0; e < E; e++)
    {
      CruMoeExpert *x = experts->pdata[e];
      for (int neg = 0; neg < 2; neg++)
        {
          GStrv list = neg ? x->negative_prompts : x->positive_prompts;
          g_array_append_val (first, prompts->len);
          for (guint i = 0; list && list[i]; i++)
            {
              GArray *ids = tokenize_prompt (tok, bos, list[i], error);
              if (!ids)
                goto fail;
              if (ids->len == 0)
                {
                  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                               _("Expert %d (%s): a prompt is empty"), e + 1, x->source_model);
                  g_array_unref (ids);
                  goto fail;
                }
              g_ptr_array_add (prompts, ids);
            }
        }
    }
  g_array_append_val (first, prompts->len);

  per_seq = g_new0 (float, (gsize) MAX (prompts->len, 1) * L * H);
  if (config->gate_mode == CRU_GATE_CHEAP_EMBED)
    {
      const CruModelTensor *emb = cru_model_lookup (base, "model.embed_tokens.weight");
      float *row = g_new (float, H);
      for (guint s = 0; s < prompts->len; s++)
        {
          GArray *ids = prompts->pdata[s];
          for (guint t = 0; t < ids->len; t++)
            {
              if (!cru_model_read_f32 (base, emb, (guint64) g_array_index (ids, gint32, t) * H, H,
                                       row, error))
                {
                  g_free (row);
                  goto fail;
                }
              for (gsize j = 0; j < H; j++)
                per_seq[(gsize) s * L * H + j] += row[j];
            }
        }
      g_free (row);
    }
  else if (prompts->len > 0)
    {
      Capture cap = { L, H, config->gate_mode == CRU_GATE_HIDDEN_AVG, per_seq, layer_func,
                      user_data };
      CruForwardHooks hooks = { capture_layer, NULL, NULL, NULL, &cap, NULL };
      g_autofree const gint32 **seqs = g_new (const gint32 *, prompts->len);
      g_autofree guint *lens = g_new (guint, prompts->len);

      for (guint s = 0; s < prompts->len; s++)
        {
          GArray *ids = prompts->pdata[s];
          seqs[s] = (const gint32 *) ids->data;
          lens[s] = ids->len;
        }
      cru_forward_set_threads (fw, config->n_threads ? config->n_threads
                                                     : g_get_num_processors ());
      if (!cru_forward_run (fw, prompts->len, seqs, lens, &hooks, cancellable, error))
        goto fail;
    }

  for (int e = 0; e < E; e++)
    {
      float *row = g_new0 (float, (gsize) L * H);   /* [L × H] */
      for (int neg = 0; neg < 2; neg++)
        {
          guint a = g_array_index (first, guint, 2 * e + neg);
          guint b = g_array_index (first, guint, 2 * e + neg + 1);
          float *acc = g_new0 (float, (gsize) L * H);
          int layers = config->gate_mode == CRU_GATE_CHEAP_EMBED ? 1 : L;

          if (a == b)
            {
              g_free (acc);
              continue;
            }
          /* mergekit: hidden → mean over the prompts; cheap_embed → normalized sum over all
           * prompt tokens, repeated for every layer */
          for (guint s = a; s < b; s++)
            for (gsize i = 0; i < (gsize) layers * H; i++)
              acc[i] += per_seq[(gsize) s * L * H + i];
          if (config->gate_mode == CRU_GATE_CHEAP_EMBED)
            {
              normalize_rows (acc, 1, H);
              for (int l = 1; l < L; l++)
                memcpy (acc + (gsize) l * H, acc, H * sizeof (float));
            }
          else
            for (gsize i = 0; i < (gsize) L * H; i++)
              acc[i] /= (float) (b - a);
          for (gsize i = 0; i < (gsize) L * H; i++)
            row[i] += neg ? -acc[i] : acc[i];
          g_free (acc);
        }
      normalize_rows (row, L, H);
      for (int l = 0; l < L; l++)
        memcpy (gates + ((gsize) l * E + e) * H, row + (gsize) l * H, H * sizeof (float));
      g_free (row);
    }
  goto out;

fail:
  g_clear_pointer (&gates, g_free);
out:
  g_free (per_seq);
  g_array_unref (first);
  cru_forward_free (fw);
  return gates;
}

/* Eigenvalues of a symmetric n×n matrix (cyclic Jacobi), in @a's diagonal. */
static void
jacobi_eigen (double *a, int n)
{
  for (int sweep = 0; sweep < 100; sweep++)
    {
      double off = 0;
      for (int p = 0; p < n; p++)
        for (int q = p + 1; q < n; q++)
          off += a[p * n + q] * a[p * n + q];
      if (off < 1e-30)
        return;
      for (int p = 0; p < n; p++)
        for (int q = p + 1; q < n; q++)
          {
            double apq = a[p * n + q], theta, t, c, s;
            if (fabs (apq) < 1e-300)
              continue;
            theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
            t = (theta >= 0 ? 1 : -1) / (fabs (theta) + sqrt (theta * theta + 1));
            c = 1 / sqrt (t * t + 1);
            s = t * c;
            for (int k = 0; k < n; k++)
              {
                double akp = a[k * n + p], akq = a[k * n + q];
                a[k * n + p] = c * akp - s * akq;
                a[k * n + q] = s * akp + c * akq;
              }
            for (int k = 0; k < n; k++)
              {
                double apk = a[p * n + k], aqk = a[q * n + k];
                a[p * n + k] = c * apk - s * aqk;
                a[q * n + k] = s * apk + c * aqk;
              }
          }
    }
}

double
cru_moe_condition_number (const float *gate, int n_experts, int hidden)
{
  int n = n_experts;
  g_autofree double *g = g_new0 (double, (gsize) n * n);
  double lo = G_MAXDOUBLE, hi = 0;

  /* singular values of the E×H gate are the square roots of the E×E Gram matrix's
   * eigenvalues */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      {
        double s = 0;
        for (int k = 0; k < hidden; k++)
          s += (double) gate[(gsize) i * hidden + k] * gate[(gsize) j * hidden + k];
        g[i * n + j] = s;
      }
  jacobi_eigen (g, n);
  for (int i = 0; i < n; i++)
    {
      double ev = MAX (g[i * n + i], 0.0);
      lo = MIN (lo, ev);
      hi = MAX (hi, ev);
    }
  if (hi <= 0 || lo <= hi * 1e-24)
    return G_MAXDOUBLE;
  return sqrt (hi / lo);
}
