/* cru-gradient-editor.c — draggable bars over the layer axis
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-gradient-editor.h"

#include <adwaita.h>
#include <glib/gi18n-lib.h>
#include <math.h>

#define PAD 6.0

struct _CruGradientEditor {
  GtkWidget  parent_instance;
  GArray    *values;   /* double */
  double     min, max;
  int        hover;
};

G_DEFINE_FINAL_TYPE (CruGradientEditor, cru_gradient_editor, GTK_TYPE_WIDGET)

enum { CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static double
value_to_y (CruGradientEditor *self, double v, double h)
{
  double f = (v - self->min) / MAX (self->max - self->min, 1e-9);
  return PAD + (1 - CLAMP (f, 0, 1)) * (h - 2 * PAD);
}

static void
cru_gradient_editor_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  CruGradientEditor *self = CRU_GRADIENT_EDITOR (widget);
  double w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  guint n = self->values->len;
  double slot = (w - 2 * PAD) / MAX (n, 1);
  gboolean dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  GdkRGBA bar, line, axis;
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, w, h));

  gdk_rgba_parse (&bar, dark ? "rgba(120,174,237,0.55)" : "rgba(28,113,216,0.45)");
  gdk_rgba_parse (&line, dark ? "#78aeed" : "#1c71d8");
  gdk_rgba_parse (&axis, dark ? "rgba(255,255,255,0.15)" : "rgba(0,0,0,0.12)");
  gdk_cairo_set_source_rgba (cr, &axis);
  cairo_rectangle (cr, PAD, PAD, w - 2 * PAD, h - 2 * PAD);
  cairo_set_line_width (cr, 1);
  cairo_stroke (cr);

  for (guint i = 0; i < n; i++)
    {
      double v = g_array_index (self->values, double, i);
      double y = value_to_y (self, v, h), y0 = value_to_y (self, MAX (self->min, 0), h);
      double x = PAD + i * slot + slot * 0.15;

      gdk_cairo_set_source_rgba (cr, &bar);
      if ((int) i == self->hover)
        cairo_set_source_rgba (cr, line.red, line.green, line.blue, 0.75);
      cairo_rectangle (cr, x, MIN (y, y0), slot * 0.7, MAX (fabs (y0 - y), 2));
      cairo_fill (cr);
    }
  gdk_cairo_set_source_rgba (cr, &line);
  cairo_set_line_width (cr, 2);
  for (guint i = 0; i < n; i++)
    {
      double x = PAD + (i + 0.5) * slot;
      double y = value_to_y (self, g_array_index (self->values, double, i), h);
      if (i == 0)
        cairo_move_to (cr, x, y);
      else
        cairo_line_to (cr, x, y);
    }
  cairo_stroke (cr);
  for (guint i = 0; i < n; i++)
    {
      double x = PAD + (i + 0.5) * slot;
      double y = value_to_y (self, g_array_index (self->values, double, i), h);
      cairo_arc (cr, x, y, 3.5, 0, 2 * G_PI);
      cairo_fill (cr);
    }
  cairo_destroy (cr);
}

static void
cru_gradient_editor_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                             int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  if (orientation == GTK_ORIENTATION_HORIZONTAL)
    *minimum = 120, *natural = 260;
  else
    *minimum = 72, *natural = 96;
}

void
cru_gradient_editor_set_point_at (CruGradientEditor *self, double x, double y)
{
  double w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));
  guint n = self->values->len;
  int i;
  double f, v;

  if (n == 0 || w <= 2 * PAD || h <= 2 * PAD)
    return;
  i = (int) floor ((x - PAD) / ((w - 2 * PAD) / n));
  i = CLAMP (i, 0, (int) n - 1);
  f = 1 - (y - PAD) / (h - 2 * PAD);
  v = self->min + CLAMP (f, 0, 1) * (self->max - self->min);
  /* Round to what the spin buttons show, so drags land on readable numbers. */
  v = round (v * 100) / 100;
  g_array_index (self->values, double, i) = v;
  self->hover = i;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[CHANGED], 0);
}

static void
drag_begin (GtkGestureDrag *gesture, double x, double y, CruGradientEditor *self)
{
  gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_CLAIMED);
  cru_gradient_editor_set_point_at (self, x, y);
}

static void
drag_update (GtkGestureDrag *gesture, double dx, double dy, CruGradientEditor *self)
{
  double x, y;

  gtk_gesture_drag_get_start_point (gesture, &x, &y);
  cru_gradient_editor_set_point_at (self, x + dx, y + dy);
}

