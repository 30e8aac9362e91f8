/* cru-graph-file.c — .crucible files (versioned JSON), copy/paste, and tidy layout
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-config.h"
#include "cru-graph-private.h"
#include "cru-error.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#define FORMAT_NAME "crucible-graph"

static const char *const node_fields[] = {
  "id", "kind", "label", "x", "y", "method", "path", "params", NULL };
static const char *const link_fields[] = {
  "id", "from", "to", "port", "slot", "params", NULL };
static const char *const top_fields[] = {
  "format", "version", "generator", "nodes", "links", NULL };

static gboolean
is_known (const char *const *fields, const char *name)
{
  return g_strv_contains (fields, name);
}

static JsonObject *
collect_extra (JsonObject *object, const char *const *known)
{
  JsonObject *extra = NULL;
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l; l = l->next)
    if (!is_known (known, l->data))
      {
        if (extra == NULL)
          extra = json_object_new ();
        json_object_set_member (extra, l->data,
                                json_node_copy (json_object_get_member (object, l->data)));
      }
  return extra;
}

static void
add_extra (JsonBuilder *builder, JsonObject *extra)
{
  g_autoptr(GList) members = NULL;

  if (extra == NULL)
    return;
  members = json_object_get_members (extra);
  for (GList *l = members; l; l = l->next)
    {
      json_builder_set_member_name (builder, l->data);
      json_builder_add_value (builder, json_node_copy (json_object_get_member (extra, l->data)));
    }
}

static int
compare_strptr (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return strcmp (*(const char **) a, *(const char **) b);
}

static void
add_params (JsonBuilder *builder, GHashTable *params)
{
  g_autofree gpointer *keys = NULL;
  guint n = 0;

  json_builder_set_member_name (builder, "params");
  json_builder_begin_object (builder);
  keys = g_hash_table_get_keys_as_array (params, &n);
  g_qsort_with_data (keys, n, sizeof (gpointer), compare_strptr, NULL);
  for (guint i = 0; i < n; i++)
    {
      json_builder_set_member_name (builder, keys[i]);
      json_builder_add_value (builder, cru_value_to_json (g_hash_table_lookup (params, keys[i])));
    }
  json_builder_end_object (builder);
}

static void
add_node (JsonBuilder *builder, const CruNode *node, const char *base_dir)
{
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_int_value (builder, node->id);
  json_builder_set_member_name (builder, "kind");
  json_builder_add_string_value (builder, cru_node_kind_to_string (node->kind));
  if (node->label)
    {
      json_builder_set_member_name (builder, "label");
      json_builder_add_string_value (builder, node->label);
    }
  json_builder_set_member_name (builder, "x");
  json_builder_add_double_value (builder, node->x);
  json_builder_set_member_name (builder, "y");
  json_builder_add_double_value (builder, node->y);
  if (node->method)
    {
      json_builder_set_member_name (builder, "method");
      json_builder_add_string_value (builder, node->method);
    }
  if (node->path)
    {
      g_autofree char *rel = _cru_path_relativize (node->path, base_dir);
      json_builder_set_member_name (builder, "path");
      json_builder_add_string_value (builder, rel);
    }
  add_params (builder, node->params);
  add_extra (builder, node->extra);
  json_builder_end_object (builder);
}

static void
add_link (JsonBuilder *builder, const CruLink *link)
{
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_int_value (builder, link->id);
  json_builder_set_member_name (builder, "from");
  json_builder_add_int_value (builder, link->from_node);
  json_builder_set_member_name (builder, "to");
  json_builder_add_int_value (builder, link->to_node);
  json_builder_set_member_name (builder, "port");
  json_builder_add_string_value (builder, link->to_port);
  json_builder_set_member_name (builder, "slot");
  json_builder_add_int_value (builder, link->slot);
  add_params (builder, link->params);
  add_extra (builder, link->extra);
  json_builder_end_object (builder);
}

JsonNode *
_cru_graph_to_json (CruGraph *self, const guint *ids, guint n_ids, const char *base_dir)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (self);
  g_autoptr(GPtrArray) links = cru_graph_list_links (self);
  g_autoptr(GHashTable) keep = NULL;

  if (ids)
    {
      keep = g_hash_table_new (NULL, NULL);
      for (guint i = 0; i < n_ids; i++)
        g_hash_table_add (keep, GUINT_TO_POINTER (ids[i]));
    }
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "format");
  json_builder_add_string_value (builder, FORMAT_NAME);
  json_builder_set_member_name (builder, "version");
  json_builder_add_string_value (builder, G_STRINGIFY (CRU_GRAPH_FORMAT_VERSION_MAJOR) "."
                                 G_STRINGIFY (CRU_GRAPH_FORMAT_VERSION_MINOR));
  json_builder_set_member_name (builder, "generator");
  json_builder_add_string_value (builder, "Crucible " CRU_VERSION);
  json_builder_set_member_name (builder, "nodes");
  json_builder_begin_array (builder);
  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *node = nodes->pdata[i];
      if (keep == NULL || g_hash_table_contains (keep, GUINT_TO_POINTER (node->id)))
        add_node (builder, node, base_dir);
    }
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "links");
  json_builder_begin_array (builder);
  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = links->pdata[i];
      if (keep == NULL || (g_hash_table_contains (keep, GUINT_TO_POINTER (link->from_node))
                           && g_hash_table_contains (keep, GUINT_TO_POINTER (link->to_node))))
        add_link (builder, link);
    }
  json_builder_end_array (builder);
  if (ids == NULL)
    add_extra (builder, _cru_graph_get_extra (self));
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static gboolean
get_int_member (JsonObject *object, const char *name, gint64 *out)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    *out = json_node_get_int (node);
  else if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    *out = (gint64) json_node_get_double (node);
  else
    return FALSE;
  return TRUE;
}

static double
get_double_member (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (double) json_node_get_int (node);
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return json_node_get_double (node);
  return 0;
}

static const char *
get_string_member (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
cru_graph_port_is_variadic_for (const CruNode *node, const char *port)
{
  return cru_node_port_is_variadic (node->kind, port);
}

static gboolean
read_params (JsonObject *object, GHashTable *params, const char *what, const char *file_label,
             GError **error)
{
  JsonNode *node = json_object_get_member (object, "params");
  g_autoptr(GList) members = NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the parameters of %s are not a JSON object"), file_label, what);
      return FALSE;
    }
  members = json_object_get_members (json_node_get_object (node));
  for (GList *l = members; l; l = l->next)
    {
      g_autoptr(GError) local = NULL;
      CruValue *value = cru_value_from_json (
          json_object_get_member (json_node_get_object (node), l->data), &local);
      if (value == NULL)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: parameter “%s” of %s: %s"), file_label, (char *) l->data, what,
                       local ? local->message : "?");
          return FALSE;
        }
      g_hash_table_insert (params, g_strdup (l->data), value);
    }
  return TRUE;
}

static gboolean
check_version (JsonObject *root, const char *file_label, GError **error)
{
  const char *format = get_string_member (root, "format");
  const char *version = get_string_member (root, "version");
  guint64 major = 0;
  char *end = NULL;

  if (g_strcmp0 (format, FORMAT_NAME) != 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not a Crucible graph (its “format” is not “%s”)"), file_label,
                   FORMAT_NAME);
      return FALSE;
    }
  if (version)
    major = g_ascii_strtoull (version, &end, 10);
  if (version == NULL || end == version)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s has no readable format version"), file_label);
      return FALSE;
    }
  if (major > CRU_GRAPH_FORMAT_VERSION_MAJOR)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_VERSION,
                   _("%s was made by a newer Crucible (format %s); this version reads format %d.x"),
                   file_label, version, CRU_GRAPH_FORMAT_VERSION_MAJOR);
      return FALSE;
    }
  return TRUE;
}

gboolean
_cru_graph_from_json (CruGraph *self, JsonNode *root_node, const char *base_dir,
                      const char *file_label, GError **error)
{
  JsonObject *root;
  JsonArray *nodes, *links;
  JsonNode *member;

  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not a Crucible graph (not a JSON object)"), file_label);
      return FALSE;
    }
  root = json_node_get_object (root_node);
  if (!check_version (root, file_label, error))
    return FALSE;
  member = json_object_get_member (root, "nodes");
  nodes = member && JSON_NODE_HOLDS_ARRAY (member) ? json_node_get_array (member) : NULL;
  if (member && nodes == NULL && !JSON_NODE_HOLDS_NULL (member))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “nodes” should be a list ([ … ])"), file_label);
      return FALSE;
    }
  member = json_object_get_member (root, "links");
  links = member && JSON_NODE_HOLDS_ARRAY (member) ? json_node_get_array (member) : NULL;
  if (member && links == NULL && !JSON_NODE_HOLDS_NULL (member))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “links” should be a list ([ … ])"), file_label);
      return FALSE;
    }

  for (guint i = 0; nodes && i < json_array_get_length (nodes); i++)
    {
      JsonNode *element = json_array_get_element (nodes, i);
      JsonObject *object;
      CruNode *node;
      gint64 id = 0;
      const char *kind, *path;
      g_autofree char *what = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (element))
        goto bad_node;
      object = json_node_get_object (element);
      kind = get_string_member (object, "kind");
      if (!get_int_member (object, "id", &id) || id <= 0 || id > G_MAXINT)
        goto bad_node;
      if (cru_graph_get_node (self, (guint) id))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: node id %d is used twice"), file_label, (int) id);
          return FALSE;
        }
      if (cru_node_kind_from_string (kind) == CRU_NODE_N)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: node %d has an unknown kind “%s”"), file_label, (int) id,
                       kind ? kind : "");
          return FALSE;
        }
      path = get_string_member (object, "path");
      if (path == NULL && json_object_has_member (object, "path")
          && !JSON_NODE_HOLDS_NULL (json_object_get_member (object, "path")))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: the “path” of node %d should be text (a folder or file name)"),
                       file_label, (int) id);
          return FALSE;
        }
      node = g_new0 (CruNode, 1);
      node->id = (guint) id;
      node->kind = cru_node_kind_from_string (kind);
      node->label = g_strdup (get_string_member (object, "label"));
      node->x = get_double_member (object, "x");
      node->y = get_double_member (object, "y");
      node->method = g_strdup (get_string_member (object, "method"));
      node->path = path && *path ? _cru_path_resolve (path, base_dir) : NULL;
      node->params = _cru_params_new ();
      node->extra = collect_extra (object, node_fields);
      _cru_graph_insert_node_raw (self, node);
      what = g_strdup_printf (_("node %d"), (int) id);
      if (!read_params (object, node->params, what, file_label, error))
        return FALSE;
      continue;
    bad_node:
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: node number %u has no valid id"), file_label, i + 1);
      return FALSE;
    }

  for (guint i = 0; links && i < json_array_get_length (links); i++)
    {
      JsonNode *element = json_array_get_element (links, i);
      JsonObject *object;
      CruLink *link;
      gint64 id = 0, from = 0, to = 0, slot = 0;
      const char *port;
      const CruNode *to_node;
      g_autofree char *what = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (element))
        goto bad_link;
      object = json_node_get_object (element);
      port = get_string_member (object, "port");
      get_int_member (object, "slot", &slot);
      if (!get_int_member (object, "id", &id) || id <= 0 || id > G_MAXINT
          || !get_int_member (object, "from", &from) || !get_int_member (object, "to", &to)
          || cru_graph_get_link (self, (guint) id) || slot < 0 || slot > G_MAXINT)
        goto bad_link;
      to_node = cru_graph_get_node (self, (guint) to);
      if (cru_graph_get_node (self, (guint) from) == NULL || to_node == NULL)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: link %d connects a node that is not in the file"), file_label,
                       (int) id);
          return FALSE;
        }
      if (port == NULL || !g_strv_contains ((const char *const *) cru_node_kind_inputs (to_node->kind), port))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: link %d goes into “%s”, which a %s node does not have"),
                       file_label, (int) id, port ? port : "", cru_node_kind_to_string (to_node->kind));
          return FALSE;
        }
      if (!cru_graph_port_is_variadic_for (to_node, port) && slot != 0)
        slot = 0;
      if (cru_graph_find_link (self, (guint) to, g_intern_string (port), (int) slot))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: link %d goes into an input that another link already uses"),
                       file_label, (int) id);
          return FALSE;
        }
      if (cru_graph_would_cycle (self, (guint) from, (guint) to))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: link %d closes a loop through node %d"), file_label, (int) id,
                       (int) to);
          return FALSE;
        }
      link = g_new0 (CruLink, 1);
      link->id = (guint) id;
      link->from_node = (guint) from;
      link->to_node = (guint) to;
      link->to_port = g_intern_string (port);
      link->slot = (int) slot;
      link->params = _cru_params_new ();
      link->extra = collect_extra (object, link_fields);
      _cru_graph_insert_link_raw (self, link);
      what = g_strdup_printf (_("link %d"), (int) id);
      if (!read_params (object, link->params, what, file_label, error))
        return FALSE;
      continue;
    bad_link:
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: link number %u is incomplete or repeats an id"), file_label, i + 1);
      return FALSE;
    }

  {
    g_autoptr(JsonObject) extra = collect_extra (root, top_fields);
    _cru_graph_set_extra (self, extra);
  }
  return TRUE;
}

gboolean
cru_graph_load_data (CruGraph *self, const char *data, gssize length, const char *base_dir,
                     GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(CruGraph) tmp = cru_graph_new ();
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  if (!json_parser_load_from_data (parser, data, length, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("The graph is not valid JSON: %s"), local->message);
      return FALSE;
    }
  if (!_cru_graph_from_json (tmp, json_parser_get_root (parser), base_dir, _("The graph"),
                             error))
    return FALSE;
  _cru_graph_take_contents (self, tmp);
  return TRUE;
}

gboolean
cru_graph_load_file (CruGraph *self, const char *path, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(CruGraph) tmp = cru_graph_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *abs = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *name = NULL;
  gsize length = 0;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  abs = _cru_path_resolve (path, NULL);
  dir = g_path_get_dirname (abs);
  name = g_filename_display_basename (abs);
  if (!g_file_get_contents (abs, &contents, &length, &local))
    {
      g_set_error (error, CRU_ERROR, local->code == G_FILE_ERROR_NOENT
                   ? CRU_ERROR_NOT_FOUND : CRU_ERROR_IO,
                   _("Could not read the graph %s: %s"), abs, local->message);
      return FALSE;
    }
  if (!json_parser_load_from_data (parser, contents, length, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not valid JSON: %s"), name, local->message);
      return FALSE;
    }
  if (!_cru_graph_from_json (tmp, json_parser_get_root (parser), dir, name, error))
    return FALSE;
  _cru_graph_take_contents (self, tmp);
  _cru_graph_set_file (self, abs);
  _cru_graph_mark_saved (self);
  return TRUE;
}

char *
cru_graph_save_data (CruGraph *self, const char *base_dir)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  char *text;

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  root = _cru_graph_to_json (self, NULL, 0, base_dir);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 2);
  text = json_generator_to_data (generator, NULL);
  {
    char *with_newline = g_strconcat (text, "\n", NULL);
    g_free (text);
    return with_newline;
  }
}

gboolean
cru_graph_save_file (CruGraph *self, const char *path, GError **error)
{
  g_autofree char *abs = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  abs = _cru_path_resolve (path, NULL);
  dir = g_path_get_dirname (abs);
  text = cru_graph_save_data (self, dir);
  if (!g_file_set_contents (abs, text, -1, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("Could not save the graph to %s: %s"),
                   abs, local->message);
      return FALSE;
    }
  _cru_graph_set_file (self, abs);
  _cru_graph_mark_saved (self);
  return TRUE;
}

/* ---- copy/paste ---- */

