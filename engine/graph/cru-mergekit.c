/* cru-mergekit.c — importing mergekit (and mergekit-multi) YAML recipes into a graph.
 *
 * Importing never opens weights: model references are only resolved to folders.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-mergekit-yaml.h"
#include "cru-error.h"
#include "cru-method.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

typedef CruImporter Importer;

/* Shared with cru-mergekit-moe.c under their _cru_import_ names. */
#define fail_at     _cru_import_fail
#define warn        _cru_import_warn
#define map_get     _cru_import_map_get
#define scalar(node) _cru_import_scalar (node)
#define is_null     _cru_import_is_null
#define add_node    _cru_import_add_node
#define add_link    _cru_import_add_link
#define resolve_model _cru_import_model

gboolean G_GNUC_PRINTF (4, 5)
fail_at (Importer *im, yaml_node_t *node, GError **error, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (node)
    g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH, _("%s, line %lu: %s"), im->label,
                 (unsigned long) node->start_mark.line + 1, message);
  else
    g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH, "%s: %s", im->label, message);
  return FALSE;
}

void G_GNUC_PRINTF (2, 3)
warn (Importer *im, const char *format, ...)
{
  va_list args;

  if (im->warnings == NULL)
    return;
  va_start (args, format);
  g_ptr_array_add (im->warnings, g_strdup_vprintf (format, args));
  va_end (args);
}

yaml_node_t *
map_get (Importer *im, yaml_node_t *map, const char *key)
{
  if (map == NULL || map->type != YAML_MAPPING_NODE)
    return NULL;
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
       pair < map->data.mapping.pairs.top; pair++)
    {
      yaml_node_t *k = yaml_document_get_node (im->doc, pair->key);
      if (k && k->type == YAML_SCALAR_NODE && strcmp ((char *) k->data.scalar.value, key) == 0)
        return yaml_document_get_node (im->doc, pair->value);
    }
  return NULL;
}

const char *
scalar (yaml_node_t *node)
{
  return node && node->type == YAML_SCALAR_NODE ? (const char *) node->data.scalar.value : NULL;
}

