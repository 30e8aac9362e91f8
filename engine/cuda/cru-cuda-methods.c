/* cru-cuda-methods.c — each method family on device arrays, step for step the CPU code in
 * engine/methods (same float expressions, scalars computed on the host with the same code)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-private.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- parameters (the module does not link libcrucible's helpers) ---- */

static int
find_param (const CruMethod *method, const char *name)
{
  for (int p = 0; p < method->n_params; p++)
    if (strcmp (method->params[p].name, name) == 0)
      return p;
  return -1;
}

double
_cru_cuda_param (const CruCudaJob *job, const char *name)
{
  int p = find_param (job->method, name);

  if (p < 0)
    return NAN;
  return job->call->params ? job->call->params[p] : job->method->params[p].default_value;
}

double
_cru_cuda_model_param (const CruCudaJob *job, int m, const char *name)
{
  const CruMethodCall *call = job->call;
  int p = find_param (job->method, name);

  if (p < 0)
    return NAN;
  if (call->model_params)
    return call->model_params[(gsize) m * job->method->n_params + p];
  if (call->params)
    return call->params[p];
  return job->method->params[p].default_value;
}

gboolean
_cru_cuda_kind_needs_mask (CruCudaKind kind)
{
  return kind == CRU_CUDA_KIND_TASK || kind == CRU_CUDA_KIND_SCE;
}

gboolean
_cru_cuda_kind_needs_scratch (CruCudaKind kind)
{
  return kind == CRU_CUDA_KIND_MULTISLERP || kind == CRU_CUDA_KIND_KARCHER
         || kind == CRU_CUDA_KIND_SCE || kind == CRU_CUDA_KIND_ARCEE;
}


CruCudaPtrs
_cru_cuda_ptrs (const CruCudaJob *job)
{
  CruCudaPtrs p;

  memset (&p, 0, sizeof p);
  for (int m = 0; m < job->call->n_models; m++)
    p.p[m] = job->x[m];
  return p;
}

gboolean
_cru_cuda_reduce (CruCudaJob *job, CruCudaReduceOp op, const float *a, const float *b, const float *c,
        float f, double p, double result[2], GError **error)
{
  CruCudaReduce r = { .op = op, .a = a, .b = b, .c = c, .mask = job->mask, .f = f, .p = p };

  CHECK (cru_cuda_reduce (job->s, &r, job->count, result), "a reduction");
  return TRUE;
}

double
_cru_cuda_reduce1 (CruCudaJob *job, CruCudaReduceOp op, const float *a, const float *b, const float *c,
         float f, gboolean *ok, GError **error)
{
  double r[2] = { 0, 0 };

  if (*ok)
    *ok = _cru_cuda_reduce (job, op, a, b, c, f, 0.0, r, error);
  return r[0];
}

void
_cru_cuda_get_rows (const CruCudaJob *job, guint64 *n_rows, guint64 *row_len)
{
  const CruMethodCall *call = job->call;

  *row_len = call->ndim >= 2 ? (guint64) call->shape[call->ndim - 1] : job->count;
  *n_rows = *row_len ? job->count / *row_len : 0;
}

/* ---- linear, nearswap, ram, passthrough ---- */

static gboolean
run_linear (CruCudaJob *job, GError **error)
{
  CruCudaFloats w;
  float wsum = 0.0f;
  gboolean normalize = _cru_cuda_param (job, "normalize") != 0.0;

  for (int m = 0; m < job->call->n_models; m++)
    {
      w.v[m] = (float) _cru_cuda_model_param (job, m, "weight");
      wsum += w.v[m];
    }
  if (normalize && wsum == 0.0f)
    {
      g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("linear: the weights for tensor %s add up to 0, so they cannot be "
                     "normalized; change a weight or turn normalize off"),
                   job->call->tensor_name);
      return FALSE;
    }
  CHECK (cru_cuda_linear (job->s, _cru_cuda_ptrs (job), w, job->call->n_models, normalize, wsum,
                          job->out, job->count), "linear");
  return TRUE;
}

static gboolean
run_ram (CruCudaJob *job, GError **error)
{
  int nm = job->call->n_models;
  float eps = (float) _cru_cuda_param (job, "epsilon");
  CruCudaFloats scale;

  if (job->kind == CRU_CUDA_KIND_RAM)
    {
      CHECK (cru_cuda_ram_combine (job->s, job->base, _cru_cuda_ptrs (job), nm, eps, NULL, job->out,
                                   job->count), "ram");
      return TRUE;
    }
  {
    unsigned long long counts[2 * CRU_CUDA_MAX_MODELS];
    float r = (float) _cru_cuda_param (job, "r");
    float alpha = (float) _cru_cuda_param (job, "alpha");

    CHECK (cru_cuda_ram_counts (job->s, job->base, _cru_cuda_ptrs (job), nm, eps, job->count, counts),
           "ramplus_tl");
    for (int m = 0; m < nm; m++)
      {
        float unique = (float) counts[2 * m + 1];
        float rho = (float) counts[2 * m] / MAX (unique, eps);
        scale.v[m] = 1.0f + r * CLAMP (rho, 0.0f, alpha);
      }
  }
  CHECK (cru_cuda_ram_combine (job->s, job->base, _cru_cuda_ptrs (job), nm, eps, &scale, job->out,
                               job->count), "ramplus_tl");
  return TRUE;
}

