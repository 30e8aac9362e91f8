/* cru-method-stock.c — model_stock, nearswap, arcee_fusion
 *
 * Deliberate difference (METHODS.md): arcee_fusion takes its quantiles exactly (radix
 * select over all elements); mergekit samples 10⁶ elements of larger tensors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include "cru-select.h"

static gsize
no_workspace (int n_models, guint64 count)
{
  return 0;
}

/* Rows over the last dimension (a 1-D tensor is one row). */
static void
get_rows (const CruMethodCall *call, guint64 *n_rows, guint64 *row_len)
{
  *row_len = call->ndim >= 2 ? (guint64) call->shape[call->ndim - 1] : call->count;
  *n_rows = *row_len ? call->count / *row_len : 0;
}

/* ---- model_stock ---- */

static const CruParamSpec model_stock_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  { "filter_wise", N_("Per row"), N_("Compute the interpolation ratio for each row"),
    CRU_PARAM_BOOL, FALSE, 0.0, 0.0, 1.0, FALSE, FALSE, NULL },
};

static float
stock_ratio (const CruMethodCall *call, guint64 start, guint64 len)
{
  const float *restrict b = call->base;
  int nm = call->n_models, pairs = 0;
  g_autofree double *norms = g_new0 (double, nm);
  float cos_sum = 0.0f, cos_theta, N = (float) nm;

  for (int m = 0; m < nm; m++)
    {
      double acc = 0.0;
      for (guint64 i = start; i < start + len; i++)
        {
          double d = call->models[m][i] - b[i];
          acc += d * d;
        }
      norms[m] = (float) sqrt (acc);
    }
  for (int p = 0; p < nm; p++)
    for (int q = p + 1; q < nm; q++)
      {
        double dot = 0.0;
        float norm_product = (float) norms[p] * (float) norms[q], c;
        for (guint64 i = start; i < start + len; i++)
          dot += (double) (call->models[p][i] - b[i]) * (double) (call->models[q][i] - b[i]);
        c = (float) dot / MAX (norm_product, 1e-6f);
        cos_sum += CLAMP (c, -1.0f, 1.0f);
        pairs++;
      }
  cos_theta = cos_sum / (float) pairs;
  return (N * cos_theta) / (1.0f + (N - 1.0f) * cos_theta);
}

static gboolean
model_stock_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  float *restrict out = call->out;
  gboolean filter_wise = _cru_call_param (method, call, "filter_wise") != 0.0;
  guint64 n_rows = 1, row_len = call->count;
  int nm = call->n_models;

  if (filter_wise)
    get_rows (call, &n_rows, &row_len);

  for (guint64 r = 0; r < n_rows; r++)
    {
      guint64 start = r * row_len;
      float t = stock_ratio (call, start, row_len);
      for (guint64 i = start; i < start + row_len; i++)
        {
          float sum = call->models[0][i];
          for (int m = 1; m < nm; m++)
            sum += call->models[m][i];
          out[i] = t * (sum / (float) nm) + (1.0f - t) * b[i];
        }
    }
  return TRUE;
}

const CruMethod cru_method_model_stock = {
  .name = "model_stock",
  .label = N_("Model Stock"),
  .description = N_("Move from the base towards the average of the models by an amount "
                    "set by the angle between their changes"),
  .family = "stock",
  .flags = CRU_METHOD_NEEDS_BASE,
  .min_models = 2,
  .max_models = -1,
  .params = model_stock_params,
  .n_params = G_N_ELEMENTS (model_stock_params),
  .workspace_bytes = no_workspace,
  .apply = model_stock_apply,
};

/* ---- nearswap ---- */

static const CruParamSpec nearswap_params[] = {
  { "t", N_("Similarity threshold"),
    N_("Weights closer than this to the base are taken from the other model"),
    CRU_PARAM_FLOAT, FALSE, 0.001, 0.0, CRU_PARAM_UNBOUNDED, TRUE, FALSE, NULL },
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
};

