/* cru-method-sdm.c — SDM-W: Significant Deltas Merging with Weights (METHODS.md, "SDM-W")
 *
 * Each task vector keeps its changes at or above the k-th percentile of its non-zero
 * magnitudes; models are weighted by the L1 mass of what they keep, summed over the whole
 * model (a statistics pass) or per tensor.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include "cru-fixed-sum.h"
#include "cru-kernels.h"
#include "cru-select.h"

static const char *const normalization_choices[] = { "linear", "square", NULL };
static const char *const scope_choices[] = { "tensor", "block", NULL };
static const char *const weights_scope_choices[] = { "model", "tensor", NULL };

enum { NORM_LINEAR, NORM_SQUARE };
enum { SCOPE_TENSOR, SCOPE_BLOCK };
enum { WEIGHTS_MODEL, WEIGHTS_TENSOR };

static const CruParamSpec sdm_params[] = {
  CRU_PARAM_SPEC_WEIGHT_UNUSED,
  { "k", N_("Percentile"),
    N_("Changes below this percentile of each task vector's magnitudes are dropped"),
    CRU_PARAM_FLOAT, FALSE, 10.0, 0.0, 100.0, FALSE, FALSE, NULL },
  { "normalization", N_("Weight rule"),
    N_("linear: weights proportional to each model's kept change; square: to its square"),
    CRU_PARAM_ENUM, FALSE, NORM_LINEAR, 0.0, 1.0, FALSE, FALSE, normalization_choices },
  { "scope", N_("Filter scope"),
    N_("Take the percentile per tensor or over all tensors of a layer"),
    CRU_PARAM_ENUM, FALSE, SCOPE_TENSOR, 0.0, 1.0, FALSE, FALSE, scope_choices },
  { "weights_scope", N_("Weight scope"),
    N_("One weight per model (whole model) or per tensor"),
    CRU_PARAM_ENUM, FALSE, WEIGHTS_MODEL, 0.0, 1.0, FALSE, FALSE, weights_scope_choices },
};

/* Tensors' contributions are kept apart and added up by name at the end: the threads of
 * the statistics pass finish in any order, and a sum in that order would make the weights
 * (and so the merged bits) depend on timing. */
typedef struct {
  GMutex      lock;
  int         n_models;
  int         normalization;
  GHashTable *partials; /* tensor name → double[n_models] */
  GHashTable *tensors;  /* tensor name → SdmTensorValues[n_models] (CPU statistics pass) */
  double     *mass;     /* M_i after finish */
  double     *weights;  /* W_i after finish */
} SdmStats;

/* What the statistics pass found for one model in one tensor: the merge needs no more, so it
 * can run on chunks without computing the percentile again. */
typedef struct {
  double   p;      /* threshold P */
  double   mass;   /* kept L1 mass */
  gboolean has;    /* S is not empty */
} SdmTensorValues;

/* Streaming the statistics pass (cru-method.h): passes 0, 1 and 2 find the percentile of |Δ|
 * (cru_percentile_stream_*; passes 1 and 2 are skipped when pass 0's windows hold it), pass
 * 3 adds the kept mass in the fixed order. */
typedef struct {
  CruPercentileStream percentile;
  SdmTensorValues     v;
} SdmModelStream;

typedef struct {
  int            n_models;
  SdmModelStream m[];
} SdmStream;

static gsize
sdm_workspace_bytes (int n_models, guint64 count)
{
  return _cru_workspace_float_bytes (1, count);
}

/* Threshold P of model m's task vector (delta written to @delta); FALSE when S is empty. */
static gboolean
sdm_threshold (const CruMethodCall *call, int m, double k, float *delta, double *p)
{
  cru_kernel_sub (delta, call->models[m], call->base, call->count);
  return cru_select_percentile (delta, call->count, k, CRU_SELECT_ABS, TRUE, p);
}

/* in the fixed order every backend uses (cru-fixed-sum.h) */
static double
kept_mass (const float *delta, guint64 n, double p)
{
  double total = 0.0;

  cru_kernel_kept_sum (delta, n, p, &total);
  return total;
}

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

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static gpointer
sdm_stats_new (const CruMethod *method, int n_models)
{
  SdmStats *stats = g_new0 (SdmStats, 1);

  g_mutex_init (&stats->lock);
  stats->n_models = n_models;
  stats->partials = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  stats->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  stats->mass = g_new0 (double, n_models);
  stats->weights = g_new0 (double, n_models);
  return stats;
}

static void
sdm_stats_add_partial (gpointer data, const CruMethodCall *call, const double *partial)
{
  SdmStats *stats = data;
  const char *name = call->tensor_name ? call->tensor_name : "";
  int nm = MIN (call->n_models, stats->n_models);
  double *sum;

  g_mutex_lock (&stats->lock);
  stats->normalization = (int) _cru_call_param (&cru_method_sdm_w, call, "normalization");
  sum = g_hash_table_lookup (stats->partials, name);
  if (sum == NULL)
    {
      sum = g_new0 (double, stats->n_models);
      g_hash_table_insert (stats->partials, g_strdup (name), sum);
    }
  for (int m = 0; m < nm; m++)
    sum[m] += partial[m];
  g_mutex_unlock (&stats->lock);
}

