/* cru-method-sce.c — SCE: select by variance, calculate weights, erase minority signs
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include "cru-select.h"

static const CruParamSpec sce_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  { "select_topk", N_("Selected fraction"),
    N_("Fraction of the positions, those that vary most between the models, that is kept"),
    CRU_PARAM_FLOAT, FALSE, 1.0, 0.0, 1.0, FALSE, FALSE, NULL },
  CRU_PARAM_SPEC_INT8_MASK,
};

static gsize
sce_workspace_bytes (int n_models, guint64 count)
{
  return _cru_workspace_float_bytes ((guint64) n_models + 1, count) + ((count + 63) & ~(guint64) 63);
}

static gboolean
sce_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  float *restrict out = call->out;
  int nm = call->n_models;
  guint64 n = call->count;
  double topk = _cru_call_param (method, call, "select_topk");
  float *restrict var = _cru_workspace_floats (call, nm, n);
  guint8 *mask = (guint8 *) ((char *) call->workspace + _cru_workspace_float_bytes (nm + 1, n));
  g_autofree float *omega = g_new (float, nm);
  double omega_sum = 0.0;

  for (int m = 0; m < nm; m++)
    _cru_sub (call->models[m], b, _cru_workspace_floats (call, m, n), n);

  if (topk < 1.0)
    {
      guint64 k = 0;
      if (topk > 0.0)
        {
          guint64 nonzero = 0;
          for (guint64 i = 0; i < n; i++)
            {
              float mean = 0.0f, acc = 0.0f;
              for (int m = 0; m < nm; m++)
                mean += _cru_workspace_floats (call, m, n)[i];
              mean = mean / (float) nm;
              for (int m = 0; m < nm; m++)
                {
                  float d = _cru_workspace_floats (call, m, n)[i] - mean;
                  acc += d * d;
                }
              var[i] = acc / (float) nm;
              nonzero += var[i] != 0.0f;
            }
          k = (guint64) ((float) nonzero * (float) topk);
        }
      cru_select_topk_mask (var, n, k, CRU_SELECT_ABS, mask);
      for (int m = 0; m < nm; m++)
        {
          float *restrict tau = _cru_workspace_floats (call, m, n);
          for (guint64 i = 0; i < n; i++)
            tau[i] = mask[i] ? tau[i] : 0.0f;
        }
    }

  for (int m = 0; m < nm; m++)
    {
      omega[m] = (float) (_cru_sum_sq (_cru_workspace_floats (call, m, n), n) / (double) n);
      omega_sum += omega[m];
    }
  for (int m = 0; m < nm; m++)
    omega[m] = fabs (omega_sum) < 1e-6 ? 1.0f / (float) nm : omega[m] / (float) omega_sum;

  for (guint64 i = 0; i < n; i++)
    {
      float total = 0.0f, mixed = 0.0f, divisor = 0.0f, sign;
      for (int m = 0; m < nm; m++)
        total += _cru_workspace_floats (call, m, n)[i];
      sign = total >= 0.0f ? 1.0f : -1.0f;
      for (int m = 0; m < nm; m++)
        {
          float t = _cru_workspace_floats (call, m, n)[i];
          float s = t > 0.0f ? 1.0f : (t < 0.0f ? -1.0f : 0.0f);
          if (s == sign)
            {
              mixed += t * omega[m];
              divisor += omega[m];
            }
        }
      out[i] = b[i] + mixed / MAX (divisor, 1e-6f);
    }
  return TRUE;
}

const CruMethod cru_method_sce = {
  .name = "sce",
  .label = N_("SCE"),
  .description = N_("Keep the positions that vary most, weight each model by the size of "
                    "its changes and drop minority signs"),
  .family = "task-vector",
  .flags = CRU_METHOD_NEEDS_BASE,
  .min_models = 1,
  .max_models = -1,
  .params = sce_params,
  .n_params = G_N_ELEMENTS (sce_params),
  .workspace_bytes = sce_workspace_bytes,
  .apply = sce_apply,
};
