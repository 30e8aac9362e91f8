/* cru-node-widget.h — one node on the canvas: title, kind icon, key parameters, sockets
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>
#include "cru-graph.h"
#include "cru-plan.h"

G_BEGIN_DECLS

typedef enum {
  CRU_NODE_RUN_IDLE,
  CRU_NODE_RUN_QUEUED,
  CRU_NODE_RUN_RUNNING,
  CRU_NODE_RUN_DONE,
  CRU_NODE_RUN_FAILED,
} CruNodeRunState;

#define CRU_TYPE_SOCKET (cru_socket_get_type ())
G_DECLARE_FINAL_TYPE (CruSocket, cru_socket, CRU, SOCKET, GtkWidget)

guint       cru_socket_get_node      (CruSocket *self);
const char *cru_socket_get_port      (CruSocket *self);   /* NULL for the output */
int         cru_socket_get_slot      (CruSocket *self);   /* -1: the "add" slot of a variadic port */
gboolean    cru_socket_is_output     (CruSocket *self);
guint       cru_socket_get_stream    (CruSocket *self);   /* CruStreamType */
guint       cru_socket_get_link      (CruSocket *self);   /* link into this input, or 0 */
void        cru_socket_set_dimmed    (CruSocket *self, gboolean dimmed);
/* The socket of a port row, or the socket itself, for a widget under the pointer. */
CruSocket  *cru_socket_from_widget   (GtkWidget *widget);

#define CRU_TYPE_NODE_WIDGET (cru_node_widget_get_type ())
G_DECLARE_FINAL_TYPE (CruNodeWidget, cru_node_widget, CRU, NODE_WIDGET, GtkWidget)

GtkWidget  *cru_node_widget_new        (CruGraph *graph, guint node);
guint       cru_node_widget_get_node   (CruNodeWidget *self);
/* Re-reads the node and its links (title, summary, ports). */
void        cru_node_widget_update     (CruNodeWidget *self);
void        cru_node_widget_set_selected (CruNodeWidget *self, gboolean selected);
gboolean    cru_node_widget_get_selected (CruNodeWidget *self);
/* Problems of this node (CruProblem*, borrowed during the call); NULL clears. */
void        cru_node_widget_set_problems (CruNodeWidget *self, GPtrArray *problems);
guint       cru_node_widget_get_n_errors (CruNodeWidget *self);
guint       cru_node_widget_get_n_warnings (CruNodeWidget *self);
/* The parameters' summary shown under the title. */
const char *cru_node_widget_get_summary (CruNodeWidget *self);
void        cru_node_widget_set_run_state (CruNodeWidget *self, CruNodeRunState state,
                                           double fraction);
CruNodeRunState cru_node_widget_get_run_state (CruNodeWidget *self);
/* The output socket, or the input socket of (@port, @slot); NULL when absent. */
CruSocket  *cru_node_widget_get_socket (CruNodeWidget *self, const char *port, int slot);
/* All sockets (output first), borrowed. */
GPtrArray  *cru_node_widget_get_sockets (CruNodeWidget *self);
/* TRUE when @widget (a descendant) is the title bar, where dragging moves the node. */
gboolean    cru_node_widget_is_header  (CruNodeWidget *self, GtkWidget *widget);

G_END_DECLS