static gboolean
run_passthrough (CruCudaJob *job, GError **error)
{
  double scale = _cru_cuda_model_param (job, 0, "scale");

  if (isnan (scale) || scale == 1.0)
    CHECK (cudaMemcpyAsync (job->out, job->x[0], job->count * sizeof (float),
                            cudaMemcpyDeviceToDevice, job->s), "passthrough");
  else
    CHECK (cru_cuda_scale (job->s, job->x[0], (float) scale, job->out, job->count),
           "passthrough");
  return TRUE;
}

/* ---- task-vector family ---- */

typedef enum { SP_NONE, SP_MAGNITUDE, SP_RANDOM, SP_OUTLIERS, SP_DELLA } Sparsify;

static gboolean
task_sparsify (CruCudaJob *job, int m, Sparsify kind, int rescale, int *mode, float *factor,
               GError **error)
{
  const CruMethodCall *call = job->call;
  guint64 n = job->count;
  double density = _cru_cuda_model_param (job, m, "density");
  int key = call->model_keys ? call->model_keys[m] : m;
  CruCudaRng rng = cru_cuda_rng_make (call->seed, call->tensor_name, key);
  double l1[2] = { 0, 0 };

  *mode = 0;
  *factor = 1.0f;
  if (kind == SP_NONE || !(density < 1.0))
    return TRUE;
  switch (kind)
    {
    case SP_MAGNITUDE:
      {
        guint64 k = (guint64) (density * (double) call->numel);
        if (k == 0)
          {
            g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_INVALID_PARAM,
                         _("%s: density %g keeps no element of tensor %s (%" PRIu64
                           " elements); raise the density"),
                         job->method->name, density, call->tensor_name, call->numel);
            return FALSE;
          }
        CHECK (cru_cuda_topk_mask (job->s, job->x[m], n, k, 0, job->mask), "top-k");
        break;
      }
    case SP_OUTLIERS:
      {
        double gamma = _cru_cuda_model_param (job, m, "gamma");
        gint64 keep = (gint64) (density * (double) n);
        gint64 top = (gint64) (gamma * (double) n);
        gint64 bot = (gint64) n - keep - top;
        if (bot < 0)
          {
            top += bot;
            bot = 0;
          }
        CHECK (cru_cuda_rank_range_mask (job->s, job->x[m], n, (guint64) bot,
                                         n - (guint64) top, 0, job->mask), "rank range");
        break;
      }
    case SP_RANDOM:
      CHECK (cru_cuda_dare_mask (job->s, job->mask, n, job->offset, rng, (float) density),
             "DARE mask");
      break;
    case SP_DELLA:
      if (density <= 0.0)
        CHECK (cudaMemsetAsync (job->mask, 0, n, job->s), "DELLA mask");
      else
        {
          guint64 row_len = call->ndim >= 2 ? (guint64) call->shape[call->ndim - 1] : n;
          CHECK (cru_cuda_della_mask (job->s, job->x[m], n, row_len, job->offset, rng, density,
                                      _cru_cuda_model_param (job, m, "epsilon"), job->mask),
                 "DELLA mask");
        }
      break;
    case SP_NONE:
    default:
      return TRUE;
    }

  if (rescale == 1 && !_cru_cuda_reduce (job, CRU_CUDA_RED_L1_MASKED, job->x[m], NULL, NULL, 0, 0, l1,
                               error))
    return FALSE;
  if (rescale == 1 && l1[0] >= 1e-7 && l1[1] >= 1e-7)
    {
      *mode = 1;
      *factor = (float) l1[0] / (float) l1[1];
    }
  else if (rescale == 2 && density > 0.0)
    {
      *mode = 2;
      *factor = (float) density;
    }
  *mode |= 4;   /* masked */
  return TRUE;
}

