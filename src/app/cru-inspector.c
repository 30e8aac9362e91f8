/* cru-inspector.c — the inspector: one page of groups per selected node
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-inspector-private.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>
#include "cru-node-info.h"

struct _CruInspector {
  GtkWidget   parent_instance;

  CruGraph   *graph;
  guint       node;
  CruPlan    *plan;
  gboolean    editing;       /* our own edit is being applied: no rebuild */
  guint       rebuild_idle;
  GHashTable *adjustments;   /* "link:name" → GtkAdjustment* (borrowed) */
  GHashTable *gradients;     /* name → CruGradientEditor* (borrowed) */
  GHashTable *prompts;       /* "link:name:index" → GtkTextBuffer* (borrowed) */
  guint       n_input_groups;

  GtkWidget  *stack;
  GtkWidget  *content;
};

G_DEFINE_FINAL_TYPE (CruInspector, cru_inspector, GTK_TYPE_WIDGET)

static void rebuild (CruInspector *self);
static void queue_rebuild (CruInspector *self);

/* ---- shared with the row builders ---- */

CruGraph *
_cru_inspector_get_graph (CruInspector *self)
{
  return self->graph;
}

static int
value_kind (const CruValue *v)
{
  return v == NULL ? CRU_VALUE_SCALAR : (int) v->kind;
}

void
_cru_inspector_apply (CruInspector *self, const CruParamRef *ref, CruValue *value)
{
  const char *name = ref->name;
  const CruValue *before;
  gboolean kind_changed;

  if (self->graph == NULL)
    {
      g_clear_pointer (&value, cru_value_free);
      return;
    }
  /* The shard size row edits GB; the graph stores bytes. */
  if (strcmp (name, "shard_size_gb") == 0)
    {
      name = "shard_size";
      if (value != NULL && value->kind == CRU_VALUE_SCALAR)
        value->scalar = round (value->scalar * 1e9);
    }
  before = ref->link ? cru_graph_get_link_param (self->graph, ref->link, name)
                     : cru_graph_get_param (self->graph, ref->node, name);
  kind_changed = (value_kind (before) != value_kind (value) || value == NULL) && !ref->keep_rows;
  self->editing = TRUE;
  if (ref->link != 0)
    cru_graph_set_link_param (self->graph, ref->link, name, value);
  else
    cru_graph_set_param (self->graph, ref->node, name, value);
  self->editing = FALSE;
  /* Scalar ↔ gradient ↔ filters needs other rows; edits within a kind keep the focus. */
  if (kind_changed || ref->reshapes)
    queue_rebuild (self);
}

static char *
adj_key (guint link, const char *name)
{
  return g_strdup_printf ("%u:%s", link, name);
}

void
_cru_inspector_register_adjustment (CruInspector *self, guint link, const char *name,
                                    GtkAdjustment *adj)
{
  g_hash_table_replace (self->adjustments, adj_key (link, name), adj);
}

void
_cru_inspector_register_gradient (CruInspector *self, const char *name, GtkWidget *editor)
{
  g_hash_table_replace (self->gradients, g_strdup (name), editor);
}

void
_cru_inspector_register_prompt (CruInspector *self, guint link, const char *name, guint index,
                                GtkTextBuffer *buffer)
{
  g_hash_table_replace (self->prompts, g_strdup_printf ("%u:%s:%u", link, name, index), buffer);
}

GtkTextBuffer *
cru_inspector_get_prompt_buffer (CruInspector *self, guint link, const char *name, guint index)
{
  g_autofree char *key = g_strdup_printf ("%u:%s:%u", link, name, index);

  g_return_val_if_fail (CRU_IS_INSPECTOR (self), NULL);
  return g_hash_table_lookup (self->prompts, key);
}

GtkAdjustment *
cru_inspector_get_adjustment (CruInspector *self, guint link, const char *name)
{
  g_autofree char *key = adj_key (link, name);

  g_return_val_if_fail (CRU_IS_INSPECTOR (self), NULL);
  return g_hash_table_lookup (self->adjustments, key);
}

GtkWidget *
cru_inspector_get_gradient_editor (CruInspector *self, const char *name)
{
  g_return_val_if_fail (CRU_IS_INSPECTOR (self), NULL);
  return g_hash_table_lookup (self->gradients, name);
}

guint
cru_inspector_get_n_input_groups (CruInspector *self)
{
  return self->n_input_groups;
}

/* ---- building ---- */

