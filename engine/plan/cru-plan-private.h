/* cru-plan-private.h — the compiled plan, shared by the compiler and the executor
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib/gi18n-lib.h>

#include "cru-plan.h"
#include "cru-model.h"
#include "cru-method.h"
#include "cru-error.h"
#include "cru-backend.h"
#include "cru-moe.h"

G_BEGIN_DECLS

/* Elements per chunk when a whole expression is element-wise (32 MB of f32): what a GPU
 * call takes at least to be worth its transfers. */
#define CRU_PLAN_CHUNK_ELEMENTS (8u * 1024u * 1024u)
/* The same on the CPU (256 KB of f32): a chunk's inputs, workspace and output stay in the
 * caches between reading, merging and converting, where 32 MB chunks went through memory
 * several times (measured on a 1B-shaped TIES: a quarter less CPU time, 28 MB instead of
 * 450 MB peak); 1 MB chunks still overflowed a 512 KB L2 (on a 1B-shaped TIES with 2
 * threads, 64 Ki elements took 16 % less user and 9 % less system time than 256 Ki, DARE-TIES
 * 5 % and 10 % less; 32 Ki was slower again). A multiple of CRU_FIXED_SUM_BLOCK, as streamed
 * fixed-order sums need. */
#define CRU_PLAN_CPU_CHUNK_ELEMENTS (64u * 1024u)
/* Buffers inside a per-thread arena are aligned to this (O_DIRECT friendly). */
#define CRU_PLAN_ALIGN 4096u

typedef enum {
  CRU_EXPR_READ,     /* a tensor of an input model, possibly cropped to a smaller 2-D shape */
  CRU_EXPR_CROP,     /* the top-left [rows, cols] block of a computed tensor */
  CRU_EXPR_METHOD,   /* a method call over input expressions */
} CruExprKind;

typedef struct _CruStatsNode CruStatsNode;
typedef struct _CruExpr CruExpr;

struct _CruExpr {
  int           ref_count;
  CruExprKind   kind;
  int           ndim;
  int64_t       shape[CRU_MAX_DIMS];
  guint64       numel;
  int           layer;        /* layer in the stream this expression belongs to, -1 outside */
  CruTensorRole role;
  char         *name;         /* tensor name in that stream */
  char         *origin;       /* "ft-c" or "ties (node 4)": for messages */

  /* READ */
  CruModel             *model;
  const CruModelTensor *tensor;
  int64_t               src_cols; /* columns of the stored tensor (≠ shape[1] when cropped) */

  /* CROP */
  CruExpr      *child;

  /* METHOD */
  const CruMethod *method;
  guint            node;
  CruExpr         *base;       /* NULL without a base */
  int              n_models;
  CruExpr        **models;
  int             *model_keys;
  double          *params;       /* n_params */
  double          *model_params; /* n_models × n_params */
  CruStatsNode    *stats;        /* STATS_PASS methods */

  /* Derived (cru_expr_finish): */
  gboolean      chunkable;      /* may be evaluated on element ranges */
  guint64       read_bytes;     /* bytes read from disk to compute it once */
  guint64       scratch_bytes;  /* arena bytes needed below its own output buffer, for
                                 * the evaluation unit (a chunk or the whole tensor) */
  guint64       unit;           /* elements per evaluation unit */
  int           stream_passes;  /* METHOD streamed in chunks after this many gathering
                                 * passes (cru_method_stream_passes); 0 = not streamed */
  guint64       stream_bytes;   /* arena bytes of the stream states of the whole tree */
  guint64       stats_stream_bytes; /* a chunkable statistics-pass call: its streamed
                                     * statistics pass's state */

  /* Device placement (cru-plan-device.c): where the method call runs. */
  gboolean      on_device;        /* the output pass runs on the GPU */
  gboolean      stats_on_device;  /* the statistics pass runs on the GPU */
};

struct _CruStatsNode {
  guint            node;
  const CruMethod *method;
  int              n_models;
  GPtrArray       *exprs;     /* CruExpr* of every tensor of the node's stream */
  gpointer         stats;     /* set by the executor */
  double          *weights;   /* copy of stats_get_weights after the pass */
};

/* Where one method node's tensors run (cru-plan-device.c). */
typedef struct {
  guint          node;
  char          *title;          /* "ties (node 4)" */
  guint          n_device;       /* tensors on the GPU */
  guint          n_cpu;          /* tensors on the CPU */
  CruBackendFit  cpu_reason;     /* why the first CPU tensor is not on the GPU */
  char          *cpu_example;    /* its name */
} CruPlacement;

