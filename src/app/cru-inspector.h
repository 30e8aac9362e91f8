/* cru-inspector.h — edits the selected node: its parameters (sliders with exact entry,
 * per-layer gradients, name filters), per-input weights, model details, output settings
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>
#include "cru-graph.h"
#include "cru-plan.h"

G_BEGIN_DECLS

#define CRU_TYPE_INSPECTOR (cru_inspector_get_type ())
G_DECLARE_FINAL_TYPE (CruInspector, cru_inspector, CRU, INSPECTOR, GtkWidget)

GtkWidget     *cru_inspector_new           (void);
void           cru_inspector_set_graph     (CruInspector *self, CruGraph *graph);
void           cru_inspector_set_node      (CruInspector *self, guint node);
guint          cru_inspector_get_node      (CruInspector *self);
void           cru_inspector_set_plan      (CruInspector *self, CruPlan *plan);
/* The adjustment behind a scalar row: a node parameter (@link 0) or a per-input one. NULL
 * when no such row is shown. */
GtkAdjustment *cru_inspector_get_adjustment (CruInspector *self, guint link, const char *name);
/* The gradient editor of a node parameter, when it is edited per layer. */
GtkWidget     *cru_inspector_get_gradient_editor (CruInspector *self, const char *name);
/* Number of parameter groups shown for inputs (one per linked input of a method node). */
guint          cru_inspector_get_n_input_groups (CruInspector *self);
/* The text of prompt @index of a MoE input's @name ("positive_prompts" or
 * "negative_prompts"), NULL when no such row is shown. */
GtkTextBuffer *cru_inspector_get_prompt_buffer (CruInspector *self, guint link,
                                                const char *name, guint index);
/* Shows the plan's problems and the last run's warnings again (after a run). */
void           cru_inspector_refresh (CruInspector *self);

G_END_DECLS
