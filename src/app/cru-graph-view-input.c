/* cru-graph-view-input.c — the canvas's gestures, drops, keyboard actions and the edit
 * operations they call (kept public and thin so tests can drive them)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph-view-private.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>
#include "cru-node-list.h"

/* ---- edit operations ---- */

guint
cru_graph_view_link_ports (CruGraphView *self, guint from_node, guint to_node,
                           const char *port, int slot, GError **error)
{
  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  g_return_val_if_fail (self->graph != NULL, 0);
  return cru_graph_link (self->graph, from_node, to_node, port, slot, error);
}

guint
cru_graph_view_add_template (CruGraphView *self, const CruNodeTemplate *tmpl,
                             double cx, double cy)
{
  guint id;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  g_return_val_if_fail (self->graph != NULL && tmpl != NULL, 0);
  cru_graph_begin_group (self->graph, _("Add Node"));
  id = cru_graph_add_node (self->graph, tmpl->kind, round (cx / CRU_GRID) * CRU_GRID,
                           round (cy / CRU_GRID) * CRU_GRID);
  if (id != 0 && tmpl->method != NULL)
    cru_graph_set_method (self->graph, id, tmpl->method);
  cru_graph_end_group (self->graph);
  if (id != 0)
    cru_graph_view_select_node (self, id, FALSE);
  return id;
}

guint
cru_graph_view_add_model (CruGraphView *self, const char *path, double cx, double cy)
{
  guint id;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  g_return_val_if_fail (self->graph != NULL && path != NULL, 0);
  cru_graph_begin_group (self->graph, _("Add Model"));
  id = cru_graph_add_node (self->graph, CRU_NODE_MODEL, round (cx / CRU_GRID) * CRU_GRID,
                           round (cy / CRU_GRID) * CRU_GRID);
  if (id != 0)
    cru_graph_set_path (self->graph, id, path);
  cru_graph_end_group (self->graph);
  if (id != 0)
    cru_graph_view_select_node (self, id, FALSE);
  return id;
}

gboolean
cru_graph_view_delete_selection (CruGraphView *self)
{
  g_autoptr(GArray) ids = NULL;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), FALSE);
  ids = cru_graph_view_get_selection (self);
  if (self->graph == NULL || ids->len == 0)
    return FALSE;
  cru_graph_begin_group (self->graph, ngettext ("Delete Node", "Delete Nodes", ids->len));
  for (guint i = 0; i < ids->len; i++)
    cru_graph_remove_node (self->graph, g_array_index (ids, guint, i));
  cru_graph_end_group (self->graph);
  return TRUE;
}

char *
cru_graph_view_copy_selection (CruGraphView *self)
{
  g_autoptr(GArray) ids = NULL;
  char *text;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), NULL);
  ids = cru_graph_view_get_selection (self);
  if (self->graph == NULL || ids->len == 0)
    return NULL;
  text = cru_graph_copy_nodes (self->graph, (const guint *) ids->data, ids->len);
  if (text != NULL)
    gdk_clipboard_set_text (gtk_widget_get_clipboard (GTK_WIDGET (self)), text);
  return text;
}

guint
cru_graph_view_paste_text (CruGraphView *self, const char *text, GError **error)
{
  g_autoptr(GArray) ids = NULL;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  if (self->graph == NULL || text == NULL)
    return 0;
  ids = cru_graph_paste (self->graph, text, 2 * CRU_GRID, 2 * CRU_GRID, error);
  if (ids == NULL)
    return 0;
  g_hash_table_remove_all (self->selection);
  for (guint i = 0; i < ids->len; i++)
    cru_graph_view_select_node (self, g_array_index (ids, guint, i), TRUE);
  return ids->len;
}

guint
cru_graph_view_duplicate_selection (CruGraphView *self)
{
  g_autofree char *text = cru_graph_view_copy_selection (self);

  return text != NULL ? cru_graph_view_paste_text (self, text, NULL) : 0;
}

