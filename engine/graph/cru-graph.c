/* cru-graph.c — the merge graph object: storage, queries, edits and undo/redo.
 *
 * Every edit is made of elementary operations (add/remove a node or link, set a field,
 * a parameter or a slot). Each operation is applied, announced with "changed", and recorded
 * in the open step; undo replays a step's operations backwards, inverted.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph-private.h"
#include "cru-error.h"

#include <glib/gi18n-lib.h>
#include <string.h>

typedef enum {
  OP_ADD_NODE,
  OP_REMOVE_NODE,
  OP_SET_LABEL,
  OP_SET_METHOD,
  OP_SET_PATH,
  OP_MOVE,
  OP_SET_PARAM,
  OP_SET_LINK_PARAM,
  OP_ADD_LINK,
  OP_REMOVE_LINK,
  OP_SET_SLOT,
} OpKind;

typedef struct {
  OpKind    kind;
  guint     id;
  CruNode  *node;                 /* ADD/REMOVE_NODE snapshot */
  CruLink  *link;                 /* ADD/REMOVE_LINK snapshot */
  char     *name;                 /* SET_*PARAM */
  char     *old_str, *new_str;    /* SET_LABEL/METHOD/PATH */
  CruValue *old_value, *new_value;
  double    old_x, old_y, new_x, new_y;
  int       old_slot, new_slot;
} Op;

struct _CruGraphStep {
  char      *label;
  GPtrArray *ops;     /* Op* */
  guint64    serial;
};

G_DEFINE_FINAL_TYPE (CruGraph, cru_graph, G_TYPE_OBJECT)

enum { PROP_0, PROP_CAN_UNDO, PROP_CAN_REDO, PROP_MODIFIED, PROP_FILE, N_PROPS };
enum { SIGNAL_CHANGED, SIGNAL_HISTORY_CHANGED, N_SIGNALS };
static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
op_free (Op *op)
{
  _cru_node_free (op->node);
  _cru_link_free (op->link);
  g_free (op->name);
  g_free (op->old_str);
  g_free (op->new_str);
  if (op->old_value)
    cru_value_free (op->old_value);
  if (op->new_value)
    cru_value_free (op->new_value);
  g_free (op);
}

static void
step_free (CruGraphStep *step)
{
  g_free (step->label);
  g_ptr_array_unref (step->ops);
  g_free (step);
}

static void
cru_graph_finalize (GObject *object)
{
  CruGraph *self = CRU_GRAPH (object);

  g_hash_table_unref (self->links);
  g_hash_table_unref (self->nodes);
  g_clear_pointer (&self->extra, json_object_unref);
  g_free (self->file);
  g_ptr_array_unref (self->undo);
  g_ptr_array_unref (self->redo);
  g_clear_pointer (&self->open, step_free);
  G_OBJECT_CLASS (cru_graph_parent_class)->finalize (object);
}

static void
cru_graph_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  CruGraph *self = CRU_GRAPH (object);

  switch (prop_id)
    {
    case PROP_CAN_UNDO: g_value_set_boolean (value, cru_graph_can_undo (self)); break;
    case PROP_CAN_REDO: g_value_set_boolean (value, cru_graph_can_redo (self)); break;
    case PROP_MODIFIED: g_value_set_boolean (value, cru_graph_get_modified (self)); break;
    case PROP_FILE:
      g_value_take_object (value, self->file ? g_file_new_for_path (self->file) : NULL);
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cru_graph_class_init (CruGraphClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cru_graph_finalize;
  object_class->get_property = cru_graph_get_property;

  properties[PROP_CAN_UNDO] = g_param_spec_boolean ("can-undo", NULL, NULL, FALSE,
                                                    G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_CAN_REDO] = g_param_spec_boolean ("can-redo", NULL, NULL, FALSE,
                                                    G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_MODIFIED] = g_param_spec_boolean ("modified", NULL, NULL, FALSE,
                                                    G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_FILE] = g_param_spec_object ("file", NULL, NULL, G_TYPE_FILE,
                                               G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_UINT);
  signals[SIGNAL_HISTORY_CHANGED] = g_signal_new ("history-changed", G_TYPE_FROM_CLASS (klass),
                                                  G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                  G_TYPE_NONE, 0);
}

static void
cru_graph_init (CruGraph *self)
{
  self->nodes = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) _cru_node_free);
  self->links = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) _cru_link_free);
  self->next_node_id = 1;
  self->next_link_id = 1;
  self->undo = g_ptr_array_new_with_free_func ((GDestroyNotify) step_free);
  self->redo = g_ptr_array_new_with_free_func ((GDestroyNotify) step_free);
  self->next_serial = 1;
}

