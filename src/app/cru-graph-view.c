/* cru-graph-view.c — the node canvas: children, layout, wires, view transform, operations
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph-view-private.h"

#include <adwaita.h>
#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

G_DEFINE_FINAL_TYPE (CruGraphView, cru_graph_view, GTK_TYPE_WIDGET)

enum { PROP_0, PROP_GRAPH, PROP_ZOOM, PROP_SELECTED_NODE, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { SELECTION_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- children ---- */

static void
add_node_widget (CruGraphView *self, guint id)
{
  GtkWidget *w;

  if (g_hash_table_contains (self->widgets, GUINT_TO_POINTER (id)))
    return;
  w = cru_node_widget_new (self->graph, id);
  gtk_widget_set_parent (w, GTK_WIDGET (self));
  g_hash_table_insert (self->widgets, GUINT_TO_POINTER (id), w);
}

static void
remove_node_widget (CruGraphView *self, guint id)
{
  GtkWidget *w = g_hash_table_lookup (self->widgets, GUINT_TO_POINTER (id));

  if (w == NULL)
    return;
  g_hash_table_remove (self->widgets, GUINT_TO_POINTER (id));
  gtk_widget_unparent (w);
  if (g_hash_table_remove (self->selection, GUINT_TO_POINTER (id)))
    {
      g_signal_emit (self, signals[SELECTION_CHANGED], 0);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SELECTED_NODE]);
    }
}

static void
rebuild_all (CruGraphView *self)
{
  g_autoptr(GList) ids = g_hash_table_get_keys (self->widgets);

  for (GList *l = ids; l != NULL; l = l->next)
    remove_node_widget (self, GPOINTER_TO_UINT (l->data));
  g_hash_table_remove_all (self->selection);
  if (self->graph != NULL)
    {
      g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (self->graph);

      for (guint i = 0; i < nodes->len; i++)
        add_node_widget (self, ((const CruNode *) g_ptr_array_index (nodes, i))->id);
    }
  self->fit_pending = TRUE;
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SELECTED_NODE]);
  gtk_widget_queue_allocate (GTK_WIDGET (self));
}

static void
update_node (CruGraphView *self, guint id)
{
  CruNodeWidget *w = g_hash_table_lookup (self->widgets, GUINT_TO_POINTER (id));

  if (w != NULL)
    cru_node_widget_update (w);
}

/* Titles of model nodes appear on the ports they feed, so refresh the link's both ends. */
static void
update_link_ends (CruGraphView *self, guint link_id)
{
  const CruLink *link = cru_graph_get_link (self->graph, link_id);

  if (link != NULL)
    {
      update_node (self, link->to_node);
      update_node (self, link->from_node);
      return;
    }
  /* A removed link: its ends are unknown now, refresh the nodes with inputs. */
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const CruNode *node = cru_graph_get_node (self->graph, GPOINTER_TO_UINT (key));
      if (node != NULL && cru_node_kind_inputs (node->kind)[0] != NULL)
        cru_node_widget_update (value);
    }
}

static void
graph_changed (CruGraph *graph, CruGraphChange change, guint id, CruGraphView *self)
{
  switch (change)
    {
    case CRU_GRAPH_CHANGE_NODE_ADDED:
      add_node_widget (self, id);
      break;
    case CRU_GRAPH_CHANGE_NODE_REMOVED:
      remove_node_widget (self, id);
      break;
    case CRU_GRAPH_CHANGE_NODE_CHANGED:
      {
        g_autoptr(GPtrArray) out = cru_graph_links_from (graph, id);

        update_node (self, id);
        for (guint i = 0; out != NULL && i < out->len; i++)
          update_node (self, ((const CruLink *) g_ptr_array_index (out, i))->to_node);
      }
      break;
    case CRU_GRAPH_CHANGE_NODE_MOVED:
      break;
    case CRU_GRAPH_CHANGE_LINK_ADDED:
    case CRU_GRAPH_CHANGE_LINK_REMOVED:
    case CRU_GRAPH_CHANGE_LINK_CHANGED:
      update_link_ends (self, id);
      break;
    case CRU_GRAPH_CHANGE_RESET:
    default:
      rebuild_all (self);
      break;
    }
  gtk_widget_queue_allocate (GTK_WIDGET (self));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cru_graph_view_set_graph (CruGraphView *self, CruGraph *graph)
{
  g_return_if_fail (CRU_IS_GRAPH_VIEW (self));
  if (self->graph == graph)
    return;
  if (self->graph != NULL)
    g_clear_signal_handler (&self->changed_id, self->graph);
  g_set_object (&self->graph, graph);
  if (graph != NULL)
    self->changed_id = g_signal_connect (graph, "changed", G_CALLBACK (graph_changed), self);
  rebuild_all (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_GRAPH]);
}

