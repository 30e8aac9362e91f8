/* cru-engine.c — run a plan: worker threads over the task list (largest first), the
 * statistics pass, writes at precomputed offsets, progress, cancellation, and the
 * temporary output folder that becomes the target only when everything is written.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-engine-private.h"

#include <stdlib.h>
#include <string.h>

/* OpenBLAS must not start its own threads inside our workers. */
extern void openblas_set_num_threads (int n) __attribute__ ((weak));

#define REPORT_INTERVAL_US 50000

void
_cru_run_add_bytes (CruRun *run, guint64 bytes)
{
  __atomic_add_fetch (&run->bytes_done, bytes, __ATOMIC_RELAXED);
}

static void
report_locked (CruRun *run, CruWorker *w, gint64 now)
{
  CruProgress p = { 0 };
  double elapsed = (now - run->start_us) / 1e6;
  guint64 done = __atomic_load_n (&run->bytes_done, __ATOMIC_RELAXED);

  /* Read without the lock by workers deciding whether to report (_cru_run_report). */
  __atomic_store_n (&run->last_report_us, now, __ATOMIC_RELAXED);
  if (run->progress == NULL)
    return;
  p.phase = run->phase;
  p.bytes_done = MIN (done, run->bytes_total);
  p.bytes_total = run->bytes_total;
  p.tensors_done = __atomic_load_n (&run->tensors_done, __ATOMIC_RELAXED);
  p.tensors_total = run->tensors_total;
  p.node = w ? w->node : 0;
  p.tensor = w ? w->tensor : NULL;
  p.elapsed_seconds = elapsed;
  p.eta_seconds = (done > 0 && elapsed > 0.2 && done < run->bytes_total)
                    ? elapsed * (double) (run->bytes_total - done) / (double) done
                    : (done >= run->bytes_total ? 0.0 : -1.0);
  run->progress (&p, run->progress_data);
}

void
_cru_run_report (CruRun *run, CruWorker *w, gboolean force)
{
  gint64 now = g_get_monotonic_time ();

  if (force)
    g_mutex_lock (&run->lock);
  else
    {
      if (now - __atomic_load_n (&run->last_report_us, __ATOMIC_RELAXED) < REPORT_INTERVAL_US
          || !g_mutex_trylock (&run->lock))
        return;
      if (now - run->last_report_us < REPORT_INTERVAL_US)
        {
          g_mutex_unlock (&run->lock);
          return;
        }
    }
  report_locked (run, w, now);
  g_mutex_unlock (&run->lock);
}

static void
set_phase (CruRun *run, CruRunPhase phase)
{
  g_mutex_lock (&run->lock);
  run->phase = phase;
  report_locked (run, NULL, g_get_monotonic_time ());
  g_mutex_unlock (&run->lock);
}

static void
fail (CruRun *run, GError *error)
{
  g_mutex_lock (&run->lock);
  if (run->error == NULL)
    {
      run->error = error;
      error = NULL;
    }
  g_mutex_unlock (&run->lock);
  g_clear_error (&error);
  g_cancellable_cancel (run->cancel);
}

/* ---- work items ---- */

typedef gboolean (*ItemFunc) (CruWorker *w, guint item, GError **error);

static void
prefetch_leaf (CruExpr *leaf, gpointer data)
{
  cru_safetensors_prefetch (leaf->tensor->shard, leaf->tensor->info);
}

static gboolean
merge_item (CruWorker *w, guint item, GError **error)
{
  CruRun *run = w->run;
  CruPlan *plan = run->plan;
  CruPlanTask *task = &plan->tasks[plan->order[item]];
  CruExpr *e = task->expr;
  guint64 unit = e->unit;
  float *out;
  guint64 mark = w->arena.top;
  gboolean ok = TRUE;

  /* Ask the kernel for the inputs of the task a worker will take next. */
  if (item + run->n_threads < run->n_items)
    _cru_expr_foreach_read (plan->tasks[plan->order[item + run->n_threads]].expr,
                            prefetch_leaf, NULL);

  w->tensor = task->name;
  w->node = e->kind == CRU_EXPR_METHOD ? e->node : 0;
  out = _cru_arena_push (&w->arena, unit * sizeof (float));
  if (out == NULL)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("Internal error: the memory planned for tensor %s was too small"),
                   task->name);
      return FALSE;
    }
  /* Methods that stream first gather what they need over the whole tensor. */
  ok = _cru_eval_prepare_streams (w, e, error);
  for (guint64 off = 0; ok && off < e->numel; off += unit)
    {
      guint64 n = MIN (unit, e->numel - off);

      ok = _cru_eval (w, e, off, n, out, error)
           && _cru_run_check_cancel (run, error)
           && cru_writer_write_f32 (run->writer, task->layout_index, off, out, n, error);
      if (ok)
        {
          _cru_run_add_bytes (run, n * cru_dtype_size (plan->out_dtype));
          _cru_run_report (run, w, FALSE);
        }
    }
  w->arena.top = mark;
  if (ok)
    {
      __atomic_add_fetch (&run->tensors_done, 1, __ATOMIC_RELAXED);
      _cru_run_report (run, w, FALSE);
    }
  return ok;
}