static gboolean
is_plain (yaml_node_t *node)
{
  return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

gboolean
is_null (yaml_node_t *node)
{
  const char *s = scalar (node);
  return node == NULL || (s && is_plain (node) && (!*s || !strcmp (s, "~") || !g_ascii_strcasecmp (s, "null")));
}

gboolean
_cru_yaml_scalar_number (yaml_node_t *node, double *out)
{
  const char *s = scalar (node);
  char *end = NULL;
  double v;

  if (s == NULL || !is_plain (node) || *s == '\0')
    return FALSE;
  v = g_ascii_strtod (s, &end);
  if (end == s || *end != '\0' || !isfinite (v))
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean
scalar_bool (yaml_node_t *node, gboolean *out)
{
  static const char *const yes[] = { "true", "yes", "on" };
  static const char *const no[] = { "false", "no", "off" };
  const char *s = scalar (node);

  if (s == NULL || !is_plain (node))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (yes); i++)
    {
      if (!g_ascii_strcasecmp (s, yes[i]))
        return *out = TRUE, TRUE;
      if (!g_ascii_strcasecmp (s, no[i]))
        return *out = FALSE, TRUE;
    }
  return FALSE;
}

static CruValue *value_from_yaml_depth (Importer *im, yaml_node_t *node, const char *name,
                                        int depth, GError **error);

static CruValue *
value_from_yaml (Importer *im, yaml_node_t *node, const char *name, GError **error)
{
  return value_from_yaml_depth (im, node, name, 0, error);
}

static CruValue *
value_from_yaml_depth (Importer *im, yaml_node_t *node, const char *name, int depth,
                       GError **error)
{
  double number;
  gboolean flag;

  if (depth > 8)
    return fail_at (im, node, error, _("parameter “%s” nests filters too deeply"), name), NULL;

  if (node->type == YAML_SCALAR_NODE)
    {
      if (_cru_yaml_scalar_number (node, &number))
        return cru_value_new_scalar (number);
      if (scalar_bool (node, &flag))
        return cru_value_new_bool (flag);
      return cru_value_new_string (scalar (node));
    }
  if (node->type == YAML_SEQUENCE_NODE)
    {
      yaml_node_item_t *start = node->data.sequence.items.start;
      int n = node->data.sequence.items.top - start;
      yaml_node_t *first;

      if (n == 0)
        return fail_at (im, node, error, _("parameter “%s” is an empty list"), name), NULL;
      first = yaml_document_get_node (im->doc, start[0]);
      if (first->type == YAML_MAPPING_NODE)
        {
          CruValue *filtered = cru_value_new_filtered ();
          for (int i = 0; i < n; i++)
            {
              yaml_node_t *item = yaml_document_get_node (im->doc, start[i]);
              yaml_node_t *value = map_get (im, item, "value");
              yaml_node_t *filter = map_get (im, item, "filter");
              CruValue *v;

              if (item->type != YAML_MAPPING_NODE || value == NULL
                  || (filter && scalar (filter) == NULL))
                {
                  cru_value_free (filtered);
                  return fail_at (im, item, error,
                                  _("each entry of “%s” needs a “value” (and may have a “filter”)"),
                                  name), NULL;
                }
              v = value_from_yaml_depth (im, value, name, depth + 1, error);
              if (v == NULL)
                return cru_value_free (filtered), NULL;
              cru_value_add_filter (filtered, filter ? scalar (filter) : NULL, v);
            }
          return filtered;
        }
      if (_cru_yaml_scalar_number (first, &number))
        {
          g_autoptr(GArray) values = g_array_new (FALSE, FALSE, sizeof (double));
          for (int i = 0; i < n; i++)
            {
              yaml_node_t *item = yaml_document_get_node (im->doc, start[i]);
              if (!_cru_yaml_scalar_number (item, &number))
                return fail_at (im, item, error,
                                _("the gradient “%s” mixes numbers with other things"), name), NULL;
              g_array_append_val (values, number);
            }
          return cru_value_new_gradient ((double *) values->data, values->len);
        }
      {
        g_autoptr(GPtrArray) strings = g_ptr_array_new ();
        for (int i = 0; i < n; i++)
          {
            yaml_node_t *item = yaml_document_get_node (im->doc, start[i]);
            if (scalar (item) == NULL)
              return fail_at (im, item, error, _("parameter “%s” has a list of mixed items"),
                              name), NULL;
            g_ptr_array_add (strings, (gpointer) scalar (item));
          }
        g_ptr_array_add (strings, NULL);
        return cru_value_new_strings ((const char *const *) strings->pdata);
      }
    }
  if (node->type == YAML_MAPPING_NODE && map_get (im, node, "value"))
    {
      /* A lone {filter, value} written without the list */
      CruValue *filtered = cru_value_new_filtered ();
      CruValue *v = value_from_yaml_depth (im, map_get (im, node, "value"), name, depth + 1,
                                           error);
      if (v == NULL)
        return cru_value_free (filtered), NULL;
      cru_value_add_filter (filtered, scalar (map_get (im, node, "filter")), v);
      return filtered;
    }
  return fail_at (im, node, error, _("parameter “%s” has a value Crucible cannot read"), name),
         NULL;
}

/* Levenshtein distance, for "did you mean". */
static guint
edit_distance (const char *a, const char *b)
{
  guint la = strlen (a), lb = strlen (b);
  g_autofree guint *row = g_new (guint, lb + 1);

  for (guint j = 0; j <= lb; j++)
    row[j] = j;
  for (guint i = 1; i <= la; i++)
    {
      guint diag = row[0];
      row[0] = i;
      for (guint j = 1; j <= lb; j++)
        {
          guint up = row[j];
          guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
          row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), diag + cost);
          diag = up;
        }
    }
  return row[lb];
}

const char *
_cru_closest_name (const char *name, const char *const *candidates, guint n)
{
  const char *best = NULL;
  guint best_d = 3;

  for (guint i = 0; i < n; i++)
    {
      guint d = edit_distance (name, candidates[i]);
      if (d < best_d)
        best_d = d, best = candidates[i];
    }
  return best;
}

static void
check_param_name (Importer *im, const CruMethod *method, const char *name)
{
  g_autofree const char **names = NULL;
  const char *guess;

  if (method == NULL || cru_method_find_param (method, name) >= 0)
    return;
  names = g_new0 (const char *, method->n_params + 1);
  for (int i = 0; i < method->n_params; i++)
    names[i] = method->params[i].name;
  guess = _cru_closest_name (name, names, method->n_params);
  if (guess)
    warn (im, _("%s: unknown parameter “%s” (ignored by mergekit; did you mean “%s”?)"),
          method->name, name, guess);
  else
    warn (im, _("%s: unknown parameter “%s” (ignored by mergekit)"), method->name, name);
}