static AdwPreferencesGroup *
add_group (CruInspector *self, const char *title, const char *description)
{
  GtkWidget *group = adw_preferences_group_new ();

  adw_preferences_group_set_title (ADW_PREFERENCES_GROUP (group), title);
  if (description != NULL)
    adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (group), description);
  gtk_box_append (GTK_BOX (self->content), group);
  return ADW_PREFERENCES_GROUP (group);
}

static void
add_info_row (AdwPreferencesGroup *group, const char *title, const char *value)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *label = gtk_label_new (value);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class (label, "dim-label");
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), label);
  adw_preferences_group_add (group, row);
}

AdwPreferencesGroup *
_cru_inspector_add_group (CruInspector *self, const char *title, const char *description)
{
  return add_group (self, title, description);
}

void
_cru_inspector_add_info_row (AdwPreferencesGroup *group, const char *title, const char *value)
{
  add_info_row (group, title, value);
}

static void
label_applied (AdwEntryRow *row, CruInspector *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (row));

  self->editing = TRUE;
  cru_graph_set_label (self->graph, self->node, text[0] ? text : NULL);
  self->editing = FALSE;
}

static void
method_selected (AdwComboRow *row, GParamSpec *pspec, CruInspector *self)
{
  guint i = adw_combo_row_get_selected (row);

  if (i < cru_method_get_n ())
    cru_graph_set_method (self->graph, self->node, cru_method_get_nth (i)->name);
}

static void
path_chosen (GtkNativeDialog *dialog, int response, CruInspector *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = file ? g_file_get_path (file) : NULL;
      guint node = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (dialog), "cru-node"));
      if (path != NULL && self->graph != NULL)
        cru_graph_set_path (self->graph, node, path);
    }
  g_object_unref (dialog);
}

static void
choose_path (GtkButton *button, CruInspector *self)
{
  const CruNode *node = cru_graph_get_node (self->graph, self->node);
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkFileChooserNative *dialog;

  if (node == NULL)
    return;
  dialog = gtk_file_chooser_native_new (node->kind == CRU_NODE_OUTPUT
                                          ? _("Choose the Output Folder")
                                          : _("Choose a Model Folder"),
                                        GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Select"),
                                        _("_Cancel"));
  if (node->kind == CRU_NODE_OUTPUT)
    gtk_file_chooser_set_create_folders (GTK_FILE_CHOOSER (dialog), TRUE);
  g_object_set_data (G_OBJECT (dialog), "cru-node", GUINT_TO_POINTER (self->node));
  g_signal_connect (dialog, "response", G_CALLBACK (path_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
add_path_row (CruInspector *self, AdwPreferencesGroup *group, const char *title,
              const char *path)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *button = gtk_button_new_with_mnemonic (_("_Choose…"));

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), path ? path : _("Not chosen yet"));
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 3);
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  g_signal_connect (button, "clicked", G_CALLBACK (choose_path), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
  adw_preferences_group_add (group, row);
}

