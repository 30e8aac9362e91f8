/* cru-node-widget.c — one node on the canvas
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-node-widget.h"

#include <glib/gi18n-lib.h>
#include <string.h>
#include "cru-method.h"
#include "cru-node-info.h"

/* ---- CruSocket ---- */

struct _CruSocket {
  GtkWidget   parent_instance;
  guint       node;
  const char *port;
  int         slot;
  gboolean    output;
  guint       stream;
  guint       link;
};

G_DEFINE_FINAL_TYPE (CruSocket, cru_socket, GTK_TYPE_WIDGET)

static void
cru_socket_class_init (CruSocketClass *klass)
{
  gtk_widget_class_set_css_name (GTK_WIDGET_CLASS (klass), "socket");
}

static void
cru_socket_init (CruSocket *self)
{
  gtk_widget_set_valign (GTK_WIDGET (self), GTK_ALIGN_CENTER);
}

static CruSocket *
cru_socket_new (guint node, const char *port, int slot, gboolean output, guint stream,
                guint link)
{
  CruSocket *self = g_object_new (CRU_TYPE_SOCKET, NULL);

  self->node = node;
  self->port = port != NULL ? g_intern_string (port) : NULL;
  self->slot = slot;
  self->output = output;
  self->stream = stream;
  self->link = link;
  gtk_widget_add_css_class (GTK_WIDGET (self), stream == CRU_STREAM_SLICE ? "slice" : "model");
  if (port != NULL && strcmp (port, CRU_PORT_BASE) == 0)
    gtk_widget_add_css_class (GTK_WIDGET (self), "base");
  if (link != 0 || output)
    gtk_widget_add_css_class (GTK_WIDGET (self), "connected");
  return self;
}

guint cru_socket_get_node (CruSocket *self) { return self->node; }
const char *cru_socket_get_port (CruSocket *self) { return self->port; }
int cru_socket_get_slot (CruSocket *self) { return self->slot; }
gboolean cru_socket_is_output (CruSocket *self) { return self->output; }
guint cru_socket_get_stream (CruSocket *self) { return self->stream; }
guint cru_socket_get_link (CruSocket *self) { return self->link; }

void
cru_socket_set_dimmed (CruSocket *self, gboolean dimmed)
{
  GtkWidget *row = gtk_widget_get_parent (GTK_WIDGET (self));

  if (dimmed)
    gtk_widget_add_css_class (row, "dimmed");
  else
    gtk_widget_remove_css_class (row, "dimmed");
}

CruSocket *
cru_socket_from_widget (GtkWidget *widget)
{
  for (; widget != NULL; widget = gtk_widget_get_parent (widget))
    {
      if (CRU_IS_SOCKET (widget))
        return CRU_SOCKET (widget);
      if (g_object_get_data (G_OBJECT (widget), "cru-socket") != NULL)
        return g_object_get_data (G_OBJECT (widget), "cru-socket");
      if (CRU_IS_NODE_WIDGET (widget))
        return NULL;
    }
  return NULL;
}

/* ---- CruNodeWidget ---- */

struct _CruNodeWidget {
  GtkWidget        parent_instance;

  CruGraph        *graph;
  guint            node;
  gboolean         selected;
  guint            n_errors;
  guint            n_warnings;
  CruNodeRunState  run_state;
  GPtrArray       *sockets;
  GHashTable      *port_problems;  /* "port" → message */

  GtkWidget       *frame;
  GtkWidget       *header;
  GtkWidget       *icon;
  GtkWidget       *title_label;
  GtkWidget       *badge;
  GtkWidget       *summary_label;
  GtkWidget       *ports_box;
  GtkWidget       *progress;
};

G_DEFINE_FINAL_TYPE (CruNodeWidget, cru_node_widget, GTK_TYPE_WIDGET)

static void model_info_changed (GObject *notifier, const char *path, CruNodeWidget *self);

