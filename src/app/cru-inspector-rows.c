/* cru-inspector-rows.c — rows that edit one parameter: scalar (slider + exact entry),
 * per-layer gradient, name filters, choices, switches and text
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-inspector-private.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include "cru-gradient-editor.h"

#define DEFAULT_GRADIENT_POINTS 5

CruParamRef *
_cru_param_ref_new (CruInspector *self, guint node, guint link, const char *name,
                    const CruMethod *method, const CruParamSpec *spec, double min, double max,
                    int digits)
{
  CruParamRef *ref = g_new0 (CruParamRef, 1);

  ref->inspector = self;
  ref->node = node;
  ref->link = link;
  ref->name = g_strdup (name);
  ref->method = method;
  ref->spec = spec;
  ref->min = min;
  ref->max = max;
  ref->digits = digits;
  return ref;
}

void
_cru_param_ref_free (CruParamRef *ref)
{
  g_free (ref->name);
  g_free (ref);
}

static CruParamRef *
ref_of (gpointer widget)
{
  return g_object_get_data (G_OBJECT (widget), "cru-ref");
}

static void
attach_ref (gpointer widget, CruParamRef *ref, gboolean owned)
{
  g_object_set_data_full (G_OBJECT (widget), "cru-ref", ref,
                          owned ? (GDestroyNotify) _cru_param_ref_free : NULL);
}

/* ---- scalar ---- */

static void
scalar_changed (GtkAdjustment *adj, GtkWidget *spin)
{
  CruParamRef *ref = ref_of (adj);
  double v = gtk_adjustment_get_value (adj);
  g_autofree char *message = NULL;

  if (ref->spec != NULL && ref->method != NULL
      && !cru_param_spec_check (ref->method, ref->spec, v, &message))
    {
      gtk_widget_add_css_class (spin, "error");
      gtk_widget_set_tooltip_text (spin, message);
      return;
    }
  gtk_widget_remove_css_class (spin, "error");
  gtk_widget_set_tooltip_text (spin, NULL);
  _cru_inspector_apply (ref->inspector, ref, cru_value_new_scalar (v));
}

static gboolean
slider_moved (GtkRange *range, GtkScrollType scroll, double value, GtkAdjustment *exact)
{
  GtkAdjustment *adj = gtk_range_get_adjustment (range);

  gtk_adjustment_set_value (exact, CLAMP (value, gtk_adjustment_get_lower (adj),
                                          gtk_adjustment_get_upper (adj)));
  return TRUE;
}

/* Two adjustments: the exact entry takes the parameter's whole valid range, the slider a
 * handy span of it (unbounded weights slide over [0, 2] and can be typed beyond). */
static GtkWidget *
scalar_widgets (CruInspector *self, CruParamRef *ref, double value, GtkAdjustment **out_adj)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  double step = ref->digits == 0 ? 1 : 0.01;
  gboolean lo_bounded = fabs (ref->min) < 1e6, hi_bounded = fabs (ref->max) < 1e6;
  double lo = lo_bounded ? ref->min : -1e6, hi = hi_bounded ? ref->max : 1e6;
  double slo = lo_bounded ? lo : MIN (0, floor (value));
  double shi = hi_bounded ? hi : MAX (slo + 2, ceil (value));
  GtkAdjustment *adj = gtk_adjustment_new (CLAMP (value, lo, hi), lo, hi, step, step * 10, 0);
  GtkAdjustment *sadj = gtk_adjustment_new (CLAMP (value, slo, shi), slo, shi, step, step * 10, 0);
  GtkWidget *scale = gtk_scale_new (GTK_ORIENTATION_HORIZONTAL, sadj);
  GtkWidget *spin = gtk_spin_button_new (adj, step, ref->digits);

  gtk_scale_set_draw_value (GTK_SCALE (scale), FALSE);
  gtk_widget_set_size_request (scale, 100, -1);
  gtk_widget_set_valign (scale, GTK_ALIGN_CENTER);
  gtk_widget_set_valign (spin, GTK_ALIGN_CENTER);
  gtk_editable_set_width_chars (GTK_EDITABLE (spin), 5);
  gtk_box_append (GTK_BOX (box), scale);
  gtk_box_append (GTK_BOX (box), spin);
  g_object_bind_property (adj, "value", sadj, "value", G_BINDING_DEFAULT);
  g_signal_connect (scale, "change-value", G_CALLBACK (slider_moved), adj);
  /* Borrowed: the row that holds these widgets owns @ref. */
  attach_ref (adj, ref, FALSE);
  g_signal_connect (adj, "value-changed", G_CALLBACK (scalar_changed), spin);
  *out_adj = adj;
  return box;
}

