/* cru-evaluate-dialog.c — perplexity of a model on a text the user picks
 *
 * The work (open the model, tokenize, batched forward passes) runs in a GTask thread; it
 * reports windows done through two atomics that a 100 ms timeout on the main loop reads, so
 * the window never waits on the worker and the worker never touches a widget.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-evaluate-dialog.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include "cru-error.h"
#include "cru-node-info.h"
#include "cru-perplexity.h"
#include "cru-window.h"

/* Larger texts take minutes per megabyte on a desktop CPU; a sample of the domain is enough. */
#define MAX_TEXT_BYTES (64u << 20)

struct _CruEvaluateDialog {
  AdwWindow parent_instance;

  char         *model_path;
  char         *text_path;
  GCancellable *cancellable;
  guint         poll_timeout;
  gint          windows_done;     /* atomics written by the worker */
  gint          windows_total;

  double        ppl;
  guint64       n_scored;
  double       *routing;          /* n_experts shares, or NULL */
  int           n_experts;
  char         *error;
  GPtrArray    *result_rows;      /* rows of result_group and routing_group */
  gboolean      disposed;         /* the worker may finish after the window is destroyed */

  /* template children */
  AdwPreferencesGroup *setup_group;
  AdwActionRow        *text_row;
  GtkWidget           *choose_button;
  GtkSpinButton       *ctx_spin;
  GtkWidget           *evaluate_button;
  GtkWidget           *close_button;
  GtkProgressBar      *progress;
  GtkLabel            *status_label;
  AdwPreferencesGroup *result_group;
  AdwPreferencesGroup *routing_group;
};

G_DEFINE_FINAL_TYPE (CruEvaluateDialog, cru_evaluate_dialog, ADW_TYPE_WINDOW)

enum { FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* The last text chosen in this session: evaluating several models on one text is the usual
 * way to compare them. */
static char *last_text_path;

typedef struct {
  char         *model_path;
  char         *text_path;
  guint         ctx;
  CruPerplexity result;
} EvalJob;

static void
eval_job_free (EvalJob *job)
{
  g_free (job->model_path);
  g_free (job->text_path);
  cru_perplexity_clear (&job->result);
  g_free (job);
}

/* ---- worker thread ---- */

static void
on_windows (guint done, guint total, gpointer user_data)
{
  CruEvaluateDialog *self = user_data;

  g_atomic_int_set (&self->windows_total, (gint) total);
  g_atomic_int_set (&self->windows_done, (gint) done);
}

static void
evaluate_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  CruEvaluateDialog *self = source;
  EvalJob *job = task_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  g_autoptr(CruTokenizer) tok = NULL;
  g_autoptr(GFile) file = g_file_new_for_path (job->text_path);
  g_autoptr(GFileInfo) info = NULL;
  g_autofree char *shown = g_filename_display_basename (job->text_path);
  g_autofree char *text = NULL;
  gsize length;

  info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE,
                            cancellable, &error);
  if (info != NULL && g_file_info_get_size (info) > MAX_TEXT_BYTES)
    {
      g_autofree char *size = g_format_size (g_file_info_get_size (info));
      g_autofree char *limit = g_format_size (MAX_TEXT_BYTES);
      g_task_return_new_error (task, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                               _("%s is %s; choose a text under %s (a sample of a few hundred "
                                 "kilobytes is enough to compare models)"), shown, size, limit);
      return;
    }
  if (info == NULL || !g_file_get_contents (job->text_path, &text, &length, &error))
    {
      g_task_return_new_error (task, CRU_ERROR, CRU_ERROR_IO, _("Cannot read %s: %s"), shown,
                               error->message);
      return;
    }
  if (!(model = cru_model_open (job->model_path, &error))
      || !(tok = cru_tokenizer_new_for_model (model, &error))
      || !cru_perplexity_run (model, tok, text, length, job->ctx, 0, on_windows, self,
                              &job->result, cancellable, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

/* ---- showing the result ---- */

static void
clear_results (CruEvaluateDialog *self)
{
  for (guint i = 0; i < self->result_rows->len; i++)
    {
      GtkWidget *row = g_ptr_array_index (self->result_rows, i);
      GtkWidget *group = gtk_widget_get_ancestor (row, ADW_TYPE_PREFERENCES_GROUP);
      adw_preferences_group_remove (ADW_PREFERENCES_GROUP (group), row);
    }
  g_ptr_array_set_size (self->result_rows, 0);
  gtk_widget_set_visible (GTK_WIDGET (self->result_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->routing_group), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->status_label), FALSE);
  g_clear_pointer (&self->routing, g_free);
  g_clear_pointer (&self->error, g_free);
  self->n_experts = 0;
  self->ppl = NAN;
  self->n_scored = 0;
}

static void
add_result_row (CruEvaluateDialog *self, AdwPreferencesGroup *group, const char *title,
                const char *value)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *label = gtk_label_new (value);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), label);
  adw_preferences_group_add (group, row);
  g_ptr_array_add (self->result_rows, row);
}

