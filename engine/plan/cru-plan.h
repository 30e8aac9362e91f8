/* cru-plan.h — compile a graph into a validated execution plan with estimates.
 * Validation reads headers and configs only — never weights.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include "cru-graph.h"
#include "cru-dtype.h"

G_BEGIN_DECLS

typedef enum {
  CRU_SEVERITY_ERROR,     /* the plan cannot run */
  CRU_SEVERITY_WARNING,   /* it runs, but the user should know (vocab crop, unknown param) */
  CRU_SEVERITY_INFO,
} CruSeverity;

typedef struct {
  CruSeverity severity;
  guint       node;      /* node it belongs to; 0 = the whole graph */
  guint       link;      /* link it belongs to, 0 = none */
  char       *port;      /* input port name, or NULL for the node itself */
  char       *message;   /* translated, names models/tensors/parameters, says what to do */
  char       *param;     /* an unknown-parameter warning: the parameter's name (as written,
                          * never translated); NULL for every other problem */
} CruProblem;

typedef enum {
  CRU_DEVICE_AUTO,
  CRU_DEVICE_CPU,
  CRU_DEVICE_CUDA,
} CruDevice;

typedef struct {
  guint       n_threads;      /* 0 = number of cores */
  CruDevice   device;         /* AUTO = the Output node's choice, else CUDA when usable */
  guint64     seed;           /* for random methods */
  guint64     shard_size;     /* 0 = the Output node's, default 5 GB */
  const char *out_dir;        /* NULL = the Output node's folder */
  CruDType    out_dtype;      /* INVALID = the Output node's */
  gboolean    overwrite;      /* replace an existing output folder */
  gboolean    allow_crimes;   /* allow mixing architecture families */
  int         copy_tokenizer; /* -1 = the Output node's (default yes), 0 no, 1 yes */
} CruPlanOptions;

typedef struct {
  guint64  peak_ram_bytes;    /* for n_threads; within 20% of measured peak RSS */
  guint64  peak_vram_bytes;   /* 0 on CPU; on CUDA the GPU memory the run holds at most */
  guint64  bytes_read;
  guint64  bytes_written;
  guint64  output_bytes;      /* the model files in the output dtype */
  guint64  disk_free_bytes;   /* on the output folder's filesystem */
  double   seconds;           /* estimated wall time from measured bandwidths */
  guint    n_tensors;
  guint    n_shards;
  guint    n_threads;
  CruDevice device;           /* what will run (CPU or CUDA) */
  gboolean has_stats_pass;
} CruEstimate;

typedef struct _CruPlan CruPlan;

void      cru_plan_options_init (CruPlanOptions *options);

/* Compiles @graph. Returns a plan even when the graph has problems (see is_runnable); NULL
 * only with @error set (cancelled, or the graph is empty). Reads the graph on the calling
 * thread (so the graph may be edited afterwards) and opens model headers. */
CruPlan  *cru_plan_compile       (CruGraph *graph, const CruPlanOptions *options,
                                  GCancellable *cancellable, GError **error);
/* Same on a worker thread (the graph is snapshotted before returning). */
void      cru_plan_compile_async (CruGraph *graph, const CruPlanOptions *options,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
CruPlan  *cru_plan_compile_finish (GAsyncResult *result, GError **error);

CruPlan  *cru_plan_ref           (CruPlan *plan);
void      cru_plan_unref         (CruPlan *plan);

gboolean           cru_plan_is_runnable   (CruPlan *plan);   /* no ERROR problems */
GPtrArray         *cru_plan_get_problems  (CruPlan *plan);   /* CruProblem*, owned */
const CruEstimate *cru_plan_get_estimate  (CruPlan *plan);
const char        *cru_plan_get_output_dir (CruPlan *plan);
CruDType           cru_plan_get_output_dtype (CruPlan *plan);
/* The number of routed experts when the plan builds a mixture of experts, else 0. */
guint              cru_plan_get_n_experts (CruPlan *plan);
/* Output tensor names in write order (for progress displays and tests). */
guint              cru_plan_get_n_tensors (CruPlan *plan);
const char        *cru_plan_get_tensor_name (CruPlan *plan, guint index);
/* After a run: a stats-pass node's per-model weights (SDM-W W_i), n_inputs doubles; NULL
 * before the run or for other nodes. */
const double      *cru_plan_get_node_weights (CruPlan *plan, guint node, guint *n_weights);
/* After a run: what it found that the user should know, as CruProblem* (severity WARNING,
 * attached to a node) — e.g. a mixture of experts whose prompts are too similar to route
 * by. Empty before a run; replaced by each run. A copy, safe to take while a run is going
 * on: free with g_ptr_array_unref. */
GPtrArray         *cru_plan_get_run_warnings (CruPlan *plan);

/* The device that runs the merge in words ("NVIDIA H200, 143.8 GB"), or why it is the CPU
 * ("CPU (chosen)", "CUDA: no device found — running on CPU"). */
const char        *cru_plan_get_device_note (CruPlan *plan);

/* Stable machine-readable form (crucible-cli plan --json): {"runnable", "problems": [...],
 * "estimate": {...}, "output": {...}, "tensors": n, "moe": {...} or null, ...}. */
JsonNode          *cru_plan_to_json       (CruPlan *plan);
/* Human-readable report (crucible-cli plan). */
char              *cru_plan_to_text       (CruPlan *plan);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruPlan, cru_plan_unref)

G_END_DECLS