static void
build_method (CruInspector *self, const CruNode *node)
{
  const CruMethod *m = cru_method_lookup (node->method);
  g_autoptr(GPtrArray) links = cru_graph_links_to (self->graph, node->id);
  AdwPreferencesGroup *group = add_group (self, _("Parameters"), NULL);
  GtkWidget *combo = adw_combo_row_new ();
  g_autoptr(GtkStringList) names = gtk_string_list_new (NULL);
  guint selected = GTK_INVALID_LIST_POSITION;
  int n_inputs = 0;

  for (guint i = 0; i < cru_method_get_n (); i++)
    {
      gtk_string_list_append (names, _(cru_method_get_nth (i)->label));
      if (m != NULL && cru_method_get_nth (i) == m)
        selected = i;
    }
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (combo), _("Method"));
  adw_combo_row_set_model (ADW_COMBO_ROW (combo), G_LIST_MODEL (names));
  adw_combo_row_set_selected (ADW_COMBO_ROW (combo), selected);
  if (m != NULL && m->description != NULL)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (combo), _(m->description));
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (combo), 3);
  g_signal_connect (combo, "notify::selected", G_CALLBACK (method_selected), self);
  adw_preferences_group_add (group, combo);
  if (m == NULL)
    return;

  for (int i = 0; i < m->n_params; i++)
    {
      const CruParamSpec *spec = &m->params[i];
      const CruValue *value = g_hash_table_lookup (node->params, spec->name);

      if (spec->per_model)
        continue;
      if (spec->type == CRU_PARAM_BOOL)
        _cru_inspector_add_switch_row (self, group,
            _cru_param_ref_new (self, node->id, 0, spec->name, m, spec, 0, 1, 0),
            _(spec->label), _(spec->description),
            value && value->kind == CRU_VALUE_SCALAR ? value->scalar != 0 : spec->default_value != 0);
      else if (spec->type == CRU_PARAM_ENUM && spec->choices != NULL)
        {
          const char *current = spec->choices[(int) spec->default_value];
          if (value != NULL && value->kind == CRU_VALUE_STRING)
            current = value->string;
          else if (value != NULL && value->kind == CRU_VALUE_SCALAR)
            current = spec->choices[(int) value->scalar];
          _cru_inspector_add_choice_row (self, group,
              _cru_param_ref_new (self, node->id, 0, spec->name, m, spec, 0, 0, 0),
              _(spec->label), _(spec->description), spec->choices, current, FALSE);
        }
      else
        {
          double lo = spec->min, hi = spec->max;
          int digits = spec->type == CRU_PARAM_INT ? 0 : 2;
          if (spec->min_exclusive)
            lo += spec->type == CRU_PARAM_INT ? 1 : 0.01;
          if (spec->max_exclusive)
            hi -= spec->type == CRU_PARAM_INT ? 1 : 0.01;
          _cru_inspector_add_number_rows (self, group,
              _cru_param_ref_new (self, node->id, 0, spec->name, m, spec, lo, hi, digits),
              _(spec->label), _(spec->description), value, spec->default_value,
              spec->type == CRU_PARAM_FLOAT);
        }
    }

  /* One group per input, for the parameters given per model (weight, density). */
  self->n_input_groups = 0;
  for (guint j = 0; links != NULL && j < links->len; j++)
    {
      const CruLink *link = g_ptr_array_index (links, j);
      const CruNode *from = cru_graph_get_node (self->graph, link->from_node);
      g_autofree char *from_title = from ? cru_node_dup_title (from) : g_strdup ("?");
      g_autofree char *title = NULL;
      gboolean is_base = strcmp (link->to_port, CRU_PORT_BASE) == 0;
      AdwPreferencesGroup *igroup = NULL;

      if (is_base)
        title = g_strdup_printf (_("Base: %s"), from_title);
      else
        title = g_strdup_printf (_("Input %d: %s"), ++n_inputs, from_title);
      for (int i = 0; i < m->n_params; i++)
        {
          const CruParamSpec *spec = &m->params[i];
          double lo = spec->min, hi = spec->max;

          if (!spec->per_model || is_base)
            continue;
          if (igroup == NULL)
            {
              igroup = add_group (self, title, NULL);
              self->n_input_groups++;
            }
          if (spec->min_exclusive)
            lo += 0.01;
          _cru_inspector_add_number_rows (self, igroup,
              _cru_param_ref_new (self, node->id, link->id, spec->name, m, spec, lo, hi, 2),
              _(spec->label), NULL, g_hash_table_lookup (link->params, spec->name),
              spec->default_value, TRUE);
        }
    }
}

/* "Evaluate…": perplexity of the model at @path on a text (win.evaluate). */
static void
add_evaluate_row (AdwPreferencesGroup *group, const char *path, const char *subtitle)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *button = gtk_button_new_with_mnemonic (_("_Evaluate…"));

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Perplexity"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (button), "win.evaluate");
  gtk_actionable_set_action_target (GTK_ACTIONABLE (button), "s", path);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
  adw_preferences_group_add (group, row);
}

static void
build_model (CruInspector *self, const CruNode *node)
{
  AdwPreferencesGroup *group = add_group (self, _("Model"), NULL);
  const CruModelInfo *info = cru_model_info_lookup (node->path);

  add_path_row (self, group, _("Folder or File"), node->path);
  if (info == NULL)
    return;
  if (!info->loaded)
    add_info_row (group, _("Details"), _("Reading…"));
  else if (info->error != NULL)
    {
      GtkWidget *row = adw_action_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Cannot be opened"));
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), info->error);
      adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 6);
      gtk_widget_add_css_class (row, "error");
      adw_preferences_group_add (group, row);
    }
  else
    {
      g_autofree char *params = cru_format_count (info->n_params);
      g_autofree char *layers = g_strdup_printf ("%d", info->n_layers);
      g_autofree char *size = cru_format_bytes (info->bytes);
      const char *dtype = cru_dtype_to_torch_string (info->dtype);

      add_info_row (group, _("Architecture"), info->arch);
      add_info_row (group, _("Parameters"), params);
      add_info_row (group, _("Layers"), layers);
      add_info_row (group, _("Data type"), dtype ? dtype : cru_dtype_to_string (info->dtype));
      add_info_row (group, _("Size"), size);
      add_evaluate_row (group, node->path, _("How well the model predicts a text of your choice"));
    }
}

