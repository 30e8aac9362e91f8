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

static gboolean
cpu_supports (CruBackend *backend, const CruMethod *method, int n_models, guint64 numel)
{
  return method->apply != NULL;
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
cpu_device_bytes_for (CruBackend *backend, const CruMethod *method, int n_models, guint64 numel)
{
  return 0;
}

static const CruBackendIface cpu_iface = {
  .name = "cpu",
  .free = cpu_free,
  .memory = cpu_memory,
  .supports = cpu_supports,
  .run = cpu_run,
  .synchronize = cpu_synchronize,
  .device_bytes_for = cpu_device_bytes_for,
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
    g_set_error_literal (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
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
