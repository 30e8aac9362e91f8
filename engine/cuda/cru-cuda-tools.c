/* cru-cuda-tools.c — one-kernel helpers on host buffers (tests/cuda, bench/cuda-check)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-private.h"
#include "cru-cuda.h"

#include <stdlib.h>
#include <string.h>

#define TOOL_CHECK(expr, what)                                           \
  G_STMT_START {                                                         \
    if (ok && !_cru_cuda_check ((expr), (what), NULL, error))            \
      ok = FALSE;                                                        \
  } G_STMT_END

static gboolean
select_device (GError **error)
{
  const char *env = g_getenv ("CRU_CUDA_DEVICE");
  int n_devices = 0, device = env ? atoi (env) : 0;

  if (cudaGetDeviceCount (&n_devices) != cudaSuccess || n_devices <= 0)
    {
      cudaGetLastError ();
      g_set_error_literal (error, CRU_CUDA_ERROR, CRU_ERROR_UNSUPPORTED,
                           _("CUDA: no device found — running on CPU"));
      return FALSE;
    }
  if (device < 0 || device >= n_devices)
    device = 0;
  return _cru_cuda_check (cudaSetDevice (device), "selecting the device", NULL, error);
}

gboolean
cru_cuda_convert_host (CruCudaConvert op, const void *src, void *dst, guint64 n,
                       GError **error)
{
  gboolean to_half = op == CRU_CUDA_CONVERT_F32_TO_BF16 || op == CRU_CUDA_CONVERT_F32_TO_F16;
  guint64 src_bytes = n * (to_half ? 4 : 2), dst_bytes = n * (to_half ? 2 : 4);
  void *d_src = NULL, *d_dst = NULL;
  gboolean ok = TRUE;

  if (!select_device (error))
    return FALSE;
  if (n == 0)
    return TRUE;
  TOOL_CHECK (cudaMalloc (&d_src, src_bytes), "allocating device memory");
  TOOL_CHECK (cudaMalloc (&d_dst, dst_bytes), "allocating device memory");
  TOOL_CHECK (cudaMemcpy (d_src, src, src_bytes, cudaMemcpyHostToDevice), "uploading");
  switch (op)
    {
    case CRU_CUDA_CONVERT_F32_TO_BF16:
      TOOL_CHECK (cru_cuda_f32_to_bf16 (0, d_src, d_dst, n), "converting");
      break;
    case CRU_CUDA_CONVERT_F32_TO_F16:
      TOOL_CHECK (cru_cuda_f32_to_f16 (0, d_src, d_dst, n), "converting");
      break;
    case CRU_CUDA_CONVERT_BF16_TO_F32:
      TOOL_CHECK (cru_cuda_bf16_to_f32 (0, d_src, d_dst, n), "converting");
      break;
    case CRU_CUDA_CONVERT_F16_TO_F32:
      TOOL_CHECK (cru_cuda_f16_to_f32 (0, d_src, d_dst, n), "converting");
      break;
    }
  TOOL_CHECK (cudaMemcpy (dst, d_dst, dst_bytes, cudaMemcpyDeviceToHost), "downloading");
  cudaFree (d_src);
  cudaFree (d_dst);
  return ok;
}

gboolean
cru_cuda_uniform_host (guint64 seed, const char *tensor_name, int model_key, guint64 first,
                       guint64 n, float *out, GError **error)
{
  CruCudaRng rng = cru_cuda_rng_make (seed, tensor_name, model_key);
  float *d_out = NULL;
  gboolean ok = TRUE;

  if (!select_device (error))
    return FALSE;
  if (n == 0)
    return TRUE;
  TOOL_CHECK (cudaMalloc ((void **) &d_out, n * sizeof (float)), "allocating device memory");
  TOOL_CHECK (cru_cuda_uniform (0, rng, first, d_out, n), "drawing random numbers");
  TOOL_CHECK (cudaMemcpy (out, d_out, n * sizeof (float), cudaMemcpyDeviceToHost),
              "downloading");
  cudaFree (d_out);
  return ok;
}

/* Seconds per round of copies: one upload and/or one download of @bytes, each direction
 * on its own stream so that both run at once. */
static gboolean
time_copies (void *host_up, void *host_down, void *dev_a, void *dev_b, guint64 bytes,
             gboolean up, gboolean down, double *seconds, GError **error)
{
  const int reps = 4;
  cudaStream_t s_up = NULL, s_down = NULL;
  gboolean ok = TRUE;
  gint64 start;

  TOOL_CHECK (cudaStreamCreateWithFlags (&s_up, cudaStreamNonBlocking), "creating a stream");
  TOOL_CHECK (cudaStreamCreateWithFlags (&s_down, cudaStreamNonBlocking), "creating a stream");
  TOOL_CHECK (cudaDeviceSynchronize (), "synchronizing");
  start = g_get_monotonic_time ();
  for (int r = 0; ok && r < reps; r++)
    {
      if (up)
        TOOL_CHECK (cudaMemcpyAsync (dev_a, host_up, bytes, cudaMemcpyHostToDevice, s_up),
                    "uploading");
      if (down)
        TOOL_CHECK (cudaMemcpyAsync (host_down, dev_b, bytes, cudaMemcpyDeviceToHost, s_down),
                    "downloading");
    }
  TOOL_CHECK (cudaDeviceSynchronize (), "synchronizing");
  *seconds = (g_get_monotonic_time () - start) / 1e6 / reps;
  if (s_up)
    cudaStreamDestroy (s_up);
  if (s_down)
    cudaStreamDestroy (s_down);
  return ok;
}

gboolean
cru_cuda_pcie_bandwidth (guint64 bytes, double *up, double *down, double *both, GError **error)
{
  void *host_up = NULL, *host_down = NULL, *dev_a = NULL, *dev_b = NULL;
  double t_up = 0, t_down = 0, t_both = 0;
  gboolean ok = TRUE;

  if (!select_device (error))
    return FALSE;
  bytes = MAX (bytes, (guint64) 1 << 20);
  TOOL_CHECK (cudaMallocHost (&host_up, bytes), "allocating pinned memory");
  TOOL_CHECK (cudaMallocHost (&host_down, bytes), "allocating pinned memory");
  TOOL_CHECK (cudaMalloc (&dev_a, bytes), "allocating device memory");
  TOOL_CHECK (cudaMalloc (&dev_b, bytes), "allocating device memory");
  if (ok)
    {
      memset (host_up, 1, bytes);
      /* a first pass wakes the link up */
      ok = time_copies (host_up, host_down, dev_a, dev_b, bytes, TRUE, TRUE, &t_both, error)
           && time_copies (host_up, host_down, dev_a, dev_b, bytes, TRUE, FALSE, &t_up, error)
           && time_copies (host_up, host_down, dev_a, dev_b, bytes, FALSE, TRUE, &t_down, error)
           && time_copies (host_up, host_down, dev_a, dev_b, bytes, TRUE, TRUE, &t_both, error);
    }
  if (ok)
    {
      *up = bytes / t_up;
      *down = bytes / t_down;
      *both = 2.0 * bytes / t_both;
    }
  cudaFreeHost (host_up);
  cudaFreeHost (host_down);
  cudaFree (dev_a);
  cudaFree (dev_b);
  return ok;
}
