/* cru-perplexity.c — batched, threaded perplexity over non-overlapping windows
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "cru-error.h"
#include "cru-perplexity.h"

/* Windows per forward call: bounds the residual stream kept between layers. */
#define BATCH_TOKENS (64 * 1024)

typedef struct {
  const gint32 *const *seqs;
  const guint         *lengths;
  const gint32        *targets;   /* all text tokens */
  const gsize         *first;     /* index in targets of each window's first token */
  guint                vocab;
  double              *nll;       /* per window */
} Scorer;

static void
score_logits (gpointer data, guint seq, const float *lg, guint n)
{
  Scorer *s = data;
  double sum = 0;

  /* row j predicts window token j (row 0 is the BOS position); the last row predicts
   * nothing in this window */
  for (guint j = 0; j + 1 < n; j++)
    {
      const float *row = lg + (gsize) j * s->vocab;
      gint32 target = s->targets[s->first[seq] + j];
      float mx = row[0];
      double e = 0;

      for (guint v = 1; v < s->vocab; v++)
        mx = MAX (mx, row[v]);
      for (guint v = 0; v < s->vocab; v++)
        e += exp ((double) row[v] - mx);
      sum += mx + log (e) - row[target];
    }
  s->nll[seq] = sum;
}

CruTokenizer *
cru_tokenizer_new_for_model (CruModel *model, GError **error)
{
  g_autofree char *path = cru_model_get_file (model, "tokenizer.json");
  if (!path)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                   _("%s has no tokenizer.json; it is needed to turn text into tokens"),
                   cru_model_get_name (model));
      return NULL;
    }
  return cru_tokenizer_new_from_file (path, error);
}

gboolean
cru_perplexity_run (CruModel *model, CruTokenizer *tok_in, const char *text, gsize length,
                    guint ctx, guint n_threads, CruPerplexityProgress progress,
                    gpointer user_data, CruPerplexity *out, GCancellable *cancellable,
                    GError **error)
{
  g_autoptr (CruTokenizer) own_tok = NULL;
  CruTokenizer *tok = tok_in;
  g_autoptr (GArray) ids = NULL;
  CruForward *fw = NULL;
  const CruLmConfig *cfg;
  guint n_windows, per_batch;
  gsize win = ctx - 1;
  int bos;
  gint64 t0;
  gboolean ok = FALSE;

  memset (out, 0, sizeof *out);
  if (ctx < 2)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("The context length must be at least 2 tokens (it is %u)"), ctx);
      return FALSE;
    }
  if (!tok && !(tok = own_tok = cru_tokenizer_new_for_model (model, error)))
    return FALSE;
  if (!(fw = cru_forward_new (model, error)))
    return FALSE;
  cfg = cru_forward_get_config (fw);
  bos = cfg->bos_token_id >= 0 ? cfg->bos_token_id : cru_tokenizer_get_bos_id (tok);
  if (bos < 0 || bos >= cfg->vocab_size)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: neither config.json nor the tokenizer names a valid beginning-of-text "
                     "token"), cru_model_get_name (model));
      goto out;
    }
  if (!(ids = cru_tokenizer_encode (tok, text, length, FALSE, error)))
    goto out;
  if (ids->len == 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM, _("The text is empty"));
      goto out;
    }
  for (guint i = 0; i < ids->len; i++)
    if (g_array_index (ids, gint32, i) >= cfg->vocab_size)
      {
        g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                     _("%s: the tokenizer produced id %d but the model has only %d tokens"),
                     cru_model_get_name (model), g_array_index (ids, gint32, i),
                     cfg->vocab_size);
        goto out;
      }

  cru_forward_set_threads (fw, n_threads ? n_threads : g_get_num_processors ());
  /* keeping the f32 weights saves re-reading them per batch when they are small */
  cru_forward_set_keep_weights (fw, cru_forward_get_f32_bytes (fw) < 2ull * 1024 * 1024 * 1024);
  n_windows = (guint) ((ids->len + win - 1) / win);
  per_batch = MAX (1, BATCH_TOKENS / ctx);
  out->n_layers = cfg->n_layers;
  out->n_experts = cfg->mlp_kind != CRU_MLP_DENSE ? cfg->n_experts : 0;
  if (out->n_experts)
    out->routing = g_new0 (guint64, (gsize) out->n_layers * out->n_experts);

  t0 = g_get_monotonic_time ();
  for (guint w0 = 0; w0 < n_windows; w0 += per_batch)
    {
      guint nb = MIN (per_batch, n_windows - w0);
      g_autofree gint32 *buf = g_new (gint32, (gsize) nb * ctx);
      g_autofree const gint32 **seqs = g_new (const gint32 *, nb);
      g_autofree guint *lens = g_new (guint, nb);
      g_autofree gsize *first = g_new (gsize, nb);
      g_autofree double *nll = g_new0 (double, nb);
      Scorer sc = { seqs, lens, (const gint32 *) ids->data, first, cfg->vocab_size, nll };
      CruForwardHooks hooks = { NULL, NULL, NULL, score_logits, &sc, out->routing };

      for (guint k = 0; k < nb; k++)
        {
          gsize start = (gsize) (w0 + k) * win;
          gsize n = MIN (win, ids->len - start);
          gint32 *dst = buf + (gsize) k * ctx;
          dst[0] = bos;
          memcpy (dst + 1, &g_array_index (ids, gint32, start), n * sizeof (gint32));
          seqs[k] = dst;
          lens[k] = (guint) n + 1;
          first[k] = start;
        }
      if (!cru_forward_run (fw, nb, seqs, lens, &hooks, cancellable, error))
        goto out;
      for (guint k = 0; k < nb; k++)
        {
          out->nll += nll[k];
          out->n_scored += lens[k] - 1;
        }
      if (progress)
        progress (w0 + nb, n_windows, user_data);
    }
  out->seconds = (g_get_monotonic_time () - t0) / 1e6;
  out->n_windows = n_windows;
  out->mean_nll = out->nll / out->n_scored;
  out->ppl = exp (out->mean_nll);
  /* each scored token also ran its BOS position through the router */
  out->n_routed_tokens = out->n_scored + n_windows;
  ok = TRUE;

out:
  cru_forward_free (fw);
  if (!ok)
    cru_perplexity_clear (out);
  return ok;
}

void
cru_perplexity_clear (CruPerplexity *p)
{
  g_clear_pointer (&p->routing, g_free);
}
