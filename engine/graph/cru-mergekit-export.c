/* cru-mergekit-export.c — writing a graph as a mergekit (or mergekit-multi) YAML recipe.
 *
 * Each Method/Stack node whose result feeds another merge becomes its own stage (a YAML
 * document with a `name:`), which mergekit-multi runs in order; a graph with one merge is a
 * plain mergekit recipe.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-mergekit-yaml.h"
#include "cru-error.h"
#include "cru-method.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

typedef struct {
  CruGraph   *graph;
  const char *base_dir;
  GPtrArray  *stages;      /* char* YAML text of each stage, in run order */
  GHashTable *stage_name;  /* node id → char* name */
  GHashTable *in_progress; /* node ids being emitted */
  guint       n_stages_needed;
} Exporter;

#define display_name _cru_node_display_name
/* Shared with cru-mergekit-moe.c under their _cru_yaml_ names. */
#define append_string _cru_yaml_append_string
#define append_number _cru_yaml_append_number

static gboolean G_GNUC_PRINTF (3, 4)
fail (GError **error, const CruNode *node, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
               _("Cannot export to mergekit YAML: %s"), message);
  return FALSE;
}

/* ---- YAML text ---- */

static gboolean
plain_safe (const char *s)
{
  static const char *const reserved[] = { "true", "false", "yes", "no", "on", "off", "null",
                                          "~", NULL };
  double ignored;
  char *end;

  if (s == NULL || *s == '\0' || !(g_ascii_isalpha (*s) || *s == '_' || *s == '/' || *s == '.'))
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!(g_ascii_isalnum (*p) || strchr ("_./-+@", *p)))
      return FALSE;
  for (guint i = 0; reserved[i]; i++)
    if (!g_ascii_strcasecmp (s, reserved[i]))
      return FALSE;
  ignored = g_ascii_strtod (s, &end);
  (void) ignored;
  return *end != '\0';
}

void
append_string (GString *out, const char *s)
{
  if (plain_safe (s))
    {
      g_string_append (out, s);
      return;
    }
  g_string_append_c (out, '"');
  for (const char *p = s; *p; p++)
    switch (*p)
      {
      case '"':  g_string_append (out, "\\\""); break;
      case '\\': g_string_append (out, "\\\\"); break;
      case '\n': g_string_append (out, "\\n"); break;
      case '\t': g_string_append (out, "\\t"); break;
      case '\r': g_string_append (out, "\\r"); break;
      default:   g_string_append_c (out, *p);
      }
  g_string_append_c (out, '"');
}

void
append_number (GString *out, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (v == floor (v) && fabs (v) < 1e15)
    {
      g_string_append_printf (out, "%.0f", v);
      return;
    }
  for (int precision = 15; precision <= 17; precision++)
    {
      char format[8];
      g_snprintf (format, sizeof format, "%%.%dg", precision);
      g_ascii_formatd (buf, sizeof buf, format, v);
      if (g_ascii_strtod (buf, NULL) == v)
        break;
    }
  g_string_append (out, buf);
}

static void
append_flow_value (GString *out, const CruValue *v, gboolean as_bool)
{
  switch (v->kind)
    {
    case CRU_VALUE_SCALAR:
      if (as_bool && (v->scalar == 0 || v->scalar == 1))
        g_string_append (out, v->scalar ? "true" : "false");
      else
        append_number (out, v->scalar);
      break;
    case CRU_VALUE_STRING:
      append_string (out, v->string ? v->string : "");
      break;
    case CRU_VALUE_STRINGS:
      g_string_append_c (out, '[');
      for (guint i = 0; v->strings && v->strings[i]; i++)
        {
          if (i)
            g_string_append (out, ", ");
          append_string (out, v->strings[i]);
        }
      g_string_append_c (out, ']');
      break;
    case CRU_VALUE_GRADIENT:
      g_string_append_c (out, '[');
      for (guint i = 0; i < v->gradient->len; i++)
        {
          if (i)
            g_string_append (out, ", ");
          append_number (out, g_array_index (v->gradient, double, i));
        }
      g_string_append_c (out, ']');
      break;
    case CRU_VALUE_FILTERED:
      g_string_append_c (out, '[');
      for (guint i = 0; i < v->filters->len; i++)
        {
          const CruFilterEntry *entry = v->filters->pdata[i];
          if (i)
            g_string_append (out, ", ");
          g_string_append_c (out, '{');
          if (entry->filter)
            {
              g_string_append (out, "filter: ");
              append_string (out, entry->filter);
              g_string_append (out, ", ");
            }
          g_string_append (out, "value: ");
          append_flow_value (out, entry->value, as_bool);
          g_string_append_c (out, '}');
        }
      g_string_append_c (out, ']');
      break;
    }
}

