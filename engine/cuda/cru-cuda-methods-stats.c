/* cru-cuda-methods-stats.c — the methods that reduce over the whole tensor before they
 * combine: multislerp, karcher, model_stock, sce, arcee_fusion, sdm_w
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-private.h"

#include <math.h>
#include <string.h>

#define param(job, name)          _cru_cuda_param ((job), (name))
#define model_param(job, m, name) _cru_cuda_model_param ((job), (m), (name))
#define ptrs(job)                 _cru_cuda_ptrs (job)
#define reduce1                   _cru_cuda_reduce1

/* ---- multislerp ---- */

gboolean
_cru_cuda_run_multislerp (CruCudaJob *job, GError **error)
{
  const float *b = job->base;
  int nm = job->call->n_models;
  guint64 n = job->count;
  gboolean normalize = param (job, "normalize_weights") != 0.0, ok = TRUE;
  float eps = (float) param (job, "eps");
  float wsum = 0.0f, mean_norm, tangent_norm, c0, c1, avg_norm = 0.0f;
  CruCudaFloats w, inv, norms, dots;

  if (nm == 1)
    {
      CHECK (cudaMemcpyAsync (job->out, job->x[0], n * sizeof (float),
                              cudaMemcpyDeviceToDevice, job->s), "multislerp");
      return TRUE;
    }
  for (int m = 0; m < nm; m++)
    {
      w.v[m] = (float) model_param (job, m, "weight");
      wsum += w.v[m];
    }
  for (int m = 0; m < nm; m++)
    {
      if (normalize)
        w.v[m] = w.v[m] / wsum;
      norms.v[m] = (float) sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ_DIFF, job->x[m], NULL, b, 0,
                                          &ok, error));
      inv.v[m] = norms.v[m] + eps;
    }
  if (!ok)
    return FALSE;
  CHECK (cru_cuda_mslerp_mean (job->s, b, ptrs (job), nm, inv, w, job->scratch, n),
         "multislerp");
  mean_norm = (float) sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ, job->scratch, NULL, NULL, 0, &ok,
                                     error));
  if (!ok)
    return FALSE;
  if (mean_norm < eps)
    {
      if (nm == 2)
        {
          CHECK (cru_cuda_mslerp_pair (job->s, b, job->x[0], job->x[1], w.v[0], w.v[1],
                                       job->out, n), "multislerp");
          return TRUE;
        }
      g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("multislerp: the weighted directions of tensor %s cancel out (their "
                     "sum is zero); change the weights"), job->call->tensor_name);
      return FALSE;
    }
  CHECK (cru_cuda_div_scalar (job->s, job->scratch, mean_norm, n), "multislerp");
  for (int m = 0; m < nm; m++)
    dots.v[m] = (float) reduce1 (job, CRU_CUDA_RED_DOT_SCALED, job->x[m], job->scratch, b,
                                 inv.v[m], &ok, error);
  if (!ok)
    return FALSE;
  CHECK (cru_cuda_mslerp_tangent (job->s, b, ptrs (job), nm, inv, dots, w, job->scratch,
                                  job->out, n), "multislerp");
  tangent_norm = (float) sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ, job->out, NULL, NULL, 0, &ok,
                                        error)) + eps;
  if (!ok)
    return FALSE;
  c0 = cosf (tangent_norm);
  c1 = sinf (tangent_norm) / tangent_norm;
  for (int m = 0; m < nm; m++)
    avg_norm += norms.v[m] * w.v[m];
  CHECK (cru_cuda_mslerp_final (job->s, b, job->scratch, c0, c1, avg_norm, job->out, n),
         "multislerp");
  return TRUE;
}

/* ---- karcher ---- */