void
cru_graph_view_move_selection (CruGraphView *self, double dx, double dy)
{
  g_autoptr(GArray) ids = cru_graph_view_get_selection (self);

  if (self->graph == NULL || ids->len == 0 || (dx == 0 && dy == 0))
    return;
  cru_graph_begin_group (self->graph, ngettext ("Move Node", "Move Nodes", ids->len));
  for (guint i = 0; i < ids->len; i++)
    {
      const CruNode *n = cru_graph_get_node (self->graph, g_array_index (ids, guint, i));
      if (n != NULL)
        cru_graph_move_node (self->graph, n->id, round ((n->x + dx) / CRU_GRID) * CRU_GRID,
                             round ((n->y + dy) / CRU_GRID) * CRU_GRID);
    }
  cru_graph_end_group (self->graph);
}

/* ---- link dragging ---- */

static gboolean
socket_accepts_drag (CruGraphView *self, CruSocket *s)
{
  if (s == NULL || cru_socket_get_stream (s) != self->link_stream)
    return FALSE;
  if (self->link_port == NULL)
    return !cru_socket_is_output (s)
           && cru_graph_can_link (self->graph, self->link_node, cru_socket_get_node (s),
                                  cru_socket_get_port (s), NULL);
  return cru_socket_is_output (s)
         && cru_graph_can_link (self->graph, cru_socket_get_node (s), self->link_node,
                                self->link_port, NULL);
}

void
_cru_graph_view_update_dimming (CruGraphView *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      GPtrArray *sockets = cru_node_widget_get_sockets (value);
      for (guint i = 0; i < sockets->len; i++)
        {
          CruSocket *s = g_ptr_array_index (sockets, i);
          gboolean fixed_end = cru_socket_get_node (s) == self->link_node
                               && cru_socket_get_port (s) == self->link_port;
          cru_socket_set_dimmed (s, !fixed_end && !socket_accepts_drag (self, s));
        }
    }
}

void
_cru_graph_view_clear_dimming (CruGraphView *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      GPtrArray *sockets = cru_node_widget_get_sockets (value);
      for (guint i = 0; i < sockets->len; i++)
        cru_socket_set_dimmed (g_ptr_array_index (sockets, i), FALSE);
    }
}

static void
begin_link_drag (CruGraphView *self, CruSocket *s)
{
  self->drag = CRU_DRAG_LINK;
  self->link_detached = 0;
  self->link_target = NULL;
  self->link_stream = cru_socket_get_stream (s);
  if (cru_socket_is_output (s))
    {
      self->link_node = cru_socket_get_node (s);
      self->link_port = NULL;
      self->link_slot = 0;
    }
  else if (cru_socket_get_link (s) != 0
           && cru_graph_get_link (self->graph, cru_socket_get_link (s)) != NULL)
    {
      const CruLink *link = cru_graph_get_link (self->graph, cru_socket_get_link (s));

      /* Picking up a connected input detaches its wire from there. */
      self->link_detached = link->id;
      self->link_node = link->from_node;
      self->link_port = NULL;
      self->link_slot = 0;
    }
  else
    {
      self->link_node = cru_socket_get_node (s);
      self->link_port = cru_socket_get_port (s);
      self->link_slot = cru_socket_get_slot (s);
    }
  _cru_graph_view_update_dimming (self);
}

