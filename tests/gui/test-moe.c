/* test-moe.c — the Mixture of Experts example in the window: the node's summary, prompts
 * edited in the inspector (one undo step per burst of typing), a run that writes a Mixtral
 * model, and the router warning on the node when two experts share their prompts
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include "cru-model.h"
#include "cru-node-widget.h"

typedef struct {
  gboolean done;
  gboolean ok;
  char    *message;
} RunResult;

static void
run_finished (CruWindow *window, gboolean ok, const char *message, RunResult *r)
{
  r->done = TRUE;
  r->ok = ok;
  g_free (r->message);
  r->message = g_strdup (message);
}

static gboolean
is_done (gpointer data)
{
  return ((RunResult *) data)->done;
}

static void
remove_tree (const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileEnumerator) e = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                           G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                                           NULL, NULL);
  GFileInfo *info;

  while (e != NULL && (info = g_file_enumerator_next_file (e, NULL, NULL)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, g_file_info_get_name (info), NULL);
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        remove_tree (child);
      else
        g_remove (child);
      g_object_unref (info);
    }
  g_rmdir (path);
}

/* The link of expert @slot into the MoE node. */
static const CruLink *
expert_link (CruGraph *graph, guint moe, int slot)
{
  return cru_graph_find_link (graph, moe, CRU_PORT_EXPERT, slot);
}

static const char *
prompt (CruGraph *graph, guint link, guint index)
{
  const CruValue *v = cru_graph_get_link_param (graph, link, "positive_prompts");

  g_assert_nonnull (v);
  g_assert_cmpint (v->kind, ==, CRU_VALUE_STRINGS);
  return v->strings[index];
}

static void
type_text (GtkTextBuffer *buffer, const char *text)
{
  GtkTextIter end;

  for (const char *c = text; *c; c++)
    {
      gtk_text_buffer_get_end_iter (buffer, &end);
      gtk_text_buffer_insert (buffer, &end, c, 1);
    }
}

static void
test_inspector_edits_prompts (void)
{
  CruWindow *window;
  CruGraph *graph;
  CruInspector *inspector;
  CruNodeWidget *widget;
  GtkTextBuffer *buffer;
  GtkAdjustment *per_token;
  const CruValue *v;
  guint moe, link;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("moe");
  graph = cru_window_get_graph (window);
  inspector = cru_window_get_inspector (window);
  moe = gui_test_first_node (graph, CRU_NODE_MOE);
  widget = cru_graph_view_get_node_widget (cru_window_get_graph_view (window), moe);
  g_assert_nonnull (strstr (cru_node_widget_get_summary (widget), "By meaning"));
  g_assert_nonnull (strstr (cru_node_widget_get_summary (widget), "2 of 3 experts per token"));

  cru_graph_view_select_node (cru_window_get_graph_view (window), moe, FALSE);
  g_assert_cmpuint (cru_inspector_get_node (inspector), ==, moe);
  link = expert_link (graph, moe, 0)->id;
  buffer = cru_inspector_get_prompt_buffer (inspector, link, "positive_prompts", 0);
  g_assert_nonnull (buffer);
  g_assert_nonnull (cru_inspector_get_prompt_buffer (inspector, link, "negative_prompts", 0));
  g_assert_null (cru_inspector_get_prompt_buffer (inspector, link, "positive_prompts", 3));

  /* typing reaches the graph at once, and the burst is one undo step */
  type_text (buffer, " pass");
  g_assert_cmpstr (prompt (graph, link, 0), ==, "def main(): pass");
  g_assert_cmpstr (prompt (graph, link, 1), ==, "import os");
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpstr (prompt (graph, link, 0), ==, "def main():");
  g_assert_true (cru_graph_redo (graph));
  g_assert_cmpstr (prompt (graph, link, 0), ==, "def main(): pass");
  g_assert_true (cru_graph_undo (graph));

  /* emptying a prompt leaves it out; undo brings it back */
  gui_test_spin (100);
  buffer = cru_inspector_get_prompt_buffer (inspector, link, "positive_prompts", 1);
  g_assert_nonnull (buffer);
  gtk_text_buffer_set_text (buffer, "", -1);
  v = cru_graph_get_link_param (graph, link, "positive_prompts");
  g_assert_cmpuint (g_strv_length (v->strings), ==, 2);
  g_assert_cmpstr (v->strings[1], ==, "class Parser:");
  cru_graph_break_coalescing (graph);
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpstr (prompt (graph, link, 1), ==, "import os");

  /* experts per token: a scalar row, shown on the node */
  gui_test_spin (100);
  per_token = cru_inspector_get_adjustment (inspector, 0, "experts_per_token");
  g_assert_nonnull (per_token);
  gtk_adjustment_set_value (per_token, 3);
  v = cru_graph_get_param (graph, moe, "experts_per_token");
  g_assert_cmpfloat (v->scalar, ==, 3);
  g_assert_nonnull (strstr (cru_node_widget_get_summary (widget), "3 of 3 experts per token"));
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpfloat (cru_graph_get_param (graph, moe, "experts_per_token")->scalar, ==, 2);
  gtk_window_destroy (GTK_WINDOW (window));
}

