/* cru-graph-query.c — read-only questions about a graph: lookups, links at a node, cycles,
 * and whether a link is allowed.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>

/* ---- queries ---- */

const CruNode *
cru_graph_get_node (CruGraph *self, guint id)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  return g_hash_table_lookup (self->nodes, GUINT_TO_POINTER (id));
}

const CruLink *
cru_graph_get_link (CruGraph *self, guint id)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  return g_hash_table_lookup (self->links, GUINT_TO_POINTER (id));
}

static int
compare_node_ids (gconstpointer a, gconstpointer b)
{
  guint ia = (*(const CruNode **) a)->id, ib = (*(const CruNode **) b)->id;
  return ia < ib ? -1 : ia > ib;
}

static int
compare_link_ids (gconstpointer a, gconstpointer b)
{
  guint ia = (*(const CruLink **) a)->id, ib = (*(const CruLink **) b)->id;
  return ia < ib ? -1 : ia > ib;
}

static GPtrArray *
values_array (GHashTable *table)
{
  GPtrArray *array = g_ptr_array_sized_new (g_hash_table_size (table));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (array, value);
  return array;
}

GPtrArray *
cru_graph_list_nodes (CruGraph *self)
{
  GPtrArray *array;

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  array = values_array (self->nodes);
  g_ptr_array_sort (array, compare_node_ids);
  return array;
}

GPtrArray *
cru_graph_list_links (CruGraph *self)
{
  GPtrArray *array;

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  array = values_array (self->links);
  g_ptr_array_sort (array, compare_link_ids);
  return array;
}

static int
port_index (CruNodeKind kind, const char *port)
{
  const char *const *inputs = cru_node_kind_inputs (kind);

  for (int i = 0; inputs[i]; i++)
    if (g_strcmp0 (inputs[i], port) == 0)
      return i;
  return 99;
}

static int
compare_links_at_input (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const CruLink *la = *(const CruLink **) a, *lb = *(const CruLink **) b;
  CruNodeKind kind = GPOINTER_TO_INT (user_data);
  int pa = port_index (kind, la->to_port), pb = port_index (kind, lb->to_port);

  if (pa != pb)
    return pa - pb;
  if (la->slot != lb->slot)
    return la->slot - lb->slot;
  return la->id < lb->id ? -1 : la->id > lb->id;
}

GPtrArray *
cru_graph_links_to (CruGraph *self, guint node)
{
  GPtrArray *array = g_ptr_array_new ();
  const CruNode *n = cru_graph_get_node (self, node);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->links);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((CruLink *) value)->to_node == node)
      g_ptr_array_add (array, value);
  g_ptr_array_sort_with_data (array, compare_links_at_input,
                              GINT_TO_POINTER (n ? n->kind : CRU_NODE_N));
  return array;
}

GPtrArray *
cru_graph_links_from (CruGraph *self, guint node)
{
  GPtrArray *array = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (CRU_IS_GRAPH (self), array);
  g_hash_table_iter_init (&iter, self->links);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((CruLink *) value)->from_node == node)
      g_ptr_array_add (array, value);
  g_ptr_array_sort (array, compare_link_ids);
  return array;
}

const CruLink *
cru_graph_find_link (CruGraph *self, guint to_node, const char *port, int slot)
{
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  g_hash_table_iter_init (&iter, self->links);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const CruLink *link = value;
      if (link->to_node == to_node && g_strcmp0 (link->to_port, port) == 0 && link->slot == slot)
        return link;
    }
  return NULL;
}

const CruValue *
cru_graph_get_param (CruGraph *self, guint node, const char *name)
{
  const CruNode *n = cru_graph_get_node (self, node);
  return n ? g_hash_table_lookup (n->params, name) : NULL;
}

const CruValue *
cru_graph_get_link_param (CruGraph *self, guint link, const char *name)
{
  const CruLink *l = cru_graph_get_link (self, link);
  return l ? g_hash_table_lookup (l->params, name) : NULL;
}

int
_cru_graph_count_links_at (CruGraph *self, guint to_node, const char *port)
{
  GHashTableIter iter;
  gpointer value;
  int n = 0;

  g_hash_table_iter_init (&iter, self->links);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((CruLink *) value)->to_node == to_node
        && g_strcmp0 (((CruLink *) value)->to_port, port) == 0)
      n++;
  return n;
}

gboolean
cru_graph_would_cycle (CruGraph *self, guint from_node, guint to_node)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  g_autoptr(GArray) todo = g_array_new (FALSE, FALSE, sizeof (guint));

  g_return_val_if_fail (CRU_IS_GRAPH (self), TRUE);
  /* A cycle appears when @from_node is already reachable downstream of @to_node. */
  g_array_append_val (todo, to_node);
  while (todo->len > 0)
    {
      guint id = g_array_index (todo, guint, todo->len - 1);
      GHashTableIter iter;
      gpointer value;

      g_array_set_size (todo, todo->len - 1);
      if (id == from_node)
        return TRUE;
      if (!g_hash_table_add (seen, GUINT_TO_POINTER (id)))
        continue;
      g_hash_table_iter_init (&iter, self->links);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((CruLink *) value)->from_node == id)
          g_array_append_val (todo, ((CruLink *) value)->to_node);
    }
  return FALSE;
}

const char *
_cru_node_display_name (const CruNode *node)
{
  if (node->label && *node->label)
    return node->label;
  if (node->kind == CRU_NODE_METHOD && node->method)
    return node->method;
  if (node->kind == CRU_NODE_MODEL && node->path)
    return node->path;
  return cru_node_kind_to_string (node->kind);
}

gboolean
cru_graph_can_link (CruGraph *self, guint from_node, guint to_node, const char *port,
                    char **reason)
{
  const CruNode *from, *to;
  const char *why = NULL;
  g_autofree char *owned = NULL;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  from = cru_graph_get_node (self, from_node);
  to = cru_graph_get_node (self, to_node);
  if (from == NULL || to == NULL)
    why = _("The node no longer exists.");
  else if (from_node == to_node)
    why = _("A node cannot feed its own input.");
  else if (!cru_node_kind_has_output (from->kind))
    why = owned = g_strdup_printf (_("“%s” is an output and has nothing to pass on."),
                                   _cru_node_display_name (from));
  else if (port == NULL || port_index (to->kind, port) == 99)
    why = owned = g_strdup_printf (_("A %s node has no “%s” input."),
                                   cru_node_kind_to_string (to->kind), port ? port : "");
  else if (cru_graph_would_cycle (self, from_node, to_node))
    why = owned = g_strdup_printf (_("Linking “%s” into “%s” would make a loop."),
                                   _cru_node_display_name (from), _cru_node_display_name (to));
  if (why == NULL)
    return TRUE;
  if (reason)
    *reason = g_strdup (why);
  return FALSE;
}

