/* cli-recipe.c — `import` (mergekit YAML → .crucible) and `export` (.crucible → YAML)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cli-common.h"
#include "cru-graph.h"
#include "cru-error.h"

#include <glib/gi18n-lib.h>
#include <stdio.h>
#include <string.h>

/* Refuses to replace an existing file unless --force was given. */
static gboolean
check_target (const char *path, gboolean force, GError **error)
{
  if (strcmp (path, "-") == 0 || force || !g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  g_set_error (error, CRU_ERROR, CRU_ERROR_EXISTS,
               _("%s already exists; add --force to replace it"), path);
  return FALSE;
}

static gboolean
write_text (const char *path, const char *text, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (strcmp (path, "-") == 0)
    {
      fputs (text, stdout);
      return fflush (stdout) == 0;
    }
  if (!g_file_set_contents (path, text, -1, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("Could not write %s: %s"), path,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_common (int *argc, char ***argv, const char *summary, const char *parameter,
              char **output, gboolean *force)
{
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, output,
      N_("Where to write (“-” = standard output)"), N_("FILE") },
    { "force", 'f', 0, G_OPTION_ARG_NONE, force, N_("Replace the file if it exists"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (parameter);

  g_option_context_set_summary (ctx, summary);
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  if (!cru_cli_parse_options (ctx, argc, argv))
    return FALSE;
  if (*argc != 2 || *output == NULL)
    {
      g_printerr ("crucible-cli: %s\n", *argc != 2 ? _("give exactly one input file")
                                                   : _("say where to write with -o FILE"));
      g_printerr (_("Run “crucible-cli %s --help” for usage.\n"), (*argv)[0]);
      return FALSE;
    }
  return TRUE;
}

int
cru_cli_import (int argc, char **argv)
{
  g_autofree char *output = NULL;
  gboolean force = FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruGraph) graph = NULL;
  g_autofree char *text = NULL;

  if (!parse_common (&argc, &argv, _("Convert a mergekit YAML recipe into a Crucible graph."),
                     "CONFIG.yml -o GRAPH.crucible", &output, &force))
    return CRU_EXIT_USAGE;
  if (!check_target (output, force, &error))
    return cru_cli_fail (error);
  graph = cru_graph_import_mergekit_file (argv[1], warnings, &error);
  for (guint i = 0; i < warnings->len; i++)
    g_printerr (_("crucible-cli: warning: %s\n"), (char *) warnings->pdata[i]);
  if (graph == NULL)
    return cru_cli_fail (error);
  if (strcmp (output, "-") == 0)
    {
      g_autofree char *cwd = g_get_current_dir ();
      text = cru_graph_save_data (graph, cwd);
      if (!write_text (output, text, &error))
        return cru_cli_fail (error);
    }
  else if (!cru_graph_save_file (graph, output, &error))
    return cru_cli_fail (error);
  return CRU_EXIT_OK;
}

int
cru_cli_export (int argc, char **argv)
{
  g_autofree char *output = NULL;
  gboolean force = FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autofree char *yaml = NULL;
  g_autofree char *base_dir = NULL;

  if (!parse_common (&argc, &argv, _("Convert a Crucible graph into a mergekit YAML recipe."),
                     "GRAPH.crucible -o CONFIG.yml", &output, &force))
    return CRU_EXIT_USAGE;
  if (!check_target (output, force, &error))
    return cru_cli_fail (error);
  if (!cru_graph_load_file (graph, argv[1], &error))
    return cru_cli_fail (error);
  /* Model paths are written relative to where the recipe lands. */
  if (strcmp (output, "-") == 0)
    base_dir = g_get_current_dir ();
  else
    {
      g_autofree char *abs = g_canonicalize_filename (output, NULL);
      base_dir = g_path_get_dirname (abs);
    }
  yaml = cru_graph_export_mergekit (graph, base_dir, &error);
  if (yaml == NULL)
    return cru_cli_fail (error);
  if (!write_text (output, yaml, &error))
    return cru_cli_fail (error);
  return CRU_EXIT_OK;
}
