/* test-run.c — running the demo graph from the window produces a loadable model
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include "cru-application.h"
#include <glib/gstdio.h>
#include "cru-model.h"

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

static void
test_run_demo (void)
{
  CruWindow *window;
  CruGraph *graph;
  g_autofree char *dir = g_dir_make_tmp ("cru-gui-run-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "merged", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  RunResult r = { 0 };

  if (gui_test_skip_without_display ())
    return;
  window = gui_test_window_new ("ties");
  graph = cru_window_get_graph (window);
  cru_graph_set_path (graph, gui_test_first_node (graph, CRU_NODE_OUTPUT), out);
  g_assert_true (gui_test_wait_plan (window));
  if (!cru_plan_is_runnable (cru_window_get_plan (window)))
    g_test_message ("plan: %s", cru_window_get_status_text (window));
  g_assert_true (cru_plan_is_runnable (cru_window_get_plan (window)));

  g_signal_connect (window, "run-finished", G_CALLBACK (run_finished), &r);
  g_assert_true (cru_window_run (window, TRUE));
  g_assert_true (cru_window_is_running (window));
  g_assert_true (gui_test_wait (is_done, &r, 90000));
  if (!r.ok)
    g_test_message ("run failed: %s", r.message);
  g_assert_true (r.ok);
  g_assert_false (cru_window_is_running (window));

  model = cru_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_nonnull (model);
  g_assert_cmpuint (cru_model_get_n_tensors (model), >, 0);
  g_assert_cmpint (cru_model_get_n_layers (model), ==, 4);
  g_free (r.message);
  gtk_window_destroy (GTK_WINDOW (window));
  remove_tree (dir);
}

int
main (int argc, char **argv)
{
  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/run/demo-graph-writes-a-loadable-model", test_run_demo);
  return g_test_run ();
}