gboolean
_cru_cuda_run_karcher (CruCudaJob *job, GError **error)
{
  float *mean = job->out, *tangent = job->scratch;
  int nm = job->call->n_models, n_valid = 0, first_valid = -1;
  guint64 n = job->count;
  int max_iter = (int) param (job, "max_iter");
  double tol = param (job, "tol"), alpha_sum = 0.0, mean_norm, scale = 0.0;
  double norms[CRU_CUDA_MAX_MODELS] = { 0 };
  CruCudaFloats alpha, nf;
  gboolean ok = TRUE;

  if (nm == 1)
    {
      CHECK (cudaMemcpyAsync (job->out, job->x[0], n * sizeof (float),
                              cudaMemcpyDeviceToDevice, job->s), "karcher");
      return TRUE;
    }
  for (int m = 0; m < nm; m++)
    {
      norms[m] = (float) sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ, job->x[m], NULL, NULL, 0, &ok,
                                        error));
      if (norms[m] > tol)
        {
          alpha_sum += 1.0 / nm;
          n_valid++;
          if (first_valid < 0)
            first_valid = m;
        }
    }
  if (!ok)
    return FALSE;
  if (n_valid == 0)
    {
      CHECK (cudaMemsetAsync (job->out, 0, n * sizeof (float), job->s), "karcher");
      return TRUE;
    }
  for (int m = 0; m < nm; m++)
    {
      alpha.v[m] = norms[m] > tol ? (float) ((1.0 / nm) / alpha_sum) : 0.0f;
      nf.v[m] = (float) norms[m];
    }

  CHECK (cru_cuda_karcher_init (job->s, ptrs (job), nm, alpha, nf, mean, n), "karcher");
  mean_norm = sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ, mean, NULL, NULL, 0, &ok, error));
  if (!ok)
    return FALSE;
  if (mean_norm < tol)
    {
      CHECK (cudaMemcpyAsync (mean, job->x[first_valid], n * sizeof (float),
                              cudaMemcpyDeviceToDevice, job->s), "karcher");
      CHECK (cru_cuda_div_scalar (job->s, mean, nf.v[first_valid], n), "karcher");
    }
  else
    CHECK (cru_cuda_div_scalar (job->s, mean, (float) mean_norm, n), "karcher");

  for (int iter = 0; iter < max_iter; iter++)
    {
      double tangent_norm;
      gboolean any = FALSE;

      CHECK (cudaMemsetAsync (tangent, 0, n * sizeof (float), job->s), "karcher");
      for (int m = 0; m < nm; m++)
        {
          double acc, theta;
          float dot, coef;

          if (alpha.v[m] == 0.0f)
            continue;
          acc = reduce1 (job, CRU_CUDA_RED_DOT_SCALED_B, job->x[m], mean, NULL, nf.v[m], &ok,
                         error);
          if (!ok)
            return FALSE;
          dot = (float) CLAMP (acc, -1.0, 1.0);
          theta = acos ((double) dot);
          if (theta < tol)
            continue;
          coef = (float) (alpha.v[m] * (theta / sin (theta)));
          any = TRUE;
          CHECK (cru_cuda_karcher_tangent (job->s, job->x[m], nf.v[m], coef, dot, mean, tangent,
                                           n), "karcher");
        }
      tangent_norm = any ? sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ, tangent, NULL, NULL, 0, &ok,
                                          error)) : 0.0;
      if (!ok)
        return FALSE;
      if (tangent_norm < tol)
        break;
      {
        double unit_norm;
        CHECK (cru_cuda_karcher_step (job->s, mean, tangent, (float) cos (tangent_norm),
                                      (float) sin (tangent_norm), (float) tangent_norm, n),
               "karcher");
        unit_norm = sqrt (reduce1 (job, CRU_CUDA_RED_SUM_SQ, mean, NULL, NULL, 0, &ok, error));
        if (!ok)
          return FALSE;
        if (unit_norm > tol)
          CHECK (cru_cuda_div_scalar (job->s, mean, (float) unit_norm, n), "karcher");
      }
    }
  for (int m = 0; m < nm; m++)
    scale += (1.0 / nm) * norms[m];
  CHECK (cru_cuda_mul_scalar (job->s, mean, (float) scale, n), "karcher");
  return TRUE;
}

