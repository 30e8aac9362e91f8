/* cli-main.c — crucible-cli: the engine without a window
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-config.h"
#include "cli-common.h"
#include "cru-safetensors.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char   *name;
  CruCliCommand func;
  const char   *summary;
} commands[] = {
  { "inspect", cru_cli_inspect, "Show a model's family, layers, size, dtypes and shards" },
  { "convert", cru_cli_convert, "Re-save a model in another dtype or sharding" },
  { "plan",    cru_cli_plan,    "Validate a graph or mergekit YAML and print the estimates" },
  { "merge",   cru_cli_merge,   "Run a mergekit YAML recipe" },
  { "run",     cru_cli_run,     "Run a .crucible graph" },
  { "import",  cru_cli_import,  "Convert a mergekit YAML recipe into a .crucible graph" },
  { "export",  cru_cli_export,  "Convert a .crucible graph into mergekit YAML" },
  { "eval",    cru_cli_eval,    "Perplexity of a model on a text file" },
  { "moe",     cru_cli_moe,     "Build a mixture of experts from a mergekit-moe YAML" },
};

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: crucible-cli COMMAND [OPTIONS…]\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun “crucible-cli COMMAND --help” for a command's options.\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");

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

  g_printerr ("crucible-cli: unknown command “%s”\n\n", argv[1]);
  print_usage (stderr);
  return CRU_EXIT_USAGE;
}