static void
cru_node_widget_dispose (GObject *object)
{
  CruNodeWidget *self = CRU_NODE_WIDGET (object);

  g_signal_handlers_disconnect_by_data (cru_model_info_get_notifier (), self);
  gtk_widget_dispose_template (GTK_WIDGET (self), CRU_TYPE_NODE_WIDGET);
  g_clear_object (&self->graph);
  g_clear_pointer (&self->sockets, g_ptr_array_unref);
  g_clear_pointer (&self->port_problems, g_hash_table_unref);
  G_OBJECT_CLASS (cru_node_widget_parent_class)->dispose (object);
}

static void
cru_node_widget_class_init (CruNodeWidgetClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = cru_node_widget_dispose;
  gtk_widget_class_set_template_from_resource (widget_class,
      "/io/github/crucible_merge/Crucible/cru-node-widget.ui");
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, frame);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, header);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, icon);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, title_label);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, badge);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, summary_label);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, ports_box);
  gtk_widget_class_bind_template_child (widget_class, CruNodeWidget, progress);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "node");
}

static void
cru_node_widget_init (CruNodeWidget *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->sockets = g_ptr_array_new ();
  self->port_problems = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_signal_connect (cru_model_info_get_notifier (), "model-info-changed",
                    G_CALLBACK (model_info_changed), self);
}

GtkWidget *
cru_node_widget_new (CruGraph *graph, guint node)
{
  CruNodeWidget *self = g_object_new (CRU_TYPE_NODE_WIDGET, NULL);

  self->graph = g_object_ref (graph);
  self->node = node;
  cru_node_widget_update (self);
  return GTK_WIDGET (self);
}

guint
cru_node_widget_get_node (CruNodeWidget *self)
{
  g_return_val_if_fail (CRU_IS_NODE_WIDGET (self), 0);
  return self->node;
}

static void
model_info_changed (GObject *notifier, const char *path, CruNodeWidget *self)
{
  const CruNode *node = self->graph ? cru_graph_get_node (self->graph, self->node) : NULL;

  if (node != NULL && node->kind == CRU_NODE_MODEL && g_strcmp0 (node->path, path) == 0)
    cru_node_widget_update (self);
}

static void
append_param (GString *s, const char *name, const CruValue *value)
{
  g_autofree char *text = cru_value_to_display (value);

  if (s->len > 0)
    g_string_append_c (s, '\n');
  g_string_append_printf (s, "%s = %s", name, text);
}

