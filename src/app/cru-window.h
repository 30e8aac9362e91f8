/* cru-window.h — the Crucible main window: header bar, palette, canvas, inspector,
 * status strip, welcome page
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>
#include "cru-graph.h"
#include "cru-graph-view.h"
#include "cru-evaluate-dialog.h"
#include "cru-inspector.h"
#include "cru-plan.h"

G_BEGIN_DECLS

#define CRU_TYPE_WINDOW (cru_window_get_type ())
G_DECLARE_FINAL_TYPE (CruWindow, cru_window, CRU, WINDOW, AdwApplicationWindow)

CruWindow    *cru_window_new              (GtkApplication *app);
CruGraph     *cru_window_get_graph        (CruWindow *self);
CruGraphView *cru_window_get_graph_view   (CruWindow *self);
CruInspector *cru_window_get_inspector    (CruWindow *self);
/* Loads a .crucible file into the window's graph and shows the editor. */
gboolean      cru_window_open_file        (CruWindow *self, const char *path, GError **error);
/* Shows the editor with the current graph (for a new, empty graph). */
void          cru_window_show_editor      (CruWindow *self);
void          cru_window_show_welcome     (CruWindow *self);
gboolean      cru_window_is_welcome_shown (CruWindow *self);
/* The last compiled plan (NULL before the first compile finishes). */
CruPlan      *cru_window_get_plan         (CruWindow *self);
/* Compiles now (cancelling a pending one); "plan-ready" is emitted when it finishes. */
void          cru_window_recompile        (CruWindow *self);
gboolean      cru_window_is_compiling     (CruWindow *self);
/* Runs the current plan; "run-finished" (gboolean success, const char *message) is emitted
 * at the end. FALSE when the plan is not runnable. @confirmed skips the overwrite question. */
gboolean      cru_window_run              (CruWindow *self, gboolean confirmed);
void          cru_window_cancel_run       (CruWindow *self);
gboolean      cru_window_is_running       (CruWindow *self);
void          cru_window_toast            (CruWindow *self, const char *message);
/* Opens the Evaluate dialog (perplexity on a text) for a model folder or file. */
CruEvaluateDialog *cru_window_evaluate    (CruWindow *self, const char *model_path);
/* Text of the status strip (for tests and the screenshot check). */
const char   *cru_window_get_status_text  (CruWindow *self);

/* Where bundled data lives: PKGDATADIR when installed, else the source tree's data/. */
char         *cru_find_data_dir           (const char *subdir);
/* GSettings for the app, or NULL when the schema is not installed. */
GSettings    *cru_settings_new            (void);

G_END_DECLS
