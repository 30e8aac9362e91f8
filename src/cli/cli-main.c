/* cli-main.c — crucible-cli: the engine without a window
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-config.h"
#include "cli-common.h"
#include "cru-safetensors.h"

#include <glib/gi18n-lib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char   *name;
  CruCliCommand func;
  const char   *summary;
} commands[] = {
  { "inspect", cru_cli_inspect, N_("Show a model's family, layers, size, dtypes and shards") },
  { "convert", cru_cli_convert, N_("Re-save a model in another dtype or sharding") },
  { "plan",    cru_cli_plan,    N_("Validate a graph or mergekit YAML and print the estimates") },
  { "merge",   cru_cli_merge,   N_("Run a mergekit YAML recipe") },
  { "run",     cru_cli_run,     N_("Run a .crucible graph") },
  { "import",  cru_cli_import,  N_("Convert a mergekit YAML recipe into a .crucible graph") },
  { "export",  cru_cli_export,  N_("Convert a .crucible graph into mergekit YAML") },
  { "eval",    cru_cli_eval,    N_("Perplexity of a model on a text file") },
  { "moe",     cru_cli_moe,     N_("Build a mixture of experts from a mergekit-moe YAML") },
};

static void
print_usage (FILE *out)
{
  fputs (_("Usage: crucible-cli COMMAND [OPTIONS…]\n\nCommands:\n"), out);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-9s %s\n", commands[i].name, _(commands[i].summary));
  fputs (_("\nRun “crucible-cli COMMAND --help” for a command's options.\n"), out);
}

int
main (int argc, char **argv)
{
  const char *localedir = g_getenv ("CRU_LOCALEDIR");

  /* Translated messages, as in the app; CRU_LOCALEDIR=<builddir>/po for uninstalled runs.
   * Machine-readable output (--json, --json-progress) and exit statuses stay the same. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (argc < 2)
    {
      print_usage (stderr);
      return CRU_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      print_usage (stdout);
      return CRU_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("crucible-cli %s\n", CRU_VERSION);
      return CRU_EXIT_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        int status = commands[i].func (argc - 1, argv + 1);
        /* A cancelled run's partial output is deleted in the background: finish that. */
        cru_output_dir_wait_discarded ();
        return status;
      }

  g_printerr (_("crucible-cli: unknown command “%s”\n\n"), argv[1]);
  print_usage (stderr);
  return CRU_EXIT_USAGE;
}
