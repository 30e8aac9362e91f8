/* simulated-cuda-module.c — a stand-in for libcrucible-cuda.so in tests that need the
 * engine to believe a GPU is there: the plan's device choice, placement and VRAM report,
 * and the engine's routing of each call, checked on machines without a GPU.
 *
 * It is honest about what it is: its device is described as "Simulated GPU", its memory
 * rules are the real module's (cru-cuda-budget.c) with the free memory taken from
 * $CRU_SIMULATED_CUDA_FREE and $CRU_SIMULATED_CUDA_TOTAL at every call (so one test can try
 * several), and it computes with the CPU methods, recording which tensors it was given.
 * $CRU_SIMULATED_CUDA_ABSENT=1 makes it report no device. The real kernels are tested
 * against the CPU in test-cuda-gpu.c, on a machine with a GPU.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <gmodule.h>
#include <string.h>

#include "cru-backend.h"
#include "cru-cuda-budget.h"

#define ERROR_QUARK (g_quark_from_static_string ("cru-error-quark"))
#define ERROR_UNSUPPORTED 4   /* CRU_ERROR_UNSUPPORTED */

G_MODULE_EXPORT CruBackend *cru_backend_cuda_new (GError **error);
G_MODULE_EXPORT char      **cru_simulated_cuda_take_log (void);

static GMutex log_lock;
static GPtrArray *call_log;

static guint64
env_bytes (const char *name, guint64 fallback)
{
  const char *v = g_getenv (name);
  return v && *v ? g_ascii_strtoull (v, NULL, 10) : fallback;
}

static guint64
sim_budget (CruBackend *backend)
{
  return cru_cuda_budget_from_meminfo (env_bytes ("CRU_SIMULATED_CUDA_FREE", 80000000000ull),
                                       env_bytes ("CRU_SIMULATED_CUDA_TOTAL", 80000000000ull));
}

static void
sim_free (CruBackend *backend)
{
  g_free (backend);
}

static void
sim_memory (CruBackend *backend, guint64 *free_bytes, guint64 *total_bytes)
{
  if (free_bytes)
    *free_bytes = env_bytes ("CRU_SIMULATED_CUDA_FREE", 80000000000ull);
  if (total_bytes)
    *total_bytes = env_bytes ("CRU_SIMULATED_CUDA_TOTAL", 80000000000ull);
}

static CruBackendFit
sim_fit (CruBackend *backend, const CruMethod *method, const double *params, int n_models,
         guint64 numel)
{
  return cru_cuda_fit (method, params, n_models, numel, sim_budget (backend));
}

static gboolean
sim_run (CruBackend *backend, const CruMethod *method, const CruMethodCall *call,
         GError **error)
{
  g_mutex_lock (&log_lock);
  if (call_log == NULL)
    call_log = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (call_log, g_strdup (call->tensor_name));
  g_mutex_unlock (&log_lock);
  return method->apply (method, call, error);
}

static gboolean
sim_synchronize (CruBackend *backend, GError **error)
{
  return TRUE;
}

static guint64
sim_device_bytes_for (CruBackend *backend, const CruMethod *method, const double *params,
                      int n_models, guint64 numel)
{
  return cru_cuda_device_bytes (method, params, n_models, numel);
}

static guint64
sim_peak_bytes (CruBackend *backend, const guint64 *call_bytes, guint n_calls, guint n_threads)
{
  return cru_cuda_peak_bytes (call_bytes, n_calls, n_threads, sim_budget (backend));
}

static guint64
sim_host_bytes (CruBackend *backend, guint n_threads)
{
  return cru_cuda_host_bytes (n_threads);
}

static const char *
sim_describe (CruBackend *backend)
{
  return "Simulated GPU";
}

static const CruBackendIface sim_iface = {
  .name = "cuda",
  .free = sim_free,
  .memory = sim_memory,
  .budget = sim_budget,
  .fit = sim_fit,
  .run = sim_run,
  .stats_partial = NULL,   /* the statistics pass stays on the CPU */
  .synchronize = sim_synchronize,
  .device_bytes_for = sim_device_bytes_for,
  .peak_bytes = sim_peak_bytes,
  .host_bytes = sim_host_bytes,
  .describe = sim_describe,
};

CruBackend *
cru_backend_cuda_new (GError **error)
{
  CruBackend *backend;

  if (g_strcmp0 (g_getenv ("CRU_SIMULATED_CUDA_ABSENT"), "1") == 0)
    {
      g_set_error_literal (error, ERROR_QUARK, ERROR_UNSUPPORTED,
                           "CUDA: no device found — running on CPU");
      return NULL;
    }
  backend = g_new0 (CruBackend, 1);
  backend->iface = &sim_iface;
  return backend;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The tensors run since the last call, sorted (g_strfreev). */
char **
cru_simulated_cuda_take_log (void)
{
  GPtrArray *names;

  g_mutex_lock (&log_lock);
  names = call_log ? call_log : g_ptr_array_new ();
  call_log = NULL;
  g_mutex_unlock (&log_lock);
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_set_free_func (names, NULL);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}
