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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruMoeConfig, cru_moe_config_free)

G_END_DECLS
