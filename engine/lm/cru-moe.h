/* cru-moe.h — build a mixture of experts from dense models (mergekit-moe parity)
 *
 * Attention, norms, embeddings and lm_head come from the base; expert k's MLP from expert
 * model k; router rows from the base's hidden states on each expert's prompts (see
 * METHODS.md "MoE building").
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include "cru-dtype.h"
#include "cru-model.h"

G_BEGIN_DECLS

typedef enum {
  CRU_GATE_HIDDEN,          /* last token's residual stream entering each layer */
  CRU_GATE_HIDDEN_AVG,      /* mean over positions */
  CRU_GATE_CHEAP_EMBED,     /* sum of token embeddings, same row every layer */
  CRU_GATE_RANDOM,          /* N(0, 1) */
  CRU_GATE_UNIFORM_RANDOM,  /* U(−1/√H, 1/√H), torch.nn.Linear's default init */
} CruGateMode;

typedef enum {
  CRU_MOE_OUTPUT_MIXTRAL,
  CRU_MOE_OUTPUT_QWEN2_MOE,  /* needs exactly one shared expert */
  CRU_MOE_OUTPUT_QWEN3_MOE,
} CruMoeOutput;

typedef struct {
  char    *source_model;      /* path (or Hub name resolved in the HF cache) */
  GStrv    positive_prompts;
  GStrv    negative_prompts;
  gboolean has_noise_scale;
  double   noise_scale;
  gboolean has_residual_scale;
  double   residual_scale;
} CruMoeExpert;

typedef struct {
  char        *base_model;
  CruGateMode  gate_mode;
  CruDType     dtype;              /* INVALID: the base's dtype */
  int          experts_per_token;  /* default 2 */
  GPtrArray   *experts;            /* CruMoeExpert */
  GPtrArray   *shared_experts;     /* CruMoeExpert, Qwen2-MoE */
  CruMoeOutput output;
  gboolean     output_set;         /* architecture given in the YAML */
  guint64      seed;               /* random gates and noise */
  guint        n_threads;          /* 0: all processors */
  char        *base_dir;           /* relative model paths are resolved here first */
  guint64      shard_size;         /* largest output shard; 0: CRU_DEFAULT_SHARD_SIZE */
} CruMoeConfig;

CruMoeConfig *cru_moe_config_new      (void);
void          cru_moe_config_free     (CruMoeConfig *config);
CruMoeExpert *cru_moe_expert_new      (const char *source_model);
void          cru_moe_expert_free     (CruMoeExpert *expert);
/* mergekit-moe YAML. Unknown keys are errors naming the key (with a suggestion). */
CruMoeConfig *cru_moe_config_from_yaml_data (const char *yaml, gssize length,
                                             const char *display_name, const char *base_dir,
                                             GError **error);
CruMoeConfig *cru_moe_config_from_yaml      (const char *path, GError **error);
/* Resolves a model reference like the build does (base_dir, current folder, HF cache). */
char         *cru_moe_resolve_model   (const CruMoeConfig *config, const char *ref,
                                       GError **error);

/* Stage text and fraction done (0..1), called from the calling thread. */
typedef void (*CruMoeProgress) (const char *stage, double fraction, gpointer user_data);

/* Router rows [n_layers × n_experts × hidden] for @experts (CruMoeExpert) from @base. */
float   *cru_moe_compute_gates  (const CruMoeConfig *config, CruModel *base, GPtrArray *experts,
                                 GCancellable *cancellable, GError **error);
/* 2-norm condition number σmax/σmin of an E×H matrix (E ≤ H); G_MAXDOUBLE when singular. */
double   cru_moe_condition_number (const float *gate, int n_experts, int hidden);

/* Builds the MoE into @out_dir (appears only when complete). Warnings (degenerate gates,
 * a number of experts that is not a power of two) are appended to @warnings (char *) when
 * not NULL. */
gboolean cru_moe_build (const CruMoeConfig *config, const char *out_dir, gboolean overwrite,
                        CruMoeProgress progress, gpointer user_data, GPtrArray *warnings,
                        GCancellable *cancellable, GError **error);

/* ---- for front ends that plan and run a MoE like a merge (cru_plan, cru_engine_run) ---- */

typedef enum {
  CRU_MOE_STAGE_GATES,     /* router rows from the prompts (the base's forward pass) */
  CRU_MOE_STAGE_TENSORS,   /* copying the experts' and the base's tensors */
  CRU_MOE_STAGE_FILES,     /* config.json, tokenizer */
} CruMoeStage;

typedef struct {
  CruMoeStage stage;
  double      fraction;        /* of this stage, 0..1 */
  guint       tensors_done;
  guint       tensors_total;
  guint64     bytes_read;      /* weights read so far (the gates' forward pass included) */
  guint64     bytes_written;   /* output bytes written so far */
  const char *tensor;          /* tensor being written, or NULL */
} CruMoeStatus;

/* Called on the building thread, or on one forward-pass worker at a time. */
typedef void (*CruMoeStatusFunc) (const CruMoeStatus *status, gpointer user_data);

/* One tensor of the output, known from the inputs' headers. */
typedef struct {
  char    *name;
  int      ndim;
  int64_t  shape[2];
  guint64  numel;
  guint64  read_bytes;   /* bytes read from an input to write it (0: router rows, zeros) */
} CruMoeTensor;

/* What a build costs, from headers only. */
typedef struct {
  GPtrArray *tensors;          /* CruMoeTensor*, in write (name) order */
  guint64    output_numel;     /* elements of all output tensors */
  guint64    gate_read_bytes;  /* weights the router's forward pass reads */
  guint64    read_bytes;       /* all weights read, gate_read_bytes included */
  double     gate_flops;       /* arithmetic of that forward pass */
  guint64    peak_bytes;       /* memory the build holds at most, beyond what the process
                                * held before it started */
} CruMoeCost;

/* Validates @config against the opened @models (base, experts, then shared experts, as
 * cru_moe_build orders them) and computes the cost with @n_threads (0: all processors). */
gboolean cru_moe_cost        (const CruMoeConfig *config, GPtrArray *models, guint n_threads,
                              CruMoeCost *cost, GError **error);
void     cru_moe_cost_clear  (CruMoeCost *cost);
/* The warning a build gives for @n_experts (not a power of two), or NULL. */
char    *cru_moe_expert_count_warning (guint n_experts);
/* Builds into the existing folder @dir (the caller's temporary output folder): the weights,
 * config.json, the base's tokenizer and generation_config.json — not README.md. */
gboolean cru_moe_build_into  (const CruMoeConfig *config, const char *dir,
                              CruMoeStatusFunc status, gpointer user_data, GPtrArray *warnings,
                              GCancellable *cancellable, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruMoeConfig, cru_moe_config_free)

G_END_DECLS
