/* cru-engine.h — run a plan: thread pool, streaming reads, fused method evaluation,
 * writes at precomputed offsets, progress and cancellation.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include "cru-plan.h"

G_BEGIN_DECLS

typedef enum {
  CRU_RUN_PHASE_PREPARE,   /* opening inputs, creating the output folder */
  CRU_RUN_PHASE_STATS,     /* statistics pass (SDM-W); a mixture of experts' router rows */
  CRU_RUN_PHASE_MERGE,     /* computing and writing tensors */
  CRU_RUN_PHASE_FINISH,    /* config, tokenizer, model card, rename into place */
  CRU_RUN_PHASE_DONE,
} CruRunPhase;

typedef struct {
  CruRunPhase  phase;
  guint64      bytes_done;      /* bytes read + written so far */
  guint64      bytes_total;
  guint        tensors_done;
  guint        tensors_total;
  guint        node;            /* method node of the tensor in flight (0 = none) */
  const char  *tensor;          /* tensor in flight; valid during the callback only */
  double       elapsed_seconds;
  double       eta_seconds;     /* < 0 when unknown */
} CruProgress;

/* Called from worker threads, never concurrently, at most about 20 times a second, plus
 * once at every phase change and once at the end. */
typedef void (*CruProgressFunc) (const CruProgress *progress, gpointer user_data);

/* Runs @plan to completion. On error or cancellation (GCancellable, checked between chunks:
 * stops within 200 ms) the temporary output is removed and the target folder is untouched.
 * On success the output folder holds the model files, config.json, tokenizer files,
 * README.md (model card), crucible-recipe.crucible and, where expressible,
 * mergekit_config.yml (mergekit_moe_config.yml for a mixture of experts). What the run found
 * that the user should know is in cru_plan_get_run_warnings() afterwards. */
gboolean cru_engine_run (CruPlan *plan, CruProgressFunc progress, gpointer user_data,
                         GCancellable *cancellable, GError **error);

G_END_DECLS
