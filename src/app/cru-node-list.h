/* cru-node-list.h — the searchable node catalogue used by the palette and the add-node
 * popover: rows grouped as Sources / Methods / Structure / Output.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>
#include "cru-node-info.h"

G_BEGIN_DECLS

#define CRU_TYPE_NODE_LIST (cru_node_list_get_type ())
G_DECLARE_FINAL_TYPE (CruNodeList, cru_node_list, CRU, NODE_LIST, GtkWidget)

/* Signal "template-activated" (guint index into cru_node_templates_get_nth). */

GtkWidget *cru_node_list_new          (gboolean draggable);
/* Shows only nodes with an input accepting @accepts (or, for @produces, an output of that
 * type); CRU_STREAM_NONE for both shows all. */
void       cru_node_list_set_filter   (CruNodeList *self, CruStreamType accepts,
                                       CruStreamType produces);
void       cru_node_list_set_search   (CruNodeList *self, const char *text);
guint      cru_node_list_get_n_visible (CruNodeList *self);
GtkWidget *cru_node_list_get_search_entry (CruNodeList *self);

G_END_DECLS