static void
drag_end (GtkGestureDrag *gesture, double dx, double dy, CruGradientEditor *self)
{
  self->hover = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
cru_gradient_editor_finalize (GObject *object)
{
  g_array_unref (CRU_GRADIENT_EDITOR (object)->values);
  G_OBJECT_CLASS (cru_gradient_editor_parent_class)->finalize (object);
}

static void
cru_gradient_editor_class_init (CruGradientEditorClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = cru_gradient_editor_finalize;
  widget_class->snapshot = cru_gradient_editor_snapshot;
  widget_class->measure = cru_gradient_editor_measure;
  gtk_widget_class_set_css_name (widget_class, "gradienteditor");
  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                   NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
cru_gradient_editor_init (CruGradientEditor *self)
{
  GtkGesture *drag = gtk_gesture_drag_new ();

  self->values = g_array_new (FALSE, TRUE, sizeof (double));
  self->min = 0, self->max = 1;
  self->hover = -1;
  g_signal_connect (drag, "drag-begin", G_CALLBACK (drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (drag_end), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self),
                               _("Value per layer, first layer on the left: drag the bars"));
}

GtkWidget *
cru_gradient_editor_new (double min, double max)
{
  CruGradientEditor *self = g_object_new (CRU_TYPE_GRADIENT_EDITOR, NULL);

  cru_gradient_editor_set_range (self, min, max);
  return GTK_WIDGET (self);
}

void
cru_gradient_editor_set_range (CruGradientEditor *self, double min, double max)
{
  g_return_if_fail (CRU_IS_GRADIENT_EDITOR (self));
  self->min = min;
  self->max = max > min ? max : min + 1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cru_gradient_editor_set_values (CruGradientEditor *self, const double *values, guint n)
{
  g_return_if_fail (CRU_IS_GRADIENT_EDITOR (self));
  g_array_set_size (self->values, 0);
  g_array_append_vals (self->values, values, n);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

const double *
cru_gradient_editor_get_values (CruGradientEditor *self, guint *n)
{
  g_return_val_if_fail (CRU_IS_GRADIENT_EDITOR (self), NULL);
  *n = self->values->len;
  return (const double *) self->values->data;
}

void
cru_gradient_editor_set_n_points (CruGradientEditor *self, guint n)
{
  g_autoptr(GArray) old = NULL;

  g_return_if_fail (CRU_IS_GRADIENT_EDITOR (self));
  if (n < 2 || n == self->values->len)
    return;
  old = g_array_copy (self->values);
  g_array_set_size (self->values, n);
  for (guint i = 0; i < n; i++)
    {
      double t = (double) i / (n - 1) * (old->len - 1);
      guint a = (guint) floor (t), b = MIN (a + 1, old->len - 1);
      double f = t - a;
      g_array_index (self->values, double, i) = old->len == 0 ? self->min
        : g_array_index (old, double, a) * (1 - f) + g_array_index (old, double, b) * f;
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[CHANGED], 0);
}

void
cru_gradient_editor_apply_preset (CruGradientEditor *self, CruGradientPreset preset)
{
  guint n;
  double lo, hi, mid;

  g_return_if_fail (CRU_IS_GRADIENT_EDITOR (self));
  n = MAX (self->values->len, 2);
  g_array_set_size (self->values, n);
  /* Presets span the middle of the range: 0..1 for t, weights stay positive. */
  lo = MAX (self->min, 0);
  hi = MIN (self->max, 1);
  if (hi <= lo)
    hi = self->max;
  mid = (lo + hi) / 2;
  for (guint i = 0; i < n; i++)
    {
      double t = (double) i / (n - 1), v;
      switch (preset)
        {
        case CRU_GRADIENT_RAMP_UP:   v = lo + t * (hi - lo); break;
        case CRU_GRADIENT_RAMP_DOWN: v = hi - t * (hi - lo); break;
        case CRU_GRADIENT_V:         v = lo + fabs (2 * t - 1) * (hi - lo); break;
        case CRU_GRADIENT_LAMBDA:    v = hi - fabs (2 * t - 1) * (hi - lo); break;
        case CRU_GRADIENT_CONSTANT:
        default:                     v = mid; break;
        }
      g_array_index (self->values, double, i) = round (v * 100) / 100;
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[CHANGED], 0);
}
