/* cru-cuda-backend.c — the CUDA backend: device, memory budget, streams and pinned staging
 *
 * Each call to run() takes one of CRU_CUDA_N_CONTEXTS contexts (two streams, a pinned double
 * buffer, a device double buffer). Element-wise calls stream through it in slices: while the
 * GPU uploads, computes and downloads slice j on one stream, the host copies slice j+1 into
 * the other pinned buffer and slice j−1's result out of it. Whole-tensor calls upload every
 * input through the same double buffer, compute on the device, and download the same way.
 * Device memory comes from the stream-ordered pool (cudaMallocAsync), bounded by the budget
 * (free memory at start minus 10% of the total and the contexts' buffers): calls wait for
 * room rather than fail. The plan asks fit() which calls run here (cru-cuda-budget.c).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-private.h"
#include "cru-cuda.h"

#include <stdlib.h>
#include <string.h>

gboolean
_cru_cuda_check (cudaError_t err, const char *what, const CruMethodCall *call, GError **error)
{
  if (err == cudaSuccess)
    return TRUE;
  cudaGetLastError ();   /* clear a sticky launch error so the next call starts clean */
  g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_FAILED,
               _("CUDA: %s failed for tensor %s: %s"), what,
               call && call->tensor_name ? call->tensor_name : "?", cudaGetErrorString (err));
  return FALSE;
}

static CruCudaBackend *
get (CruBackend *backend)
{
  return backend->priv;
}

/* ---- contexts and the budget ---- */

static gboolean
ctx_prepare (CruCudaCtx *ctx, const CruMethodCall *call, GError **error)
{
  if (ctx->ready)
    return TRUE;
  for (int k = 0; k < CRU_CUDA_N_SLOTS; k++)
    {
      if (!_cru_cuda_check (cudaStreamCreateWithFlags (&ctx->stream[k], cudaStreamNonBlocking),
                            "creating a stream", call, error)
          || !_cru_cuda_check (cudaEventCreateWithFlags (&ctx->done[k], cudaEventDisableTiming),
                               "creating an event", call, error)
          || !_cru_cuda_check (cudaMallocHost (&ctx->pinned[k], CRU_CUDA_SLOT_BYTES),
                               "allocating pinned memory", call, error)
          || !_cru_cuda_check (cudaMalloc (&ctx->dev_slot[k], CRU_CUDA_SLOT_BYTES),
                               "allocating device memory", call, error))
        return FALSE;
      cudaEventRecord (ctx->done[k], ctx->stream[k]);
    }
  if (!_cru_cuda_check (cudaEventCreateWithFlags (&ctx->computed, cudaEventDisableTiming),
                        "creating an event", call, error))
    return FALSE;
  ctx->ready = TRUE;
  return TRUE;
}

static void
ctx_destroy (CruCudaCtx *ctx)
{
  for (int k = 0; k < CRU_CUDA_N_SLOTS; k++)
    {
      if (ctx->stream[k])
        cudaStreamSynchronize (ctx->stream[k]);
      if (ctx->done[k])
        cudaEventDestroy (ctx->done[k]);
      if (ctx->pinned[k])
        cudaFreeHost (ctx->pinned[k]);
      if (ctx->dev_slot[k])
        cudaFree (ctx->dev_slot[k]);
      if (ctx->stream[k])
        cudaStreamDestroy (ctx->stream[k]);
    }
  if (ctx->computed)
    cudaEventDestroy (ctx->computed);
  memset (ctx, 0, sizeof *ctx);
}

/* Takes a free context and @bytes of the budget (waits for both). */
static CruCudaCtx *
acquire (CruCudaBackend *self, guint64 bytes)
{
  CruCudaCtx *ctx = NULL;

  g_mutex_lock (&self->lock);
  for (;;)
    {
      /* a call larger than the budget still runs when it is alone */
      gboolean room = self->reserved == 0 || self->reserved + bytes <= self->budget;
      for (int i = 0; room && ctx == NULL && i < CRU_CUDA_N_CONTEXTS; i++)
        if (!self->ctx[i].busy)
          ctx = &self->ctx[i];
      if (ctx)
        break;
      g_cond_wait (&self->cond, &self->lock);
    }
  ctx->busy = TRUE;
  self->reserved += bytes;
  g_mutex_unlock (&self->lock);
  return ctx;
}

