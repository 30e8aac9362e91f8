/* cru-window-run.c — the status strip, and running the engine on a worker thread with
 * progress marshalled to the main loop (coalesced: at most one pending update)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-window-private.h"

#include <glib/gi18n-lib.h>
#include "cru-error.h"
#include "cru-node-info.h"

/* ---- status strip ---- */

void
_cru_window_update_status (CruWindow *self)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GString) problems = g_string_new (NULL);
  const CruEstimate *e;

  if (self->plan == NULL)
    g_string_append (text, _("Connect models through a method into an Output node to see "
                             "what the merge needs."));
  else
    {
      GPtrArray *list = cru_plan_get_problems (self->plan);
      guint n_errors = 0, n_warnings = 0;
      const char *first = NULL;
      g_autofree char *ram = NULL, *need = NULL, *free_ = NULL, *out = NULL;

      e = cru_plan_get_estimate (self->plan);
      ram = cru_format_bytes (e->peak_ram_bytes);
      need = cru_format_bytes (e->bytes_written);
      free_ = cru_format_bytes (e->disk_free_bytes);
      out = cru_format_bytes (e->output_bytes);
      /* Translators: the status strip, e.g. "Peak RAM 120 MB · Disk 9 MB of 40 GB free · …" */
      g_string_append_printf (text, _("Peak RAM %s"), ram);
      if (e->peak_vram_bytes > 0)
        {
          g_autofree char *vram = cru_format_bytes (e->peak_vram_bytes);
          g_string_append_printf (text, _(" (VRAM %s)"), vram);
        }
      if (e->disk_free_bytes > 0)
        g_string_append_printf (text, _(" · Disk %s needed, %s free"), need, free_);
      else
        g_string_append_printf (text, _(" · Disk %s needed"), need);
      g_string_append_printf (text, ngettext (" · Output %s · %u tensor",
                                              " · Output %s · %u tensors", e->n_tensors),
                              out, e->n_tensors);
      if (e->seconds >= 0 && e->seconds < 1)
        g_string_append (text, _(" · Under a second"));
      else
        {
          g_autofree char *time = cru_format_seconds (e->seconds);
          g_string_append_printf (text, _(" · About %s"), time);
        }

      for (guint i = 0; list != NULL && i < list->len; i++)
        {
          const CruProblem *p = g_ptr_array_index (list, i);
          if (p->severity == CRU_SEVERITY_ERROR)
            {
              if (n_errors++ == 0)
                first = p->message;
            }
          else if (p->severity == CRU_SEVERITY_WARNING)
            n_warnings++;
        }
      if (n_errors > 0)
        {
          g_string_append_printf (problems, ngettext ("%u problem: %s", "%u problems — first: %s",
                                                      n_errors), n_errors, first);
          gtk_widget_add_css_class (self->problems_label, "error");
        }
      else
        {
          gtk_widget_remove_css_class (self->problems_label, "error");
          if (n_warnings > 0)
            g_string_append_printf (problems, ngettext ("%u warning", "%u warnings", n_warnings),
                                    n_warnings);
          else
            g_string_append (problems, _("Ready to run"));
        }
    }
  gtk_label_set_text (GTK_LABEL (self->estimate_label), text->str);
  gtk_label_set_text (GTK_LABEL (self->problems_label), problems->str);
  gtk_widget_set_tooltip_text (self->problems_label, problems->str);
  g_free (self->status_text);
  self->status_text = g_strdup_printf ("%s\n%s", text->str, problems->str);
}

/* ---- running ---- */

gboolean
cru_window_is_running (CruWindow *self)
{
  return self->run_cancellable != NULL;
}

static void
set_all_nodes (CruWindow *self, CruNodeRunState state, double fraction)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (self->graph);

  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *n = g_ptr_array_index (nodes, i);
      if (n->kind != CRU_NODE_MODEL)
        cru_graph_view_set_run_state (self->graph_view, n->id, state, fraction);
    }
}