CruGraph *
cru_graph_view_get_graph (CruGraphView *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), NULL);
  return self->graph;
}

CruNodeWidget *
cru_graph_view_get_node_widget (CruGraphView *self, guint node)
{
  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), NULL);
  return g_hash_table_lookup (self->widgets, GUINT_TO_POINTER (node));
}

guint
cru_graph_view_get_n_node_widgets (CruGraphView *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  return g_hash_table_size (self->widgets);
}

/* ---- layout ---- */

void
_cru_graph_view_node_position (CruGraphView *self, const CruNode *node, double *x, double *y)
{
  *x = node->x;
  *y = node->y;
  if (self->drag == CRU_DRAG_MOVE
      && g_hash_table_contains (self->selection, GUINT_TO_POINTER (node->id)))
    {
      *x = round ((node->x + self->drag_dx / self->zoom) / CRU_GRID) * CRU_GRID;
      *y = round ((node->y + self->drag_dy / self->zoom) / CRU_GRID) * CRU_GRID;
    }
}

static void
cru_graph_view_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                        int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  *minimum = 100;
  *natural = 600;
}

static void
node_size (GtkWidget *w, int *width, int *height)
{
  gtk_widget_measure (w, GTK_ORIENTATION_HORIZONTAL, -1, NULL, width, NULL, NULL);
  gtk_widget_measure (w, GTK_ORIENTATION_VERTICAL, *width, NULL, height, NULL, NULL);
}

static gboolean
content_bounds (CruGraphView *self, gboolean selection_only, graphene_rect_t *bounds)
{
  GHashTableIter iter;
  gpointer key, value;
  gboolean any = FALSE;

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const CruNode *node = cru_graph_get_node (self->graph, GPOINTER_TO_UINT (key));
      graphene_rect_t r;
      int w, h;

      if (node == NULL || (selection_only && !g_hash_table_contains (self->selection, key)))
        continue;
      node_size (value, &w, &h);
      graphene_rect_init (&r, node->x, node->y, w, h);
      if (any)
        graphene_rect_union (bounds, &r, bounds);
      else
        *bounds = r;
      any = TRUE;
    }
  return any;
}

static gboolean
fit_rect (CruGraphView *self, const graphene_rect_t *r)
{
  double W = gtk_widget_get_width (GTK_WIDGET (self));
  double H = gtk_widget_get_height (GTK_WIDGET (self));
  const double margin = 40;
  double zoom;

  if (W <= 2 * margin || H <= 2 * margin)
    return FALSE;
  zoom = MIN ((W - 2 * margin) / MAX (r->size.width, 1), (H - 2 * margin) / MAX (r->size.height, 1));
  self->zoom = CLAMP (zoom, CRU_ZOOM_MIN, 1.25);
  self->off_x = W / 2 - (r->origin.x + r->size.width / 2) * self->zoom;
  self->off_y = H / 2 - (r->origin.y + r->size.height / 2) * self->zoom;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
  gtk_widget_queue_allocate (GTK_WIDGET (self));
  return TRUE;
}

gboolean
cru_graph_view_zoom_to_fit (CruGraphView *self)
{
  graphene_rect_t r;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), FALSE);
  if (self->graph == NULL || !content_bounds (self, FALSE, &r))
    return FALSE;
  return fit_rect (self, &r);
}

gboolean
cru_graph_view_zoom_to_selection (CruGraphView *self)
{
  graphene_rect_t r;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), FALSE);
  if (self->graph == NULL || !content_bounds (self, TRUE, &r))
    return FALSE;
  return fit_rect (self, &r);
}

