/* cru-forward.h — CPU forward pass of Llama / Mistral / Qwen2 / Qwen3 decoders and of
 * Mixtral / Qwen2-MoE / Qwen3-MoE mixtures (f32, OpenBLAS)
 *
 * Sequences are processed layer by layer: the residual streams of all sequences of a call
 * advance one layer at a time, so only one layer's weights need to be in f32 at once (unless
 * they are kept, see cru_forward_set_keep_weights).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include "cru-model.h"

G_BEGIN_DECLS

typedef enum {
  CRU_ROPE_DEFAULT,
  CRU_ROPE_LINEAR,
  CRU_ROPE_LLAMA3,
} CruRopeKind;

typedef enum {
  CRU_MLP_DENSE,
  CRU_MLP_MIXTRAL,     /* block_sparse_moe.gate + experts.E.w1/w2/w3 */
  CRU_MLP_QWEN_MOE,    /* mlp.gate + mlp.experts.E.{gate,up,down}_proj (+ shared expert) */
} CruMlpKind;

typedef struct {
  int         hidden_size, intermediate_size, n_layers;
  int         n_heads, n_kv_heads, head_dim, vocab_size;
  double      rms_norm_eps, rope_theta;
  CruRopeKind rope_kind;
  double      rope_factor, rope_low_freq_factor, rope_high_freq_factor;
  int         rope_original_max_position;
  gboolean    tie_word_embeddings;
  gboolean    qkv_bias, qk_norm;          /* Qwen2 biases, Qwen3 per-head q/k norms */
  CruMlpKind  mlp_kind;
  int         n_experts, n_experts_per_token;
  gboolean    norm_topk_prob, shared_expert;
  int         bos_token_id;               /* -1 when the config has none */
} CruLmConfig;

typedef struct _CruForward CruForward;

/* Reads the model's config.json and checks the tensors exist with the expected shapes. */
CruForward        *cru_forward_new         (CruModel *model, GError **error);
void               cru_forward_free        (CruForward *fw);
const CruLmConfig *cru_forward_get_config  (CruForward *fw);
CruModel          *cru_forward_get_model   (CruForward *fw);
/* Worker threads (default: the number of processors). OpenBLAS runs single-threaded
 * inside them. */
void               cru_forward_set_threads (CruForward *fw, guint n_threads);
/* Keep every layer's f32 weights between calls (faster for many calls, e.g. perplexity);
 * default FALSE: each call streams the layers. */
void               cru_forward_set_keep_weights (CruForward *fw, gboolean keep);
/* f32 bytes of all weights (what keeping them costs). */
guint64            cru_forward_get_f32_bytes (CruForward *fw);

/* Hooks are called from worker threads, for different sequences at the same time; each
 * call gets one sequence's rows. Any may be NULL; logits are only computed when @logits
 * is set. */
typedef struct {
  /* residual stream entering layer @layer (0 = embeddings), [n_tokens × hidden] */
  void (*layer_input) (gpointer user_data, guint seq, int layer, const float *h,
                       guint n_tokens);
  /* residual stream after the last layer, before the final norm */
  void (*last_hidden) (gpointer user_data, guint seq, const float *h, guint n_tokens);
  /* output of the final norm, [n_tokens × hidden] */
  void (*final_norm)  (gpointer user_data, guint seq, const float *h, guint n_tokens);
  /* [n_tokens × vocab] */
  void (*logits)      (gpointer user_data, guint seq, const float *logits, guint n_tokens);
  gpointer user_data;
  /* MoE models: when set, [n_layers × n_experts] counts of (token, expert) selections are
   * added here. */
  guint64 *routing_counts;
} CruForwardHooks;

gboolean cru_forward_run (CruForward *fw, guint n_seqs, const gint32 *const *tokens,
                          const guint *lengths, const CruForwardHooks *hooks,
                          GCancellable *cancellable, GError **error);

/* Parses the decoder config (exported for tests). */
gboolean cru_lm_config_parse (JsonObject *config, const char *model_name, CruLmConfig *out,
                              GError **error);

G_END_DECLS