static int
compare_strptr (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return strcmp (*(const char **) a, *(const char **) b);
}

/* Writes "parameters:" with @params at @indent spaces (nothing when empty). */
static void
append_params (GString *out, GHashTable *params, const CruMethod *method, int indent)
{
  g_autofree gpointer *keys = NULL;
  guint n = 0;

  if (params == NULL || g_hash_table_size (params) == 0)
    return;
  keys = g_hash_table_get_keys_as_array (params, &n);
  g_qsort_with_data (keys, n, sizeof (gpointer), compare_strptr, NULL);
  g_string_append_printf (out, "%*sparameters:\n", indent, "");
  for (guint i = 0; i < n; i++)
    {
      const CruValue *v = g_hash_table_lookup (params, keys[i]);
      int index = method ? cru_method_find_param (method, keys[i]) : -1;
      gboolean as_bool = index >= 0 && method->params[index].type == CRU_PARAM_BOOL;

      g_string_append_printf (out, "%*s%s:", indent + 2, "", (char *) keys[i]);
      if (v->kind == CRU_VALUE_FILTERED)
        {
          g_string_append_c (out, '\n');
          for (guint j = 0; j < v->filters->len; j++)
            {
              const CruFilterEntry *entry = v->filters->pdata[j];
              g_string_append_printf (out, "%*s- ", indent + 4, "");
              if (entry->filter)
                {
                  g_string_append (out, "filter: ");
                  append_string (out, entry->filter);
                  g_string_append_printf (out, "\n%*s", indent + 6, "");
                }
              g_string_append (out, "value: ");
              append_flow_value (out, entry->value, as_bool);
              g_string_append_c (out, '\n');
            }
          continue;
        }
      g_string_append_c (out, ' ');
      append_flow_value (out, v, as_bool);
      g_string_append_c (out, '\n');
    }
}

/* ---- graph walk ---- */

static const CruNode *
input_node (Exporter *ex, const CruLink *link)
{
  return cru_graph_get_node (ex->graph, link->from_node);
}

static char *emit_stage (Exporter *ex, const CruNode *node, GError **error);

/* How a merge input is named in YAML: a model folder/Hub name, or an earlier stage. */
static char *
model_ref (Exporter *ex, const CruNode *node, const CruNode *consumer, GError **error)
{
  switch (node->kind)
    {
    case CRU_NODE_MODEL:
      {
        char *repo;
        if (node->path == NULL)
          return fail (error, node, _("the model node “%s” has no folder"),
                       display_name (node)), NULL;
        if ((repo = cru_hf_cache_repo_id (node->path)))
          return repo;
        return _cru_path_relativize (node->path, ex->base_dir);
      }
    case CRU_NODE_METHOD:
    case CRU_NODE_STACK:
      return emit_stage (ex, node, error);
    case CRU_NODE_SLICE:
      return fail (error, node, _("the slice “%s” feeds “%s” directly; mergekit uses slices "
                                  "only inside a stack"), display_name (node),
                   display_name (consumer)), NULL;
    default:
      return fail (error, node, _("“%s” cannot feed “%s” in a mergekit recipe"),
                   display_name (node), display_name (consumer)), NULL;
    }
}

static const CruMethod *
lookup_method (const CruNode *node, GError **error)
{
  const CruMethod *method = node->method ? cru_method_lookup (node->method) : NULL;

  if (method == NULL)
    fail (error, node, _("the merge node “%s” has no known method"), display_name (node));
  return method;
}