/* Reads a `parameters:` mapping into @params (over what is already there). */
static gboolean
read_parameters (Importer *im, yaml_node_t *map, const CruMethod *method, GHashTable *params,
                 GError **error)
{
  if (map == NULL || is_null (map))
    return TRUE;
  if (map->type != YAML_MAPPING_NODE)
    return fail_at (im, map, error, _("“parameters” must be a mapping of names to values"));
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
       pair < map->data.mapping.pairs.top; pair++)
    {
      const char *name = scalar (yaml_document_get_node (im->doc, pair->key));
      yaml_node_t *value_node = yaml_document_get_node (im->doc, pair->value);
      CruValue *value;

      if (name == NULL)
        return fail_at (im, map, error, _("a parameter name is not text"));
      if (is_null (value_node))
        continue;
      value = value_from_yaml (im, value_node, name, error);
      if (value == NULL)
        return FALSE;
      check_param_name (im, method, name);
      g_hash_table_insert (params, g_strdup (name), value);
    }
  return TRUE;
}

/* ---- building ---- */

CruNode *
add_node (Importer *im, CruNodeKind kind)
{
  CruNode *node = g_new0 (CruNode, 1);

  node->id = im->next_node++;
  node->kind = kind;
  node->params = _cru_params_new ();
  _cru_graph_insert_node_raw (im->graph, node);
  return node;
}

CruLink *
add_link (Importer *im, guint from, guint to, const char *port, int slot)
{
  CruLink *link = g_new0 (CruLink, 1);

  link->id = im->next_link++;
  link->from_node = from;
  link->to_node = to;
  link->to_port = g_intern_string (port);
  link->slot = slot;
  link->params = _cru_params_new ();
  _cru_graph_insert_link_raw (im->graph, link);
  return link;
}

static gboolean
looks_like_hub_name (const char *ref)
{
  const char *slash = strchr (ref, '/');
  return slash && slash != ref && strchr (slash + 1, '/') == NULL && slash[1] != '\0'
         && ref[0] != '.' && ref[0] != '~';
}

/* The node a model reference names: an earlier stage, or a Model node (made once per
 * distinct folder). */
guint
resolve_model (Importer *im, yaml_node_t *ref_node, GError **error)
{
  const char *ref = scalar (ref_node);
  g_autofree char *local = NULL;
  g_autofree char *path = NULL;
  gpointer id;
  CruNode *node;

  if (ref_node && ref_node->type == YAML_MAPPING_NODE)
    ref = scalar (map_get (im, map_get (im, ref_node, "model"), "path"));
  if (ref == NULL || *ref == '\0')
    return fail_at (im, ref_node, error, _("a model reference is missing or not text")), 0;
  if ((id = g_hash_table_lookup (im->stages, ref)))
    return GPOINTER_TO_UINT (id);
  if ((id = g_hash_table_lookup (im->model_by_ref, ref)))
    return GPOINTER_TO_UINT (id);
  if (strchr (ref, '+') && !g_file_test (ref, G_FILE_TEST_EXISTS))
    return fail_at (im, ref_node, error,
                    _("model “%s” applies a LoRA adapter, which Crucible does not support yet"),
                    ref), 0;

  local = _cru_path_resolve (ref, im->base_dir);
  if (g_file_test (local, G_FILE_TEST_EXISTS))
    path = g_steal_pointer (&local);
  else if (looks_like_hub_name (ref))
    {
      g_autoptr(GError) hub_error = NULL;
      path = cru_hf_cache_resolve (ref, &hub_error);
      if (path == NULL)
        return fail_at (im, ref_node, error,
                        _("model “%s” was not found: not a folder at %s, and %s"), ref, local,
                        hub_error->message), 0;
    }
  else
    return fail_at (im, ref_node, error, _("model “%s” was not found (looked for %s)"), ref,
                    local), 0;

  if ((id = g_hash_table_lookup (im->model_by_path, path)))
    {
      g_hash_table_insert (im->model_by_ref, g_strdup (ref), id);
      return GPOINTER_TO_UINT (id);
    }
  node = add_node (im, CRU_NODE_MODEL);
  node->path = g_strdup (path);
  g_hash_table_insert (im->model_by_path, g_strdup (path), GUINT_TO_POINTER (node->id));
  g_hash_table_insert (im->model_by_ref, g_strdup (ref), GUINT_TO_POINTER (node->id));
  return node->id;
}