static void
update_link_drag (CruGraphView *self)
{
  GtkWidget *picked = gtk_widget_pick (GTK_WIDGET (self), self->pointer_x, self->pointer_y,
                                       GTK_PICK_DEFAULT);
  CruSocket *s = picked != NULL ? cru_socket_from_widget (picked) : NULL;

  self->link_target = socket_accepts_drag (self, s) ? s : NULL;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
end_link_drag (CruGraphView *self)
{
  CruSocket *t = self->link_target;
  g_autoptr(GError) error = NULL;

  _cru_graph_view_clear_dimming (self);
  self->drag = CRU_DRAG_NONE;
  if (t != NULL && cru_socket_get_link (t) != 0 && cru_socket_get_link (t) == self->link_detached)
    {
      gtk_widget_queue_draw (GTK_WIDGET (self));
      return;   /* dropped back where it was */
    }
  if (t != NULL)
    {
      cru_graph_begin_group (self->graph, _("Connect"));
      if (self->link_detached != 0)
        cru_graph_unlink (self->graph, self->link_detached);
      if (self->link_port == NULL)
        cru_graph_link (self->graph, self->link_node, cru_socket_get_node (t),
                        cru_socket_get_port (t), cru_socket_get_slot (t), &error);
      else
        cru_graph_link (self->graph, cru_socket_get_node (t), self->link_node,
                        self->link_port, self->link_slot, &error);
      cru_graph_end_group (self->graph);
    }
  else if (self->link_detached != 0)
    cru_graph_unlink (self->graph, self->link_detached);
  else
    {
      GtkWidget *picked = gtk_widget_pick (GTK_WIDGET (self), self->pointer_x,
                                           self->pointer_y, GTK_PICK_DEFAULT);
      /* Released on empty canvas: offer the nodes that fit this end of the wire. */
      if (picked == GTK_WIDGET (self))
        {
          cru_graph_view_show_add_popover (self, self->pointer_x, self->pointer_y);
          cru_node_list_set_filter (CRU_NODE_LIST (self->popover_list),
                                    self->link_port == NULL ? self->link_stream : 0,
                                    self->link_port != NULL ? self->link_stream : 0);
          g_object_set_data (G_OBJECT (self->popover), "cru-pending-link", GINT_TO_POINTER (1));
          gtk_widget_queue_draw (GTK_WIDGET (self));
          return;
        }
    }
  self->link_detached = 0;
  if (error != NULL)
    g_debug ("link refused: %s", error->message);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* ---- add-node popover ---- */

static void
connect_new_node (CruGraphView *self, guint id)
{
  const CruNode *node = cru_graph_get_node (self->graph, id);
  const char *const *inputs;

  if (node == NULL)
    return;
  if (self->link_port != NULL)
    {
      cru_graph_link (self->graph, id, self->link_node, self->link_port, self->link_slot, NULL);
      return;
    }
  inputs = cru_node_kind_inputs (node->kind);
  /* Prefer the variadic "model"/"expert"/"slice" input; the base is chosen explicitly. */
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; inputs[i] != NULL; i++)
      {
        gboolean variadic = cru_node_port_is_variadic (node->kind, inputs[i]);
        if ((pass == 0) != variadic
            || cru_port_stream_type (node->kind, inputs[i]) != self->link_stream)
          continue;
        if (cru_graph_link (self->graph, self->link_node, id, inputs[i], variadic ? -1 : 0,
                            NULL) != 0)
          return;
      }
}

static void
template_activated (CruNodeList *list, guint index, CruGraphView *self)
{
  gboolean pending = g_object_get_data (G_OBJECT (self->popover), "cru-pending-link") != NULL;
  const CruNodeTemplate *tmpl = cru_node_templates_get_nth (index);
  guint id;

  gtk_popover_popdown (GTK_POPOVER (self->popover));
  if (self->graph == NULL)
    return;
  cru_graph_begin_group (self->graph, _("Add Node"));
  id = cru_graph_view_add_template (self, tmpl, self->popover_cx, self->popover_cy);
  if (id != 0 && pending)
    connect_new_node (self, id);
  cru_graph_end_group (self->graph);
}

static void
popover_closed (GtkPopover *popover, CruGraphView *self)
{
  g_object_set_data (G_OBJECT (popover), "cru-pending-link", NULL);
}

void
cru_graph_view_show_add_popover (CruGraphView *self, double wx, double wy)
{
  g_return_if_fail (CRU_IS_GRAPH_VIEW (self));
  if (self->popover == NULL)
    {
      self->popover = gtk_popover_new ();
      gtk_widget_set_parent (self->popover, GTK_WIDGET (self));
      gtk_popover_set_position (GTK_POPOVER (self->popover), GTK_POS_BOTTOM);
      self->popover_list = cru_node_list_new (FALSE);
      gtk_widget_set_size_request (self->popover_list, 260, -1);
      gtk_popover_set_child (GTK_POPOVER (self->popover), self->popover_list);
      g_signal_connect (self->popover_list, "template-activated",
                        G_CALLBACK (template_activated), self);
      g_signal_connect (self->popover, "closed", G_CALLBACK (popover_closed), self);
    }
  cru_graph_view_widget_to_canvas (self, wx, wy, &self->popover_cx, &self->popover_cy);
  g_object_set_data (G_OBJECT (self->popover), "cru-pending-link", NULL);
  cru_node_list_set_filter (CRU_NODE_LIST (self->popover_list), 0, 0);
  gtk_editable_set_text (GTK_EDITABLE (cru_node_list_get_search_entry (
                           CRU_NODE_LIST (self->popover_list))), "");
  gtk_popover_set_pointing_to (GTK_POPOVER (self->popover),
                               &(GdkRectangle) { (int) wx, (int) wy, 1, 1 });
  gtk_popover_popup (GTK_POPOVER (self->popover));
  gtk_widget_grab_focus (cru_node_list_get_search_entry (CRU_NODE_LIST (self->popover_list)));
}

/* ---- primary button: move, link, box select, double-click ---- */

static void
primary_begin (GtkGestureDrag *gesture, double x, double y, CruGraphView *self)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (
                           GTK_EVENT_CONTROLLER (gesture));
  guint32 time = gtk_event_controller_get_current_event_time (GTK_EVENT_CONTROLLER (gesture));
  static guint32 last_time;
  static double last_x, last_y;
  GtkWidget *picked;
  CruSocket *socket;
  GtkWidget *node_widget;

  gtk_widget_grab_focus (GTK_WIDGET (self));
  self->drag_x = x, self->drag_y = y;
  self->drag_dx = self->drag_dy = 0;
  self->pointer_x = x, self->pointer_y = y;
  if (self->graph == NULL)
    return;
  if (self->space_down)
    {
      self->drag = CRU_DRAG_PAN;
      self->pan_start_x = self->off_x, self->pan_start_y = self->off_y;
      return;
    }

  picked = gtk_widget_pick (GTK_WIDGET (self), x, y, GTK_PICK_DEFAULT);
  socket = picked != NULL ? cru_socket_from_widget (picked) : NULL;
  node_widget = picked != NULL ? gtk_widget_get_ancestor (picked, CRU_TYPE_NODE_WIDGET) : NULL;

  if (socket != NULL)
    begin_link_drag (self, socket);
  else if (node_widget != NULL)
    {
      guint id = cru_node_widget_get_node (CRU_NODE_WIDGET (node_widget));
      gboolean add = (mods & (GDK_SHIFT_MASK | GDK_CONTROL_MASK)) != 0;

      if (!g_hash_table_contains (self->selection, GUINT_TO_POINTER (id)) || add)
        cru_graph_view_select_node (self, id, add);
      self->drag = CRU_DRAG_MOVE;
    }
  else
    {
      if (time - last_time < 400 && fabs (x - last_x) < 6 && fabs (y - last_y) < 6)
        {
          self->drag = CRU_DRAG_NONE;
          last_time = 0;
          cru_graph_view_show_add_popover (self, x, y);
          return;
        }
      last_time = time, last_x = x, last_y = y;
      self->drag = CRU_DRAG_BOX;
    }
}

