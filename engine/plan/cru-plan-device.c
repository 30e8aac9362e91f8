/* cru-plan-device.c — where a merge runs: the device choice, the per-tensor placement of
 * method calls on the GPU or the CPU, and the VRAM they need
 *
 * The choice: the options' device (the CLI's --device), else the Output node's "device"
 * parameter ("cpu", "cuda", "auto"), else auto. Auto takes the GPU when the CUDA module
 * loads and finds a device; when the module is there but no device is, the plan says so
 * once, as a note ("CUDA: no device found — running on CPU"), and runs on the CPU; a build
 * without the module says nothing. Asking for "cuda" where there is none is an error: the
 * user asked for something that cannot happen, and a silent CPU run of a large merge could
 * take hours they did not plan for.
 *
 * The placement asks the CUDA backend, call by call, whether it takes the method on that
 * many elements (cru_cuda_fit: a kernel exists, at most 32 inputs, within the VRAM budget);
 * what it refuses runs on the CPU, and the report names the reason and a tensor.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"

#include <string.h>

/* ---- the CUDA backend used for planning ---- */

CruBackend *
_cru_plan_cuda_probe (const char **reason, gboolean *module_missing)
{
  static gsize once;
  static CruBackend *probe;
  static char *why;
  static gboolean missing;

  if (g_once_init_enter (&once))
    {
      g_autoptr(GError) error = NULL;

      probe = cru_backend_cuda_load (&error);
      if (probe == NULL)
        {
          missing = g_error_matches (error, CRU_ERROR, CRU_ERROR_NOT_FOUND);
          why = g_strdup (error ? error->message : _("CUDA: no device found — running on CPU"));
        }
      g_once_init_leave (&once, 1);
    }
  if (reason)
    *reason = why;
  if (module_missing)
    *module_missing = missing;
  return probe;
}

/* ---- the choice ---- */

static CruDevice
device_from_string (const char *s)
{
  if (s && g_ascii_strcasecmp (s, "cpu") == 0)
    return CRU_DEVICE_CPU;
  if (s && g_ascii_strcasecmp (s, "cuda") == 0)
    return CRU_DEVICE_CUDA;
  return CRU_DEVICE_AUTO;
}

void
_cru_plan_choose_device (CruCompiler *c, CruGraph *graph, guint out_node)
{
  CruPlan *plan = c->plan;
  CruDevice want = plan->options.device;
  const CruValue *v;
  const char *reason = NULL;
  gboolean missing = FALSE;
  CruBackend *probe;

  if (want == CRU_DEVICE_AUTO && (v = cru_graph_get_param (graph, out_node, "device")) != NULL)
    {
      const char *s = cru_value_resolve_string (v, "");
      want = device_from_string (s);
      if (s && *s && want == CRU_DEVICE_AUTO && g_ascii_strcasecmp (s, "auto") != 0)
        _cru_compiler_problem (c, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                               _("The output device must be “cpu”, “cuda” or “auto”"));
    }
  g_clear_pointer (&plan->device_note, g_free);
  plan->estimate.device = CRU_DEVICE_CPU;
  if (want == CRU_DEVICE_CPU)
    {
      plan->device_note = g_strdup (_("CPU (chosen)"));
      return;
    }
  probe = _cru_plan_cuda_probe (&reason, &missing);
  if (probe != NULL)
    {
      plan->estimate.device = CRU_DEVICE_CUDA;
      plan->device_note = g_strdup (probe->iface->describe (probe));
      return;
    }
  plan->device_note = g_strdup (reason);
  if (want == CRU_DEVICE_CUDA)
    _cru_compiler_problem (c, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                           missing ? _("The device is set to “cuda”, but this build of "
                                       "Crucible has no CUDA backend; choose “cpu” or “auto”")
                                   : _("The device is set to “cuda”, but no CUDA device was "
                                       "found; choose “cpu” or “auto”"));
  else if (!missing)
    _cru_compiler_problem (c, CRU_SEVERITY_INFO, out_node, 0, NULL,
                           _("CUDA: no device found — running on CPU"));
}

/* ---- placement ---- */

typedef struct {
  CruPlan    *plan;
  CruGraph   *graph;
  CruBackend *device;
  GHashTable *seen;       /* CruExpr* counted for the report */
  GHashTable *by_node;    /* node id → index into plan->placements */
  guint64     task_bytes; /* largest device call of the task being walked */
} Placer;