static gboolean
method_uses_base (const CruMethod *method)
{
  return method->flags & (CRU_METHOD_NEEDS_BASE | CRU_METHOD_BASE_OPTIONAL);
}

static gboolean
is_passthrough (const CruMethod *method)
{
  return (method->flags & CRU_METHOD_STRUCTURAL) || strcmp (method->name, "passthrough") == 0;
}

static void
copy_params_into (GHashTable *to, GHashTable *from)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, from);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (to, g_strdup (key), cru_value_copy (value));
}

static yaml_node_item_t *
seq_items (yaml_node_t *node, int *n)
{
  if (node == NULL || node->type != YAML_SEQUENCE_NODE)
    return *n = 0, NULL;
  *n = node->data.sequence.items.top - node->data.sequence.items.start;
  return node->data.sequence.items.start;
}

static guint
build_models_form (Importer *im, yaml_node_t *root, const CruMethod *method,
                   GHashTable *top_params, GError **error)
{
  yaml_node_t *models = map_get (im, root, "models");
  yaml_node_t *base_ref = map_get (im, root, "base_model");
  CruNode *merge = add_node (im, CRU_NODE_METHOD);
  guint base = 0;
  int n, slot = 0;
  yaml_node_item_t *items = seq_items (models, &n);

  merge->method = g_strdup (method->name);
  copy_params_into (merge->params, top_params);
  if (models == NULL || models->type != YAML_SEQUENCE_NODE)
    return fail_at (im, models, error, _("“models” must be a list")), 0;
  if (!is_null (base_ref))
    {
      if (!(base = resolve_model (im, base_ref, error)))
        return 0;
      add_link (im, base, merge->id, CRU_PORT_BASE, 0);
    }
  for (int i = 0; i < n; i++)
    {
      yaml_node_t *item = yaml_document_get_node (im->doc, items[i]);
      yaml_node_t *ref = item->type == YAML_MAPPING_NODE ? map_get (im, item, "model") : item;
      g_autoptr(GHashTable) params = _cru_params_new ();
      CruLink *link;
      guint id;

      if (!(id = resolve_model (im, ref, error)))
        return 0;
      if (!read_parameters (im, map_get (im, item, "parameters"), method, params, error))
        return 0;
      if (id == base && method_uses_base (method))
        link = (CruLink *) cru_graph_find_link (im->graph, merge->id, CRU_PORT_BASE, 0);
      else
        link = add_link (im, id, merge->id, CRU_PORT_MODEL, slot++);
      copy_params_into (link->params, params);
    }
  return merge->id;
}

static guint
build_slice_node (Importer *im, yaml_node_t *source, GError **error)
{
  yaml_node_t *range = map_get (im, source, "layer_range");
  yaml_node_item_t *items;
  double start, end;
  CruNode *slice;
  guint model;
  int n;

  if (source == NULL || source->type != YAML_MAPPING_NODE)
    return fail_at (im, source, error, _("each slice source must be a mapping with “model”")), 0;
  if (!(model = resolve_model (im, map_get (im, source, "model"), error)))
    return 0;
  items = seq_items (range, &n);
  if (n != 2 || !_cru_yaml_scalar_number (yaml_document_get_node (im->doc, items[0]), &start)
      || !_cru_yaml_scalar_number (yaml_document_get_node (im->doc, items[1]), &end)
      || start < 0 || end <= start || start != floor (start) || end != floor (end))
    return fail_at (im, range ? range : source, error,
                    _("“layer_range” must be two whole numbers [start, end] with start < end")), 0;
  slice = add_node (im, CRU_NODE_SLICE);
  g_hash_table_insert (slice->params, g_strdup ("start"), cru_value_new_scalar (start));
  g_hash_table_insert (slice->params, g_strdup ("end"), cru_value_new_scalar (end));
  add_link (im, model, slice->id, CRU_PORT_MODEL, 0);
  return slice->id;
}