static void
primary_update (GtkGestureDrag *gesture, double dx, double dy, CruGraphView *self)
{
  self->drag_dx = dx, self->drag_dy = dy;
  self->pointer_x = self->drag_x + dx, self->pointer_y = self->drag_y + dy;
  switch (self->drag)
    {
    case CRU_DRAG_PAN:
      self->off_x = self->pan_start_x + dx;
      self->off_y = self->pan_start_y + dy;
      gtk_widget_queue_allocate (GTK_WIDGET (self));
      break;
    case CRU_DRAG_MOVE:
      gtk_widget_queue_allocate (GTK_WIDGET (self));
      break;
    case CRU_DRAG_LINK:
      update_link_drag (self);
      break;
    case CRU_DRAG_BOX:
      gtk_widget_queue_draw (GTK_WIDGET (self));
      break;
    default:
      break;
    }
}

static void
primary_end (GtkGestureDrag *gesture, double dx, double dy, CruGraphView *self)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (
                           GTK_EVENT_CONTROLLER (gesture));
  CruDragMode mode = self->drag;

  primary_update (gesture, dx, dy, self);
  switch (mode)
    {
    case CRU_DRAG_MOVE:
      self->drag = CRU_DRAG_NONE;
      cru_graph_view_move_selection (self, dx / self->zoom, dy / self->zoom);
      gtk_widget_queue_allocate (GTK_WIDGET (self));
      break;
    case CRU_DRAG_LINK:
      end_link_drag (self);
      break;
    case CRU_DRAG_BOX:
      {
        graphene_rect_t r = GRAPHENE_RECT_INIT (MIN (self->drag_x, self->drag_x + dx),
                                                MIN (self->drag_y, self->drag_y + dy),
                                                fabs (dx), fabs (dy));
        self->drag = CRU_DRAG_NONE;
        cru_graph_view_select_rect (self, &r, (mods & GDK_SHIFT_MASK) != 0);
      }
      break;
    default:
      break;
    }
  self->drag = CRU_DRAG_NONE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* ---- middle button pan, scroll, pinch, keys, motion ---- */

