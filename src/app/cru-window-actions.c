/* cru-window-actions.c — the window's commands: files, recipes, history, models, welcome
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-window-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#define MAX_RECENT 8

static void
show_error (CruWindow *self, const char *heading, const char *message)
{
  AdwMessageDialog *dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_WINDOW (self),
                                                                         heading, message));
  adw_message_dialog_add_response (dialog, "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- recent files and the welcome page ---- */

void
_cru_window_add_recent (CruWindow *self, const char *path)
{
  g_auto(GStrv) old = NULL;
  g_autoptr(GStrvBuilder) builder = NULL;
  g_auto(GStrv) list = NULL;
  g_autofree char *examples = cru_find_data_dir ("examples");
  guint n = 1;

  if (self->settings == NULL || path == NULL || g_str_has_prefix (path, examples))
    return;
  old = g_settings_get_strv (self->settings, "recent-files");
  builder = g_strv_builder_new ();
  g_strv_builder_add (builder, path);
  for (guint i = 0; old[i] != NULL && n < MAX_RECENT; i++)
    if (strcmp (old[i], path) != 0)
      g_strv_builder_add (builder, old[i]), n++;
  list = g_strv_builder_end (builder);
  g_settings_set_strv (self->settings, "recent-files", (const char *const *) list);
}

/* The descriptions are the first sentence of each file's "comment", here to be translated;
 * a file whose sentence no longer matches shows its own, untranslated. */
static const struct {
  const char *file;
  const char *title;
  const char *description;
} known_examples[] = {
  { "two-model-slerp", N_("Two-Model SLERP"),
    N_("Spherical interpolation halfway between the base and the Python fine-tune.") },
  { "gradient-slerp", N_("Gradient SLERP"),
    N_("SLERP whose t changes over the layers: attention moves from the base to the fine-tune, "
       "the MLPs the other way round, everything else halfway.") },
  { "ties-of-three", N_("TIES of Three"),
    N_("TIES merge of three fine-tunes: each task vector keeps its largest half, signs are "
       "elected, and the weights set each domain's share.") },
  { "sdm-w", N_("SDM-W"),
    /* xgettext:no-c-format */
    N_("SDM-W: drops the smallest 10% of each fine-tune's changes and weights every model by "
       "how much it changed (linear rule); the computed weights show on the node after "
       "planning.") },
  { "hierarchical-slerp", N_("Hierarchical SLERP Tree"),
    N_("A merge of merges: Python and C are blended first, then the prose fine-tune joins; the "
       "plan fuses both steps so no intermediate model is written.") },
  { "passthrough-frankenmerge", N_("Passthrough Frankenmerge"),
    N_("Frankenmerge: layers 0-2 of the Python fine-tune followed by layers 2-3 of the C "
       "fine-tune make a 5-layer model (layer ranges are [start, end), as in mergekit).") },
  { "moe-from-experts", N_("Mixture of Experts"),
    N_("Mixture of experts: attention and embeddings come from the base, each expert's MLP "
       "from one fine-tune, and the router is set from the hidden states of the prompts.") },
};

static int
example_rank (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);

  for (guint i = 0; i < G_N_ELEMENTS (known_examples); i++)
    if (g_str_has_prefix (base, known_examples[i].file))
      return i;
  return G_N_ELEMENTS (known_examples);
}