char *
cru_graph_copy_nodes (CruGraph *self, const guint *ids, guint n_ids)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonGenerator) generator = json_generator_new ();

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  root = _cru_graph_to_json (self, ids, ids ? n_ids : 0, NULL);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  return json_generator_to_data (generator, NULL);
}

GArray *
cru_graph_paste (CruGraph *self, const char *text, double dx, double dy, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(CruGraph) tmp = cru_graph_new ();
  g_autoptr(GHashTable) map = g_hash_table_new (NULL, NULL);
  g_autoptr(GPtrArray) nodes = NULL;
  g_autoptr(GPtrArray) links = NULL;
  g_autoptr(GError) local = NULL;
  GArray *ids;

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  if (text == NULL || !json_parser_load_from_data (parser, text, -1, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("The clipboard does not hold Crucible nodes"));
      return NULL;
    }
  if (!_cru_graph_from_json (tmp, json_parser_get_root (parser), NULL, _("The clipboard"),
                             error))
    return NULL;
  nodes = cru_graph_list_nodes (tmp);
  links = cru_graph_list_links (tmp);
  ids = g_array_new (FALSE, FALSE, sizeof (guint));
  cru_graph_begin_group (self, _("Paste"));
  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *node = nodes->pdata[i];
      guint id = _cru_graph_add_node_copy (self, node, dx, dy);
      g_hash_table_insert (map, GUINT_TO_POINTER (node->id), GUINT_TO_POINTER (id));
      g_array_append_val (ids, id);
    }
  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = links->pdata[i];
      _cru_graph_add_link_copy (self, link,
                                GPOINTER_TO_UINT (g_hash_table_lookup (map, GUINT_TO_POINTER (link->from_node))),
                                GPOINTER_TO_UINT (g_hash_table_lookup (map, GUINT_TO_POINTER (link->to_node))));
    }
  cru_graph_end_group (self);
  return ids;
}