CruGraph *
cru_graph_new (void)
{
  return g_object_new (CRU_TYPE_GRAPH, NULL);
}

static void
emit (CruGraph *self, CruGraphChange change, guint id)
{
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0, (int) change, id);
}

static void
history_changed (CruGraph *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAN_UNDO]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAN_REDO]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODIFIED]);
  g_signal_emit (self, signals[SIGNAL_HISTORY_CHANGED], 0);
}

/* ---- elementary operations ---- */

static char **
string_field (CruNode *node, OpKind kind)
{
  switch (kind)
    {
    case OP_SET_LABEL:  return &node->label;
    case OP_SET_METHOD: return &node->method;
    default:            return &node->path;
    }
}

/* Applies @op (or its inverse) and announces it. */
static void
op_apply (CruGraph *self, Op *op, gboolean forward)
{
  CruNode *node;
  CruLink *link;

  switch (op->kind)
    {
    case OP_ADD_NODE:
    case OP_REMOVE_NODE:
      if ((op->kind == OP_ADD_NODE) == forward)
        {
          _cru_graph_insert_node_raw (self, _cru_node_copy (op->node));
          emit (self, CRU_GRAPH_CHANGE_NODE_ADDED, op->node->id);
        }
      else
        {
          g_hash_table_remove (self->nodes, GUINT_TO_POINTER (op->node->id));
          emit (self, CRU_GRAPH_CHANGE_NODE_REMOVED, op->node->id);
        }
      break;
    case OP_ADD_LINK:
    case OP_REMOVE_LINK:
      if ((op->kind == OP_ADD_LINK) == forward)
        {
          _cru_graph_insert_link_raw (self, _cru_link_copy (op->link));
          emit (self, CRU_GRAPH_CHANGE_LINK_ADDED, op->link->id);
        }
      else
        {
          g_hash_table_remove (self->links, GUINT_TO_POINTER (op->link->id));
          emit (self, CRU_GRAPH_CHANGE_LINK_REMOVED, op->link->id);
        }
      break;
    case OP_SET_LABEL:
    case OP_SET_METHOD:
    case OP_SET_PATH:
      node = g_hash_table_lookup (self->nodes, GUINT_TO_POINTER (op->id));
      g_return_if_fail (node != NULL);
      g_free (*string_field (node, op->kind));
      *string_field (node, op->kind) = g_strdup (forward ? op->new_str : op->old_str);
      emit (self, CRU_GRAPH_CHANGE_NODE_CHANGED, op->id);
      break;
    case OP_MOVE:
      node = g_hash_table_lookup (self->nodes, GUINT_TO_POINTER (op->id));
      g_return_if_fail (node != NULL);
      node->x = forward ? op->new_x : op->old_x;
      node->y = forward ? op->new_y : op->old_y;
      emit (self, CRU_GRAPH_CHANGE_NODE_MOVED, op->id);
      break;
    case OP_SET_PARAM:
    case OP_SET_LINK_PARAM:
      {
        CruValue *v = forward ? op->new_value : op->old_value;
        GHashTable *params;

        if (op->kind == OP_SET_PARAM)
          {
            node = g_hash_table_lookup (self->nodes, GUINT_TO_POINTER (op->id));
            g_return_if_fail (node != NULL);
            params = node->params;
          }
        else
          {
            link = g_hash_table_lookup (self->links, GUINT_TO_POINTER (op->id));
            g_return_if_fail (link != NULL);
            params = link->params;
          }
        if (v == NULL)
          g_hash_table_remove (params, op->name);
        else
          g_hash_table_insert (params, g_strdup (op->name), cru_value_copy (v));
        emit (self, op->kind == OP_SET_PARAM ? CRU_GRAPH_CHANGE_NODE_CHANGED
                                             : CRU_GRAPH_CHANGE_LINK_CHANGED, op->id);
      }
      break;
    case OP_SET_SLOT:
      link = g_hash_table_lookup (self->links, GUINT_TO_POINTER (op->id));
      g_return_if_fail (link != NULL);
      link->slot = forward ? op->new_slot : op->old_slot;
      emit (self, CRU_GRAPH_CHANGE_LINK_CHANGED, op->id);
      break;
    }
}

