/* faults-util.h — helpers of the fault-injection suite: models big enough to interrupt,
 * running crucible-cli, folder snapshots, a small real filesystem.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "engine-test-util.h"

/* Sanitized builds run several times slower: latency limits are only asserted without. */
#ifdef CRU_TEST_SANITIZED
#define FAULTS_SANITIZED TRUE
#else
#define FAULTS_SANITIZED FALSE
#endif

/* g_test_init, and a private mount namespace where the process may have one. */
void     faults_init (int *argc, char ***argv);

/* Writes a Llama-shaped model of about @megabytes MB (f32) into @dir. */
void     faults_write_model (const char *dir, guint megabytes, guint64 seed);
/* A graph merging @a and @b linearly into @out. */
CruGraph *faults_linear_graph (const char *a, const char *b, const char *out);
/* A mergekit YAML recipe (linear, two models) written to @path. */
void     faults_write_recipe (const char *path, const char *a, const char *b);

/* Runs crucible-cli with the NULL-terminated arguments; returns the exit status (128 + signal
 * when killed). @out and @err may be NULL. */
int      faults_run_cli (char **out, char **err, ...) G_GNUC_NULL_TERMINATED;

/* "name size mtime" of every entry under @dir, sorted: equal snapshots mean nothing was
 * created, removed or changed there. */
char    *faults_snapshot (const char *dir);
/* Names in @dir (not recursive), sorted, joined with spaces. */
char    *faults_list (const char *dir);

/* Mounts a tmpfs of @bytes at @dir (an existing empty folder) in this process's own mount
 * namespace; FALSE (with @why set) where the process may not mount. */
gboolean faults_mount_tmpfs (const char *dir, guint64 bytes, char **why);
void     faults_unmount (const char *dir);
/* Fills the filesystem of @dir with a file until at most @leave bytes are free. */
void     faults_fill_disk (const char *dir, guint64 leave);

/* Runs @argv as the unprivileged user nobody when this process is root (root reads files
 * whatever their permissions). FALSE with @why when that is impossible here. */
gboolean faults_can_drop_privileges (char **why);
int      faults_run_cli_unprivileged (char **out, char **err, ...) G_GNUC_NULL_TERMINATED;
