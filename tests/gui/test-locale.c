/* test-locale.c — the app starts under LANGUAGE=ru and shows the Russian catalog: the
 * welcome page, the header bar's Run button, a node's summary and the status strip
 *
 * The catalogs come from the build tree (CRU_TEST_LOCALEDIR, <builddir>/po), so the test
 * checks what `meson compile` made of po/ru.po.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "gui-test-util.h"

#include <glib/gi18n-lib.h>
#include <locale.h>
#include <string.h>
#include "cru-node-widget.h"

static gboolean have_locale;

/* Does @text hold a Cyrillic letter? */
static gboolean
has_cyrillic (const char *text)
{
  for (const char *p = text; p != NULL && *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c >= 0x0400 && c <= 0x04FF)
        return TRUE;
    }
  return FALSE;
}

/* @shown is the Russian translation of @msgid (and not the English one). */
static void
assert_russian (const char *shown, const char *msgid)
{
  const char *expected = g_dgettext (GETTEXT_PACKAGE, msgid);

  g_assert_nonnull (shown);
  g_assert_cmpstr (shown, !=, msgid);
  g_assert_true (has_cyrillic (shown));
  g_assert_cmpstr (shown, ==, expected);
}

/* The part of a translated format before its first directive ("Пик ОЗУ " of "Пик ОЗУ %s"). */
static char *
translated_prefix (const char *format_msgid)
{
  const char *translated = g_dgettext (GETTEXT_PACKAGE, format_msgid);
  const char *pct = strchr (translated, '%');

  return g_strndup (translated, pct != NULL ? (gsize) (pct - translated) : strlen (translated));
}

static GtkWidget *
find_action_button (GtkWidget *root, const char *action)
{
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found;

      if (GTK_IS_BUTTON (c)
          && g_strcmp0 (gtk_actionable_get_action_name (GTK_ACTIONABLE (c)), action) == 0)
        return c;
      if ((found = find_action_button (c, action)) != NULL)
        return found;
    }
  return NULL;
}

/* Is there a visible label showing exactly @text under @root? */
static gboolean
shows_label (GtkWidget *root, const char *text)
{
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      if (GTK_IS_LABEL (c) && gtk_widget_is_drawable (c)
          && g_strcmp0 (gtk_label_get_label (GTK_LABEL (c)), text) == 0)
        return TRUE;
      if (shows_label (c, text))
        return TRUE;
    }
  return FALSE;
}

/* The welcome page's example rows (their action opens a file). */
static void
collect_example_rows (GtkWidget *root, GPtrArray *rows)
{
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      if (ADW_IS_ACTION_ROW (c)
          && g_strcmp0 (gtk_actionable_get_action_name (GTK_ACTIONABLE (c)), "win.open-file") == 0)
        g_ptr_array_add (rows, c);
      collect_example_rows (c, rows);
    }
}

static gboolean
skip (void)
{
  if (gui_test_skip_without_display ())
    return TRUE;
  if (!have_locale)
    {
      g_test_skip ("the C.UTF-8 locale is not available here; LANGUAGE needs a non-C locale");
      return TRUE;
    }
  return FALSE;
}

static void
test_welcome_page (void)
{
  CruWindow *window;

  if (skip ())
    return;
  window = gui_test_window_new (NULL);
  g_assert_true (cru_window_is_welcome_shown (window));
  g_assert_cmpstr (g_dgettext (GETTEXT_PACKAGE, "Welcome to Crucible"), ==,
                   "Добро пожаловать в Crucible");
  g_assert_true (shows_label (GTK_WIDGET (window), "Добро пожаловать в Crucible"));
  g_assert_false (shows_label (GTK_WIDGET (window), "Welcome to Crucible"));

  /* Every example is described in Russian (a description that no longer matches the file's
   * comment falls back to the file's English text: update known_examples then). */
  {
    g_autoptr(GPtrArray) rows = g_ptr_array_new ();

    collect_example_rows (GTK_WIDGET (window), rows);
    g_assert_cmpuint (rows->len, >=, 7);
    for (guint i = 0; i < rows->len; i++)
      {
        const char *title = adw_preferences_row_get_title (rows->pdata[i]);
        const char *subtitle = adw_action_row_get_subtitle (rows->pdata[i]);

        g_test_message ("example “%s”: %s", title, subtitle);
        g_assert_true (has_cyrillic (subtitle));
      }
  }
  gtk_window_destroy (GTK_WINDOW (window));
}

static void
test_editor (void)
{
  CruWindow *window;
  GtkWidget *run;
  CruGraph *graph;
  CruNodeWidget *moe;
  const char *summary, *status;
  g_autofree char *routing = NULL;
  g_autofree char *peak = NULL;

  if (skip ())
    return;
  window = gui_test_window_new ("moe-from-experts");

  /* The header bar's Run button */
  run = find_action_button (GTK_WIDGET (window), "win.run");
  g_assert_nonnull (run);
  g_assert_true (ADW_IS_BUTTON_CONTENT (gtk_button_get_child (GTK_BUTTON (run))));
  g_assert_cmpstr (adw_button_content_get_label (ADW_BUTTON_CONTENT (gtk_button_get_child (GTK_BUTTON (run)))),
                   ==, "_Запустить");
  assert_russian (adw_button_content_get_label (ADW_BUTTON_CONTENT (gtk_button_get_child (GTK_BUTTON (run)))),
                  "_Run");

  /* The palette's headings */
  g_assert_true (shows_label (GTK_WIDGET (window), g_dgettext (GETTEXT_PACKAGE, "Methods")));
  assert_russian (g_dgettext (GETTEXT_PACKAGE, "Methods"), "Methods");

  /* The mixture of experts' summary on the canvas: "Маршрутизация: По смыслу" */
  graph = cru_window_get_graph (window);
  moe = cru_graph_view_get_node_widget (cru_window_get_graph_view (window),
                                        gui_test_first_node (graph, CRU_NODE_MOE));
  g_assert_nonnull (moe);
  summary = cru_node_widget_get_summary (moe);
  routing = g_strdup_printf (g_dgettext (GETTEXT_PACKAGE, "Routing: %s"),
                             g_dgettext (GETTEXT_PACKAGE, "By meaning"));
  g_assert_cmpstr (routing, ==, "Маршрутизация: По смыслу");
  g_assert_nonnull (strstr (summary, routing));

  /* The status strip's estimate, once the plan has compiled */
  g_assert_true (gui_test_wait_plan (window));
  gui_test_spin (100);
  status = cru_window_get_status_text (window);
  peak = translated_prefix ("Peak RAM %s");
  g_assert_true (has_cyrillic (peak));
  g_assert_nonnull (status);
  g_assert_nonnull (strstr (status, peak));
  g_assert_null (strstr (status, "Peak RAM"));
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  /* Before GTK initializes: it calls setlocale (LC_ALL, "") itself, so the environment must
   * name the locale too. LANGUAGE is ignored under the plain C locale. */
  g_setenv ("LC_ALL", "C.UTF-8", TRUE);
  g_setenv ("LANGUAGE", "ru", TRUE);
  have_locale = setlocale (LC_ALL, "C.UTF-8") != NULL;
  bindtextdomain (GETTEXT_PACKAGE, CRU_TEST_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  gui_test_init (&argc, &argv);
  g_test_add_func ("/gui/locale/ru/welcome-page", test_welcome_page);
  g_test_add_func ("/gui/locale/ru/editor", test_editor);
  return g_test_run ();
}