static const char *
string_param (const CruNode *node, const char *name, const char *fallback)
{
  const CruValue *v = g_hash_table_lookup (node->params, name);
  return v != NULL && v->kind == CRU_VALUE_STRING ? v->string : fallback;
}

static void
build_output (CruInspector *self, const CruNode *node)
{
  AdwPreferencesGroup *group = add_group (self, _("Output"), NULL);
  static const char *const dtypes[] = { "bfloat16", "float16", "float32", NULL };
  static const char *const tokenizers[] = { "base", "union", NULL };
  static const char *const devices[] = { "auto", "cpu", "cuda", NULL };
  const CruValue *shard = g_hash_table_lookup (node->params, "shard_size");
  g_autoptr(CruValue) shard_gb = cru_value_new_scalar (
      shard && shard->kind == CRU_VALUE_SCALAR ? shard->scalar / 1e9 : 5.0);
  const char *dtype = string_param (node, "dtype", "bfloat16");
  CruParamRef *ref;

  add_path_row (self, group, _("Folder"), node->path);
  _cru_inspector_add_choice_row (self, group,
      _cru_param_ref_new (self, node->id, 0, "dtype", NULL, NULL, 0, 0, 0),
      _("Data Type"), _("Precision of the written tensors"), dtypes,
      cru_dtype_from_user_string (dtype) == CRU_DTYPE_F32 ? "float32"
      : cru_dtype_from_user_string (dtype) == CRU_DTYPE_F16 ? "float16" : "bfloat16", FALSE);
  /* Shard size is stored in bytes and edited in GB: a small adapter ref. */
  ref = _cru_param_ref_new (self, node->id, 0, "shard_size_gb", NULL, NULL, 0.1, 100, 1);
  _cru_inspector_add_number_rows (self, group, ref, _("Shard Size (GB)"),
                                  _("Largest file of the written model"), shard_gb, 5.0, FALSE);
  _cru_inspector_add_choice_row (self, group,
      _cru_param_ref_new (self, node->id, 0, "tokenizer_source", NULL, NULL, 0, 0, 0),
      _("Tokenizer"), _("Copy the base model’s tokenizer, or build the union of all"),
      tokenizers, string_param (node, "tokenizer_source", "base"), FALSE);
  _cru_inspector_add_choice_row (self, group,
      _cru_param_ref_new (self, node->id, 0, "device", NULL, NULL, 0, 0, 0),
      _("Device"), _("auto uses an NVIDIA GPU (CUDA) when one is found, else the CPU"),
      devices, string_param (node, "device", "auto"), FALSE);
  if (self->plan != NULL && cru_plan_get_device_note (self->plan) != NULL)
    add_info_row (group, _("Runs On"), cru_plan_get_device_note (self->plan));
  if (node->path != NULL)
    {
      g_autofree char *config = g_build_filename (node->path, "config.json", NULL);
      if (g_file_test (config, G_FILE_TEST_IS_REGULAR))
        add_evaluate_row (group, node->path, _("Score the merged model in this folder on a text"));
    }
}

static void
build_generic (CruInspector *self, const CruNode *node)
{
  AdwPreferencesGroup *group = add_group (self, _("Parameters"), NULL);
  g_autoptr(GList) keys = g_hash_table_get_keys (node->params);
  const char *slice_keys[] = { "start", "end", NULL };

  if (node->kind == CRU_NODE_SLICE)
    for (guint i = 0; slice_keys[i] != NULL; i++)
      {
        const CruValue *v = g_hash_table_lookup (node->params, slice_keys[i]);
        _cru_inspector_add_number_rows (self, group,
            _cru_param_ref_new (self, node->id, 0, slice_keys[i], NULL, NULL, 0, 512, 0),
            i == 0 ? _("First Layer") : _("End Layer (exclusive)"), NULL, v,
            0, FALSE);
      }
  keys = g_list_sort (keys, (GCompareFunc) strcmp);
  for (GList *l = keys; l != NULL; l = l->next)
    {
      const CruValue *v = g_hash_table_lookup (node->params, l->data);

      if (node->kind == CRU_NODE_SLICE && g_strv_contains (slice_keys, l->data))
        continue;
      if (v->kind == CRU_VALUE_STRING)
        _cru_inspector_add_text_row (self, group,
            _cru_param_ref_new (self, node->id, 0, l->data, NULL, NULL, 0, 0, 0),
            l->data, v->string);
      else if (v->kind == CRU_VALUE_STRINGS)
        {
          g_autofree char *joined = g_strjoinv (" | ", v->strings);
          add_info_row (group, l->data, joined);
        }
      else
        _cru_inspector_add_number_rows (self, group,
            _cru_param_ref_new (self, node->id, 0, l->data, NULL, NULL, 0, 64, 2),
            l->data, NULL, v, 0, FALSE);
    }
}