static void
release (CruCudaBackend *self, CruCudaCtx *ctx, guint64 bytes)
{
  g_mutex_lock (&self->lock);
  ctx->busy = FALSE;
  self->reserved -= bytes;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* ---- staging ---- */

/* host → device through the pinned double buffer */
static gboolean
upload (CruCudaCtx *ctx, void *dst, const void *src, guint64 bytes, int *slot,
        const CruMethodCall *call, GError **error)
{
  for (guint64 off = 0; off < bytes; off += CRU_CUDA_SLOT_BYTES)
    {
      guint64 len = MIN (CRU_CUDA_SLOT_BYTES, bytes - off);
      int k = *slot;

      *slot = (k + 1) % CRU_CUDA_N_SLOTS;
      if (!_cru_cuda_check (cudaEventSynchronize (ctx->done[k]), "uploading", call, error))
        return FALSE;
      memcpy (ctx->pinned[k], (const char *) src + off, len);
      if (!_cru_cuda_check (cudaMemcpyAsync ((char *) dst + off, ctx->pinned[k], len,
                                             cudaMemcpyHostToDevice, ctx->stream[k]),
                            "uploading", call, error))
        return FALSE;
      cudaEventRecord (ctx->done[k], ctx->stream[k]);
    }
  return TRUE;
}

/* device → host through the pinned double buffer; the copy of piece j out of pinned memory
 * overlaps the transfer of piece j+1 */
static gboolean
download (CruCudaCtx *ctx, void *dst, const void *src, guint64 bytes, const CruMethodCall *call,
          GError **error)
{
  guint64 pending_off[CRU_CUDA_N_SLOTS], pending_len[CRU_CUDA_N_SLOTS] = { 0 };
  int k = 0;

  cudaEventRecord (ctx->computed, ctx->stream[0]);
  for (int j = 0; j < CRU_CUDA_N_SLOTS; j++)
    cudaStreamWaitEvent (ctx->stream[j], ctx->computed, 0);
  for (guint64 off = 0;; off += CRU_CUDA_SLOT_BYTES)
    {
      guint64 len = off < bytes ? MIN (CRU_CUDA_SLOT_BYTES, bytes - off) : 0;

      if (!_cru_cuda_check (cudaEventSynchronize (ctx->done[k]), "downloading", call, error))
        return FALSE;
      if (pending_len[k])
        memcpy ((char *) dst + pending_off[k], ctx->pinned[k], pending_len[k]);
      pending_len[k] = 0;
      if (len == 0)
        {
          /* drain the other slots */
          gboolean more = FALSE;
          for (int j = 0; j < CRU_CUDA_N_SLOTS; j++)
            more = more || pending_len[j];
          if (!more)
            break;
          k = (k + 1) % CRU_CUDA_N_SLOTS;
          continue;
        }
      if (!_cru_cuda_check (cudaMemcpyAsync (ctx->pinned[k], (const char *) src + off, len,
                                             cudaMemcpyDeviceToHost, ctx->stream[k]),
                            "downloading", call, error))
        return FALSE;
      cudaEventRecord (ctx->done[k], ctx->stream[k]);
      pending_off[k] = off;
      pending_len[k] = len;
      k = (k + 1) % CRU_CUDA_N_SLOTS;
    }
  return TRUE;
}

static int
n_arrays_of (const CruMethodCall *call)
{
  return call->n_models + (call->base ? 1 : 0) + 1;
}

/* ---- element-wise calls: the sliced pipeline ---- */

static gboolean
run_streamed (CruCudaCtx *ctx, const CruMethod *method, const CruMethodCall *call,
              CruCudaKind kind, GError **error)
{
  int n_arrays = n_arrays_of (call), nm = call->n_models;
  guint64 slice = cru_cuda_slice_elements (n_arrays, CRU_CUDA_SLOT_BYTES);
  guint64 pending_start[CRU_CUDA_N_SLOTS], pending_len[CRU_CUDA_N_SLOTS] = { 0 };
  guint64 start = 0;
  int k = 0;
  gboolean ok = TRUE;

  for (;;)
    {
      guint64 len = start < call->count ? MIN (slice, call->count - start) : 0;
      float *host_slot = ctx->pinned[k], *dev_slot = ctx->dev_slot[k];
      CruCudaJob job = { .method = method, .call = call, .kind = kind };
      int a = 0;

      if (!_cru_cuda_check (cudaEventSynchronize (ctx->done[k]), "computing", call, error))
        return FALSE;
      if (pending_len[k])
        memcpy (call->out + pending_start[k], host_slot + (guint64) (n_arrays - 1) * slice,
                pending_len[k] * sizeof (float));
      pending_len[k] = 0;
      if (len == 0 || !ok)
        {
          gboolean more = FALSE;
          for (int j = 0; j < CRU_CUDA_N_SLOTS; j++)
            more = more || pending_len[j];
          if (!more)
            break;
          k = (k + 1) % CRU_CUDA_N_SLOTS;
          continue;
        }

      /* slot layout: [base][model 0 … nm−1][out] slices of floats, then the mask bytes */
      if (call->base)
        memcpy (host_slot + slice * a++, call->base + start, len * sizeof (float));
      for (int m = 0; m < nm; m++)
        memcpy (host_slot + slice * a++, call->models[m] + start, len * sizeof (float));
      job.s = ctx->stream[k];
      job.offset = call->offset + start;
      job.count = len;
      a = 0;
      job.base = call->base ? dev_slot + slice * a++ : NULL;
      for (int m = 0; m < nm; m++)
        job.x[m] = dev_slot + slice * a++;
      job.out = dev_slot + slice * a;
      job.mask = (guint8 *) (dev_slot + slice * n_arrays);
      /* one transfer per input when the slice is partial, one for all of them otherwise */
      if (len == slice)
        ok = _cru_cuda_check (cudaMemcpyAsync (dev_slot, host_slot,
                                               (guint64) a * slice * sizeof (float),
                                               cudaMemcpyHostToDevice, job.s),
                              "uploading", call, error);
      else
        for (int j = 0; ok && j < a; j++)
          ok = _cru_cuda_check (cudaMemcpyAsync (dev_slot + slice * j, host_slot + slice * j,
                                                 len * sizeof (float), cudaMemcpyHostToDevice,
                                                 job.s), "uploading", call, error);
      ok = ok && _cru_cuda_compute (&job, error);
      ok = ok && _cru_cuda_check (cudaMemcpyAsync (host_slot + slice * a, job.out,
                                                   len * sizeof (float), cudaMemcpyDeviceToHost,
                                                   job.s), "downloading", call, error);
      cudaEventRecord (ctx->done[k], job.s);
      if (ok)
        {
          pending_start[k] = start;
          pending_len[k] = len;
        }
      start += len;
      k = (k + 1) % CRU_CUDA_N_SLOTS;
    }
  return ok;
}

/* ---- whole-tensor calls ---- */

typedef struct {
  void *ptr[CRU_CUDA_MAX_MODELS + 4];
  int   n;
} Allocs;

static gpointer
dev_alloc (Allocs *allocs, cudaStream_t s, guint64 bytes, const CruMethodCall *call,
           GError **error)
{
  void *p = NULL;

  if (!_cru_cuda_check (cudaMallocAsync (&p, MAX (bytes, 16), s), "allocating device memory",
                        call, error))
    return NULL;
  allocs->ptr[allocs->n++] = p;
  return p;
}

static gboolean
run_whole (CruCudaCtx *ctx, const CruMethod *method, const CruMethodCall *call,
           CruCudaKind kind, double *stats_partial, GError **error)
{
  CruCudaJob job = { .method = method, .call = call, .kind = kind };
  guint64 n = call->count, bytes = n * sizeof (float);
  Allocs allocs = { { 0 }, 0 };
  int slot = 0;
  gboolean ok = FALSE;

  job.s = ctx->stream[0];
  job.offset = call->offset;
  job.count = n;
  if ((call->base && (job.base = dev_alloc (&allocs, job.s, bytes, call, error)) == NULL)
      || (job.out = dev_alloc (&allocs, job.s, bytes, call, error)) == NULL
      || (_cru_cuda_kind_needs_mask (kind)
          && (job.mask = dev_alloc (&allocs, job.s, n, call, error)) == NULL)
      || (_cru_cuda_kind_needs_scratch (kind)
          && (job.scratch = dev_alloc (&allocs, job.s, bytes, call, error)) == NULL))
    goto out;
  for (int m = 0; m < call->n_models; m++)
    if ((job.x[m] = dev_alloc (&allocs, job.s, bytes, call, error)) == NULL)
      goto out;
  /* the pool hands out memory in stream order: the upload streams must see it */
  if (!_cru_cuda_check (cudaStreamSynchronize (job.s), "allocating device memory", call, error))
    goto out;

  if (call->base && !upload (ctx, (void *) job.base, call->base, bytes, &slot, call, error))
    goto out;
  for (int m = 0; m < call->n_models; m++)
    if (!upload (ctx, job.x[m], call->models[m], bytes, &slot, call, error))
      goto out;
  for (int k = 0; k < CRU_CUDA_N_SLOTS; k++)
    if (!_cru_cuda_check (cudaStreamSynchronize (ctx->stream[k]), "uploading", call, error))
      goto out;

  if (stats_partial)
    ok = _cru_cuda_sdm_mass (&job, stats_partial, error);
  else
    ok = _cru_cuda_compute (&job, error)
         && download (ctx, call->out, job.out, bytes, call, error);

out:
  for (int k = 0; k < CRU_CUDA_N_SLOTS; k++)
    cudaStreamSynchronize (ctx->stream[k]);
  for (int i = 0; i < allocs.n; i++)
    cudaFreeAsync (allocs.ptr[i], job.s);
  if (!_cru_cuda_check (cudaStreamSynchronize (job.s), "freeing device memory", call,
                        ok ? error : NULL))
    ok = FALSE;
  return ok;
}

/* ---- the vtable ---- */

static gboolean
check_call (CruCudaBackend *self, const CruMethod *method, const CruMethodCall *call,
            CruCudaKind *kind, GError **error)
{
  *kind = cru_cuda_method_kind (method);
  if (*kind == CRU_CUDA_KIND_NONE || call->n_models < 1
      || call->n_models > CRU_CUDA_MAX_MODELS
      || ((method->flags & CRU_METHOD_NEEDS_BASE) && call->base == NULL))
    {
      g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("CUDA: %s with %d inputs cannot run on the GPU (tensor %s)"),
                   method->name, call->n_models, call->tensor_name);
      return FALSE;
    }
  return _cru_cuda_check (cudaSetDevice (self->device), "selecting the device", call, error);
}

