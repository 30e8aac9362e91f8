/* cru-graph-kinds.c — what each kind of node accepts and produces, node/link copies, paths
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph-private.h"

#include <string.h>

static const char *const inputs_none[] = { NULL };
static const char *const inputs_method[] = { CRU_PORT_BASE, CRU_PORT_MODEL, NULL };
static const char *const inputs_slice[] = { CRU_PORT_MODEL, NULL };
static const char *const inputs_stack[] = { CRU_PORT_SLICE, NULL };
static const char *const inputs_output[] = { CRU_PORT_MODEL, NULL };
static const char *const inputs_moe[] = { CRU_PORT_BASE, CRU_PORT_EXPERT, CRU_PORT_SHARED_EXPERT,
                                          NULL };

static const char *const kind_names[CRU_NODE_N] = {
  "model", "method", "slice", "stack", "output", "moe",
};

const char *const *
cru_node_kind_inputs (CruNodeKind kind)
{
  switch (kind)
    {
    case CRU_NODE_METHOD: return inputs_method;
    case CRU_NODE_SLICE:  return inputs_slice;
    case CRU_NODE_STACK:  return inputs_stack;
    case CRU_NODE_OUTPUT: return inputs_output;
    case CRU_NODE_MOE:    return inputs_moe;
    case CRU_NODE_MODEL:
    default:              return inputs_none;
    }
}

gboolean
cru_node_kind_has_output (CruNodeKind kind)
{
  return kind != CRU_NODE_OUTPUT && kind < CRU_NODE_N;
}

gboolean
cru_node_port_is_variadic (CruNodeKind kind, const char *port)
{
  if (port == NULL)
    return FALSE;
  switch (kind)
    {
    case CRU_NODE_METHOD: return strcmp (port, CRU_PORT_MODEL) == 0;
    case CRU_NODE_STACK:  return strcmp (port, CRU_PORT_SLICE) == 0;
    case CRU_NODE_MOE:    return strcmp (port, CRU_PORT_EXPERT) == 0;
    default:              return FALSE;
    }
}

const char *
cru_node_kind_to_string (CruNodeKind kind)
{
  if ((guint) kind >= CRU_NODE_N)
    return "unknown";
  return kind_names[kind];
}

CruNodeKind
cru_node_kind_from_string (const char *s)
{
  if (s == NULL)
    return CRU_NODE_N;
  for (guint i = 0; i < CRU_NODE_N; i++)
    if (strcmp (s, kind_names[i]) == 0)
      return (CruNodeKind) i;
  return CRU_NODE_N;
}

GHashTable *
_cru_params_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                (GDestroyNotify) cru_value_free);
}

static GHashTable *
params_copy (GHashTable *params)
{
  GHashTable *copy = _cru_params_new ();
  GHashTableIter iter;
  gpointer key, value;

  if (params == NULL)
    return copy;
  g_hash_table_iter_init (&iter, params);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (copy, g_strdup (key), cru_value_copy (value));
  return copy;
}

CruNode *
_cru_node_copy (const CruNode *node)
{
  CruNode *copy = g_new0 (CruNode, 1);

  copy->id = node->id;
  copy->kind = node->kind;
  copy->label = g_strdup (node->label);
  copy->x = node->x;
  copy->y = node->y;
  copy->method = g_strdup (node->method);
  copy->path = g_strdup (node->path);
  copy->params = params_copy (node->params);
  copy->extra = node->extra ? json_object_ref (node->extra) : NULL;
  return copy;
}

void
_cru_node_free (CruNode *node)
{
  if (node == NULL)
    return;
  g_free (node->label);
  g_free (node->method);
  g_free (node->path);
  g_clear_pointer (&node->params, g_hash_table_unref);
  g_clear_pointer (&node->extra, json_object_unref);
  g_free (node);
}

CruLink *
_cru_link_copy (const CruLink *link)
{
  CruLink *copy = g_new0 (CruLink, 1);

  copy->id = link->id;
  copy->from_node = link->from_node;
  copy->to_node = link->to_node;
  copy->to_port = link->to_port;
  copy->slot = link->slot;
  copy->params = params_copy (link->params);
  copy->extra = link->extra ? json_object_ref (link->extra) : NULL;
  return copy;
}

void
_cru_link_free (CruLink *link)
{
  if (link == NULL)
    return;
  g_clear_pointer (&link->params, g_hash_table_unref);
  g_clear_pointer (&link->extra, json_object_unref);
  g_free (link);
}

void
_cru_node_set_param_raw (CruNode *node, const char *name, CruValue *value)
{
  if (value == NULL)
    g_hash_table_remove (node->params, name);
  else
    g_hash_table_insert (node->params, g_strdup (name), value);
}

char *
_cru_path_resolve (const char *path, const char *base_dir)
{
  g_autofree char *cwd = NULL;

  if (path == NULL)
    return NULL;
  if (path[0] == '~' && (path[1] == '/' || path[1] == '\0'))
    return g_build_filename (g_get_home_dir (), path + 1, NULL);
  if (g_path_is_absolute (path))
    return g_canonicalize_filename (path, NULL);
  if (base_dir == NULL)
    base_dir = cwd = g_get_current_dir ();
  return g_canonicalize_filename (path, base_dir);
}

char *
_cru_path_relativize (const char *path, const char *base_dir)
{
  g_autofree char *base = NULL;
  gsize len;

  if (path == NULL || base_dir == NULL || !g_path_is_absolute (path))
    return g_strdup (path);
  base = _cru_path_resolve (base_dir, NULL);
  len = strlen (base);
  if (strcmp (path, base) == 0)
    return g_strdup (".");
  if (len == 1 && base[0] == '/')
    return g_strdup (path + 1);
  if (strncmp (path, base, len) == 0 && path[len] == '/')
    return g_strdup (path + len + 1);
  return g_strdup (path);
}
