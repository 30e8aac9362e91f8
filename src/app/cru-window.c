/* cru-window.c — the main window: template, files, welcome page, live plan compiles
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-window-private.h"

#include <glib/gi18n-lib.h>
#include "cru-config.h"
#include "cru-gradient-editor.h"
#include "cru-node-list.h"

G_DEFINE_FINAL_TYPE (CruWindow, cru_window, ADW_TYPE_APPLICATION_WINDOW)

enum { PLAN_READY, RUN_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

#define COMPILE_DELAY_MS 300

/* ---- data and settings ---- */

char *
cru_find_data_dir (const char *subdir)
{
  const char *source = g_getenv ("CRU_SOURCE_DIR");
  g_autofree char *installed = g_build_filename (PKGDATADIR, subdir, NULL);

  if (source != NULL)
    {
      char *dir = g_build_filename (source, "data", subdir, NULL);
      if (g_file_test (dir, G_FILE_TEST_IS_DIR))
        return dir;
      g_free (dir);
    }
  if (g_file_test (installed, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&installed);
  return g_build_filename (CRU_SOURCE_DIR, "data", subdir, NULL);
}

GSettings *
cru_settings_new (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  if (source == NULL)
    return NULL;
  schema = g_settings_schema_source_lookup (source, CRU_APP_ID, TRUE);
  if (schema == NULL)
    schema = g_settings_schema_source_lookup (source, CRU_SCHEMA_ID, TRUE);
  if (schema == NULL)
    return NULL;
  return g_settings_new_full (schema, NULL, NULL);
}

/* ---- live compile ---- */

static void
compile_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(CruWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  CruPlan *plan = cru_plan_compile_finish (result, &error);

  if (plan == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self->compiling = FALSE;
  g_clear_pointer (&self->plan, cru_plan_unref);
  self->plan = plan;
  if (plan != NULL)
    cru_graph_view_set_problems (self->graph_view, cru_plan_get_problems (plan));
  else
    cru_graph_view_set_problems (self->graph_view, NULL);
  cru_inspector_set_plan (self->inspector, plan);
  _cru_window_update_status (self);
  _cru_window_update_actions (self);
  g_signal_emit (self, signals[PLAN_READY], 0);
}

void
cru_window_recompile (CruWindow *self)
{
  CruPlanOptions options;

  g_return_if_fail (CRU_IS_WINDOW (self));
  g_clear_handle_id (&self->compile_timeout, g_source_remove);
  if (self->compile_cancellable != NULL)
    g_cancellable_cancel (self->compile_cancellable);
  g_clear_object (&self->compile_cancellable);
  self->compile_cancellable = g_cancellable_new ();
  cru_plan_options_init (&options);
  /* The preview may replace an existing output; Run asks before it really does. */
  options.overwrite = TRUE;
  if (self->settings != NULL)
    options.n_threads = g_settings_get_uint (self->settings, "default-threads");
  self->compiling = TRUE;
  _cru_window_update_actions (self);
  cru_plan_compile_async (self->graph, &options, self->compile_cancellable, compile_done,
                          g_object_ref (self));
}

gboolean
cru_window_is_compiling (CruWindow *self)
{
  return self->compiling || self->compile_timeout != 0;
}

static gboolean
compile_timeout_cb (gpointer user_data)
{
  CruWindow *self = user_data;

  self->compile_timeout = 0;
  cru_window_recompile (self);
  return G_SOURCE_REMOVE;
}

static void
graph_changed (CruGraph *graph, CruGraphChange change, guint id, CruWindow *self)
{
  if (change == CRU_GRAPH_CHANGE_NODE_MOVED)
    return;
  /* Debounced: a burst of edits compiles once, 300 ms after the last. */
  g_clear_handle_id (&self->compile_timeout, g_source_remove);
  self->compile_timeout = g_timeout_add (COMPILE_DELAY_MS, compile_timeout_cb, self);
  _cru_window_update_actions (self);
}

static void
update_title (CruWindow *self)
{
  const char *path = cru_graph_get_path (self->graph);
  g_autofree char *base = path ? g_path_get_basename (path) : g_strdup (_("Untitled Graph"));
  g_autofree char *title = cru_graph_get_modified (self->graph)
                           ? g_strdup_printf ("• %s", base) : g_strdup (base);

  adw_window_title_set_subtitle (self->window_title, title);
}

static void
graph_notify (CruGraph *graph, GParamSpec *pspec, CruWindow *self)
{
  update_title (self);
  _cru_window_update_actions (self);
}

CruPlan *
cru_window_get_plan (CruWindow *self)
{
  g_return_val_if_fail (CRU_IS_WINDOW (self), NULL);
  return self->plan;
}

/* ---- pages and files ---- */

void
cru_window_show_editor (CruWindow *self)
{
  gtk_stack_set_visible_child_name (GTK_STACK (self->main_stack), "editor");
  gtk_widget_set_visible (gtk_widget_get_parent (self->estimate_label), TRUE);
  gtk_widget_grab_focus (GTK_WIDGET (self->graph_view));
  _cru_window_update_actions (self);
}

void
cru_window_show_welcome (CruWindow *self)
{
  _cru_window_populate_welcome (self);
  gtk_stack_set_visible_child_name (GTK_STACK (self->main_stack), "welcome");
  gtk_widget_set_visible (gtk_widget_get_parent (self->estimate_label), FALSE);
  _cru_window_update_actions (self);
}

gboolean
cru_window_is_welcome_shown (CruWindow *self)
{
  return g_strcmp0 (gtk_stack_get_visible_child_name (GTK_STACK (self->main_stack)),
                    "welcome") == 0;
}

gboolean
cru_window_open_file (CruWindow *self, const char *path, GError **error)
{
  g_return_val_if_fail (CRU_IS_WINDOW (self), FALSE);
  if (!cru_graph_load_file (self->graph, path, error))
    return FALSE;
  _cru_window_add_recent (self, path);
  update_title (self);
  cru_graph_view_reset_run_state (self->graph_view);
  cru_window_show_editor (self);
  cru_window_recompile (self);
  return TRUE;
}

CruGraph *
cru_window_get_graph (CruWindow *self)
{
  return self->graph;
}

CruGraphView *
cru_window_get_graph_view (CruWindow *self)
{
  return self->graph_view;
}

CruInspector *
cru_window_get_inspector (CruWindow *self)
{
  return self->inspector;
}

const char *
cru_window_get_status_text (CruWindow *self)
{
  return self->status_text;
}

void
cru_window_toast (CruWindow *self, const char *message)
{
  AdwToast *toast = adw_toast_new (message);

  adw_toast_set_timeout (toast, 5);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

static void
selection_changed (CruGraphView *view, CruWindow *self)
{
  cru_inspector_set_node (self->inspector, cru_graph_view_get_selected_node (view));
}

/* ---- object ---- */

static gboolean
cru_window_close_request (GtkWindow *window)
{
  CruWindow *self = CRU_WINDOW (window);

  if (self->settings != NULL)
    {
      int w, h;
      gtk_window_get_default_size (window, &w, &h);
      g_settings_set_int (self->settings, "window-width", w);
      g_settings_set_int (self->settings, "window-height", h);
      g_settings_set_boolean (self->settings, "window-maximized",
                              gtk_window_is_maximized (window));
    }
  cru_window_cancel_run (self);
  return GTK_WINDOW_CLASS (cru_window_parent_class)->close_request (window);
}

static void
cru_window_dispose (GObject *object)
{
  CruWindow *self = CRU_WINDOW (object);

  g_clear_handle_id (&self->compile_timeout, g_source_remove);
  if (self->compile_cancellable != NULL)
    g_cancellable_cancel (self->compile_cancellable);
  g_clear_object (&self->compile_cancellable);
  _cru_window_run_dispose (self);
  if (self->graph != NULL)
    g_signal_handlers_disconnect_by_data (self->graph, self);
  gtk_widget_dispose_template (GTK_WIDGET (self), CRU_TYPE_WINDOW);
  g_clear_object (&self->graph);
  g_clear_object (&self->settings);
  g_clear_pointer (&self->plan, cru_plan_unref);
  g_clear_pointer (&self->status_text, g_free);
  G_OBJECT_CLASS (cru_window_parent_class)->dispose (object);
}

static void
cru_window_class_init (CruWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = cru_window_dispose;
  GTK_WINDOW_CLASS (klass)->close_request = cru_window_close_request;

  g_type_ensure (CRU_TYPE_GRAPH_VIEW);
  g_type_ensure (CRU_TYPE_INSPECTOR);
  g_type_ensure (CRU_TYPE_GRADIENT_EDITOR);
  gtk_widget_class_set_template_from_resource (widget_class,
      "/io/github/crucible_merge/Crucible/cru-window.ui");
  gtk_widget_class_bind_template_child (widget_class, CruWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, window_title);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, examples_group);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, recent_group);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, palette_box);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, add_model_button);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, graph_view);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, inspector);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, run_button);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, estimate_label);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, problems_label);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, run_progress);
  gtk_widget_class_bind_template_child (widget_class, CruWindow, run_detail);

  signals[PLAN_READY] =
    g_signal_new ("plan-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 0);
  signals[RUN_FINISHED] =
    g_signal_new ("run-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
  _cru_window_install_actions (widget_class);
}

static void
palette_activated (CruNodeList *list, guint index, CruWindow *self)
{
  GtkWidget *view = GTK_WIDGET (self->graph_view);
  double cx, cy;

  cru_graph_view_widget_to_canvas (self->graph_view, gtk_widget_get_width (view) / 2.0 - 100,
                                   gtk_widget_get_height (view) / 2.0 - 50, &cx, &cy);
  cru_graph_view_add_template (self->graph_view, cru_node_templates_get_nth (index), cx, cy);
}

static void
cru_window_init (CruWindow *self)
{
  GtkWidget *palette;

  gtk_widget_init_template (GTK_WIDGET (self));
  g_mutex_init (&self->progress_lock);

  self->settings = cru_settings_new ();
  if (self->settings != NULL)
    {
      gtk_window_set_default_size (GTK_WINDOW (self),
                                   g_settings_get_int (self->settings, "window-width"),
                                   g_settings_get_int (self->settings, "window-height"));
      if (g_settings_get_boolean (self->settings, "window-maximized"))
        gtk_window_maximize (GTK_WINDOW (self));
    }

  self->graph = cru_graph_new ();
  g_signal_connect (self->graph, "changed", G_CALLBACK (graph_changed), self);
  g_signal_connect (self->graph, "notify::modified", G_CALLBACK (graph_notify), self);
  g_signal_connect (self->graph, "notify::file", G_CALLBACK (graph_notify), self);
  g_signal_connect_swapped (self->graph, "history-changed",
                            G_CALLBACK (_cru_window_update_actions), self);
  cru_graph_view_set_graph (self->graph_view, self->graph);
  cru_inspector_set_graph (self->inspector, self->graph);
  g_signal_connect (self->graph_view, "selection-changed", G_CALLBACK (selection_changed),
                    self);

  palette = cru_node_list_new (TRUE);
  gtk_widget_set_vexpand (palette, TRUE);
  g_signal_connect (palette, "template-activated", G_CALLBACK (palette_activated), self);
  gtk_box_prepend (GTK_BOX (self->palette_box), palette);

  _cru_window_setup_add_model (self);
  update_title (self);
  _cru_window_update_status (self);
  cru_window_show_welcome (self);
}

CruWindow *
cru_window_new (GtkApplication *app)
{
  return g_object_new (CRU_TYPE_WINDOW, "application", app, NULL);
}