static char *
dup_summary (CruNodeWidget *self, const CruNode *node)
{
  GString *s = g_string_new (NULL);

  switch (node->kind)
    {
    case CRU_NODE_MODEL:
      {
        const CruModelInfo *info = cru_model_info_lookup (node->path);

        if (node->path == NULL)
          g_string_append (s, _("No model chosen"));
        else if (info == NULL || !info->loaded)
          g_string_append (s, _("Reading…"));
        else if (info->error != NULL)
          g_string_append (s, _("Cannot be opened"));
        else
          {
            g_autofree char *params = cru_format_count (info->n_params);
            g_autofree char *size = cru_format_bytes (info->bytes);
            const char *dtype = cru_dtype_to_string (info->dtype);

            /* Translators: "Llama · 4.6 M parameters" */
            g_string_append_printf (s, _("%s · %s parameters"), info->arch, params);
            g_string_append_c (s, '\n');
            g_string_append_printf (s, ngettext ("%d layer · %s · %s", "%d layers · %s · %s",
                                                 info->n_layers),
                                    info->n_layers, dtype ? dtype : "?", size);
          }
      }
      break;

    case CRU_NODE_METHOD:
      {
        const CruMethod *m = cru_method_lookup (node->method);

        if (m == NULL)
          {
            g_string_append_printf (s, _("Unknown method “%s”"),
                                    node->method ? node->method : "");
            break;
          }
        for (int i = 0; i < m->n_params; i++)
          {
            const CruParamSpec *spec = &m->params[i];
            const CruValue *v = g_hash_table_lookup (node->params, spec->name);
            g_autoptr(CruValue) def = NULL;

            /* int8_mask only saves memory in mergekit: not worth a line on the node. */
            if (spec->per_model || g_str_equal (spec->name, "int8_mask"))
              continue;
            if (v == NULL)
              {
                if (spec->type == CRU_PARAM_ENUM && spec->choices != NULL)
                  v = def = cru_value_new_string (spec->choices[(int) spec->default_value]);
                else
                  v = def = cru_value_new_scalar (spec->default_value);
              }
            if (spec->type == CRU_PARAM_BOOL && v->kind == CRU_VALUE_SCALAR)
              {
                g_autoptr(CruValue) shown = cru_value_new_string (v->scalar != 0
                                                                  /* Translators: a switch */
                                                                  ? _("on") : _("off"));
                append_param (s, spec->name, shown);
              }
            else
              append_param (s, spec->name, v);
          }
      }
      break;

    case CRU_NODE_MOE:
      {
        const CruValue *mode = g_hash_table_lookup (node->params, "gate_mode");
        const CruValue *per = g_hash_table_lookup (node->params, "experts_per_token");
        const CruValue *arch = g_hash_table_lookup (node->params, "architecture");
        g_autoptr(GPtrArray) in = cru_graph_links_to (self->graph, node->id);
        const CruChoice *choices, *c;
        guint n, n_experts = 0;
        int k = per != NULL && per->kind == CRU_VALUE_SCALAR ? (int) per->scalar : 2;

        for (guint i = 0; i < in->len; i++)
          n_experts += strcmp (((const CruLink *) in->pdata[i])->to_port, CRU_PORT_EXPERT) == 0;
        choices = cru_moe_gate_modes (&n);
        c = cru_choice_find (choices, n, mode && mode->kind == CRU_VALUE_STRING ? mode->string
                                                                                : "hidden");
        /* Translators: how a mixture of experts routes, "Routing: By meaning" */
        g_string_append_printf (s, _("Routing: %s"), c ? _(c->label) : mode->string);
        g_string_append_c (s, '\n');
        /* Translators: "2 of 3 experts per token" */
        g_string_append_printf (s, ngettext ("%d of %u expert per token",
                                             "%d of %u experts per token", n_experts),
                                k, n_experts);
        choices = cru_moe_architectures (&n);
        c = cru_choice_find (choices, n, arch && arch->kind == CRU_VALUE_STRING ? arch->string
                                                                                : "mixtral");
        g_string_append_printf (s, " · %s", c ? _(c->label) : arch->string);
      }
      break;

    case CRU_NODE_OUTPUT:
      {
        const CruValue *dtype = g_hash_table_lookup (node->params, "dtype");
        g_autofree char *base = node->path ? g_path_get_basename (node->path) : NULL;

        g_string_append (s, base != NULL ? base : _("No folder chosen"));
        if (dtype != NULL && dtype->kind == CRU_VALUE_STRING)
          g_string_append_printf (s, " · %s", dtype->string);
      }
      break;

    default:
      {
        g_autoptr(GList) keys = g_hash_table_get_keys (node->params);

        keys = g_list_sort (keys, (GCompareFunc) strcmp);
        for (GList *l = keys; l != NULL; l = l->next)
          append_param (s, l->data, g_hash_table_lookup (node->params, l->data));
      }
      break;
    }
  return g_string_free (s, FALSE);
}

static char *
dup_link_text (CruNodeWidget *self, const CruLink *link)
{
  const CruNode *from = cru_graph_get_node (self->graph, link->from_node);
  g_autofree char *title = from ? cru_node_dup_title (from) : g_strdup ("?");
  GString *s = g_string_new (title);
  g_autoptr(GList) keys = g_hash_table_get_keys (link->params);

  keys = g_list_sort (keys, (GCompareFunc) strcmp);
  for (GList *l = keys; l != NULL; l = l->next)
    {
      const CruValue *value = g_hash_table_lookup (link->params, l->data);
      g_autofree char *v = NULL;

      /* a MoE expert's prompts: how many, not what */
      if (value->kind == CRU_VALUE_STRINGS)
        {
          guint n = value->strings ? g_strv_length (value->strings) : 0;
          if (strcmp (l->data, "positive_prompts") == 0)
            g_string_append_printf (s, ngettext (" · %u prompt", " · %u prompts", n), n);
          continue;
        }
      v = cru_value_to_display (value);
      g_string_append_printf (s, "  %.1s=%s", (const char *) l->data, v);
    }
  return g_string_free (s, FALSE);
}

