/* gui-test-util.c — helpers shared by the GUI tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include "cru-application.h"

static gboolean have_display;

gboolean
gui_test_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  have_display = gtk_init_check ();
  if (have_display)
    adw_init ();
  return have_display;
}

gboolean
gui_test_have_display (void)
{
  return have_display;
}

gboolean
gui_test_skip_without_display (void)
{
  if (have_display)
    return FALSE;
  g_test_skip ("no display: run the GUI tests under xvfb-run (GDK_BACKEND=x11)");
  return TRUE;
}

static gboolean
timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
gui_test_wait (gboolean (*cond) (gpointer), gpointer data, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, timeout_cb, &expired);
  gboolean ok;

  while (!(ok = cond == NULL ? FALSE : cond (data)) && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return ok;
}

void
gui_test_spin (guint ms)
{
#ifdef CRU_TEST_SANITIZED
  /* Sanitized builds lay out and draw several times slower: fixed waits stretch with them. */
  ms *= 5;
#endif
  gui_test_wait (NULL, NULL, ms);
}

char *
gui_test_example (const char *name)
{
  return cru_find_example (name);
}

CruWindow *
gui_test_window_new (const char *example)
{
  CruWindow *window = cru_window_new (NULL);

  gtk_window_set_default_size (GTK_WINDOW (window), 1400, 900);
  gtk_window_present (GTK_WINDOW (window));
  if (example != NULL)
    {
      g_autofree char *path = gui_test_example (example);
      g_autoptr(GError) error = NULL;

      g_assert_nonnull (path);
      g_assert_true (cru_window_open_file (window, path, &error));
      g_assert_no_error (error);
    }
  gui_test_spin (200);
  return window;
}

static gboolean
plan_done (gpointer data)
{
  return !cru_window_is_compiling (data) && cru_window_get_plan (data) != NULL;
}

gboolean
gui_test_wait_plan (CruWindow *window)
{
  return gui_test_wait (plan_done, window, 20000);
}

guint
gui_test_first_node (CruGraph *graph, CruNodeKind kind)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);

  for (guint i = 0; i < nodes->len; i++)
    if (((const CruNode *) g_ptr_array_index (nodes, i))->kind == kind)
      return ((const CruNode *) g_ptr_array_index (nodes, i))->id;
  return 0;
}
