/* main.c — the crucible GUI entry point
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <locale.h>
#include "cru-config.h"
#include "cru-application.h"
#include "cru-safetensors.h"

int
main (int argc, char **argv)
{
  g_autoptr(CruApplication) app = NULL;
  const char *localedir = g_getenv ("CRU_LOCALEDIR");
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  app = cru_application_new ();
  status = g_application_run (G_APPLICATION (app), argc, argv);
  /* A cancelled merge's partial output may still be being deleted in the background. */
  cru_output_dir_wait_discarded ();
  return status;
}