/* ---- model_stock ---- */

/* The CPU's stock_ratio from the per-vector sums: norms2[m] = Σ d², dots in pair order. */
static float
stock_ratio (int nm, const double *norms2, const double *dots)
{
  float cos_sum = 0.0f, cos_theta, N = (float) nm;
  double norms[CRU_CUDA_MAX_MODELS];
  int pairs = 0;

  for (int m = 0; m < nm; m++)
    norms[m] = (float) sqrt (norms2[m]);
  for (int p = 0; p < nm; p++)
    for (int q = p + 1; q < nm; q++)
      {
        float norm_product = (float) norms[p] * (float) norms[q], c;
        c = (float) dots[pairs] / MAX (norm_product, 1e-6f);
        cos_sum += CLAMP (c, -1.0f, 1.0f);
        pairs++;
      }
  cos_theta = cos_sum / (float) pairs;
  return (N * cos_theta) / (1.0f + (N - 1.0f) * cos_theta);
}

gboolean
_cru_cuda_run_stock (CruCudaJob *job, GError **error)
{
  const CruMethodCall *call = job->call;
  int nm = call->n_models, per_row = nm + nm * (nm - 1) / 2;
  guint64 n_rows, row_len;
  g_autofree double *res = NULL;
  g_autofree float *t_rows = NULL;
  double *d_res = NULL;
  float *d_t = NULL;
  gboolean ok = TRUE;

  if (param (job, "filter_wise") == 0.0)
    {
      double r[CRU_CUDA_MAX_MODELS + CRU_CUDA_MAX_MODELS * (CRU_CUDA_MAX_MODELS - 1) / 2];
      int slot = nm;
      for (int m = 0; m < nm; m++)
        r[m] = reduce1 (job, CRU_CUDA_RED_SUM_SQ_DIFF, job->x[m], NULL, job->base, 0, &ok,
                        error);
      for (int p = 0; p < nm; p++)
        for (int q = p + 1; q < nm; q++)
          r[slot++] = reduce1 (job, CRU_CUDA_RED_DOT_DIFF, job->x[p], job->x[q], job->base, 0,
                               &ok, error);
      if (!ok)
        return FALSE;
      CHECK (cru_cuda_stock_out (job->s, job->base, ptrs (job), nm, NULL,
                                 stock_ratio (nm, r, r + nm), job->count, job->out,
                                 job->count), "model_stock");
      return TRUE;
    }

  _cru_cuda_get_rows (job, &n_rows, &row_len);
  res = g_new (double, MAX (n_rows, 1) * per_row);
  t_rows = g_new (float, MAX (n_rows, 1));
  CHECK (cudaMallocAsync ((void **) &d_res, MAX (n_rows, 1) * per_row * sizeof (double), job->s),
         "model_stock");
  ok = _cru_cuda_check (cru_cuda_stock_rows (job->s, job->base, ptrs (job), nm, n_rows, row_len,
                                             d_res), "model_stock", call, error)
       && _cru_cuda_check (cudaMemcpyAsync (res, d_res, n_rows * per_row * sizeof (double),
                                            cudaMemcpyDeviceToHost, job->s), "model_stock",
                           call, error)
       && _cru_cuda_check (cudaStreamSynchronize (job->s), "model_stock", call, error);
  cudaFreeAsync (d_res, job->s);
  if (!ok)
    return FALSE;
  for (guint64 r = 0; r < n_rows; r++)
    t_rows[r] = stock_ratio (nm, res + r * per_row, res + r * per_row + nm);
  CHECK (cudaMallocAsync ((void **) &d_t, MAX (n_rows, 1) * sizeof (float), job->s),
         "model_stock");
  ok = _cru_cuda_check (cudaMemcpyAsync (d_t, t_rows, n_rows * sizeof (float),
                                         cudaMemcpyHostToDevice, job->s), "model_stock", call,
                        error)
       && _cru_cuda_check (cru_cuda_stock_out (job->s, job->base, ptrs (job), nm, d_t, 0.0f,
                                               row_len, job->out, n_rows * row_len),
                           "model_stock", call, error)
       && _cru_cuda_check (cudaStreamSynchronize (job->s), "model_stock", call, error);
  cudaFreeAsync (d_t, job->s);
  return ok;
}