static gboolean
cuda_run_call (CruBackend *backend, const CruMethod *method, const CruMethodCall *call,
               double *stats_partial, GError **error)
{
  CruCudaBackend *self = get (backend);
  gboolean streams = stats_partial == NULL && cru_cuda_method_streams (method, call->params);
  guint64 bytes = streams ? 0 : cru_cuda_device_bytes (method, call->params, call->n_models,
                                                       call->count);
  CruCudaKind kind;
  CruCudaCtx *ctx;
  gboolean ok;

  if (!check_call (self, method, call, &kind, error))
    return FALSE;
  if (call->count == 0)
    return TRUE;
  ctx = acquire (self, bytes);
  ok = ctx_prepare (ctx, call, error);
  if (ok && streams)
    ok = run_streamed (ctx, method, call, kind, error);
  else if (ok)
    ok = run_whole (ctx, method, call, kind, stats_partial, error);
  release (self, ctx, bytes);
  if (ok)
    {
      guint64 inputs = (guint64) call->n_models + (call->base ? 1 : 0);
      __atomic_fetch_add (&self->bytes_up, inputs * call->count * sizeof (float),
                          __ATOMIC_RELAXED);
      if (stats_partial == NULL)
        __atomic_fetch_add (&self->bytes_down, call->count * sizeof (float), __ATOMIC_RELAXED);
      __atomic_fetch_add (&self->n_calls, 1, __ATOMIC_RELAXED);
    }
  return ok;
}

