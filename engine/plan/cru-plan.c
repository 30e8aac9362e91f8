/* cru-plan.c — compile a graph into a validated plan: node checks, streams, output checks,
 * the output layout and the task list.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"
#include "cru-backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

static const char *const output_params[] = {
  "dtype", "shard_size", "tokenizer_source", "chat_template", "device", "copy_tokenizer", NULL
};

void
cru_plan_options_init (CruPlanOptions *options)
{
  memset (options, 0, sizeof *options);
  options->device = CRU_DEVICE_AUTO;
  options->out_dtype = CRU_DTYPE_INVALID;
  options->copy_tokenizer = -1;
}

void
_cru_problem_free (gpointer data)
{
  CruProblem *p = data;

  g_free (p->port);
  g_free (p->message);
  g_free (p->param);
  g_free (p);
}

CruProblem *
_cru_problem_new (CruSeverity severity, guint node, guint link, const char *port,
                  const char *message)
{
  CruProblem *p = g_new0 (CruProblem, 1);

  p->severity = severity;
  p->node = node;
  p->link = link;
  p->port = g_strdup (port);
  p->message = g_strdup (message);
  return p;
}

void
_cru_plan_add_problem (CruPlan *plan, CruSeverity severity, guint node, guint link,
                       const char *port, const char *format, ...)
{
  CruProblem *p = g_new0 (CruProblem, 1);
  va_list args;

  va_start (args, format);
  p->message = g_strdup_vprintf (format, args);
  va_end (args);
  p->severity = severity;
  p->node = node;
  p->link = link;
  p->port = g_strdup (port);
  g_ptr_array_add (plan->problems, p);
}

static CruPlan *
plan_new (const CruPlanOptions *options)
{
  CruPlan *plan = g_new0 (CruPlan, 1);

  plan->ref_count = 1;
  plan->problems = g_ptr_array_new_with_free_func (_cru_problem_free);
  plan->run_warnings = g_ptr_array_new_with_free_func (_cru_problem_free);
  g_mutex_init (&plan->run_lock);
  if (options)
    plan->options = *options;
  else
    cru_plan_options_init (&plan->options);
  plan->options.out_dir = NULL;
  plan->models = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_model_unref);
  plan->model_nodes = g_ptr_array_new ();
  plan->stats_nodes = g_ptr_array_new ();
  plan->card_inputs = g_ptr_array_new_with_free_func (g_free);
  plan->vocab_size = -1;
  return plan;
}

CruPlan *
cru_plan_ref (CruPlan *plan)
{
  g_atomic_int_inc (&plan->ref_count);
  return plan;
}

void
cru_plan_unref (CruPlan *plan)
{
  if (plan == NULL || !g_atomic_int_dec_and_test (&plan->ref_count))
    return;
  for (guint i = 0; i < plan->n_tasks; i++)
    {
      g_free (plan->tasks[i].name);
      _cru_expr_unref (plan->tasks[i].expr);
    }
  g_free (plan->tasks);
  g_free (plan->order);
  for (guint i = 0; i < plan->stats_nodes->len; i++)
    {
      CruStatsNode *sn = g_ptr_array_index (plan->stats_nodes, i);
      g_ptr_array_unref (sn->exprs);
      if (sn->stats && sn->method->stats_free)
        sn->method->stats_free (sn->stats);
      g_free (sn->weights);
      g_free (sn);
    }
  g_ptr_array_unref (plan->stats_nodes);
  g_clear_pointer (&plan->layout, cru_layout_free);
  _cru_plan_placement_free (plan);
  g_free (plan->device_note);
  g_ptr_array_unref (plan->problems);
  g_ptr_array_unref (plan->models);
  g_ptr_array_unref (plan->model_nodes);
  g_ptr_array_unref (plan->card_inputs);
  g_free (plan->out_dir);
  g_free (plan->tokenizer_source);
  g_free (plan->chat_template);
  g_free (plan->recipe);
  g_free (plan->mergekit_yaml);
  g_free (plan->mergekit_error);
  g_free (plan->card_methods);
  g_clear_pointer (&plan->moe, cru_moe_config_free);
  g_free (plan->moe_title);
  g_clear_pointer (&plan->moe_models, g_ptr_array_unref);
  cru_moe_cost_clear (&plan->moe_cost);
  g_ptr_array_unref (plan->run_warnings);
  g_mutex_clear (&plan->run_lock);
  g_free (plan);
}

gboolean
cru_plan_is_runnable (CruPlan *plan)
{
  for (guint i = 0; i < plan->problems->len; i++)
    if (((CruProblem *) g_ptr_array_index (plan->problems, i))->severity == CRU_SEVERITY_ERROR)
      return FALSE;
  return plan->n_tasks > 0 || plan->moe != NULL;
}

GPtrArray *cru_plan_get_problems (CruPlan *plan) { return plan->problems; }
const CruEstimate *cru_plan_get_estimate (CruPlan *plan) { return &plan->estimate; }
const char *cru_plan_get_output_dir (CruPlan *plan) { return plan->out_dir; }
CruDType cru_plan_get_output_dtype (CruPlan *plan) { return plan->out_dtype; }
guint cru_plan_get_n_experts (CruPlan *plan) { return plan->moe ? plan->moe->experts->len : 0; }
GPtrArray *
cru_plan_get_run_warnings (CruPlan *plan)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func (_cru_problem_free);

  g_return_val_if_fail (plan != NULL, copy);
  g_mutex_lock (&plan->run_lock);
  for (guint i = 0; i < plan->run_warnings->len; i++)
    {
      const CruProblem *p = g_ptr_array_index (plan->run_warnings, i);
      g_ptr_array_add (copy, _cru_problem_new (p->severity, p->node, p->link, p->port,
                                               p->message));
    }
  g_mutex_unlock (&plan->run_lock);
  return copy;
}

void
_cru_plan_set_run_warnings (CruPlan *plan, GPtrArray *warnings)
{
  GPtrArray *old;

  if (warnings == NULL)
    warnings = g_ptr_array_new_with_free_func (_cru_problem_free);
  g_mutex_lock (&plan->run_lock);
  old = plan->run_warnings;
  plan->run_warnings = warnings;
  g_mutex_unlock (&plan->run_lock);
  g_ptr_array_unref (old);
}

guint
cru_plan_get_n_tensors (CruPlan *plan)
{
  if (plan->moe)
    return plan->moe_cost.tensors->len;
  return plan->n_tasks;
}

const char *
cru_plan_get_tensor_name (CruPlan *plan, guint index)
{
  g_return_val_if_fail (index < cru_plan_get_n_tensors (plan), NULL);
  if (plan->moe)
    return ((CruMoeTensor *) g_ptr_array_index (plan->moe_cost.tensors, index))->name;
  return plan->tasks[index].name;
}

const double *
cru_plan_get_node_weights (CruPlan *plan, guint node, guint *n_weights)
{
  for (guint i = 0; i < plan->stats_nodes->len; i++)
    {
      CruStatsNode *sn = g_ptr_array_index (plan->stats_nodes, i);
      if (sn->node == node && sn->weights)
        {
          if (n_weights)
            *n_weights = sn->n_models;
          return sn->weights;
        }
    }
  if (n_weights)
    *n_weights = 0;
  return NULL;
}

/* ---- node checks (no weights, no streams) ---- */

