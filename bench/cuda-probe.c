/* cuda-probe — what bench/cuda-check needs to know about the GPU before it times merges:
 * the device, its VRAM budget, and the pinned-memory PCIe bandwidth each way and both ways
 * at once (the floor a GPU merge is measured against). Prints one JSON object.
 *
 *   CRU_CUDA_MODULE=build/engine/cuda/libcrucible-cuda.so cuda-probe [BYTES]
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <gmodule.h>
#include <stdio.h>

#include "cru-backend.h"
#include "cru-cuda.h"

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruBackend) backend = NULL;
  const char *path = g_getenv ("CRU_CUDA_MODULE");
  guint64 bytes = argc > 1 ? g_ascii_strtoull (argv[1], NULL, 10) : (guint64) 1 << 30;
  CruCudaPcieFunc pcie = NULL;
  GModule *module;
  double up = 0, down = 0, both = 0;
  guint64 free_bytes = 0, total_bytes = 0;

  backend = cru_backend_cuda_load (&error);
  if (backend == NULL)
    {
      printf ("{\"device\": null, \"error\": \"%s\"}\n", error->message);
      return 2;
    }
  module = path ? g_module_open (path, G_MODULE_BIND_LOCAL) : NULL;
  if (module == NULL || !g_module_symbol (module, CRU_CUDA_PCIE_SYMBOL, (gpointer *) &pcie))
    {
      fprintf (stderr, "cuda-probe: set CRU_CUDA_MODULE to the built libcrucible-cuda.so\n");
      return 1;
    }
  if (!pcie (bytes, &up, &down, &both, &error))
    {
      fprintf (stderr, "cuda-probe: %s\n", error->message);
      return 1;
    }
  backend->iface->memory (backend, &free_bytes, &total_bytes);
  printf ("{\"device\": \"%s\", \"total_bytes\": %" G_GUINT64_FORMAT ", \"free_bytes\": %"
          G_GUINT64_FORMAT ", \"budget_bytes\": %" G_GUINT64_FORMAT ", \"copy_bytes\": %"
          G_GUINT64_FORMAT ", \"h2d_bytes_per_s\": %.0f, \"d2h_bytes_per_s\": %.0f, "
          "\"both_bytes_per_s\": %.0f}\n",
          backend->iface->describe (backend), total_bytes, free_bytes,
          backend->iface->budget (backend), bytes, up, down, both);
  return 0;
}
