/* cru-method-slerp.c — spherical interpolation: slerp, nuslerp, multislerp, karcher
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include "cru-kernels.h"

/* ---- slerp ---- */

static const CruParamSpec slerp_params[] = {
  { "t", N_("Interpolation factor"),
    N_("0 gives the base model, 1 the other model, values between follow the arc"),
    CRU_PARAM_FLOAT, FALSE, 0.5, 0.0, 1.0, FALSE, FALSE, NULL },
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
};

static gsize
no_workspace (int n_models, guint64 count)
{
  return 0;
}

/* The interpolation weights of the base and the other model from Σv0², Σv1² and Σv0·v1. */
static void
slerp_coefficients (double t, const double sums[3], float *s0, float *s1)
{
  double n0 = sqrt (sums[0]);
  double n1 = sqrt (sums[1]);
  double d = sums[2];

  /* mergekit normalizes only vectors with norm > 1e-8 */
  d /= (n0 > 1e-8 ? n0 : 1.0) * (n1 > 1e-8 ? n1 : 1.0);

  if (fabs (d) > 0.9995)
    {
      *s0 = (float) (1.0 - t);
      *s1 = (float) t;
    }
  else
    {
      double theta0 = acos (d);
      double sin_theta0 = sin (theta0);
      double theta_t = theta0 * t;
      *s0 = (float) (sin (theta0 - theta_t) / sin_theta0);
      *s1 = (float) (sin (theta_t) / sin_theta0);
    }
}

/* Streaming: one pass gathers the sums, chunk after chunk in index order (the same double
 * additions as one pass over the whole tensor). */
typedef struct {
  double sums[3];
  float  s0, s1;
} SlerpStream;

static int
slerp_stream_n_passes (const CruMethod *method, const double *params)
{
  return 1;
}

static gsize
slerp_stream_state_bytes (int n_models, guint64 numel)
{
  return sizeof (SlerpStream);
}

static void
slerp_stream_pass (const CruMethod *method, const CruMethodCall *chunk, int pass,
                   gpointer state)
{
  SlerpStream *st = state;

  cru_kernel_sums3 (chunk->base, chunk->models[0], chunk->count, st->sums);
}

static gboolean
slerp_stream_pass_end (const CruMethod *method, const CruMethodCall *call, int pass,
                       gpointer state, GError **error)
{
  SlerpStream *st = state;

  slerp_coefficients (_cru_call_param (method, call, "t"), st->sums, &st->s0, &st->s1);
  return TRUE;
}

static gboolean
slerp_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  double sums[3] = { 0.0, 0.0, 0.0 };
  float s0, s1;

  if (call->stream)
    {
      const SlerpStream *st = call->stream;
      s0 = st->s0;
      s1 = st->s1;
    }
  else
    {
      cru_kernel_sums3 (call->base, call->models[0], call->count, sums);
      slerp_coefficients (_cru_call_param (method, call, "t"), sums, &s0, &s1);
    }
  cru_kernel_lerp2 (call->out, call->base, s0, call->models[0], s1, call->count);
  return TRUE;
}

const CruMethod cru_method_slerp = {
  .name = "slerp",
  .label = N_("SLERP"),
  .description = N_("Spherical interpolation between the base and one other model"),
  .family = "slerp",
  .flags = CRU_METHOD_NEEDS_BASE,
  .min_models = 1,
  .max_models = 1,
  .params = slerp_params,
  .n_params = G_N_ELEMENTS (slerp_params),
  .workspace_bytes = no_workspace,
  .apply = slerp_apply,
  .stream_n_passes = slerp_stream_n_passes,
  .stream_state_bytes = slerp_stream_state_bytes,
  .stream_pass = slerp_stream_pass,
  .stream_pass_end = slerp_stream_pass_end,
};

/* ---- nuslerp ---- */

static const CruParamSpec nuslerp_params[] = {
  CRU_PARAM_SPEC_WEIGHT,
  { "nuslerp_flatten", N_("Flatten"),
    N_("Treat the whole tensor as one vector instead of interpolating row by row"),
    CRU_PARAM_BOOL, FALSE, 1.0, 0.0, 1.0, FALSE, FALSE, NULL },
  { "nuslerp_row_wise", N_("Row-wise"),
    N_("Interpolate along the first dimension instead of the last (when not flattened)"),
    CRU_PARAM_BOOL, FALSE, 0.0, 0.0, 1.0, FALSE, FALSE, NULL },
};