static void
drop_redo (CruGraph *self)
{
  /* The saved state may live on the redo stack; once it is gone, so is "unmodified". */
  for (guint i = 0; i < self->redo->len; i++)
    if (((CruGraphStep *) self->redo->pdata[i])->serial == self->saved_serial)
      self->saved_lost = TRUE;
  g_ptr_array_set_size (self->redo, 0);
}

/* Applies @op and records it in the open step (taking ownership). */
static void
record (CruGraph *self, Op *op)
{
  g_return_if_fail (self->open != NULL);
  op_apply (self, op, TRUE);
  g_ptr_array_add (self->open->ops, op);
}

static Op *
op_new (OpKind kind, guint id)
{
  Op *op = g_new0 (Op, 1);
  op->kind = kind;
  op->id = id;
  return op;
}

void
cru_graph_begin_group (CruGraph *self, const char *label)
{
  g_return_if_fail (CRU_IS_GRAPH (self));

  if (self->depth++ == 0)
    {
      self->open = g_new0 (CruGraphStep, 1);
      self->open->label = g_strdup (label);
      self->open->ops = g_ptr_array_new_with_free_func ((GDestroyNotify) op_free);
    }
  else if (self->open->label == NULL)
    self->open->label = g_strdup (label);
}

static void
end_group_full (CruGraph *self, gboolean coalescable)
{
  CruGraphStep *step;

  g_return_if_fail (self->depth > 0);
  if (--self->depth > 0)
    return;
  step = g_steal_pointer (&self->open);
  if (step->ops->len == 0)
    {
      step_free (step);
      return;
    }
  step->serial = self->next_serial++;
  drop_redo (self);
  g_ptr_array_add (self->undo, step);
  self->may_coalesce = coalescable;
  history_changed (self);
}

void
cru_graph_end_group (CruGraph *self)
{
  g_return_if_fail (CRU_IS_GRAPH (self));
  end_group_full (self, FALSE);
}

gboolean
cru_graph_can_undo (CruGraph *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  return self->undo->len > 0;
}

gboolean
cru_graph_can_redo (CruGraph *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  return self->redo->len > 0;
}

gboolean
cru_graph_undo (CruGraph *self)
{
  CruGraphStep *step;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  if (self->depth > 0 || self->undo->len == 0)
    return FALSE;
  step = g_ptr_array_steal_index (self->undo, self->undo->len - 1);
  for (guint i = step->ops->len; i > 0; i--)
    op_apply (self, step->ops->pdata[i - 1], FALSE);
  g_ptr_array_add (self->redo, step);
  self->may_coalesce = FALSE;
  history_changed (self);
  return TRUE;
}

gboolean
cru_graph_redo (CruGraph *self)
{
  CruGraphStep *step;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  if (self->depth > 0 || self->redo->len == 0)
    return FALSE;
  step = g_ptr_array_steal_index (self->redo, self->redo->len - 1);
  for (guint i = 0; i < step->ops->len; i++)
    op_apply (self, step->ops->pdata[i], TRUE);
  g_ptr_array_add (self->undo, step);
  self->may_coalesce = FALSE;
  history_changed (self);
  return TRUE;
}

const char *
cru_graph_get_undo_label (CruGraph *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  if (self->undo->len == 0)
    return NULL;
  return ((CruGraphStep *) self->undo->pdata[self->undo->len - 1])->label;
}

const char *
cru_graph_get_redo_label (CruGraph *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  if (self->redo->len == 0)
    return NULL;
  return ((CruGraphStep *) self->redo->pdata[self->redo->len - 1])->label;
}

/* Ends the current burst of parameter typing so that the next set_param is a new step. */
void
cru_graph_break_coalescing (CruGraph *self)
{
  g_return_if_fail (CRU_IS_GRAPH (self));
  self->may_coalesce = FALSE;
}