static guint
edit_distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *row = g_new (guint, lb + 1);

  for (gsize j = 0; j <= lb; j++)
    row[j] = j;
  for (gsize i = 1; i <= la; i++)
    {
      guint diag = row[0];
      row[0] = i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint up = row[j];
          row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), diag + (a[i - 1] != b[j - 1]));
          diag = up;
        }
    }
  return row[lb];
}

void
_cru_plan_unknown_param (CruCompiler *c, guint node, guint link, const char *title, const char *name,
               const char *const *known, guint n_known, const char *what)
{
  const char *best = NULL;
  guint best_d = G_MAXUINT;
  g_autofree char *msg = NULL;
  guint n_before;

  for (guint i = 0; i < n_known; i++)
    {
      guint d = edit_distance (name, known[i]);
      if (d < best_d)
        {
          best_d = d;
          best = known[i];
        }
    }
  if (best && best_d <= MAX (2u, (guint) strlen (name) / 3))
    msg = g_strdup_printf (_("%s: unknown parameter “%s” for %s — did you mean “%s”? It is "
                             "ignored"), title, name, what, best);
  else
    msg = g_strdup_printf (_("%s: unknown parameter “%s” for %s; it is ignored"),
                           title, name, what);
  n_before = c->plan->problems->len;
  _cru_compiler_problem (c, CRU_SEVERITY_WARNING, node, link, NULL, msg);
  if (c->plan->problems->len > n_before)   /* not a repeat */
    {
      CruProblem *p = g_ptr_array_index (c->plan->problems, c->plan->problems->len - 1);
      p->param = g_strdup (name);
    }
}

