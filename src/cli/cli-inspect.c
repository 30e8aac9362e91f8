/* cli-inspect.c — placeholder until its command is implemented */
#include "cli-common.h"

int
cru_cli_inspect (int argc, char **argv)
{
  g_printerr ("crucible-cli: “inspect” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

int
cru_cli_convert (int argc, char **argv)
{
  g_printerr ("crucible-cli: “convert” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

