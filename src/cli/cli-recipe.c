/* cli-recipe.c — placeholder until its command is implemented */
#include "cli-common.h"

int
cru_cli_import (int argc, char **argv)
{
  g_printerr ("crucible-cli: “import” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

int
cru_cli_export (int argc, char **argv)
{
  g_printerr ("crucible-cli: “export” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