/* ---- sce ---- */

gboolean
_cru_cuda_run_sce (CruCudaJob *job, GError **error)
{
  int nm = job->call->n_models;
  guint64 n = job->count;
  double topk = param (job, "select_topk"), omega_sum = 0.0;
  CruCudaFloats omega;
  gboolean ok = TRUE;

  for (int m = 0; m < nm; m++)
    CHECK (cru_cuda_sub_inplace (job->s, job->x[m], job->base, n), "sce");
  if (topk < 1.0)
    {
      guint64 k = 0;
      if (topk > 0.0)
        {
          unsigned long long nonzero = 0;
          CHECK (cru_cuda_sce_var (job->s, ptrs (job), nm, job->scratch, n, &nonzero), "sce");
          k = (guint64) ((float) nonzero * (float) topk);
        }
      CHECK (cru_cuda_topk_mask (job->s, job->scratch, n, k, 0, job->mask), "sce");
      for (int m = 0; m < nm; m++)
        CHECK (cru_cuda_mask_zero (job->s, job->x[m], job->mask, n), "sce");
    }
  for (int m = 0; m < nm; m++)
    {
      omega.v[m] = (float) (reduce1 (job, CRU_CUDA_RED_SUM_SQ, job->x[m], NULL, NULL, 0, &ok,
                                     error) / (double) n);
      omega_sum += omega.v[m];
    }
  if (!ok)
    return FALSE;
  for (int m = 0; m < nm; m++)
    omega.v[m] = fabs (omega_sum) < 1e-6 ? 1.0f / (float) nm : omega.v[m] / (float) omega_sum;
  CHECK (cru_cuda_sce_combine (job->s, job->base, ptrs (job), nm, omega, job->out, n), "sce");
  return TRUE;
}

/* ---- arcee_fusion ---- */

gboolean
_cru_cuda_run_arcee (CruCudaJob *job, GError **error)
{
  guint64 n = job->count, n_rows, row_len;
  uint32_t k1, k2, k3;
  float q1, median, q3, threshold;

  _cru_cuda_get_rows (job, &n_rows, &row_len);
  CHECK (cru_cuda_arcee_importance (job->s, job->base, job->x[0], n_rows, row_len,
                                    job->scratch), "arcee_fusion");
  CHECK (cru_cuda_kth_key (job->s, job->scratch, n, (guint64) floor (0.25 * (double) (n - 1)),
                           1, 0, &k1), "arcee_fusion");
  CHECK (cru_cuda_kth_key (job->s, job->scratch, n, (guint64) floor (0.5 * (double) (n - 1)),
                           1, 0, &k2), "arcee_fusion");
  CHECK (cru_cuda_kth_key (job->s, job->scratch, n, (guint64) floor (0.75 * (double) (n - 1)),
                           1, 0, &k3), "arcee_fusion");
  q1 = cru_cuda_select_key_to_float (k1, 1);
  median = cru_cuda_select_key_to_float (k2, 1);
  q3 = cru_cuda_select_key_to_float (k3, 1);
  threshold = median + 1.5f * (q3 - q1);
  CHECK (cru_cuda_arcee_out (job->s, job->base, job->x[0], job->scratch, threshold, job->out,
                             n), "arcee_fusion");
  return TRUE;
}

/* ---- sdm_w ---- */

enum { NORM_LINEAR, NORM_SQUARE };
enum { WEIGHTS_MODEL, WEIGHTS_TENSOR };