static guint
build_slices_form (Importer *im, yaml_node_t *root, const CruMethod *method,
                   GHashTable *top_params, GError **error)
{
  yaml_node_t *slices = map_get (im, root, "slices");
  yaml_node_t *base_ref = map_get (im, root, "base_model");
  CruNode *stack = add_node (im, CRU_NODE_STACK);
  guint base = 0;
  int n_slices;
  yaml_node_item_t *slice_items = seq_items (slices, &n_slices);

  if (n_slices == 0)
    return fail_at (im, slices, error, _("“slices” must be a non-empty list")), 0;
  if (!is_null (base_ref) && !(base = resolve_model (im, base_ref, error)))
    return 0;
  for (int i = 0; i < n_slices; i++)
    {
      yaml_node_t *slice = yaml_document_get_node (im->doc, slice_items[i]);
      yaml_node_t *sources = map_get (im, slice, "sources");
      int n_sources, slot = 0;
      yaml_node_item_t *source_items = seq_items (sources, &n_sources);
      CruNode *merge;

      if (n_sources == 0)
        return fail_at (im, slice, error, _("slice %d has no “sources” list"), i + 1), 0;
      if (n_sources == 1 && is_passthrough (method))
        {
          yaml_node_t *source = yaml_document_get_node (im->doc, source_items[0]);
          guint id = build_slice_node (im, source, error);
          CruLink *link;

          if (!id)
            return 0;
          link = add_link (im, id, stack->id, CRU_PORT_SLICE, i);
          copy_params_into (link->params, top_params);
          if (!read_parameters (im, map_get (im, slice, "parameters"), method, link->params, error)
              || !read_parameters (im, map_get (im, source, "parameters"), method, link->params,
                                   error))
            return 0;
          continue;
        }
      merge = add_node (im, CRU_NODE_METHOD);
      merge->method = g_strdup (method->name);
      copy_params_into (merge->params, top_params);
      if (!read_parameters (im, map_get (im, slice, "parameters"), method, merge->params, error))
        return 0;
      for (int j = 0; j < n_sources; j++)
        {
          yaml_node_t *source = yaml_document_get_node (im->doc, source_items[j]);
          guint id = build_slice_node (im, source, error);
          const CruLink *model_link;
          CruLink *link;

          if (!id)
            return 0;
          model_link = cru_graph_find_link (im->graph, id, CRU_PORT_MODEL, 0);
          if (base && model_link->from_node == base && method_uses_base (method)
              && !cru_graph_find_link (im->graph, merge->id, CRU_PORT_BASE, 0))
            link = add_link (im, id, merge->id, CRU_PORT_BASE, 0);
          else
            link = add_link (im, id, merge->id, CRU_PORT_MODEL, slot++);
          if (!read_parameters (im, map_get (im, source, "parameters"), method, link->params,
                                error))
            return 0;
        }
      add_link (im, merge->id, stack->id, CRU_PORT_SLICE, i);
    }
  return stack->id;
}

static const char *const known_keys[] = {
  "merge_method", "slices", "models", "base_model", "parameters", "dtype", "out_dtype",
  "tokenizer_source", "tokenizer", "chat_template", "name", NULL };

/* Builds one document (a stage); returns its final node or 0. */
static guint
build_stage (Importer *im, yaml_node_t *root, GError **error)
{
  const char *method_name = scalar (map_get (im, root, "merge_method"));
  const CruMethod *method;
  g_autoptr(GHashTable) top_params = _cru_params_new ();
  const char *name = scalar (map_get (im, root, "name"));
  CruNode *final_node;
  guint final;

  if (root == NULL || root->type != YAML_MAPPING_NODE)
    return fail_at (im, root, error, _("the recipe is not a mapping of settings")), 0;
  for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
       pair < root->data.mapping.pairs.top; pair++)
    {
      const char *key = scalar (yaml_document_get_node (im->doc, pair->key));
      if (key && !g_strv_contains (known_keys, key))
        warn (im, _("%s: the setting “%s” is not used by Crucible and was ignored"), im->label,
              key);
    }
  if (method_name == NULL)
    return fail_at (im, root, error, _("the recipe has no “merge_method”")), 0;
  method = cru_method_lookup (method_name);
  if (method == NULL)
    return fail_at (im, map_get (im, root, "merge_method"), error,
                    _("the merge method “%s” is not known to Crucible"), method_name), 0;
  if (!read_parameters (im, map_get (im, root, "parameters"), method, top_params, error))
    return 0;
  if (map_get (im, root, "slices"))
    final = build_slices_form (im, root, method, top_params, error);
  else if (map_get (im, root, "models"))
    final = build_models_form (im, root, method, top_params, error);
  else
    return fail_at (im, root, error, _("the recipe has neither “models” nor “slices”")), 0;
  if (final == 0)
    return 0;
  final_node = (CruNode *) cru_graph_get_node (im->graph, final);
  if (name)
    {
      if (g_hash_table_contains (im->stages, name))
        return fail_at (im, map_get (im, root, "name"), error,
                        _("two stages are named “%s”"), name), 0;
      g_hash_table_insert (im->stages, g_strdup (name), GUINT_TO_POINTER (final));
      g_free (final_node->label);
      final_node->label = g_strdup (name);
    }
  return final;
}