static void
show_result (CruEvaluateDialog *self, const CruPerplexity *p)
{
  g_autofree char *ppl = g_strdup_printf ("%.4f", p->ppl);
  g_autofree char *nll = g_strdup_printf (_("%.4f nats per token"), p->mean_nll);
  g_autofree char *count = cru_format_count (p->n_scored);
  g_autofree char *tokens = g_strdup_printf (ngettext ("%s in %u window", "%s in %u windows",
                                                       p->n_windows), count, p->n_windows);
  g_autofree char *time = cru_format_seconds (p->seconds);

  self->ppl = p->ppl;
  self->n_scored = p->n_scored;
  add_result_row (self, self->result_group, _("Perplexity"), ppl);
  add_result_row (self, self->result_group, _("Mean Loss"), nll);
  add_result_row (self, self->result_group, _("Tokens Scored"), tokens);
  add_result_row (self, self->result_group, _("Time"), time);
  gtk_widget_set_visible (GTK_WIDGET (self->result_group), TRUE);

  if (p->routing != NULL && p->n_experts > 0)
    {
      guint64 total = 0;

      self->n_experts = p->n_experts;
      self->routing = g_new0 (double, p->n_experts);
      for (int l = 0; l < p->n_layers; l++)
        for (int e = 0; e < p->n_experts; e++)
          {
            self->routing[e] += (double) p->routing[(gsize) l * p->n_experts + e];
            total += p->routing[(gsize) l * p->n_experts + e];
          }
      for (int e = 0; e < p->n_experts; e++)
        {
          g_autofree char *title = g_strdup_printf (_("Expert %d"), e + 1);
          g_autofree char *share = NULL;

          self->routing[e] = total ? self->routing[e] / (double) total : 0.0;
          share = g_strdup_printf ("%.1f %%", 100.0 * self->routing[e]);
          add_result_row (self, self->routing_group, title, share);
        }
      gtk_widget_set_visible (GTK_WIDGET (self->routing_group), TRUE);
    }
}

static void
set_running (CruEvaluateDialog *self, gboolean running)
{
  gtk_widget_set_sensitive (GTK_WIDGET (self->setup_group), !running);
  gtk_widget_set_sensitive (self->evaluate_button, !running && self->text_path != NULL);
  gtk_button_set_label (GTK_BUTTON (self->close_button), running ? _("_Cancel") : _("_Close"));
  gtk_widget_set_visible (GTK_WIDGET (self->progress), running);
}

static gboolean
poll_progress (gpointer user_data)
{
  CruEvaluateDialog *self = user_data;
  gint done = g_atomic_int_get (&self->windows_done);
  gint total = g_atomic_int_get (&self->windows_total);

  if (total > 0)
    {
      g_autofree char *text = g_strdup_printf (_("Window %d of %d"), done, total);
      gtk_progress_bar_set_fraction (self->progress, (double) done / total);
      gtk_progress_bar_set_text (self->progress, text);
    }
  else
    {
      gtk_progress_bar_pulse (self->progress);
      gtk_progress_bar_set_text (self->progress, _("Reading the model and the text…"));
    }
  return G_SOURCE_CONTINUE;
}

static void
evaluate_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CruEvaluateDialog *self = CRU_EVALUATE_DIALOG (source);
  EvalJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);

  g_clear_handle_id (&self->poll_timeout, g_source_remove);
  g_clear_object (&self->cancellable);
  if (self->disposed)
    ;                   /* closed while running: nothing left to show */
  else if (ok)
    show_result (self, &job->result);
  else
    {
      gboolean cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                           || g_error_matches (error, CRU_ERROR, CRU_ERROR_CANCELLED);

      self->error = g_strdup (cancelled ? _("Cancelled.") : error->message);
      gtk_label_set_text (self->status_label, self->error);
      gtk_widget_set_visible (GTK_WIDGET (self->status_label), TRUE);
      if (cancelled)
        gtk_widget_remove_css_class (GTK_WIDGET (self->status_label), "error");
      else
        gtk_widget_add_css_class (GTK_WIDGET (self->status_label), "error");
    }
  if (!self->disposed)
    set_running (self, FALSE);
  g_signal_emit (self, signals[FINISHED], 0, ok);
}