/* ---- variants: per layer, per tensor name, back to one value ---- */

static void
set_variant (GtkButton *button, gpointer kind_ptr)
{
  CruParamRef *ref = ref_of (button);
  double v = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (button), "cru-value-milli")) / 1000.0;
  int kind = GPOINTER_TO_INT (kind_ptr);
  CruValue *value = NULL;
  GtkWidget *popover = gtk_widget_get_ancestor (GTK_WIDGET (button), GTK_TYPE_POPOVER);

  if (popover != NULL)
    gtk_popover_popdown (GTK_POPOVER (popover));
  switch (kind)
    {
    case 0:
      {
        double values[DEFAULT_GRADIENT_POINTS];
        for (int i = 0; i < DEFAULT_GRADIENT_POINTS; i++)
          values[i] = v;
        value = cru_value_new_gradient (values, DEFAULT_GRADIENT_POINTS);
      }
      break;
    case 1:
      value = cru_value_new_filtered ();
      cru_value_add_filter (value, "self_attn", cru_value_new_scalar (v));
      cru_value_add_filter (value, "mlp", cru_value_new_scalar (v));
      cru_value_add_filter (value, NULL, cru_value_new_scalar (v));
      break;
    case 2:
      value = cru_value_new_scalar (v);
      break;
    default:
      value = NULL;   /* back to the method's default */
      break;
    }
  _cru_inspector_apply (ref->inspector, ref, value);
}

static GtkWidget *
variant_button (CruParamRef *ref, double current, gboolean is_scalar)
{
  GtkWidget *menu = gtk_menu_button_new ();
  GtkWidget *popover = gtk_popover_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  const struct { const char *label; int kind; gboolean scalar_only; } items[] = {
    { N_("Vary by Layer"), 0, TRUE },
    { N_("Vary by Tensor Name"), 1, TRUE },
    { N_("Use One Value"), 2, FALSE },
    { N_("Reset to Default"), 3, FALSE },
  };

  gtk_menu_button_set_icon_name (GTK_MENU_BUTTON (menu), "view-more-symbolic");
  gtk_widget_set_valign (menu, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (menu, "flat");
  gtk_widget_set_tooltip_text (menu, _("Vary this value by layer or by tensor name"));
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      GtkWidget *b;
      if ((items[i].scalar_only && !is_scalar) || (items[i].kind == 2 && is_scalar))
        continue;
      b = gtk_button_new_with_label (_(items[i].label));
      gtk_widget_add_css_class (b, "flat");
      gtk_widget_set_halign (gtk_button_get_child (GTK_BUTTON (b)), GTK_ALIGN_START);
      attach_ref (b, ref, FALSE);
      g_object_set_data (G_OBJECT (b), "cru-value-milli", GINT_TO_POINTER ((int) lround (current * 1000)));
      g_signal_connect (b, "clicked", G_CALLBACK (set_variant), GINT_TO_POINTER (items[i].kind));
      gtk_box_append (GTK_BOX (box), b);
    }
  gtk_popover_set_child (GTK_POPOVER (popover), box);
  gtk_menu_button_set_popover (GTK_MENU_BUTTON (menu), popover);
  return menu;
}

/* ---- gradient ---- */

static void
gradient_changed (CruGradientEditor *editor, GtkWidget *points_spin)
{
  CruParamRef *ref = ref_of (editor);
  guint n;
  const double *values = cru_gradient_editor_get_values (editor, &n);

  g_signal_handlers_block_matched (points_spin, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, editor);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (points_spin), n);
  g_signal_handlers_unblock_matched (points_spin, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, editor);
  _cru_inspector_apply (ref->inspector, ref, cru_value_new_gradient (values, n));
}

static void
points_changed (GtkSpinButton *spin, CruGradientEditor *editor)
{
  cru_gradient_editor_set_n_points (editor, gtk_spin_button_get_value_as_int (spin));
}

static void
preset_clicked (GtkButton *button, CruGradientEditor *editor)
{
  cru_gradient_editor_apply_preset (editor, GPOINTER_TO_INT (
      g_object_get_data (G_OBJECT (button), "cru-preset")));
}

