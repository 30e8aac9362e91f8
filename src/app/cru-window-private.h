/* cru-window-private.h — the window's state shared by its files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-window.h"
#include "cru-engine.h"

G_BEGIN_DECLS

struct _CruWindow {
  AdwApplicationWindow parent_instance;

  CruGraph        *graph;
  GSettings       *settings;
  CruPlan         *plan;
  GCancellable    *compile_cancellable;
  guint            compile_timeout;
  gboolean         compiling;
  char            *status_text;

  /* running */
  GCancellable    *run_cancellable;
  GMutex           progress_lock;
  CruProgress      progress;        /* latest, tensor copied into progress_tensor */
  char            *progress_tensor;
  gboolean         progress_pending;
  guint            progress_idle;
  guint            last_node;
  char            *run_output;

  /* template children */
  AdwToastOverlay *toast_overlay;
  AdwWindowTitle  *window_title;
  GtkWidget       *main_stack;
  GtkWidget       *examples_group;
  GtkWidget       *recent_group;
  GtkWidget       *palette_box;
  GtkWidget       *add_model_button;
  CruGraphView    *graph_view;
  CruInspector    *inspector;
  GtkWidget       *run_button;
  GtkWidget       *cancel_button;
  GtkWidget       *estimate_label;
  GtkWidget       *problems_label;
  GtkWidget       *run_progress;
  GtkWidget       *run_detail;
};

/* cru-window-actions.c */
void _cru_window_install_actions (GtkWidgetClass *klass);
void _cru_window_update_actions  (CruWindow *self);
void _cru_window_add_recent      (CruWindow *self, const char *path);
void _cru_window_populate_welcome (CruWindow *self);
void _cru_window_setup_add_model (CruWindow *self);

/* cru-window-run.c */
void _cru_window_update_status   (CruWindow *self);
void _cru_window_run_dispose     (CruWindow *self);

G_END_DECLS