void
cru_evaluate_dialog_start (CruEvaluateDialog *self)
{
  g_autoptr(GTask) task = NULL;
  EvalJob *job;

  g_return_if_fail (CRU_IS_EVALUATE_DIALOG (self));
  if (self->cancellable != NULL || self->text_path == NULL)
    return;

  clear_results (self);
  job = g_new0 (EvalJob, 1);
  job->model_path = g_strdup (self->model_path);
  job->text_path = g_strdup (self->text_path);
  job->ctx = (guint) gtk_spin_button_get_value_as_int (self->ctx_spin);
  g_atomic_int_set (&self->windows_done, 0);
  g_atomic_int_set (&self->windows_total, 0);
  self->cancellable = g_cancellable_new ();

  task = g_task_new (self, self->cancellable, evaluate_done, NULL);
  g_task_set_source_tag (task, cru_evaluate_dialog_start);
  g_task_set_task_data (task, job, (GDestroyNotify) eval_job_free);
  g_task_run_in_thread (task, evaluate_thread);

  set_running (self, TRUE);
  poll_progress (self);
  self->poll_timeout = g_timeout_add (100, poll_progress, self);
}

/* ---- the text ---- */

void
cru_evaluate_dialog_set_text_path (CruEvaluateDialog *self, const char *path)
{
  g_autofree char *shown = NULL;

  g_return_if_fail (CRU_IS_EVALUATE_DIALOG (self));
  g_free (self->text_path);
  self->text_path = g_strdup (path);
  if (path != NULL)
    {
      /* @path may be last_text_path itself (a new dialog starts from it). */
      if (path != last_text_path)
        {
          g_free (last_text_path);
          last_text_path = g_strdup (path);
        }
      shown = g_filename_display_name (path);
    }
  adw_action_row_set_subtitle (self->text_row, shown ? shown : _("Not chosen yet"));
  gtk_widget_set_sensitive (self->evaluate_button, path != NULL && self->cancellable == NULL);
}

const char *
cru_evaluate_dialog_get_text_path (CruEvaluateDialog *self)
{
  g_return_val_if_fail (CRU_IS_EVALUATE_DIALOG (self), NULL);
  return self->text_path;
}

void
cru_evaluate_dialog_set_ctx (CruEvaluateDialog *self, guint ctx)
{
  g_return_if_fail (CRU_IS_EVALUATE_DIALOG (self));
  gtk_spin_button_set_value (self->ctx_spin, ctx);
}

static void
text_chosen (GtkNativeDialog *chooser, int response, CruEvaluateDialog *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = file ? g_file_get_path (file) : NULL;
      if (path != NULL)
        cru_evaluate_dialog_set_text_path (self, path);
    }
  g_object_unref (chooser);
}