static gboolean
run_task (CruCudaJob *job, GError **error)
{
  const char *name = job->method->name;
  int nm = job->call->n_models;
  gboolean consensus = g_str_has_suffix (name, "ties") || strcmp (name, "della") == 0;
  gboolean normalize = _cru_cuda_param (job, "normalize") != 0.0;
  float lambda = (float) _cru_cuda_param (job, "lambda");
  int rescale = (int) _cru_cuda_param (job, "rescale");
  Sparsify kind = SP_NONE;
  CruCudaFloats w;
  float wsum = 0.0f;

  if (strcmp (name, "ties") == 0)
    kind = SP_MAGNITUDE;
  else if (g_str_has_prefix (name, "dare_"))
    kind = SP_RANDOM;
  else if (g_str_has_prefix (name, "breadcrumbs"))
    kind = SP_OUTLIERS;
  else if (g_str_has_prefix (name, "della"))
    kind = SP_DELLA;

  for (int m = 0; m < nm; m++)
    {
      int mode;
      float factor;

      w.v[m] = (float) _cru_cuda_model_param (job, m, "weight");
      wsum += w.v[m];
      CHECK (cru_cuda_sub_inplace (job->s, job->x[m], job->base, job->count), "delta");
      if (!task_sparsify (job, m, kind, rescale, &mode, &factor, error))
        return FALSE;
      CHECK (cru_cuda_task_scale (job->s, job->x[m], (mode & 4) ? job->mask : NULL, job->count,
                                  mode & 3, factor, w.v[m]), "scale");
    }
  CHECK (cru_cuda_task_combine (job->s, job->base, _cru_cuda_ptrs (job), w, nm, consensus, normalize,
                                fabsf (wsum) < 1e-8f ? 1.0f : wsum, lambda, job->out,
                                job->count), "combine");
  return TRUE;
}

/* ---- slerp, nuslerp ---- */

static gboolean
run_slerp (CruCudaJob *job, GError **error)
{
  double t = _cru_cuda_param (job, "t"), n0, n1, d;
  gboolean ok = TRUE;
  float s0, s1;

  n0 = sqrt (_cru_cuda_reduce1 (job, CRU_CUDA_RED_SUM_SQ, job->base, NULL, NULL, 0, &ok, error));
  n1 = sqrt (_cru_cuda_reduce1 (job, CRU_CUDA_RED_SUM_SQ, job->x[0], NULL, NULL, 0, &ok, error));
  d = _cru_cuda_reduce1 (job, CRU_CUDA_RED_DOT, job->base, job->x[0], NULL, 0, &ok, error);
  if (!ok)
    return FALSE;
  d /= (n0 > 1e-8 ? n0 : 1.0) * (n1 > 1e-8 ? n1 : 1.0);
  if (fabs (d) > 0.9995)
    {
      s0 = (float) (1.0 - t);
      s1 = (float) t;
    }
  else
    {
      double theta0 = acos (d), sin_theta0 = sin (theta0), theta_t = theta0 * t;
      s0 = (float) (sin (theta0 - theta_t) / sin_theta0);
      s1 = (float) (sin (theta_t) / sin_theta0);
    }
  CHECK (cru_cuda_axpby (job->s, s0, job->base, s1, job->x[0], job->out, job->count), "slerp");
  return TRUE;
}