/* ---- layout ---- */

static int
node_depth (CruGraph *self, guint id, GHashTable *memo, int guard)
{
  gpointer cached;
  g_autoptr(GPtrArray) in = NULL;
  int depth = 0;

  if (g_hash_table_lookup_extended (memo, GUINT_TO_POINTER (id), NULL, &cached))
    return GPOINTER_TO_INT (cached);
  if (guard > 10000)
    return 0;
  in = cru_graph_links_to (self, id);
  for (guint i = 0; i < in->len; i++)
    depth = MAX (depth, 1 + node_depth (self, ((CruLink *) in->pdata[i])->from_node, memo,
                                        guard + 1));
  g_hash_table_insert (memo, GUINT_TO_POINTER (id), GINT_TO_POINTER (depth));
  return depth;
}

void
_cru_graph_layout_columns (CruGraph *self)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (self);
  g_autoptr(GHashTable) memo = g_hash_table_new (NULL, NULL);
  g_autoptr(GArray) rows = g_array_new (FALSE, TRUE, sizeof (int));

  for (guint i = 0; i < nodes->len; i++)
    {
      CruNode *node = nodes->pdata[i];
      int depth = node_depth (self, node->id, memo, 0);

      if ((guint) depth >= rows->len)
        g_array_set_size (rows, depth + 1);
      node->x = 40 + 260.0 * depth;
      node->y = 40 + 140.0 * g_array_index (rows, int, depth)++;
    }
}
