/* cru-gradient-editor.h — a per-layer value edited as draggable bars over the layer axis,
 * with presets (constant, ramp up, ramp down, V, Λ)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define CRU_TYPE_GRADIENT_EDITOR (cru_gradient_editor_get_type ())
G_DECLARE_FINAL_TYPE (CruGradientEditor, cru_gradient_editor, CRU, GRADIENT_EDITOR, GtkWidget)

typedef enum {
  CRU_GRADIENT_CONSTANT,
  CRU_GRADIENT_RAMP_UP,
  CRU_GRADIENT_RAMP_DOWN,
  CRU_GRADIENT_V,
  CRU_GRADIENT_LAMBDA,
} CruGradientPreset;

/* Signal "changed" () after the user edits the values (once per drag step). */

GtkWidget    *cru_gradient_editor_new        (double min, double max);
void          cru_gradient_editor_set_range  (CruGradientEditor *self, double min, double max);
void          cru_gradient_editor_set_values (CruGradientEditor *self, const double *values,
                                              guint n);
const double *cru_gradient_editor_get_values (CruGradientEditor *self, guint *n);
/* Changes the number of points, resampling the curve (emits "changed"). */
void          cru_gradient_editor_set_n_points (CruGradientEditor *self, guint n);
void          cru_gradient_editor_apply_preset (CruGradientEditor *self, CruGradientPreset preset);
/* Sets point @index from a pointer position in widget coordinates (what a drag does). */
void          cru_gradient_editor_set_point_at (CruGradientEditor *self, double x, double y);

G_END_DECLS
