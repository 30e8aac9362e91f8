/* test-evaluate.c — the Evaluate dialog: reachable from model and output nodes, computes the
 * engine's perplexity on a worker thread, reports errors and stops on Cancel
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include "cru-perplexity.h"

/* The first button in @root's tree whose action is win.evaluate, with its target. */
static GtkWidget *
find_evaluate_button (GtkWidget *root, char **target)
{
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found;

      if (GTK_IS_BUTTON (c)
          && g_strcmp0 (gtk_actionable_get_action_name (GTK_ACTIONABLE (c)), "win.evaluate") == 0)
        {
          GVariant *v = gtk_actionable_get_action_target_value (GTK_ACTIONABLE (c));
          *target = v ? g_variant_dup_string (v, NULL) : NULL;
          return c;
        }
      if ((found = find_evaluate_button (c, target)) != NULL)
        return found;
    }
  return NULL;
}

typedef struct {
  gboolean done;
  gboolean ok;
} Finished;

static void
on_finished (CruEvaluateDialog *dialog, gboolean ok, Finished *f)
{
  f->done = TRUE;
  f->ok = ok;
}

static gboolean
is_done (gpointer data)
{
  return ((Finished *) data)->done;
}

/* A short piece of a demo evaluation text, so that the test takes a moment. */
static char *
write_sample (const char *name, gsize bytes)
{
  g_autofree char *src = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "eval", name, NULL);
  g_autofree char *data = NULL;
  char *path = g_build_filename (g_get_tmp_dir (), "crucible-eval-sample-XXXXXX", NULL);
  gsize len;
  int fd;

  g_assert_true (g_file_get_contents (src, &data, &len, NULL));
  fd = g_mkstemp (path);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_assert_true (g_file_set_contents (path, data, MIN (len, bytes), NULL));
  return path;
}

static void
test_model_and_output_nodes_offer_evaluate (void)
{
  CruWindow *window;
  CruGraph *graph;
  CruGraphView *view;
  guint model, output;
  g_autofree char *target = NULL;
  g_autofree char *target2 = NULL;
  g_autofree char *base = NULL;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  graph = cru_window_get_graph (window);
  view = cru_window_get_graph_view (window);
  model = gui_test_first_node (graph, CRU_NODE_MODEL);
  cru_graph_view_select_node (view, model, FALSE);
  /* The row appears once the model's header has been read. */
  for (int i = 0; i < 100 && !find_evaluate_button (GTK_WIDGET (cru_window_get_inspector (window)),
                                                    &target); i++)
    gui_test_spin (20);
  g_assert_cmpstr (target, ==, cru_graph_get_node (graph, model)->path);

  /* An Output node offers it only once its folder holds a model (after a run). */
  output = gui_test_first_node (graph, CRU_NODE_OUTPUT);
  cru_graph_view_select_node (view, output, FALSE);
  gui_test_spin (50);
  g_assert_null (find_evaluate_button (GTK_WIDGET (cru_window_get_inspector (window)), &target2));
  base = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "base", NULL);
  cru_graph_set_path (graph, output, base);
  gui_test_spin (50);
  g_assert_nonnull (find_evaluate_button (GTK_WIDGET (cru_window_get_inspector (window)),
                                          &target2));
  g_assert_cmpstr (target2, ==, base);
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_perplexity_matches_engine (void)
{
  CruWindow *window;
  CruEvaluateDialog *dialog;
  g_autofree char *model_path = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "ft-c", NULL);
  g_autofree char *text_path = write_sample ("c.txt", 6000);
  g_autofree char *text = NULL;
  g_autoptr(CruModel) model = NULL;
  g_autoptr(GError) error = NULL;
  CruPerplexity expected;
  Finished f = { 0 };
  int n_experts = -1;
  gsize len;

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new (NULL);
  dialog = cru_window_evaluate (window, model_path);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (dialog)));
  /* It starts with the demo's sample text chosen (or the last text of the session). */
  g_assert_nonnull (cru_evaluate_dialog_get_text_path (dialog));
  cru_evaluate_dialog_set_text_path (dialog, text_path);
  cru_evaluate_dialog_set_ctx (dialog, 64);
  g_signal_connect (dialog, "finished", G_CALLBACK (on_finished), &f);
  cru_evaluate_dialog_start (dialog);
  g_assert_true (cru_evaluate_dialog_is_running (dialog));
  g_assert_true (gui_test_wait (is_done, &f, 120000));
  g_assert_true (f.ok);
  g_assert_null (cru_evaluate_dialog_get_error (dialog));

  /* The same numbers as the engine computes directly for that text and window. */
  g_assert_true (g_file_get_contents (text_path, &text, &len, NULL));
  model = cru_model_open (model_path, &error);
  g_assert_no_error (error);
  g_assert_true (cru_perplexity_run (model, NULL, text, len, 64, 1, NULL, NULL, &expected, NULL,
                                     &error));
  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (cru_evaluate_dialog_get_perplexity (dialog), expected.ppl,
                                  1e-9 * expected.ppl);
  g_assert_cmpuint (cru_evaluate_dialog_get_n_scored (dialog), ==, expected.n_scored);
  /* The C fine-tune predicts C far better than a uniform guess over 260 byte tokens. */
  g_assert_cmpfloat (expected.ppl, >, 1.0);
  g_assert_cmpfloat (expected.ppl, <, 20.0);
  /* A dense model has no routing. */
  g_assert_null (cru_evaluate_dialog_get_routing (dialog, &n_experts));
  g_assert_cmpint (n_experts, ==, 0);
  cru_perplexity_clear (&expected);

  gtk_window_destroy (GTK_WINDOW (dialog));
  gtk_window_destroy (GTK_WINDOW (window));
  g_unlink (text_path);
}

