/* cru-application.c — the application object and its command line
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-application.h"

#include <glib/gi18n-lib.h>
#include "cru-config.h"
#include "cru-node-info.h"

struct _CruApplication {
  AdwApplication  parent_instance;
  gboolean        demo;
  gboolean        dark;
  char           *screenshot;
  char           *screenshot_graph;
  guint           screenshot_timeout;
  guint           stable_ticks;
  guint           ticks;
  CruWindow      *screenshot_window;
};

G_DEFINE_FINAL_TYPE (CruApplication, cru_application, ADW_TYPE_APPLICATION)

char *
cru_find_example (const char *name)
{
  g_autofree char *dir = cru_find_data_dir ("examples");
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *entry;

  while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, ".crucible") && strstr (entry, name) != NULL)
      return g_build_filename (dir, entry, NULL);
  return NULL;
}

static CruNode *
find_output (CruGraph *graph)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);

  for (guint i = 0; i < nodes->len; i++)
    if (((CruNode *) g_ptr_array_index (nodes, i))->kind == CRU_NODE_OUTPUT)
      return g_ptr_array_index (nodes, i);
  return NULL;
}

gboolean
cru_window_open_demo (CruWindow *window, GError **error)
{
  g_autofree char *path = cru_find_example ("ties");
  g_autofree char *out = g_build_filename (g_get_user_cache_dir (), "crucible", "demo-output",
                                           NULL);
  CruNode *output;

  if (path == NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                   _("The “TIES of three” example was not found; is Crucible fully installed?"));
      return FALSE;
    }
  if (!cru_window_open_file (window, path, error))
    return FALSE;
  output = find_output (cru_window_get_graph (window));
  if (output != NULL)
    {
      g_autofree char *parent = g_path_get_dirname (out);
      if (g_mkdir_with_parents (parent, 0755) != 0)
        {
          g_free (out);
          out = g_build_filename (g_get_tmp_dir (), "crucible-demo-output", NULL);
        }
      cru_graph_set_path (cru_window_get_graph (window), output->id, out);
    }
  return TRUE;
}

gboolean
cru_window_save_screenshot (CruWindow *window, const char *path, GError **error)
{
  GtkWidget *widget = GTK_WIDGET (window);
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (window));

  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  node = gtk_snapshot_free_to_node (snapshot);
  if (node == NULL || renderer == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("The window could not be drawn"));
      return FALSE;
    }
  texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  if (!gdk_texture_save_to_png (texture, path))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not write “%s”"), path);
      return FALSE;
    }
  return TRUE;
}

/* ---- --screenshot: wait until laid out, compiled and the models are read ---- */

static gboolean
screenshot_tick (gpointer user_data)
{
  CruApplication *self = user_data;
  CruWindow *win = self->screenshot_window;
  gboolean ready = gtk_widget_get_mapped (GTK_WIDGET (win))
                   && !cru_window_is_compiling (win) && cru_model_info_get_pending () == 0;

  self->ticks++;
  self->stable_ticks = ready ? self->stable_ticks + 1 : 0;
  /* The window's frame (client-side decorations) takes a few pixels of the default size:
   * grow it so that the picture itself is 1400×900. */
  if (ready)
    {
      int w = gtk_widget_get_width (GTK_WIDGET (win)), h = gtk_widget_get_height (GTK_WIDGET (win));
      int dw, dh;

      gtk_window_get_default_size (GTK_WINDOW (win), &dw, &dh);
      if ((w != 1400 || h != 900) && self->ticks < 200)
        {
          gtk_window_set_default_size (GTK_WINDOW (win), dw + 1400 - w, dh + 900 - h);
          self->stable_ticks = 0;
        }
    }
  if (self->stable_ticks == 3)
    {
      CruGraphView *view = cru_window_get_graph_view (win);
      g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (cru_window_get_graph (win));

      /* Show a method node in the inspector: the screenshot is about merging. */
      for (guint i = 0; i < nodes->len; i++)
        if (((CruNode *) g_ptr_array_index (nodes, i))->kind == CRU_NODE_METHOD)
          {
            cru_graph_view_select_node (view, ((CruNode *) g_ptr_array_index (nodes, i))->id,
                                        FALSE);
            break;
          }
      cru_graph_view_zoom_to_fit (view);
    }
  if (self->stable_ticks >= 8 || self->ticks > 300)
    {
      g_autoptr(GError) error = NULL;

      if (!cru_window_save_screenshot (win, self->screenshot, &error))
        g_printerr ("crucible: %s\n", error->message);
      else
        g_print ("%s\n", self->screenshot);
      self->screenshot_timeout = 0;
      gtk_window_destroy (GTK_WINDOW (win));
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
start_screenshot (CruApplication *self, CruWindow *win)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *graph = self->screenshot_graph ? g_strdup (self->screenshot_graph)
                                                  : cru_find_example ("ties");

  gtk_window_set_default_size (GTK_WINDOW (win), 1400, 900);
  gtk_window_unmaximize (GTK_WINDOW (win));
  /* The default picture is the demo: the TIES example with its output folder set.
   * CRU_SCREENSHOT_PAGE=welcome pictures the welcome page instead (for the docs). */
  if (g_strcmp0 (g_getenv ("CRU_SCREENSHOT_PAGE"), "welcome") == 0)
    ;
  else if (self->screenshot_graph == NULL)
    {
      if (!cru_window_open_demo (win, &error))
        g_printerr ("crucible: %s\n", error->message);
    }
  else if (!cru_window_open_file (win, graph, &error))
    g_printerr ("crucible: %s\n", error->message);
  self->screenshot_window = win;
  gtk_window_present (GTK_WINDOW (win));
  self->screenshot_timeout = g_timeout_add (50, screenshot_tick, self);
}

/* ---- application ---- */

static void
cru_application_activate (GApplication *app)
{
  CruApplication *self = CRU_APPLICATION (app);
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  g_autoptr(GError) error = NULL;

  if (win == NULL)
    win = GTK_WINDOW (cru_window_new (GTK_APPLICATION (app)));
  if (self->screenshot != NULL)
    {
      start_screenshot (self, CRU_WINDOW (win));
      return;
    }
  if (self->demo)
    {
      self->demo = FALSE;
      if (!cru_window_open_demo (CRU_WINDOW (win), &error))
        cru_window_toast (CRU_WINDOW (win), error->message);
    }
  gtk_window_present (win);
}

static void
cru_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  CruApplication *self = CRU_APPLICATION (app);
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  g_autofree char *path = n_files > 0 ? g_file_get_path (files[0]) : NULL;
  g_autoptr(GError) error = NULL;

  if (self->screenshot != NULL)
    {
      g_free (self->screenshot_graph);
      self->screenshot_graph = g_steal_pointer (&path);
      cru_application_activate (app);
      return;
    }
  if (win == NULL)
    win = GTK_WINDOW (cru_window_new (GTK_APPLICATION (app)));
  gtk_window_present (win);
  if (path != NULL && !cru_window_open_file (CRU_WINDOW (win), path, &error))
    cru_window_toast (CRU_WINDOW (win), error->message);
}