static void
cru_graph_view_size_allocate (GtkWidget *widget, int width, int height, int baseline)
{
  CruGraphView *self = CRU_GRAPH_VIEW (widget);
  GHashTableIter iter;
  gpointer key, value;

  if (self->fit_pending && g_hash_table_size (self->widgets) > 0 && width > 100)
    {
      self->fit_pending = FALSE;
      cru_graph_view_zoom_to_fit (self);
    }

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const CruNode *node = cru_graph_get_node (self->graph, GPOINTER_TO_UINT (key));
      GskTransform *t;
      double x, y;
      int w, h;

      if (node == NULL)
        continue;
      _cru_graph_view_node_position (self, node, &x, &y);
      node_size (value, &w, &h);
      t = gsk_transform_translate (NULL, &GRAPHENE_POINT_INIT (x * self->zoom + self->off_x,
                                                               y * self->zoom + self->off_y));
      t = gsk_transform_scale (t, self->zoom, self->zoom);
      gtk_widget_allocate (value, w, h, -1, t);
    }
  if (self->popover != NULL)
    gtk_popover_present (GTK_POPOVER (self->popover));
}

/* ---- drawing ---- */

static void
wire_color (CruGraphView *self, guint stream, gboolean error, GdkRGBA *c)
{
  gboolean dark = adw_style_manager_get_dark (adw_style_manager_get_default ());

  if (error)
    gdk_rgba_parse (c, dark ? "#ff7b63" : "#c01c28");
  else if (stream == CRU_STREAM_SLICE)
    gdk_rgba_parse (c, dark ? "#ffa348" : "#e66100");
  else
    gdk_rgba_parse (c, dark ? "#78aeed" : "#1c71d8");
}

static void
bezier (cairo_t *cr, double x1, double y1, double x2, double y2, double zoom)
{
  double dx = MAX (fabs (x2 - x1) * 0.5, 40 * zoom);

  cairo_move_to (cr, x1, y1);
  cairo_curve_to (cr, x1 + dx, y1, x2 - dx, y2, x2, y2);
}

gboolean
cru_graph_view_get_socket_point (CruGraphView *self, guint node, const char *port, int slot,
                                 graphene_point_t *point)
{
  CruNodeWidget *w = cru_graph_view_get_node_widget (self, node);
  CruSocket *s;
  graphene_point_t c;

  if (w == NULL || (s = cru_node_widget_get_socket (w, port, slot)) == NULL)
    return FALSE;
  c = GRAPHENE_POINT_INIT (gtk_widget_get_width (GTK_WIDGET (s)) / 2.0,
                           gtk_widget_get_height (GTK_WIDGET (s)) / 2.0);
  return gtk_widget_compute_point (GTK_WIDGET (s), GTK_WIDGET (self), &c, point);
}

gboolean
cru_graph_view_get_node_bounds (CruGraphView *self, guint node, graphene_rect_t *bounds)
{
  CruNodeWidget *w = cru_graph_view_get_node_widget (self, node);

  if (w == NULL)
    return FALSE;
  return gtk_widget_compute_bounds (GTK_WIDGET (w), GTK_WIDGET (self), bounds);
}

static void
draw_grid (CruGraphView *self, GtkSnapshot *snapshot, int width, int height)
{
  GdkRGBA color;
  double step = CRU_GRID * self->zoom * 4;

  gtk_style_context_get_color (gtk_widget_get_style_context (GTK_WIDGET (self)), &color);
  color.alpha = 0.06;
  while (step < 24)
    step *= 2;
  for (double x = fmod (self->off_x, step); x < width; x += step)
    gtk_snapshot_append_color (snapshot, &color, &GRAPHENE_RECT_INIT (x, 0, 1, height));
  for (double y = fmod (self->off_y, step); y < height; y += step)
    gtk_snapshot_append_color (snapshot, &color, &GRAPHENE_RECT_INIT (0, y, width, 1));
}

