/* cru-cuda-budget.c — memory and capability rules of the CUDA backend (no CUDA calls)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-budget.h"

#include <stdlib.h>
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
  guint64 pipelines = (guint64) CRU_CUDA_N_CONTEXTS * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES;
  guint64 usable = free_bytes > headroom ? free_bytes - headroom : 0;

  return usable > pipelines ? usable - pipelines : 0;
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

/* Scratch bytes per element beyond the inputs and the output, whole-tensor path (see the
 * temporary allocations of cru-cuda-select.cu and cru-cuda-kernels-sphere.cu). */
static guint64
extra_bytes_per_element (const CruMethod *method, CruCudaKind kind)
{
  switch (kind)
    {
    case CRU_CUDA_KIND_TASK:
      /* mask + equal-rank flags and prefix sums (two sets for rank ranges); DELLA sorts
       * 64-bit keys with 32-bit values, double-buffered */
      return 1 + 16 + (g_str_has_prefix (method->name, "della") ? 24 : 0);
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
cru_cuda_device_bytes (const CruMethod *method, const double *params, int n_models,
                       guint64 numel)
{
  CruCudaKind kind = cru_cuda_method_kind (method);
  int arrays;

  if (kind == CRU_CUDA_KIND_NONE || numel == 0)
    return 0;
  if (cru_cuda_method_streams (method, params))
    return CRU_CUDA_CALL_SLACK_BYTES;
  arrays = n_inputs (method, n_models) + 1;
  return numel * ((guint64) arrays * sizeof (float) + extra_bytes_per_element (method, kind))
         + CRU_CUDA_CALL_SLACK_BYTES;
}

CruBackendFit
cru_cuda_fit (const CruMethod *method, const double *params, int n_models, guint64 numel,
              guint64 budget)
{
  CruCudaKind kind = cru_cuda_method_kind (method);

  if (kind == CRU_CUDA_KIND_NONE)
    return CRU_BACKEND_NO_KERNEL;
  /* passthrough has a kernel (tests run it), but a copy never gains from the round trip */
  if (kind == CRU_CUDA_KIND_PASSTHROUGH)
    return CRU_BACKEND_CPU_FASTER;
  if (n_models < 1 || n_models > CRU_CUDA_BUDGET_MAX_MODELS)
    return CRU_BACKEND_TOO_MANY_INPUTS;
  if (!cru_cuda_method_streams (method, params) && numel > CRU_CUDA_MAX_WHOLE_NUMEL)
    return CRU_BACKEND_TOO_LARGE;
  if (cru_cuda_device_bytes (method, params, n_models, numel) > budget)
    return CRU_BACKEND_OVER_BUDGET;
  return CRU_BACKEND_FITS;
}

static int
compare_desc (const void *a, const void *b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;
  return x < y ? 1 : x > y ? -1 : 0;
}

guint64
cru_cuda_peak_bytes (const guint64 *call_bytes, guint n_calls, guint n_threads,
                     guint64 budget)
{
  g_autofree guint64 *sorted = NULL;
  guint in_flight = MIN (MAX (n_threads, 1u), (guint) CRU_CUDA_N_CONTEXTS), used = 0;
  guint64 calls = 0;

  sorted = g_memdup2 (call_bytes, (gsize) n_calls * sizeof (guint64));
  if (n_calls)
    qsort (sorted, n_calls, sizeof (guint64), compare_desc);
  for (guint i = 0; i < n_calls && used < in_flight; i++)
    if (sorted[i] > 0)
      {
        calls += sorted[i];
        used++;
      }
  if (used == 0)
    return 0;
  /* acquire() lets calls in together only while they fit the budget; a lone call runs */
  calls = MIN (calls, MAX (budget, sorted[0]));
  /* each worker in flight prepares one context (two slots of pinned + device memory) */
  return calls + (guint64) MIN (MAX (n_threads, 1u), (guint) CRU_CUDA_N_CONTEXTS)
                 * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES
         + CRU_CUDA_CONTEXT_BYTES;
}

guint64
cru_cuda_host_bytes (guint n_threads)
{
  return (guint64) MIN (MAX (n_threads, 1u), (guint) CRU_CUDA_N_CONTEXTS) * CRU_CUDA_N_SLOTS
         * CRU_CUDA_SLOT_BYTES + CRU_CUDA_HOST_RUNTIME_BYTES;
}
