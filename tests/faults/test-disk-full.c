/* test-disk-full.c — a disk that fills up before or during the write: a clear error naming
 * the folder and the space needed, no partial output, the target folder untouched.
 *
 * Where the test may mount, a real small tmpfs is filled; the injected-ENOSPC cases always
 * run (they replace the writer's pwrite() and go through the real error path above it).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "faults-util.h"
#include "cru-safetensors-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static char *models;   /* two small models: a, b */

static void
assert_no_space_error (const GError *error, const char *target, guint64 need)
{
  g_autofree char *parent = g_path_get_dirname (target);
  g_autofree char *shown = g_filename_display_name (parent);
  g_autofree char *need_text = g_format_size (need);

  g_assert_nonnull (error);
  g_test_message ("error: %s", error->message);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_NO_SPACE);
  g_assert_true (g_str_has_prefix (error->message, "The disk holding "));
  g_assert_nonnull (strstr (error->message, shown));
  g_assert_nonnull (strstr (error->message, need_text));
  g_assert_nonnull (strstr (error->message, "Nothing was written."));
}

static CruPlan *
compile (const char *out, gboolean overwrite, guint threads)
{
  g_autofree char *a = g_build_filename (models, "a", NULL);
  g_autofree char *b = g_build_filename (models, "b", NULL);
  g_autoptr(CruGraph) g = faults_linear_graph (a, b, out);
  g_autoptr(GError) error = NULL;
  CruPlanOptions o;
  CruPlan *plan;

  cru_plan_options_init (&o);
  o.overwrite = overwrite;
  o.n_threads = threads;
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  return plan;
}

/* A previous complete model in @target, to check that it survives. */
static void
write_previous (const char *target)
{
  g_autofree char *marker = g_build_filename (target, "previous.txt", NULL);

  g_assert_cmpint (g_mkdir_with_parents (target, 0755), ==, 0);
  g_assert_true (g_file_set_contents (marker, "the previous model", -1, NULL));
}

/* ---- a real small filesystem ---- */

typedef struct {
  const char *mnt;
  gboolean    filled;
} FillData;

static void
fill_on_merge (const CruProgress *p, gpointer user_data)
{
  FillData *fd = user_data;

  /* The shards are reserved by now: what is left to write is the rest of the folder. */
  if (!fd->filled && p->phase == CRU_RUN_PHASE_MERGE)
    {
      faults_fill_disk (fd->mnt, 0);
      fd->filled = TRUE;
    }
}

static void
tmpfs_case (gboolean fill_during_run, gboolean previous)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *mnt = g_build_filename (root, "disk", NULL);
  g_autofree char *target = g_build_filename (mnt, "merged", NULL);
  g_autofree char *why = NULL;
  g_autofree char *before = NULL;
  g_autofree char *listing = NULL;
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  FillData fd = { mnt, FALSE };

  g_assert_cmpint (g_mkdir (mnt, 0755), ==, 0);
  if (!faults_mount_tmpfs (mnt, 32 << 20, &why))
    {
      g_autofree char *msg = g_strdup_printf ("%s; the injected-ENOSPC tests cover this path",
                                              why);
      g_test_skip (msg);
      return;
    }
  if (previous)
    write_previous (target);
  before = faults_snapshot (mnt);
  plan = compile (target, previous, 2);
  if (!fill_during_run)
    faults_fill_disk (mnt, 16384);
  g_assert_false (cru_engine_run (plan, fill_during_run ? fill_on_merge : NULL, &fd, NULL,
                                  &error));
  assert_no_space_error (error, target, cru_plan_get_estimate (plan)->output_bytes);
  g_assert_true (fd.filled == fill_during_run);

  /* Only the filler is new; the previous model (or none) is as it was. */
  {
    g_autofree char *filler = g_build_filename (mnt, "filler", NULL);
    g_assert_cmpint (g_unlink (filler), ==, 0);
  }
  listing = faults_snapshot (mnt);
  g_assert_cmpstr (listing, ==, before);
  faults_unmount (mnt);
}

static void
test_tmpfs_full_before_write (void)
{
  tmpfs_case (FALSE, FALSE);
}

static void
test_tmpfs_full_before_write_keeps_previous (void)
{
  tmpfs_case (FALSE, TRUE);
}

static void
test_tmpfs_full_during_write (void)
{
  tmpfs_case (TRUE, FALSE);
}