static void
build_problems (CruInspector *self, const CruNode *node)
{
  GPtrArray *problems = self->plan ? cru_plan_get_problems (self->plan) : NULL;
  g_autoptr(GPtrArray) found = self->plan ? cru_plan_get_run_warnings (self->plan) : NULL;
  guint n_problems = problems ? problems->len : 0;
  AdwPreferencesGroup *group = NULL;

  /* the plan's problems, then what the last run found */
  for (guint i = 0; i < n_problems + (found ? found->len : 0); i++)
    {
      const CruProblem *p = i < n_problems ? g_ptr_array_index (problems, i)
                                           : g_ptr_array_index (found, i - n_problems);
      GtkWidget *row;

      if (p->node != node->id || p->severity == CRU_SEVERITY_INFO)
        continue;
      if (group == NULL)
        group = add_group (self, _("Problems"), NULL);
      row = adw_action_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), p->message);
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_action_row_set_title_lines (ADW_ACTION_ROW (row), 6);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), gtk_image_new_from_icon_name (
          p->severity == CRU_SEVERITY_ERROR ? "dialog-error-symbolic" : "dialog-warning-symbolic"));
      gtk_widget_add_css_class (row, p->severity == CRU_SEVERITY_ERROR ? "error" : "warning");
      adw_preferences_group_add (group, row);
    }
}

static void
rebuild (CruInspector *self)
{
  const CruNode *node = self->graph ? cru_graph_get_node (self->graph, self->node) : NULL;
  GtkWidget *child, *label_row;
  AdwPreferencesGroup *group;
  g_autofree char *title = NULL;

  g_clear_handle_id (&self->rebuild_idle, g_source_remove);
  g_hash_table_remove_all (self->adjustments);
  g_hash_table_remove_all (self->gradients);
  g_hash_table_remove_all (self->prompts);
  self->n_input_groups = 0;
  while ((child = gtk_widget_get_first_child (self->content)) != NULL)
    gtk_box_remove (GTK_BOX (self->content), child);
  if (node == NULL)
    {
      gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "empty");
      return;
    }
  gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "node");

  title = cru_node_dup_title (node);
  group = add_group (self, title, cru_node_kind_label (node->kind));
  label_row = adw_entry_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (label_row), _("Title"));
  adw_entry_row_set_show_apply_button (ADW_ENTRY_ROW (label_row), TRUE);
  gtk_editable_set_text (GTK_EDITABLE (label_row), node->label ? node->label : "");
  g_signal_connect (label_row, "apply", G_CALLBACK (label_applied), self);
  adw_preferences_group_add (group, label_row);

  build_problems (self, node);
  switch (node->kind)
    {
    case CRU_NODE_METHOD: build_method (self, node); break;
    case CRU_NODE_MODEL:  build_model (self, node); break;
    case CRU_NODE_OUTPUT: build_output (self, node); break;
    case CRU_NODE_MOE:    _cru_inspector_build_moe (self, node); break;
    default:              build_generic (self, node); break;
    }
}

static gboolean
rebuild_idle_cb (gpointer user_data)
{
  CruInspector *self = user_data;

  self->rebuild_idle = 0;
  rebuild (self);
  return G_SOURCE_REMOVE;
}

static void
queue_rebuild (CruInspector *self)
{
  if (self->rebuild_idle == 0)
    self->rebuild_idle = g_idle_add_full (G_PRIORITY_DEFAULT, rebuild_idle_cb, self, NULL);
}

