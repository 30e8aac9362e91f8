/* test-window.c — the window opens on the welcome page; every example loads into node
 * widgets and wires
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include <glib/gstdio.h>
#include "cru-application.h"

static void
test_opens_on_welcome (void)
{
  CruWindow *window;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new (NULL);
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (window)));
  g_assert_true (cru_window_is_welcome_shown (window));
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (cru_window_get_graph_view (window)), ==, 0);
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
check_example (const char *path)
{
  CruWindow *window = gui_test_window_new (NULL);
  CruGraph *graph = cru_window_get_graph (window);
  CruGraphView *view = cru_window_get_graph_view (window);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) nodes = NULL;
  g_autoptr(GPtrArray) links = NULL;

  g_test_message ("example %s", path);
  g_assert_true (cru_window_open_file (window, path, &error));
  g_assert_no_error (error);
  g_assert_false (cru_window_is_welcome_shown (window));
  gui_test_spin (100);
  nodes = cru_graph_list_nodes (graph);
  links = cru_graph_list_links (graph);
  g_assert_cmpuint (nodes->len, >, 1);
  g_assert_cmpuint (links->len, >, 0);
  g_assert_cmpuint (cru_graph_view_get_n_node_widgets (view), ==, nodes->len);
  for (guint i = 0; i < nodes->len; i++)
    g_assert_nonnull (cru_graph_view_get_node_widget (view,
                        ((const CruNode *) g_ptr_array_index (nodes, i))->id));
  /* Every link has both sockets, so every link is drawn as a wire. */
  g_assert_cmpuint (cru_graph_view_get_n_wires (view), ==, links->len);
  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = g_ptr_array_index (links, i);
      graphene_point_t a, b;
      g_assert_true (cru_graph_view_get_socket_point (view, link->from_node, NULL, 0, &a));
      g_assert_true (cru_graph_view_get_socket_point (view, link->to_node, link->to_port,
                                                      link->slot, &b));
      /* Wires run left to right in the examples' layouts. */
      g_assert_cmpfloat (a.x, <, b.x);
    }
  g_assert_true (gui_test_wait_plan (window));
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_examples_load (void)
{
  g_autofree char *dir = cru_find_data_dir ("examples");
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  if (gui_test_skip_without_display ())
    return;
  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".crucible"))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        check_example (path);
        n++;
      }
  g_assert_cmpuint (n, >=, 7);
}

static void
test_ties_is_runnable_as_demo (void)
{
  CruWindow *window;
  g_autoptr(GError) error = NULL;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new (NULL);
  g_assert_true (cru_window_open_demo (window, &error));
  g_assert_no_error (error);
  g_assert_true (gui_test_wait_plan (window));
  if (!cru_plan_is_runnable (cru_window_get_plan (window)))
    g_test_message ("status: %s", cru_window_get_status_text (window));
  g_assert_true (cru_plan_is_runnable (cru_window_get_plan (window)));
  g_assert_nonnull (strstr (cru_window_get_status_text (window), "Peak RAM"));
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_screenshot_writes_png (void)
{
  CruWindow *window;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cru-gui-XXXXXX", NULL);
  g_autofree char *png = g_build_filename (dir, "shot.png", NULL);
  g_autoptr(GdkTexture) texture = NULL;
  gboolean saved;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  g_assert_true (gui_test_wait_plan (window));
  saved = cru_window_save_screenshot (window, png, &error);
  g_assert_no_error (error);
  g_assert_true (saved);
  texture = gdk_texture_new_from_filename (png, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_texture_get_width (texture), ==,
                   gtk_widget_get_width (GTK_WIDGET (window)));
  g_unlink (png);
  g_rmdir (dir);
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/window/opens-on-welcome-page", test_opens_on_welcome);
  g_test_add_func ("/gui/window/every-example-builds-its-nodes-and-wires", test_examples_load);
  g_test_add_func ("/gui/window/demo-graph-is-runnable", test_ties_is_runnable_as_demo);
  g_test_add_func ("/gui/window/screenshot-writes-png", test_screenshot_writes_png);
  return g_test_run ();
}