static gboolean
run_nuslerp (CruCudaJob *job, GError **error)
{
  const CruMethodCall *call = job->call;
  const float *b = job->base;
  gboolean flatten = _cru_cuda_param (job, "nuslerp_flatten") != 0.0;
  gboolean row_wise = _cru_cuda_param (job, "nuslerp_row_wise") != 0.0;
  double w0 = _cru_cuda_model_param (job, 0, "weight"), w1 = _cru_cuda_model_param (job, 1, "weight");
  double t = fabs (w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
  guint64 n = job->count, outer, inner, n_vec;
  gboolean vec_is_outer, ok = TRUE;
  g_autofree double *acc = NULL;
  g_autofree float *coef = NULL;
  double *d_acc = NULL;
  float *d_coef = NULL;

  if (flatten || call->ndim <= 1)
    {
      outer = 1;
      inner = n;
      vec_is_outer = TRUE;
    }
  else if (!row_wise)
    {
      inner = (guint64) call->shape[call->ndim - 1];
      outer = inner ? n / inner : 0;
      vec_is_outer = TRUE;
    }
  else
    {
      outer = (guint64) call->shape[0];
      inner = outer ? n / outer : 0;
      vec_is_outer = FALSE;
    }
  n_vec = vec_is_outer ? outer : inner;
  acc = g_new0 (double, 3 * MAX (n_vec, 1));
  coef = g_new (float, 3 * MAX (n_vec, 1));

  if (outer == 1 && vec_is_outer)
    {
      acc[0] = _cru_cuda_reduce1 (job, CRU_CUDA_RED_SUM_SQ_DIFF, job->x[0], NULL, b, 0, &ok, error);
      acc[1] = _cru_cuda_reduce1 (job, CRU_CUDA_RED_SUM_SQ_DIFF, job->x[1], NULL, b, 0, &ok, error);
      acc[2] = _cru_cuda_reduce1 (job, b ? CRU_CUDA_RED_DOT_DIFF : CRU_CUDA_RED_DOT, job->x[0], job->x[1],
                        b, 0, &ok, error);
      if (!ok)
        return FALSE;
    }
  else
    {
      CHECK (cudaMallocAsync ((void **) &d_acc, 3 * MAX (n_vec, 1) * sizeof (double), job->s),
             "nuslerp");
      ok = _cru_cuda_check (cru_cuda_nuslerp_acc (job->s, b, job->x[0], job->x[1], outer,
                                                  inner, vec_is_outer, d_acc), "nuslerp",
                            call, error)
           && _cru_cuda_check (cudaMemcpyAsync (acc, d_acc, 3 * n_vec * sizeof (double),
                                                cudaMemcpyDeviceToHost, job->s), "nuslerp",
                               call, error)
           && _cru_cuda_check (cudaStreamSynchronize (job->s), "nuslerp", call, error);
      cudaFreeAsync (d_acc, job->s);
      if (!ok)
        return FALSE;
    }

  for (guint64 j = 0; j < n_vec; j++)
    {
      double n0 = MAX (sqrt (acc[3 * j]), 1e-7);
      double n1 = MAX (sqrt (acc[3 * j + 1]), 1e-7);
      double cos_theta = CLAMP (acc[3 * j + 2] / (n0 * n1), -1.0, 1.0);
      double theta = acos (cos_theta);
      double sin_theta = sin (theta);

      if (fabs (sin_theta) < 1e-8)
        {
          coef[3 * j] = (float) (1.0 - t);
          coef[3 * j + 1] = (float) t;
          coef[3 * j + 2] = 1.0f;
        }
      else
        {
          coef[3 * j] = (float) sin ((1.0 - t) * theta);
          coef[3 * j + 1] = (float) sin (t * theta);
          coef[3 * j + 2] = (float) sin_theta;
        }
    }
  CHECK (cudaMallocAsync ((void **) &d_coef, 3 * MAX (n_vec, 1) * sizeof (float), job->s),
         "nuslerp");
  ok = _cru_cuda_check (cudaMemcpyAsync (d_coef, coef, 3 * n_vec * sizeof (float),
                                         cudaMemcpyHostToDevice, job->s), "nuslerp", call,
                        error)
       && _cru_cuda_check (cru_cuda_nuslerp_out (job->s, b, job->x[0], job->x[1], d_coef, outer,
                                                 inner, vec_is_outer, job->out), "nuslerp",
                           call, error)
       && _cru_cuda_check (cudaStreamSynchronize (job->s), "nuslerp", call, error);
  cudaFreeAsync (d_coef, job->s);
  return ok;
}

/* ---- dispatch ---- */

gboolean
_cru_cuda_compute (CruCudaJob *job, GError **error)
{
  switch (job->kind)
    {
    case CRU_CUDA_KIND_LINEAR:
      return run_linear (job, error);
    case CRU_CUDA_KIND_TASK:
      return run_task (job, error);
    case CRU_CUDA_KIND_SLERP:
      return run_slerp (job, error);
    case CRU_CUDA_KIND_NUSLERP:
      return run_nuslerp (job, error);
    case CRU_CUDA_KIND_MULTISLERP:
      return _cru_cuda_run_multislerp (job, error);
    case CRU_CUDA_KIND_KARCHER:
      return _cru_cuda_run_karcher (job, error);
    case CRU_CUDA_KIND_SCE:
      return _cru_cuda_run_sce (job, error);
    case CRU_CUDA_KIND_RAM:
    case CRU_CUDA_KIND_RAMPLUS:
      return run_ram (job, error);
    case CRU_CUDA_KIND_STOCK:
      return _cru_cuda_run_stock (job, error);
    case CRU_CUDA_KIND_NEARSWAP:
      CHECK (cru_cuda_nearswap (job->s, job->base, job->x[0], (float) _cru_cuda_param (job, "t"),
                                job->out, job->count), "nearswap");
      return TRUE;
    case CRU_CUDA_KIND_ARCEE:
      return _cru_cuda_run_arcee (job, error);
    case CRU_CUDA_KIND_PASSTHROUGH:
      return run_passthrough (job, error);
    case CRU_CUDA_KIND_SDM:
      return _cru_cuda_run_sdm (job, error);
    case CRU_CUDA_KIND_NONE:
    default:
      break;
    }
  g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_UNSUPPORTED,
               _("CUDA: method %s has no GPU implementation"), job->method->name);
  return FALSE;
}