static CruPlacement *
placement_for (Placer *p, guint node)
{
  gpointer index;

  if (!g_hash_table_lookup_extended (p->by_node, GUINT_TO_POINTER (node), NULL, &index))
    {
      CruPlacement pl = { 0 };

      pl.node = node;
      pl.title = _cru_node_title (p->graph, node);
      pl.cpu_reason = CRU_BACKEND_FITS;
      g_array_append_val (p->plan->placements, pl);
      index = GUINT_TO_POINTER (p->plan->placements->len - 1);
      g_hash_table_insert (p->by_node, GUINT_TO_POINTER (node), index);
    }
  return &g_array_index (p->plan->placements, CruPlacement, GPOINTER_TO_UINT (index));
}

/* Mirrors the engine's evaluation (cru-engine-eval.c): a method's inputs are evaluated
 * with its own element count, except below a crop, which evaluates its child whole. */
static void
place_expr (Placer *p, CruExpr *e, guint64 count)
{
  CruBackendFit fit;

  switch (e->kind)
    {
    case CRU_EXPR_READ:
      return;
    case CRU_EXPR_CROP:
      place_expr (p, e->child, e->child->numel);
      return;
    case CRU_EXPR_METHOD:
      break;
    }
  if (e->base)
    place_expr (p, e->base, count);
  for (int i = 0; i < e->n_models; i++)
    place_expr (p, e->models[i], count);

  fit = p->device->iface->fit (p->device, e->method, e->params, e->n_models, count);
  e->on_device = fit == CRU_BACKEND_FITS;
  if (e->on_device)
    p->task_bytes = MAX (p->task_bytes,
                         p->device->iface->device_bytes_for (p->device, e->method, e->params,
                                                             e->n_models, count));
  if (!g_hash_table_add (p->seen, e))
    return;
  {
    CruPlacement *pl = placement_for (p, e->node);
    if (e->on_device)
      pl->n_device++;
    else
      {
        if (pl->n_cpu++ == 0)
          {
            pl->cpu_reason = fit;
            pl->cpu_example = g_strdup (e->name);
          }
      }
  }
}

void
_cru_plan_placement_free (CruPlan *plan)
{
  if (plan->placements)
    {
      for (guint i = 0; i < plan->placements->len; i++)
        {
          CruPlacement *pl = &g_array_index (plan->placements, CruPlacement, i);
          g_free (pl->title);
          g_free (pl->cpu_example);
        }
      g_clear_pointer (&plan->placements, g_array_unref);
    }
  g_clear_pointer (&plan->device_call_bytes, g_free);
  plan->n_device_call_bytes = 0;
}

void
_cru_plan_place (CruPlan *plan, CruGraph *graph)
{
  Placer p = { 0 };
  guint n_stats = 0, k = 0;

  _cru_plan_placement_free (plan);
  plan->vram_budget = 0;
  if (plan->estimate.device != CRU_DEVICE_CUDA
      || (p.device = _cru_plan_cuda_probe (NULL, NULL)) == NULL)
    return;
  plan->vram_budget = p.device->iface->budget (p.device);
  p.plan = plan;
  p.graph = graph;
  p.seen = g_hash_table_new (NULL, NULL);
  p.by_node = g_hash_table_new (NULL, NULL);
  plan->placements = g_array_new (FALSE, TRUE, sizeof (CruPlacement));

  for (guint s = 0; s < plan->stats_nodes->len; s++)
    n_stats += ((CruStatsNode *) g_ptr_array_index (plan->stats_nodes, s))->exprs->len;
  plan->device_call_bytes = g_new0 (guint64, plan->n_tasks + n_stats + 1);

  for (guint i = 0; i < plan->n_tasks; i++)
    {
      CruExpr *e = plan->tasks[i].expr;

      if (e->unit == 0)
        _cru_expr_finish (e);
      p.task_bytes = 0;
      place_expr (&p, e, e->unit);
      plan->device_call_bytes[k++] = p.task_bytes;
    }
  /* The statistics pass evaluates each tensor whole; its method runs on the GPU when the
   * backend and the method both have the device route. */
  for (guint s = 0; s < plan->stats_nodes->len; s++)
    {
      CruStatsNode *sn = g_ptr_array_index (plan->stats_nodes, s);
      for (guint i = 0; i < sn->exprs->len; i++)
        {
          CruExpr *e = g_ptr_array_index (sn->exprs, i);

          p.task_bytes = 0;
          if (e->base)
            place_expr (&p, e->base, e->numel);
          for (int m = 0; m < e->n_models; m++)
            place_expr (&p, e->models[m], e->numel);
          e->stats_on_device = p.device->iface->stats_partial != NULL
                               && e->method->stats_add_partial != NULL
                               && p.device->iface->fit (p.device, e->method, e->params,
                                                        e->n_models, e->numel)
                                  == CRU_BACKEND_FITS;
          if (e->stats_on_device)
            p.task_bytes = MAX (p.task_bytes,
                                p.device->iface->device_bytes_for (p.device, e->method,
                                                                   e->params, e->n_models,
                                                                   e->numel));
          plan->device_call_bytes[k++] = p.task_bytes;
        }
    }
  plan->n_device_call_bytes = k;
  g_hash_table_unref (p.seen);
  g_hash_table_unref (p.by_node);

  /* When the GPU takes none of the calls, the CPU runs the merge (and the engine does not
   * even open the device); the report still says why. */
  {
    gboolean any = FALSE;
    for (guint i = 0; i < plan->placements->len && !any; i++)
      any = g_array_index (plan->placements, CruPlacement, i).n_device > 0;
    for (guint i = 0; i < k && !any; i++)
      any = plan->device_call_bytes[i] > 0;
    if (!any)
      {
        g_autofree char *gpu = plan->device_note;
        plan->estimate.device = CRU_DEVICE_CPU;
        plan->device_note = g_strdup_printf (_("CPU: %s takes none of these tensors"), gpu);
      }
  }
}