static void
pan_begin (GtkGestureDrag *gesture, double x, double y, CruGraphView *self)
{
  self->pan_start_x = self->off_x, self->pan_start_y = self->off_y;
}

static void
pan_update (GtkGestureDrag *gesture, double dx, double dy, CruGraphView *self)
{
  self->off_x = self->pan_start_x + dx;
  self->off_y = self->pan_start_y + dy;
  self->fit_pending = FALSE;
  gtk_widget_queue_allocate (GTK_WIDGET (self));
}

static gboolean
scrolled (GtkEventControllerScroll *controller, double dx, double dy, CruGraphView *self)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (
                           GTK_EVENT_CONTROLLER (controller));

  if (mods & GDK_CONTROL_MASK)
    cru_graph_view_set_zoom_at (self, self->zoom * exp (-dy * 0.12),
                                self->pointer_x, self->pointer_y);
  else if (mods & GDK_SHIFT_MASK)
    cru_graph_view_pan (self, -dy * 30, -dx * 30);
  else
    cru_graph_view_pan (self, -dx * 30, -dy * 30);
  return TRUE;
}

static void
pinch_begin (GtkGesture *gesture, GdkEventSequence *seq, CruGraphView *self)
{
  self->pinch_zoom = self->zoom;
}

static void
pinch_changed (GtkGestureZoom *gesture, double scale, CruGraphView *self)
{
  double x, y;

  if (!gtk_gesture_get_bounding_box_center (GTK_GESTURE (gesture), &x, &y))
    x = self->pointer_x, y = self->pointer_y;
  cru_graph_view_set_zoom_at (self, self->pinch_zoom * scale, x, y);
}

static void
motion (GtkEventControllerMotion *controller, double x, double y, CruGraphView *self)
{
  self->pointer_x = x, self->pointer_y = y;
}

