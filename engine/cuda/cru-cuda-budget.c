/* cru-cuda-budget.c — memory and capability rules of the CUDA backend (no CUDA calls)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-budget.h"

#include <string.h>

static const struct {
  const char  *name;
  CruCudaKind  kind;
} kinds[] = {
  { "linear", CRU_CUDA_KIND_LINEAR },
  { "task_arithmetic", CRU_CUDA_KIND_TASK },
  { "ties", CRU_CUDA_KIND_TASK },
  { "dare_ties", CRU_CUDA_KIND_TASK },
  { "dare_linear", CRU_CUDA_KIND_TASK },
  { "breadcrumbs", CRU_CUDA_KIND_TASK },
  { "breadcrumbs_ties", CRU_CUDA_KIND_TASK },
  { "della", CRU_CUDA_KIND_TASK },
  { "della_linear", CRU_CUDA_KIND_TASK },
  { "slerp", CRU_CUDA_KIND_SLERP },
  { "nuslerp", CRU_CUDA_KIND_NUSLERP },
  { "multislerp", CRU_CUDA_KIND_MULTISLERP },
  { "karcher", CRU_CUDA_KIND_KARCHER },
  { "sce", CRU_CUDA_KIND_SCE },
  { "ram", CRU_CUDA_KIND_RAM },
  { "ramplus_tl", CRU_CUDA_KIND_RAMPLUS },
  { "model_stock", CRU_CUDA_KIND_STOCK },
  { "nearswap", CRU_CUDA_KIND_NEARSWAP },
  { "arcee_fusion", CRU_CUDA_KIND_ARCEE },
  { "passthrough", CRU_CUDA_KIND_PASSTHROUGH },
  { "sdm_w", CRU_CUDA_KIND_SDM },
};

CruCudaKind
cru_cuda_method_kind (const CruMethod *method)
{
  if (method == NULL || method->name == NULL)
    return CRU_CUDA_KIND_NONE;
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (strcmp (kinds[i].name, method->name) == 0)
      return kinds[i].kind;
  return CRU_CUDA_KIND_NONE;
}

static double
param_value (const CruMethod *method, const double *params, const char *name, double fallback)
{
  for (int p = 0; p < method->n_params; p++)
    if (strcmp (method->params[p].name, name) == 0)
      return params ? params[p] : method->params[p].default_value;
  return fallback;
}

gboolean
cru_cuda_method_streams (const CruMethod *method, const double *params)
{
  if (cru_cuda_method_kind (method) == CRU_CUDA_KIND_NONE)
    return FALSE;
  if (method->flags & CRU_METHOD_ELEMENTWISE)
    return TRUE;
  /* DARE's random mask is element-wise; only the L1 rescale (1) needs the whole tensor */
  if (g_str_has_prefix (method->name, "dare_"))
    return (int) param_value (method, params, "rescale", 1.0) != 1;
  return FALSE;
}

guint64
cru_cuda_budget_from_meminfo (guint64 free_bytes, guint64 total_bytes)
{
  guint64 headroom = total_bytes / 10;

  return free_bytes > headroom ? free_bytes - headroom : 0;
}

guint64
cru_cuda_slice_elements (int n_arrays, guint64 slot_bytes)
{
  /* n_arrays floats plus one mask byte per element, a multiple of 4096 elements */
  guint64 per = (guint64) MAX (n_arrays, 1) * sizeof (float) + 1;
  guint64 n = slot_bytes / per;

  n &= ~(guint64) 4095;
  return MAX (n, 4096);
}

static int
n_inputs (const CruMethod *method, int n_models)
{
  return n_models + ((method->flags & (CRU_METHOD_NEEDS_BASE | CRU_METHOD_BASE_OPTIONAL)) ? 1 : 0);
}

/* Scratch bytes per element beyond the inputs and the output, whole-tensor path. */
static guint64
extra_bytes_per_element (const CruMethod *method, CruCudaKind kind)
{
  switch (kind)
    {
    case CRU_CUDA_KIND_TASK:
      /* mask + equal-rank flags and prefix sums; DELLA sorts 64-bit keys with 32-bit values
       * (double-buffered) */
      return 1 + 8 + (g_str_has_prefix (method->name, "della") ? 24 : 0);
    case CRU_CUDA_KIND_SCE:
      return 4 + 1 + 8;
    case CRU_CUDA_KIND_ARCEE:
    case CRU_CUDA_KIND_KARCHER:
    case CRU_CUDA_KIND_MULTISLERP:
      return 4;
    case CRU_CUDA_KIND_NUSLERP:
    case CRU_CUDA_KIND_STOCK:
      return 8;   /* per-vector sums, bounded by one double per element */
    case CRU_CUDA_KIND_SDM:
      return 0;   /* deltas in place */
    default:
      return 0;
    }
}

guint64
cru_cuda_device_bytes (const CruMethod *method, int n_models, guint64 numel)
{
  CruCudaKind kind = cru_cuda_method_kind (method);
  int arrays;

  if (kind == CRU_CUDA_KIND_NONE || numel == 0)
    return 0;
  arrays = n_inputs (method, n_models) + 1;
  if (cru_cuda_method_streams (method, NULL))
    {
      guint64 slice = MIN (numel, cru_cuda_slice_elements (arrays, CRU_CUDA_SLOT_BYTES));
      return CRU_CUDA_N_SLOTS * slice * ((guint64) arrays * sizeof (float) + 1)
             + CRU_CUDA_CALL_SLACK_BYTES;
    }
  return numel * ((guint64) arrays * sizeof (float) + extra_bytes_per_element (method, kind))
         + CRU_CUDA_CALL_SLACK_BYTES;
}

gboolean
cru_cuda_supports (const CruMethod *method, int n_models, guint64 numel, guint64 budget)
{
  if (cru_cuda_method_kind (method) == CRU_CUDA_KIND_NONE)
    return FALSE;
  if (n_models < 1 || n_models > CRU_CUDA_BUDGET_MAX_MODELS)
    return FALSE;
  if (!cru_cuda_method_streams (method, NULL) && numel > CRU_CUDA_MAX_WHOLE_NUMEL)
    return FALSE;
  return cru_cuda_device_bytes (method, n_models, numel) <= budget;
}
