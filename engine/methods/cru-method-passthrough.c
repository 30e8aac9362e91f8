/* cru-method-passthrough.c — copy one model's tensors (frankenmerges are built by the plan)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

static const CruParamSpec passthrough_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  { "scale", N_("Scale"), N_("Multiply the tensors by this factor"),
    CRU_PARAM_FLOAT, TRUE, 1.0, -CRU_PARAM_UNBOUNDED, CRU_PARAM_UNBOUNDED, FALSE, FALSE, NULL },
};

static gsize
passthrough_workspace_bytes (int n_models, guint64 count)
{
  return 0;
}

static gboolean
passthrough_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict x = call->models[0];
  float *restrict out = call->out;
  double scale = _cru_call_model_param (method, call, 0, "scale");

  if (isnan (scale) || scale == 1.0)
    {
      memcpy (out, x, call->count * sizeof (float));
      return TRUE;
    }
  for (guint64 i = 0; i < call->count; i++)
    out[i] = x[i] * (float) scale;
  return TRUE;
}

const CruMethod cru_method_passthrough = {
  .name = "passthrough",
  .label = N_("Passthrough"),
  .description = N_("Copy the tensors of one model unchanged, e.g. to stack layers"),
  .family = "passthrough",
  .flags = CRU_METHOD_ELEMENTWISE | CRU_METHOD_STRUCTURAL,
  .min_models = 1,
  .max_models = 1,
  .params = passthrough_params,
  .n_params = G_N_ELEMENTS (passthrough_params),
  .workspace_bytes = passthrough_workspace_bytes,
  .apply = passthrough_apply,
};