typedef struct {
  CruCompiler        *c;
  const CruMethod    *method;
  const CruParamSpec *spec;
  guint               node, link;
} RangeCheck;

static void
range_check_number (double v, gpointer data)
{
  RangeCheck *rc = data;
  g_autofree char *message = NULL;

  if (!cru_param_spec_check (rc->method, rc->spec, v, &message))
    _cru_compiler_problem (rc->c, CRU_SEVERITY_ERROR, rc->node, rc->link, NULL, message);
}

/* The first text in a value that should hold only numbers ("weight: heavy"), or NULL. */
static const char *
find_text (const CruValue *v)
{
  if (v->kind == CRU_VALUE_STRING)
    return v->string;
  if (v->kind == CRU_VALUE_STRINGS)
    return v->strings && v->strings[0] ? v->strings[0] : "";
  if (v->kind == CRU_VALUE_FILTERED)
    for (guint i = 0; i < v->filters->len; i++)
      {
        const CruFilterEntry *e = g_ptr_array_index (v->filters, i);
        const char *s = find_text (e->value);
        if (s)
          return s;
      }
  return NULL;
}

static void
check_params (CruCompiler *c, const CruMethod *method, guint node, guint link,
              GHashTable *params, const char *title)
{
  GHashTableIter iter;
  gpointer key, value;
  g_autofree const char **known = g_new0 (const char *, method->n_params + 1);

  for (int p = 0; p < method->n_params; p++)
    known[p] = method->params[p].name;
  if (params == NULL)
    return;
  g_hash_table_iter_init (&iter, params);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      int p = cru_method_find_param (method, key);
      const CruValue *v = value;
      RangeCheck rc = { c, method, NULL, node, link };

      if (p < 0)
        {
          _cru_plan_unknown_param (c, node, link, title, key, known, method->n_params,
                                   method->name);
          continue;
        }
      rc.spec = &method->params[p];
      if (rc.spec->type == CRU_PARAM_ENUM || rc.spec->type == CRU_PARAM_BOOL)
        {
          const char *s = cru_value_resolve_string (v, "");
          if (s && rc.spec->type == CRU_PARAM_ENUM && cru_param_spec_find_choice (rc.spec, s) < 0)
            {
              g_autofree char *choices = g_strjoinv (", ", (char **) rc.spec->choices);
              g_autofree char *msg =
                g_strdup_printf (_("%s: %s must be one of %s, got “%s”"), title, (const char *) key, choices, s);
              _cru_compiler_problem (c, CRU_SEVERITY_ERROR, node, link, NULL, msg);
            }
          if (s)
            continue;
        }
      else if (find_text (v) != NULL)
        {
          g_autofree char *msg = g_strdup_printf (_("%s: %s should be a number, got “%s”"), title,
                                                  (const char *) key, find_text (v));
          _cru_compiler_problem (c, CRU_SEVERITY_ERROR, node, link, NULL, msg);
          continue;
        }
      cru_value_foreach_number (v, range_check_number, &rc);
    }
}