gboolean
cru_graph_get_modified (CruGraph *self)
{
  guint64 top;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  if (self->saved_lost)
    return TRUE;
  top = self->undo->len ? ((CruGraphStep *) self->undo->pdata[self->undo->len - 1])->serial : 0;
  return top != self->saved_serial;
}

void
_cru_graph_mark_saved (CruGraph *self)
{
  self->saved_serial = self->undo->len
    ? ((CruGraphStep *) self->undo->pdata[self->undo->len - 1])->serial : 0;
  self->saved_lost = FALSE;
  self->may_coalesce = FALSE;
  history_changed (self);
}

const char *
cru_graph_get_path (CruGraph *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH (self), NULL);
  return self->file;
}

void
_cru_graph_set_file (CruGraph *self, const char *path)
{
  if (g_strcmp0 (self->file, path) == 0)
    return;
  g_free (self->file);
  self->file = g_strdup (path);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FILE]);
}

JsonObject *
_cru_graph_get_extra (CruGraph *self)
{
  return self->extra;
}

void
_cru_graph_set_extra (CruGraph *self, JsonObject *extra)
{
  g_clear_pointer (&self->extra, json_object_unref);
  self->extra = extra ? json_object_ref (extra) : NULL;
}

/* ---- raw storage ---- */

void
_cru_graph_insert_node_raw (CruGraph *self, CruNode *node)
{
  if (node->params == NULL)
    node->params = _cru_params_new ();
  g_hash_table_replace (self->nodes, GUINT_TO_POINTER (node->id), node);
  self->next_node_id = MAX (self->next_node_id, node->id + 1);
}

void
_cru_graph_insert_link_raw (CruGraph *self, CruLink *link)
{
  if (link->params == NULL)
    link->params = _cru_params_new ();
  g_hash_table_replace (self->links, GUINT_TO_POINTER (link->id), link);
  self->next_link_id = MAX (self->next_link_id, link->id + 1);
}

void
_cru_graph_take_contents (CruGraph *self, CruGraph *src)
{
  GHashTable *tmp;

  g_return_if_fail (self->depth == 0);
  tmp = self->nodes; self->nodes = src->nodes; src->nodes = tmp;
  tmp = self->links; self->links = src->links; src->links = tmp;
  g_hash_table_remove_all (src->links);
  g_hash_table_remove_all (src->nodes);
  self->next_node_id = MAX (src->next_node_id, 1);
  self->next_link_id = MAX (src->next_link_id, 1);
  _cru_graph_set_extra (self, src->extra);
  g_ptr_array_set_size (self->undo, 0);
  g_ptr_array_set_size (self->redo, 0);
  self->saved_serial = 0;
  self->saved_lost = FALSE;
  self->may_coalesce = FALSE;
  emit (self, CRU_GRAPH_CHANGE_RESET, 0);
  history_changed (self);
}

void
cru_graph_clear (CruGraph *self)
{
  g_autoptr(CruGraph) empty = cru_graph_new ();

  g_return_if_fail (CRU_IS_GRAPH (self));
  _cru_graph_take_contents (self, empty);
  _cru_graph_set_file (self, NULL);
}

/* ---- edits ---- */

static CruNode *
lookup_node (CruGraph *self, guint id)
{
  return g_hash_table_lookup (self->nodes, GUINT_TO_POINTER (id));
}

guint
cru_graph_add_node (CruGraph *self, CruNodeKind kind, double x, double y)
{
  Op *op;

  g_return_val_if_fail (CRU_IS_GRAPH (self), 0);
  g_return_val_if_fail ((guint) kind < CRU_NODE_N, 0);
  op = op_new (OP_ADD_NODE, self->next_node_id);
  op->node = g_new0 (CruNode, 1);
  op->node->id = op->id;
  op->node->kind = kind;
  op->node->x = x;
  op->node->y = y;
  op->node->params = _cru_params_new ();
  cru_graph_begin_group (self, _("Add Node"));
  record (self, op);
  cru_graph_end_group (self);
  return op->id;
}

