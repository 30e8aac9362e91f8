/* cru-backend.h — compute backends behind a small vtable (ggml's backend_i shape).
 * The CPU backend is always built in; the CUDA one is a loadable module
 * (libcrucible-cuda.so exporting cru_backend_cuda_new) opened at run time.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include "cru-method.h"

G_BEGIN_DECLS

typedef struct _CruBackend CruBackend;

/* Whether a backend runs a method call, and if not, why (the plan reports it). */
typedef enum {
  CRU_BACKEND_FITS,
  CRU_BACKEND_NO_KERNEL,        /* no implementation of this method there */
  CRU_BACKEND_TOO_MANY_INPUTS,  /* more inputs than one call takes */
  CRU_BACKEND_TOO_LARGE,        /* more elements than one whole-tensor call can index */
  CRU_BACKEND_OVER_BUDGET,      /* needs more device memory than the budget */
  CRU_BACKEND_CPU_FASTER,       /* a plain copy: the transfers would cost more than it */
} CruBackendFit;

typedef struct {
  const char *name;                                     /* "cpu", "cuda" */
  void     (*free)             (CruBackend *backend);
  /* Device memory free/total in bytes (host backends: 0/0). */
  void     (*memory)           (CruBackend *backend, guint64 *free_bytes, guint64 *total_bytes);
  /* Device bytes that calls may hold together (host backends: 0). */
  guint64  (*budget)           (CruBackend *backend);
  /* Whether this backend runs @method with @params (NULL = defaults) on a tensor or chunk
   * of @numel elements with @n_models inputs, within its memory budget. */
  CruBackendFit (*fit)         (CruBackend *backend, const CruMethod *method,
                                const double *params, int n_models, guint64 numel);
  /* Runs one method call whose buffers are in host memory (the backend uploads inputs,
   * computes and downloads @call->out itself, overlapping transfers where it can).
   * Thread-safe: workers call it concurrently. */
  gboolean (*run)              (CruBackend *backend, const CruMethod *method,
                                const CruMethodCall *call, GError **error);
  /* The statistics pass of one whole tensor: the per-model values (n_models doubles) that
   * method->stats_add_partial adds. NULL when the backend leaves the pass to
   * method->stats_accumulate. */
  gboolean (*stats_partial)    (CruBackend *backend, const CruMethod *method,
                                const CruMethodCall *call, double *partial, GError **error);
  /* Waits for all queued work. */
  gboolean (*synchronize)      (CruBackend *backend, GError **error);
  /* Device bytes one call holds (for the estimate; 0 on host backends). */
  guint64  (*device_bytes_for) (CruBackend *backend, const CruMethod *method,
                                const double *params, int n_models, guint64 numel);
  /* Peak device bytes of a run with @n_threads workers whose tasks' largest device calls
   * hold @call_bytes (one entry per task). */
  guint64  (*peak_bytes)       (CruBackend *backend, const guint64 *call_bytes,
                                guint n_calls, guint n_threads);
  /* Host memory the backend itself holds during a run with @n_threads workers (pinned
   * staging buffers, the driver's runtime), for the peak-RAM estimate. */
  guint64  (*host_bytes)       (CruBackend *backend, guint n_threads);
  /* The device in words, for reports ("NVIDIA H200, 139.8 GB"). */
  const char *(*describe)      (CruBackend *backend);
} CruBackendIface;

struct _CruBackend {
  const CruBackendIface *iface;
  gpointer               priv;
};

/* The CPU backend: calls method->apply. */
CruBackend *cru_backend_cpu_new  (void);
/* Loads the CUDA backend module and opens the device. NULL with @error when unavailable:
 * CRU_ERROR_NOT_FOUND when this build has no CUDA module, CRU_ERROR_UNSUPPORTED with
 * "CUDA: no device found — running on CPU" when there is no driver or no GPU. The module
 * is looked for in $CRU_CUDA_MODULE, the install folder, then the build folder. */
CruBackend *cru_backend_cuda_load (GError **error);
void        cru_backend_free     (CruBackend *backend);

/* The reason for @fit in words (translated), for the plan's report. */
const char *cru_backend_fit_to_string (CruBackendFit fit);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruBackend, cru_backend_free)

/* Signature of the symbol the CUDA module exports. */
typedef CruBackend *(*CruBackendCudaNewFunc) (GError **error);
#define CRU_BACKEND_CUDA_SYMBOL "cru_backend_cuda_new"

G_END_DECLS