static void
check_node (CruCompiler *c, const CruNode *n)
{
  g_autoptr(GPtrArray) links = cru_graph_links_to (c->graph, n->id);
  g_autofree char *title = _cru_node_title (c->graph, n->id);
  guint n_base = 0, n_model = 0, n_slice = 0;

  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *l = g_ptr_array_index (links, i);
      if (g_str_equal (l->to_port, CRU_PORT_BASE))
        n_base++;
      else if (g_str_equal (l->to_port, CRU_PORT_MODEL))
        n_model++;
      else if (g_str_equal (l->to_port, CRU_PORT_SLICE))
        n_slice++;
    }

  switch (n->kind)
    {
    case CRU_NODE_METHOD:
      {
        const CruMethod *method = n->method ? cru_method_lookup (n->method) : NULL;
        g_autofree char *msg = NULL;

        if (method == NULL)
          {
            msg = g_strdup_printf (_("%s: unknown merge method “%s”"), title,
                                   n->method ? n->method : "");
            _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, NULL, msg);
            return;
          }
        if ((method->flags & CRU_METHOD_NEEDS_BASE) && n_base == 0)
          {
            msg = g_strdup_printf (_("%s: %s needs a base model; connect one to the “base” "
                                     "input"), title, method->name);
            _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, CRU_PORT_BASE, msg);
            g_clear_pointer (&msg, g_free);
          }
        if ((int) n_model < method->min_models)
          {
            msg = g_strdup_printf (_("%s: %s needs at least %d model inputs besides the base, "
                                     "got %u"), title, method->name, method->min_models, n_model);
            _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, CRU_PORT_MODEL, msg);
            g_clear_pointer (&msg, g_free);
          }
        if (method->max_models >= 0 && (int) n_model > method->max_models)
          {
            msg = g_strdup_printf (_("%s: %s takes at most %d model inputs besides the base, "
                                     "got %u"), title, method->name, method->max_models, n_model);
            _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, CRU_PORT_MODEL, msg);
          }
        check_params (c, method, n->id, 0, n->params, title);
        for (guint i = 0; i < links->len; i++)
          {
            const CruLink *l = g_ptr_array_index (links, i);
            check_params (c, method, n->id, l->id, l->params, title);
          }
        break;
      }
    case CRU_NODE_SLICE:
    case CRU_NODE_OUTPUT:
      if (n_model == 0)
        {
          g_autofree char *msg =
            g_strdup_printf (_("%s: nothing is connected to its “model” input"), title);
          _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, CRU_PORT_MODEL, msg);
        }
      if (n->kind == CRU_NODE_OUTPUT && n->params)
        {
          GHashTableIter iter;
          gpointer key;

          g_hash_table_iter_init (&iter, n->params);
          while (g_hash_table_iter_next (&iter, &key, NULL))
            if (!g_strv_contains (output_params, key))
              _cru_plan_unknown_param (c, n->id, 0, title, key, output_params,
                             g_strv_length ((char **) output_params), _("the output"));
        }
      break;
    case CRU_NODE_STACK:
      if (n_slice == 0)
        {
          g_autofree char *msg =
            g_strdup_printf (_("%s: nothing is connected to its “slice” input"), title);
          _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, CRU_PORT_SLICE, msg);
        }
      break;
    default:
      break;
    }
}

static void
collect_reachable (CruGraph *graph, guint node, GHashTable *seen)
{
  g_autoptr(GPtrArray) links = NULL;

  if (!g_hash_table_add (seen, GUINT_TO_POINTER (node)))
    return;
  links = cru_graph_links_to (graph, node);
  for (guint i = 0; i < links->len; i++)
    collect_reachable (graph, ((const CruLink *) g_ptr_array_index (links, i))->from_node, seen);
}

/* ---- output settings ---- */

static const char *
output_string (CruGraph *graph, guint node, const char *name)
{
  const CruValue *v = cru_graph_get_param (graph, node, name);
  return v ? cru_value_resolve_string (v, "") : NULL;
}

static gboolean
output_number (CruGraph *graph, guint node, const char *name, double *out)
{
  const CruValue *v = cru_graph_get_param (graph, node, name);
  return v && cru_value_resolve (v, "", 0, out);
}

/* @path made absolute with symbolic links resolved in the part that exists, so that a link
 * to an input model is recognised as that model. */
static char *
resolve_path (const char *path)
{
  g_autofree char *head = g_canonicalize_filename (path, NULL);
  g_autoptr(GString) tail = g_string_new (NULL);
  char *real;

  while ((real = realpath (head, NULL)) == NULL)
    {
      g_autofree char *up = g_path_get_dirname (head);
      g_autofree char *base = g_path_get_basename (head);

      if (g_str_equal (up, head))
        return g_canonicalize_filename (path, NULL);
      g_string_prepend (tail, base);
      g_string_prepend_c (tail, '/');
      g_free (head);
      head = g_steal_pointer (&up);
    }
  if (tail->len > 0)
    {
      char *joined = g_strconcat (g_str_equal (real, "/") ? "" : real, tail->str, NULL);
      free (real);
      return joined;
    }
  {
    char *copy = g_strdup (real);
    free (real);
    return copy;
  }
}