typedef struct {
  char *dtype, *out_dtype, *chat_template, *tokenizer;
} OutputSettings;

static void
output_settings_clear (OutputSettings *out)
{
  g_clear_pointer (&out->dtype, g_free);
  g_clear_pointer (&out->out_dtype, g_free);
  g_clear_pointer (&out->chat_template, g_free);
  g_clear_pointer (&out->tokenizer, g_free);
}

/* Reads the settings of the final model from a document (the last one wins). */
static gboolean
read_output_settings (Importer *im, yaml_node_t *root, OutputSettings *out, GError **error)
{
  yaml_node_t *tok_node = map_get (im, root, "tokenizer_source");
  const char *tok;

  output_settings_clear (out);
  out->dtype = g_strdup (scalar (map_get (im, root, "dtype")));
  out->out_dtype = g_strdup (scalar (map_get (im, root, "out_dtype")));
  out->chat_template = g_strdup (scalar (map_get (im, root, "chat_template")));
  if (tok_node == NULL)
    tok_node = map_get (im, map_get (im, root, "tokenizer"), "source");
  tok = scalar (tok_node);
  if (tok && !is_null (tok_node))
    {
      if (!strcmp (tok, "base") || !strcmp (tok, "union"))
        out->tokenizer = g_strdup (tok);
      else
        {
          guint id = resolve_model (im, tok_node, error);
          if (id == 0)
            return FALSE;
          out->tokenizer = g_strdup_printf ("model:%u", id);
        }
    }
  if (map_get (im, map_get (im, root, "tokenizer"), "tokens"))
    warn (im, _("%s: “tokenizer: tokens” is not supported yet and was ignored"), im->label);
  return TRUE;
}

static void
build_output (Importer *im, const OutputSettings *settings, guint final, const char *out_dir)
{
  CruNode *output = add_node (im, CRU_NODE_OUTPUT);
  const char *dtype = settings->out_dtype ? settings->out_dtype : settings->dtype;

  add_link (im, final, output->id, CRU_PORT_MODEL, 0);
  if (out_dir)
    output->path = _cru_path_resolve (out_dir, NULL);
  if (dtype)
    _cru_node_set_param_raw (output, "dtype", cru_value_new_string (dtype));
  if (settings->out_dtype && settings->dtype)
    {
      /* mergekit's compute dtype: Crucible always computes in f32, but export keeps it. */
      output->extra = json_object_new ();
      json_object_set_string_member (output->extra, "mergekit_dtype", settings->dtype);
    }
  if (settings->chat_template)
    _cru_node_set_param_raw (output, "chat_template",
                             cru_value_new_string (settings->chat_template));
  if (settings->tokenizer)
    _cru_node_set_param_raw (output, "tokenizer_source",
                             cru_value_new_string (settings->tokenizer));
}

static void
yaml_fail (const yaml_parser_t *parser, const char *yaml, gsize length, const char *label,
           GError **error)
{
  gsize at = parser->problem_mark.index;
  /* libyaml's own words for a tab say nothing of tabs. */
  const char *hint = at < length && yaml[at] == '\t'
                       ? _(" (YAML indents with spaces; this line starts with a tab)") : "";

  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
               _("%s is not valid YAML: line %lu, column %lu: %s%s%s%s"), label,
               (unsigned long) parser->problem_mark.line + 1,
               (unsigned long) parser->problem_mark.column + 1,
               parser->problem ? parser->problem : "error",
               parser->context ? " " : "", parser->context ? parser->context : "", hint);
}

/* libyaml places a bad byte at the start of the file: say which line holds it. */
static gboolean
check_utf8 (const char *yaml, gsize length, const char *label, GError **error)
{
  const char *end = NULL;
  guint line = 1;

  if (g_utf8_validate_len (yaml, length, &end))
    return TRUE;
  for (const char *p = yaml; p < end; p++)
    line += *p == '\n';
  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
               _("%s, line %u: the text is not valid UTF-8; save the recipe as UTF-8"), label,
               line);
  return FALSE;
}

