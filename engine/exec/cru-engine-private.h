/* cru-engine-private.h — state shared by the executor's files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib/gi18n-lib.h>

#include "cru-engine.h"
#include "cru-backend.h"
#include "cru-plan-private.h"

G_BEGIN_DECLS

/* Elements per pread between cancellation checks (16 MB of f32, ~10 ms from SSD). */
#define CRU_READ_PIECE (4u * 1024u * 1024u)

/* A worker's memory: one aligned block sized from the plan, used as a stack. */
typedef struct {
  guint8 *base;
  guint64 size;
  guint64 top;
} CruArena;

typedef struct {
  CruPlan        *plan;
  CruBackend     *cpu;
  CruBackend     *device;        /* CUDA or NULL */
  CruWriter      *writer;
  GCancellable   *cancel;        /* internal: user's cancel, or a worker's error */
  guint64         seed;
  guint           n_threads;

  GMutex          lock;          /* progress callback and the first error */
  CruProgressFunc progress;
  gpointer        progress_data;
  gint64          start_us;
  gint64          last_report_us;
  CruRunPhase     phase;
  guint64         bytes_total;
  guint64         bytes_done;    /* atomic */
  guint           tensors_done;  /* atomic */
  guint           tensors_total;
  GError         *error;

  /* the phase's work list */
  gint            next;          /* atomic */
  guint           n_items;
} CruRun;

typedef struct {
  CruRun     *run;
  CruArena    arena;
  const char *tensor;       /* in flight, for progress */
  guint       node;
  GArray     *streams;      /* CruStreamState: the streamed calls of the task in flight */
  gboolean    gathering;    /* in a gathering pass: reads are not new progress */
} CruWorker;

typedef struct {
  CruExpr  *expr;
  gpointer  state;
} CruStreamState;

/* cru-engine-eval.c */
gpointer  _cru_arena_push   (CruArena *arena, guint64 bytes);
/* Evaluates elements [offset, offset + count) of @e into @out (count floats). */
gboolean  _cru_eval         (CruWorker *w, CruExpr *e, guint64 offset, guint64 count,
                             float *out, GError **error);
/* Runs the gathering passes of every streamed method call of the tree @e (a task's root,
 * evaluated in chunks of e->unit), innermost first, leaving their states in the arena and
 * in w->streams for _cru_eval. */
gboolean  _cru_eval_prepare_streams (CruWorker *w, CruExpr *e, GError **error);
/* Statistics pass for one tensor of a STATS_PASS method: whole inputs, then accumulate. */
gboolean  _cru_eval_stats   (CruWorker *w, CruExpr *e, GError **error);
void      _cru_run_add_bytes (CruRun *run, guint64 bytes);
void      _cru_run_report    (CruRun *run, CruWorker *w, gboolean force);
gboolean  _cru_run_check_cancel (CruRun *run, GError **error);

/* cru-engine-moe.c: runs a plan whose result is a mixture of experts (plan->moe). */
gboolean  _cru_engine_run_moe (CruPlan *plan, CruProgressFunc progress, gpointer user_data,
                               GCancellable *cancellable, GError **error);

G_END_DECLS