static gboolean
path_is_inside_or_equal (const char *inner, const char *outer)
{
  gsize n = strlen (outer);

  return strncmp (inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

/* Returns FALSE when the output's filesystem cannot be written at all. */
static gboolean
check_output_dir (CruCompiler *c, guint out_node)
{
  g_autofree char *out_real = resolve_path (c->plan->out_dir);
  g_autoptr(GPtrArray) leftovers = cru_output_dir_find_stale (c->plan->out_dir);
  g_autofree char *shown = g_filename_display_name (c->plan->out_dir);
  CruPlan *plan = c->plan;
  g_autofree char *parent = NULL;
  g_autofree char *parent_shown = NULL;
  gboolean writable = TRUE;
  gboolean overlaps = FALSE;

  if (g_file_test (plan->out_dir, G_FILE_TEST_EXISTS))
    {
      if (!g_file_test (plan->out_dir, G_FILE_TEST_IS_DIR))
        _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                               _("The output “%s” is a file, not a folder; choose a folder"),
                               shown);
      else if (!plan->options.overwrite)
        _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                               _("The output folder “%s” already exists; choose another folder "
                                 "or allow replacing it (--overwrite)"), shown);
    }
  parent = g_path_get_dirname (plan->out_dir);
  while (!g_file_test (parent, G_FILE_TEST_EXISTS))
    {
      char *up = g_path_get_dirname (parent);
      g_free (parent);
      parent = up;
    }

  for (guint i = 0; i < leftovers->len; i++)
    {
      g_autofree char *left = g_filename_display_name (leftovers->pdata[i]);

      if (strstr (left, ".crucible-old-") && !g_file_test (plan->out_dir, G_FILE_TEST_EXISTS))
        _cru_plan_add_problem (plan, CRU_SEVERITY_INFO, out_node, 0, NULL,
                               _("An interrupted run moved the previous model to “%s”; it is "
                                 "put back in place when this run starts"), left);
      else
        _cru_plan_add_problem (plan, CRU_SEVERITY_INFO, out_node, 0, NULL,
                               _("An interrupted run left “%s” behind; it is cleaned up when "
                                 "this run starts"), left);
    }

  for (guint i = 0; i < plan->models->len; i++)
    {
      CruModel *m = g_ptr_array_index (plan->models, i);
      g_autofree char *mp = resolve_path (cru_model_get_path (m));
      guint node = GPOINTER_TO_UINT (g_ptr_array_index (plan->model_nodes, i));

      if (path_is_inside_or_equal (out_real, mp))
        _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                               _("The output folder “%s” is the input model %s or inside it; "
                                 "choose a folder outside the input models"),
                               shown, cru_model_get_name (m));
      else if (plan->options.overwrite && path_is_inside_or_equal (mp, out_real))
        _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, node, 0, NULL,
                               _("The input model %s is inside the output folder “%s”, which "
                                 "would be replaced; choose another output folder"),
                               cru_model_get_name (m), shown);
      else
        continue;
      overlaps = TRUE;
    }
  /* access() says yes to root on read-only or virtual filesystems: try for real (but never
   * inside an input model). */
  if (!overlaps)
    {
      g_autofree char *probe = g_build_filename (parent, ".crucible-probe-XXXXXX", NULL);

      parent_shown = g_filename_display_name (parent);
      if (g_mkdtemp (probe) == NULL && (writable = FALSE) == FALSE)
        _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                               _("Cannot write into “%s” (%s); choose an output folder you can "
                                 "write to"), parent_shown, g_strerror (errno));
      else
        g_rmdir (probe);
    }
  return writable;
}

static int
compare_tasks (gconstpointer a, gconstpointer b)
{
  return strcmp (((const CruPlanTask *) a)->name, ((const CruPlanTask *) b)->name);
}

static CruPlan *current_sort_plan;

static int
compare_order (gconstpointer a, gconstpointer b)
{
  const CruPlanTask *ta = &current_sort_plan->tasks[*(const guint *) a];
  const CruPlanTask *tb = &current_sort_plan->tasks[*(const guint *) b];
  guint64 ca = ta->expr->numel * (1 + ta->expr->read_bytes / MAX (ta->expr->numel, 1));
  guint64 cb = tb->expr->numel * (1 + tb->expr->read_bytes / MAX (tb->expr->numel, 1));

  if (ca != cb)
    return ca > cb ? -1 : 1;
  return strcmp (ta->name, tb->name);
}