/* Removes a link, shifting the later links of a variadic port down one slot. */
static void
remove_link_recorded (CruGraph *self, CruLink *link)
{
  const CruNode *to = lookup_node (self, link->to_node);
  guint to_node = link->to_node;
  const char *port = link->to_port;
  int slot = link->slot;
  Op *op = op_new (OP_REMOVE_LINK, link->id);

  op->link = _cru_link_copy (link);
  record (self, op);   /* frees nothing: @link is freed by the table */
  if (to && cru_node_port_is_variadic (to->kind, port))
    {
      g_autoptr(GPtrArray) links = cru_graph_links_to (self, to_node);
      for (guint i = 0; i < links->len; i++)
        {
          CruLink *l = links->pdata[i];
          if (l->to_port == port && l->slot > slot)
            {
              Op *shift = op_new (OP_SET_SLOT, l->id);
              shift->old_slot = l->slot;
              shift->new_slot = l->slot - 1;
              record (self, shift);
            }
        }
    }
}

gboolean
cru_graph_remove_node (CruGraph *self, guint id)
{
  CruNode *node;
  Op *op;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  node = lookup_node (self, id);
  if (node == NULL)
    return FALSE;
  cru_graph_begin_group (self, g_dngettext (GETTEXT_PACKAGE, "Delete Node", "Delete Nodes", 1));
  for (;;)
    {
      g_autoptr(GPtrArray) to = cru_graph_links_to (self, id);
      g_autoptr(GPtrArray) from = cru_graph_links_from (self, id);
      if (to->len == 0 && from->len == 0)
        break;
      /* Highest slots first, so that no shifting is needed for the links into @id. */
      remove_link_recorded (self, to->len ? to->pdata[to->len - 1] : from->pdata[0]);
    }
  op = op_new (OP_REMOVE_NODE, id);
  op->node = _cru_node_copy (node);
  record (self, op);
  cru_graph_end_group (self);
  return TRUE;
}

static void
set_string (CruGraph *self, guint id, OpKind kind, const char *value, const char *label)
{
  CruNode *node = lookup_node (self, id);
  Op *op;

  g_return_if_fail (node != NULL);
  if (g_strcmp0 (*string_field (node, kind), value) == 0)
    return;
  op = op_new (kind, id);
  op->old_str = g_strdup (*string_field (node, kind));
  op->new_str = g_strdup (value);
  cru_graph_begin_group (self, label);
  record (self, op);
  cru_graph_end_group (self);
}

void
cru_graph_set_label (CruGraph *self, guint id, const char *label)
{
  g_return_if_fail (CRU_IS_GRAPH (self));
  set_string (self, id, OP_SET_LABEL, label, _("Rename Node"));
}

void
cru_graph_set_method (CruGraph *self, guint id, const char *method)
{
  g_return_if_fail (CRU_IS_GRAPH (self));
  set_string (self, id, OP_SET_METHOD, method, _("Change Method"));
}

void
cru_graph_set_path (CruGraph *self, guint id, const char *path)
{
  g_return_if_fail (CRU_IS_GRAPH (self));
  set_string (self, id, OP_SET_PATH, path, _("Change Path"));
}

void
cru_graph_move_node (CruGraph *self, guint id, double x, double y)
{
  CruNode *node;
  Op *op;

  g_return_if_fail (CRU_IS_GRAPH (self));
  node = lookup_node (self, id);
  g_return_if_fail (node != NULL);
  if (node->x == x && node->y == y)
    return;
  op = op_new (OP_MOVE, id);
  op->old_x = node->x;
  op->old_y = node->y;
  op->new_x = x;
  op->new_y = y;
  cru_graph_begin_group (self, g_dngettext (GETTEXT_PACKAGE, "Move Node", "Move Nodes", 1));
  record (self, op);
  cru_graph_end_group (self);
}

static void
set_param_common (CruGraph *self, OpKind kind, guint id, GHashTable *params,
                  const char *name, CruValue *value)
{
  CruValue *old = g_hash_table_lookup (params, name);
  Op *op;

  if ((old == NULL && value == NULL) || (old && value && cru_value_equal (old, value)))
    {
      if (value)
        cru_value_free (value);
      return;
    }
  /* A burst of edits of one parameter is one undo step: extend the last step. */
  if (self->depth == 0 && self->may_coalesce && self->redo->len == 0 && self->undo->len > 0)
    {
      CruGraphStep *top = self->undo->pdata[self->undo->len - 1];
      Op *last = top->ops->len == 1 ? top->ops->pdata[0] : NULL;

      if (last && last->kind == kind && last->id == id && strcmp (last->name, name) == 0
          && top->serial != self->saved_serial)
        {
          if (last->new_value)
            cru_value_free (last->new_value);
          last->new_value = value;
          op_apply (self, last, TRUE);
          return;
        }
    }
  op = op_new (kind, id);
  op->name = g_strdup (name);
  op->old_value = old ? cru_value_copy (old) : NULL;
  op->new_value = value;
  cru_graph_begin_group (self, _("Change Parameter"));
  record (self, op);
  end_group_full (self, self->depth == 1);
}

