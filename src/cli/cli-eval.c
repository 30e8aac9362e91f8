/* cli-eval.c — placeholder until its command is implemented */
#include "cli-common.h"

int
cru_cli_eval (int argc, char **argv)
{
  g_printerr ("crucible-cli: “eval” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

int
cru_cli_moe (int argc, char **argv)
{
  g_printerr ("crucible-cli: “moe” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

