/* cru-graph-view.h — the node canvas: node widgets over a pannable, zoomable plane with
 * wires drawn as Bézier curves. Gestures are thin; the operations they call are public so
 * that tests can drive them directly.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>
#include "cru-graph.h"
#include "cru-plan.h"
#include "cru-node-info.h"
#include "cru-node-widget.h"

G_BEGIN_DECLS

#define CRU_TYPE_GRAPH_VIEW (cru_graph_view_get_type ())
G_DECLARE_FINAL_TYPE (CruGraphView, cru_graph_view, CRU, GRAPH_VIEW, GtkWidget)

/* Properties: "graph" (CruGraph*), "zoom" (double), "selected-node" (guint: the single
 * selected node, 0 when none or several). Signal "selection-changed". */

GtkWidget     *cru_graph_view_new              (void);
void           cru_graph_view_set_graph        (CruGraphView *self, CruGraph *graph);
CruGraph      *cru_graph_view_get_graph        (CruGraphView *self);

CruNodeWidget *cru_graph_view_get_node_widget  (CruGraphView *self, guint node);
guint          cru_graph_view_get_n_node_widgets (CruGraphView *self);
/* Number of wires drawn (links whose both ends have widgets). */
guint          cru_graph_view_get_n_wires      (CruGraphView *self);

/* ---- view transform: widget = canvas × zoom + offset ---- */
double         cru_graph_view_get_zoom         (CruGraphView *self);
void           cru_graph_view_set_zoom_at      (CruGraphView *self, double zoom,
                                                double widget_x, double widget_y);
void           cru_graph_view_pan              (CruGraphView *self, double dx, double dy);
void           cru_graph_view_canvas_to_widget (CruGraphView *self, double cx, double cy,
                                                double *wx, double *wy);
void           cru_graph_view_widget_to_canvas (CruGraphView *self, double wx, double wy,
                                                double *cx, double *cy);
/* Fits all nodes (or the selection) in the visible area; FALSE when there is nothing. */
gboolean       cru_graph_view_zoom_to_fit      (CruGraphView *self);
gboolean       cru_graph_view_zoom_to_selection (CruGraphView *self);
/* Bounds of a node widget in widget coordinates; FALSE when not laid out. */
gboolean       cru_graph_view_get_node_bounds  (CruGraphView *self, guint node,
                                                graphene_rect_t *bounds);
/* Centre of a socket in widget coordinates (@port NULL = the output). */
gboolean       cru_graph_view_get_socket_point (CruGraphView *self, guint node,
                                                const char *port, int slot,
                                                graphene_point_t *point);

/* ---- selection ---- */
void           cru_graph_view_select_node      (CruGraphView *self, guint node, gboolean add);
void           cru_graph_view_select_all       (CruGraphView *self);
void           cru_graph_view_unselect_all     (CruGraphView *self);
/* Selects the nodes intersecting a rectangle in widget coordinates. */
void           cru_graph_view_select_rect      (CruGraphView *self, const graphene_rect_t *rect,
                                                gboolean add);
GArray        *cru_graph_view_get_selection    (CruGraphView *self);   /* guint ids */
guint          cru_graph_view_get_selected_node (CruGraphView *self);

/* ---- edits (each one undo step) ---- */
guint          cru_graph_view_link_ports       (CruGraphView *self, guint from_node,
                                                guint to_node, const char *port, int slot,
                                                GError **error);
/* Adds a node from the catalogue at a canvas position; returns its id. */
guint          cru_graph_view_add_template     (CruGraphView *self, const CruNodeTemplate *tmpl,
                                                double cx, double cy);
guint          cru_graph_view_add_model        (CruGraphView *self, const char *path,
                                                double cx, double cy);
gboolean       cru_graph_view_delete_selection (CruGraphView *self);
/* Copies the selection (also to the clipboard); returns the text or NULL. */
char          *cru_graph_view_copy_selection   (CruGraphView *self);
/* Pastes copied text next to the originals and selects the new nodes; their count. */
guint          cru_graph_view_paste_text       (CruGraphView *self, const char *text,
                                                GError **error);
guint          cru_graph_view_duplicate_selection (CruGraphView *self);
/* Moves the selected nodes by a canvas offset (snapped to the grid), one undo step. */
void           cru_graph_view_move_selection   (CruGraphView *self, double dx, double dy);

/* ---- state from the plan and the engine ---- */
void           cru_graph_view_set_problems     (CruGraphView *self, GPtrArray *problems);
void           cru_graph_view_set_run_state    (CruGraphView *self, guint node,
                                                CruNodeRunState state, double fraction);
void           cru_graph_view_reset_run_state  (CruGraphView *self);

/* Opens the add-node popover at a widget position (Shift+A / double-click). */
void           cru_graph_view_show_add_popover (CruGraphView *self, double wx, double wy);

G_END_DECLS
