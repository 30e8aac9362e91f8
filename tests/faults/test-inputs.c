/* test-inputs.c — inputs that change on disk during a run, output folders that overlap the
 * inputs, unreadable files, symbolic-link loops and paths that are not UTF-8: a clear error
 * (or, for odd names, a run that works), and nothing written.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "faults-util.h"
#include "cru-error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *models;   /* a, b: small models (read-only for the tests) */

static char *
copy_model (const char *dir, const char *name)
{
  g_autofree char *src = g_build_filename (models, name, NULL);
  char *dst = g_build_filename (dir, name, NULL);
  const char *files[] = { "config.json", "model.safetensors" };

  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *from = g_build_filename (src, files[i], NULL);
      g_autofree char *to = g_build_filename (dst, files[i], NULL);
      g_autofree char *data = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (from, &data, &len, NULL));
      g_assert_true (g_file_set_contents (to, data, (gssize) len, NULL));
      g_assert_cmpint (g_chmod (to, 0644), ==, 0);
    }
  return dst;
}

/* ---- inputs changed during the run ---- */

typedef enum { TRUNCATE, MODIFY, REPLACE, REMOVE } Change;

typedef struct {
  Change      change;
  const char *shard;
  gboolean    done;
} ChangeData;

static void
change_on_merge (const CruProgress *p, gpointer user_data)
{
  ChangeData *cd = user_data;

  if (cd->done || p->phase != CRU_RUN_PHASE_MERGE)
    return;
  cd->done = TRUE;
  switch (cd->change)
    {
    case TRUNCATE:
      g_assert_cmpint (truncate (cd->shard, 4096), ==, 0);
      break;
    case MODIFY:
      {
        int fd = g_open (cd->shard, O_WRONLY, 0);
        struct stat sb;
        g_assert_cmpint (fstat (fd, &sb), ==, 0);
        g_assert_cmpint (pwrite (fd, "garbage!", 8, sb.st_size - 8), ==, 8);
        close (fd);
      }
      break;
    case REPLACE:
      {
        g_autofree char *copy = g_strconcat (cd->shard, ".new", NULL);
        g_autofree char *data = NULL;
        gsize len;
        g_assert_true (g_file_get_contents (cd->shard, &data, &len, NULL));
        g_assert_true (g_file_set_contents (copy, data, (gssize) len, NULL));
        g_assert_cmpint (g_rename (copy, cd->shard), ==, 0);
      }
      break;
    case REMOVE:
      g_assert_cmpint (g_unlink (cd->shard), ==, 0);
      break;
    }
}

static void
changed_case (Change change, const char *expected_part)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *a = copy_model (root, "a");
  g_autofree char *b = copy_model (root, "b");
  g_autofree char *out_parent = g_build_filename (root, "out", NULL);
  g_autofree char *target = g_build_filename (out_parent, "merged", NULL);
  g_autofree char *shard = g_build_filename (b, "model.safetensors", NULL);
  g_autoptr(CruGraph) g = faults_linear_graph (a, b, target);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *listing = NULL;
  ChangeData cd = { change, shard, FALSE };
  CruPlanOptions o;

  g_assert_cmpint (g_mkdir (out_parent, 0755), ==, 0);
  cru_plan_options_init (&o);
  o.n_threads = 1;
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_false (cru_engine_run (plan, change_on_merge, &cd, NULL, &error));
  g_assert_true (cd.done);
  g_assert_nonnull (error);
  g_test_message ("error: %s", error->message);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, "b/model.safetensors"));
  g_assert_nonnull (strstr (error->message, expected_part));
  listing = faults_list (out_parent);
  g_assert_cmpstr (listing, ==, "");
}

static void
test_truncated_during_run (void)
{
  /* Either a read comes up short or the final check sees the new size. */
  changed_case (TRUNCATE, "changed on disk");
}

static void
test_modified_during_run (void)
{
  changed_case (MODIFY, " was changed on disk while it was being read, so the result would "
                        "mix old and new weights; nothing was written.");
}

static void
test_replaced_during_run (void)
{
  changed_case (REPLACE, " was replaced or removed while it was being read; nothing was "
                         "written.");
}

static void
test_removed_during_run (void)
{
  changed_case (REMOVE, " was replaced or removed while it was being read; nothing was "
                        "written.");
}

/* ---- output folders that overlap the inputs: refused before running ---- */