static gboolean
progress_idle (gpointer user_data)
{
  CruWindow *self = user_data;
  CruProgress p;
  g_autofree char *tensor = NULL;
  g_autofree char *eta = NULL;
  g_autofree char *text = NULL;
  double fraction;

  g_mutex_lock (&self->progress_lock);
  p = self->progress;
  tensor = g_steal_pointer (&self->progress_tensor);
  self->progress_pending = FALSE;
  self->progress_idle = 0;
  g_mutex_unlock (&self->progress_lock);

  if (!cru_window_is_running (self))
    return G_SOURCE_REMOVE;
  fraction = p.bytes_total > 0 ? (double) p.bytes_done / p.bytes_total
           : p.tensors_total > 0 ? (double) p.tensors_done / p.tensors_total : 0;
  eta = cru_format_seconds (p.eta_seconds);
  switch (p.phase)
    {
    case CRU_RUN_PHASE_PREPARE: text = g_strdup (_("Preparing…")); break;
    case CRU_RUN_PHASE_STATS:
      text = g_strdup_printf (_("Measuring models %.0f%%"), fraction * 100); break;
    case CRU_RUN_PHASE_FINISH: text = g_strdup (_("Finishing…")); break;
    default:
      text = p.eta_seconds >= 0 ? g_strdup_printf (_("%.0f%% · %s left"), fraction * 100, eta)
                                : g_strdup_printf ("%.0f%%", fraction * 100);
    }
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->run_progress), CLAMP (fraction, 0, 1));
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->run_progress), text);
  if (tensor != NULL)
    {
      g_autofree char *detail = g_strdup_printf (_("%u of %u · %s"), p.tensors_done,
                                                 p.tensors_total, tensor);
      gtk_label_set_text (GTK_LABEL (self->run_detail), detail);
    }
  set_all_nodes (self, CRU_NODE_RUN_RUNNING, fraction);
  return G_SOURCE_REMOVE;
}

/* Worker thread: store the latest numbers; schedule one idle unless one is pending. */
static void
progress_cb (const CruProgress *progress, gpointer user_data)
{
  CruWindow *self = user_data;

  g_mutex_lock (&self->progress_lock);
  self->progress = *progress;
  self->progress.tensor = NULL;
  if (progress->tensor != NULL)
    {
      g_free (self->progress_tensor);
      self->progress_tensor = g_strdup (progress->tensor);
    }
  if (!self->progress_pending)
    {
      self->progress_pending = TRUE;
      self->progress_idle = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, progress_idle,
                                             self, NULL);
    }
  g_mutex_unlock (&self->progress_lock);
}

static void
run_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  CruWindow *self = source;
  g_autoptr(GError) error = NULL;

  if (cru_engine_run (task_data, progress_cb, self, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, g_steal_pointer (&error));
}

/* What the run found (a mixture of experts' router that cannot tell experts apart): on the
 * nodes beside the plan's problems, in the inspector, and as a toast that stays. */
static void
show_run_warnings (CruWindow *self, CruPlan *plan)
{
  g_autoptr(GPtrArray) found = cru_plan_get_run_warnings (plan);
  GPtrArray *problems = cru_plan_get_problems (plan);
  g_autoptr(GPtrArray) all = g_ptr_array_new ();

  if (found->len == 0)
    return;
  for (guint i = 0; i < problems->len; i++)
    g_ptr_array_add (all, g_ptr_array_index (problems, i));
  for (guint i = 0; i < found->len; i++)
    {
      const CruProblem *p = g_ptr_array_index (found, i);
      AdwToast *toast = adw_toast_new (p->message);

      g_ptr_array_add (all, (gpointer) p);
      adw_toast_set_timeout (toast, 0);
      adw_toast_set_priority (toast, ADW_TOAST_PRIORITY_HIGH);
      adw_toast_overlay_add_toast (self->toast_overlay, toast);
    }
  if (plan == self->plan)
    {
      cru_graph_view_set_problems (self->graph_view, all);
      cru_inspector_refresh (self->inspector);
    }
}