static gboolean
nearswap_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  const float *restrict x = call->models[0];
  float *restrict out = call->out;
  float t = (float) _cru_call_param (method, call, "t");

  for (guint64 i = 0; i < call->count; i++)
    {
      float w = t / fabsf (b[i] - x[i]);
      if (isnan (w) || isinf (w))
        w = 1.0f;
      w = CLAMP (w, 0.0f, 1.0f);
      out[i] = w * x[i] + (1.0f - w) * b[i];
    }
  return TRUE;
}

const CruMethod cru_method_nearswap = {
  .name = "nearswap",
  .label = N_("NearSwap"),
  .description = N_("Take the other model's weights where they are close to the base and "
                    "blend towards the base where they differ"),
  .family = "stock",
  .flags = CRU_METHOD_NEEDS_BASE | CRU_METHOD_ELEMENTWISE,
  .min_models = 1,
  .max_models = 1,
  .params = nearswap_params,
  .n_params = G_N_ELEMENTS (nearswap_params),
  .workspace_bytes = no_workspace,
  .apply = nearswap_apply,
};

/* ---- arcee_fusion ---- */

static const CruParamSpec arcee_fusion_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
};

static gsize
arcee_fusion_workspace_bytes (int n_models, guint64 count)
{
  return _cru_workspace_float_bytes (1, count);
}

/* KL(softmax(x) + 1e-8 ‖ softmax(b) + 1e-8) of one row */
static double
row_kl (const float *x, const float *b, guint64 len)
{
  double mx = -INFINITY, mb = -INFINITY, sx = 0.0, sb = 0.0, kl = 0.0;

  for (guint64 i = 0; i < len; i++)
    {
      mx = MAX (mx, x[i]);
      mb = MAX (mb, b[i]);
    }
  for (guint64 i = 0; i < len; i++)
    {
      sx += exp ((double) x[i] - mx);
      sb += exp ((double) b[i] - mb);
    }
  for (guint64 i = 0; i < len; i++)
    {
      double p = exp ((double) x[i] - mx) / sx + 1e-8;
      double q = exp ((double) b[i] - mb) / sb + 1e-8;
      kl += p * log (p / q);
    }
  return kl;
}

static gboolean
arcee_fusion_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  const float *restrict x = call->models[0];
  float *restrict out = call->out;
  float *restrict importance = _cru_workspace_floats (call, 0, call->count);
  guint64 n = call->count, n_rows, row_len;
  float q1, median, q3, threshold;

  get_rows (call, &n_rows, &row_len);
  for (guint64 r = 0; r < n_rows; r++)
    {
      guint64 start = r * row_len;
      float kl = (float) row_kl (x + start, b + start, row_len);
      for (guint64 i = start; i < start + row_len; i++)
        importance[i] = fabsf (x[i] - b[i]) * kl;
    }

  q1 = cru_select_kth (importance, n, (guint64) floor (0.25 * (double) (n - 1)),
                       CRU_SELECT_SIGNED, FALSE);
  median = cru_select_kth (importance, n, (guint64) floor (0.5 * (double) (n - 1)),
                           CRU_SELECT_SIGNED, FALSE);
  q3 = cru_select_kth (importance, n, (guint64) floor (0.75 * (double) (n - 1)),
                       CRU_SELECT_SIGNED, FALSE);
  threshold = median + 1.5f * (q3 - q1);

  for (guint64 i = 0; i < n; i++)
    out[i] = b[i] + (x[i] - b[i]) * (importance[i] >= threshold ? 1.0f : 0.0f);
  return TRUE;
}

const CruMethod cru_method_arcee_fusion = {
  .name = "arcee_fusion",
  .label = N_("Arcee Fusion"),
  .description = N_("Take only the other model's most important changes, chosen by a "
                    "threshold on their size and effect"),
  .family = "stock",
  .flags = CRU_METHOD_NEEDS_BASE,
  .min_models = 1,
  .max_models = 1,
  .params = arcee_fusion_params,
  .n_params = G_N_ELEMENTS (arcee_fusion_params),
  .workspace_bytes = arcee_fusion_workspace_bytes,
  .apply = arcee_fusion_apply,
};
