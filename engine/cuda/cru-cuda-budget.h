/* cru-cuda-budget.h — the CUDA backend's memory and capability rules, in plain C (no CUDA
 * calls) so that tests/cuda checks them on machines without a GPU, with made-up free-memory
 * figures
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include "cru-backend.h"
#include "cru-method.h"

G_BEGIN_DECLS

/* Most inputs (besides the base) one GPU call takes; more run on the CPU. */
#define CRU_CUDA_BUDGET_MAX_MODELS 32
/* Calls in flight at once; each owns two streams and a pinned double buffer. Each call's
 * host thread copies its data through its own pinned buffer, so this many copies run in
 * parallel: 8 of them outpace a PCIe 5 x16 link (about 50 GB/s each way). */
#define CRU_CUDA_N_CONTEXTS        8
/* Pinned staging per pipeline slot (host) and its device twin. */
#define CRU_CUDA_SLOT_BYTES        ((guint64) 32 << 20)
#define CRU_CUDA_N_SLOTS           2
/* Room for CUB scratch, histograms and reduction partials of one call. */
#define CRU_CUDA_CALL_SLACK_BYTES  ((guint64) 64 << 20)
/* What the CUDA context itself takes on the device (code, stacks, the pool's bookkeeping). */
#define CRU_CUDA_CONTEXT_BYTES     ((guint64) 512 << 20)
/* What the CUDA runtime and driver add to the process's resident memory (measured on
 * H100/H200-class drivers: a few hundred MB). */
#define CRU_CUDA_HOST_RUNTIME_BYTES ((guint64) 320 << 20)
/* Whole-tensor methods index with 32-bit prefix sums. */
#define CRU_CUDA_MAX_WHOLE_NUMEL   ((guint64) G_MAXUINT32)

typedef enum {
  CRU_CUDA_KIND_NONE,
  CRU_CUDA_KIND_LINEAR,
  CRU_CUDA_KIND_TASK,        /* task_arithmetic, ties, dare_*, breadcrumbs*, della* */
  CRU_CUDA_KIND_SLERP,
  CRU_CUDA_KIND_NUSLERP,
  CRU_CUDA_KIND_MULTISLERP,
  CRU_CUDA_KIND_KARCHER,
  CRU_CUDA_KIND_SCE,
  CRU_CUDA_KIND_RAM,
  CRU_CUDA_KIND_RAMPLUS,
  CRU_CUDA_KIND_STOCK,
  CRU_CUDA_KIND_NEARSWAP,
  CRU_CUDA_KIND_ARCEE,
  CRU_CUDA_KIND_PASSTHROUGH,
  CRU_CUDA_KIND_SDM,
} CruCudaKind;

/* Which GPU implementation runs @method (by its name); NONE when there is none. */
CruCudaKind   cru_cuda_method_kind         (const CruMethod *method);
/* TRUE when the method's result on a slice equals the slice of its whole-tensor result for
 * these parameters (@params may be NULL = defaults): the ELEMENTWISE flag, or DARE with
 * rescale "none"/"inverse". Such calls stream through the pinned pipeline in slices and
 * hold no device memory of their own. */
gboolean      cru_cuda_method_streams      (const CruMethod *method, const double *params);
/* Usable device bytes: what is free minus a headroom of 10% of the total, minus the
 * pipeline buffers of every context. */
guint64       cru_cuda_budget_from_meminfo (guint64 free_bytes, guint64 total_bytes);
/* Elements per pipeline slice when @n_arrays float arrays (inputs + output) and one mask
 * byte per element share a slot of @slot_bytes. */
guint64       cru_cuda_slice_elements      (int n_arrays, guint64 slot_bytes);
/* Device bytes one call holds beyond the contexts' fixed buffers: streamed methods only
 * their slack, whole-tensor methods every input, the output and their scratch. */
guint64       cru_cuda_device_bytes        (const CruMethod *method, const double *params,
                                            int n_models, guint64 numel);
/* Whether the GPU runs the call within @budget device bytes, and if not, why. */
CruBackendFit cru_cuda_fit                 (const CruMethod *method, const double *params,
                                            int n_models, guint64 numel, guint64 budget);
/* Peak device bytes of a run: @call_bytes[i] is the largest call of task i on the device;
 * min(@n_threads, contexts) of them are in flight at once, never more than @budget, plus
 * the contexts' pipeline buffers and the CUDA context. 0 when no task runs on the GPU. */
guint64       cru_cuda_peak_bytes          (const guint64 *call_bytes, guint n_calls,
                                            guint n_threads, guint64 budget);

/* Host bytes a run holds: the pinned buffers of the contexts its workers use and the
 * runtime's own. */
guint64       cru_cuda_host_bytes          (guint n_threads);

G_END_DECLS
