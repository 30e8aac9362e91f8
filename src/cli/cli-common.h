/* cli-common.h — shared helpers of crucible-cli's commands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

/* Every command: returns the process exit status. argv[0] is the command name. */
typedef int (*CruCliCommand) (int argc, char **argv);

int cru_cli_inspect (int argc, char **argv);
int cru_cli_convert (int argc, char **argv);
int cru_cli_plan    (int argc, char **argv);
int cru_cli_merge   (int argc, char **argv);
int cru_cli_run     (int argc, char **argv);
int cru_cli_import  (int argc, char **argv);
int cru_cli_export  (int argc, char **argv);
int cru_cli_eval    (int argc, char **argv);
int cru_cli_moe     (int argc, char **argv);

/* Exit statuses: 0 ok, 1 the operation failed (bad input, I/O), 2 usage error,
 * 3 the plan is invalid, 130 cancelled by Ctrl+C. */
enum { CRU_EXIT_OK = 0, CRU_EXIT_FAILED = 1, CRU_EXIT_USAGE = 2, CRU_EXIT_INVALID = 3,
       CRU_EXIT_CANCELLED = 130 };

/* Prints "crucible-cli: <message>" to stderr and returns CRU_EXIT_FAILED. */
int      cru_cli_fail        (const GError *error);
/* Parses "5GB", "500MB", "1.5G", "123" (bytes; decimal units like transformers, also
 * KiB/MiB/GiB). */
gboolean cru_cli_parse_size  (const char *text, guint64 *out, GError **error);
/* "1.5 GB" style (decimal). */
char    *cru_cli_format_size (guint64 bytes);
/* Parses options with GOptionContext; prints usage errors; returns FALSE on error. */
gboolean cru_cli_parse_options (GOptionContext *ctx, int *argc, char ***argv);
/* A GCancellable cancelled by SIGINT/SIGTERM (installed on first call). */
GCancellable *cru_cli_get_cancellable (void);