static CruGraph *
import_full (const char *yaml, gssize length, const char *base_dir, const char *label,
             const char *out_dir, GPtrArray *warnings, GError **error)
{
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autoptr(GHashTable) by_path = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) by_ref = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) stages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Importer im = { NULL, base_dir, label, graph, warnings, by_path, by_ref, stages, 1, 1 };
  yaml_parser_t parser;
  guint final = 0, n_docs = 0;
  gboolean ok = TRUE, moe = FALSE;
  OutputSettings settings = { NULL };

  if (length < 0)
    length = strlen (yaml);
  if (!check_utf8 (yaml, (gsize) length, label, error))
    return NULL;
  yaml_parser_initialize (&parser);
  yaml_parser_set_input_string (&parser, (const unsigned char *) yaml, length);
  for (;;)
    {
      yaml_document_t doc;
      yaml_node_t *root;

      if (!yaml_parser_load (&parser, &doc))
        {
          yaml_fail (&parser, yaml, (gsize) length, label, error);
          ok = FALSE;
          break;
        }
      root = yaml_document_get_root_node (&doc);
      if (root == NULL)
        {
          yaml_document_delete (&doc);
          break;
        }
      im.doc = &doc;
      if (is_null (root))
        {
          yaml_document_delete (&doc);
          continue;
        }
      /* A mergekit-moe config builds one mixture of experts: nothing can come before or
       * after it. */
      if (_cru_mergekit_is_moe (&im, root) || moe)
        {
          if (n_docs > 0)
            final = fail_at (&im, root, error, _("a mergekit-moe config (with “experts”) must "
                                                 "be the only document of the file"));
          else
            final = _cru_import_moe (&im, root, error);
          moe = TRUE;
        }
      else
        final = build_stage (&im, root, error);
      ok = final != 0 && read_output_settings (&im, root, &settings, error);
      n_docs++;
      yaml_document_delete (&doc);
      if (!ok)
        break;
    }
  yaml_parser_delete (&parser);
  if (ok && n_docs == 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH, _("%s holds no recipe"), label);
      ok = FALSE;
    }
  if (ok)
    build_output (&im, &settings, final, out_dir);
  output_settings_clear (&settings);
  if (!ok)
    return NULL;
  {
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init (&iter, stages);
    while (g_hash_table_iter_next (&iter, &key, &value))
      {
        g_autoptr(GPtrArray) out = cru_graph_links_from (graph, GPOINTER_TO_UINT (value));
        if (out->len == 0)
          warn (&im, _("%s: the stage “%s” is not used by the final stage"), label,
                (char *) key);
      }
  }
  _cru_graph_layout_columns (graph);
  return g_steal_pointer (&graph);
}

CruGraph *
cru_graph_import_mergekit (const char *yaml, gssize length, const char *base_dir,
                           GPtrArray *warnings, GError **error)
{
  g_return_val_if_fail (yaml != NULL, NULL);
  return import_full (yaml, length, base_dir, _("The recipe"), NULL, warnings, error);
}

CruGraph *
cru_graph_import_mergekit_full (const char *yaml, gssize length, const char *base_dir,
                                const char *out_dir, GPtrArray *warnings, GError **error)
{
  g_return_val_if_fail (yaml != NULL, NULL);
  return import_full (yaml, length, base_dir, _("The recipe"), out_dir, warnings, error);
}

CruGraph *
cru_graph_import_mergekit_file (const char *path, GPtrArray *warnings, GError **error)
{
  g_autofree char *contents = NULL;
  g_autofree char *abs = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *name = NULL;
  g_autoptr(GError) local = NULL;
  gsize length;

  g_return_val_if_fail (path != NULL, NULL);
  abs = _cru_path_resolve (path, NULL);
  if (!g_file_get_contents (abs, &contents, &length, &local))
    {
      g_set_error (error, CRU_ERROR, local->code == G_FILE_ERROR_NOENT ? CRU_ERROR_NOT_FOUND
                   : CRU_ERROR_IO, _("Could not read the recipe %s: %s"), abs, local->message);
      return NULL;
    }
  dir = g_path_get_dirname (abs);
  name = g_filename_display_basename (abs);
  return import_full (contents, length, dir, name, NULL, warnings, error);
}