static void
add_port_row (CruNodeWidget *self, CruSocket *socket, const char *text, gboolean dim)
{
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new (text);
  const char *problem = NULL;

  gtk_widget_add_css_class (row, "port");
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign (GTK_LABEL (label), socket->output ? 1.0 : 0.0);
  gtk_widget_set_hexpand (label, TRUE);
  if (dim)
    gtk_widget_add_css_class (label, "dim-label");
  if (socket->port != NULL && strcmp (socket->port, CRU_PORT_BASE) == 0)
    gtk_widget_add_css_class (label, "heading");
  if (socket->output)
    {
      gtk_widget_add_css_class (row, "output");
      gtk_box_append (GTK_BOX (row), label);
      gtk_box_append (GTK_BOX (row), GTK_WIDGET (socket));
    }
  else
    {
      gtk_box_append (GTK_BOX (row), GTK_WIDGET (socket));
      gtk_box_append (GTK_BOX (row), label);
    }
  if (socket->port != NULL)
    problem = g_hash_table_lookup (self->port_problems, socket->port);
  if (problem != NULL)
    {
      gtk_widget_add_css_class (row, "error");
      gtk_widget_set_tooltip_text (row, problem);
    }
  g_object_set_data (G_OBJECT (row), "cru-socket", socket);
  gtk_box_append (GTK_BOX (self->ports_box), row);
  g_ptr_array_add (self->sockets, socket);
}

static const char *
output_text (CruNodeKind kind)
{
  switch (kind)
    {
    case CRU_NODE_METHOD: return _("merged");
    case CRU_NODE_SLICE:  return _("layers");
    default:              return _("model");
    }
}

static const char *
port_text (const char *port)
{
  if (strcmp (port, CRU_PORT_BASE) == 0)
    return _("base");
  if (strcmp (port, CRU_PORT_SLICE) == 0)
    return _("slice");
  if (strcmp (port, CRU_PORT_EXPERT) == 0)
    return _("expert");
  if (strcmp (port, CRU_PORT_SHARED_EXPERT) == 0)
    return _("shared expert");
  return _("model");
}

static void
rebuild_ports (CruNodeWidget *self, const CruNode *node)
{
  GtkWidget *child;
  const char *const *inputs = cru_node_kind_inputs (node->kind);
  g_autoptr(GPtrArray) links = cru_graph_links_to (self->graph, self->node);

  while ((child = gtk_widget_get_first_child (self->ports_box)) != NULL)
    gtk_box_remove (GTK_BOX (self->ports_box), child);
  g_ptr_array_set_size (self->sockets, 0);

  if (cru_node_kind_has_output (node->kind))
    add_port_row (self, cru_socket_new (self->node, NULL, 0, TRUE,
                                        cru_output_stream_type (node->kind), 0),
                  output_text (node->kind), FALSE);

  for (guint i = 0; inputs != NULL && inputs[i] != NULL; i++)
    {
      const char *port = inputs[i];
      guint stream = cru_port_stream_type (node->kind, port);
      gboolean variadic = cru_node_port_is_variadic (node->kind, port);
      gboolean any = FALSE;

      for (guint j = 0; links != NULL && j < links->len; j++)
        {
          const CruLink *link = g_ptr_array_index (links, j);
          g_autofree char *text = NULL;

          if (strcmp (link->to_port, port) != 0)
            continue;
          text = dup_link_text (self, link);
          if (strcmp (port, CRU_PORT_BASE) == 0)
            {
              char *based = g_strdup_printf (_("base: %s"), text);
              g_free (text);
              text = based;
            }
          else if (strcmp (port, CRU_PORT_SHARED_EXPERT) == 0)
            {
              char *shared = g_strdup_printf (_("shared: %s"), text);
              g_free (text);
              text = shared;
            }
          add_port_row (self, cru_socket_new (self->node, port, link->slot, FALSE, stream,
                                              link->id),
                        text, FALSE);
          any = TRUE;
        }
      if (variadic || !any)
        {
          g_autofree char *text = variadic ? g_strdup_printf (_("+ %s"), port_text (port))
                                           : g_strdup (port_text (port));
          add_port_row (self, cru_socket_new (self->node, port, variadic ? -1 : 0, FALSE,
                                              stream, 0),
                        text, TRUE);
        }
    }
}

