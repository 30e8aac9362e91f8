/* cru-backend.c — the CPU backend and the loader of the CUDA module
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-backend.h"
#include "cru-error.h"

#include <glib/gi18n-lib.h>
#include <gmodule.h>

#define CUDA_MODULE_NAME "libcrucible-cuda.so"

static void
cpu_free (CruBackend *backend)
{
  g_free (backend);
}

static void
cpu_memory (CruBackend *backend, guint64 *free_bytes, guint64 *total_bytes)
{
  if (free_bytes)
    *free_bytes = 0;
  if (total_bytes)
    *total_bytes = 0;
}

static guint64
cpu_budget (CruBackend *backend)
{
  return 0;
}

static CruBackendFit
cpu_fit (CruBackend *backend, const CruMethod *method, const double *params, int n_models,
         guint64 numel)
{
  return method->apply != NULL ? CRU_BACKEND_FITS : CRU_BACKEND_NO_KERNEL;
}

static gboolean
cpu_run (CruBackend *backend, const CruMethod *method, const CruMethodCall *call,
         GError **error)
{
  return method->apply (method, call, error);
}

static gboolean
cpu_synchronize (CruBackend *backend, GError **error)
{
  return TRUE;
}

static guint64
cpu_device_bytes_for (CruBackend *backend, const CruMethod *method, const double *params,
                      int n_models, guint64 numel)
{
  return 0;
}

static guint64
cpu_peak_bytes (CruBackend *backend, const guint64 *call_bytes, guint n_calls,
                guint n_threads)
{
  return 0;
}

static guint64
cpu_host_bytes (CruBackend *backend, guint n_threads)
{
  return 0;
}

static const char *
cpu_describe (CruBackend *backend)
{
  return "CPU";
}

static const CruBackendIface cpu_iface = {
  .name = "cpu",
  .free = cpu_free,
  .memory = cpu_memory,
  .budget = cpu_budget,
  .fit = cpu_fit,
  .run = cpu_run,
  .synchronize = cpu_synchronize,
  .device_bytes_for = cpu_device_bytes_for,
  .peak_bytes = cpu_peak_bytes,
  .host_bytes = cpu_host_bytes,
  .describe = cpu_describe,
};

CruBackend *
cru_backend_cpu_new (void)
{
  CruBackend *backend = g_new0 (CruBackend, 1);

  backend->iface = &cpu_iface;
  return backend;
}

void
cru_backend_free (CruBackend *backend)
{
  if (backend && backend->iface->free)
    backend->iface->free (backend);
}

/* The module stays loaded for the life of the process once opened (the backend's code
 * lives in it). */
static GModule *
open_cuda_module (GError **error)
{
  static GModule *module;
  static gsize once;
  const char *env = g_getenv ("CRU_CUDA_MODULE");
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);

  if (g_once_init_enter (&once))
    {
      if (env && *env)
        g_ptr_array_add (candidates, g_strdup (env));
      g_ptr_array_add (candidates, g_build_filename (CRU_CUDA_MODULE_DIR, CUDA_MODULE_NAME, NULL));
      g_ptr_array_add (candidates, g_build_filename (CRU_CUDA_BUILD_DIR, CUDA_MODULE_NAME, NULL));
      for (guint i = 0; i < candidates->len && module == NULL; i++)
        {
          const char *path = g_ptr_array_index (candidates, i);
          if (g_file_test (path, G_FILE_TEST_EXISTS))
            module = g_module_open (path, G_MODULE_BIND_LOCAL);
          if (module == NULL && g_file_test (path, G_FILE_TEST_EXISTS))
            g_debug ("CUDA module %s: %s", path, g_module_error ());
        }
      g_once_init_leave (&once, 1);
    }
  if (module == NULL)
    g_set_error_literal (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                         _("CUDA: this build has no CUDA backend — running on CPU"));
  return module;
}

CruBackend *
cru_backend_cuda_load (GError **error)
{
  GModule *module = open_cuda_module (error);
  CruBackendCudaNewFunc new_func = NULL;

  if (module == NULL)
    return NULL;
  if (!g_module_symbol (module, CRU_BACKEND_CUDA_SYMBOL, (gpointer *) &new_func)
      || new_func == NULL)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("CUDA: the module %s is not a Crucible backend — running on CPU"),
                   g_module_name (module));
      return NULL;
    }
  return new_func (error);
}

const char *
cru_backend_fit_to_string (CruBackendFit fit)
{
  switch (fit)
    {
    case CRU_BACKEND_FITS:
      return _("runs there");
    case CRU_BACKEND_NO_KERNEL:
      return _("no GPU implementation of this method");
    case CRU_BACKEND_TOO_MANY_INPUTS:
      return _("more inputs than one GPU call takes");
    case CRU_BACKEND_TOO_LARGE:
      return _("too many elements for one GPU call");
    case CRU_BACKEND_OVER_BUDGET:
      return _("larger than the GPU memory budget");
    case CRU_BACKEND_CPU_FASTER:
      return _("a plain copy, faster on the CPU");
    }
  return "";
}
