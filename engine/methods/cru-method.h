/* cru-method.h — merge methods: descriptors, the registry, and the call convention.
 * One file per method family implements pure functions over f32 buffers; adding a method
 * is one file and one line in the registry table (cru-method-registry.c).
 * METHODS.md is the specification.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include "cru-arch.h"

G_BEGIN_DECLS

typedef enum {
  CRU_PARAM_FLOAT,
  CRU_PARAM_INT,
  CRU_PARAM_BOOL,
  CRU_PARAM_ENUM,      /* value is the index into choices */
} CruParamType;

typedef struct {
  const char        *name;           /* mergekit's name: "density", "t", "normalize" */
  const char        *label;          /* N_("Density") */
  const char        *description;    /* N_("Fraction of each task vector kept") */
  CruParamType       type;
  gboolean           per_model;      /* given per input (weight, density) — lives on links */
  double             default_value;
  double             min, max;       /* valid range (ignored for BOOL/ENUM) */
  gboolean           min_exclusive, max_exclusive;
  const char *const *choices;        /* ENUM: NULL-terminated ("l1", "inverse", NULL) */
} CruParamSpec;

typedef enum {
  CRU_METHOD_NEEDS_BASE    = 1 << 0,
  CRU_METHOD_BASE_OPTIONAL = 1 << 1,  /* uses a base when one is given */
  CRU_METHOD_ELEMENTWISE   = 1 << 2,  /* may be called on chunks of a tensor */
  CRU_METHOD_RANDOM        = 1 << 3,  /* uses the seed */
  CRU_METHOD_STATS_PASS    = 1 << 4,  /* needs a statistics pass over all tensors first */
  CRU_METHOD_STRUCTURAL    = 1 << 5,  /* passthrough: the plan handles layers itself */
} CruMethodFlags;

/* One call computes one output tensor (or a chunk of it for ELEMENTWISE methods). All
 * input buffers have the same (already cropped) shape. */
typedef struct {
  const char    *tensor_name;
  int            layer;          /* output layer index, -1 outside layers */
  CruTensorRole  role;
  int            ndim;
  const int64_t *shape;
  guint64        numel;          /* of the whole tensor */
  guint64        offset;         /* first element of this chunk (0 unless chunked) */
  guint64        count;          /* elements in this chunk (numel unless chunked) */
  guint64        seed;
  const float   *base;           /* NULL without a base; all pointers are at the chunk start */
  int            n_models;       /* inputs, not counting the base */
  const float *const *models;
  const int     *model_keys;     /* RNG key per model (the input's index in the recipe) */
  const double  *params;         /* [n_params] resolved for this tensor (per-model ones too: */
  const double  *model_params;   /*  [n_models × n_params] row-major, per_model ones valid) */
  gconstpointer  stats;          /* the statistics pass result, or NULL */
  void          *workspace;      /* workspace_bytes(n_models, count) bytes, 64-byte aligned */
  float         *out;            /* count floats; may alias nothing */
  gpointer       stream;         /* streaming: the state the passes gathered, else NULL */
} CruMethodCall;

typedef struct _CruMethod CruMethod;

struct _CruMethod {
  const char         *name;          /* "ties" */
  const char         *label;         /* N_("TIES") */
  const char         *description;   /* N_("…") one sentence for the palette/tooltip */
  const char         *family;        /* "linear", "slerp", "task-vector", "sdm", … */
  guint               flags;         /* CruMethodFlags */
  int                 min_models;    /* inputs besides the base */
  int                 max_models;    /* -1 = no limit */
  const CruParamSpec *params;
  int                 n_params;

  /* Scratch bytes needed for one call on @count elements (reused by the engine; counted in
   * the peak-RAM estimate). */
  gsize    (*workspace_bytes) (int n_models, guint64 count);
  gboolean (*apply)           (const CruMethod *method, const CruMethodCall *call,
                               GError **error);
  /* Cross-parameter checks beyond ranges (della: 0 < ρ−ε and ρ+ε < 1). Appends translated
   * messages to @problems. Optional. */
  void     (*validate)        (const CruMethod *method, const double *params,
                               const double *model_params, int n_models,
                               GPtrArray *problems);

