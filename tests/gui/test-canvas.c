/* test-canvas.c — the canvas's model-level operations: linking rules, undo/redo,
 * copy/paste/delete, zoom to fit
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include "cru-node-info.h"

static const CruNodeTemplate *
template_of (CruNodeKind kind, const char *method)
{
  for (guint i = 0; i < cru_node_templates_get_n (); i++)
    {
      const CruNodeTemplate *t = cru_node_templates_get_nth (i);
      if (t->kind == kind && g_strcmp0 (t->method, method) == 0)
        return t;
    }
  g_assert_not_reached ();
  return NULL;
}

static void
test_link_rules (void)
{
  CruWindow *window;
  CruGraphView *view;
  CruGraph *graph;
  guint a, b, out, model, link;
  g_autoptr(GError) error = NULL;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new (NULL);
  cru_window_show_editor (window);
  view = cru_window_get_graph_view (window);
  graph = cru_window_get_graph (window);

  model = cru_graph_view_add_model (view, "/nonexistent/model", 0, 0);
  a = cru_graph_view_add_template (view, template_of (CRU_NODE_METHOD, "linear"), 300, 0);
  b = cru_graph_view_add_template (view, template_of (CRU_NODE_METHOD, "linear"), 600, 0);
  out = cru_graph_view_add_template (view, template_of (CRU_NODE_OUTPUT, NULL), 900, 0);
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, 4);

  link = cru_graph_view_link_ports (view, model, a, CRU_PORT_MODEL, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (link, !=, 0);
  g_assert_cmpuint (cru_graph_view_link_ports (view, a, b, CRU_PORT_MODEL, -1, &error), !=, 0);
  g_assert_no_error (error);
  /* b → a would close a loop: refused with a reason. */
  g_assert_false (cru_graph_can_link (graph, b, a, CRU_PORT_MODEL, NULL));
  g_assert_cmpuint (cru_graph_view_link_ports (view, b, a, CRU_PORT_MODEL, -1, &error), ==, 0);
  g_assert_nonnull (error);
  g_clear_error (&error);
  /* The Output node has no output socket to link from. */
  g_assert_cmpuint (cru_graph_view_link_ports (view, out, a, CRU_PORT_MODEL, -1, &error), ==, 0);
  g_clear_error (&error);
  /* A single input holds one link: a new one replaces it. */
  g_assert_cmpuint (cru_graph_view_link_ports (view, a, out, CRU_PORT_MODEL, 0, &error), !=, 0);
  g_assert_cmpuint (cru_graph_view_link_ports (view, b, out, CRU_PORT_MODEL, 0, &error), !=, 0);
  g_assert_no_error (error);
  {
    g_autoptr(GPtrArray) into = cru_graph_links_to (graph, out);
    g_assert_cmpuint (into->len, ==, 1);
    g_assert_cmpuint (((const CruLink *) g_ptr_array_index (into, 0))->from_node, ==, b);
  }
  gui_test_spin (50);
  g_assert_cmpuint (cru_graph_view_get_n_wires (view), ==, 3);
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_undo_redo (void)
{
  CruWindow *window;
  CruGraphView *view;
  CruGraph *graph;
  guint id;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  view = cru_window_get_graph_view (window);
  graph = cru_window_get_graph (window);
  {
    guint before = cru_graph_view_get_n_node_widgets (view);

    id = cru_graph_view_add_template (view, template_of (CRU_NODE_METHOD, "slerp"), 100, 700);
    g_assert_cmpuint (id, !=, 0);
    g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before + 1);
    /* Adding a node with its method is one step. */
    g_assert_true (cru_graph_undo (graph));
    g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before);
    g_assert_null (cru_graph_view_get_node_widget (view, id));
    g_assert_true (cru_graph_redo (graph));
    g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before + 1);
    g_assert_cmpstr (cru_graph_get_node (graph, id)->method, ==, "slerp");
  }
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_copy_paste_delete (void)
{
  CruWindow *window;
  CruGraphView *view;
  CruGraph *graph;
  guint before, n_links;
  g_autofree char *text = NULL;
  g_autoptr(GArray) sel = NULL;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  view = cru_window_get_graph_view (window);
  graph = cru_window_get_graph (window);
  before = cru_graph_view_get_n_node_widgets (view);
  {
    g_autoptr(GPtrArray) l = cru_graph_list_links (graph);
    n_links = l->len;
  }

  /* Two linked nodes: the model feeding the method, and the method. */
  cru_graph_view_select_node (view, gui_test_first_node (graph, CRU_NODE_METHOD), FALSE);
  {
    g_autoptr(GPtrArray) into = cru_graph_links_to (graph, gui_test_first_node (graph, CRU_NODE_METHOD));
    cru_graph_view_select_node (view, ((const CruLink *) g_ptr_array_index (into, 0))->from_node, TRUE);
  }
  text = cru_graph_view_copy_selection (view);
  g_assert_nonnull (text);
  g_assert_cmpuint (cru_graph_view_paste_text (view, text, NULL), ==, 2);
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before + 2);
  sel = cru_graph_view_get_selection (view);
  g_assert_cmpuint (sel->len, ==, 2);   /* the pasted nodes are selected */
  {
    g_autoptr(GPtrArray) l = cru_graph_list_links (graph);
    g_assert_cmpuint (l->len, ==, n_links + 1);   /* the link between them came along */
  }
  g_assert_true (cru_graph_view_delete_selection (view));
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before);
  g_assert_true (cru_graph_undo (graph));   /* the delete is one step */
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before + 2);
  g_assert_true (cru_graph_undo (graph));   /* so is the paste */
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before);

  cru_graph_view_select_node (view, gui_test_first_node (graph, CRU_NODE_OUTPUT), FALSE);
  g_assert_cmpuint (cru_graph_view_duplicate_selection (view), ==, 1);
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, before + 1);
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_zoom_to_fit (void)
{
  CruWindow *window;
  CruGraphView *view;
  g_autoptr(GPtrArray) nodes = NULL;
  int w, h;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("hierarchical");
  view = cru_window_get_graph_view (window);
  cru_graph_view_set_zoom_at (view, 2.0, 0, 0);
  cru_graph_view_pan (view, 5000, 3000);
  gui_test_spin (50);
  g_assert_true (cru_graph_view_zoom_to_fit (view));
  gui_test_spin (50);
  w = gtk_widget_get_width (GTK_WIDGET (view));
  h = gtk_widget_get_height (GTK_WIDGET (view));
  g_assert_cmpfloat (cru_graph_view_get_zoom (view), >=, 0.2);
  g_assert_cmpfloat (cru_graph_view_get_zoom (view), <=, 1.25);
  nodes = cru_graph_list_nodes (cru_window_get_graph (window));
  for (guint i = 0; i < nodes->len; i++)
    {
      graphene_rect_t r;
      g_assert_true (cru_graph_view_get_node_bounds (view,
                       ((const CruNode *) g_ptr_array_index (nodes, i))->id, &r));
      g_assert_cmpfloat (r.origin.x, >=, 0);
      g_assert_cmpfloat (r.origin.y, >=, 0);
      g_assert_cmpfloat (r.origin.x + r.size.width, <=, w);
      g_assert_cmpfloat (r.origin.y + r.size.height, <=, h);
    }
  /* Zoom at a point keeps that canvas point under it. */
  {
    double cx, cy, cx2, cy2;
    cru_graph_view_widget_to_canvas (view, 200, 150, &cx, &cy);
    cru_graph_view_set_zoom_at (view, cru_graph_view_get_zoom (view) * 1.5, 200, 150);
    cru_graph_view_widget_to_canvas (view, 200, 150, &cx2, &cy2);
    g_assert_cmpfloat_with_epsilon (cx, cx2, 1e-6);
    g_assert_cmpfloat_with_epsilon (cy, cy2, 1e-6);
  }
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_box_select (void)
{
  CruWindow *window;
  CruGraphView *view;
  g_autoptr(GArray) sel = NULL;
  graphene_rect_t all;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  view = cru_window_get_graph_view (window);
  all = GRAPHENE_RECT_INIT (0, 0, gtk_widget_get_width (GTK_WIDGET (view)),
                            gtk_widget_get_height (GTK_WIDGET (view)));
  cru_graph_view_select_rect (view, &all, FALSE);
  sel = cru_graph_view_get_selection (view);
  g_assert_cmpuint (sel->len, ==, cru_graph_view_get_n_node_widgets (view));
  g_assert_cmpuint (cru_graph_view_get_selected_node (view), ==, 0);
  cru_graph_view_select_rect (view, &GRAPHENE_RECT_INIT (0, 0, 1, 1), FALSE);
  g_array_unref (sel);
  sel = cru_graph_view_get_selection (view);
  g_assert_cmpuint (sel->len, ==, 0);
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/canvas/links-refuse-cycles-and-replace-single-inputs", test_link_rules);
  g_test_add_func ("/gui/canvas/add-node-undoes-and-redoes-as-one-step", test_undo_redo);
  g_test_add_func ("/gui/canvas/copy-paste-delete-and-duplicate", test_copy_paste_delete);
  g_test_add_func ("/gui/canvas/zoom-to-fit-shows-every-node", test_zoom_to_fit);
  g_test_add_func ("/gui/canvas/box-select", test_box_select);
  return g_test_run ();
}