static GPtrArray *stats_items;   /* CruExpr*, for the statistics phase (one run at a time) */

static gboolean
stats_item (CruWorker *w, guint item, GError **error)
{
  CruExpr *e = g_ptr_array_index (stats_items, item);
  gboolean ok;

  w->tensor = e->name;
  ok = _cru_eval_stats (w, e, error);
  _cru_run_report (w->run, w, FALSE);
  return ok;
}

typedef struct {
  CruWorker *worker;
  ItemFunc   func;
} ThreadData;

static gpointer
worker_thread (gpointer data)
{
  ThreadData *td = data;
  CruWorker *w = td->worker;
  CruRun *run = w->run;

  while (!g_cancellable_is_cancelled (run->cancel))
    {
      guint item = (guint) g_atomic_int_add (&run->next, 1);
      GError *error = NULL;

      if (item >= run->n_items)
        break;
      if (!td->func (w, item, &error))
        {
          fail (run, error);
          break;
        }
    }
  return NULL;
}

static gboolean
run_items (CruRun *run, CruWorker *workers, guint n_items, ItemFunc func)
{
  g_autofree GThread **threads = g_new0 (GThread *, run->n_threads);
  g_autofree ThreadData *data = g_new0 (ThreadData, run->n_threads);

  run->next = 0;
  run->n_items = n_items;
  for (guint i = 0; i < run->n_threads; i++)
    {
      data[i].worker = &workers[i];
      data[i].func = func;
      if (run->n_threads == 1)
        worker_thread (&data[i]);
      else
        threads[i] = g_thread_new ("crucible-worker", worker_thread, &data[i]);
    }
  for (guint i = 0; i < run->n_threads; i++)
    if (threads[i])
      g_thread_join (threads[i]);
  return !g_cancellable_is_cancelled (run->cancel);
}

static gboolean
stats_phase (CruRun *run, CruWorker *workers, GError **error)
{
  CruPlan *plan = run->plan;
  G_LOCK_DEFINE_STATIC (stats);
  gboolean ok = TRUE;

  if (plan->stats_nodes->len == 0)
    return TRUE;
  set_phase (run, CRU_RUN_PHASE_STATS);
  for (guint s = 0; s < plan->stats_nodes->len && ok; s++)
    {
      CruStatsNode *sn = g_ptr_array_index (plan->stats_nodes, s);
      const double *w;

      if (sn->stats && sn->method->stats_free)
        sn->method->stats_free (sn->stats);
      sn->stats = sn->method->stats_new (sn->method, sn->n_models);
      G_LOCK (stats);
      stats_items = sn->exprs;
      ok = run_items (run, workers, sn->exprs->len, stats_item);
      stats_items = NULL;
      G_UNLOCK (stats);
      if (!ok)
        break;
      if (sn->method->stats_finish && !sn->method->stats_finish (sn->stats, error))
        return FALSE;
      w = sn->method->stats_get_weights ? sn->method->stats_get_weights (sn->stats) : NULL;
      g_clear_pointer (&sn->weights, g_free);
      if (w)
        sn->weights = g_memdup2 (w, sizeof (double) * sn->n_models);
    }
  return ok;
}

/* Inputs truncated, modified or replaced during the run make the result meaningless. */
static gboolean
check_inputs_unchanged (CruPlan *plan, GError **error)
{
  for (guint i = 0; i < plan->models->len; i++)
    {
      CruModel *m = g_ptr_array_index (plan->models, i);
      for (guint s = 0; s < cru_model_get_n_shards (m); s++)
        if (!cru_safetensors_check_unchanged (cru_model_get_shard (m, s), error))
          return FALSE;
    }
  return TRUE;
}

static void
on_user_cancel (GCancellable *user, gpointer data)
{
  g_cancellable_cancel (G_CANCELLABLE (data));
}

