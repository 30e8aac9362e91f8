/* cru-graph-view-private.h — state shared by the canvas's drawing and input halves
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-graph-view.h"

G_BEGIN_DECLS

#define CRU_GRID 20.0
#define CRU_ZOOM_MIN 0.2
#define CRU_ZOOM_MAX 2.5

typedef enum {
  CRU_DRAG_NONE,
  CRU_DRAG_MOVE,
  CRU_DRAG_LINK,
  CRU_DRAG_BOX,
  CRU_DRAG_PAN,
} CruDragMode;

struct _CruGraphView {
  GtkWidget    parent_instance;

  CruGraph    *graph;
  gulong       changed_id;
  GHashTable  *widgets;       /* node id → CruNodeWidget* */
  GHashTable  *selection;     /* node id set */
  guint        n_wires;

  double       zoom;
  double       off_x, off_y;
  gboolean     fit_pending;   /* zoom to fit at the next allocation */

  /* interaction */
  CruDragMode  drag;
  double       drag_x, drag_y;      /* start, widget coordinates */
  double       drag_dx, drag_dy;    /* current offset */
  double       pointer_x, pointer_y;
  gboolean     space_down;
  double       pan_start_x, pan_start_y;
  double       pinch_zoom;
  /* link drag: the fixed end (an output, or an input) */
  guint        link_node;
  const char  *link_port;           /* NULL: dragging from an output */
  int          link_slot;
  guint        link_detached;       /* link picked up from an input, removed on drop */
  guint        link_stream;
  CruSocket   *link_target;         /* compatible socket under the pointer */

  GtkWidget   *popover;             /* add-node popover */
  GtkWidget   *popover_list;
  double       popover_cx, popover_cy;
};

/* cru-graph-view-input.c */
void _cru_graph_view_setup_input (CruGraphView *self);
void _cru_graph_view_install_actions (GtkWidgetClass *widget_class);
/* Canvas position of a node, including an in-progress move. */
void _cru_graph_view_node_position (CruGraphView *self, const CruNode *node,
                                    double *x, double *y);
void _cru_graph_view_update_dimming (CruGraphView *self);
void _cru_graph_view_clear_dimming (CruGraphView *self);

G_END_DECLS