static void
overlap_case (const char *out_rel, gboolean overwrite, const char *expected)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *a = copy_model (root, "a");
  g_autofree char *b = copy_model (root, "b");
  g_autofree char *recipe = g_build_filename (root, "linear.yml", NULL);
  g_autofree char *out = g_build_filename (root, out_rel, NULL);
  g_autofree char *link = g_build_filename (root, "link-to-a", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *err = NULL;
  g_autofree char *line = NULL;

  g_assert_cmpint (symlink (a, link), ==, 0);
  faults_write_recipe (recipe, a, b);
  before = faults_snapshot (root);
  g_assert_cmpint (faults_run_cli (NULL, &err, "merge", recipe, out,
                                   overwrite ? "--overwrite" : NULL, NULL), ==, 3);
  line = g_strdup_printf ("error: %s\n", expected);
  {
    g_autoptr(GString) want = g_string_new (line);
    g_string_replace (want, "{root}", root, 0);
    if (strstr (err, want->str) == NULL)
      g_error ("expected “%s” in:\n%s", want->str, err);
  }
  g_assert_nonnull (strstr (err, "crucible-cli: the merge cannot run; fix the errors above\n"));
  after = faults_snapshot (root);
  g_assert_cmpstr (after, ==, before);
}

static void
test_output_is_input (void)
{
  overlap_case ("a", TRUE, "The output folder “{root}/a” is the input model a or inside it; "
                           "choose a folder outside the input models");
}

static void
test_output_inside_input (void)
{
  overlap_case ("a/merged", FALSE, "The output folder “{root}/a/merged” is the input model a "
                                   "or inside it; choose a folder outside the input models");
}

static void
test_output_through_link_into_input (void)
{
  overlap_case ("link-to-a/merged", FALSE, "The output folder “{root}/link-to-a/merged” is "
                                           "the input model a or inside it; choose a folder "
                                           "outside the input models");
}

static void
test_output_replacing_folder_of_inputs (void)
{
  overlap_case (".", TRUE, "The input model a is inside the output folder “{root}”, which "
                           "would be replaced; choose another output folder");
}

/* ---- unreadable files, permission denied, link loops, odd names ---- */

static void
expect_cli_error (int status, const char *err, const char *expected_line)
{
  g_autofree char *line = g_strdup_printf ("crucible-cli: %s\n", expected_line);

  g_assert_cmpint (status, ==, 1);
  if (strstr (err, line) == NULL)
    g_error ("expected “%s” in:\n%s", line, err);
}

static char *
unprivileged_root (void)
{
  char *root = test_tmpdir ();

  /* nobody must reach the files (test_tmpdir makes 0700 folders). */
  g_assert_cmpint (g_chmod (root, 0755), ==, 0);
  return root;
}

static void
test_weights_permission_denied (void)
{
  g_autofree char *why = NULL;
  g_autofree char *root = NULL, *a = NULL, *weights = NULL, *err = NULL;
  int status;

  if (!faults_can_drop_privileges (&why))
    {
      g_test_skip (why);
      return;
    }
  root = unprivileged_root ();
  a = copy_model (root, "a");
  weights = g_build_filename (a, "model.safetensors", NULL);
  g_assert_cmpint (g_chmod (weights, 0), ==, 0);
  status = faults_run_cli_unprivileged (NULL, &err, "inspect", a, NULL);
  expect_cli_error (status, err, "a/model.safetensors: cannot open: Permission denied");
}

static void
test_folder_not_searchable (void)
{
  g_autofree char *why = NULL;
  g_autofree char *root = NULL, *a = NULL, *err = NULL;
  int status;

  if (!faults_can_drop_privileges (&why))
    {
      g_test_skip (why);
      return;
    }
  root = unprivileged_root ();
  a = copy_model (root, "a");
  g_assert_cmpint (g_chmod (a, 0644), ==, 0);
  status = faults_run_cli_unprivileged (NULL, &err, "inspect", a, NULL);
  g_assert_cmpint (g_chmod (a, 0755), ==, 0);
  expect_cli_error (status, err, "a: cannot look inside the folder: Permission denied");
}

static void
test_output_parent_not_writable (void)
{
  g_autofree char *why = NULL;
  g_autofree char *root = NULL, *a = NULL, *b = NULL, *ro = NULL, *out = NULL, *err = NULL;
  g_autofree char *recipe = NULL, *expected = NULL, *listing = NULL;
  int status;

  if (!faults_can_drop_privileges (&why))
    {
      g_test_skip (why);
      return;
    }
  root = unprivileged_root ();
  a = copy_model (root, "a");
  b = copy_model (root, "b");
  ro = g_build_filename (root, "read-only", NULL);
  out = g_build_filename (ro, "merged", NULL);
  recipe = g_build_filename (root, "linear.yml", NULL);
  faults_write_recipe (recipe, a, b);
  g_assert_cmpint (g_mkdir (ro, 0555), ==, 0);
  status = faults_run_cli_unprivileged (NULL, &err, "merge", recipe, out, NULL);
  g_assert_cmpint (status, ==, 3);
  expected = g_strdup_printf ("error: Cannot write into “%s” (Permission denied); choose an "
                              "output folder you can write to\n", ro);
  g_assert_nonnull (strstr (err, expected));
  listing = faults_list (ro);
  g_assert_cmpstr (listing, ==, "");
}