static void
build_tasks (CruCompiler *c, CruStream *out)
{
  CruPlan *plan = c->plan;
  GHashTableIter iter;
  gpointer key, value;
  guint n = 0;
  g_autoptr(GError) error = NULL;
  G_LOCK_DEFINE_STATIC (sort);

  plan->n_tasks = g_hash_table_size (out->entries);
  plan->tasks = g_new0 (CruPlanTask, plan->n_tasks);
  g_hash_table_iter_init (&iter, out->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      CruStreamEntry *e = value;
      plan->tasks[n].name = g_strdup (key);
      plan->tasks[n].expr = _cru_expr_ref (e->expr);
      if (e->role == CRU_ROLE_EMBEDDING && e->expr->ndim >= 1)
        plan->vocab_size = e->expr->shape[0];
      if (e->role == CRU_ROLE_LM_HEAD)
        plan->has_lm_head = TRUE;
      n++;
    }
  qsort (plan->tasks, plan->n_tasks, sizeof (CruPlanTask), compare_tasks);

  plan->layout = cru_layout_new (plan->shard_size);
  for (guint i = 0; i < plan->n_tasks; i++)
    {
      CruPlanTask *t = &plan->tasks[i];
      /* The GPU takes whole tensors: streaming in chunks is for CPU plans. */
      if (plan->estimate.device == CRU_DEVICE_CUDA)
        _cru_expr_finish (t->expr);
      else
        _cru_expr_finish_streaming (t->expr);
      t->layout_index = cru_layout_add (plan->layout, t->name, plan->out_dtype,
                                        t->expr->ndim, t->expr->shape);
      t->out_bytes = t->expr->numel * cru_dtype_size (plan->out_dtype);
      t->arena_bytes = ((t->expr->unit * sizeof (float) + CRU_PLAN_ALIGN - 1)
                        & ~(guint64) (CRU_PLAN_ALIGN - 1)) + t->expr->stream_bytes
                       + t->expr->scratch_bytes;
      plan->arena_bytes = MAX (plan->arena_bytes, t->arena_bytes);
    }
  cru_layout_set_metadata (plan->layout, "crucible_version", CRU_VERSION);
  if (!cru_layout_finish (plan->layout, &error))
    _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, plan->output_node, 0, NULL, "%s",
                           error->message);

  plan->order = g_new (guint, plan->n_tasks);
  for (guint i = 0; i < plan->n_tasks; i++)
    plan->order[i] = i;
  G_LOCK (sort);
  current_sort_plan = plan;
  qsort (plan->order, plan->n_tasks, sizeof (guint), compare_order);
  G_UNLOCK (sort);
}

static void
describe_recipe (CruCompiler *c, GHashTable *reachable)
{
  CruPlan *plan = c->plan;
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (c->graph);
  GString *methods = g_string_new (NULL);

  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *n = g_ptr_array_index (nodes, i);
      g_autofree char *title = NULL;

      if (!g_hash_table_contains (reachable, GUINT_TO_POINTER (n->id)))
        continue;
      title = _cru_node_title (c->graph, n->id);
      if (n->kind == CRU_NODE_MODEL)
        g_ptr_array_add (plan->card_inputs, g_strdup_printf ("%s — `%s`", title,
                                                             n->path ? n->path : "?"));
      else if (n->kind == CRU_NODE_METHOD || n->kind == CRU_NODE_SLICE)
        {
          GHashTableIter iter;
          gpointer key, value;
          g_autoptr(GPtrArray) links = cru_graph_links_to (c->graph, n->id);

          g_string_append_printf (methods, "- **%s**", title);
          if (n->kind == CRU_NODE_METHOD)
            g_string_append_printf (methods, " (%s)", n->method ? n->method : "?");
          if (n->params && g_hash_table_size (n->params))
            {
              g_string_append (methods, ":");
              g_hash_table_iter_init (&iter, n->params);
              while (g_hash_table_iter_next (&iter, &key, &value))
                {
                  g_autofree char *d = cru_value_to_display (value);
                  g_string_append_printf (methods, " %s = %s;", (char *) key, d);
                }
            }
          g_string_append_c (methods, '\n');
          for (guint k = 0; k < links->len; k++)
            {
              const CruLink *l = g_ptr_array_index (links, k);
              g_autofree char *from = _cru_node_title (c->graph, l->from_node);
              g_string_append_printf (methods, "  - %s ← %s", l->to_port, from);
              if (l->params && g_hash_table_size (l->params))
                {
                  g_hash_table_iter_init (&iter, l->params);
                  while (g_hash_table_iter_next (&iter, &key, &value))
                    {
                      g_autofree char *d = cru_value_to_display (value);
                      g_string_append_printf (methods, " %s = %s;", (char *) key, d);
                    }
                }
              g_string_append_c (methods, '\n');
            }
        }
    }
  plan->card_methods = g_string_free (methods, FALSE);
}