static void
add_gradient_row (CruInspector *self, AdwPreferencesGroup *group, CruParamRef *ref,
                  const char *title, const CruValue *value)
{
  GtkWidget *row = adw_preferences_row_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *bottom = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new (title);
  GtkWidget *presets = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget *editor = cru_gradient_editor_new (ref->min, ref->max);
  GtkWidget *points = gtk_spin_button_new_with_range (2, 64, 1);
  g_autofree char *range = g_strdup_printf (_("%.2g … %.2g, first layer left"), ref->min, ref->max);
  GtkWidget *hint = gtk_label_new (range);
  const struct { const char *label; const char *tip; CruGradientPreset p; } items[] = {
    { "—", N_("Constant"), CRU_GRADIENT_CONSTANT },
    { "╱", N_("Ramp up"), CRU_GRADIENT_RAMP_UP },
    { "╲", N_("Ramp down"), CRU_GRADIENT_RAMP_DOWN },
    { "V", N_("V: high at both ends"), CRU_GRADIENT_V },
    { "Λ", N_("Λ: high in the middle"), CRU_GRADIENT_LAMBDA },
  };

  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 12);
  gtk_widget_set_margin_top (box, 8);
  gtk_widget_set_margin_bottom (box, 8);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_box_append (GTK_BOX (top), label);
  gtk_widget_add_css_class (presets, "linked");
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      GtkWidget *b = gtk_button_new_with_label (items[i].label);
      gtk_widget_set_tooltip_text (b, _(items[i].tip));
      g_object_set_data (G_OBJECT (b), "cru-preset", GINT_TO_POINTER (items[i].p));
      g_signal_connect (b, "clicked", G_CALLBACK (preset_clicked), editor);
      gtk_box_append (GTK_BOX (presets), b);
    }
  gtk_box_append (GTK_BOX (top), presets);
  gtk_box_append (GTK_BOX (top), variant_button (ref, g_array_index (value->gradient, double, 0),
                                                 FALSE));
  cru_gradient_editor_set_values (CRU_GRADIENT_EDITOR (editor),
                                  (const double *) value->gradient->data, value->gradient->len);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (points), value->gradient->len);
  gtk_widget_set_tooltip_text (points, _("Number of points spread over the layers"));
  gtk_widget_add_css_class (hint, "dim-label");
  gtk_widget_add_css_class (hint, "caption");
  gtk_label_set_xalign (GTK_LABEL (hint), 0);
  gtk_widget_set_hexpand (hint, TRUE);
  gtk_box_append (GTK_BOX (bottom), hint);
  gtk_box_append (GTK_BOX (bottom), gtk_label_new (_("Points")));
  gtk_box_append (GTK_BOX (bottom), points);
  gtk_box_append (GTK_BOX (box), top);
  gtk_box_append (GTK_BOX (box), editor);
  gtk_box_append (GTK_BOX (box), bottom);
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);
  attach_ref (editor, ref, TRUE);
  g_signal_connect (editor, "changed", G_CALLBACK (gradient_changed), points);
  g_signal_connect (points, "value-changed", G_CALLBACK (points_changed), editor);
  adw_preferences_group_add (group, row);
  if (ref->link == 0)
    _cru_inspector_register_gradient (self, ref->name, editor);
}

/* ---- name filters ---- */

typedef struct {
  GtkWidget     *entry;
  GtkAdjustment *adj;
} FilterRow;

static void
filters_changed (gpointer widget, GtkWidget *group_widget)
{
  GArray *rows = g_object_get_data (G_OBJECT (group_widget), "cru-filter-rows");
  CruParamRef *ref = ref_of (group_widget);
  CruValue *value = cru_value_new_filtered ();

  for (guint i = 0; i < rows->len; i++)
    {
      FilterRow *r = &g_array_index (rows, FilterRow, i);
      const char *text = gtk_editable_get_text (GTK_EDITABLE (r->entry));
      cru_value_add_filter (value, text[0] != '\0' && g_strcmp0 (text, "*") != 0 ? text : NULL,
                            cru_value_new_scalar (gtk_adjustment_get_value (r->adj)));
    }
  _cru_inspector_apply (ref->inspector, ref, value);
}