static gboolean
nuslerp_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  const float *restrict x0 = call->models[0];
  const float *restrict x1 = call->models[1];
  float *restrict out = call->out;
  gboolean flatten = _cru_call_param (method, call, "nuslerp_flatten") != 0.0;
  gboolean row_wise = _cru_call_param (method, call, "nuslerp_row_wise") != 0.0;
  double w0 = _cru_call_model_param (method, call, 0, "weight");
  double w1 = _cru_call_model_param (method, call, 1, "weight");
  double t = fabs (w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
  guint64 n = call->count, outer, inner, n_vec;
  gboolean vec_is_outer;
  g_autofree double *acc = NULL;
  g_autofree float *coef = NULL;

  /* Element (a, c) is index a·inner + c; its vector is a (rows) or c (columns). */
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
  acc = g_new0 (double, 3 * n_vec);
  coef = g_new (float, 3 * n_vec);

  for (guint64 a = 0; a < outer; a++)
    for (guint64 c = 0; c < inner; c++)
      {
        guint64 i = a * inner + c, j = vec_is_outer ? a : c;
        double v0 = b ? (double) (x0[i] - b[i]) : x0[i];
        double v1 = b ? (double) (x1[i] - b[i]) : x1[i];
        acc[3 * j] += v0 * v0;
        acc[3 * j + 1] += v1 * v1;
        acc[3 * j + 2] += v0 * v1;
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

  for (guint64 a = 0; a < outer; a++)
    for (guint64 c = 0; c < inner; c++)
      {
        guint64 i = a * inner + c, j = vec_is_outer ? a : c;
        float v0 = b ? x0[i] - b[i] : x0[i];
        float v1 = b ? x1[i] - b[i] : x1[i];
        float r = (coef[3 * j] * v0 + coef[3 * j + 1] * v1) / coef[3 * j + 2];
        out[i] = b ? b[i] + r : r;
      }
  return TRUE;
}

const CruMethod cru_method_nuslerp = {
  .name = "nuslerp",
  .label = N_("NuSLERP"),
  .description = N_("Spherical interpolation of two models by their weights, optionally "
                    "around a base"),
  .family = "slerp",
  .flags = CRU_METHOD_BASE_OPTIONAL,
  .min_models = 2,
  .max_models = 2,
  .params = nuslerp_params,
  .n_params = G_N_ELEMENTS (nuslerp_params),
  .workspace_bytes = no_workspace,
  .apply = nuslerp_apply,
};

/* ---- multislerp ---- */

static const CruParamSpec multislerp_params[] = {
  CRU_PARAM_SPEC_WEIGHT,
  { "normalize_weights", N_("Normalize weights"), N_("Make the weights add up to 1"),
    CRU_PARAM_BOOL, FALSE, 1.0, 0.0, 1.0, FALSE, FALSE, NULL },
  { "eps", N_("Epsilon"), N_("Small constant that keeps divisions stable"),
    CRU_PARAM_FLOAT, FALSE, 1e-8, 0.0, 1.0, FALSE, FALSE, NULL },
};

static gsize
multislerp_workspace_bytes (int n_models, guint64 count)
{
  return _cru_workspace_float_bytes (1, count);
}

static gboolean
multislerp_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  float *restrict out = call->out;
  float *restrict mean = _cru_workspace_floats (call, 0, call->count);
  int nm = call->n_models;
  guint64 n = call->count;
  gboolean normalize = _cru_call_param (method, call, "normalize_weights") != 0.0;
  float eps = (float) _cru_call_param (method, call, "eps");
  g_autofree float *w = g_new (float, nm);
  g_autofree float *inv = g_new (float, nm);
  g_autofree float *norms = g_new (float, nm);
  g_autofree float *dots = g_new (float, nm);
  float wsum = 0.0f, mean_norm, tangent_norm, c0, c1, avg_norm = 0.0f;
  double acc;

  if (nm == 1)
    {
      memcpy (out, call->models[0], n * sizeof (float));
      return TRUE;
    }

  for (int m = 0; m < nm; m++)
    {
      w[m] = (float) _cru_call_model_param (method, call, m, "weight");
      wsum += w[m];
    }
  for (int m = 0; m < nm; m++)
    {
      const float *restrict x = call->models[m];
      if (normalize)
        w[m] = w[m] / wsum;
      acc = 0.0;
      for (guint64 i = 0; i < n; i++)
        {
          double v = b ? (double) (x[i] - b[i]) : x[i];
          acc += v * v;
        }
      norms[m] = (float) sqrt (acc);
      inv[m] = norms[m] + eps;
    }

  /* mean = Σ w_i u_i, u_i = x_i / (n_i + eps) */
  memset (mean, 0, n * sizeof (float));
  for (int m = 0; m < nm; m++)
    {
      const float *restrict x = call->models[m];
      for (guint64 i = 0; i < n; i++)
        {
          float v = b ? x[i] - b[i] : x[i];
          mean[i] += (v / inv[m]) * w[m];
        }
    }
  mean_norm = (float) sqrt (_cru_sum_sq (mean, n));

  if (mean_norm < eps)
    {
      if (nm == 2)
        {
          for (guint64 i = 0; i < n; i++)
            {
              float v0 = b ? call->models[0][i] - b[i] : call->models[0][i];
              float v1 = b ? call->models[1][i] - b[i] : call->models[1][i];
              float r = v0 * w[0] + v1 * w[1];
              out[i] = b ? r + b[i] : r;
            }
          return TRUE;
        }
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("multislerp: the weighted directions of tensor %s cancel out (their "
                     "sum is zero); change the weights"), call->tensor_name);
      return FALSE;
    }
  for (guint64 i = 0; i < n; i++)
    mean[i] = mean[i] / mean_norm;

  for (int m = 0; m < nm; m++)
    {
      const float *restrict x = call->models[m];
      acc = 0.0;
      for (guint64 i = 0; i < n; i++)
        {
          float v = b ? x[i] - b[i] : x[i];
          acc += (double) (v / inv[m]) * mean[i];
        }
      dots[m] = (float) acc;
    }

  /* tangent T = Σ w_i (u_i − dot_i m̂), kept in out */
  memset (out, 0, n * sizeof (float));
  for (int m = 0; m < nm; m++)
    {
      const float *restrict x = call->models[m];
      for (guint64 i = 0; i < n; i++)
        {
          float v = b ? x[i] - b[i] : x[i];
          out[i] += ((v / inv[m]) - dots[m] * mean[i]) * w[m];
        }
    }
  tangent_norm = (float) sqrt (_cru_sum_sq (out, n)) + eps;
  c0 = cosf (tangent_norm);
  c1 = sinf (tangent_norm) / tangent_norm;
  for (int m = 0; m < nm; m++)
    avg_norm += norms[m] * w[m];

  for (guint64 i = 0; i < n; i++)
    {
      float r = (mean[i] * c0 + out[i] * c1) * avg_norm;
      out[i] = b ? r + b[i] : r;
    }
  return TRUE;
}