static void
compile (CruPlan *plan, CruGraph *graph, const CruPlanOptions *options,
         GCancellable *cancellable)
{
  CruCompiler c = { 0 };
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);
  g_autoptr(GHashTable) reachable = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint out_node = 0, n_outputs = 0, moe_node;
  CruStream *out = NULL;
  const char *s;
  double d;

  c.plan = plan;
  c.graph = graph;
  c.cancellable = cancellable;
  c.streams = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) _cru_stream_free);
  c.models = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) cru_model_unref);
  c.messages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *n = g_ptr_array_index (nodes, i);
      if (n->kind == CRU_NODE_OUTPUT)
        {
          if (n_outputs++ == 0)
            out_node = n->id;
        }
    }
  if (n_outputs == 0)
    {
      _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, 0, 0, NULL,
                             _("The graph has no Output node; add one and connect the merge "
                               "to it"));
      goto done;
    }
  if (n_outputs > 1)
    _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, 0, 0, NULL,
                           _("The graph has %u Output nodes; only one can run at a time — "
                             "remove or disconnect the others"), n_outputs);
  plan->output_node = out_node;

  collect_reachable (graph, out_node, reachable);
  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *n = g_ptr_array_index (nodes, i);
      if (g_hash_table_contains (reachable, GUINT_TO_POINTER (n->id)))
        check_node (&c, n);
      else if (n->kind != CRU_NODE_OUTPUT)
        {
          g_autofree char *t = _cru_node_title (graph, n->id);
          _cru_plan_add_problem (plan, CRU_SEVERITY_INFO, n->id, 0, NULL,
                                 _("%s is not connected to the output; it is ignored"), t);
        }
    }

  /* A mixture of experts is built from whole models, not streamed like a merge. */
  moe_node = _cru_plan_moe_node (graph, out_node);
  if (moe_node)
    _cru_plan_moe_check (&c, moe_node, out_node);
  else
    out = _cru_compile_stream (&c, out_node);

  /* Architecture families must agree (a MoE checks its inputs against its base). */
  for (guint i = 1; !moe_node && i < plan->models->len; i++)
    {
      CruModel *a = g_ptr_array_index (plan->models, 0);
      CruModel *b = g_ptr_array_index (plan->models, i);
      if (!cru_arch_compatible (cru_model_get_arch (a), cru_model_get_arch (b)))
        _cru_plan_add_problem (plan,
                               plan->options.allow_crimes ? CRU_SEVERITY_WARNING
                                                          : CRU_SEVERITY_ERROR,
                               GPOINTER_TO_UINT (g_ptr_array_index (plan->model_nodes, i)), 0,
                               NULL,
                               plan->options.allow_crimes
                                 ? _("%s is a %s model and %s a %s model; mixing them was "
                                     "allowed (--allow-crimes)")
                                 : _("%s is a %s model and %s a %s model; these families do "
                                     "not mix (allow it with --allow-crimes at your own risk)"),
                               cru_model_get_name (b), cru_arch_get_label (cru_model_get_arch (b)),
                               cru_model_get_name (a), cru_arch_get_label (cru_model_get_arch (a)));
    }

  /* Output settings. */
  plan->out_dir = g_strdup (options && options->out_dir ? options->out_dir
                            : cru_graph_get_node (graph, out_node)->path);
  if (plan->out_dir == NULL || *plan->out_dir == '\0')
    {
      g_clear_pointer (&plan->out_dir, g_free);
      _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                             _("No output folder chosen; set the Output node's folder"));
    }
  else
    {
      char *abs = g_canonicalize_filename (plan->out_dir, NULL);
      g_free (plan->out_dir);
      plan->out_dir = abs;
    }

  plan->out_dtype = plan->options.out_dtype;
  if (plan->out_dtype == CRU_DTYPE_INVALID
      && (s = output_string (graph, out_node, "dtype")) != NULL)
    {
      plan->out_dtype = cru_dtype_from_user_string (s);
      if (plan->out_dtype != CRU_DTYPE_F32 && plan->out_dtype != CRU_DTYPE_F16
          && plan->out_dtype != CRU_DTYPE_BF16)
        {
          _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                                 _("Output dtype “%s” is not supported; use bfloat16, float16 "
                                   "or float32"), s);
          plan->out_dtype = CRU_DTYPE_INVALID;
        }
    }
  if (plan->out_dtype == CRU_DTYPE_INVALID && out && out->config)
    plan->out_dtype = cru_model_get_dtype (out->config);
  if (plan->out_dtype == CRU_DTYPE_INVALID && plan->moe)
    plan->out_dtype = cru_model_get_dtype (plan->config_source);
  if (plan->out_dtype != CRU_DTYPE_F32 && plan->out_dtype != CRU_DTYPE_F16
      && plan->out_dtype != CRU_DTYPE_BF16)
    plan->out_dtype = CRU_DTYPE_F32;

  plan->shard_size = plan->options.shard_size;
  if (plan->shard_size == 0 && output_number (graph, out_node, "shard_size", &d) && d >= 1)
    plan->shard_size = (guint64) d;
  if (plan->shard_size == 0)
    plan->shard_size = CRU_DEFAULT_SHARD_SIZE;

  plan->copy_tokenizer = plan->options.copy_tokenizer;
  if (plan->copy_tokenizer < 0)
    plan->copy_tokenizer = !output_number (graph, out_node, "copy_tokenizer", &d) || d != 0;
  s = output_string (graph, out_node, "tokenizer_source");
  plan->tokenizer_source = g_strdup (s ? s : "base");
  s = output_string (graph, out_node, "chat_template");
  plan->chat_template = g_strdup (s);

  if (moe_node)
    _cru_plan_moe_device (&c, out_node);
  else
    _cru_plan_choose_device (&c, graph, out_node);

  if (moe_node)
    _cru_plan_moe_finish (&c);
  else if (out)
    {
      plan->config_source = out->config;
      plan->n_layers = out->n_layers;
      build_tasks (&c, out);
      plan->tokenizer_model = _cru_plan_choose_tokenizer (plan);
    }
  else if (cru_plan_is_runnable (plan))
    _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                           _("Nothing to merge: the output receives no tensors"));

  if (plan->out_dir)
    {
      describe_recipe (&c, reachable);
      plan->recipe = cru_graph_save_data (graph, plan->out_dir);
      plan->mergekit_yaml = cru_graph_export_mergekit (graph, plan->out_dir, &error);
      if (plan->mergekit_yaml == NULL)
        plan->mergekit_error = g_strdup (error ? error->message : "");
    }
  _cru_plan_place (plan, graph);
  if (moe_node)
    _cru_plan_estimate_moe (plan);
  else
    _cru_plan_estimate (plan);
  if (plan->out_dir)
    {
      if (check_output_dir (&c, out_node)
          && plan->estimate.output_bytes > plan->estimate.disk_free_bytes)
        {
          g_autofree char *need = g_format_size (plan->estimate.output_bytes);
          g_autofree char *have = g_format_size (plan->estimate.disk_free_bytes);
          g_autofree char *parent = g_path_get_dirname (plan->out_dir);
          g_autofree char *parent_shown = g_filename_display_name (parent);
          _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, out_node, 0, NULL,
                                 _("Not enough disk space in %s for the output: it needs %s but "
                                   "only %s is free there; free some space or choose another "
                                   "folder"), parent_shown, need, have);
        }
    }