static void
test_model_path_is_link_loop (void)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *loop = g_build_filename (root, "loop", NULL);
  g_autofree char *err = NULL;
  g_autofree char *expected = NULL;
  int status;

  g_assert_cmpint (symlink ("loop", loop), ==, 0);
  expected = g_strdup_printf ("%s: the path is a loop of symbolic links; point it at the model "
                              "folder itself", loop);
  status = faults_run_cli (NULL, &err, "inspect", loop, NULL);
  expect_cli_error (status, err, expected);
}

static void
test_weights_are_link_loop (void)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *a = copy_model (root, "a");
  g_autofree char *weights = g_build_filename (a, "model.safetensors", NULL);
  g_autofree char *err = NULL;
  int status;

  g_assert_cmpint (g_unlink (weights), ==, 0);
  g_assert_cmpint (symlink ("model.safetensors", weights), ==, 0);
  status = faults_run_cli (NULL, &err, "inspect", a, NULL);
  expect_cli_error (status, err,
                    "a/model.safetensors: cannot open: Too many levels of symbolic links");
}

static void
test_non_utf8_paths (void)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *a = copy_model (root, "a");
  g_autofree char *odd = g_build_filename (root, "mod\xe8le", NULL);   /* Latin-1 "modèle" */
  g_autofree char *b = NULL;
  g_autofree char *recipe = g_build_filename (root, "linear.yml", NULL);
  g_autofree char *out = g_build_filename (root, "r\xe9sultat", NULL);
  g_autofree char *card = NULL;
  g_autofree char *text = NULL;
  g_autofree char *json = NULL;
  g_autofree char *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len;

  b = copy_model (root, "b");
  g_assert_cmpint (g_rename (b, odd), ==, 0);

  /* inspect --json stays valid JSON (UTF-8), the name shown with a replacement character. */
  g_assert_cmpint (faults_run_cli (&json, NULL, "inspect", odd, "--json", NULL), ==, 0);
  g_assert_true (g_utf8_validate (json, -1, NULL));
  g_assert_true (json_parser_load_from_data (parser, json, -1, NULL));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (
                     json_parser_get_root (parser)), "name"), ==, "mod\xef\xbf\xbdle");

  /* A merge into a folder whose name is not UTF-8 works, and its files are UTF-8. */
  faults_write_recipe (recipe, a, a);
  g_assert_cmpint (faults_run_cli (NULL, &err, "merge", recipe, out, NULL), ==, 0);
  card = g_build_filename (out, "README.md", NULL);
  g_assert_true (g_file_get_contents (card, &text, &len, NULL));
  g_assert_true (g_utf8_validate (text, (gssize) len, NULL));

  /* Errors naming such a path are UTF-8 too. */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (faults_run_cli (NULL, &err, "merge", recipe, out, NULL), ==, 3);
  g_assert_true (g_utf8_validate (err, -1, NULL));
  g_assert_nonnull (strstr (err, "r\xef\xbf\xbdsultat” already exists"));
}

int
main (int argc, char **argv)
{
  g_autofree char *a = NULL, *b = NULL;

  faults_init (&argc, &argv);
  cru_writer_set_direct_io_enabled (FALSE);
  models = test_tmpdir ();
  a = g_build_filename (models, "a", NULL);
  b = g_build_filename (models, "b", NULL);
  faults_write_model (a, 4, 1);
  faults_write_model (b, 4, 2);

  g_test_add_func ("/faults/inputs/changed-during-run/truncated", test_truncated_during_run);
  g_test_add_func ("/faults/inputs/changed-during-run/modified-in-place",
                   test_modified_during_run);
  g_test_add_func ("/faults/inputs/changed-during-run/replaced", test_replaced_during_run);
  g_test_add_func ("/faults/inputs/changed-during-run/removed", test_removed_during_run);
  g_test_add_func ("/faults/inputs/output-overlap/equal-to-an-input", test_output_is_input);
  g_test_add_func ("/faults/inputs/output-overlap/inside-an-input", test_output_inside_input);
  g_test_add_func ("/faults/inputs/output-overlap/through-a-link-into-an-input",
                   test_output_through_link_into_input);
  g_test_add_func ("/faults/inputs/output-overlap/replacing-a-folder-that-holds-inputs",
                   test_output_replacing_folder_of_inputs);
  g_test_add_func ("/faults/inputs/files/weights-permission-denied",
                   test_weights_permission_denied);
  g_test_add_func ("/faults/inputs/files/folder-not-searchable", test_folder_not_searchable);
  g_test_add_func ("/faults/inputs/files/output-folder-not-writable",
                   test_output_parent_not_writable);
  g_test_add_func ("/faults/inputs/files/model-path-is-a-link-loop",
                   test_model_path_is_link_loop);
  g_test_add_func ("/faults/inputs/files/weights-are-a-link-loop", test_weights_are_link_loop);
  g_test_add_func ("/faults/inputs/files/non-utf8-paths", test_non_utf8_paths);
  return g_test_run ();
}