static gboolean
cuda_run (CruBackend *backend, const CruMethod *method, const CruMethodCall *call,
          GError **error)
{
  return cuda_run_call (backend, method, call, NULL, error);
}

static gboolean
cuda_stats_partial (CruBackend *backend, const CruMethod *method, const CruMethodCall *call,
                    double *partial, GError **error)
{
  g_return_val_if_fail (backend != NULL && method != NULL && call != NULL, FALSE);
  if (cru_cuda_method_kind (method) != CRU_CUDA_KIND_SDM)
    {
      g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("CUDA: %s has no statistics pass on the GPU"), method->name);
      return FALSE;
    }
  for (int m = 0; m < call->n_models; m++)
    partial[m] = 0.0;
  return call->count == 0 || cuda_run_call (backend, method, call, partial, error);
}

static void
cuda_free (CruBackend *backend)
{
  CruCudaBackend *self = get (backend);

  if (g_strcmp0 (g_getenv ("CRU_CUDA_STATS"), "1") == 0 && self->n_calls > 0)
    /* one line a benchmark script can read: what crossed PCIe */
    g_printerr ("CUDA traffic: %u calls, %" G_GUINT64_FORMAT " bytes host→device, %"
                G_GUINT64_FORMAT " bytes device→host\n", self->n_calls, self->bytes_up,
                self->bytes_down);
  cudaSetDevice (self->device);
  for (int i = 0; i < CRU_CUDA_N_CONTEXTS; i++)
    if (self->ctx[i].ready)
      ctx_destroy (&self->ctx[i]);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
  g_free (backend);
}

