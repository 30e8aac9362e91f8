/* cru-application.h — the Crucible application: command line (FILE, --demo,
 * --screenshot), about, shortcuts
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>
#include "cru-window.h"

G_BEGIN_DECLS

#define CRU_TYPE_APPLICATION (cru_application_get_type ())
G_DECLARE_FINAL_TYPE (CruApplication, cru_application, CRU, APPLICATION, AdwApplication)

CruApplication *cru_application_new (void);

/* Path of a bundled example whose file name contains @name ("ties"), or NULL. */
char *cru_find_example (const char *name);
/* Loads the TIES example with its output under $XDG_CACHE_HOME/crucible/demo-output. */
gboolean cru_window_open_demo (CruWindow *window, GError **error);
/* Renders @window to a PNG file (what --screenshot does once the window is ready). */
gboolean cru_window_save_screenshot (CruWindow *window, const char *path, GError **error);

G_END_DECLS