static void
test_tmpfs_full_during_write_keeps_previous (void)
{
  tmpfs_case (TRUE, TRUE);
}

/* ---- injected ENOSPC in the middle of the tensor data ---- */

static gint64 budget;   /* bytes the injected disk still takes (atomic) */

static ssize_t
pwrite_until_full (int fd, const void *buf, size_t n, off_t offset)
{
  gint64 left = __atomic_sub_fetch (&budget, (gint64) n, __ATOMIC_SEQ_CST);

  if (left < 0)
    {
      errno = ENOSPC;
      return -1;
    }
  return pwrite (fd, buf, n, offset);
}

static void
injected_case (gboolean previous, guint threads, double fraction)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *target = g_build_filename (root, "merged", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  guint64 out_bytes;

  if (previous)
    write_previous (target);
  before = faults_snapshot (root);
  plan = compile (target, previous, threads);
  out_bytes = cru_plan_get_estimate (plan)->output_bytes;
  __atomic_store_n (&budget, (gint64) (out_bytes * fraction), __ATOMIC_SEQ_CST);
  _cru_writer_set_pwrite_func (pwrite_until_full);
  g_assert_false (cru_engine_run (plan, NULL, NULL, NULL, &error));
  _cru_writer_set_pwrite_func (NULL);
  assert_no_space_error (error, target, out_bytes);
  after = faults_snapshot (root);
  g_assert_cmpstr (after, ==, before);
}

static void
test_injected_at_header (void)
{
  injected_case (FALSE, 1, 0.0);
}

static void
test_injected_mid_tensor (void)
{
  injected_case (FALSE, 1, 0.5);
}

static void
test_injected_mid_tensor_threads (void)
{
  injected_case (FALSE, 4, 0.37);
}

static void
test_injected_keeps_previous (void)
{
  injected_case (TRUE, 2, 0.8);
}

/* ---- the plan refuses what cannot fit ---- */

static void
test_plan_refuses_when_too_small (void)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *target = g_build_filename (root, "merged", NULL);
  g_autofree char *a = g_build_filename (models, "a", NULL);
  g_autofree char *b = g_build_filename (models, "b", NULL);
  g_autoptr(CruGraph) g = faults_linear_graph (a, b, target);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = NULL;
  const CruProblem *p;

  g_setenv ("CRU_TEST_DISK_FREE", "1000", TRUE);
  plan = cru_plan_compile (g, NULL, NULL, &error);
  g_unsetenv ("CRU_TEST_DISK_FREE");
  g_assert_no_error (error);
  g_assert_false (cru_plan_is_runnable (plan));
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "Not enough disk space");
  g_assert_nonnull (p);
  {
    g_autofree char *need = g_format_size (cru_plan_get_estimate (plan)->output_bytes);
    g_autofree char *have = g_format_size (1000);
    expected = g_strdup_printf ("Not enough disk space in %s for the output: it needs %s but "
                                "only %s is free there; free some space or choose another "
                                "folder", root, need, have);
  }
  g_assert_cmpstr (p->message, ==, expected);
  g_assert_false (cru_engine_run (plan, NULL, NULL, NULL, &error));
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
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
  faults_write_model (a, 6, 1);
  faults_write_model (b, 6, 2);

  g_test_add_func ("/faults/disk-full/tmpfs/full-before-write", test_tmpfs_full_before_write);
  g_test_add_func ("/faults/disk-full/tmpfs/full-before-write-keeps-previous",
                   test_tmpfs_full_before_write_keeps_previous);
  g_test_add_func ("/faults/disk-full/tmpfs/fills-during-write", test_tmpfs_full_during_write);
  g_test_add_func ("/faults/disk-full/tmpfs/fills-during-write-keeps-previous",
                   test_tmpfs_full_during_write_keeps_previous);
  g_test_add_func ("/faults/disk-full/injected/at-first-header", test_injected_at_header);
  g_test_add_func ("/faults/disk-full/injected/mid-tensor", test_injected_mid_tensor);
  g_test_add_func ("/faults/disk-full/injected/mid-tensor-4-threads",
                   test_injected_mid_tensor_threads);
  g_test_add_func ("/faults/disk-full/injected/keeps-previous", test_injected_keeps_previous);
  g_test_add_func ("/faults/disk-full/plan-refuses-what-cannot-fit",
                   test_plan_refuses_when_too_small);
  return g_test_run ();
}