static void
test_unreadable_text_is_reported (void)
{
  CruWindow *window;
  CruEvaluateDialog *dialog;
  g_autofree char *model_path = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "base", NULL);
  Finished f = { 0 };

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new (NULL);
  dialog = cru_window_evaluate (window, model_path);
  cru_evaluate_dialog_set_text_path (dialog, "/nonexistent/notes-on-c.txt");
  g_signal_connect (dialog, "finished", G_CALLBACK (on_finished), &f);
  cru_evaluate_dialog_start (dialog);
  g_assert_true (gui_test_wait (is_done, &f, 30000));
  g_assert_false (f.ok);
  g_assert_nonnull (strstr (cru_evaluate_dialog_get_error (dialog), "notes-on-c.txt"));
  g_assert_true (isnan (cru_evaluate_dialog_get_perplexity (dialog)));
  gtk_window_destroy (GTK_WINDOW (dialog));
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_cancel_stops (void)
{
  CruWindow *window;
  CruEvaluateDialog *dialog;
  g_autofree char *model_path = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "base", NULL);
  g_autofree char *text_path = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "eval",
                                                 "prose.txt", NULL);
  Finished f = { 0 };

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new (NULL);
  dialog = cru_window_evaluate (window, model_path);
  cru_evaluate_dialog_set_text_path (dialog, text_path);
  g_signal_connect (dialog, "finished", G_CALLBACK (on_finished), &f);
  cru_evaluate_dialog_start (dialog);
  gui_test_spin (100);
  /* Close while running cancels (the whole text would take many seconds). */
  gtk_window_close (GTK_WINDOW (dialog));
  g_assert_true (gui_test_wait (is_done, &f, 30000));
  g_assert_false (f.ok);
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/evaluate/model-and-output-nodes-offer-evaluate",
                   test_model_and_output_nodes_offer_evaluate);
  g_test_add_func ("/gui/evaluate/perplexity-matches-engine", test_perplexity_matches_engine);
  g_test_add_func ("/gui/evaluate/unreadable-text-is-reported", test_unreadable_text_is_reported);
  g_test_add_func ("/gui/evaluate/close-while-running-cancels", test_cancel_stops);
  return g_test_run ();
}