static void
add_filter_rows (CruInspector *self, AdwPreferencesGroup *group, CruParamRef *ref,
                 const char *title, const CruValue *value)
{
  GtkWidget *head = adw_action_row_new ();
  GArray *rows = g_array_new (FALSE, FALSE, sizeof (FilterRow));
  GtkWidget *holder = head;
  double first = 0;

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (head), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (head),
                               _("By tensor name: the first filter that matches wins"));
  attach_ref (holder, ref, TRUE);
  g_object_set_data_full (G_OBJECT (holder), "cru-filter-rows", rows,
                          (GDestroyNotify) g_array_unref);
  adw_preferences_group_add (group, head);

  for (guint i = 0; i < value->filters->len; i++)
    {
      const CruFilterEntry *e = g_ptr_array_index (value->filters, i);
      GtkWidget *row = adw_action_row_new ();
      GtkWidget *entry = gtk_entry_new ();
      double v = 0;
      FilterRow fr;

      if (e->value != NULL)
        cru_value_resolve (e->value, "", 0, &v);
      if (i == 0)
        first = v;
      gtk_editable_set_text (GTK_EDITABLE (entry), e->filter && g_strcmp0 (e->filter, "*") != 0
                                                   ? e->filter : "");
      gtk_entry_set_placeholder_text (GTK_ENTRY (entry), _("all other tensors"));
      gtk_editable_set_width_chars (GTK_EDITABLE (entry), 10);
      gtk_widget_set_valign (entry, GTK_ALIGN_CENTER);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), entry);
      fr.entry = entry;
      {
        GtkAdjustment *adj;
        GtkWidget *w = scalar_widgets (self, ref, v, &adj);
        /* Filter rows write the whole list, not a scalar. */
        g_signal_handlers_disconnect_matched (adj, G_SIGNAL_MATCH_FUNC, 0, 0, NULL,
                                              G_CALLBACK (scalar_changed), NULL);
        g_signal_connect (adj, "value-changed", G_CALLBACK (filters_changed), holder);
        fr.adj = adj;
        adw_action_row_add_suffix (ADW_ACTION_ROW (row), w);
      }
      g_signal_connect (entry, "changed", G_CALLBACK (filters_changed), holder);
      g_array_append_val (rows, fr);
      adw_preferences_group_add (group, row);
    }
  adw_action_row_add_suffix (ADW_ACTION_ROW (head), variant_button (ref, first, FALSE));
}

/* ---- entry point for numbers ---- */

void
_cru_inspector_add_number_rows (CruInspector *self, AdwPreferencesGroup *group,
                                CruParamRef *ref, const char *title, const char *subtitle,
                                const CruValue *value, double default_value,
                                gboolean allow_variants)
{
  GtkWidget *row;
  GtkAdjustment *adj;
  double v = default_value;

  if (value != NULL && value->kind == CRU_VALUE_GRADIENT && value->gradient->len > 0)
    {
      add_gradient_row (self, group, ref, title, value);
      return;
    }
  if (value != NULL && value->kind == CRU_VALUE_FILTERED)
    {
      add_filter_rows (self, group, ref, title, value);
      return;
    }
  if (value != NULL && value->kind == CRU_VALUE_SCALAR)
    v = value->scalar;

  /* Title and exact entry on one line, the slider spanning the row below: the inspector
   * is narrow and the labels must stay readable. */
  {
    GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *label = gtk_label_new (title);
    GtkWidget *widgets = scalar_widgets (self, ref, v, &adj);
    GtkWidget *scale = gtk_widget_get_first_child (widgets);
    GtkWidget *spin = gtk_widget_get_last_child (widgets);

    row = adw_preferences_row_new ();
    adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
    gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
    gtk_widget_add_css_class (row, "scalar-row");
    gtk_label_set_xalign (GTK_LABEL (label), 0);
    gtk_label_set_wrap (GTK_LABEL (label), TRUE);
    gtk_widget_set_hexpand (label, TRUE);
    gtk_box_append (GTK_BOX (top), label);
    g_object_ref (scale);
    g_object_ref (spin);
    gtk_box_remove (GTK_BOX (widgets), scale);
    gtk_box_remove (GTK_BOX (widgets), spin);
    g_object_ref_sink (widgets);
    g_object_unref (widgets);
    gtk_box_append (GTK_BOX (top), spin);
    g_object_unref (spin);
    if (allow_variants)
      gtk_box_append (GTK_BOX (top), variant_button (ref, v, TRUE));
    gtk_box_append (GTK_BOX (box), top);
    gtk_widget_set_hexpand (scale, TRUE);
    gtk_box_append (GTK_BOX (box), scale);
    g_object_unref (scale);
    if (subtitle != NULL && subtitle[0] != '\0')
      {
        GtkWidget *sub = gtk_label_new (subtitle);
        gtk_label_set_xalign (GTK_LABEL (sub), 0);
        gtk_label_set_wrap (GTK_LABEL (sub), TRUE);
        gtk_widget_add_css_class (sub, "dim-label");
        gtk_widget_add_css_class (sub, "caption");
        gtk_box_append (GTK_BOX (box), sub);
      }
    gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);
  }
  attach_ref (row, ref, TRUE);
  _cru_inspector_register_adjustment (self, ref->link, ref->name, adj);
  adw_preferences_group_add (group, row);
}

