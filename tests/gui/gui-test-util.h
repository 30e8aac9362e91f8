/* gui-test-util.h — helpers shared by the GUI tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>
#include "cru-window.h"

/* gtk_init_check + adw_init; FALSE when there is no display (tests then skip). */
gboolean   gui_test_init        (int *argc, char ***argv);
gboolean   gui_test_have_display (void);
/* Skips the current test with a message when there is no display; returns TRUE then. */
gboolean   gui_test_skip_without_display (void);
/* Iterates the main loop until @cond returns TRUE or @timeout_ms passes. */
gboolean   gui_test_wait        (gboolean (*cond) (gpointer), gpointer data, guint timeout_ms);
void       gui_test_spin        (guint ms);
/* A 1400×900 window, presented, with @example (file name part, e.g. "ties") loaded or NULL. */
CruWindow *gui_test_window_new  (const char *example);
/* Waits until the window's plan has compiled (after the last edit). */
gboolean   gui_test_wait_plan   (CruWindow *window);
char      *gui_test_example     (const char *name);
guint      gui_test_first_node  (CruGraph *graph, CruNodeKind kind);