/* ---- reports ---- */

void
_cru_plan_placement_to_json (CruPlan *plan, JsonBuilder *b)
{
  json_builder_set_member_name (b, "placement");
  json_builder_begin_array (b);
  for (guint i = 0; plan->placements && i < plan->placements->len; i++)
    {
      const CruPlacement *pl = &g_array_index (plan->placements, CruPlacement, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "node");
      json_builder_add_int_value (b, pl->node);
      json_builder_set_member_name (b, "title");
      json_builder_add_string_value (b, pl->title);
      json_builder_set_member_name (b, "gpu_tensors");
      json_builder_add_int_value (b, pl->n_device);
      json_builder_set_member_name (b, "cpu_tensors");
      json_builder_add_int_value (b, pl->n_cpu);
      json_builder_set_member_name (b, "cpu_reason");
      if (pl->n_cpu)
        json_builder_add_string_value (b, cru_backend_fit_to_string (pl->cpu_reason));
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "cpu_example");
      if (pl->cpu_example)
        json_builder_add_string_value (b, pl->cpu_example);
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

void
_cru_plan_placement_to_text (CruPlan *plan, GString *s)
{
  const CruEstimate *est = &plan->estimate;

  if (plan->placements == NULL)
    return;
  if (est->device == CRU_DEVICE_CUDA)
    {
      g_autofree char *peak = g_format_size (est->peak_vram_bytes);
      g_autofree char *budget = g_format_size (plan->vram_budget);
      g_string_append_printf (s, _("VRAM:    about %s peak; %s may be used\n"), peak, budget);
    }
  for (guint i = 0; plan->placements && i < plan->placements->len; i++)
    {
      const CruPlacement *pl = &g_array_index (plan->placements, CruPlacement, i);

      g_string_append (s, "         ");
      if (pl->n_cpu == 0)
        g_string_append_printf (s, ngettext ("%s: %u tensor on the GPU",
                                             "%s: all %u tensors on the GPU", pl->n_device),
                                pl->title, pl->n_device);
      else
        /* TRANSLATORS: "ties (node 4): 290 tensors on the GPU, 2 on the CPU (larger than
         * the GPU memory budget: model.embed_tokens.weight, …)" */
        g_string_append_printf (s, _("%s: %u tensors on the GPU, %u on the CPU (%s: %s%s)"),
                                pl->title, pl->n_device, pl->n_cpu,
                                cru_backend_fit_to_string (pl->cpu_reason), pl->cpu_example,
                                pl->n_cpu > 1 ? ", …" : "");
      g_string_append_c (s, '\n');
    }
}

const char *
cru_plan_get_device_note (CruPlan *plan)
{
  g_return_val_if_fail (plan != NULL, NULL);
  return plan->device_note;
}
