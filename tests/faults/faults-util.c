/* faults-util.c — helpers of the fault-injection suite
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "faults-util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

void
faults_write_model (const char *dir, guint megabytes, guint64 seed)
{
  TestModelSpec spec;
  guint64 per_layer, embed;

  test_spec_init (&spec);
  spec.hidden = 256;
  spec.intermediate = 704;
  spec.vocab = 2048;
  spec.seed = seed;
  per_layer = 4ull * (4 * 256 * 256 + 3 * 256 * 704 + 2 * 256);
  embed = 2ull * 4 * 2048 * 256;
  spec.layers = (int) MAX (1, ((guint64) megabytes * 1000000 - MIN (embed, (guint64) megabytes
                                                                   * 1000000)) / per_layer);
  test_write_model (dir, &spec);
}

CruGraph *
faults_linear_graph (const char *a, const char *b, const char *out)
{
  CruGraph *g = cru_graph_new ();
  guint ma = test_add_model (g, a);
  guint mb = test_add_model (g, b);
  guint lin = test_add_method (g, "linear");

  test_set_link (g, test_link (g, ma, lin, CRU_PORT_MODEL), "weight", 0.5);
  test_set_link (g, test_link (g, mb, lin, CRU_PORT_MODEL), "weight", 0.5);
  test_add_output (g, out, lin);
  return g;
}

void
faults_write_recipe (const char *path, const char *a, const char *b)
{
  g_autofree char *text = g_strdup_printf ("merge_method: linear\n"
                                           "dtype: float32\n"
                                           "models:\n"
                                           "  - model: %s\n"
                                           "    parameters:\n"
                                           "      weight: 0.5\n"
                                           "  - model: %s\n"
                                           "    parameters:\n"
                                           "      weight: 0.5\n", a, b);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static GPtrArray *
cli_argv (va_list ap)
{
  GPtrArray *argv = g_ptr_array_new ();
  const char *cli = g_getenv ("CRU_CLI");
  const char *arg;

  g_assert_nonnull (cli);
  g_ptr_array_add (argv, (char *) cli);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);
  return argv;
}

static int
spawn_sync (GPtrArray *argv, GSpawnChildSetupFunc setup, char **out, char **err)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *o = NULL, *e = NULL;
  int status = 0;

  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, setup, NULL,
                               &o, &e, &status, &error));
  g_assert_no_error (error);
  g_test_message ("crucible-cli %s → status %d\n%s", (char *) argv->pdata[1], status, e);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}

int
faults_run_cli (char **out, char **err, ...)
{
  g_autoptr(GPtrArray) argv = NULL;
  va_list ap;

  va_start (ap, err);
  argv = cli_argv (ap);
  va_end (ap);
  return spawn_sync (argv, NULL, out, err);
}

static void
become_nobody (gpointer data)
{
  struct passwd *pw = getpwnam ("nobody");
  uid_t uid = pw ? pw->pw_uid : 65534;
  gid_t gid = pw ? pw->pw_gid : 65534;

  if (setgroups (0, NULL) != 0 || setgid (gid) != 0 || setuid (uid) != 0)
    _exit (99);
}

gboolean
faults_can_drop_privileges (char **why)
{
  pid_t pid;
  int status;

  if (geteuid () != 0)
    return TRUE;
  pid = fork ();
  if (pid == 0)
    {
      become_nobody (NULL);
      _exit (0);
    }
  if (pid < 0 || waitpid (pid, &status, 0) != pid || !WIFEXITED (status)
      || WEXITSTATUS (status) != 0)
    {
      *why = g_strdup ("running as root, and switching to the user nobody is not permitted here");
      return FALSE;
    }
  return TRUE;
}

int
faults_run_cli_unprivileged (char **out, char **err, ...)
{
  g_autoptr(GPtrArray) argv = NULL;
  va_list ap;

  va_start (ap, err);
  argv = cli_argv (ap);
  va_end (ap);
  return spawn_sync (argv, geteuid () == 0 ? become_nobody : NULL, out, err);
}

static void
snapshot_into (GPtrArray *lines, const char *root, const char *rel)
{
  g_autofree char *path = rel ? g_build_filename (root, rel, NULL) : g_strdup (root);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child_rel = rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
      g_autofree char *child = g_build_filename (root, child_rel, NULL);
      struct stat sb;

      if (lstat (child, &sb) != 0)
        continue;
      g_ptr_array_add (lines, g_strdup_printf ("%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT ".%09ld",
                                               child_rel, (gint64) sb.st_size,
                                               (gint64) sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec));
      if (S_ISDIR (sb.st_mode))
        snapshot_into (lines, root, child_rel);
    }
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

char *
faults_snapshot (const char *dir)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);

  snapshot_into (lines, dir, NULL);
  g_ptr_array_sort (lines, compare_strings);
  g_ptr_array_add (lines, NULL);
  return g_strjoinv ("\n", (char **) lines->pdata);
}

char *
faults_list (const char *dir)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

static char *no_namespace;   /* why there is no private mount namespace, or NULL */

void
faults_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  /* Our own mount namespace, entered while the process has one thread: mounts disappear
   * with the process, even if a test crashes. */
  if (unshare (CLONE_NEWNS) != 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    no_namespace = g_strdup_printf ("cannot create a private mount namespace (%s)",
                                    g_strerror (errno));
}

gboolean
faults_mount_tmpfs (const char *dir, guint64 bytes, char **why)
{
  g_autofree char *options = g_strdup_printf ("size=%" G_GUINT64_FORMAT ",mode=0755", bytes);

  if (no_namespace)
    {
      *why = g_strdup (no_namespace);
      return FALSE;
    }
  if (mount ("tmpfs", dir, "tmpfs", 0, options) != 0)
    {
      *why = g_strdup_printf ("cannot mount a tmpfs (%s)", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

void
faults_unmount (const char *dir)
{
  umount2 (dir, MNT_DETACH);
}

void
faults_fill_disk (const char *dir, guint64 leave)
{
  g_autofree char *path = g_build_filename (dir, "filler", NULL);
  struct statvfs sv;
  guint64 avail;
  int fd;

  g_assert_cmpint (statvfs (dir, &sv), ==, 0);
  avail = (guint64) sv.f_bavail * sv.f_frsize;
  fd = g_open (path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  g_assert_cmpint (fd, >=, 0);
  if (avail > leave)
    {
      static char block[65536];
      guint64 todo = avail - leave;
      while (todo > 0)
        {
          ssize_t n = write (fd, block, MIN (todo, sizeof block));
          if (n <= 0)
            break;
          todo -= (guint64) n;
        }
    }
  close (fd);
}
