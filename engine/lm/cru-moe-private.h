/* cru-moe-private.h — what the MoE builder's files (cru-moe.c, cru-moe-gates.c,
 * cru-moe-cost.c) share beyond the public API
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-moe.h"

G_BEGIN_DECLS

/* Elements per read/write piece of a build: bounds its memory and the time it takes to
 * notice a cancel (16 MB of f32). */
#define CRU_MOE_PIECE_ELEMENTS (4u * 1024u * 1024u)

/* One tensor of the output and where it comes from (cru-moe.c). */
typedef struct {
  char    *out_name;
  int      model;       /* 0 = base, 1.. = experts, then shared experts; -1 = router */
  char    *src_name;    /* tensor in that model; NULL for generated tensors */
  int      layer;       /* router layer */
  gboolean shared_router;
  gboolean residual;    /* down_proj of an expert */
  gboolean zeros;       /* missing bias filled with zeros (Qwen2-MoE from Llama) */
  int      ndim;
  int64_t  shape[2];
} CruMoeOutTensor;

void     _cru_moe_out_tensor_free (CruMoeOutTensor *t);
/* The checks of a config against its opened models (base, experts, shared experts). */
gboolean _cru_moe_validate      (const CruMoeConfig *config, CruModel *base, GPtrArray *models,
                                 GError **error);
/* The output's tensors (CruMoeOutTensor*), sorted by name: the write order. */
gboolean _cru_moe_plan_tensors  (const CruMoeConfig *config, GPtrArray *models, GPtrArray *out,
                                 GError **error);
/* Whether @t gets its expert's noise_scale noise. */
gboolean _cru_moe_is_noisy      (const CruMoeConfig *config, const CruMoeOutTensor *t);
CruDType _cru_moe_output_dtype  (const CruMoeConfig *config, CruModel *base);
/* Whether the gate mode runs the base over the prompts. */
gboolean _cru_moe_needs_forward (const CruMoeConfig *config);
/* Bytes of the base's weights one forward pass over the prompts reads. */
guint64  _cru_moe_forward_read_bytes (CruModel *base);

/* Called as the forward pass enters layer @layer of @n_layers (on one worker at a time). */
typedef void (*CruMoeLayerFunc) (int layer, int n_layers, gpointer user_data);

/* cru_moe_compute_gates, telling @layer_func how far the prompts' forward pass is. */
float *_cru_moe_compute_gates_full (const CruMoeConfig *config, CruModel *base,
                                    GPtrArray *experts, CruMoeLayerFunc layer_func,
                                    gpointer user_data, GCancellable *cancellable,
                                    GError **error);

G_END_DECLS
