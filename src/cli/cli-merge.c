/* cli-merge.c — placeholder until its command is implemented */
#include "cli-common.h"

int
cru_cli_plan (int argc, char **argv)
{
  g_printerr ("crucible-cli: “plan” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

int
cru_cli_merge (int argc, char **argv)
{
  g_printerr ("crucible-cli: “merge” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

int
cru_cli_run (int argc, char **argv)
{
  g_printerr ("crucible-cli: “run” is not implemented yet\n");
  return CRU_EXIT_FAILED;
}

