/* cru-node-list.c — the searchable node catalogue
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-node-list.h"

#include <glib/gi18n-lib.h>

struct _CruNodeList {
  GtkWidget      parent_instance;
  GtkWidget     *box;
  GtkWidget     *search;
  GtkWidget     *list;
  gboolean       draggable;
  CruStreamType  accepts;
  CruStreamType  produces;
  char          *needle;
};

G_DEFINE_FINAL_TYPE (CruNodeList, cru_node_list, GTK_TYPE_WIDGET)

enum { TEMPLATE_ACTIVATED, N_SIGNALS };
static guint signals[N_SIGNALS];

static guint
row_index (GtkListBoxRow *row)
{
  return GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (row), "cru-template")) - 1;
}

static gboolean
filter_row (GtkListBoxRow *row, gpointer user_data)
{
  CruNodeList *self = user_data;
  const CruNodeTemplate *t = cru_node_templates_get_nth (row_index (row));
  g_autofree char *hay = NULL;

  if (self->accepts != CRU_STREAM_NONE && !(cru_node_template_accepts (t) & self->accepts))
    return FALSE;
  if (self->produces != CRU_STREAM_NONE && !(cru_node_template_produces (t) & self->produces))
    return FALSE;
  if (self->needle == NULL || self->needle[0] == '\0')
    return TRUE;
  hay = g_utf8_casefold (t->label, -1);
  if (strstr (hay, self->needle) != NULL)
    return TRUE;
  g_free (hay);
  hay = g_utf8_casefold (t->description, -1);
  if (strstr (hay, self->needle) != NULL)
    return TRUE;
  return t->method != NULL && strstr (t->method, self->needle) != NULL;
}

static void
header_func (GtkListBoxRow *row, GtkListBoxRow *before, gpointer user_data)
{
  const CruNodeTemplate *t = cru_node_templates_get_nth (row_index (row));
  const CruNodeTemplate *b = before ? cru_node_templates_get_nth (row_index (before)) : NULL;
  GtkWidget *label;

  if (b != NULL && b->group == t->group)
    {
      gtk_list_box_row_set_header (row, NULL);
      return;
    }
  label = gtk_label_new (cru_palette_group_label (t->group));
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_add_css_class (label, "heading");
  gtk_widget_add_css_class (label, "palette-group");
  gtk_list_box_row_set_header (row, label);
}

static GdkContentProvider *
drag_prepare (GtkDragSource *source, double x, double y, GtkListBoxRow *row)
{
  g_autofree char *text = g_strdup_printf ("crucible-node:%u", row_index (row));
  return gdk_content_provider_new_typed (G_TYPE_STRING, text);
}

static void
drag_begin (GtkDragSource *source, GdkDrag *drag, GtkWidget *row)
{
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (row);
  gtk_drag_source_set_icon (source, paintable, 20, 12);
}

static GtkWidget *
make_row (CruNodeList *self, guint index)
{
  const CruNodeTemplate *t = cru_node_templates_get_nth (index);
  GtkWidget *row = gtk_list_box_row_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *icon = gtk_image_new_from_icon_name (t->icon_name);
  GtkWidget *label = gtk_label_new (t->label);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_box_append (GTK_BOX (box), icon);
  gtk_box_append (GTK_BOX (box), label);
  gtk_widget_add_css_class (box, "palette-row");
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);
  gtk_widget_set_tooltip_text (row, t->description);
  g_object_set_data (G_OBJECT (row), "cru-template", GUINT_TO_POINTER (index + 1));
  if (self->draggable)
    {
      GtkDragSource *source = gtk_drag_source_new ();

      gtk_drag_source_set_actions (source, GDK_ACTION_COPY);
      g_signal_connect (source, "prepare", G_CALLBACK (drag_prepare), row);
      g_signal_connect (source, "drag-begin", G_CALLBACK (drag_begin), row);
      gtk_widget_add_controller (row, GTK_EVENT_CONTROLLER (source));
    }
  return row;
}

static void
row_activated (GtkListBox *list, GtkListBoxRow *row, CruNodeList *self)
{
  g_signal_emit (self, signals[TEMPLATE_ACTIVATED], 0, row_index (row));
}

static void
search_changed (GtkSearchEntry *entry, CruNodeList *self)
{
  cru_node_list_set_search (self, gtk_editable_get_text (GTK_EDITABLE (entry)));
}

static void
search_activate (GtkSearchEntry *entry, CruNodeList *self)
{
  for (GtkWidget *row = gtk_widget_get_first_child (self->list); row != NULL;
       row = gtk_widget_get_next_sibling (row))
    if (GTK_IS_LIST_BOX_ROW (row) && gtk_widget_get_child_visible (row))
      {
        row_activated (GTK_LIST_BOX (self->list), GTK_LIST_BOX_ROW (row), self);
        return;
      }
}

static void
cru_node_list_dispose (GObject *object)
{
  CruNodeList *self = CRU_NODE_LIST (object);

  g_clear_pointer (&self->box, gtk_widget_unparent);
  g_clear_pointer (&self->needle, g_free);
  G_OBJECT_CLASS (cru_node_list_parent_class)->dispose (object);
}

static void
cru_node_list_class_init (CruNodeListClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = cru_node_list_dispose;
  gtk_widget_class_set_layout_manager_type (GTK_WIDGET_CLASS (klass), GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (GTK_WIDGET_CLASS (klass), "nodelist");
  signals[TEMPLATE_ACTIVATED] =
    g_signal_new ("template-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
cru_node_list_init (CruNodeList *self)
{
}

GtkWidget *
cru_node_list_new (gboolean draggable)
{
  CruNodeList *self = g_object_new (CRU_TYPE_NODE_LIST, NULL);
  GtkWidget *scrolled;

  self->draggable = draggable;
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));
  self->search = gtk_search_entry_new ();
  g_object_set (self->search, "placeholder-text", _("Search nodes"), NULL);
  gtk_widget_set_margin_start (self->search, 6);
  gtk_widget_set_margin_end (self->search, 6);
  gtk_widget_set_margin_top (self->search, 6);
  g_signal_connect (self->search, "search-changed", G_CALLBACK (search_changed), self);
  g_signal_connect (self->search, "activate", G_CALLBACK (search_activate), self);
  gtk_box_append (GTK_BOX (self->box), self->search);

  self->list = gtk_list_box_new ();
  gtk_widget_add_css_class (self->list, "navigation-sidebar");
  gtk_list_box_set_filter_func (GTK_LIST_BOX (self->list), filter_row, self, NULL);
  gtk_list_box_set_header_func (GTK_LIST_BOX (self->list), header_func, NULL, NULL);
  g_signal_connect (self->list, "row-activated", G_CALLBACK (row_activated), self);
  for (guint i = 0; i < cru_node_templates_get_n (); i++)
    gtk_list_box_append (GTK_LIST_BOX (self->list), make_row (self, i));

  scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scrolled), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scrolled), !draggable);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scrolled), 360);
  gtk_widget_set_vexpand (scrolled, TRUE);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), self->list);
  gtk_box_append (GTK_BOX (self->box), scrolled);
  return GTK_WIDGET (self);
}

void
cru_node_list_set_filter (CruNodeList *self, CruStreamType accepts, CruStreamType produces)
{
  g_return_if_fail (CRU_IS_NODE_LIST (self));
  self->accepts = accepts;
  self->produces = produces;
  gtk_list_box_invalidate_filter (GTK_LIST_BOX (self->list));
  gtk_list_box_invalidate_headers (GTK_LIST_BOX (self->list));
}

void
cru_node_list_set_search (CruNodeList *self, const char *text)
{
  g_return_if_fail (CRU_IS_NODE_LIST (self));
  g_free (self->needle);
  self->needle = text ? g_utf8_casefold (text, -1) : NULL;
  gtk_list_box_invalidate_filter (GTK_LIST_BOX (self->list));
}

guint
cru_node_list_get_n_visible (CruNodeList *self)
{
  guint n = 0;

  for (GtkWidget *row = gtk_widget_get_first_child (self->list); row != NULL;
       row = gtk_widget_get_next_sibling (row))
    if (GTK_IS_LIST_BOX_ROW (row) && filter_row (GTK_LIST_BOX_ROW (row), self))
      n++;
  return n;
}

GtkWidget *
cru_node_list_get_search_entry (CruNodeList *self)
{
  return self->search;
}