gboolean
cru_engine_run (CruPlan *plan, CruProgressFunc progress, gpointer user_data,
                GCancellable *cancellable, GError **error)
{
  CruRun run = { 0 };
  g_autoptr(CruOutputDir) od = NULL;
  g_autofree CruWorker *workers = NULL;
  gulong handler = 0;
  gboolean ok = FALSE;

  g_return_val_if_fail (plan != NULL, FALSE);
  if (!cru_plan_is_runnable (plan))
    {
      for (guint i = 0; i < plan->problems->len; i++)
        {
          CruProblem *p = g_ptr_array_index (plan->problems, i);
          if (p->severity == CRU_SEVERITY_ERROR)
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH, "%s", p->message);
              return FALSE;
            }
        }
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH, _("Nothing to merge"));
      return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (plan->moe)
    return _cru_engine_run_moe (plan, progress, user_data, cancellable, error);
  if (openblas_set_num_threads)
    openblas_set_num_threads (1);

  run.plan = plan;
  run.cancel = g_cancellable_new ();
  if (cancellable)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (on_user_cancel),
                                     g_object_ref (run.cancel), g_object_unref);
  run.seed = plan->options.seed;
  run.n_threads = plan->estimate.n_threads ? plan->estimate.n_threads : 1;
  run.progress = progress;
  run.progress_data = user_data;
  run.start_us = g_get_monotonic_time ();
  run.bytes_total = plan->estimate.bytes_read + plan->estimate.bytes_written;
  run.tensors_total = plan->n_tasks;
  g_mutex_init (&run.lock);
  run.cpu = cru_backend_cpu_new ();
  if (plan->estimate.device == CRU_DEVICE_CUDA)
    run.device = cru_backend_cuda_load (NULL);

  workers = g_new0 (CruWorker, run.n_threads);
  for (guint i = 0; i < run.n_threads; i++)
    {
      workers[i].run = &run;
      workers[i].arena.size = plan->arena_bytes + CRU_PLAN_ALIGN;
      if (posix_memalign ((void **) &workers[i].arena.base, CRU_PLAN_ALIGN,
                          workers[i].arena.size) != 0)
        {
          g_autofree char *size = g_format_size (workers[i].arena.size);
          g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                       _("Not enough memory: a worker needs %s; use fewer threads"), size);
          goto out;
        }
    }

  set_phase (&run, CRU_RUN_PHASE_PREPARE);
  od = cru_output_dir_begin (plan->out_dir, plan->options.overwrite, error);
  if (od == NULL)
    goto out;
  run.writer = cru_writer_open (plan->layout, cru_output_dir_get_tmp_path (od), error);
  if (run.writer == NULL)
    goto out;

  if (!stats_phase (&run, workers, error) && run.error == NULL)
    {
      if (error && *error == NULL)
        g_cancellable_set_error_if_cancelled (run.cancel, error);
      goto out;
    }
  if (run.error)
    goto out;

  set_phase (&run, CRU_RUN_PHASE_MERGE);
  if (!run_items (&run, workers, plan->n_tasks, merge_item))
    {
      if (run.error == NULL)
        g_cancellable_set_error_if_cancelled (run.cancel, error);
      goto out;
    }

  set_phase (&run, CRU_RUN_PHASE_FINISH);
  if (!cru_writer_close (run.writer, error))
    goto out;
  if (!_cru_plan_write_side_files (plan, cru_output_dir_get_tmp_path (od), error))
    goto out;
  if (g_cancellable_set_error_if_cancelled (run.cancel, error))
    goto out;
  if (!check_inputs_unchanged (plan, error))
    goto out;
  if (!cru_output_dir_commit (od, error))
    goto out;
  ok = TRUE;
  run.bytes_done = run.bytes_total;
  set_phase (&run, CRU_RUN_PHASE_DONE);

out:
  if (!ok && run.error)
    {
      if (error && *error == NULL)
        g_propagate_error (error, run.error);
      else
        g_error_free (run.error);
      run.error = NULL;
    }
  g_clear_pointer (&run.writer, cru_writer_free);
  if (!ok)
    cru_output_dir_explain_no_space (plan->out_dir, plan->estimate.output_bytes, error);
  if (!ok && od && cancellable && g_cancellable_is_cancelled (cancellable))
    cru_output_dir_discard (od);   /* cancelled: stop now, free the disk in the background */
  else if (!ok && od)
    cru_output_dir_abort (od);
  if (handler)
    g_cancellable_disconnect (cancellable, handler);
  for (guint i = 0; i < run.n_threads && workers; i++)
    {
      free (workers[i].arena.base);
      if (workers[i].streams)
        g_array_unref (workers[i].streams);
    }
  cru_backend_free (run.cpu);
  cru_backend_free (run.device);
  g_object_unref (run.cancel);
  g_mutex_clear (&run.lock);
  return ok;
}
