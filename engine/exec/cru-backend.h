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

typedef struct {
  const char *name;                                     /* "cpu", "cuda" */
  void     (*free)             (CruBackend *backend);
  /* Device memory free/total in bytes (host backends: 0/0). */
  void     (*memory)           (CruBackend *backend, guint64 *free_bytes, guint64 *total_bytes);
  /* Whether this backend runs @method on a tensor of @numel elements with @n_models inputs
   * (within its memory budget). */
  gboolean (*supports)         (CruBackend *backend, const CruMethod *method,
                                int n_models, guint64 numel);
  /* Runs one method call whose buffers are in host memory (the backend uploads inputs,
   * computes and downloads @call->out itself, overlapping transfers where it can).
   * Thread-safe: workers call it concurrently. */
  gboolean (*run)              (CruBackend *backend, const CruMethod *method,
                                const CruMethodCall *call, GError **error);
  /* Waits for all queued work. */
  gboolean (*synchronize)      (CruBackend *backend, GError **error);
  /* Bytes of pinned host / device memory the backend will hold (for the estimate). */
  guint64  (*device_bytes_for) (CruBackend *backend, const CruMethod *method,
                                int n_models, guint64 numel);
} CruBackendIface;

struct _CruBackend {
  const CruBackendIface *iface;
  gpointer               priv;
};

/* The CPU backend: calls method->apply. */
CruBackend *cru_backend_cpu_new  (void);
/* Loads the CUDA backend module. NULL with @error ("CUDA: no device found — running on
 * CPU", "CUDA: this build has no CUDA backend") when unavailable. */
CruBackend *cru_backend_cuda_load (GError **error);
void        cru_backend_free     (CruBackend *backend);

/* Signature of the symbol the CUDA module exports. */
typedef CruBackend *(*CruBackendCudaNewFunc) (GError **error);
#define CRU_BACKEND_CUDA_SYMBOL "cru_backend_cuda_new"

G_END_DECLS