static void
graph_changed (CruGraph *graph, CruGraphChange change, guint id, CruInspector *self)
{
  if (self->editing || self->node == 0)
    return;
  switch (change)
    {
    case CRU_GRAPH_CHANGE_NODE_MOVED:
      return;
    case CRU_GRAPH_CHANGE_NODE_REMOVED:
    case CRU_GRAPH_CHANGE_RESET:
      if (change == CRU_GRAPH_CHANGE_RESET || id == self->node)
        self->node = 0;
      queue_rebuild (self);
      return;
    case CRU_GRAPH_CHANGE_NODE_ADDED:
      return;
    case CRU_GRAPH_CHANGE_NODE_CHANGED:
      if (id == self->node)
        queue_rebuild (self);
      return;
    default:
      queue_rebuild (self);
      return;
    }
}

static void
model_info_changed (GObject *notifier, const char *path, CruInspector *self)
{
  const CruNode *node = self->graph ? cru_graph_get_node (self->graph, self->node) : NULL;

  if (node != NULL && node->kind == CRU_NODE_MODEL && g_strcmp0 (node->path, path) == 0)
    queue_rebuild (self);
}

/* ---- public ---- */

void
cru_inspector_set_graph (CruInspector *self, CruGraph *graph)
{
  g_return_if_fail (CRU_IS_INSPECTOR (self));
  if (self->graph != NULL)
    g_signal_handlers_disconnect_by_data (self->graph, self);
  g_set_object (&self->graph, graph);
  if (graph != NULL)
    g_signal_connect (graph, "changed", G_CALLBACK (graph_changed), self);
  self->node = 0;
  rebuild (self);
}

void
cru_inspector_set_node (CruInspector *self, guint node)
{
  g_return_if_fail (CRU_IS_INSPECTOR (self));
  if (self->node == node)
    return;
  self->node = node;
  rebuild (self);
}

guint
cru_inspector_get_node (CruInspector *self)
{
  return self->node;
}

void
cru_inspector_set_plan (CruInspector *self, CruPlan *plan)
{
  g_return_if_fail (CRU_IS_INSPECTOR (self));
  if (self->plan == plan)
    return;
  g_clear_pointer (&self->plan, cru_plan_unref);
  self->plan = plan ? cru_plan_ref (plan) : NULL;
  /* Problems change with every compile; don't rebuild under the user's fingers. */
  if (self->node != 0 && !gtk_widget_has_focus (GTK_WIDGET (self)) && self->rebuild_idle == 0
      && gtk_widget_get_focus_child (GTK_WIDGET (self)) == NULL)
    queue_rebuild (self);
}

void
cru_inspector_refresh (CruInspector *self)
{
  g_return_if_fail (CRU_IS_INSPECTOR (self));
  if (self->node != 0 && gtk_widget_get_focus_child (GTK_WIDGET (self)) == NULL)
    queue_rebuild (self);
}

static void
cru_inspector_dispose (GObject *object)
{
  CruInspector *self = CRU_INSPECTOR (object);

  g_clear_handle_id (&self->rebuild_idle, g_source_remove);
  g_signal_handlers_disconnect_by_data (cru_model_info_get_notifier (), self);
  if (self->graph != NULL)
    g_signal_handlers_disconnect_by_data (self->graph, self);
  g_clear_object (&self->graph);
  g_clear_pointer (&self->plan, cru_plan_unref);
  gtk_widget_dispose_template (GTK_WIDGET (self), CRU_TYPE_INSPECTOR);
  G_OBJECT_CLASS (cru_inspector_parent_class)->dispose (object);
}

static void
cru_inspector_finalize (GObject *object)
{
  CruInspector *self = CRU_INSPECTOR (object);

  g_hash_table_unref (self->adjustments);
  g_hash_table_unref (self->gradients);
  g_hash_table_unref (self->prompts);
  G_OBJECT_CLASS (cru_inspector_parent_class)->finalize (object);
}

static void
cru_inspector_class_init (CruInspectorClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = cru_inspector_dispose;
  G_OBJECT_CLASS (klass)->finalize = cru_inspector_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
      "/io/github/crucible_merge/Crucible/cru-inspector.ui");
  gtk_widget_class_bind_template_child (widget_class, CruInspector, stack);
  gtk_widget_class_bind_template_child (widget_class, CruInspector, content);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "inspector");
}

static void
cru_inspector_init (CruInspector *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->adjustments = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->gradients = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->prompts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_signal_connect (cru_model_info_get_notifier (), "model-info-changed",
                    G_CALLBACK (model_info_changed), self);
}

GtkWidget *
cru_inspector_new (void)
{
  return g_object_new (CRU_TYPE_INSPECTOR, NULL);
}
