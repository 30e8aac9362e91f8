/* cru-inspector-moe.c — the inspector of a mixture-of-experts node: how tokens are routed,
 * how many experts each token gets, the output architecture, and for every expert its
 * prompts (one multi-line row per prompt, added and removed in place) and scales
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-inspector-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>
#include "cru-node-info.h"

/* ---- a choice with an explanation ---- */

typedef struct {
  const CruChoice *choices;
  guint            n_choices;
} ChoiceList;

static void
described_choice_changed (AdwComboRow *row, GParamSpec *pspec, ChoiceList *list)
{
  CruParamRef *ref = g_object_get_data (G_OBJECT (row), "cru-ref");
  guint i = adw_combo_row_get_selected (row);

  if (i >= list->n_choices)
    return;
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), _(list->choices[i].description));
  _cru_inspector_apply (ref->inspector, ref, cru_value_new_string (list->choices[i].id));
}

/* A combo row of @choices' labels whose subtitle explains the selected one. */
static void
add_described_choice (AdwPreferencesGroup *group, CruParamRef *ref, const char *title,
                      const CruChoice *choices, guint n_choices, const char *current)
{
  GtkWidget *row = adw_combo_row_new ();
  g_autoptr(GtkStringList) labels = gtk_string_list_new (NULL);
  const CruChoice *selected = cru_choice_find (choices, n_choices, current);
  ChoiceList *list = g_new0 (ChoiceList, 1);

  list->choices = choices;
  list->n_choices = n_choices;
  for (guint i = 0; i < n_choices; i++)
    gtk_string_list_append (labels, _(choices[i].label));
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_combo_row_set_model (ADW_COMBO_ROW (row), G_LIST_MODEL (labels));
  adw_combo_row_set_selected (ADW_COMBO_ROW (row), selected ? (guint) (selected - choices)
                                                            : GTK_INVALID_LIST_POSITION);
  if (selected)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), _(selected->description));
  else
    {
      g_autofree char *unknown = g_strdup_printf (_("“%s” is not a known choice; pick one"),
                                                  current ? current : "");
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), unknown);
    }
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 4);
  g_object_set_data_full (G_OBJECT (row), "cru-ref", ref, (GDestroyNotify) _cru_param_ref_free);
  g_object_set_data_full (G_OBJECT (row), "cru-choices", list, g_free);
  g_signal_connect (row, "notify::selected", G_CALLBACK (described_choice_changed), list);
  adw_preferences_group_add (group, row);
}

/* ---- prompts: one text view per prompt ---- */

typedef struct {
  CruParamRef *ref;
  GtkWidget   *expander;
  GPtrArray   *rows;       /* GtkWidget* prompt rows, in order (borrowed: the expander's) */
  gboolean     negative;
} PromptList;

static void
prompt_list_free (PromptList *list)
{
  _cru_param_ref_free (list->ref);
  g_ptr_array_unref (list->rows);
  g_free (list);
}

static GtkTextBuffer *
row_buffer (GtkWidget *row)
{
  return g_object_get_data (G_OBJECT (row), "cru-buffer");
}

static char *
buffer_text (GtkTextBuffer *buffer)
{
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
}

static gboolean
is_blank (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isspace (*s))
      return FALSE;
  return TRUE;
}

static void
update_count (PromptList *list)
{
  guint n = 0;

  for (guint i = 0; i < list->rows->len; i++)
    {
      g_autofree char *text = buffer_text (row_buffer (list->rows->pdata[i]));
      n += !is_blank (text);
    }
  {
    g_autofree char *subtitle =
      g_strdup_printf (list->negative
                         ? ngettext ("%u text this expert should not get",
                                     "%u texts this expert should not get", n)
                         : ngettext ("%u text of what this expert should handle",
                                     "%u texts of what this expert should handle", n), n);
    adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (list->expander), subtitle);
  }
}

/* Writes the prompts of every row (blank ones left out) to the graph: one coalescing edit
 * per burst of typing. */
static void
apply_prompts (PromptList *list)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) prompts = NULL;

  for (guint i = 0; i < list->rows->len; i++)
    {
      g_autofree char *text = buffer_text (row_buffer (list->rows->pdata[i]));
      if (!is_blank (text))
        g_strv_builder_add (b, text);
    }
  prompts = g_strv_builder_end (b);
  _cru_inspector_apply (list->ref->inspector, list->ref,
                        prompts[0] ? cru_value_new_strings ((const char *const *) prompts)
                                   : NULL);
  update_count (list);
}

static void
prompt_changed (GtkTextBuffer *buffer, PromptList *list)
{
  apply_prompts (list);
}

static void
prompt_left (GtkEventControllerFocus *focus, PromptList *list)
{
  /* the next keystrokes elsewhere are a new undo step */
  cru_graph_break_coalescing (_cru_inspector_get_graph (list->ref->inspector));
}