void
cru_node_widget_update (CruNodeWidget *self)
{
  const CruNode *node;
  g_autofree char *title = NULL;
  g_autofree char *summary = NULL;

  g_return_if_fail (CRU_IS_NODE_WIDGET (self));
  node = cru_graph_get_node (self->graph, self->node);
  if (node == NULL)
    return;

  title = cru_node_dup_title (node);
  gtk_label_set_text (GTK_LABEL (self->title_label), title);
  gtk_image_set_from_icon_name (GTK_IMAGE (self->icon), cru_node_kind_icon (node->kind));
  summary = dup_summary (self, node);
  gtk_label_set_text (GTK_LABEL (self->summary_label), summary);
  gtk_widget_set_visible (self->summary_label, summary[0] != '\0');
  gtk_widget_set_tooltip_text (self->summary_label,
                               node->kind == CRU_NODE_MODEL ? node->path : NULL);
  for (guint k = 0; k < CRU_NODE_N; k++)
    gtk_widget_remove_css_class (GTK_WIDGET (self), cru_node_kind_to_string (k));
  gtk_widget_add_css_class (GTK_WIDGET (self), cru_node_kind_to_string (node->kind));
  rebuild_ports (self, node);
}

void
cru_node_widget_set_selected (CruNodeWidget *self, gboolean selected)
{
  g_return_if_fail (CRU_IS_NODE_WIDGET (self));
  self->selected = selected;
  if (selected)
    gtk_widget_add_css_class (GTK_WIDGET (self), "selected");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self), "selected");
}

gboolean
cru_node_widget_get_selected (CruNodeWidget *self)
{
  return self->selected;
}

void
cru_node_widget_set_problems (CruNodeWidget *self, GPtrArray *problems)
{
  g_autoptr(GString) tip = g_string_new (NULL);
  guint n_warnings = 0;

  g_return_if_fail (CRU_IS_NODE_WIDGET (self));
  self->n_errors = 0;
  g_hash_table_remove_all (self->port_problems);
  for (guint i = 0; problems != NULL && i < problems->len; i++)
    {
      const CruProblem *p = g_ptr_array_index (problems, i);

      if (p->severity == CRU_SEVERITY_INFO)
        continue;
      if (p->severity == CRU_SEVERITY_ERROR)
        self->n_errors++;
      else
        n_warnings++;
      if (tip->len > 0)
        g_string_append_c (tip, '\n');
      g_string_append (tip, p->message);
      if (p->port != NULL && p->severity == CRU_SEVERITY_ERROR)
        g_hash_table_replace (self->port_problems, g_strdup (p->port), g_strdup (p->message));
    }
  self->n_warnings = n_warnings;

  gtk_widget_remove_css_class (GTK_WIDGET (self), "has-error");
  gtk_widget_remove_css_class (GTK_WIDGET (self), "has-warning");
  if (self->n_errors > 0 || n_warnings > 0)
    {
      gtk_image_set_from_icon_name (GTK_IMAGE (self->badge), self->n_errors > 0
                                    ? "dialog-error-symbolic" : "dialog-warning-symbolic");
      gtk_widget_add_css_class (GTK_WIDGET (self), self->n_errors > 0 ? "has-error" : "has-warning");
      gtk_widget_set_tooltip_text (self->badge, tip->str);
      gtk_widget_set_visible (self->badge, TRUE);
    }
  else if (self->run_state != CRU_NODE_RUN_DONE)
    gtk_widget_set_visible (self->badge, FALSE);
  cru_node_widget_update (self);
}

