/* cru-method-private.h — shared helpers of the method families (not public API)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "cru-error.h"
#include "cru-method.h"

G_BEGIN_DECLS

/* Unbounded range ends (shown as "any number"). */
#define CRU_PARAM_UNBOUNDED G_MAXDOUBLE

#define CRU_PARAM_SPEC_WEIGHT                                                      \
  { "weight", N_("Weight"), N_("How much this input counts in the merge"),         \
    CRU_PARAM_FLOAT, TRUE, 1.0, -CRU_PARAM_UNBOUNDED, CRU_PARAM_UNBOUNDED,          \
    FALSE, FALSE, NULL }
#define CRU_PARAM_SPEC_WEIGHT_UNUSED                                               \
  { "weight", N_("Weight"),                                                        \
    N_("Not used by this method; accepted for mergekit compatibility"),            \
    CRU_PARAM_FLOAT, TRUE, 1.0, -CRU_PARAM_UNBOUNDED, CRU_PARAM_UNBOUNDED,          \
    FALSE, FALSE, NULL }
#define CRU_PARAM_SPEC_INT8_MASK                                                   \
  { "int8_mask", N_("8-bit masks"),                                                \
    N_("Memory saving option of mergekit; no effect on the result"),               \
    CRU_PARAM_BOOL, FALSE, 0.0, 0.0, 1.0, FALSE, FALSE, NULL }

/* The method families' descriptors (listed once in cru-method-registry.c). */
extern const CruMethod cru_method_linear;
extern const CruMethod cru_method_slerp;
extern const CruMethod cru_method_nuslerp;
extern const CruMethod cru_method_multislerp;
extern const CruMethod cru_method_karcher;
extern const CruMethod cru_method_task_arithmetic;
extern const CruMethod cru_method_ties;
extern const CruMethod cru_method_dare_ties;
extern const CruMethod cru_method_dare_linear;
extern const CruMethod cru_method_breadcrumbs;
extern const CruMethod cru_method_breadcrumbs_ties;
extern const CruMethod cru_method_della;
extern const CruMethod cru_method_della_linear;
extern const CruMethod cru_method_sce;
extern const CruMethod cru_method_ram;
extern const CruMethod cru_method_ramplus_tl;
extern const CruMethod cru_method_model_stock;
extern const CruMethod cru_method_nearswap;
extern const CruMethod cru_method_arcee_fusion;
extern const CruMethod cru_method_passthrough;
extern const CruMethod cru_method_sdm_w;

/* Global parameter @name of the call (the spec's default when the method lacks it). */
double _cru_call_param       (const CruMethod *method, const CruMethodCall *call,
                              const char *name);
/* Per-model parameter @name of input @i (falls back to the global value, then default). */
double _cru_call_model_param (const CruMethod *method, const CruMethodCall *call, int i,
                              const char *name);

/* Reductions in double (keeps within 1e-5 relative of torch's float32 reductions). */
double _cru_dot      (const float *restrict a, const float *restrict b, guint64 n);
double _cru_sum_sq   (const float *restrict a, guint64 n);
double _cru_sum_abs  (const float *restrict a, guint64 n);
/* out[i] = a[i] − b[i] in f32 */
void   _cru_sub      (const float *restrict a, const float *restrict b, float *restrict out,
                      guint64 n);

/* Workspace helper: 64-byte aligned slices of call->workspace. */
static inline float *
_cru_workspace_floats (const CruMethodCall *call, guint64 index, guint64 count)
{
  return (float *) call->workspace + index * ((count + 15) & ~(guint64) 15);
}

static inline gsize
_cru_workspace_float_bytes (guint64 n_arrays, guint64 count)
{
  return (gsize) (n_arrays * ((count + 15) & ~(guint64) 15) * sizeof (float));
}

G_END_DECLS