static void
sdm_stats_accumulate (gpointer data, const CruMethodCall *call)
{
  SdmStats *stats = data;
  const CruMethod *method = &cru_method_sdm_w;
  double k = _cru_call_param (method, call, "k");
  int nm = MIN (call->n_models, stats->n_models);
  g_autofree double *mass = g_new0 (double, nm);
  SdmTensorValues *values = g_new0 (SdmTensorValues, stats->n_models);
  g_autofree float *own = NULL;
  float *delta = NULL;

  if (call->stream == NULL)
    delta = call->workspace ? _cru_workspace_floats (call, 0, call->count)
                            : (own = g_new (float, call->count));
  for (int m = 0; m < nm; m++)
    {
      SdmTensorValues *v = &values[m];

      if (call->stream)
        *v = ((const SdmStream *) call->stream)->m[m].v;
      else if ((v->has = sdm_threshold (call, m, k, delta, &v->p)))
        v->mass = kept_mass (delta, call->count, v->p);
      if (v->has)
        mass[m] = v->mass;
    }

  sdm_stats_add_partial (stats, call, mass);
  g_mutex_lock (&stats->lock);
  g_hash_table_replace (stats->tensors, g_strdup (call->tensor_name ? call->tensor_name : ""),
                        values);
  g_mutex_unlock (&stats->lock);
}

/* ---- streaming the statistics pass ---- */

#define SDM_MASS_PASS 3

static int
sdm_stream_n_passes (const CruMethod *method, const double *params)
{
  return SDM_MASS_PASS + 1;
}

static gsize
sdm_stream_state_bytes (int n_models, guint64 numel)
{
  return sizeof (SdmStream) + (gsize) n_models * sizeof (SdmModelStream);
}

static void
sdm_stream_pass (const CruMethod *method, const CruMethodCall *chunk, int pass, gpointer state)
{
  SdmStream *st = state;
  guint64 n = chunk->count;

  st->n_models = chunk->n_models;
  for (int m = 0; m < chunk->n_models; m++)
    {
      SdmModelStream *ms = &st->m[m];

      if (pass > 0 && !ms->v.has)
        continue;
      if (pass < SDM_MASS_PASS)
        cru_percentile_stream_pass (&ms->percentile, pass, chunk->models[m], chunk->base, n,
                                    _cru_call_param (method, chunk, "k"));
      else
        cru_kernel_diff_kept_sum (chunk->models[m], chunk->base, n, ms->v.p, &ms->v.mass);
    }
}

/* The same percentile as cru_select_percentile (|Δ|, zeros skipped). */
static gboolean
sdm_stream_pass_end (const CruMethod *method, const CruMethodCall *call, int pass,
                     gpointer state, GError **error)
{
  SdmStream *st = state;
  double k = _cru_call_param (method, call, "k");

  for (int m = 0; m < call->n_models; m++)
    {
      SdmModelStream *ms = &st->m[m];

      /* passes 1 and 2 may be skipped (sdm_stream_pass_skip): a percentile is read as soon
       * as it is resolved */
      if (pass == SDM_MASS_PASS || (pass > 0 && !ms->v.has))
        continue;
      if (pass == 0)
        ms->v.has = cru_percentile_stream_end (&ms->percentile, 0, call->numel, k);
      else
        cru_percentile_stream_end (&ms->percentile, pass, call->numel, k);
      if (ms->v.has && cru_percentile_stream_resolved (&ms->percentile))
        ms->v.p = cru_percentile_stream_value (&ms->percentile);
    }
  return TRUE;
}

/* Passes 1 and 2 are not needed when earlier ones resolved every model's percentile. */
static gboolean
sdm_stream_pass_skip (const CruMethod *method, int pass, gconstpointer state)
{
  const SdmStream *st = state;

  if (pass != 1 && pass != 2)
    return FALSE;
  for (int m = 0; m < st->n_models; m++)
    if (st->m[m].v.has && cru_percentile_stream_needs (&st->m[m].percentile, pass))
      return FALSE;
  return TRUE;
}

static gboolean
sdm_stats_finish (gpointer data, GError **error)
{
  SdmStats *stats = data;
  g_autofree gpointer *names = NULL;
  guint n_names = 0;

  names = g_hash_table_get_keys_as_array (stats->partials, &n_names);
  qsort (names, n_names, sizeof (gpointer), compare_names);
  memset (stats->mass, 0, stats->n_models * sizeof (double));
  for (guint i = 0; i < n_names; i++)
    {
      const double *partial = g_hash_table_lookup (stats->partials, names[i]);
      for (int m = 0; m < stats->n_models; m++)
        stats->mass[m] += partial[m];
    }
  weights_from_mass (stats->mass, stats->n_models, stats->normalization, stats->weights);
  return TRUE;
}

