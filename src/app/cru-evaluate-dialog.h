/* cru-evaluate-dialog.h — perplexity of a model (a model node, or a finished run's output)
 * on a text the user picks, computed on a worker thread with progress and Cancel
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define CRU_TYPE_EVALUATE_DIALOG (cru_evaluate_dialog_get_type ())
G_DECLARE_FINAL_TYPE (CruEvaluateDialog, cru_evaluate_dialog, CRU, EVALUATE_DIALOG, AdwWindow)

/* @model_path: a model folder or .safetensors file; @title: how the user knows it. */
CruEvaluateDialog *cru_evaluate_dialog_new           (GtkWindow  *parent,
                                                      const char *model_path,
                                                      const char *title);
void               cru_evaluate_dialog_set_text_path (CruEvaluateDialog *self, const char *path);
const char        *cru_evaluate_dialog_get_text_path (CruEvaluateDialog *self);
void               cru_evaluate_dialog_set_ctx       (CruEvaluateDialog *self, guint ctx);
/* Starts the evaluation (what the Evaluate button does); "finished" (gboolean success) is
 * emitted at the end. */
void               cru_evaluate_dialog_start         (CruEvaluateDialog *self);
gboolean           cru_evaluate_dialog_is_running    (CruEvaluateDialog *self);
/* After a successful run: the perplexity (NAN before), the tokens scored, and for a mixture
 * of experts the share of expert choices per expert over all layers (NULL otherwise). */
double             cru_evaluate_dialog_get_perplexity (CruEvaluateDialog *self);
guint64            cru_evaluate_dialog_get_n_scored   (CruEvaluateDialog *self);
const double      *cru_evaluate_dialog_get_routing    (CruEvaluateDialog *self, int *n_experts);
/* After a failed run: the message shown. */
const char        *cru_evaluate_dialog_get_error      (CruEvaluateDialog *self);

G_END_DECLS