/* Runs the window's graph into @out; returns whether it worked. */
static gboolean
run_window (CruWindow *window, const char *out)
{
  CruGraph *graph = cru_window_get_graph (window);
  RunResult r = { 0 };
  gulong handler;

  cru_graph_set_path (graph, gui_test_first_node (graph, CRU_NODE_OUTPUT), out);
  g_assert_true (gui_test_wait_plan (window));
  if (!cru_plan_is_runnable (cru_window_get_plan (window)))
    g_test_message ("plan: %s", cru_window_get_status_text (window));
  g_assert_true (cru_plan_is_runnable (cru_window_get_plan (window)));
  handler = g_signal_connect (window, "run-finished", G_CALLBACK (run_finished), &r);
  g_assert_true (cru_window_run (window, TRUE));
  g_assert_true (cru_window_is_running (window));
  g_assert_true (gui_test_wait (is_done, &r, 90000));
  g_signal_handler_disconnect (window, handler);
  if (!r.ok)
    g_test_message ("run failed: %s", r.message);
  g_free (r.message);
  gui_test_spin (100);
  return r.ok;
}

static void
test_run_writes_a_moe (void)
{
  CruWindow *window;
  g_autofree char *dir = g_dir_make_tmp ("cru-gui-moe-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "experts", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  g_autoptr(GPtrArray) found = NULL;
  CruNodeWidget *widget;
  guint moe;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("moe");
  moe = gui_test_first_node (cru_window_get_graph (window), CRU_NODE_MOE);
  g_assert_true (run_window (window, out));
  g_assert_false (cru_window_is_running (window));
  model = cru_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cru_model_get_model_type (model), ==, "mixtral");
  g_assert_nonnull (cru_model_lookup (model, "model.layers.3.block_sparse_moe.gate.weight"));
  /* the example's prompts tell the experts apart: no warning from the run */
  found = cru_plan_get_run_warnings (cru_window_get_plan (window));
  g_assert_cmpuint (found->len, ==, 0);
  widget = cru_graph_view_get_node_widget (cru_window_get_graph_view (window), moe);
  g_assert_cmpint (cru_node_widget_get_run_state (widget), ==, CRU_NODE_RUN_DONE);
  gtk_window_destroy (GTK_WINDOW (window));
  remove_tree (dir);
}

/* Expert 3 given expert 2's prompts in the inspector: the plan warns, and the run's router
 * warning lands on the MoE node. */
static void
test_same_prompts_warn_on_the_node (void)
{
  static const char *const c_prompts[] = { "#include <stdlib.h>", "typedef struct",
                                            "int main(void) {" };
  CruWindow *window;
  CruGraph *graph;
  CruInspector *inspector;
  CruNodeWidget *widget;
  g_autofree char *dir = g_dir_make_tmp ("cru-gui-moe-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "experts", NULL);
  g_autoptr(GPtrArray) found = NULL;
  guint moe, link, warnings_before;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("moe");
  graph = cru_window_get_graph (window);
  inspector = cru_window_get_inspector (window);
  moe = gui_test_first_node (graph, CRU_NODE_MOE);
  cru_graph_view_select_node (cru_window_get_graph_view (window), moe, FALSE);
  link = expert_link (graph, moe, 2)->id;
  for (guint i = 0; i < G_N_ELEMENTS (c_prompts); i++)
    {
      GtkTextBuffer *buffer = cru_inspector_get_prompt_buffer (inspector, link,
                                                               "positive_prompts", i);
      g_assert_nonnull (buffer);
      gtk_text_buffer_set_text (buffer, c_prompts[i], -1);
    }
  g_assert_cmpstr (prompt (graph, link, 2), ==, "int main(void) {");
  g_assert_true (gui_test_wait_plan (window));
  widget = cru_graph_view_get_node_widget (cru_window_get_graph_view (window), moe);
  /* not a power of two; experts 2 and 3 have the same prompts */
  warnings_before = cru_node_widget_get_n_warnings (widget);
  g_assert_cmpuint (warnings_before, ==, 2);

  g_assert_true (run_window (window, out));
  found = cru_plan_get_run_warnings (cru_window_get_plan (window));
  g_assert_cmpuint (found->len, ==, 1);
  g_assert_nonnull (strstr (((CruProblem *) found->pdata[0])->message, "degenerate routing"));
  g_assert_cmpuint (cru_node_widget_get_n_warnings (widget), ==, warnings_before + 1);
  gtk_window_destroy (GTK_WINDOW (window));
  remove_tree (dir);
}

int
main (int argc, char **argv)
{
  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/moe/inspector-edits-prompts-as-one-undo-step",
                   test_inspector_edits_prompts);
  g_test_add_func ("/gui/moe/run-writes-a-mixtral-model", test_run_writes_a_moe);
  g_test_add_func ("/gui/moe/same-prompts-warn-on-the-node", test_same_prompts_warn_on_the_node);
  return g_test_run ();
}
