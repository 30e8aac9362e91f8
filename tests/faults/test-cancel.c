/* test-cancel.c — cancellation at 100 random points of runs (linear, TIES, and SDM-W with its
 * statistics pass): every run stops within 200 ms of the cancel and leaves no output.
 *
 * The 200 ms limit is asserted in normal builds; sanitized builds run several times slower,
 * so there the latency is reported and only bounded loosely.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "faults-util.h"
#include "cru-error.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N_TRIALS 100
#define LIMIT_US (FAULTS_SANITIZED ? 2000000 : 200000)

static const char *const methods[] = { "linear", "ties", "sdm_w" };
static char *models;
static gint64 full_run_us[G_N_ELEMENTS (methods)];

static CruPlan *
compile (const char *method, const char *out)
{
  g_autofree char *base = g_build_filename (models, "base", NULL);
  g_autofree char *a = g_build_filename (models, "a", NULL);
  g_autofree char *b = g_build_filename (models, "b", NULL);
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  guint m = test_add_method (g, method);
  CruPlanOptions o;
  CruPlan *plan;

  if (g_str_equal (method, "linear"))
    {
      test_set_link (g, test_link (g, test_add_model (g, a), m, CRU_PORT_MODEL), "weight", 0.5);
      test_set_link (g, test_link (g, test_add_model (g, b), m, CRU_PORT_MODEL), "weight", 0.5);
    }
  else
    {
      test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
      test_link (g, test_add_model (g, a), m, CRU_PORT_MODEL);
      test_link (g, test_add_model (g, b), m, CRU_PORT_MODEL);
    }
  test_add_output (g, out, m);
  cru_plan_options_init (&o);
  o.n_threads = 2;
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  return plan;
}

typedef struct {
  CruPlan      *plan;
  GCancellable *cancellable;
  gboolean      ok;
  GError       *error;
  gint64        ended_at;
  CruRunPhase   phase;       /* the last phase reported */
} Run;

static void
note_phase (const CruProgress *p, gpointer user_data)
{
  ((Run *) user_data)->phase = p->phase;
}

static gpointer
run_thread (gpointer data)
{
  Run *r = data;

  r->ok = cru_engine_run (r->plan, note_phase, r, r->cancellable, &r->error);
  r->ended_at = g_get_monotonic_time ();
  return NULL;
}

static void
measure_full_runs (void)
{
  for (guint k = 0; k < G_N_ELEMENTS (methods); k++)
    {
      g_autofree char *root = test_tmpdir ();
      g_autofree char *out = g_build_filename (root, "out", NULL);

      /* The quickest of three (the first reads from a cold cache). */
      full_run_us[k] = G_MAXINT64;
      for (int i = 0; i < 3; i++)
        {
          g_autoptr(CruPlan) plan = compile (methods[k], out);
          g_autoptr(GError) error = NULL;
          gint64 t0 = g_get_monotonic_time ();

          g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
          full_run_us[k] = MIN (full_run_us[k], g_get_monotonic_time () - t0);
          test_rm_rf (out);
        }
      g_test_message ("a full %s run takes %.0f ms", methods[k], full_run_us[k] / 1e3);
    }
}