static void
choose_clicked (CruEvaluateDialog *self)
{
  GtkFileChooserNative *chooser;
  g_autoptr(GtkFileFilter) texts = gtk_file_filter_new ();
  g_autoptr(GtkFileFilter) all = gtk_file_filter_new ();

  chooser = gtk_file_chooser_native_new (_("Choose a Text"), GTK_WINDOW (self),
                                         GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"),
                                         _("_Cancel"));
  gtk_file_filter_set_name (texts, _("Text Files"));
  gtk_file_filter_add_mime_type (texts, "text/*");
  gtk_file_filter_set_name (all, _("All Files"));
  gtk_file_filter_add_pattern (all, "*");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), texts);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), all);
  if (self->text_path != NULL)
    {
      g_autoptr(GFile) file = g_file_new_for_path (self->text_path);
      g_autoptr(GFile) folder = g_file_get_parent (file);
      if (folder != NULL)
        gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), folder, NULL);
    }
  g_signal_connect (chooser, "response", G_CALLBACK (text_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
evaluate_clicked (CruEvaluateDialog *self)
{
  cru_evaluate_dialog_start (self);
}

static void
close_clicked (CruEvaluateDialog *self)
{
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  else
    gtk_window_close (GTK_WINDOW (self));
}

static gboolean
cru_evaluate_dialog_close_request (GtkWindow *window)
{
  CruEvaluateDialog *self = CRU_EVALUATE_DIALOG (window);

  /* The task holds a reference until the worker stops; it stops at the next window. */
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  return GTK_WINDOW_CLASS (cru_evaluate_dialog_parent_class)->close_request (window);
}

/* ---- getters ---- */

gboolean
cru_evaluate_dialog_is_running (CruEvaluateDialog *self)
{
  g_return_val_if_fail (CRU_IS_EVALUATE_DIALOG (self), FALSE);
  return self->cancellable != NULL;
}

double
cru_evaluate_dialog_get_perplexity (CruEvaluateDialog *self)
{
  g_return_val_if_fail (CRU_IS_EVALUATE_DIALOG (self), NAN);
  return self->ppl;
}

guint64
cru_evaluate_dialog_get_n_scored (CruEvaluateDialog *self)
{
  g_return_val_if_fail (CRU_IS_EVALUATE_DIALOG (self), 0);
  return self->n_scored;
}

const double *
cru_evaluate_dialog_get_routing (CruEvaluateDialog *self, int *n_experts)
{
  g_return_val_if_fail (CRU_IS_EVALUATE_DIALOG (self), NULL);
  if (n_experts != NULL)
    *n_experts = self->n_experts;
  return self->routing;
}

const char *
cru_evaluate_dialog_get_error (CruEvaluateDialog *self)
{
  g_return_val_if_fail (CRU_IS_EVALUATE_DIALOG (self), NULL);
  return self->error;
}

/* ---- life cycle ---- */

static void
cru_evaluate_dialog_dispose (GObject *object)
{
  CruEvaluateDialog *self = CRU_EVALUATE_DIALOG (object);

  self->disposed = TRUE;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->poll_timeout, g_source_remove);
  gtk_widget_dispose_template (GTK_WIDGET (self), CRU_TYPE_EVALUATE_DIALOG);
  G_OBJECT_CLASS (cru_evaluate_dialog_parent_class)->dispose (object);
}

static void
cru_evaluate_dialog_finalize (GObject *object)
{
  CruEvaluateDialog *self = CRU_EVALUATE_DIALOG (object);

  g_clear_object (&self->cancellable);
  g_free (self->model_path);
  g_free (self->text_path);
  g_free (self->routing);
  g_free (self->error);
  g_ptr_array_unref (self->result_rows);
  G_OBJECT_CLASS (cru_evaluate_dialog_parent_class)->finalize (object);
}

static void
cru_evaluate_dialog_class_init (CruEvaluateDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = cru_evaluate_dialog_dispose;
  object_class->finalize = cru_evaluate_dialog_finalize;
  window_class->close_request = cru_evaluate_dialog_close_request;

  signals[FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);

  gtk_widget_class_set_template_from_resource (widget_class,
      "/io/github/crucible_merge/Crucible/cru-evaluate-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, setup_group);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, text_row);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, choose_button);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, ctx_spin);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, evaluate_button);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, close_button);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, progress);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, status_label);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, result_group);
  gtk_widget_class_bind_template_child (widget_class, CruEvaluateDialog, routing_group);
  gtk_widget_class_bind_template_callback (widget_class, choose_clicked);
  gtk_widget_class_bind_template_callback (widget_class, evaluate_clicked);
  gtk_widget_class_bind_template_callback (widget_class, close_clicked);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
cru_evaluate_dialog_init (CruEvaluateDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->result_rows = g_ptr_array_new ();
  self->ppl = NAN;
}

CruEvaluateDialog *
cru_evaluate_dialog_new (GtkWindow *parent, const char *model_path, const char *title)
{
  CruEvaluateDialog *self;
  g_autofree char *heading = NULL;
  g_autofree char *sample = NULL;

  g_return_val_if_fail (model_path != NULL, NULL);
  self = g_object_new (CRU_TYPE_EVALUATE_DIALOG, "transient-for", parent, NULL);
  self->model_path = g_strdup (model_path);
  /* Translators: the dialog's heading, e.g. "Evaluate “ft-python”" */
  heading = g_strdup_printf (_("Evaluate “%s”"), title);
  gtk_window_set_title (GTK_WINDOW (self), heading);

  /* Start from the last text, else from the sample the demo models ship with. */
  if (last_text_path != NULL)
    cru_evaluate_dialog_set_text_path (self, last_text_path);
  else
    {
      g_autofree char *demo = cru_find_data_dir ("demo");
      sample = g_build_filename (demo, "eval", "python.txt", NULL);
      cru_evaluate_dialog_set_text_path (self, g_file_test (sample, G_FILE_TEST_IS_REGULAR)
                                                 ? sample : NULL);
    }
  return self;
}