static gboolean
key_pressed (GtkEventControllerKey *controller, guint keyval, guint keycode,
             GdkModifierType state, CruGraphView *self)
{
  if (keyval == GDK_KEY_space)
    {
      self->space_down = TRUE;
      return TRUE;
    }
  return FALSE;
}

static void
key_released (GtkEventControllerKey *controller, guint keyval, guint keycode,
              GdkModifierType state, CruGraphView *self)
{
  if (keyval == GDK_KEY_space)
    self->space_down = FALSE;
}

/* ---- drops: model folders/files from the file manager, nodes from the palette ---- */

static gboolean
drop (GtkDropTarget *target, const GValue *value, double x, double y, CruGraphView *self)
{
  double cx, cy;

  if (self->graph == NULL)
    return FALSE;
  cru_graph_view_widget_to_canvas (self, x, y, &cx, &cy);
  if (G_VALUE_HOLDS (value, G_TYPE_STRING))
    {
      const char *text = g_value_get_string (value);
      guint index;

      if (text == NULL || !g_str_has_prefix (text, "crucible-node:"))
        return FALSE;
      index = (guint) g_ascii_strtoull (text + strlen ("crucible-node:"), NULL, 10);
      if (index >= cru_node_templates_get_n ())
        return FALSE;
      return cru_graph_view_add_template (self, cru_node_templates_get_nth (index), cx, cy) != 0;
    }
  if (G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    {
      GSList *files = g_value_get_boxed (value);
      guint n = 0;

      cru_graph_begin_group (self->graph, _("Add Models"));
      for (GSList *l = files; l != NULL; l = l->next)
        {
          g_autofree char *path = g_file_get_path (l->data);
          if (path != NULL && cru_graph_view_add_model (self, path, cx, cy + n * 7 * CRU_GRID))
            n++;
        }
      cru_graph_end_group (self->graph);
      return n > 0;
    }
  return FALSE;
}

void
_cru_graph_view_setup_input (CruGraphView *self)
{
  GtkGesture *gesture;
  GtkEventController *controller;
  GtkDropTarget *target;
  GType types[] = { GDK_TYPE_FILE_LIST, G_TYPE_STRING };

  gesture = gtk_gesture_drag_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (gesture), GDK_BUTTON_PRIMARY);
  g_signal_connect (gesture, "drag-begin", G_CALLBACK (primary_begin), self);
  g_signal_connect (gesture, "drag-update", G_CALLBACK (primary_update), self);
  g_signal_connect (gesture, "drag-end", G_CALLBACK (primary_end), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (gesture));

  gesture = gtk_gesture_drag_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (gesture), GDK_BUTTON_MIDDLE);
  g_signal_connect (gesture, "drag-begin", G_CALLBACK (pan_begin), self);
  g_signal_connect (gesture, "drag-update", G_CALLBACK (pan_update), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (gesture));

  gesture = gtk_gesture_zoom_new ();
  g_signal_connect (gesture, "begin", G_CALLBACK (pinch_begin), self);
  g_signal_connect (gesture, "scale-changed", G_CALLBACK (pinch_changed), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (gesture));

  controller = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  g_signal_connect (controller, "scroll", G_CALLBACK (scrolled), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  controller = gtk_event_controller_motion_new ();
  g_signal_connect (controller, "motion", G_CALLBACK (motion), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  controller = gtk_event_controller_key_new ();
  g_signal_connect (controller, "key-pressed", G_CALLBACK (key_pressed), self);
  g_signal_connect (controller, "key-released", G_CALLBACK (key_released), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  target = gtk_drop_target_new (G_TYPE_INVALID, GDK_ACTION_COPY);
  gtk_drop_target_set_gtypes (target, types, G_N_ELEMENTS (types));
  g_signal_connect (target, "drop", G_CALLBACK (drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (target));
}

/* ---- keyboard actions ---- */

static void
paste_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(CruGraphView) self = user_data;
  g_autofree char *text = gdk_clipboard_read_text_finish (GDK_CLIPBOARD (source), result, NULL);

  if (text != NULL)
    cru_graph_view_paste_text (self, text, NULL);
}

static void
action_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  CruGraphView *self = CRU_GRAPH_VIEW (widget);

  if (g_str_equal (name, "canvas.delete"))
    cru_graph_view_delete_selection (self);
  else if (g_str_equal (name, "canvas.copy"))
    g_free (cru_graph_view_copy_selection (self));
  else if (g_str_equal (name, "canvas.cut"))
    {
      g_free (cru_graph_view_copy_selection (self));
      cru_graph_view_delete_selection (self);
    }
  else if (g_str_equal (name, "canvas.paste"))
    gdk_clipboard_read_text_async (gtk_widget_get_clipboard (widget), NULL, paste_ready,
                                   g_object_ref (self));
  else if (g_str_equal (name, "canvas.duplicate"))
    cru_graph_view_duplicate_selection (self);
  else if (g_str_equal (name, "canvas.select-all"))
    cru_graph_view_select_all (self);
  else if (g_str_equal (name, "canvas.zoom-fit"))
    cru_graph_view_zoom_to_fit (self);
  else if (g_str_equal (name, "canvas.zoom-selection"))
    cru_graph_view_zoom_to_selection (self);
  else if (g_str_equal (name, "canvas.zoom-in"))
    cru_graph_view_set_zoom_at (self, self->zoom * 1.25, gtk_widget_get_width (widget) / 2.0,
                                gtk_widget_get_height (widget) / 2.0);
  else if (g_str_equal (name, "canvas.zoom-out"))
    cru_graph_view_set_zoom_at (self, self->zoom / 1.25, gtk_widget_get_width (widget) / 2.0,
                                gtk_widget_get_height (widget) / 2.0);
  else if (g_str_equal (name, "canvas.add-node"))
    {
      double x = self->pointer_x, y = self->pointer_y;
      if (x <= 0 || y <= 0 || x >= gtk_widget_get_width (widget)
          || y >= gtk_widget_get_height (widget))
        x = gtk_widget_get_width (widget) / 2.0, y = gtk_widget_get_height (widget) / 2.0;
      cru_graph_view_show_add_popover (self, x, y);
    }
}

void
_cru_graph_view_install_actions (GtkWidgetClass *klass)
{
  static const struct { const char *name; guint key; GdkModifierType mods; } actions[] = {
    { "canvas.delete", GDK_KEY_Delete, 0 },
    { "canvas.copy", GDK_KEY_c, GDK_CONTROL_MASK },
    { "canvas.cut", GDK_KEY_x, GDK_CONTROL_MASK },
    { "canvas.paste", GDK_KEY_v, GDK_CONTROL_MASK },
    { "canvas.duplicate", GDK_KEY_d, GDK_CONTROL_MASK },
    { "canvas.select-all", GDK_KEY_a, GDK_CONTROL_MASK },
    { "canvas.zoom-fit", GDK_KEY_Home, 0 },
    { "canvas.zoom-selection", GDK_KEY_period, 0 },
    { "canvas.zoom-in", GDK_KEY_plus, GDK_CONTROL_MASK },
    { "canvas.zoom-out", GDK_KEY_minus, GDK_CONTROL_MASK },
    { "canvas.add-node", GDK_KEY_A, GDK_SHIFT_MASK },
  };

  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    {
      gtk_widget_class_install_action (klass, actions[i].name, NULL, action_activated);
      gtk_widget_class_add_binding_action (klass, actions[i].key, actions[i].mods,
                                           actions[i].name, NULL);
    }
  gtk_widget_class_add_binding_action (klass, GDK_KEY_BackSpace, 0, "canvas.delete", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_KP_Delete, 0, "canvas.delete", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_equal, GDK_CONTROL_MASK,
                                       "canvas.zoom-in", NULL);
}
