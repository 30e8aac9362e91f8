/* cru-method-linear.c — weighted average (mergekit "linear")
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include "cru-kernels.h"

static const CruParamSpec linear_params[] = {
  CRU_PARAM_SPEC_WEIGHT,
  { "normalize", N_("Normalize"), N_("Divide by the sum of the weights"),
    CRU_PARAM_BOOL, FALSE, 1.0, 0.0, 1.0, FALSE, FALSE, NULL },
};

static gsize
linear_workspace_bytes (int n_models, guint64 count)
{
  return 0;
}

static gboolean
linear_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  gboolean normalize = _cru_call_param (method, call, "normalize") != 0.0;
  int nm = call->n_models;
  float *w = g_newa (float, MAX (nm, 1));
  float wsum = 0.0f;

  for (int m = 0; m < nm; m++)
    {
      w[m] = (float) _cru_call_model_param (method, call, m, "weight");
      wsum += w[m];
    }
  if (normalize && wsum == 0.0f)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("linear: the weights for tensor %s add up to 0, so they cannot be "
                     "normalized; change a weight or turn normalize off"),
                   call->tensor_name);
      return FALSE;
    }
  if (nm > 0)
    cru_kernel_weighted_sum (call->out, call->models, w, nm, call->count, normalize, wsum);
  return TRUE;
}

static void
linear_validate (const CruMethod *method, const double *params, const double *model_params,
                 int n_models, GPtrArray *problems)
{
  int pw = cru_method_find_param (method, "weight");
  int pn = cru_method_find_param (method, "normalize");
  double sum = 0.0;

  if (model_params == NULL || n_models == 0 || (params && params[pn] == 0.0))
    return;
  for (int i = 0; i < n_models; i++)
    sum += model_params[(gsize) i * method->n_params + pw];
  if (sum == 0.0)
    g_ptr_array_add (problems,
                     g_strdup (_("linear: the weights add up to 0, so they cannot be "
                                 "normalized; change a weight or turn normalize off")));
}

const CruMethod cru_method_linear = {
  .name = "linear",
  .label = N_("Linear"),
  .description = N_("Weighted average of the models"),
  .family = "linear",
  .flags = CRU_METHOD_ELEMENTWISE,
  .min_models = 1,
  .max_models = -1,
  .params = linear_params,
  .n_params = G_N_ELEMENTS (linear_params),
  .workspace_bytes = linear_workspace_bytes,
  .apply = linear_apply,
  .validate = linear_validate,
};