static void
sdm_stats_free (gpointer data)
{
  SdmStats *stats = data;

  if (stats == NULL)
    return;
  g_mutex_clear (&stats->lock);
  g_hash_table_unref (stats->partials);
  g_hash_table_unref (stats->tensors);
  g_free (stats->mass);
  g_free (stats->weights);
  g_free (stats);
}

static const double *
sdm_stats_get_weights (gconstpointer data)
{
  const SdmStats *stats = data;
  return stats->weights;
}

static gboolean
sdm_apply (const CruMethod *method, const CruMethodCall *call, GError **error)
{
  const float *restrict b = call->base;
  float *restrict out = call->out;
  float *restrict delta = _cru_workspace_floats (call, 0, call->count);
  int nm = call->n_models;
  guint64 n = call->count;
  double k = _cru_call_param (method, call, "k");
  int normalization = (int) _cru_call_param (method, call, "normalization");
  int weights_scope = (int) _cru_call_param (method, call, "weights_scope");
  g_autofree double *mass = g_new0 (double, nm);
  g_autofree double *weights = g_new0 (double, nm);
  g_autofree double *thresholds = g_new0 (double, nm);
  g_autofree gboolean *has = g_new0 (gboolean, nm);
  const SdmTensorValues *recorded = NULL;
  double total = 0.0;

  if ((int) _cru_call_param (method, call, "scope") != SCOPE_TENSOR)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("sdm_w: scope “block” is not supported yet; use scope “tensor”"));
      return FALSE;
    }

  /* What the CPU statistics pass found for this tensor, if it ran here: then this call may
   * be a chunk of the tensor. */
  if (call->stats)
    {
      const SdmStats *stats = call->stats;
      recorded = g_hash_table_lookup (stats->tensors, call->tensor_name ? call->tensor_name : "");
    }
  if (recorded == NULL && call->count != call->numel)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("Internal error: sdm_w got a part of tensor %s without its statistics"),
                   call->tensor_name);
      return FALSE;
    }
  for (int m = 0; m < nm; m++)
    {
      if (recorded && m < ((const SdmStats *) call->stats)->n_models)
        {
          has[m] = recorded[m].has;
          thresholds[m] = recorded[m].p;
          mass[m] = has[m] ? recorded[m].mass : 0.0;
          continue;
        }
      has[m] = sdm_threshold (call, m, k, delta, &thresholds[m]);
      if (weights_scope == WEIGHTS_TENSOR && has[m])
        mass[m] = kept_mass (delta, n, thresholds[m]);
    }

  if (weights_scope == WEIGHTS_TENSOR)
    weights_from_mass (mass, nm, normalization, weights);
  else
    {
      const SdmStats *stats = call->stats;
      if (stats == NULL)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                       _("sdm_w: the statistics pass did not run before tensor %s"),
                       call->tensor_name);
          return FALSE;
        }
      weights_from_mass (stats->mass, MIN (nm, stats->n_models), normalization, weights);
    }
  for (int m = 0; m < nm; m++)
    total += weights[m];

  memset (out, 0, n * sizeof (float));
  if (total > 0.0)
    for (int m = 0; m < nm; m++)
      {
        const float *restrict x = call->models[m];
        float w = (float) weights[m];
        double p = thresholds[m];
        if (!has[m] || w == 0.0f)
          continue;
        cru_kernel_sdm_add (out, x, b, n, w, p);
      }
  cru_kernel_add_base (out, b, n);
  return TRUE;
}

static void
sdm_validate (const CruMethod *method, const double *params, const double *model_params,
              int n_models, GPtrArray *problems)
{
  int ps = cru_method_find_param (method, "scope");

  if (params && (int) params[ps] == SCOPE_BLOCK)
    g_ptr_array_add (problems,
                     g_strdup (_("sdm_w: scope “block” is not supported yet; use scope "
                                 "“tensor”")));
}

const CruMethod cru_method_sdm_w = {
  .name = "sdm_w",
  .label = N_("SDM-W"),
  .description = N_("Keep each model's significant changes and weight the models by how "
                    "much they changed"),
  .family = "sdm",
  .flags = CRU_METHOD_NEEDS_BASE | CRU_METHOD_STATS_PASS,
  .min_models = 1,
  .max_models = -1,
  .params = sdm_params,
  .n_params = G_N_ELEMENTS (sdm_params),
  .workspace_bytes = sdm_workspace_bytes,
  .apply = sdm_apply,
  .validate = sdm_validate,
  .stats_new = sdm_stats_new,
  .stats_accumulate = sdm_stats_accumulate,
  .stats_add_partial = sdm_stats_add_partial,
  .stats_finish = sdm_stats_finish,
  .stats_free = sdm_stats_free,
  .stats_get_weights = sdm_stats_get_weights,
  .stats_elementwise = TRUE,
  .stream_n_passes = sdm_stream_n_passes,
  .stream_state_bytes = sdm_stream_state_bytes,
  .stream_pass = sdm_stream_pass,
  .stream_pass_end = sdm_stream_pass_end,
  .stream_pass_skip = sdm_stream_pass_skip,
};