static int
cru_application_handle_local_options (GApplication *app, GVariantDict *options)
{
  CruApplication *self = CRU_APPLICATION (app);

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("crucible %s\n", CRU_VERSION);
      return 0;
    }
  self->demo = g_variant_dict_contains (options, "demo");
  self->dark = g_variant_dict_contains (options, "dark");
  g_variant_dict_lookup (options, "screenshot", "^ay", &self->screenshot);
  if (self->screenshot != NULL || self->demo)
    {
      /* One-shot runs must not hand over to an already running instance. */
      g_application_set_flags (app, g_application_get_flags (app) | G_APPLICATION_NON_UNIQUE);
    }
  return -1;
}

static void
cru_application_startup (GApplication *app)
{
  CruApplication *self = CRU_APPLICATION (app);
  const char *quit_accels[] = { "<Control>q", NULL };

  G_APPLICATION_CLASS (cru_application_parent_class)->startup (app);
  if (self->dark)
    adw_style_manager_set_color_scheme (adw_style_manager_get_default (),
                                        ADW_COLOR_SCHEME_FORCE_DARK);
  else if (self->screenshot != NULL)
    adw_style_manager_set_color_scheme (adw_style_manager_get_default (),
                                        ADW_COLOR_SCHEME_FORCE_LIGHT);
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit_accels);
}

static void
about_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkApplication *app = user_data;
  const char *developers[] = { "The Crucible contributors", NULL };
  GtkWidget *about = adw_about_window_new ();

  g_object_set (about,
                "transient-for", gtk_application_get_active_window (app),
                "application-name", _("Crucible"),
                "application-icon", CRU_APP_ID,
                "version", CRU_VERSION,
                "comments", _("Merge language models by wiring them into a graph"),
                "license-type", GTK_LICENSE_GPL_3_0,
                "developers", developers,
                "website", "https://github.com/crucible-merge/crucible",
                NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static void
quit_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (user_data));

  for (GList *l = windows; l != NULL; )
    {
      GList *next = l->next;
      gtk_window_close (l->data);
      l = next;
    }
}

static void
cru_application_finalize (GObject *object)
{
  CruApplication *self = CRU_APPLICATION (object);

  g_clear_handle_id (&self->screenshot_timeout, g_source_remove);
  g_free (self->screenshot);
  g_free (self->screenshot_graph);
  G_OBJECT_CLASS (cru_application_parent_class)->finalize (object);
}

static void
cru_application_class_init (CruApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = cru_application_finalize;
  app_class->activate = cru_application_activate;
  app_class->open = cru_application_open;
  app_class->startup = cru_application_startup;
  app_class->handle_local_options = cru_application_handle_local_options;
}

static void
cru_application_init (CruApplication *self)
{
  static const GActionEntry entries[] = {
    { "about", about_activated, NULL, NULL, NULL, { 0 } },
    { "quit", quit_activated, NULL, NULL, NULL, { 0 } },
  };
  static const GOptionEntry options[] = {
    { "demo", 0, 0, G_OPTION_ARG_NONE, NULL,
      N_("Open the “TIES of three” example on the bundled demo models, ready to run"), NULL },
    { "screenshot", 0, 0, G_OPTION_ARG_FILENAME, NULL,
      N_("Render the window with GRAPH (default: the TIES example) to a PNG file and quit"),
      N_("FILE.png") },
    { "dark", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Use the dark style"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Show the version and quit"), NULL },
    { NULL }
  };

  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
  g_application_add_main_option_entries (G_APPLICATION (self), options);
  g_application_set_option_context_parameter_string (G_APPLICATION (self), _("[FILE.crucible]"));
}

CruApplication *
cru_application_new (void)
{
  GApplicationFlags flags = G_APPLICATION_HANDLES_OPEN;

  /* Without a session bus (CI, Xvfb) there is nothing to be unique on. */
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    flags |= G_APPLICATION_NON_UNIQUE;
  return g_object_new (CRU_TYPE_APPLICATION,
                       "application-id", CRU_APP_ID,
                       "flags", flags,
                       "resource-base-path", "/io/github/crucible_merge/Crucible",
                       NULL);
}
