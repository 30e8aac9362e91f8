/* cru-engine-moe.c — running a mixture-of-experts plan: cru_moe_build_into in the temporary
 * output folder, its stages reported as CruProgress, the model card and recipes, and the
 * rename into place (or nothing at all on an error or a cancel), as for merges.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-engine-private.h"

#define REPORT_INTERVAL_US 50000

typedef struct {
  CruPlan        *plan;
  CruProgressFunc progress;
  gpointer        user_data;
  gint64          start_us;
  gint64          last_us;
  CruRunPhase     phase;
  guint64         bytes_total;
  CruMoeStatus    last;          /* the build's latest numbers (tensor: NULL) */
} MoeRun;

static void
report (MoeRun *r, CruRunPhase phase, const CruMoeStatus *st, gboolean force)
{
  CruProgress p = { 0 };
  gint64 now = g_get_monotonic_time ();
  double elapsed = (now - r->start_us) / 1e6;
  guint64 done;

  if (st)
    {
      r->last = *st;
      r->last.tensor = NULL;
    }
  else
    st = &r->last;
  done = MIN (st->bytes_read + st->bytes_written, r->bytes_total);
  if (r->progress == NULL)
    return;
  if (phase != r->phase)
    force = TRUE;
  if (!force && now - r->last_us < REPORT_INTERVAL_US)
    return;
  r->phase = phase;
  r->last_us = now;
  p.phase = phase;
  p.bytes_done = phase == CRU_RUN_PHASE_DONE ? r->bytes_total : done;
  p.bytes_total = r->bytes_total;
  p.tensors_total = cru_plan_get_n_tensors (r->plan);
  p.tensors_done = phase == CRU_RUN_PHASE_DONE ? p.tensors_total : st->tensors_done;
  p.node = r->plan->moe_node;
  p.tensor = st->tensor;
  p.elapsed_seconds = elapsed;
  p.eta_seconds = (p.bytes_done > 0 && elapsed > 0.2 && p.bytes_done < r->bytes_total)
                    ? elapsed * (double) (r->bytes_total - p.bytes_done) / (double) p.bytes_done
                    : (p.bytes_done >= r->bytes_total ? 0.0 : -1.0);
  r->progress (&p, r->user_data);
}

static void
on_status (const CruMoeStatus *st, gpointer data)
{
  MoeRun *r = data;
  CruRunPhase phase = st->stage == CRU_MOE_STAGE_GATES ? CRU_RUN_PHASE_STATS
                      : st->stage == CRU_MOE_STAGE_TENSORS ? CRU_RUN_PHASE_MERGE
                                                            : CRU_RUN_PHASE_FINISH;
  report (r, phase, st, FALSE);
}

/* Inputs truncated, modified or replaced during the run make the result meaningless. */
static gboolean
inputs_unchanged (CruPlan *plan, GError **error)
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

/* The build's warnings, on the MoE node; the plan already told the user about the number
 * of experts. */
static void
keep_warnings (CruPlan *plan, GPtrArray *warnings)
{
  g_autofree char *count = cru_moe_expert_count_warning (plan->moe->experts->len);
  GPtrArray *found = g_ptr_array_new_with_free_func (_cru_problem_free);

  for (guint i = 0; i < warnings->len; i++)
    if (g_strcmp0 (warnings->pdata[i], count) != 0)
      {
        /* TRANSLATORS: "Experts: All layers have degenerate routing parameters…" */
        g_autofree char *message = g_strdup_printf (_("%s: %s"), plan->moe_title,
                                                    (char *) warnings->pdata[i]);
        g_ptr_array_add (found, _cru_problem_new (CRU_SEVERITY_WARNING, plan->moe_node, 0,
                                                  NULL, message));
      }
  _cru_plan_set_run_warnings (plan, found);
}

gboolean
_cru_engine_run_moe (CruPlan *plan, CruProgressFunc progress, gpointer user_data,
                     GCancellable *cancellable, GError **error)
{
  MoeRun r = { plan, progress, user_data, g_get_monotonic_time (), 0, CRU_RUN_PHASE_PREPARE,
               plan->estimate.bytes_read + plan->estimate.bytes_written };
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruOutputDir) od = NULL;
  gboolean ok = FALSE;

  _cru_plan_set_run_warnings (plan, NULL);
  report (&r, CRU_RUN_PHASE_PREPARE, NULL, TRUE);
  od = cru_output_dir_begin (plan->out_dir, plan->options.overwrite, error);
  if (od == NULL)
    goto out;
  if (!cru_moe_build_into (plan->moe, cru_output_dir_get_tmp_path (od), on_status, &r,
                           warnings, cancellable, error))
    goto out;
  keep_warnings (plan, warnings);
  report (&r, CRU_RUN_PHASE_FINISH, NULL, TRUE);
  if (!_cru_plan_moe_write_side_files (plan, cru_output_dir_get_tmp_path (od), error))
    goto out;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    goto out;
  if (!inputs_unchanged (plan, error))
    goto out;
  if (!cru_output_dir_commit (od, error))
    goto out;
  ok = TRUE;
  report (&r, CRU_RUN_PHASE_DONE, NULL, TRUE);

out:
  if (!ok)
    {
      _cru_plan_set_run_warnings (plan, NULL);
      cru_output_dir_explain_no_space (plan->out_dir, plan->estimate.output_bytes, error);
      if (od && cancellable && g_cancellable_is_cancelled (cancellable))
        cru_output_dir_discard (od);   /* cancelled: stop now, free the disk in the background */
      else if (od)
        cru_output_dir_abort (od);
    }
  return ok;
}
