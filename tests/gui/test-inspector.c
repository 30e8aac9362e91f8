/* test-inspector.c — inspector edits reach the graph, as one undo step per burst
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include <math.h>
#include "cru-gradient-editor.h"

static void
test_per_input_weight (void)
{
  CruWindow *window;
  CruGraph *graph;
  CruInspector *inspector;
  guint method;
  g_autoptr(GPtrArray) into = NULL;
  const CruLink *link = NULL;
  GtkAdjustment *adj;
  const CruValue *v;
  double original;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  graph = cru_window_get_graph (window);
  inspector = cru_window_get_inspector (window);
  method = gui_test_first_node (graph, CRU_NODE_METHOD);
  cru_graph_view_select_node (cru_window_get_graph_view (window), method, FALSE);
  g_assert_cmpuint (cru_inspector_get_node (inspector), ==, method);
  /* TIES of three: a group per model input (not the base). */
  g_assert_cmpuint (cru_inspector_get_n_input_groups (inspector), ==, 3);

  into = cru_graph_links_to (graph, method);
  for (guint i = 0; i < into->len && link == NULL; i++)
    if (g_str_equal (((const CruLink *) g_ptr_array_index (into, i))->to_port, CRU_PORT_MODEL))
      link = g_ptr_array_index (into, i);
  g_assert_nonnull (link);
  adj = cru_inspector_get_adjustment (inspector, link->id, "weight");
  g_assert_nonnull (adj);
  original = gtk_adjustment_get_value (adj);

  /* A burst of slider moves is one undo step. */
  gtk_adjustment_set_value (adj, 0.7);
  gtk_adjustment_set_value (adj, 0.8);
  v = cru_graph_get_link_param (graph, link->id, "weight");
  g_assert_nonnull (v);
  g_assert_cmpfloat_with_epsilon (v->scalar, 0.8, 1e-9);
  g_assert_true (cru_graph_undo (graph));
  v = cru_graph_get_link_param (graph, link->id, "weight");
  g_assert_true (v == NULL || fabs (v->scalar - original) < 1e-9);
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_node_scalar_and_gradient (void)
{
  CruWindow *window;
  CruGraph *graph;
  CruInspector *inspector;
  guint method;
  GtkAdjustment *adj;
  GtkWidget *editor;
  const CruValue *v;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("two-model-slerp");
  graph = cru_window_get_graph (window);
  inspector = cru_window_get_inspector (window);
  method = gui_test_first_node (graph, CRU_NODE_METHOD);
  cru_graph_view_select_node (cru_window_get_graph_view (window), method, FALSE);
  adj = cru_inspector_get_adjustment (inspector, 0, "t");
  g_assert_nonnull (adj);
  /* The slider is bounded by the parameter's range: t ∈ [0, 1]. */
  g_assert_cmpfloat (gtk_adjustment_get_lower (adj), ==, 0);
  g_assert_cmpfloat (gtk_adjustment_get_upper (adj), ==, 1);
  gtk_adjustment_set_value (adj, 0.25);
  v = cru_graph_get_param (graph, method, "t");
  g_assert_cmpint (v->kind, ==, CRU_VALUE_SCALAR);
  g_assert_cmpfloat_with_epsilon (v->scalar, 0.25, 1e-9);

  /* Turn it into a per-layer gradient, then apply a preset in the bar editor. */
  {
    double values[] = { 0.25, 0.25, 0.25 };
    cru_graph_set_param (graph, method, "t", cru_value_new_gradient (values, 3));
  }
  gui_test_spin (50);
  editor = cru_inspector_get_gradient_editor (inspector, "t");
  g_assert_nonnull (editor);
  cru_gradient_editor_apply_preset (CRU_GRADIENT_EDITOR (editor), CRU_GRADIENT_RAMP_UP);
  v = cru_graph_get_param (graph, method, "t");
  g_assert_cmpint (v->kind, ==, CRU_VALUE_GRADIENT);
  g_assert_cmpuint (v->gradient->len, ==, 3);
  g_assert_cmpfloat_with_epsilon (g_array_index (v->gradient, double, 0), 0.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (g_array_index (v->gradient, double, 1), 0.5, 1e-9);
  g_assert_cmpfloat_with_epsilon (g_array_index (v->gradient, double, 2), 1.0, 1e-9);
  gtk_window_destroy (GTK_WINDOW (window));
}

/* The first AdwComboRow titled @title below @widget. */
static AdwComboRow *
find_combo_row (GtkWidget *widget, const char *title)
{
  if (ADW_IS_COMBO_ROW (widget)
      && g_strcmp0 (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (widget)), title) == 0)
    return ADW_COMBO_ROW (widget);
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      AdwComboRow *row = find_combo_row (child, title);
      if (row != NULL)
        return row;
    }
  return NULL;
}

static gboolean
plan_is_cpu (gpointer data)
{
  CruPlan *plan = cru_window_get_plan (data);
  return plan != NULL && cru_plan_get_estimate (plan)->device == CRU_DEVICE_CPU
         && g_strcmp0 (cru_plan_get_device_note (plan), "CPU (chosen)") == 0;
}

/* The Output node's device choice is stored in the graph, saved in the .crucible file,
 * and read back; "cpu" makes the plan run on the CPU. */
static void
test_output_device_round_trip (void)
{
  CruWindow *window;
  CruGraph *graph;
  CruInspector *inspector;
  AdwComboRow *row;
  const CruValue *v;
  g_autoptr(CruGraph) copy = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  guint output;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  graph = cru_window_get_graph (window);
  inspector = cru_window_get_inspector (window);
  output = gui_test_first_node (graph, CRU_NODE_OUTPUT);
  cru_graph_view_select_node (cru_window_get_graph_view (window), output, FALSE);
  g_assert_cmpuint (cru_inspector_get_node (inspector), ==, output);
  row = find_combo_row (GTK_WIDGET (inspector), "Device");
  g_assert_nonnull (row);
  /* auto until chosen */
  g_assert_cmpuint (adw_combo_row_get_selected (row), ==, 0);

  adw_combo_row_set_selected (row, 2);
  v = cru_graph_get_param (graph, output, "device");
  g_assert_nonnull (v);
  g_assert_cmpint (v->kind, ==, CRU_VALUE_STRING);
  g_assert_cmpstr (v->string, ==, "cuda");

  data = cru_graph_save_data (graph, NULL);
  g_assert_true (cru_graph_load_data (copy, data, -1, NULL, &error));
  g_assert_no_error (error);
  v = cru_graph_get_param (copy, output, "device");
  g_assert_nonnull (v);
  g_assert_cmpstr (v->string, ==, "cuda");

  /* the inspector was rebuilt by the plan: find the row again */
  gui_test_wait_plan (window);
  row = find_combo_row (GTK_WIDGET (inspector), "Device");
  g_assert_nonnull (row);
  g_assert_cmpuint (adw_combo_row_get_selected (row), ==, 2);
  adw_combo_row_set_selected (row, 1);
  g_assert_cmpstr (cru_graph_get_param (graph, output, "device")->string, ==, "cpu");
  g_assert_true (gui_test_wait (plan_is_cpu, window, 5000));
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/inspector/per-input-weight-is-one-undo-step", test_per_input_weight);
  g_test_add_func ("/gui/inspector/scalar-slider-and-gradient-presets-edit-the-graph",
                   test_node_scalar_and_gradient);
  g_test_add_func ("/gui/inspector/output-device-choice-is-saved-and-planned",
                   test_output_device_round_trip);
  return g_test_run ();
}