/* ---- choices, switches, text ---- */

static void
choice_changed (AdwComboRow *row, GParamSpec *pspec, gpointer user_data)
{
  CruParamRef *ref = ref_of (row);
  guint i = adw_combo_row_get_selected (row);
  const char *const *choices = g_object_get_data (G_OBJECT (row), "cru-choices");

  if (i == GTK_INVALID_LIST_POSITION)
    return;
  if (g_object_get_data (G_OBJECT (row), "cru-store-index"))
    _cru_inspector_apply (ref->inspector, ref, cru_value_new_scalar (i));
  else
    _cru_inspector_apply (ref->inspector, ref, cru_value_new_string (choices[i]));
}

void
_cru_inspector_add_choice_row (CruInspector *self, AdwPreferencesGroup *group,
                               CruParamRef *ref, const char *title, const char *subtitle,
                               const char *const *choices, const char *current,
                               gboolean store_index)
{
  GtkWidget *row = adw_combo_row_new ();
  g_autoptr(GtkStringList) list = gtk_string_list_new (choices);
  guint selected = 0;

  for (guint i = 0; choices[i] != NULL; i++)
    if (g_strcmp0 (choices[i], current) == 0)
      selected = i;
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  if (subtitle != NULL)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_combo_row_set_model (ADW_COMBO_ROW (row), G_LIST_MODEL (list));
  adw_combo_row_set_selected (ADW_COMBO_ROW (row), selected);
  attach_ref (row, ref, TRUE);
  g_object_set_data_full (G_OBJECT (row), "cru-choices", g_strdupv ((char **) choices),
                          (GDestroyNotify) g_strfreev);
  g_object_set_data (G_OBJECT (row), "cru-store-index", GINT_TO_POINTER (store_index));
  g_signal_connect (row, "notify::selected", G_CALLBACK (choice_changed), NULL);
  adw_preferences_group_add (group, row);
}

static void
switch_changed (GtkSwitch *sw, GParamSpec *pspec, CruParamRef *ref)
{
  _cru_inspector_apply (ref->inspector, ref, cru_value_new_bool (gtk_switch_get_active (sw)));
}

void
_cru_inspector_add_switch_row (CruInspector *self, AdwPreferencesGroup *group,
                               CruParamRef *ref, const char *title, const char *subtitle,
                               gboolean active)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *sw = gtk_switch_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  if (subtitle != NULL)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  gtk_switch_set_active (GTK_SWITCH (sw), active);
  gtk_widget_set_valign (sw, GTK_ALIGN_CENTER);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), sw);
  adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), sw);
  attach_ref (row, ref, TRUE);
  g_signal_connect (sw, "notify::active", G_CALLBACK (switch_changed), ref);
  adw_preferences_group_add (group, row);
}

static void
text_applied (AdwEntryRow *row, gpointer user_data)
{
  CruParamRef *ref = ref_of (row);
  const char *text = gtk_editable_get_text (GTK_EDITABLE (row));

  _cru_inspector_apply (ref->inspector, ref, text[0] ? cru_value_new_string (text) : NULL);
}

void
_cru_inspector_add_text_row (CruInspector *self, AdwPreferencesGroup *group,
                             CruParamRef *ref, const char *title, const char *text)
{
  GtkWidget *row = adw_entry_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_entry_row_set_show_apply_button (ADW_ENTRY_ROW (row), TRUE);
  gtk_editable_set_text (GTK_EDITABLE (row), text ? text : "");
  attach_ref (row, ref, TRUE);
  g_signal_connect (row, "apply", G_CALLBACK (text_applied), NULL);
  adw_preferences_group_add (group, row);
}