/* The example's title, and its comment's first sentence as the description. */
static char *
example_title (const char *path, char **description)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *base = g_path_get_basename (path);
  int rank = example_rank (path);
  char *dot;

  *description = NULL;
  if (json_parser_load_from_file (parser, path, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      JsonObject *obj = json_node_get_object (json_parser_get_root (parser));
      const char *comment = json_object_get_string_member_with_default (obj, "description", NULL);

      if (comment == NULL)
        comment = json_object_get_string_member_with_default (obj, "comment", NULL);
      if (comment != NULL)
        {
          const char *end = strstr (comment, ". ");
          *description = end ? g_strndup (comment, end - comment + 1) : g_strdup (comment);
        }
    }
  if (rank < (int) G_N_ELEMENTS (known_examples))
    {
      if (g_strcmp0 (*description, known_examples[rank].description) == 0)
        {
          g_free (*description);
          *description = g_strdup (_(known_examples[rank].description));
        }
      return g_strdup (_(known_examples[rank].title));
    }
  if ((dot = strrchr (base, '.')) != NULL)
    *dot = '\0';
  for (char *p = base; *p; p++)
    if (*p == '-' || *p == '_')
      *p = ' ';
  base[0] = g_ascii_toupper (base[0]);
  return g_steal_pointer (&base);
}

static void
clear_group (GtkWidget *group)
{
  GPtrArray *rows = g_object_get_data (G_OBJECT (group), "cru-rows");

  for (guint i = 0; rows != NULL && i < rows->len; i++)
    adw_preferences_group_remove (ADW_PREFERENCES_GROUP (group), g_ptr_array_index (rows, i));
  g_object_set_data_full (G_OBJECT (group), "cru-rows", g_ptr_array_new (),
                          (GDestroyNotify) g_ptr_array_unref);
}

static void
add_file_row (GtkWidget *group, const char *title, const char *subtitle, const char *action,
              const char *path)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  if (subtitle != NULL)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 2);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), gtk_image_new_from_icon_name ("go-next-symbolic"));
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (row), action);
  gtk_actionable_set_action_target_value (GTK_ACTIONABLE (row), g_variant_new_string (path));
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (group), row);
  g_ptr_array_add (g_object_get_data (G_OBJECT (group), "cru-rows"), row);
}

static int
compare_examples (gconstpointer a, gconstpointer b)
{
  const char *x = *(char **) a, *y = *(char **) b;
  int d = example_rank (x) - example_rank (y);

  return d != 0 ? d : strcmp (x, y);
}

void
_cru_window_populate_welcome (CruWindow *self)
{
  g_autofree char *dir = cru_find_data_dir ("examples");
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) recent = NULL;
  const char *name;
  guint n_recent = 0;

  clear_group (self->examples_group);
  clear_group (self->recent_group);
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".crucible"))
      g_ptr_array_add (files, g_build_filename (dir, name, NULL));
  g_ptr_array_sort (files, compare_examples);
  for (guint i = 0; i < files->len; i++)
    {
      g_autofree char *description = NULL;
      g_autofree char *title = example_title (g_ptr_array_index (files, i), &description);
      add_file_row (self->examples_group, title, description, "win.open-file",
                    g_ptr_array_index (files, i));
    }
  adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (self->examples_group),
                                         files->len == 0 ? _("No examples were found.") : NULL);

  if (self->settings != NULL)
    recent = g_settings_get_strv (self->settings, "recent-files");
  for (guint i = 0; recent != NULL && recent[i] != NULL; i++)
    if (g_file_test (recent[i], G_FILE_TEST_EXISTS))
      {
        g_autofree char *base = g_path_get_basename (recent[i]);
        g_autofree char *folder = g_path_get_dirname (recent[i]);
        add_file_row (self->recent_group, base, folder, "win.open-file", recent[i]);
        n_recent++;
      }
  gtk_widget_set_visible (self->recent_group, n_recent > 0);
}

/* ---- files ---- */

typedef void (*PathFunc) (CruWindow *self, const char *path);

static void
chooser_response (GtkNativeDialog *dialog, int response, CruWindow *self)
{
  PathFunc func = g_object_get_data (G_OBJECT (dialog), "cru-func");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = file ? g_file_get_path (file) : NULL;
      if (path != NULL)
        func (self, path);
    }
  g_object_unref (dialog);
}

