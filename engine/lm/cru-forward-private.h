/* cru-forward-private.h — one decoder layer's weights and the f32 kernels that run it
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-forward.h"

G_BEGIN_DECLS

typedef struct {
  float  *attn_norm, *mlp_norm;                 /* [H] */
  float  *wq, *wk, *wv, *wo;                    /* [out × in], as stored */
  float  *bq, *bk, *bv;                         /* NULL without biases */
  float  *q_norm, *k_norm;                      /* [head_dim], Qwen3 */
  float  *w_gate, *w_up, *w_down;               /* dense MLP */
  float  *router;                               /* [E × H] */
  float **e_gate, **e_up, **e_down;             /* per expert */
  int     expert_inter;                         /* rows of an expert's gate/up */
  float  *sh_gate, *sh_up, *sh_down, *sh_router;/* Qwen2-MoE shared expert, router [1 × H] */
  int     shared_inter;
  GPtrArray *buffers;                           /* owns everything above */
} CruLayerWeights;

/* Scratch of one worker; grown on demand, reused across groups. */
typedef struct {
  float *buf[8];
  gsize  size[8];
} CruScratch;

float *_cru_scratch_get (CruScratch *s, guint slot, gsize n_floats);
void   _cru_scratch_clear (CruScratch *s);

/* out[i] = x[i] * rsqrt(mean(x^2) + eps) * w, for @n rows of @dim. @out may be @x. */
void _cru_rmsnorm (const float *x, const float *w, float *out, gsize n, gsize dim, double eps);

/* cos/sin tables [max_pos × head_dim] (rotate-half layout, halves repeated). */
void _cru_rope_tables (const CruLmConfig *cfg, guint max_pos, float *cos_t, float *sin_t);

/* Runs one layer on a group of @n_seqs sequences whose tokens are contiguous rows of @x
 * ([Σ lengths × H], updated in place). @route_counts: [n_experts] or NULL. */
void _cru_layer_forward (const CruLmConfig *cfg, const CruLayerWeights *w, float *x,
                         guint n_seqs, const guint *lengths, const float *cos_t,
                         const float *sin_t, guint64 *route_counts, CruScratch *scratch);

G_END_DECLS