static gboolean
emit_models_form (Exporter *ex, const CruNode *node, GString *out, GError **error)
{
  g_autoptr(GPtrArray) in = cru_graph_links_to (ex->graph, node->id);
  const CruMethod *method = lookup_method (node, error);
  g_autofree char *base_ref = NULL;
  GString *models = g_string_new (NULL);
  gboolean ok = FALSE;

  if (method == NULL)
    goto out;
  for (guint i = 0; i < in->len; i++)
    {
      const CruLink *link = in->pdata[i];
      g_autofree char *ref = model_ref (ex, input_node (ex, link), node, error);

      if (ref == NULL)
        goto out;
      if (strcmp (link->to_port, CRU_PORT_BASE) == 0)
        {
          base_ref = g_strdup (ref);
          if (g_hash_table_size (link->params) == 0)
            continue;
        }
      g_string_append (models, "  - model: ");
      append_string (models, ref);
      g_string_append_c (models, '\n');
      append_params (models, link->params, method, 4);
    }
  g_string_append_printf (out, "merge_method: %s\n", method->name);
  if (base_ref)
    {
      g_string_append (out, "base_model: ");
      append_string (out, base_ref);
      g_string_append_c (out, '\n');
    }
  g_string_append (out, "models:\n");
  g_string_append (out, models->str);
  append_params (out, node->params, method, 0);
  ok = TRUE;
out:
  g_string_free (models, TRUE);
  return ok;
}

/* One `- model: … layer_range: […]` source for a Slice node. */
static gboolean
emit_source (Exporter *ex, const CruNode *slice, GHashTable *params, const CruMethod *method,
             GString *out, char **model_out, GError **error)
{
  const CruLink *link = cru_graph_find_link (ex->graph, slice->id, CRU_PORT_MODEL, 0);
  const CruValue *start = g_hash_table_lookup (slice->params, "start");
  const CruValue *end = g_hash_table_lookup (slice->params, "end");
  g_autofree char *ref = NULL;

  if (link == NULL)
    return fail (error, slice, _("the slice “%s” has no input"), display_name (slice));
  if (start == NULL || end == NULL || start->kind != CRU_VALUE_SCALAR
      || end->kind != CRU_VALUE_SCALAR)
    return fail (error, slice, _("the slice “%s” has no layer range"), display_name (slice));
  if (input_node (ex, link)->kind == CRU_NODE_SLICE)
    return fail (error, slice, _("the slice “%s” takes a slice of a slice"),
                 display_name (slice));
  if (!(ref = model_ref (ex, input_node (ex, link), slice, error)))
    return FALSE;
  g_string_append (out, "      - model: ");
  append_string (out, ref);
  g_string_append_printf (out, "\n        layer_range: [%.0f, %.0f]\n", start->scalar,
                          end->scalar);
  append_params (out, params, method, 8);
  if (model_out)
    *model_out = g_steal_pointer (&ref);
  return TRUE;
}

static gboolean
emit_slices_form (Exporter *ex, const CruNode *stack, GString *out, GError **error)
{
  g_autoptr(GPtrArray) in = NULL;
  g_autofree char *base_ref = NULL;
  const CruMethod *method = NULL;
  const CruNode *method_node = NULL;
  GString *slices = g_string_new (NULL);
  gboolean direct = FALSE, ok = FALSE;

  if (stack->kind == CRU_NODE_SLICE)
    {
      /* A lone slice into the output: one passthrough slice. */
      method = cru_method_lookup ("passthrough");
      g_string_append (slices, "  - sources:\n");
      if (!emit_source (ex, stack, NULL, method, slices, NULL, error))
        goto out;
      direct = TRUE;
      in = g_ptr_array_new ();
    }
  else
    in = cru_graph_links_to (ex->graph, stack->id);
  for (guint i = 0; i < in->len; i++)
    {
      const CruLink *link = in->pdata[i];
      const CruNode *part = input_node (ex, link);

      g_string_append (slices, "  - sources:\n");
      if (part->kind == CRU_NODE_SLICE)
        {
          direct = TRUE;
          if (!emit_source (ex, part, link->params, cru_method_lookup ("passthrough"), slices,
                            NULL, error))
            goto out;
          continue;
        }
      if (part->kind != CRU_NODE_METHOD)
        {
          fail (error, part, _("“%s” feeds the stack “%s”, but mergekit stacks only layer "
                               "slices or merges of slices"), display_name (part),
                display_name (stack));
          goto out;
        }
      if (method_node && g_strcmp0 (method_node->method, part->method) != 0)
        {
          fail (error, part, _("the stack “%s” mixes the methods %s and %s; a mergekit "
                               "recipe uses one method for all slices"), display_name (stack),
                method_node->method, part->method ? part->method : "?");
          goto out;
        }
      method_node = part;
      if (!(method = lookup_method (part, error)))
        goto out;
      {
        g_autoptr(GPtrArray) sources = cru_graph_links_to (ex->graph, part->id);
        for (guint j = 0; j < sources->len; j++)
          {
            const CruLink *source = sources->pdata[j];
            const CruNode *slice = input_node (ex, source);
            g_autofree char *ref = NULL;

            if (slice->kind != CRU_NODE_SLICE)
              {
                fail (error, part, _("the merge “%s” in the stack “%s” mixes whole models "
                                     "with slices"), display_name (part), display_name (stack));
                goto out;
              }
            if (!emit_source (ex, slice, source->params, method, slices, &ref, error))
              goto out;
            if (strcmp (source->to_port, CRU_PORT_BASE) == 0)
              {
                if (base_ref && strcmp (base_ref, ref) != 0)
                  {
                    fail (error, part, _("the slices of “%s” use different base models"),
                          display_name (stack));
                    goto out;
                  }
                g_free (base_ref);
                base_ref = g_steal_pointer (&ref);
              }
          }
      }
      append_params (slices, part->params, method, 4);
    }
  if (direct && method_node && !(method->flags & CRU_METHOD_STRUCTURAL)
      && strcmp (method->name, "passthrough") != 0)
    {
      fail (error, stack, _("the stack “%s” mixes plain slices with %s merges; mergekit "
                            "applies one method to every slice"), display_name (stack),
            method->name);
      goto out;
    }
  g_string_append_printf (out, "merge_method: %s\n", method ? method->name : "passthrough");
  if (base_ref)
    {
      g_string_append (out, "base_model: ");
      append_string (out, base_ref);
      g_string_append_c (out, '\n');
    }
  g_string_append (out, "slices:\n");
  g_string_append (out, slices->str);
  ok = TRUE;
out:
  g_string_free (slices, TRUE);
  return ok;
}

