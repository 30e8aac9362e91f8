/* cru-method-ram.c — Reinforced Agent Merging: ram and ramplus_tl
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#define SPEC_RAM_EPSILON                                                             \
  { "epsilon", N_("Epsilon"), N_("Changes at most this large count as unchanged"),   \
    CRU_PARAM_FLOAT, FALSE, 1e-5, 0.0, CRU_PARAM_UNBOUNDED, FALSE, FALSE, NULL }

static const CruParamSpec ram_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  SPEC_RAM_EPSILON,
};

static const CruParamSpec ramplus_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  { "r", N_("Boost"), N_("How much a model's unique changes are amplified"),
    CRU_PARAM_FLOAT, FALSE, 0.1, 0.0, CRU_PARAM_UNBOUNDED, FALSE, FALSE, NULL },
  { "alpha", N_("Boost limit"), N_("Upper limit of the shared-to-unique ratio used for the boost"),
    CRU_PARAM_FLOAT, FALSE, 0.2, 0.0, CRU_PARAM_UNBOUNDED, FALSE, FALSE, NULL },
  SPEC_RAM_EPSILON,
};

static gsize
ram_workspace_bytes (int n_models, guint64 count)
{
  return 0;
}

/* out = b + Σ_m scale_m·τ_m over unique positions + Σ_m τ_m/c over shared ones */
static void
ram_combine (const CruMethodCall *call, float eps, const float *unique_scale)
{
  const float *restrict b = call->base;
  float *restrict out = call->out;
  int nm = call->n_models;

  for (guint64 i = 0; i < call->count; i++)
    {
      int c = 0;
      float mixed = 0.0f;
      for (int m = 0; m < nm; m++)
        c += fabsf (call->models[m][i] - b[i]) > eps;
      for (int m = 0; m < nm; m++)
        {
          float tau = call->models[m][i] - b[i];
          float z = fabsf (tau) > eps ? tau : 0.0f;
          float term = 0.0f;
          if (c == 1)
            term = unique_scale ? z * unique_scale[m] : z;
          else if (c > 1)
            term = z / (float) c;
          mixed += term;
        }
      out[i] = b[i] + mixed;
    }
}

static gboolean
ram_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  ram_combine (call, (float) _cru_call_param (method, call, "epsilon"), NULL);
  return TRUE;
}

static gboolean
ramplus_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  int nm = call->n_models;
  float eps = (float) _cru_call_param (method, call, "epsilon");
  float r = (float) _cru_call_param (method, call, "r");
  float alpha = (float) _cru_call_param (method, call, "alpha");
  g_autofree guint64 *shared = g_new0 (guint64, nm);
  g_autofree guint64 *unique = g_new0 (guint64, nm);
  g_autofree float *scale = g_new (float, nm);

  for (guint64 i = 0; i < call->count; i++)
    {
      int c = 0;
      for (int m = 0; m < nm; m++)
        c += fabsf (call->models[m][i] - b[i]) > eps;
      for (int m = 0; m < nm; m++)
        if (fabsf (call->models[m][i] - b[i]) > eps)
          {
            if (c > 1)
              shared[m]++;
            else
              unique[m]++;
          }
    }
  for (int m = 0; m < nm; m++)
    {
      float rho = (float) shared[m] / MAX ((float) unique[m], eps);
      scale[m] = 1.0f + r * CLAMP (rho, 0.0f, alpha);
    }
  ram_combine (call, eps, scale);
  return TRUE;
}

const CruMethod cru_method_ram = {
  .name = "ram",
  .label = N_("RAM"),
  .description = N_("Keep changes made by one model as they are and average changes that "
                    "several models share"),
  .family = "task-vector",
  .flags = CRU_METHOD_NEEDS_BASE | CRU_METHOD_ELEMENTWISE,
  .min_models = 1,
  .max_models = -1,
  .params = ram_params,
  .n_params = G_N_ELEMENTS (ram_params),
  .workspace_bytes = ram_workspace_bytes,
  .apply = ram_apply,
};

const CruMethod cru_method_ramplus_tl = {
  .name = "ramplus_tl",
  .label = N_("RAM+ (tensor-local)"),
  .description = N_("RAM that amplifies each model's unique changes by how much it "
                    "overlaps with the others"),
  .family = "task-vector",
  .flags = CRU_METHOD_NEEDS_BASE,
  .min_models = 1,
  .max_models = -1,
  .params = ramplus_params,
  .n_params = G_N_ELEMENTS (ramplus_params),
  .workspace_bytes = ram_workspace_bytes,
  .apply = ramplus_apply,
};