const CruMethod cru_method_multislerp = {
  .name = "multislerp",
  .label = N_("Multi-SLERP"),
  .description = N_("Spherical weighted average of any number of models"),
  .family = "slerp",
  .flags = CRU_METHOD_BASE_OPTIONAL,
  .min_models = 1,
  .max_models = -1,
  .params = multislerp_params,
  .n_params = G_N_ELEMENTS (multislerp_params),
  .workspace_bytes = multislerp_workspace_bytes,
  .apply = multislerp_apply,
};

/* ---- karcher ---- */

static const CruParamSpec karcher_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  { "max_iter", N_("Iterations"), N_("Most iterations of the Riemannian mean"),
    CRU_PARAM_INT, FALSE, 10.0, 1.0, 10000.0, FALSE, FALSE, NULL },
  { "tol", N_("Tolerance"), N_("Stop when the update is smaller than this"),
    CRU_PARAM_FLOAT, FALSE, 1e-5, 0.0, 1.0, FALSE, FALSE, NULL },
};

static gsize
karcher_workspace_bytes (int n_models, guint64 count)
{
  return _cru_workspace_float_bytes (1, count);
}

static gboolean
karcher_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  float *restrict mean = call->out;
  float *restrict tangent = _cru_workspace_floats (call, 0, call->count);
  int nm = call->n_models, n_valid = 0, first_valid = -1;
  guint64 n = call->count;
  int max_iter = (int) _cru_call_param (method, call, "max_iter");
  double tol = _cru_call_param (method, call, "tol");
  g_autofree double *norms = g_new0 (double, nm);
  g_autofree float *alpha = g_new0 (float, nm);   /* normalized over the valid models */
  double alpha_sum = 0.0, mean_norm, scale = 0.0;

  if (nm == 1)
    {
      memcpy (call->out, call->models[0], n * sizeof (float));
      return TRUE;
    }

  for (int m = 0; m < nm; m++)
    {
      norms[m] = (float) sqrt (_cru_sum_sq (call->models[m], n));
      if (norms[m] > tol)
        {
          alpha_sum += 1.0 / nm;
          n_valid++;
          if (first_valid < 0)
            first_valid = m;
        }
    }
  if (n_valid == 0)
    {
      memset (call->out, 0, n * sizeof (float));
      return TRUE;
    }
  for (int m = 0; m < nm; m++)
    if (norms[m] > tol)
      alpha[m] = (float) ((1.0 / nm) / alpha_sum);

  memset (mean, 0, n * sizeof (float));
  for (int m = 0; m < nm; m++)
    {
      const float *restrict x = call->models[m];
      float nf = (float) norms[m];
      if (alpha[m] == 0.0f)
        continue;
      for (guint64 i = 0; i < n; i++)
        mean[i] += alpha[m] * (x[i] / nf);
    }
  mean_norm = sqrt (_cru_sum_sq (mean, n));
  if (mean_norm < tol)
    {
      const float *restrict x = call->models[first_valid];
      float nf = (float) norms[first_valid];
      for (guint64 i = 0; i < n; i++)
        mean[i] = x[i] / nf;
    }
  else
    {
      float mf = (float) mean_norm;
      for (guint64 i = 0; i < n; i++)
        mean[i] = mean[i] / mf;
    }

  for (int iter = 0; iter < max_iter; iter++)
    {
      double tangent_norm;
      gboolean any = FALSE;

      memset (tangent, 0, n * sizeof (float));
      for (int m = 0; m < nm; m++)
        {
          const float *restrict x = call->models[m];
          float nf = (float) norms[m], dot, coef;
          double theta, acc = 0.0;

          if (alpha[m] == 0.0f)
            continue;
          for (guint64 i = 0; i < n; i++)
            acc += (double) mean[i] * (double) (x[i] / nf);
          dot = (float) CLAMP (acc, -1.0, 1.0);
          theta = acos ((double) dot);
          if (theta < tol)
            continue;
          coef = (float) (alpha[m] * (theta / sin (theta)));
          any = TRUE;
          for (guint64 i = 0; i < n; i++)
            tangent[i] += coef * ((x[i] / nf) - dot * mean[i]);
        }
      tangent_norm = any ? sqrt (_cru_sum_sq (tangent, n)) : 0.0;
      if (tangent_norm < tol)
        break;
      {
        float c = (float) cos (tangent_norm), s = (float) sin (tangent_norm);
        float tn = (float) tangent_norm;
        double unit_norm;
        for (guint64 i = 0; i < n; i++)
          mean[i] = c * mean[i] + s * (tangent[i] / tn);
        unit_norm = sqrt (_cru_sum_sq (mean, n));
        if (unit_norm > tol)
          {
            float un = (float) unit_norm;
            for (guint64 i = 0; i < n; i++)
              mean[i] = mean[i] / un;
          }
      }
    }

  for (int m = 0; m < nm; m++)
    scale += (1.0 / nm) * norms[m];
  {
    float sf = (float) scale;
    for (guint64 i = 0; i < n; i++)
      mean[i] = sf * mean[i];
  }
  return TRUE;
}

const CruMethod cru_method_karcher = {
  .name = "karcher",
  .label = N_("Karcher mean"),
  .description = N_("Riemannian mean of the models on the sphere"),
  .family = "slerp",
  .flags = 0,
  .min_models = 1,
  .max_models = -1,
  .params = karcher_params,
  .n_params = G_N_ELEMENTS (karcher_params),
  .workspace_bytes = karcher_workspace_bytes,
  .apply = karcher_apply,
};
