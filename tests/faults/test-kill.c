/* test-kill.c — crucible-cli killed (SIGKILL) or interrupted (SIGINT, SIGTERM) in the middle
 * of a merge: the target is absent or the previous complete one; a killed run leaves only a
 * temporary folder, which the next run reports and cleans up.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "faults-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *models;
static char *recipe;      /* linear merge of models/a and models/b */
static char *reference;   /* its output, merged once without interruption */

typedef struct {
  GPid  pid;
  int   out_fd;
  int   err_fd;
} Child;

static void
spawn_merge (Child *c, const char *target, gboolean overwrite)
{
  g_autoptr(GError) error = NULL;
  const char *argv[] = { g_getenv ("CRU_CLI"), "merge", recipe, target, "--threads", "1",
                         "--json-progress", overwrite ? "--overwrite" : NULL, NULL };

  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &c->pid,
                                           NULL, &c->out_fd, &c->err_fd, &error));
  g_assert_no_error (error);
}

/* Reads progress lines until the merge phase has written something, or the child ends. */
static gboolean
wait_for_merge_progress (Child *c)
{
  g_autoptr(GString) pending = g_string_new (NULL);
  char buf[4096];
  ssize_t n;

  while ((n = read (c->out_fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    {
      char *nl;

      if (n < 0)
        continue;
      g_string_append_len (pending, buf, n);
      while ((nl = strchr (pending->str, '\n')) != NULL)
        {
          g_autofree char *line = g_strndup (pending->str, nl - pending->str);
          g_autoptr(JsonParser) parser = json_parser_new ();
          g_string_erase (pending, 0, nl - pending->str + 1);
          if (json_parser_load_from_data (parser, line, -1, NULL))
            {
              JsonObject *o = json_node_get_object (json_parser_get_root (parser));
              /* The first report with data written (50 ms in): early enough that a fast
               * machine is still in the middle of the merge. */
              if (g_str_equal (json_object_get_string_member (o, "phase"), "merge")
                  && json_object_get_int_member (o, "bytes_done") > 0
                  && json_object_get_int_member (o, "tensors_done")
                       < json_object_get_int_member (o, "tensors_total"))
                return TRUE;
            }
        }
    }
  return FALSE;
}

static int
finish (Child *c, char **err)
{
  g_autoptr(GString) text = g_string_new (NULL);
  char buf[4096];
  ssize_t n;
  int status;

  while ((n = read (c->err_fd, buf, sizeof buf)) > 0)
    g_string_append_len (text, buf, n);
  close (c->out_fd);
  close (c->err_fd);
  g_assert_cmpint (waitpid (c->pid, &status, 0), ==, c->pid);
  g_spawn_close_pid (c->pid);
  if (err)
    *err = g_strdup (text->str);
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

/* The names in @dir that are temporary folders of @target. */
static GPtrArray *
temporary_folders (const char *dir, const char *target)
{
  g_autofree char *base = g_path_get_basename (target);
  g_autofree char *prefix = g_strdup_printf (".%s.crucible-tmp-", base);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, prefix))
      g_ptr_array_add (found, g_build_filename (dir, name, NULL));
  return found;
}

static void
assert_same_model (const char *a, const char *b)
{
  g_autofree char *fa = g_build_filename (a, "model.safetensors", NULL);
  g_autofree char *fb = g_build_filename (b, "model.safetensors", NULL);

  g_assert_true (test_files_equal (fa, fb));
}

static void
kill_case (gboolean previous)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *target = g_build_filename (root, "merged", NULL);
  g_autofree char *before = NULL;
  g_autofree char *err = NULL;
  g_autofree char *note = NULL;
  g_autoptr(GPtrArray) leftovers = NULL;
  Child c;

  if (previous)
    {
      g_assert_cmpint (faults_run_cli (NULL, NULL, "merge", recipe, target, "--threads", "1",
                                       NULL), ==, 0);
      before = faults_snapshot (target);
    }
  spawn_merge (&c, target, previous);
  g_assert_true (wait_for_merge_progress (&c));
  g_assert_cmpint (kill (c.pid, SIGKILL), ==, 0);
  g_assert_cmpint (finish (&c, NULL), ==, 128 + SIGKILL);

  /* The target is absent, or the previous complete model, untouched. */
  if (previous)
    {
      g_autofree char *after = faults_snapshot (target);
      g_assert_cmpstr (after, ==, before);
    }
  else
    g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  /* The only leftover is the killed run's temporary folder. */
  leftovers = temporary_folders (root, target);
  g_assert_cmpuint (leftovers->len, ==, 1);
  {
    g_autofree char *listing = faults_list (root);
    g_autofree char *tmp_base = g_path_get_basename (leftovers->pdata[0]);
    g_autofree char *expected = previous ? g_strdup_printf ("%s merged", tmp_base)
                                         : g_strdup (tmp_base);
    g_assert_cmpstr (listing, ==, expected);
  }

  /* The next run reports it, removes it, and writes the complete model. */
  note = g_strdup_printf ("note: An interrupted run left “%s” behind; it is cleaned up when "
                          "this run starts\n", (char *) leftovers->pdata[0]);
  g_assert_cmpint (faults_run_cli (NULL, &err, "merge", recipe, target, "--threads", "2",
                                   previous ? "--overwrite" : NULL, NULL), ==, 0);
  g_assert_nonnull (strstr (err, note));
  g_assert_false (g_file_test (leftovers->pdata[0], G_FILE_TEST_EXISTS));
  {
    g_autoptr(GPtrArray) again = temporary_folders (root, target);
    g_autofree char *listing = faults_list (root);
    g_assert_cmpuint (again->len, ==, 0);
    g_assert_cmpstr (listing, ==, "merged");
  }
  assert_same_model (target, reference);
}

static void
test_sigkill_mid_merge (void)
{
  kill_case (FALSE);
}

static void
test_sigkill_mid_overwrite_keeps_previous (void)
{
  kill_case (TRUE);
}

static void
interrupt_case (int sig)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *target = g_build_filename (root, "merged", NULL);
  g_autofree char *err = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *listing = NULL;
  Child c;

  spawn_merge (&c, target, FALSE);
  g_assert_true (wait_for_merge_progress (&c));
  g_assert_cmpint (kill (c.pid, sig), ==, 0);
  g_assert_cmpint (finish (&c, &err), ==, 130);
  expected = g_strdup_printf ("crucible-cli: cancelled; nothing was written to %s\n", target);
  g_assert_nonnull (strstr (err, expected));
  listing = faults_list (root);
  g_assert_cmpstr (listing, ==, "");
}