done:
  /* keep config_source alive: it is one of plan->models */
  g_hash_table_unref (c.streams);
  g_hash_table_unref (c.models);
  g_hash_table_unref (c.messages);
}

CruPlan *
cru_plan_compile (CruGraph *graph, const CruPlanOptions *options, GCancellable *cancellable,
                  GError **error)
{
  CruPlan *plan;

  g_return_val_if_fail (CRU_IS_GRAPH (graph), NULL);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  plan = plan_new (options);
  compile (plan, graph, options, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      cru_plan_unref (plan);
      return NULL;
    }
  return plan;
}

typedef struct {
  CruGraph      *graph;
  CruPlanOptions options;
  char          *out_dir;
} AsyncData;

static void
async_data_free (AsyncData *data)
{
  g_clear_object (&data->graph);
  g_free (data->out_dir);
  g_free (data);
}

static void
compile_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  AsyncData *data = task_data;
  GError *error = NULL;
  CruPlan *plan = cru_plan_compile (data->graph, &data->options, cancellable, &error);

  if (plan)
    g_task_return_pointer (task, plan, (GDestroyNotify) cru_plan_unref);
  else
    g_task_return_error (task, error);
}

void
cru_plan_compile_async (CruGraph *graph, const CruPlanOptions *options,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  AsyncData *data = g_new0 (AsyncData, 1);
  g_autofree char *text = cru_graph_save_data (graph, NULL);
  g_autoptr(GError) error = NULL;

  data->graph = cru_graph_new ();
  if (!cru_graph_load_data (data->graph, text, -1, NULL, &error))
    {
      async_data_free (data);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (options)
    data->options = *options;
  else
    cru_plan_options_init (&data->options);
  data->out_dir = g_strdup (data->options.out_dir);
  data->options.out_dir = data->out_dir;
  g_task_set_task_data (task, data, (GDestroyNotify) async_data_free);
  g_task_run_in_thread (task, compile_thread);
}

CruPlan *
cru_plan_compile_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