static char *
unique_stage_name (Exporter *ex, const CruNode *node)
{
  g_autofree char *wanted = node->label && *node->label
    ? g_strdup (node->label)
    : g_strdup_printf ("%s-%u", node->kind == CRU_NODE_METHOD && node->method
                       ? node->method : "stack", node->id);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, ex->stage_name);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (strcmp (value, wanted) == 0)
      return g_strdup_printf ("%s-%u", wanted, node->id);
  return g_steal_pointer (&wanted);
}

/* Emits the stage computing @node (after the stages it needs); returns its name. */
static char *
emit_stage (Exporter *ex, const CruNode *node, GError **error)
{
  const char *known = g_hash_table_lookup (ex->stage_name, GUINT_TO_POINTER (node->id));
  g_autoptr(GString) text = NULL;
  char *name;
  gboolean ok;

  if (known)
    return g_strdup (known);
  if (g_hash_table_contains (ex->in_progress, GUINT_TO_POINTER (node->id)))
    return fail (error, node, _("“%s” is part of a loop"), display_name (node)), NULL;
  g_hash_table_add (ex->in_progress, GUINT_TO_POINTER (node->id));
  text = g_string_new (NULL);
  if (node->kind == CRU_NODE_METHOD)
    ok = emit_models_form (ex, node, text, error);
  else
    ok = emit_slices_form (ex, node, text, error);
  if (!ok)
    return NULL;
  name = unique_stage_name (ex, node);
  g_hash_table_insert (ex->stage_name, GUINT_TO_POINTER (node->id), name);
  g_ptr_array_add (ex->stages, g_strdup_printf ("name: %s\n%s", name, text->str));
  /* Remember where the name line ends, so that a single stage can drop it. */
  return g_strdup (name);
}