static void
draw_wires (CruGraphView *self, cairo_t *cr)
{
  g_autoptr(GPtrArray) links = cru_graph_list_links (self->graph);
  double width = MAX (1.5, 2.5 * self->zoom);

  self->n_wires = 0;
  cairo_set_line_cap (cr, CAIRO_LINE_CAP_ROUND);
  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = g_ptr_array_index (links, i);
      const CruNode *to = cru_graph_get_node (self->graph, link->to_node);
      CruNodeWidget *tw = cru_graph_view_get_node_widget (self, link->to_node);
      graphene_point_t a, b;
      gboolean error = FALSE, selected;
      CruSocket *s;
      GdkRGBA c;

      if (to == NULL || tw == NULL
          || !cru_graph_view_get_socket_point (self, link->from_node, NULL, 0, &a)
          || !cru_graph_view_get_socket_point (self, link->to_node, link->to_port,
                                               link->slot, &b))
        continue;
      s = cru_node_widget_get_socket (tw, link->to_port, link->slot);
      error = s != NULL && gtk_widget_has_css_class (gtk_widget_get_parent (GTK_WIDGET (s)),
                                                     "error");
      selected = g_hash_table_contains (self->selection, GUINT_TO_POINTER (link->from_node))
                 || g_hash_table_contains (self->selection, GUINT_TO_POINTER (link->to_node));
      if (link->id == self->link_detached && self->drag == CRU_DRAG_LINK)
        continue;
      wire_color (self, cru_port_stream_type (to->kind, link->to_port), error, &c);
      if (!selected && g_hash_table_size (self->selection) > 0)
        c.alpha = 0.75;
      gdk_cairo_set_source_rgba (cr, &c);
      cairo_set_line_width (cr, selected ? width * 1.6 : width);
      bezier (cr, a.x, a.y, b.x, b.y, self->zoom);
      cairo_stroke (cr);
      self->n_wires++;
    }

  if (self->drag == CRU_DRAG_LINK)
    {
      graphene_point_t fixed;
      double px = self->pointer_x, py = self->pointer_y;
      GdkRGBA c;

      if (!cru_graph_view_get_socket_point (self, self->link_node, self->link_port,
                                            self->link_slot, &fixed))
        return;
      if (self->link_target != NULL)
        {
          graphene_point_t t, center = GRAPHENE_POINT_INIT (
              gtk_widget_get_width (GTK_WIDGET (self->link_target)) / 2.0,
              gtk_widget_get_height (GTK_WIDGET (self->link_target)) / 2.0);
          if (gtk_widget_compute_point (GTK_WIDGET (self->link_target), GTK_WIDGET (self),
                                        &center, &t))
            px = t.x, py = t.y;
        }
      wire_color (self, self->link_stream, FALSE, &c);
      gdk_cairo_set_source_rgba (cr, &c);
      cairo_set_line_width (cr, width);
      if (self->link_port == NULL)
        bezier (cr, fixed.x, fixed.y, px, py, self->zoom);
      else
        bezier (cr, px, py, fixed.x, fixed.y, self->zoom);
      if (self->link_target == NULL)
        {
          double dashes[] = { 6, 4 };
          cairo_set_dash (cr, dashes, 2, 0);
        }
      cairo_stroke (cr);
      cairo_set_dash (cr, NULL, 0, 0);
    }
}

static void
cru_graph_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  CruGraphView *self = CRU_GRAPH_VIEW (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  cairo_t *cr;

  gtk_snapshot_push_clip (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  draw_grid (self, snapshot, width, height);
  if (self->graph != NULL)
    {
      cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
      draw_wires (self, cr);
      cairo_destroy (cr);
    }
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    if (!GTK_IS_NATIVE (child))
      gtk_widget_snapshot_child (widget, child, snapshot);

  if (self->drag == CRU_DRAG_BOX)
    {
      GdkRGBA fill, border;
      graphene_rect_t r = GRAPHENE_RECT_INIT (MIN (self->drag_x, self->drag_x + self->drag_dx),
                                              MIN (self->drag_y, self->drag_y + self->drag_dy),
                                              fabs (self->drag_dx), fabs (self->drag_dy));
      GskRoundedRect rr;
      float widths[4] = { 1, 1, 1, 1 };
      GdkRGBA colors[4];

      gdk_rgba_parse (&fill, "rgba(53,132,228,0.15)");
      gdk_rgba_parse (&border, "rgba(53,132,228,0.8)");
      gtk_snapshot_append_color (snapshot, &fill, &r);
      gsk_rounded_rect_init_from_rect (&rr, &r, 0);
      for (int i = 0; i < 4; i++)
        colors[i] = border;
      gtk_snapshot_append_border (snapshot, &rr, widths, colors);
    }
  gtk_snapshot_pop (snapshot);
}

guint
cru_graph_view_get_n_wires (CruGraphView *self)
{
  g_autoptr(GPtrArray) links = NULL;
  guint n = 0;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  if (self->graph == NULL)
    return 0;
  links = cru_graph_list_links (self->graph);
  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = g_ptr_array_index (links, i);
      CruNodeWidget *from = cru_graph_view_get_node_widget (self, link->from_node);
      CruNodeWidget *to = cru_graph_view_get_node_widget (self, link->to_node);

      if (from != NULL && to != NULL && cru_node_widget_get_socket (from, NULL, 0) != NULL
          && cru_node_widget_get_socket (to, link->to_port, link->slot) != NULL)
        n++;
    }
  return n;
}

