/* cru-inspector-private.h — the inspector's row builders
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>
#include "cru-inspector.h"
#include "cru-method.h"

G_BEGIN_DECLS

/* What a row edits: a node parameter (link 0) or a per-input one. */
typedef struct {
  CruInspector       *inspector;
  guint               node;
  guint               link;
  char               *name;
  const CruParamSpec *spec;       /* NULL for parameters outside the method registry */
  const CruMethod    *method;
  double              min, max;
  int                 digits;
  gboolean            keep_rows;  /* its rows edit the value in place: never rebuild */
  gboolean            reshapes;   /* other rows depend on it: rebuild after each edit */
} CruParamRef;

CruParamRef *_cru_param_ref_new  (CruInspector *self, guint node, guint link, const char *name,
                                  const CruMethod *method, const CruParamSpec *spec,
                                  double min, double max, int digits);
void         _cru_param_ref_free (CruParamRef *ref);
/* Writes a value (takes ownership) to the graph as one (coalescing) edit. */
void         _cru_inspector_apply (CruInspector *self, const CruParamRef *ref, CruValue *value);
void         _cru_inspector_register_adjustment (CruInspector *self, guint link,
                                                 const char *name, GtkAdjustment *adj);
void         _cru_inspector_register_gradient (CruInspector *self, const char *name,
                                               GtkWidget *editor);
CruGraph    *_cru_inspector_get_graph (CruInspector *self);
AdwPreferencesGroup *_cru_inspector_add_group (CruInspector *self, const char *title,
                                               const char *description);
void         _cru_inspector_add_info_row (AdwPreferencesGroup *group, const char *title,
                                          const char *value);
void         _cru_inspector_register_prompt (CruInspector *self, guint link, const char *name,
                                             guint index, GtkTextBuffer *buffer);

/* cru-inspector-moe.c: a mixture of experts' routing, experts and prompts. */
void _cru_inspector_build_moe (CruInspector *self, const CruNode *node);

/* Adds the rows for one numeric parameter to @group according to the value's kind:
 * scalar (slider + exact entry), gradient (bar editor) or name filters. Takes ownership
 * of @ref. */
void _cru_inspector_add_number_rows (CruInspector *self, AdwPreferencesGroup *group,
                                     CruParamRef *ref, const char *title,
                                     const char *subtitle, const CruValue *value,
                                     double default_value, gboolean allow_variants);
/* Enum choices as a combo row; bool as a switch row. */
void _cru_inspector_add_choice_row (CruInspector *self, AdwPreferencesGroup *group,
                                    CruParamRef *ref, const char *title, const char *subtitle,
                                    const char *const *choices, const char *current,
                                    gboolean store_index);
void _cru_inspector_add_switch_row (CruInspector *self, AdwPreferencesGroup *group,
                                    CruParamRef *ref, const char *title, const char *subtitle,
                                    gboolean active);
void _cru_inspector_add_text_row   (CruInspector *self, AdwPreferencesGroup *group,
                                    CruParamRef *ref, const char *title, const char *text);

G_END_DECLS