void
cru_graph_set_param (CruGraph *self, guint node, const char *name, CruValue *value)
{
  CruNode *n;

  g_return_if_fail (CRU_IS_GRAPH (self));
  g_return_if_fail (name != NULL);
  n = lookup_node (self, node);
  g_return_if_fail (n != NULL);
  set_param_common (self, OP_SET_PARAM, node, n->params, name, value);
}

void
cru_graph_set_link_param (CruGraph *self, guint link, const char *name, CruValue *value)
{
  CruLink *l;

  g_return_if_fail (CRU_IS_GRAPH (self));
  g_return_if_fail (name != NULL);
  l = g_hash_table_lookup (self->links, GUINT_TO_POINTER (link));
  g_return_if_fail (l != NULL);
  set_param_common (self, OP_SET_LINK_PARAM, link, l->params, name, value);
}

guint
cru_graph_link (CruGraph *self, guint from_node, guint to_node, const char *port, int slot,
                GError **error)
{
  g_autofree char *reason = NULL;
  const CruNode *to;
  const CruLink *old;
  int n;
  Op *op;

  g_return_val_if_fail (CRU_IS_GRAPH (self), 0);
  if (!cru_graph_can_link (self, from_node, to_node, port, &reason))
    {
      g_set_error_literal (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH, reason);
      return 0;
    }
  to = lookup_node (self, to_node);
  port = g_intern_string (port);
  if (cru_node_port_is_variadic (to->kind, port))
    {
      n = _cru_graph_count_links_at (self, to_node, port);
      if (slot < 0 || slot > n)
        slot = n;
    }
  else
    slot = 0;

  cru_graph_begin_group (self, _("Link"));
  old = cru_graph_find_link (self, to_node, port, slot);
  if (old)
    {
      op = op_new (OP_REMOVE_LINK, old->id);
      op->link = _cru_link_copy (old);
      record (self, op);
    }
  op = op_new (OP_ADD_LINK, self->next_link_id);
  op->link = g_new0 (CruLink, 1);
  op->link->id = op->id;
  op->link->from_node = from_node;
  op->link->to_node = to_node;
  op->link->to_port = port;
  op->link->slot = slot;
  op->link->params = _cru_params_new ();
  record (self, op);
  cru_graph_end_group (self);
  return op->id;
}

gboolean
cru_graph_unlink (CruGraph *self, guint link)
{
  CruLink *l;

  g_return_val_if_fail (CRU_IS_GRAPH (self), FALSE);
  l = g_hash_table_lookup (self->links, GUINT_TO_POINTER (link));
  if (l == NULL)
    return FALSE;
  cru_graph_begin_group (self, _("Unlink"));
  remove_link_recorded (self, l);
  cru_graph_end_group (self);
  return TRUE;
}

/* Adds a node from a snapshot with a fresh id, as one recorded operation (for paste). */
guint
_cru_graph_add_node_copy (CruGraph *self, const CruNode *node, double dx, double dy)
{
  Op *op = op_new (OP_ADD_NODE, self->next_node_id);

  op->node = _cru_node_copy (node);
  op->node->id = op->id;
  op->node->x += dx;
  op->node->y += dy;
  record (self, op);
  return op->id;
}

/* Adds a link from a snapshot with fresh id and endpoints (for paste). */
guint
_cru_graph_add_link_copy (CruGraph *self, const CruLink *link, guint from, guint to)
{
  Op *op = op_new (OP_ADD_LINK, self->next_link_id);

  op->link = _cru_link_copy (link);
  op->link->id = op->id;
  op->link->from_node = from;
  op->link->to_node = to;
  record (self, op);
  return op->id;
}