/* ---- transform ---- */

double
cru_graph_view_get_zoom (CruGraphView *self)
{
  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 1.0);
  return self->zoom;
}

void
cru_graph_view_set_zoom_at (CruGraphView *self, double zoom, double wx, double wy)
{
  double cx, cy;

  g_return_if_fail (CRU_IS_GRAPH_VIEW (self));
  zoom = CLAMP (zoom, CRU_ZOOM_MIN, CRU_ZOOM_MAX);
  cru_graph_view_widget_to_canvas (self, wx, wy, &cx, &cy);
  self->zoom = zoom;
  /* Keep the canvas point under the pointer where it was. */
  self->off_x = wx - cx * zoom;
  self->off_y = wy - cy * zoom;
  self->fit_pending = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
  gtk_widget_queue_allocate (GTK_WIDGET (self));
}

void
cru_graph_view_pan (CruGraphView *self, double dx, double dy)
{
  g_return_if_fail (CRU_IS_GRAPH_VIEW (self));
  self->off_x += dx;
  self->off_y += dy;
  self->fit_pending = FALSE;
  gtk_widget_queue_allocate (GTK_WIDGET (self));
}

void
cru_graph_view_canvas_to_widget (CruGraphView *self, double cx, double cy,
                                 double *wx, double *wy)
{
  *wx = cx * self->zoom + self->off_x;
  *wy = cy * self->zoom + self->off_y;
}

void
cru_graph_view_widget_to_canvas (CruGraphView *self, double wx, double wy,
                                 double *cx, double *cy)
{
  *cx = (wx - self->off_x) / self->zoom;
  *cy = (wy - self->off_y) / self->zoom;
}

/* ---- selection ---- */

static void
selection_changed (CruGraphView *self)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, &value))
    cru_node_widget_set_selected (value, g_hash_table_contains (self->selection, key));
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SELECTED_NODE]);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cru_graph_view_select_node (CruGraphView *self, guint node, gboolean add)
{
  g_return_if_fail (CRU_IS_GRAPH_VIEW (self));
  if (!add)
    g_hash_table_remove_all (self->selection);
  if (node != 0 && g_hash_table_contains (self->widgets, GUINT_TO_POINTER (node)))
    g_hash_table_add (self->selection, GUINT_TO_POINTER (node));
  selection_changed (self);
}

void
cru_graph_view_select_all (CruGraphView *self)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_hash_table_add (self->selection, key);
  selection_changed (self);
}

void
cru_graph_view_unselect_all (CruGraphView *self)
{
  g_hash_table_remove_all (self->selection);
  selection_changed (self);
}

void
cru_graph_view_select_rect (CruGraphView *self, const graphene_rect_t *rect, gboolean add)
{
  GHashTableIter iter;
  gpointer key, value;

  if (!add)
    g_hash_table_remove_all (self->selection);
  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      graphene_rect_t b;

      if (gtk_widget_compute_bounds (value, GTK_WIDGET (self), &b)
          && graphene_rect_intersection (&b, rect, NULL))
        g_hash_table_add (self->selection, key);
    }
  selection_changed (self);
}

static int
compare_ids (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;
  return x < y ? -1 : x > y;
}

GArray *
cru_graph_view_get_selection (CruGraphView *self)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (guint));
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->selection);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      guint id = GPOINTER_TO_UINT (key);
      g_array_append_val (ids, id);
    }
  g_array_sort (ids, compare_ids);
  return ids;
}

guint
cru_graph_view_get_selected_node (CruGraphView *self)
{
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (CRU_IS_GRAPH_VIEW (self), 0);
  if (g_hash_table_size (self->selection) != 1)
    return 0;
  g_hash_table_iter_init (&iter, self->selection);
  g_hash_table_iter_next (&iter, &key, NULL);
  return GPOINTER_TO_UINT (key);
}

/* ---- state from the plan ---- */