static void
cuda_memory (CruBackend *backend, guint64 *free_bytes, guint64 *total_bytes)
{
  size_t f = 0, t = 0;

  cudaSetDevice (get (backend)->device);
  if (cudaMemGetInfo (&f, &t) != cudaSuccess)
    f = t = 0;
  if (free_bytes)
    *free_bytes = f;
  if (total_bytes)
    *total_bytes = t;
}

static guint64
cuda_budget (CruBackend *backend)
{
  return get (backend)->budget;
}

static CruBackendFit
cuda_fit (CruBackend *backend, const CruMethod *method, const double *params, int n_models,
          guint64 numel)
{
  return cru_cuda_fit (method, params, n_models, numel, get (backend)->budget);
}

static gboolean
cuda_synchronize (CruBackend *backend, GError **error)
{
  cudaSetDevice (get (backend)->device);
  return _cru_cuda_check (cudaDeviceSynchronize (), "synchronizing", NULL, error);
}

static guint64
cuda_device_bytes_for (CruBackend *backend, const CruMethod *method, const double *params,
                       int n_models, guint64 numel)
{
  return cru_cuda_device_bytes (method, params, n_models, numel);
}

static guint64
cuda_peak_bytes (CruBackend *backend, const guint64 *call_bytes, guint n_calls,
                 guint n_threads)
{
  return cru_cuda_peak_bytes (call_bytes, n_calls, n_threads, get (backend)->budget);
}

static guint64
cuda_host_bytes (CruBackend *backend, guint n_threads)
{
  return cru_cuda_host_bytes (n_threads);
}

static const char *
cuda_describe (CruBackend *backend)
{
  return get (backend)->description;
}

static const CruBackendIface cuda_iface = {
  .name = "cuda",
  .free = cuda_free,
  .memory = cuda_memory,
  .budget = cuda_budget,
  .fit = cuda_fit,
  .run = cuda_run,
  .stats_partial = cuda_stats_partial,
  .synchronize = cuda_synchronize,
  .device_bytes_for = cuda_device_bytes_for,
  .peak_bytes = cuda_peak_bytes,
  .host_bytes = cuda_host_bytes,
  .describe = cuda_describe,
};

CruBackend *
cru_backend_cuda_new (GError **error)
{
  CruCudaBackend *self;
  CruBackend *backend;
  struct cudaDeviceProp prop;
  cudaMemPool_t pool;
  const char *env = g_getenv ("CRU_CUDA_DEVICE");
  int n_devices = 0, device = env ? atoi (env) : 0;
  size_t free_bytes = 0, total_bytes = 0;
  guint64 threshold = G_MAXUINT64;

  /* without libcuda.so (no driver) or without a GPU this is where it ends */
  if (cudaGetDeviceCount (&n_devices) != cudaSuccess || n_devices <= 0)
    {
      cudaGetLastError ();
      g_set_error_literal (error, CRU_CUDA_ERROR, CRU_ERROR_UNSUPPORTED,
                           _("CUDA: no device found — running on CPU"));
      return NULL;
    }
  if (device < 0 || device >= n_devices)
    device = 0;
  if (!_cru_cuda_check (cudaSetDevice (device), "selecting the device", NULL, error)
      || !_cru_cuda_check (cudaMemGetInfo (&free_bytes, &total_bytes), "reading the free memory",
                           NULL, error)
      || !_cru_cuda_check (cudaGetDeviceProperties (&prop, device), "reading the device",
                           NULL, error))
    return NULL;
  /* keep freed blocks in the pool: calls allocate the same sizes again and again */
  if (cudaDeviceGetDefaultMemPool (&pool, device) == cudaSuccess)
    cudaMemPoolSetAttribute (pool, cudaMemPoolAttrReleaseThreshold, &threshold);

  self = g_new0 (CruCudaBackend, 1);
  self->device = device;
  g_strlcpy (self->device_name, prop.name, sizeof self->device_name);
  self->total_bytes = total_bytes;
  /* free memory now, less headroom and the contexts' device double buffers */
  self->budget = cru_cuda_budget_from_meminfo (free_bytes, total_bytes);
  g_snprintf (self->description, sizeof self->description, "%s, %.1f GB",
              self->device_name, total_bytes / 1e9);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_debug ("CUDA: %s, %.1f GB budget", self->device_name, self->budget / 1e9);

  backend = g_new0 (CruBackend, 1);
  backend->iface = &cuda_iface;
  backend->priv = self;
  return backend;
}