static void
weights_from_mass (const double *mass, int n, int normalization, double *weights)
{
  double total = 0.0;

  for (int i = 0; i < n; i++)
    total += normalization == NORM_SQUARE ? mass[i] * mass[i] : mass[i];
  for (int i = 0; i < n; i++)
    {
      double v = normalization == NORM_SQUARE ? mass[i] * mass[i] : mass[i];
      weights[i] = total > 0.0 ? v / total : 0.0;
    }
}

/* Deltas in place and each model's threshold P (has[m] FALSE when no change is non-zero). */
static gboolean
sdm_thresholds (CruCudaJob *job, double *p, int *has, GError **error)
{
  double k = param (job, "k");

  if ((int) param (job, "scope") != 0)
    {
      g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("sdm_w: scope “block” is not supported yet; use scope “tensor”"));
      return FALSE;
    }
  for (int m = 0; m < job->call->n_models; m++)
    {
      CHECK (cru_cuda_sub_inplace (job->s, job->x[m], job->base, job->count), "sdm_w");
      CHECK (cru_cuda_percentile (job->s, job->x[m], job->count, k, 0, 1, &p[m], &has[m]),
             "sdm_w");
    }
  return TRUE;
}

gboolean
_cru_cuda_sdm_mass (CruCudaJob *job, double *mass, GError **error)
{
  double p[CRU_CUDA_MAX_MODELS];
  int has[CRU_CUDA_MAX_MODELS];
  gboolean ok = TRUE;

  if (!sdm_thresholds (job, p, has, error))
    return FALSE;
  for (int m = 0; m < job->call->n_models; m++)
    {
      double r[2] = { 0, 0 };
      if (has[m])
        ok = ok && _cru_cuda_reduce (job, CRU_CUDA_RED_KEPT_MASS, job->x[m], NULL, NULL, 0,
                                     p[m], r, error);
      mass[m] = has[m] ? r[0] : 0.0;
    }
  return ok;
}

gboolean
_cru_cuda_run_sdm (CruCudaJob *job, GError **error)
{
  const CruMethodCall *call = job->call;
  int nm = call->n_models;
  int normalization = (int) param (job, "normalization");
  int weights_scope = (int) param (job, "weights_scope");
  double p[CRU_CUDA_MAX_MODELS], mass[CRU_CUDA_MAX_MODELS] = { 0 };
  double weights[CRU_CUDA_MAX_MODELS] = { 0 }, total = 0.0;
  int has[CRU_CUDA_MAX_MODELS];
  CruCudaFloats w;

  if (!sdm_thresholds (job, p, has, error))
    return FALSE;
  if (weights_scope == WEIGHTS_TENSOR)
    {
      for (int m = 0; m < nm; m++)
        {
          double r[2] = { 0, 0 };
          if (has[m] && !_cru_cuda_reduce (job, CRU_CUDA_RED_KEPT_MASS, job->x[m], NULL, NULL,
                                           0, p[m], r, error))
            return FALSE;
          mass[m] = has[m] ? r[0] : 0.0;
        }
      weights_from_mass (mass, nm, normalization, weights);
    }
  else
    {
      const double *stats_w;
      if (call->stats == NULL || job->method->stats_get_weights == NULL)
        {
          g_set_error (error, CRU_CUDA_ERROR, CRU_ERROR_FAILED,
                       _("sdm_w: the statistics pass did not run before tensor %s"),
                       call->tensor_name);
          return FALSE;
        }
      /* the W_i the statistics pass finished with (weights_from_mass of the model masses) */
      stats_w = job->method->stats_get_weights (call->stats);
      for (int m = 0; m < nm; m++)
        weights[m] = stats_w[m];
    }
  for (int m = 0; m < nm; m++)
    total += weights[m];
  for (int m = 0; m < nm; m++)
    {
      w.v[m] = (float) weights[m];
      if (!(total > 0.0))
        has[m] = 0;
    }
  CHECK (cru_cuda_sdm_out (job->s, job->base, ptrs (job), nm, w, p, has, job->out, job->count),
         "sdm_w");
  return TRUE;
}