/* One output tensor. */
typedef struct {
  char    *name;
  CruExpr *expr;
  guint    layout_index;
  guint64  out_bytes;     /* bytes in the output dtype */
  guint64  arena_bytes;   /* per-thread arena bytes: output buffer + scratch */
} CruPlanTask;

struct _CruPlan {
  int            ref_count;
  GPtrArray     *problems;        /* CruProblem* */
  CruEstimate    estimate;
  CruPlanOptions options;
  char          *out_dir;
  CruDType       out_dtype;
  guint64        shard_size;
  gboolean       copy_tokenizer;
  char          *tokenizer_source;  /* "base" | "union" | "model:<id>" */
  char          *chat_template;
  guint          output_node;

  GPtrArray     *models;          /* CruModel* of every input, in node order */
  GPtrArray     *model_nodes;     /* guint ids (GUINT_TO_POINTER) parallel to models */
  CruModel      *config_source;   /* whose config.json the output starts from */
  CruModel      *tokenizer_model; /* whose tokenizer files are copied (borrowed) */
  int            n_layers;        /* output layers */
  int64_t        vocab_size;      /* rows of the output embedding, -1 unknown */
  gboolean       has_lm_head;

  CruPlanTask   *tasks;           /* sorted by name = layout order */
  guint          n_tasks;
  guint         *order;           /* task indices, largest first */
  GPtrArray     *stats_nodes;     /* CruStatsNode* */
  struct _CruLayout *layout;
  char          *device_note;     /* "NVIDIA H200, 143.8 GB", or why the CPU runs it */
  guint64        vram_budget;     /* device bytes calls may hold, 0 on the CPU */
  GArray        *placements;      /* CruPlacement, one per method node; NULL on the CPU */
  guint64       *device_call_bytes; /* [n_tasks + stats exprs]: largest device call each */
  guint          n_device_call_bytes;
  guint64        arena_bytes;     /* max per-thread arena */
  guint64        baseline_rss;

  char          *recipe;          /* crucible-recipe.crucible text */
  char          *mergekit_yaml;   /* or NULL with mergekit_error */
  char          *mergekit_error;
  char          *card_methods;    /* method summary for the model card */
  GPtrArray     *card_inputs;     /* "label — path" */

  /* A mixture of experts as the result (cru-plan-moe.c): cru_moe_build_into runs it
   * instead of tasks. NULL for merges, and for a MoE with errors. */
  CruMoeConfig  *moe;
  guint          moe_node;
  char          *moe_title;       /* the MoE node's title, for messages */
  GPtrArray     *moe_models;      /* CruModel*: base, experts, shared experts */
  CruMoeCost     moe_cost;

  GMutex         run_lock;        /* run_warnings: set by a run, read by front ends */
  GPtrArray     *run_warnings;    /* CruProblem*: what the last run found */
};

/* cru-plan-expr.c */
CruExpr  *_cru_expr_new_read   (CruModel *model, const CruModelTensor *tensor);
CruExpr  *_cru_expr_new_crop   (CruExpr *child, int64_t rows, int64_t cols);
CruExpr  *_cru_expr_new_method (const CruMethod *method, guint node, const char *origin,
                                const char *name, int layer, CruTensorRole role);
CruExpr  *_cru_expr_ref        (CruExpr *expr);
void      _cru_expr_unref      (CruExpr *expr);
/* Computes chunkable, read_bytes, scratch_bytes and unit for a tree. */
void      _cru_expr_finish     (CruExpr *expr);
/* The same, letting methods that can stream (cru_method_stream_passes) run in chunks after
 * gathering passes, so that a tree of them needs memory for a chunk, not a tensor. For
 * plans that run on the CPU. */
void      _cru_expr_finish_streaming (CruExpr *expr);
char     *_cru_shape_to_string (int ndim, const int64_t *shape);
gboolean  _cru_shape_equal     (const CruExpr *a, const CruExpr *b);
/* Calls @func on every READ leaf. */
void      _cru_expr_foreach_read (CruExpr *expr, void (*func) (CruExpr *leaf, gpointer data),
                                  gpointer data);

/* A model-valued stream: what flows along a link. */
typedef struct {
  CruExpr       *expr;
  int            layer;     /* in this stream, -1 outside layers */
  CruTensorRole  role;
} CruStreamEntry;