  /* Statistics pass (STATS_PASS only). accumulate is called once per tensor (whole tensor,
   * out unused) from any thread and must be thread-safe. */
  gpointer (*stats_new)        (const CruMethod *method, int n_models);
  void     (*stats_accumulate) (gpointer stats, const CruMethodCall *call);
  /* Adds a tensor's per-model partial values (@partial, n_models doubles) computed by a
   * device backend (CruBackendIface.stats_partial), exactly as stats_accumulate would have
   * added its own. Optional: without it the statistics pass stays on the CPU. */
  void     (*stats_add_partial) (gpointer stats, const CruMethodCall *call,
                                 const double *partial);
  gboolean (*stats_finish)     (gpointer stats, GError **error);
  /* TRUE when, after a statistics pass on the CPU (stats_accumulate records what each
   * tensor needs), apply may run on chunks of a tensor. The statistics pass itself may
   * stream (the stream_* hooks below; stats_accumulate then gets call->stream instead of
   * buffers). */
  gboolean stats_elementwise;
  void     (*stats_free)       (gpointer stats);
  /* The computed per-model values for display ("W = 0.552, 0.448"); n_models doubles. */
  const double *(*stats_get_weights) (gconstpointer stats);

  /* Streaming (optional): a method that needs whole-tensor quantities (norms, top-k
   * thresholds, L1 sums) gathers them in passes over the tensor's chunks, then computes the
   * output chunk by chunk, so its memory does not grow with the tensor — with the same bits
   * as one call on the whole tensor. stream_n_passes: how many gathering passes these
   * global parameters need (0: not with them). The engine zeroes stream_state_bytes of
   * state (which may grow with the tensor's @numel elements: DARE's cached masks), calls
   * stream_pass on every chunk of pass 0, 1, … in order (inputs evaluated, workspace given,
   * out unused) and stream_pass_end after each pass (@call then spans the whole tensor,
   * without buffers); then apply on every chunk in order. In all of these call->stream is
   * the state. stream_pass_skip (optional): TRUE when the state already holds what pass
   * @pass would gather; the engine then reads nothing for it and calls neither stream_pass
   * nor stream_pass_end for it. */
  int      (*stream_n_passes)    (const CruMethod *method, const double *params);
  gsize    (*stream_state_bytes) (int n_models, guint64 numel);
  void     (*stream_pass)        (const CruMethod *method, const CruMethodCall *chunk, int pass,
                                  gpointer state);
  gboolean (*stream_pass_end)    (const CruMethod *method, const CruMethodCall *call, int pass,
                                  gpointer state, GError **error);
  gboolean (*stream_pass_skip)   (const CruMethod *method, int pass, gconstpointer state);
};

guint            cru_method_get_n      (void);
const CruMethod *cru_method_get_nth    (guint index);
const CruMethod *cru_method_lookup     (const char *name);
int              cru_method_find_param (const CruMethod *method, const char *name);
/* Checks @value against @spec's range; on failure returns FALSE with a translated message
 * "ties: density must be in (0, 1], got 0". */
gboolean         cru_param_spec_check  (const CruMethod *method, const CruParamSpec *spec,
                                        double value, char **message);
/* Arity/base/parameter checks of a fully resolved call shape; appends every problem. */
void             cru_method_validate   (const CruMethod *method, gboolean has_base,
                                        int n_models, const double *params,
                                        const double *model_params, GPtrArray *problems);

/* Additions (methods helper) */
/* TRUE when the method may be called on chunks with these resolved global parameters
 * (the ELEMENTWISE flag, or a parameter choice that makes it so: DARE with rescale
 * "inverse" or "none"). @params may be NULL (= defaults). */
gboolean         cru_method_is_elementwise (const CruMethod *method, const double *params);
/* Index of @choice in an ENUM spec's choices, or -1. Booleans map onto the "none"/"l1"
 * choices of rescale: true → "l1", false → "none" (indices 1 and 0). */
int              cru_param_spec_find_choice (const CruParamSpec *spec, const char *choice);
/* The spec's default value of parameter @name, or NAN when the method lacks it. */
double           cru_method_get_default    (const CruMethod *method, const char *name);
/* Fills @params (n_params) with the defaults. */
void             cru_method_fill_defaults  (const CruMethod *method, double *params);
/* Gathering passes the method needs to stream a tensor with these global parameters; 0
 * when it cannot (or is element-wise and needs none). @params may be NULL (= defaults). */
int              cru_method_stream_passes  (const CruMethod *method, const double *params);

G_END_DECLS