static void
test_random_points (void)
{
  guint cancelled = 0, finished_first = 0;
  gint64 worst = 0, total = 0;
  guint by_phase[CRU_RUN_PHASE_DONE + 1] = { 0 };

  measure_full_runs ();
  for (guint trial = 0; trial < N_TRIALS; trial++)
    {
      guint k = trial % G_N_ELEMENTS (methods);
      g_autofree char *root = test_tmpdir ();
      g_autofree char *out = g_build_filename (root, "out", NULL);
      g_autoptr(CruPlan) plan = compile (methods[k], out);
      Run r = { plan, g_cancellable_new (), FALSE, NULL, 0, CRU_RUN_PHASE_PREPARE };
      gint64 delay = g_test_rand_int_range (0, (gint32) MAX (full_run_us[k] * 9 / 10, 1000));
      GThread *thread = g_thread_new ("run", run_thread, &r);
      gint64 cancelled_at;

      g_usleep ((gulong) delay);
      cancelled_at = g_get_monotonic_time ();
      g_cancellable_cancel (r.cancellable);
      g_thread_join (thread);

      if (r.ok)
        {
          /* It finished before the cancel arrived: the result must be complete. */
          g_autoptr(GError) error = NULL;
          g_autoptr(CruModel) m = cru_model_open (out, &error);
          g_assert_no_error (error);
          g_assert_cmpint (r.ended_at, <=, cancelled_at + LIMIT_US);
          finished_first++;
        }
      else
        {
          gint64 latency = MAX (r.ended_at - cancelled_at, 0);
          g_autofree char *listing = NULL;
          g_autofree char *at_return = faults_list (root);

          g_assert_true (g_error_matches (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                         || g_error_matches (r.error, CRU_ERROR, CRU_ERROR_CANCELLED));
          if (latency > LIMIT_US)
            g_error ("trial %u (%s, cancelled after %.1f ms in phase %d) took %.1f ms to stop",
                     trial, methods[k], delay / 1e3, r.phase, latency / 1e3);
          /* On return there is no output and no temporary folder, only (perhaps) the
           * partial data being deleted in the background; then nothing at all. */
          g_assert_true (*at_return == '\0' || strstr (at_return, ".out.crucible-trash-"));
          g_assert_null (strstr (at_return, "crucible-tmp"));
          cru_output_dir_wait_discarded ();
          listing = faults_list (root);
          g_assert_cmpstr (listing, ==, "");
          if (latency > LIMIT_US / 4)
            g_test_message ("slow stop: trial %u (%s) cancelled after %.1f ms in phase %d "
                            "stopped in %.1f ms", trial, methods[k], delay / 1e3, r.phase,
                            latency / 1e3);
          worst = MAX (worst, latency);
          total += latency;
          by_phase[r.phase]++;
          cancelled++;
        }
      g_clear_error (&r.error);
      g_object_unref (r.cancellable);
      test_rm_rf (root);
    }
  g_test_message ("%u of %u runs cancelled (%u finished first); stop latency: worst %.1f ms, "
                  "mean %.1f ms; cancelled in phase prepare %u, stats %u, merge %u, finish %u",
                  cancelled, N_TRIALS, finished_first, worst / 1e3,
                  cancelled ? total / 1e3 / cancelled : 0.0, by_phase[CRU_RUN_PHASE_PREPARE],
                  by_phase[CRU_RUN_PHASE_STATS], by_phase[CRU_RUN_PHASE_MERGE],
                  by_phase[CRU_RUN_PHASE_FINISH]);
  printf ("# cancellation: %u/%u cancelled, worst stop %.1f ms, mean %.1f ms%s\n", cancelled,
          N_TRIALS, worst / 1e3, cancelled ? total / 1e3 / cancelled : 0.0,
          FAULTS_SANITIZED ? " (sanitized build: 200 ms not asserted)" : "");
  /* The points are drawn inside the length of a full run: nearly all must be cancels. */
  g_assert_cmpuint (cancelled, >=, N_TRIALS * 3 / 4);
  g_assert_cmpuint (by_phase[CRU_RUN_PHASE_MERGE], >, 0);
}

int
main (int argc, char **argv)
{
  g_autofree char *base = NULL, *a = NULL, *b = NULL;

  faults_init (&argc, &argv);
  models = test_tmpdir ();
  base = g_build_filename (models, "base", NULL);
  a = g_build_filename (models, "a", NULL);
  b = g_build_filename (models, "b", NULL);
  faults_write_model (base, 24, 1);
  faults_write_model (a, 24, 2);
  faults_write_model (b, 24, 3);

  g_test_add_func ("/faults/cancel/100-random-points-stop-within-200ms-and-leave-nothing",
                   test_random_points);
  return g_test_run ();
}
