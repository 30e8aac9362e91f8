/* test-cancel.c — cancellation at 100 random points of runs (linear, TIES, and SDM-W with its
 * statistics pass): every run stops within 200 ms of the cancel and leaves no output. A
 * point that turns out to lie after the end of its run (the run finished first) is drawn
 * again, so that 100 runs are really cancelled.
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
  gint64        ended_at;    /* atomic */
  gint          phase;       /* atomic: the last phase reported */
} Run;

static void
note_progress (const CruProgress *p, gpointer user_data)
{
  g_atomic_int_set (&((Run *) user_data)->phase, p->phase);
}

static gpointer
run_thread (gpointer data)
{
  Run *r = data;

  r->ok = cru_engine_run (r->plan, note_progress, r, r->cancellable, &r->error);
  __atomic_store_n (&r->ended_at, g_get_monotonic_time (), __ATOMIC_SEQ_CST);
  return NULL;
}

static void
measure_full_runs (void)
{
  for (guint k = 0; k < G_N_ELEMENTS (methods); k++)
    {
      g_autofree char *root = test_tmpdir ();
      g_autofree char *out = g_build_filename (root, "out", NULL);

      /* The quicker of two (the first reads from a cold cache); for the report only. */
      full_run_us[k] = G_MAXINT64;
      for (int i = 0; i < 2; i++)
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

/* One run cancelled @delay µs after it starts. Returns FALSE when it finished first (then
 * *duration is how long it took); asserts everything about a cancelled one. */
static gboolean
cancel_once (guint trial, guint k, gint64 delay, gint64 *duration, gint64 *latency_out,
             CruRunPhase *phase_out)
{
  g_autofree char *root = test_tmpdir ();
  g_autofree char *out = g_build_filename (root, "out", NULL);
  g_autoptr(CruPlan) plan = compile (methods[k], out);
  Run r = { plan, g_cancellable_new (), FALSE, NULL, 0, CRU_RUN_PHASE_PREPARE };
  gint64 started = g_get_monotonic_time ();
  GThread *thread = g_thread_new ("run", run_thread, &r);
  gint64 cancelled_at, latency;
  g_autofree char *listing = NULL;
  g_autofree char *at_return = NULL;

  g_usleep ((gulong) delay);
  cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (r.cancellable);
  g_thread_join (thread);
  g_object_unref (r.cancellable);

  if (r.ok)
    {
      /* It finished before the cancel arrived: the result must be complete. */
      g_autoptr(GError) error = NULL;
      g_autoptr(CruModel) m = cru_model_open (out, &error);
      g_assert_no_error (error);
      *duration = r.ended_at - started;
      test_rm_rf (root);
      return FALSE;
    }

  latency = MAX (r.ended_at - cancelled_at, 0);
  g_assert_true (g_error_matches (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                 || g_error_matches (r.error, CRU_ERROR, CRU_ERROR_CANCELLED));
  g_clear_error (&r.error);
  if (latency > LIMIT_US)
    g_error ("trial %u (%s, cancelled after %.1f ms in phase %d) took %.1f ms to stop",
             trial, methods[k], delay / 1e3, r.phase, latency / 1e3);
  if (latency > LIMIT_US / 4)
    g_test_message ("slow stop: trial %u (%s) cancelled after %.1f ms in phase %d stopped in "
                    "%.1f ms", trial, methods[k], delay / 1e3, r.phase, latency / 1e3);
  /* On return there is no output and no temporary folder, only (perhaps) the partial data
   * being deleted in the background; then nothing at all. */
  at_return = faults_list (root);
  g_assert_true (*at_return == '\0' || strstr (at_return, ".out.crucible-trash-"));
  g_assert_null (strstr (at_return, "crucible-tmp"));
  cru_output_dir_wait_discarded ();
  listing = faults_list (root);
  g_assert_cmpstr (listing, ==, "");
  test_rm_rf (root);
  *latency_out = latency;
  *phase_out = (CruRunPhase) r.phase;
  return TRUE;
}

static void
test_random_points (void)
{
  guint finished_first = 0;
  gint64 worst = 0, total = 0;
  guint by_phase[CRU_RUN_PHASE_DONE + 1] = { 0 };

  measure_full_runs ();
  for (guint trial = 0; trial < N_TRIALS; trial++)
    {
      guint k = trial % G_N_ELEMENTS (methods);
      /* A random point inside the run; a run that beats it tells how long runs take now
       * (the machine's load changes), and the trial draws again below that. */
      gint64 limit = full_run_us[k];
      gint64 latency = 0, duration = 0;
      CruRunPhase phase = CRU_RUN_PHASE_PREPARE;
      guint attempt;

      for (attempt = 0; attempt < 20; attempt++)
        {
          gint64 delay = g_test_rand_int_range (0, (gint32) MAX (limit * 9 / 10, 1));
          if (cancel_once (trial, k, delay, &duration, &latency, &phase))
            break;
          finished_first++;
          limit = MIN (limit, duration);
        }
      g_assert_cmpuint (attempt, <, 20);
      full_run_us[k] = limit;
      worst = MAX (worst, latency);
      total += latency;
      by_phase[phase]++;
    }
  g_test_message ("%u runs cancelled (%u more finished before their cancel and were drawn "
                  "again); stop latency: worst %.1f ms, mean %.1f ms; cancelled in phase "
                  "prepare %u, stats %u, merge %u, finish %u", N_TRIALS, finished_first,
                  worst / 1e3, total / 1e3 / N_TRIALS, by_phase[CRU_RUN_PHASE_PREPARE],
                  by_phase[CRU_RUN_PHASE_STATS], by_phase[CRU_RUN_PHASE_MERGE],
                  by_phase[CRU_RUN_PHASE_FINISH]);
  printf ("# cancellation: %u runs cancelled at random points, worst stop %.1f ms, mean "
          "%.1f ms%s\n", N_TRIALS, worst / 1e3, total / 1e3 / N_TRIALS,
          FAULTS_SANITIZED ? " (sanitized build: 200 ms not asserted)" : "");
  g_assert_cmpuint (by_phase[CRU_RUN_PHASE_MERGE], >, 0);
  g_assert_cmpuint (by_phase[CRU_RUN_PHASE_STATS], >, 0);
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
  /* Big enough that a run has a stats phase, many tensors and several progress reports;
   * smaller where sanitizers make everything several times slower. */
  faults_write_model (base, FAULTS_SANITIZED ? 24 : 64, 1);
  faults_write_model (a, FAULTS_SANITIZED ? 24 : 64, 2);
  faults_write_model (b, FAULTS_SANITIZED ? 24 : 64, 3);

  g_test_add_func ("/faults/cancel/100-random-points-stop-within-200ms-and-leave-nothing",
                   test_random_points);
  return g_test_run ();
}