static void
test_sigint_cancels_cleanly (void)
{
  interrupt_case (SIGINT);
}

static void
test_sigterm_cancels_cleanly (void)
{
  interrupt_case (SIGTERM);
}

/* ---- the leftovers themselves ---- */

static void
test_live_run_is_not_a_leftover (void)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *target = g_build_filename (root, "merged", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruOutputDir) od = cru_output_dir_begin (target, FALSE, &error);
  g_autoptr(GPtrArray) stale = NULL;

  g_assert_no_error (error);
  stale = cru_output_dir_find_stale (target);
  g_assert_cmpuint (stale->len, ==, 0);
  g_assert_cmpuint (cru_output_dir_clean_stale (target), ==, 0);
  g_assert_true (g_file_test (cru_output_dir_get_tmp_path (od), G_FILE_TEST_IS_DIR));
}

static void
test_interrupted_overwrite_restores_previous (void)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *target = g_build_filename (root, "merged", NULL);
  g_autofree char *old = g_build_filename (root, ".merged.crucible-old-Ab12Cd", NULL);
  g_autofree char *marker = g_build_filename (old, "model.safetensors", NULL);
  g_autofree char *restored = g_build_filename (target, "model.safetensors", NULL);
  g_autoptr(GPtrArray) stale = NULL;

  /* Killed between moving the previous model aside and moving the new one in. */
  g_assert_cmpint (g_mkdir (old, 0755), ==, 0);
  g_assert_true (g_file_set_contents (marker, "previous", -1, NULL));
  stale = cru_output_dir_find_stale (target);
  g_assert_cmpuint (stale->len, ==, 1);
  g_assert_cmpstr (stale->pdata[0], ==, old);
  g_assert_cmpuint (cru_output_dir_clean_stale (target), ==, 1);
  g_assert_true (g_file_test (restored, G_FILE_TEST_IS_REGULAR));
  g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));

  /* With the target in place, a moved-aside copy is just removed. */
  g_assert_cmpint (g_mkdir (old, 0755), ==, 0);
  g_assert_cmpuint (cru_output_dir_clean_stale (target), ==, 1);
  g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (restored, G_FILE_TEST_IS_REGULAR));
}

int
main (int argc, char **argv)
{
  g_autofree char *a = NULL, *b = NULL;

  faults_init (&argc, &argv);
  models = test_tmpdir ();
  a = g_build_filename (models, "a", NULL);
  b = g_build_filename (models, "b", NULL);
  recipe = g_build_filename (models, "linear.yml", NULL);
  reference = g_build_filename (models, "reference", NULL);
  /* Big enough that a single-threaded merge reports progress several times. */
  faults_write_model (a, 100, 1);
  faults_write_model (b, 100, 2);
  faults_write_recipe (recipe, a, b);
  g_assert_cmpint (faults_run_cli (NULL, NULL, "merge", recipe, reference, NULL), ==, 0);

  g_test_add_func ("/faults/kill/sigkill-mid-merge-leaves-only-a-reported-temporary-folder",
                   test_sigkill_mid_merge);
  g_test_add_func ("/faults/kill/sigkill-mid-overwrite-keeps-the-previous-model",
                   test_sigkill_mid_overwrite_keeps_previous);
  g_test_add_func ("/faults/kill/sigint-cancels-and-leaves-nothing", test_sigint_cancels_cleanly);
  g_test_add_func ("/faults/kill/sigterm-cancels-and-leaves-nothing",
                   test_sigterm_cancels_cleanly);
  g_test_add_func ("/faults/kill/leftovers/live-run-is-not-a-leftover",
                   test_live_run_is_not_a_leftover);
  g_test_add_func ("/faults/kill/leftovers/interrupted-overwrite-restores-previous",
                   test_interrupted_overwrite_restores_previous);
  return g_test_run ();
}