typedef struct {
  GHashTable *entries;      /* name → CruStreamEntry* */
  int         n_layers;
  CruModel   *config;       /* config.json / tokenizer source */
  CruArch     arch;
  gboolean    tied;         /* no lm_head; the embedding doubles as the output head */
  char       *origin;       /* for messages: model name or node label */
} CruStream;

typedef struct {
  CruPlan    *plan;
  CruGraph   *graph;
  GHashTable *streams;      /* node id → CruStream* (NULL value = failed) */
  GHashTable *models;       /* node id → CruModel* */
  GHashTable *messages;     /* "node:message" already reported */
  GCancellable *cancellable;
} CruCompiler;

/* cru-plan-stream.c */
CruStream *_cru_compile_stream (CruCompiler *c, guint node);
void       _cru_stream_free    (CruStream *s);
char      *_cru_node_title     (CruGraph *graph, guint node);
/* Like _cru_plan_add_problem, but reports a message once per node. */
void       _cru_compiler_problem (CruCompiler *c, CruSeverity severity, guint node, guint link,
                                  const char *port, const char *message);

/* cru-plan.c */
void      _cru_plan_add_problem (CruPlan *plan, CruSeverity severity, guint node, guint link,
                                 const char *port, const char *format, ...) G_GNUC_PRINTF (6, 7);
/* Warns about parameter @name that is not one of @known, suggesting the closest. */
void      _cru_plan_unknown_param (CruCompiler *c, guint node, guint link, const char *title,
                                   const char *name, const char *const *known, guint n_known,
                                   const char *what);
CruProblem *_cru_problem_new    (CruSeverity severity, guint node, guint link, const char *port,
                                 const char *message);
/* Replaces what the last run found (takes @warnings, CruProblem*; NULL empties it). */
void      _cru_plan_set_run_warnings (CruPlan *plan, GPtrArray *warnings);
void      _cru_problem_free     (gpointer problem);

/* cru-plan-moe.c: a mixture of experts feeding the Output node. */
guint     _cru_plan_moe_node    (CruGraph *graph, guint out_node);   /* 0 = not a MoE */
/* Checks the MoE node and its inputs (opening their headers); sets plan->moe when valid. */
void      _cru_plan_moe_check   (CruCompiler *c, guint moe_node, guint out_node);
void      _cru_plan_moe_device  (CruCompiler *c, guint out_node);
/* After the output settings: the build's configuration, tensors, layout and cost. */
void      _cru_plan_moe_finish  (CruCompiler *c);
void      _cru_plan_moe_to_json (CruPlan *plan, JsonBuilder *b);
void      _cru_plan_moe_to_text (CruPlan *plan, GString *s);
/* README.md, crucible-recipe.crucible and mergekit_moe_config.yml into @dir. */
gboolean  _cru_plan_moe_write_side_files (CruPlan *plan, const char *dir, GError **error);
const char *_cru_plan_moe_gate_mode_name    (int mode);
const char *_cru_plan_moe_architecture_name (int output);

/* cru-plan-device.c: the device choice (Output node's "device", the options), then which
 * method calls run on the GPU and the VRAM they need. */
void      _cru_plan_choose_device (CruCompiler *c, CruGraph *graph, guint out_node);
void      _cru_plan_place         (CruPlan *plan, CruGraph *graph);
void      _cru_plan_placement_free (CruPlan *plan);
void      _cru_plan_placement_to_json (CruPlan *plan, JsonBuilder *b);
void      _cru_plan_placement_to_text (CruPlan *plan, GString *s);
/* The process's CUDA backend used for planning (never freed), or NULL with the reason and
 * whether the module is missing altogether. */
CruBackend *_cru_plan_cuda_probe  (const char **reason, gboolean *module_missing);

/* cru-plan-estimate.c */
void      _cru_plan_estimate    (CruPlan *plan);
void      _cru_plan_estimate_moe (CruPlan *plan);
guint64   _cru_plan_current_rss (void);
guint64   _cru_plan_disk_free   (const char *path);

/* cru-plan-output.c: writes config.json, tokenizer files, README.md and the recipes into
 * @dir (the temporary output folder). */
gboolean  _cru_plan_write_side_files (CruPlan *plan, const char *dir, GError **error);
CruModel *_cru_plan_choose_tokenizer (CruPlan *plan);

G_END_DECLS