static gboolean
append_output_settings (Exporter *ex, const CruNode *output, GString *out, GError **error)
{
  const CruValue *dtype = g_hash_table_lookup (output->params, "dtype");
  const CruValue *tok = g_hash_table_lookup (output->params, "tokenizer_source");
  const CruValue *chat = g_hash_table_lookup (output->params, "chat_template");
  const char *compute = output->extra && json_object_has_member (output->extra, "mergekit_dtype")
    ? json_object_get_string_member (output->extra, "mergekit_dtype") : NULL;

  if (dtype && dtype->kind == CRU_VALUE_STRING)
    {
      if (compute)
        g_string_append_printf (out, "dtype: %s\nout_dtype: ", compute);
      else
        g_string_append (out, "dtype: ");
      append_string (out, dtype->string);
      g_string_append_c (out, '\n');
    }
  if (tok && tok->kind == CRU_VALUE_STRING && tok->string)
    {
      g_string_append (out, "tokenizer_source: ");
      if (g_str_has_prefix (tok->string, "model:"))
        {
          guint id = (guint) g_ascii_strtoull (tok->string + 6, NULL, 10);
          const CruNode *model = cru_graph_get_node (ex->graph, id);
          g_autofree char *ref = NULL;

          if (model == NULL)
            return fail (error, output, _("the output “%s” takes its tokenizer from a node "
                                          "that is no longer in the graph"),
                         display_name (output));
          if (!(ref = model_ref (ex, model, output, error)))
            return FALSE;
          append_string (out, ref);
        }
      else
        append_string (out, tok->string);
      g_string_append_c (out, '\n');
    }
  if (chat && chat->kind == CRU_VALUE_STRING && chat->string)
    {
      g_string_append (out, "chat_template: ");
      append_string (out, chat->string);
      g_string_append_c (out, '\n');
    }
  return TRUE;
}

char *
cru_graph_export_mergekit (CruGraph *self, const char *base_dir, GError **error)
{
  g_autoptr(GPtrArray) nodes = NULL;
  g_autoptr(GPtrArray) stages = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) names = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_autoptr(GHashTable) in_progress = g_hash_table_new (NULL, NULL);
  Exporter ex = { self, base_dir, stages, names, in_progress, 0 };
  const CruNode *output = NULL, *final;
  const CruLink *link;
  g_autofree char *final_name = NULL;
  GString *out;

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  nodes = cru_graph_list_nodes (self);
  /* A mixture of experts into the only output is a mergekit-moe recipe. */
  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *node = nodes->pdata[i];
      if (node->kind == CRU_NODE_OUTPUT)
        {
          if (output)
            {
              output = NULL;
              break;
            }
          output = node;
        }
    }
  if (output && (link = cru_graph_find_link (self, output->id, CRU_PORT_MODEL, 0))
      && (final = cru_graph_get_node (self, link->from_node))->kind == CRU_NODE_MOE)
    return _cru_export_moe (self, output, final, base_dir, error);
  output = NULL;
  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *node = nodes->pdata[i];
      if (node->kind == CRU_NODE_MOE)
        return fail (error, node, _("“%s” is a mixture of experts, which a mergekit merge "
                                    "recipe cannot express (mergekit-moe uses its own format)"),
                     display_name (node)), NULL;
      if (node->kind == CRU_NODE_OUTPUT)
        {
          if (output)
            return fail (error, node, _("the graph has more than one output (“%s” and “%s”); "
                                        "a mergekit recipe makes one model"),
                         display_name (output), display_name (node)), NULL;
          output = node;
        }
    }
  if (output == NULL)
    return fail (error, NULL, _("the graph has no Output node")), NULL;
  link = cru_graph_find_link (self, output->id, CRU_PORT_MODEL, 0);
  if (link == NULL)
    return fail (error, output, _("nothing is connected to the output “%s”"),
                 display_name (output)), NULL;
  final = cru_graph_get_node (self, link->from_node);
  if (final->kind == CRU_NODE_MODEL)
    return fail (error, final, _("the output “%s” takes the model “%s” unchanged; there is "
                                 "nothing to merge"), display_name (output),
                 display_name (final)), NULL;
  if (final->kind != CRU_NODE_METHOD && final->kind != CRU_NODE_STACK
      && final->kind != CRU_NODE_SLICE)
    return fail (error, final, _("“%s” cannot be exported"), display_name (final)), NULL;
  if (!(final_name = emit_stage (&ex, final, error)))
    return NULL;

  out = g_string_new ("# mergekit recipe exported by Crucible " CRU_VERSION "\n");
  for (guint i = 0; i < stages->len; i++)
    {
      const char *text = stages->pdata[i];
      if (i > 0)
        g_string_append (out, "---\n");
      /* A single stage is a plain recipe: drop its name unless the user gave one. */
      if (stages->len == 1 && !(final->label && *final->label))
        text = strchr (text, '\n') + 1;
      g_string_append (out, text);
    }
  if (!append_output_settings (&ex, output, out, error))
    return g_string_free (out, TRUE), NULL;
  return g_string_free (out, FALSE);
}
