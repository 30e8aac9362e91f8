/* cru-method-registry.c — the table of merge methods and the checks common to all
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include <string.h>

static const CruMethod *const methods[] = {
  &cru_method_linear,
  &cru_method_slerp,
  &cru_method_nuslerp,
  &cru_method_multislerp,
  &cru_method_karcher,
  &cru_method_task_arithmetic,
  &cru_method_ties,
  &cru_method_dare_ties,
  &cru_method_dare_linear,
  &cru_method_breadcrumbs,
  &cru_method_breadcrumbs_ties,
  &cru_method_della,
  &cru_method_della_linear,
  &cru_method_sce,
  &cru_method_ram,
  &cru_method_ramplus_tl,
  &cru_method_model_stock,
  &cru_method_nearswap,
  &cru_method_arcee_fusion,
  &cru_method_passthrough,
  &cru_method_sdm_w,
};

guint
cru_method_get_n (void)
{
  return G_N_ELEMENTS (methods);
}

const CruMethod *
cru_method_get_nth (guint index)
{
  g_return_val_if_fail (index < G_N_ELEMENTS (methods), NULL);
  return methods[index];
}

const CruMethod *
cru_method_lookup (const char *name)
{
  if (name == NULL)
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    if (strcmp (methods[i]->name, name) == 0)
      return methods[i];
  return NULL;
}

int
cru_method_find_param (const CruMethod *method, const char *name)
{
  g_return_val_if_fail (method != NULL, -1);
  if (name == NULL)
    return -1;
  for (int i = 0; i < method->n_params; i++)
    if (strcmp (method->params[i].name, name) == 0)
      return i;
  return -1;
}

double
cru_method_get_default (const CruMethod *method, const char *name)
{
  int p = cru_method_find_param (method, name);
  return p < 0 ? NAN : method->params[p].default_value;
}

void
cru_method_fill_defaults (const CruMethod *method, double *params)
{
  for (int i = 0; i < method->n_params; i++)
    params[i] = method->params[i].default_value;
}

int
cru_param_spec_find_choice (const CruParamSpec *spec, const char *choice)
{
  if (spec->type != CRU_PARAM_ENUM || spec->choices == NULL || choice == NULL)
    return -1;
  for (int i = 0; spec->choices[i]; i++)
    if (g_ascii_strcasecmp (spec->choices[i], choice) == 0)
      return i;
  return -1;
}

gboolean
cru_method_is_elementwise (const CruMethod *method, const double *params)
{
  int p;

  g_return_val_if_fail (method != NULL, FALSE);
  if (method->flags & CRU_METHOD_ELEMENTWISE)
    return TRUE;
  /* DARE without the whole-tensor L1 rescale touches each element independently. */
  if (g_str_has_prefix (method->name, "dare_"))
    {
      p = cru_method_find_param (method, "rescale");
      if (p >= 0)
        {
          double v = params ? params[p] : method->params[p].default_value;
          return (int) v != 1;   /* 1 = "l1" */
        }
    }
  return FALSE;
}

int
cru_method_stream_passes (const CruMethod *method, const double *params)
{
  g_return_val_if_fail (method != NULL, 0);
  if (method->stream_n_passes == NULL || cru_method_is_elementwise (method, params))
    return 0;
  if (params == NULL)
    {
      double *defaults = g_newa (double, MAX (method->n_params, 1));
      cru_method_fill_defaults (method, defaults);
      return method->stream_n_passes (method, defaults);
    }
  return method->stream_n_passes (method, params);
}

static char *
format_number (double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.6g", v));
}

static char *
describe_range (const CruParamSpec *spec)
{
  gboolean has_min = spec->min > -CRU_PARAM_UNBOUNDED;
  gboolean has_max = spec->max < CRU_PARAM_UNBOUNDED;
  g_autofree char *lo = format_number (spec->min);
  g_autofree char *hi = format_number (spec->max);

  if (has_min && has_max)
    return g_strdup_printf (_("in %s%s, %s%s"), spec->min_exclusive ? "(" : "[", lo, hi,
                            spec->max_exclusive ? ")" : "]");
  if (has_min)
    return spec->min_exclusive ? g_strdup_printf (_("greater than %s"), lo)
                               : g_strdup_printf (_("at least %s"), lo);
  if (has_max)
    return spec->max_exclusive ? g_strdup_printf (_("less than %s"), hi)
                               : g_strdup_printf (_("at most %s"), hi);
  return g_strdup (_("a number"));
}

