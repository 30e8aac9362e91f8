/* cru-cuda-private.h — internals shared by the CUDA backend's host files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <glib/gi18n-lib.h>
#include <cuda_runtime_api.h>

#include "cru-backend.h"
#include "cru-cuda-budget.h"
#include "cru-cuda-kernels.h"
#include "cru-error.h"

G_BEGIN_DECLS

/* The module does not link libcrucible, so it names the engine's error domain itself
 * (G_DEFINE_QUARK (cru-error-quark, …) in cru-error.c gives the same quark). */
#define CRU_CUDA_ERROR (g_quark_from_static_string ("cru-error-quark"))

typedef struct {
  cudaStream_t stream[CRU_CUDA_N_SLOTS];
  cudaEvent_t  done[CRU_CUDA_N_SLOTS];
  cudaEvent_t  computed;
  void        *pinned[CRU_CUDA_N_SLOTS];     /* CRU_CUDA_SLOT_BYTES of pinned host memory */
  void        *dev_slot[CRU_CUDA_N_SLOTS];   /* CRU_CUDA_SLOT_BYTES of device memory */
  gboolean     ready;
  gboolean     busy;
} CruCudaCtx;

typedef struct {
  int        device;
  char       device_name[256];
  char       description[320];
  guint64    total_bytes;
  guint64    budget;          /* device bytes calls may hold together */
  guint64    reserved;
  GMutex     lock;
  GCond      cond;
  CruCudaCtx ctx[CRU_CUDA_N_CONTEXTS];
  /* traffic, for CRU_CUDA_STATS=1 (bench/cuda-check): bytes each way and calls */
  guint64    bytes_up;        /* atomic */
  guint64    bytes_down;      /* atomic */
  guint      n_calls;         /* atomic */
} CruCudaBackend;

/* One computation on device arrays: a whole tensor, or one slice of a streamed call. */
typedef struct {
  const CruMethod     *method;
  const CruMethodCall *call;      /* the host call (parameters, names, shape) */
  CruCudaKind          kind;
  guint64              offset;    /* absolute index of the first element here */
  guint64              count;
  cudaStream_t         s;
  const float         *base;      /* device, NULL without a base */
  float               *x[CRU_CUDA_MAX_MODELS];   /* device copies of the inputs (writable) */
  float               *out;
  guint8              *mask;      /* count bytes (task family, sce) */
  float               *scratch;   /* count floats (multislerp, karcher, sce, arcee) */
} CruCudaJob;

/* What a job needs besides inputs and output. */
gboolean _cru_cuda_kind_needs_mask    (CruCudaKind kind);
gboolean _cru_cuda_kind_needs_scratch (CruCudaKind kind);

/* Runs the method of @job on its device arrays (cru-cuda-methods.c). */
gboolean _cru_cuda_compute      (CruCudaJob *job, GError **error);
/* SDM-W statistics: per-model kept L1 mass of the job's tensor (x become deltas), in the
 * fixed order of cru-fixed-sum.h, so the same bits as the CPU's. */
gboolean _cru_cuda_sdm_mass     (CruCudaJob *job, double *mass, GError **error);

/* FALSE with a message naming the tensor when @err is not cudaSuccess. */
gboolean _cru_cuda_check        (cudaError_t err, const char *what, const CruMethodCall *call,
                                 GError **error);

/* Helpers of the method files (cru-cuda-methods.c). */
#define CHECK(expr, what)                                                  \
  G_STMT_START {                                                           \
    if (!_cru_cuda_check ((expr), (what), job->call, error))               \
      return FALSE;                                                        \
  } G_STMT_END

double      _cru_cuda_param       (const CruCudaJob *job, const char *name);
double      _cru_cuda_model_param (const CruCudaJob *job, int m, const char *name);
CruCudaPtrs _cru_cuda_ptrs        (const CruCudaJob *job);
void        _cru_cuda_get_rows    (const CruCudaJob *job, guint64 *n_rows, guint64 *row_len);
gboolean    _cru_cuda_reduce      (CruCudaJob *job, CruCudaReduceOp op, const float *a,
                                   const float *b, const float *c, float f, double p,
                                   double result[2], GError **error);
/* result[0] of a reduction; does nothing once *ok is FALSE */
double      _cru_cuda_reduce1     (CruCudaJob *job, CruCudaReduceOp op, const float *a,
                                   const float *b, const float *c, float f, gboolean *ok,
                                   GError **error);

gboolean _cru_cuda_run_multislerp (CruCudaJob *job, GError **error);
gboolean _cru_cuda_run_karcher    (CruCudaJob *job, GError **error);
gboolean _cru_cuda_run_stock      (CruCudaJob *job, GError **error);
gboolean _cru_cuda_run_sce        (CruCudaJob *job, GError **error);
gboolean _cru_cuda_run_arcee      (CruCudaJob *job, GError **error);
gboolean _cru_cuda_run_sdm        (CruCudaJob *job, GError **error);

G_END_DECLS
