/* cru-cuda.h — what the CUDA module exports besides the backend vtable
 *
 * The engine opens libcrucible-cuda.so with GModule (cru_backend_cuda_load) and looks these
 * up by name, so nothing here is linked into libcrucible. The helpers below run one kernel
 * on host buffers, synchronously, on the device cru_backend_cuda_new would pick; tests/cuda
 * compares them with the CPU's conversions and random numbers, and bench/cuda-check reads
 * the PCIe bandwidth with them.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gmodule.h>
#include "cru-backend.h"

G_BEGIN_DECLS

/* CRU_BACKEND_CUDA_SYMBOL */
G_MODULE_EXPORT CruBackend *cru_backend_cuda_new (GError **error);

typedef enum {
  CRU_CUDA_CONVERT_F32_TO_BF16,
  CRU_CUDA_CONVERT_F32_TO_F16,
  CRU_CUDA_CONVERT_BF16_TO_F32,
  CRU_CUDA_CONVERT_F16_TO_F32,
} CruCudaConvert;

/* @n elements of @src (f32 or 16-bit) converted by the GPU into @dst. */
#define CRU_CUDA_CONVERT_SYMBOL "cru_cuda_convert_host"
typedef gboolean (*CruCudaConvertFunc) (CruCudaConvert op, const void *src, void *dst,
                                        guint64 n, GError **error);
G_MODULE_EXPORT gboolean cru_cuda_convert_host (CruCudaConvert op, const void *src, void *dst,
                                                guint64 n, GError **error);

/* out[i] = the GPU's uniform float of element @first + i for (seed, tensor, model key),
 * which must equal cru_rng_uniform's. */
#define CRU_CUDA_UNIFORM_SYMBOL "cru_cuda_uniform_host"
typedef gboolean (*CruCudaUniformFunc) (guint64 seed, const char *tensor_name, int model_key,
                                        guint64 first, guint64 n, float *out, GError **error);
G_MODULE_EXPORT gboolean cru_cuda_uniform_host (guint64 seed, const char *tensor_name,
                                                int model_key, guint64 first, guint64 n,
                                                float *out, GError **error);

/* Pinned-memory copy bandwidth (bytes per second) host→device, device→host and both ways
 * at once (the sum of the two directions), measured with @bytes per copy. */
#define CRU_CUDA_PCIE_SYMBOL "cru_cuda_pcie_bandwidth"
typedef gboolean (*CruCudaPcieFunc) (guint64 bytes, double *up, double *down, double *both,
                                     GError **error);
G_MODULE_EXPORT gboolean cru_cuda_pcie_bandwidth (guint64 bytes, double *up, double *down,
                                                  double *both, GError **error);

G_END_DECLS