static void
choose (CruWindow *self, const char *title, GtkFileChooserAction action, const char *accept,
        const char *pattern, const char *pattern_name, const char *suggested_name,
        PathFunc func)
{
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (title, GTK_WINDOW (self), action,
                                                              accept, _("_Cancel"));

  if (pattern != NULL)
    {
      GtkFileFilter *filter = gtk_file_filter_new ();
      gtk_file_filter_set_name (filter, pattern_name);
      gtk_file_filter_add_pattern (filter, pattern);
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
      g_object_unref (filter);
    }
  if (suggested_name != NULL)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), suggested_name);
  g_object_set_data (G_OBJECT (dialog), "cru-func", func);
  g_signal_connect (dialog, "response", G_CALLBACK (chooser_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
open_path (CruWindow *self, const char *path)
{
  g_autoptr(GError) error = NULL;

  if (!cru_window_open_file (self, path, &error))
    show_error (self, _("Could Not Open the Graph"), error->message);
}

static void
save_path (CruWindow *self, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *fixed = g_str_has_suffix (path, ".crucible") ? g_strdup (path)
                                                                : g_strconcat (path, ".crucible", NULL);

  if (!cru_graph_save_file (self->graph, fixed, &error))
    {
      show_error (self, _("Could Not Save the Graph"), error->message);
      return;
    }
  _cru_window_add_recent (self, fixed);
  cru_window_toast (self, _("Graph saved"));
}

static void
import_path (CruWindow *self, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruGraph) imported = cru_graph_import_mergekit_file (path, warnings, &error);
  g_autofree char *text = NULL;

  if (imported == NULL)
    {
      show_error (self, _("Could Not Import the Recipe"), error->message);
      return;
    }
  text = cru_graph_save_data (imported, NULL);
  if (!cru_graph_load_data (self->graph, text, -1, NULL, &error))
    {
      show_error (self, _("Could Not Import the Recipe"), error->message);
      return;
    }
  cru_window_show_editor (self);
  cru_window_recompile (self);
  if (warnings->len > 0)
    cru_window_toast (self, g_ptr_array_index (warnings, 0));
  else
    cru_window_toast (self, _("Recipe imported"));
}

static void
export_path (CruWindow *self, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *yaml = cru_graph_export_mergekit (self->graph, dir, &error);

  if (yaml == NULL || !g_file_set_contents (path, yaml, -1, &error))
    {
      show_error (self, _("Could Not Export the Recipe"), error->message);
      return;
    }
  cru_window_toast (self, _("mergekit recipe exported"));
}

static void
add_model_path (CruWindow *self, const char *path)
{
  GtkWidget *view = GTK_WIDGET (self->graph_view);
  double cx, cy;

  cru_window_show_editor (self);
  cru_graph_view_widget_to_canvas (self->graph_view, 40, gtk_widget_get_height (view) / 3.0,
                                   &cx, &cy);
  cru_graph_view_add_model (self->graph_view, path, cx, cy);
}

static GMenuModel *
add_model_menu (CruWindow *self)
{
  GMenu *menu = g_menu_new ();
  GMenu *section = g_menu_new ();
  g_autoptr(GPtrArray) cached = cru_hf_cache_list ();

  g_menu_append (section, _("Model _Folder…"), "win.add-model-folder");
  g_menu_append (section, _("Safetensors _File…"), "win.add-model-file");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  section = g_menu_new ();
  for (guint i = 0; cached != NULL && i < cached->len && i < 30; i++)
    {
      const char *path = g_ptr_array_index (cached, i);
      g_autofree char *label = NULL;
      const char *models = strstr (path, "models--");
      g_autoptr(GMenuItem) item = NULL;

      if (models != NULL)
        {
          g_auto(GStrv) parts = g_strsplit (models + strlen ("models--"), "/", 2);
          g_auto(GStrv) names = g_strsplit (parts[0], "--", -1);
          label = g_strjoinv ("/", names);
        }
      else
        label = g_path_get_basename (path);
      item = g_menu_item_new (label, NULL);
      g_menu_item_set_action_and_target_value (item, "win.add-model-path",
                                               g_variant_new_string (path));
      g_menu_append_item (section, item);
    }
  if (cached == NULL || cached->len == 0)
    {
      g_autoptr(GMenuItem) item = g_menu_item_new (_("No models in the Hugging Face cache"),
                                                   "win.none");
      g_menu_append_item (section, item);
    }
  g_menu_append_section (menu, _("Hugging Face Cache"), G_MENU_MODEL (section));
  g_object_unref (section);
  return G_MENU_MODEL (menu);
}

static void
add_model_popup (GtkMenuButton *button, gpointer user_data)
{
  CruWindow *self = user_data;
  g_autoptr(GMenuModel) menu = add_model_menu (self);

  gtk_menu_button_set_menu_model (button, menu);
}

/* ---- evaluating a model ---- */

CruEvaluateDialog *
cru_window_evaluate (CruWindow *self, const char *model_path)
{
  g_autofree char *title = g_filename_display_basename (model_path);
  CruEvaluateDialog *dialog;

  g_return_val_if_fail (CRU_IS_WINDOW (self), NULL);
  dialog = cru_evaluate_dialog_new (GTK_WINDOW (self), model_path, title);
  gtk_window_present (GTK_WINDOW (dialog));
  return dialog;
}

/* ---- action dispatch ---- */

static void
action_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  CruWindow *self = CRU_WINDOW (widget);

  if (g_str_equal (name, "win.new"))
    {
      cru_graph_clear (self->graph);
      cru_window_show_editor (self);
    }
  else if (g_str_equal (name, "win.open"))
    choose (self, _("Open Graph"), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), "*.crucible",
            _("Crucible graphs"), NULL, open_path);
  else if (g_str_equal (name, "win.open-file"))
    open_path (self, g_variant_get_string (param, NULL));
  else if (g_str_equal (name, "win.save") && cru_graph_get_path (self->graph) != NULL)
    save_path (self, cru_graph_get_path (self->graph));
  else if (g_str_equal (name, "win.save") || g_str_equal (name, "win.save-as"))
    choose (self, _("Save Graph"), GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), "*.crucible",
            _("Crucible graphs"), _("merge.crucible"), save_path);
  else if (g_str_equal (name, "win.import-yaml"))
    choose (self, _("Import mergekit YAML"), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Import"),
            "*.y*ml", _("mergekit recipes"), NULL, import_path);
  else if (g_str_equal (name, "win.export-yaml"))
    choose (self, _("Export mergekit YAML"), GTK_FILE_CHOOSER_ACTION_SAVE, _("_Export"),
            "*.y*ml", _("mergekit recipes"), _("mergekit_config.yml"), export_path);
  else if (g_str_equal (name, "win.undo"))
    cru_graph_undo (self->graph);
  else if (g_str_equal (name, "win.redo"))
    cru_graph_redo (self->graph);
  else if (g_str_equal (name, "win.run"))
    cru_window_run (self, FALSE);
  else if (g_str_equal (name, "win.cancel"))
    cru_window_cancel_run (self);
  else if (g_str_equal (name, "win.show-welcome"))
    cru_window_show_welcome (self);
  else if (g_str_equal (name, "win.add-model-folder"))
    choose (self, _("Choose a Model Folder"), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
            _("_Add"), NULL, NULL, NULL, add_model_path);
  else if (g_str_equal (name, "win.add-model-file"))
    choose (self, _("Choose a Safetensors File"), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Add"),
            "*.safetensors", _("Safetensors files"), NULL, add_model_path);
  else if (g_str_equal (name, "win.add-model-path"))
    add_model_path (self, g_variant_get_string (param, NULL));
  else if (g_str_equal (name, "win.evaluate"))
    cru_window_evaluate (self, g_variant_get_string (param, NULL));
  else if (g_str_equal (name, "win.open-folder"))
    {
      g_autoptr(GFile) file = g_file_new_for_path (g_variant_get_string (param, NULL));
      g_autofree char *uri = g_file_get_uri (file);
      g_autoptr(GError) error = NULL;
      if (!g_app_info_launch_default_for_uri (uri, NULL, &error))
        cru_window_toast (self, error->message);
    }
  else if (g_str_has_prefix (name, "win.zoom-"))
    {
      g_autofree char *canvas = g_strconcat ("canvas.", name + strlen ("win."), NULL);
      gtk_widget_activate_action (GTK_WIDGET (self->graph_view), canvas, NULL);
    }
}