static void
remove_prompt (GtkButton *button, PromptList *list)
{
  GtkWidget *row = g_object_get_data (G_OBJECT (button), "cru-row");
  CruGraph *graph = _cru_inspector_get_graph (list->ref->inspector);

  g_ptr_array_remove (list->rows, row);
  adw_expander_row_remove (ADW_EXPANDER_ROW (list->expander), row);
  /* a removal is its own undo step, not part of the typing before or after it */
  cru_graph_break_coalescing (graph);
  apply_prompts (list);
  cru_graph_break_coalescing (graph);
}

static GtkWidget *
add_prompt_row (PromptList *list, const char *text)
{
  GtkWidget *row = adw_preferences_row_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *frame = gtk_frame_new (NULL);
  GtkWidget *view = gtk_text_view_new ();
  GtkWidget *remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (view));
  GtkEventController *focus = gtk_event_controller_focus_new ();
  guint index = list->rows->len;

  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Prompt"));
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 6);
  gtk_widget_set_margin_top (box, 6);
  gtk_widget_set_margin_bottom (box, 6);
  gtk_text_buffer_set_text (buffer, text, -1);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_accepts_tab (GTK_TEXT_VIEW (view), FALSE);
  gtk_text_view_set_left_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_right_margin (GTK_TEXT_VIEW (view), 6);
  gtk_text_view_set_top_margin (GTK_TEXT_VIEW (view), 4);
  gtk_text_view_set_bottom_margin (GTK_TEXT_VIEW (view), 4);
  gtk_widget_set_hexpand (frame, TRUE);
  gtk_frame_set_child (GTK_FRAME (frame), view);
  gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (remove, "flat");
  gtk_widget_set_tooltip_text (remove, _("Remove This Prompt"));
  gtk_box_append (GTK_BOX (box), frame);
  gtk_box_append (GTK_BOX (box), remove);
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);

  g_object_set_data (G_OBJECT (row), "cru-buffer", buffer);
  g_object_set_data (G_OBJECT (row), "cru-view", view);
  g_object_set_data (G_OBJECT (remove), "cru-row", row);
  g_signal_connect (buffer, "changed", G_CALLBACK (prompt_changed), list);
  g_signal_connect (focus, "leave", G_CALLBACK (prompt_left), list);
  gtk_widget_add_controller (view, focus);
  g_signal_connect (remove, "clicked", G_CALLBACK (remove_prompt), list);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (list->expander), row);
  g_ptr_array_add (list->rows, row);
  _cru_inspector_register_prompt (list->ref->inspector, list->ref->link, list->ref->name, index,
                                  buffer);
  return row;
}

/* "Add Prompt": an empty row to type in; it reaches the graph with the first letter. */
static void
new_prompt (GtkButton *button, PromptList *list)
{
  GtkWidget *row = add_prompt_row (list, "");

  adw_expander_row_set_expanded (ADW_EXPANDER_ROW (list->expander), TRUE);
  gtk_widget_grab_focus (g_object_get_data (G_OBJECT (row), "cru-view"));
}

static void
add_prompts_rows (CruInspector *self, AdwPreferencesGroup *group, const CruLink *link,
                  const char *name, const char *title)
{
  const CruValue *v = g_hash_table_lookup (link->params, name);
  PromptList *list = g_new0 (PromptList, 1);
  GtkWidget *add = gtk_button_new_from_icon_name ("list-add-symbolic");
  guint n = 0;

  list->ref = _cru_param_ref_new (self, link->to_node, link->id, name, NULL, NULL, 0, 0, 0);
  list->ref->keep_rows = TRUE;
  list->rows = g_ptr_array_new ();
  list->negative = g_str_equal (name, "negative_prompts");
  list->expander = adw_expander_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (list->expander), title);
  g_object_set_data_full (G_OBJECT (list->expander), "cru-prompts", list,
                          (GDestroyNotify) prompt_list_free);
  gtk_widget_set_valign (add, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (add, "flat");
  gtk_widget_set_tooltip_text (add, _("Add a Prompt"));
  g_signal_connect (add, "clicked", G_CALLBACK (new_prompt), list);
  adw_expander_row_add_action (ADW_EXPANDER_ROW (list->expander), add);

  if (v != NULL && v->kind == CRU_VALUE_STRINGS)
    for (; v->strings && v->strings[n]; n++)
      add_prompt_row (list, v->strings[n]);
  else if (v != NULL && v->kind == CRU_VALUE_STRING)
    add_prompt_row (list, v->string ? v->string : ""), n = 1;
  adw_expander_row_set_expanded (ADW_EXPANDER_ROW (list->expander), n > 0);
  update_count (list);
  adw_preferences_group_add (group, list->expander);
}