guint
cru_node_widget_get_n_errors (CruNodeWidget *self)
{
  return self->n_errors;
}

guint
cru_node_widget_get_n_warnings (CruNodeWidget *self)
{
  g_return_val_if_fail (CRU_IS_NODE_WIDGET (self), 0);
  return self->n_warnings;
}

const char *
cru_node_widget_get_summary (CruNodeWidget *self)
{
  g_return_val_if_fail (CRU_IS_NODE_WIDGET (self), NULL);
  return gtk_label_get_text (GTK_LABEL (self->summary_label));
}

void
cru_node_widget_set_run_state (CruNodeWidget *self, CruNodeRunState state, double fraction)
{
  g_return_if_fail (CRU_IS_NODE_WIDGET (self));
  self->run_state = state;
  gtk_widget_set_visible (self->progress, state == CRU_NODE_RUN_RUNNING
                                          || state == CRU_NODE_RUN_QUEUED);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), CLAMP (fraction, 0, 1));
  gtk_widget_remove_css_class (GTK_WIDGET (self), "running");
  gtk_widget_remove_css_class (GTK_WIDGET (self), "done");
  gtk_widget_remove_css_class (GTK_WIDGET (self), "failed");
  switch (state)
    {
    case CRU_NODE_RUN_RUNNING:
      gtk_widget_add_css_class (GTK_WIDGET (self), "running");
      break;
    case CRU_NODE_RUN_DONE:
      gtk_widget_add_css_class (GTK_WIDGET (self), "done");
      if (self->n_errors == 0)
        {
          gtk_image_set_from_icon_name (GTK_IMAGE (self->badge), "emblem-ok-symbolic");
          gtk_widget_set_tooltip_text (self->badge, _("Done"));
          gtk_widget_set_visible (self->badge, TRUE);
        }
      break;
    case CRU_NODE_RUN_FAILED:
      gtk_widget_add_css_class (GTK_WIDGET (self), "failed");
      gtk_image_set_from_icon_name (GTK_IMAGE (self->badge), "dialog-error-symbolic");
      gtk_widget_set_tooltip_text (self->badge, _("The run failed"));
      gtk_widget_set_visible (self->badge, TRUE);
      break;
    default:
      if (self->n_errors == 0)
        gtk_widget_set_visible (self->badge, gtk_widget_has_css_class (GTK_WIDGET (self),
                                                                       "has-warning"));
      break;
    }
}

CruNodeRunState
cru_node_widget_get_run_state (CruNodeWidget *self)
{
  return self->run_state;
}

CruSocket *
cru_node_widget_get_socket (CruNodeWidget *self, const char *port, int slot)
{
  g_return_val_if_fail (CRU_IS_NODE_WIDGET (self), NULL);
  for (guint i = 0; i < self->sockets->len; i++)
    {
      CruSocket *s = g_ptr_array_index (self->sockets, i);

      if (port == NULL && s->output)
        return s;
      if (port != NULL && !s->output && strcmp (port, s->port) == 0 && s->slot == slot)
        return s;
    }
  return NULL;
}

GPtrArray *
cru_node_widget_get_sockets (CruNodeWidget *self)
{
  return self->sockets;
}

gboolean
cru_node_widget_is_header (CruNodeWidget *self, GtkWidget *widget)
{
  for (; widget != NULL && widget != GTK_WIDGET (self); widget = gtk_widget_get_parent (widget))
    if (widget == self->header)
      return TRUE;
  return FALSE;
}