static void
run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CruWindow *self = CRU_WINDOW (source);
  g_autoptr(GError) error = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);
  g_autofree char *output = g_steal_pointer (&self->run_output);
  gboolean cancelled = error != NULL
                       && (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                           || g_error_matches (error, CRU_ERROR, CRU_ERROR_CANCELLED));
  AdwToast *toast;

  g_mutex_lock (&self->progress_lock);
  g_clear_handle_id (&self->progress_idle, g_source_remove);
  self->progress_pending = FALSE;
  g_mutex_unlock (&self->progress_lock);
  g_clear_object (&self->run_cancellable);
  gtk_widget_set_visible (self->run_progress, FALSE);
  gtk_widget_set_visible (self->run_detail, FALSE);
  gtk_widget_set_visible (self->estimate_label, TRUE);

  if (ok)
    {
      g_autofree char *base = g_path_get_basename (output);
      g_autofree char *msg = g_strdup_printf (_("Merged model written to “%s”"), base);

      set_all_nodes (self, CRU_NODE_RUN_DONE, 1);
      toast = adw_toast_new (msg);
      adw_toast_set_button_label (toast, _("Open Folder"));
      adw_toast_set_action_name (toast, "win.open-folder");
      adw_toast_set_action_target_value (toast, g_variant_new_string (output));
      adw_toast_set_timeout (toast, 10);
      adw_toast_overlay_add_toast (self->toast_overlay, toast);
      show_run_warnings (self, g_task_get_task_data (G_TASK (result)));
    }
  else if (cancelled)
    {
      set_all_nodes (self, CRU_NODE_RUN_IDLE, 0);
      cru_window_toast (self, _("Merge cancelled; nothing was written"));
    }
  else
    {
      set_all_nodes (self, CRU_NODE_RUN_FAILED, 0);
      toast = adw_toast_new (error->message);
      adw_toast_set_timeout (toast, 0);
      adw_toast_overlay_add_toast (self->toast_overlay, toast);
    }
  _cru_window_update_actions (self);
  g_signal_emit_by_name (self, "run-finished", ok, ok ? output : error->message);
}

static void
start_run (CruWindow *self)
{
  g_autoptr(GTask) task = NULL;

  self->run_cancellable = g_cancellable_new ();
  self->run_output = g_strdup (cru_plan_get_output_dir (self->plan));
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->run_progress), 0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->run_progress), _("Starting…"));
  gtk_label_set_text (GTK_LABEL (self->run_detail), "");
  gtk_widget_set_visible (self->run_progress, TRUE);
  gtk_widget_set_visible (self->run_detail, TRUE);
  gtk_widget_set_visible (self->estimate_label, FALSE);
  set_all_nodes (self, CRU_NODE_RUN_QUEUED, 0);

  task = g_task_new (self, self->run_cancellable, run_done, NULL);
  g_task_set_task_data (task, cru_plan_ref (self->plan), (GDestroyNotify) cru_plan_unref);
  g_task_run_in_thread (task, run_thread);
  _cru_window_update_actions (self);
}

static void
replace_response (AdwMessageDialog *dialog, const char *response, CruWindow *self)
{
  if (g_strcmp0 (response, "replace") == 0)
    cru_window_run (self, TRUE);
}

static gboolean
folder_has_files (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  return dir != NULL && g_dir_read_name (dir) != NULL;
}

gboolean
cru_window_run (CruWindow *self, gboolean confirmed)
{
  const char *out;

  g_return_val_if_fail (CRU_IS_WINDOW (self), FALSE);
  if (cru_window_is_running (self) || self->plan == NULL || !cru_plan_is_runnable (self->plan))
    return FALSE;
  out = cru_plan_get_output_dir (self->plan);
  if (out == NULL)
    return FALSE;
  if (!confirmed && folder_has_files (out))
    {
      g_autofree char *base = g_path_get_basename (out);
      g_autofree char *heading = g_strdup_printf (_("Replace “%s”?"), base);
      AdwMessageDialog *dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (
          GTK_WINDOW (self), heading,
          _("The output folder already holds files. The merged model will replace them once "
            "the merge has finished.")));

      adw_message_dialog_add_responses (dialog, "cancel", _("_Cancel"), "replace", _("_Replace"),
                                        NULL);
      adw_message_dialog_set_response_appearance (dialog, "replace", ADW_RESPONSE_DESTRUCTIVE);
      adw_message_dialog_set_default_response (dialog, "cancel");
      g_signal_connect (dialog, "response", G_CALLBACK (replace_response), self);
      gtk_window_present (GTK_WINDOW (dialog));
      return TRUE;
    }
  start_run (self);
  return TRUE;
}

void
cru_window_cancel_run (CruWindow *self)
{
  g_return_if_fail (CRU_IS_WINDOW (self));
  if (self->run_cancellable != NULL)
    {
      g_cancellable_cancel (self->run_cancellable);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->run_progress), _("Cancelling…"));
    }
}

void
_cru_window_run_dispose (CruWindow *self)
{
  if (self->run_cancellable != NULL)
    g_cancellable_cancel (self->run_cancellable);
  g_mutex_lock (&self->progress_lock);
  g_clear_handle_id (&self->progress_idle, g_source_remove);
  g_clear_pointer (&self->progress_tensor, g_free);
  g_mutex_unlock (&self->progress_lock);
  g_clear_pointer (&self->run_output, g_free);
}
