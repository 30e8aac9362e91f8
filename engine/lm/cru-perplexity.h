/* cru-perplexity.h — perplexity of a model on a text (data/demo/README.md's protocol)
 *
 * The text is tokenized without special tokens and cut into consecutive non-overlapping
 * windows of ctx − 1 tokens; each window runs as [BOS] + window and every token of the text
 * is scored exactly once. Windows are batched (many per call, several threads).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include "cru-forward.h"
#include "cru-tokenizer.h"

G_BEGIN_DECLS

typedef struct {
  guint64  n_scored;      /* tokens scored */
  guint    n_windows;
  double   nll;           /* summed natural-log cross-entropy */
  double   mean_nll;
  double   ppl;
  double   seconds;       /* forward time (without loading) */
  int      n_layers, n_experts;
  guint64 *routing;       /* MoE: [n_layers × n_experts] selections, else NULL */
  guint64  n_routed_tokens;
} CruPerplexity;

/* Progress: windows done of total. May be NULL. */
typedef void (*CruPerplexityProgress) (guint done, guint total, gpointer user_data);

/* @tok may be NULL: the model's tokenizer.json is used. @ctx ≥ 2. @n_threads 0: all
 * processors. Fills @out (free with cru_perplexity_clear). */
gboolean cru_perplexity_run   (CruModel *model, CruTokenizer *tok, const char *text,
                               gsize length, guint ctx, guint n_threads,
                               CruPerplexityProgress progress, gpointer user_data,
                               CruPerplexity *out, GCancellable *cancellable, GError **error);
void     cru_perplexity_clear (CruPerplexity *p);

/* The model's tokenizer.json, with an error naming the model when it has none. */
CruTokenizer *cru_tokenizer_new_for_model (CruModel *model, GError **error);

G_END_DECLS