void
cru_graph_view_set_problems (CruGraphView *self, GPtrArray *problems)
{
  GHashTableIter iter;
  gpointer key, value;

  g_return_if_fail (CRU_IS_GRAPH_VIEW (self));
  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autoptr(GPtrArray) mine = g_ptr_array_new ();

      for (guint i = 0; problems != NULL && i < problems->len; i++)
        {
          const CruProblem *p = g_ptr_array_index (problems, i);
          if (p->node == GPOINTER_TO_UINT (key))
            g_ptr_array_add (mine, (gpointer) p);
        }
      cru_node_widget_set_problems (value, mine);
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cru_graph_view_set_run_state (CruGraphView *self, guint node, CruNodeRunState state,
                              double fraction)
{
  CruNodeWidget *w = cru_graph_view_get_node_widget (self, node);

  if (w != NULL)
    cru_node_widget_set_run_state (w, state, fraction);
}

void
cru_graph_view_reset_run_state (CruGraphView *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->widgets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    cru_node_widget_set_run_state (value, CRU_NODE_RUN_IDLE, 0);
}

/* ---- object ---- */

static void
cru_graph_view_dispose (GObject *object)
{
  CruGraphView *self = CRU_GRAPH_VIEW (object);
  GtkWidget *child;

  if (self->graph != NULL)
    g_clear_signal_handler (&self->changed_id, self->graph);
  g_clear_object (&self->graph);
  g_clear_pointer (&self->popover, gtk_widget_unparent);
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_widget_unparent (child);
  if (self->widgets != NULL)
    g_hash_table_remove_all (self->widgets);
  G_OBJECT_CLASS (cru_graph_view_parent_class)->dispose (object);
}

static void
cru_graph_view_finalize (GObject *object)
{
  CruGraphView *self = CRU_GRAPH_VIEW (object);

  g_hash_table_unref (self->widgets);
  g_hash_table_unref (self->selection);
  G_OBJECT_CLASS (cru_graph_view_parent_class)->finalize (object);
}

static void
cru_graph_view_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  CruGraphView *self = CRU_GRAPH_VIEW (object);

  switch (prop_id)
    {
    case PROP_GRAPH: g_value_set_object (value, self->graph); break;
    case PROP_ZOOM: g_value_set_double (value, self->zoom); break;
    case PROP_SELECTED_NODE: g_value_set_uint (value, cru_graph_view_get_selected_node (self)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cru_graph_view_set_property (GObject *object, guint prop_id, const GValue *value,
                             GParamSpec *pspec)
{
  CruGraphView *self = CRU_GRAPH_VIEW (object);

  switch (prop_id)
    {
    case PROP_GRAPH: cru_graph_view_set_graph (self, g_value_get_object (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cru_graph_view_class_init (CruGraphViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = cru_graph_view_dispose;
  object_class->finalize = cru_graph_view_finalize;
  object_class->get_property = cru_graph_view_get_property;
  object_class->set_property = cru_graph_view_set_property;
  widget_class->measure = cru_graph_view_measure;
  widget_class->size_allocate = cru_graph_view_size_allocate;
  widget_class->snapshot = cru_graph_view_snapshot;

  properties[PROP_GRAPH] =
    g_param_spec_object ("graph", NULL, NULL, CRU_TYPE_GRAPH,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_ZOOM] =
    g_param_spec_double ("zoom", NULL, NULL, CRU_ZOOM_MIN, CRU_ZOOM_MAX, 1.0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_SELECTED_NODE] =
    g_param_spec_uint ("selected-node", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
  signals[SELECTION_CHANGED] =
    g_signal_new ("selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_css_name (widget_class, "graphview");
  _cru_graph_view_install_actions (widget_class);
}

static void
cru_graph_view_init (CruGraphView *self)
{
  self->widgets = g_hash_table_new (NULL, NULL);
  self->selection = g_hash_table_new (NULL, NULL);
  self->zoom = 1.0;
  self->off_x = self->off_y = 40;
  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);
  gtk_widget_set_hexpand (GTK_WIDGET (self), TRUE);
  gtk_widget_set_vexpand (GTK_WIDGET (self), TRUE);
  _cru_graph_view_setup_input (self);
}

GtkWidget *
cru_graph_view_new (void)
{
  return g_object_new (CRU_TYPE_GRAPH_VIEW, NULL);
}