gboolean
cru_param_spec_check (const CruMethod *method, const CruParamSpec *spec, double value,
                      char **message)
{
  g_autofree char *got = format_number (value);
  const char *mname = method ? method->name : "?";

  g_return_val_if_fail (spec != NULL, FALSE);

  switch (spec->type)
    {
    case CRU_PARAM_BOOL:
      if (value == 0.0 || value == 1.0)
        return TRUE;
      if (message)
        *message = g_strdup_printf (_("%s: %s must be true or false, got %s"), mname,
                                    spec->name, got);
      return FALSE;

    case CRU_PARAM_ENUM:
      {
        int n = 0;
        while (spec->choices && spec->choices[n])
          n++;
        if (value >= 0 && value < n && value == floor (value))
          return TRUE;
        if (message)
          {
            g_autofree char *list = g_strjoinv (", ", (char **) spec->choices);
            *message = g_strdup_printf (_("%s: %s must be one of %s, got %s"), mname,
                                        spec->name, list, got);
          }
        return FALSE;
      }

    case CRU_PARAM_INT:
    case CRU_PARAM_FLOAT:
    default:
      {
        gboolean ok = !isnan (value);
        if (ok && spec->type == CRU_PARAM_INT && value != floor (value))
          ok = FALSE;
        if (ok && spec->min > -CRU_PARAM_UNBOUNDED)
          ok = spec->min_exclusive ? value > spec->min : value >= spec->min;
        if (ok && spec->max < CRU_PARAM_UNBOUNDED)
          ok = spec->max_exclusive ? value < spec->max : value <= spec->max;
        if (ok)
          return TRUE;
        if (message)
          {
            g_autofree char *range = describe_range (spec);
            if (spec->type == CRU_PARAM_INT)
              *message = g_strdup_printf (_("%s: %s must be a whole number %s, got %s"),
                                          mname, spec->name, range, got);
            else
              *message = g_strdup_printf (_("%s: %s must be %s, got %s"), mname, spec->name,
                                          range, got);
          }
        return FALSE;
      }
    }
}

void
cru_method_validate (const CruMethod *method, gboolean has_base, int n_models,
                     const double *params, const double *model_params, GPtrArray *problems)
{
  g_return_if_fail (method != NULL && problems != NULL);

  if ((method->flags & CRU_METHOD_NEEDS_BASE) && !has_base)
    g_ptr_array_add (problems,
                     g_strdup_printf (_("%s: needs a base model; choose one of the inputs "
                                        "as the base"), method->name));

  if (n_models < method->min_models)
    g_ptr_array_add (problems,
                     g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                   "%s: needs at least %d model%s, got %d",
                                                   "%s: needs at least %d models%s, got %d",
                                                   method->min_models),
                                      method->name, method->min_models,
                                      (method->flags & CRU_METHOD_NEEDS_BASE)
                                        ? _(" besides the base") : "",
                                      n_models));
  if (method->max_models >= 0 && n_models > method->max_models)
    g_ptr_array_add (problems,
                     g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                   "%s: takes at most %d model%s, got %d",
                                                   "%s: takes at most %d models%s, got %d",
                                                   method->max_models),
                                      method->name, method->max_models,
                                      (method->flags & (CRU_METHOD_NEEDS_BASE
                                                        | CRU_METHOD_BASE_OPTIONAL))
                                        ? _(" besides the base") : "",
                                      n_models));

  for (int p = 0; p < method->n_params; p++)
    {
      const CruParamSpec *spec = &method->params[p];
      char *message = NULL;

      if (!spec->per_model)
        {
          if (params && !cru_param_spec_check (method, spec, params[p], &message))
            g_ptr_array_add (problems, message);
          continue;
        }
      if (model_params == NULL)
        continue;
      for (int i = 0; i < n_models; i++)
        {
          double v = model_params[(gsize) i * method->n_params + p];
          if (!cru_param_spec_check (method, spec, v, &message))
            {
              /* TRANSLATORS: "<problem> (model 2)" */
              g_ptr_array_add (problems, g_strdup_printf (_("%s (model %d)"), message, i + 1));
              g_free (message);
              message = NULL;
            }
        }
    }

  if (method->validate)
    method->validate (method, params, model_params, n_models, problems);
}

/* ---- helpers shared by the families ---- */

double
_cru_call_param (const CruMethod *method, const CruMethodCall *call, const char *name)
{
  int p = cru_method_find_param (method, name);

  if (p < 0)
    return NAN;
  return call->params ? call->params[p] : method->params[p].default_value;
}

double
_cru_call_model_param (const CruMethod *method, const CruMethodCall *call, int i,
                       const char *name)
{
  int p = cru_method_find_param (method, name);

  if (p < 0)
    return NAN;
  if (call->model_params)
    return call->model_params[(gsize) i * method->n_params + p];
  if (call->params)
    return call->params[p];
  return method->params[p].default_value;
}

double
_cru_dot (const float *restrict a, const float *restrict b, guint64 n)
{
  double s = 0.0;
  for (guint64 i = 0; i < n; i++)
    s += (double) a[i] * (double) b[i];
  return s;
}

double
_cru_sum_sq (const float *restrict a, guint64 n)
{
  double s = 0.0;
  for (guint64 i = 0; i < n; i++)
    s += (double) a[i] * (double) a[i];
  return s;
}

double
_cru_sum_abs (const float *restrict a, guint64 n)
{
  double s = 0.0;
  for (guint64 i = 0; i < n; i++)
    s += fabs ((double) a[i]);
  return s;
}

void
_cru_sub (const float *restrict a, const float *restrict b, float *restrict out, guint64 n)
{
  for (guint64 i = 0; i < n; i++)
    out[i] = a[i] - b[i];
}