/* ---- one input ---- */

static void
build_input (CruInspector *self, const CruNode *node, const CruLink *link, guint index)
{
  const CruNode *from = cru_graph_get_node (_cru_inspector_get_graph (self), link->from_node);
  g_autofree char *name = from ? cru_node_dup_title (from) : g_strdup ("?");
  g_autofree char *title = NULL;
  AdwPreferencesGroup *group;
  gboolean shared = g_str_equal (link->to_port, CRU_PORT_SHARED_EXPERT);

  if (g_str_equal (link->to_port, CRU_PORT_BASE))
    {
      title = g_strdup_printf (_("Base: %s"), name);
      _cru_inspector_add_group (self, title, _("Attention, embeddings and the output head come "
                                               "from this model, and it reads the prompts "
                                               "that set the router"));
      return;
    }
  title = shared ? g_strdup_printf (_("Shared Expert: %s"), name)
                 : g_strdup_printf (_("Expert %u: %s"), index, name);
  group = _cru_inspector_add_group (self, title, shared
                                    ? _("Every token also goes through this model’s MLP")
                                    : _("This model’s MLP becomes one expert"));
  add_prompts_rows (self, group, link, "positive_prompts", _("Positive Prompts"));
  add_prompts_rows (self, group, link, "negative_prompts", _("Negative Prompts"));
  _cru_inspector_add_number_rows (self, group,
      _cru_param_ref_new (self, node->id, link->id, "noise_scale", NULL, NULL, 0, 1, 3),
      _("Noise"), _("Random noise added to the expert’s weights, so that experts copied from "
                    "one model can grow apart in training; 0 adds none"),
      g_hash_table_lookup (link->params, "noise_scale"), 0, FALSE);
  _cru_inspector_add_number_rows (self, group,
      _cru_param_ref_new (self, node->id, link->id, "residual_scale", NULL, NULL, 0, 2, 2),
      _("Output Scale"), _("Multiplies what this expert adds to the residual stream "
                           "(down_proj); 1 leaves it as it is"),
      g_hash_table_lookup (link->params, "residual_scale"), 1, FALSE);
}

static const char *
string_param (const CruNode *node, const char *name, const char *fallback)
{
  const CruValue *v = g_hash_table_lookup (node->params, name);
  return v != NULL && v->kind == CRU_VALUE_STRING ? v->string : fallback;
}

void
_cru_inspector_build_moe (CruInspector *self, const CruNode *node)
{
  CruGraph *graph = _cru_inspector_get_graph (self);
  g_autoptr(GPtrArray) links = cru_graph_links_to (graph, node->id);
  AdwPreferencesGroup *group = _cru_inspector_add_group (self, _("Routing"), NULL);
  const char *gate_mode = string_param (node, "gate_mode", "hidden");
  const CruChoice *choices;
  CruParamRef *ref;
  guint n_choices, n_experts = 0, index = 0;

  for (guint i = 0; i < links->len; i++)
    n_experts += g_str_equal (((const CruLink *) links->pdata[i])->to_port, CRU_PORT_EXPERT);

  choices = cru_moe_gate_modes (&n_choices);
  ref = _cru_param_ref_new (self, node->id, 0, "gate_mode", NULL, NULL, 0, 0, 0);
  ref->reshapes = TRUE;   /* random routing shows its seed */
  add_described_choice (group, ref, _("Route Tokens"), choices, n_choices, gate_mode);
  _cru_inspector_add_number_rows (self, group,
      _cru_param_ref_new (self, node->id, 0, "experts_per_token", NULL, NULL, 1,
                          MAX (n_experts, 2), 0),
      _("Experts per Token"), _("How many experts work on each token: more is slower and "
                                "often better; 2 is usual"),
      g_hash_table_lookup (node->params, "experts_per_token"), 2, FALSE);
  choices = cru_moe_architectures (&n_choices);
  add_described_choice (group, _cru_param_ref_new (self, node->id, 0, "architecture", NULL, NULL,
                                                   0, 0, 0),
                        _("Output Architecture"), choices, n_choices,
                        string_param (node, "architecture", "mixtral"));
  if (g_str_equal (gate_mode, "random") || g_str_equal (gate_mode, "uniform_random"))
    _cru_inspector_add_number_rows (self, group,
        _cru_param_ref_new (self, node->id, 0, "seed", NULL, NULL, 0, 99999, 0),
        _("Seed"), _("The same seed makes the same random router again"),
        g_hash_table_lookup (node->params, "seed"), 42, FALSE);

  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = links->pdata[i];
      build_input (self, node, link,
                   g_str_equal (link->to_port, CRU_PORT_EXPERT) ? ++index : 0);
    }
}