void
_cru_window_update_actions (CruWindow *self)
{
  GtkWidget *w = GTK_WIDGET (self);
  gboolean editor = !cru_window_is_welcome_shown (self);
  gboolean running = cru_window_is_running (self);
  gboolean runnable = self->plan != NULL && cru_plan_is_runnable (self->plan)
                      && !cru_window_is_compiling (self);
  const char *reason = NULL;

  gtk_widget_action_set_enabled (w, "win.undo", !running && cru_graph_can_undo (self->graph));
  gtk_widget_action_set_enabled (w, "win.redo", !running && cru_graph_can_redo (self->graph));
  gtk_widget_action_set_enabled (w, "win.save", editor);
  gtk_widget_action_set_enabled (w, "win.save-as", editor);
  gtk_widget_action_set_enabled (w, "win.export-yaml", editor);
  gtk_widget_action_set_enabled (w, "win.run", editor && runnable && !running);
  gtk_widget_action_set_enabled (w, "win.cancel", running);
  gtk_widget_action_set_enabled (w, "win.none", FALSE);
  gtk_widget_set_visible (self->run_button, !running);
  gtk_widget_set_visible (self->cancel_button, running);

  if (running)
    reason = _("A merge is running");
  else if (cru_window_is_compiling (self))
    reason = _("Checking the graph…");
  else if (self->plan == NULL)
    reason = _("Add models, a method and an Output node first");
  else if (!cru_plan_is_runnable (self->plan))
    reason = _("The graph has problems: they are marked on the nodes");
  gtk_widget_set_tooltip_text (self->run_button, reason != NULL ? reason
                               : _("Merge the models into the output folder (Ctrl+Return)"));
}

void
_cru_window_install_actions (GtkWidgetClass *klass)
{
  static const char *plain[] = {
    "win.new", "win.open", "win.save", "win.save-as", "win.import-yaml", "win.export-yaml",
    "win.undo", "win.redo", "win.run", "win.cancel", "win.show-welcome",
    "win.add-model-folder", "win.add-model-file", "win.zoom-in", "win.zoom-out",
    "win.zoom-fit", "win.none",
  };
  static const char *with_path[] = { "win.open-file", "win.add-model-path", "win.open-folder",
                                     "win.evaluate" };

  for (guint i = 0; i < G_N_ELEMENTS (plain); i++)
    gtk_widget_class_install_action (klass, plain[i], NULL, action_activated);
  for (guint i = 0; i < G_N_ELEMENTS (with_path); i++)
    gtk_widget_class_install_action (klass, with_path[i], "s", action_activated);

  gtk_widget_class_add_binding_action (klass, GDK_KEY_n, GDK_CONTROL_MASK, "win.new", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_o, GDK_CONTROL_MASK, "win.open", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_s, GDK_CONTROL_MASK, "win.save", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_s, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "win.save-as", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_z, GDK_CONTROL_MASK, "win.undo", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_z, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "win.redo", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_Z, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "win.redo", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_Return, GDK_CONTROL_MASK, "win.run", NULL);
  gtk_widget_class_add_binding_action (klass, GDK_KEY_Escape, 0, "win.cancel", NULL);
}

void
_cru_window_setup_add_model (CruWindow *self)
{
  gtk_menu_button_set_create_popup_func (GTK_MENU_BUTTON (self->add_model_button),
                                         add_model_popup, self, NULL);
}
