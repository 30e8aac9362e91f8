/* cli-merge.c — crucible-cli plan, merge and run
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cli-common.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cru-engine.h"
#include "cru-error.h"
#include "cru-graph.h"
#include "cru-plan.h"

typedef struct {
  int       threads;
  gint64    seed;
  char     *shard_size;
  gboolean  allow_crimes;
  gboolean  copy_tokenizer;
  gboolean  no_copy_tokenizer;
  gboolean  overwrite;
  char     *device;
  char     *dtype;
  char     *out;
  gboolean  json;
  gboolean  json_progress;
} Options;

static void
options_clear (Options *o)
{
  g_free (o->shard_size);
  g_free (o->device);
  g_free (o->dtype);
  g_free (o->out);
}

static GOptionContext *
make_context (const char *args, const char *summary, Options *o, gboolean with_out,
              gboolean with_json, gboolean with_progress)
{
  GOptionEntry common[] = {
    { "threads", 't', 0, G_OPTION_ARG_INT, &o->threads, N_("Worker threads (default: all cores)"), N_("N") },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &o->seed, N_("Seed of random methods (DARE, DELLA)"), N_("S") },
    { "out-shard-size", 0, 0, G_OPTION_ARG_STRING, &o->shard_size, N_("Largest output shard (e.g. 5GB)"), N_("SIZE") },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &o->dtype, N_("Output dtype: bfloat16, float16 or float32"), N_("DTYPE") },
    { "allow-crimes", 0, 0, G_OPTION_ARG_NONE, &o->allow_crimes, N_("Allow mixing architecture families"), NULL },
    { "copy-tokenizer", 0, 0, G_OPTION_ARG_NONE, &o->copy_tokenizer, N_("Copy the tokenizer files (default)"), NULL },
    { "no-copy-tokenizer", 0, 0, G_OPTION_ARG_NONE, &o->no_copy_tokenizer, N_("Do not copy the tokenizer files"), NULL },
    { "overwrite", 0, 0, G_OPTION_ARG_NONE, &o->overwrite, N_("Replace an existing output folder"), NULL },
    { "device", 0, 0, G_OPTION_ARG_STRING, &o->device, N_("cpu, cuda or auto (default)"), N_("DEVICE") },
    { NULL }
  };
  GOptionEntry extra[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &o->out, N_("Output folder (instead of the graph's)"), N_("DIR") },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o->json, N_("Print the plan as JSON"), NULL },
    { "json-progress", 0, 0, G_OPTION_ARG_NONE, &o->json_progress, N_("Print progress as one JSON object per line on stdout"), NULL },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new (args);
  GOptionEntry chosen[4] = { { NULL } };
  guint n = 0;

  o->seed = 0;
  g_option_context_set_summary (ctx, summary);
  g_option_context_add_main_entries (ctx, common, GETTEXT_PACKAGE);
  if (with_out)
    chosen[n++] = extra[0];
  if (with_json)
    chosen[n++] = extra[1];
  if (with_progress)
    chosen[n++] = extra[2];
  g_option_context_add_main_entries (ctx, chosen, GETTEXT_PACKAGE);
  return ctx;
}

static gboolean
fill_plan_options (Options *o, CruPlanOptions *po, GError **error)
{
  cru_plan_options_init (po);
  if (o->threads < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--threads must be a positive number"));
      return FALSE;
    }
  po->n_threads = o->threads;
  po->seed = (guint64) o->seed;
  if (o->shard_size && !cru_cli_parse_size (o->shard_size, &po->shard_size, error))
    return FALSE;
  if (o->dtype)
    {
      po->out_dtype = cru_dtype_from_user_string (o->dtype);
      if (po->out_dtype != CRU_DTYPE_F32 && po->out_dtype != CRU_DTYPE_F16
          && po->out_dtype != CRU_DTYPE_BF16)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("“%s” is not an output dtype (bfloat16, float16, float32)"), o->dtype);
          return FALSE;
        }
    }
  if (o->device)
    {
      if (g_ascii_strcasecmp (o->device, "cpu") == 0)
        po->device = CRU_DEVICE_CPU;
      else if (g_ascii_strcasecmp (o->device, "cuda") == 0)
        po->device = CRU_DEVICE_CUDA;
      else if (g_ascii_strcasecmp (o->device, "auto") == 0)
        po->device = CRU_DEVICE_AUTO;
      else
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("“%s” is not a device (cpu, cuda, auto)"), o->device);
          return FALSE;
        }
    }
  po->allow_crimes = o->allow_crimes;
  po->overwrite = o->overwrite;
  po->copy_tokenizer = o->no_copy_tokenizer ? 0 : o->copy_tokenizer ? 1 : -1;
  po->out_dir = o->out;
  return TRUE;
}

static gboolean
is_yaml (const char *path)
{
  return g_str_has_suffix (path, ".yml") || g_str_has_suffix (path, ".yaml");
}

/* The importer's warnings, so that the plan's own report does not repeat them. */
static GPtrArray *import_warnings;

/* Loads a .crucible graph or imports a mergekit YAML (printing the importer's warnings). */
static CruGraph *
load_graph (const char *path, GError **error)
{
  if (is_yaml (path))
    {
      CruGraph *graph;

      if (import_warnings == NULL)
        import_warnings = g_ptr_array_new_with_free_func (g_free);
      graph = cru_graph_import_mergekit_file (path, import_warnings, error);
      for (guint i = 0; graph && i < import_warnings->len; i++)
        g_printerr (_("warning: %s\n"), (char *) g_ptr_array_index (import_warnings, i));
      return graph;
    }
  else
    {
      g_autoptr(CruGraph) graph = cru_graph_new ();
      if (!cru_graph_load_file (graph, path, error))
        return NULL;
      return g_steal_pointer (&graph);
    }
}

/* TRUE when @c is a character that can be part of a parameter name. */
static gboolean
is_name_char (char c)
{
  return g_ascii_isalnum (c) || c == '_';
}

/* TRUE when @text mentions @name as a whole word (quoted or not: the quotes differ between
 * languages). */
static gboolean
mentions_name (const char *text, const char *name)
{
  gsize len = strlen (name);

  for (const char *at = strstr (text, name); at != NULL; at = strstr (at + 1, name))
    if ((at == text || !is_name_char (at[-1])) && !is_name_char (at[len]))
      return TRUE;
  return FALSE;
}

/* TRUE when @p is the plan's warning about an unknown parameter that the importer already
 * warned about (it warns about every parameter the method does not know). Decided from the
 * parameter's name, never from the wording, which may be translated. */
static gboolean
already_warned (const CruProblem *p)
{
  if (p->severity != CRU_SEVERITY_WARNING || p->param == NULL || import_warnings == NULL)
    return FALSE;
  for (guint i = 0; i < import_warnings->len; i++)
    if (mentions_name (g_ptr_array_index (import_warnings, i), p->param))
      return TRUE;
  return FALSE;
}

static void
print_problems (CruPlan *plan)
{
  GPtrArray *problems = cru_plan_get_problems (plan);

  for (guint i = 0; i < problems->len; i++)
    {
      CruProblem *p = g_ptr_array_index (problems, i);

      if (already_warned (p))
        continue;
      if (p->severity == CRU_SEVERITY_ERROR)
        g_printerr (_("error: %s\n"), p->message);
      else if (p->severity == CRU_SEVERITY_WARNING)
        g_printerr (_("warning: %s\n"), p->message);
      else
        g_printerr (_("note: %s\n"), p->message);
    }
}

int
cru_cli_plan (int argc, char **argv)
{
  Options o = { 0 };
  g_autoptr(GOptionContext) ctx =
    make_context (_("FILE"), _("Validate a .crucible graph or a mergekit YAML recipe and print "
                               "the estimates without reading any weights.\nExit status 3 when "
                               "it cannot run."),
                  &o, TRUE, TRUE, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;
  g_autoptr(CruPlan) plan = NULL;
  CruPlanOptions po;
  int status;

  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 2)
    {
      g_printerr (_("Usage: crucible-cli plan FILE [--json] [--threads N] [--out DIR] …\n"));
      options_clear (&o);
      return CRU_EXIT_USAGE;
    }
  if (o.json)
    /* --json is for programs: its messages (problems, the device note) stay in English,
     * whatever the locale */
    setlocale (LC_MESSAGES, "C");
  if (!fill_plan_options (&o, &po, &error))
    {
      g_printerr ("crucible-cli: %s\n", error->message);
      options_clear (&o);
      return CRU_EXIT_USAGE;
    }
  graph = load_graph (argv[1], &error);
  if (graph && po.out_dir == NULL && is_yaml (argv[1]))
    {
      /* A YAML recipe names no output folder: plan for one beside the working folder. */
      g_autofree char *base = g_path_get_basename (argv[1]);
      char *dot = strrchr (base, '.');
      if (dot)
        *dot = '\0';
      o.out = g_strdup_printf ("%s-merged", base);
      po.out_dir = o.out;
      if (!o.json)
        g_printerr (_("note: no --out given; planning for the folder “%s”\n"), o.out);
    }
  if (graph == NULL || (plan = cru_plan_compile (graph, &po, NULL, &error)) == NULL)
    {
      options_clear (&o);
      return cru_cli_fail (error);
    }
  if (o.json)
    {
      g_autoptr(JsonNode) root = cru_plan_to_json (plan);
      g_autoptr(JsonGenerator) gen = json_generator_new ();
      g_autofree char *text = NULL;

      json_generator_set_pretty (gen, TRUE);
      json_generator_set_root (gen, root);
      text = json_generator_to_data (gen, NULL);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *text = cru_plan_to_text (plan);
      printf ("%s", text);
    }
  status = cru_plan_is_runnable (plan) ? CRU_EXIT_OK : CRU_EXIT_INVALID;
  options_clear (&o);
  return status;
}

/* ---- running ---- */

typedef struct {
  CruPlan      *plan;
  GMainLoop    *loop;
  GError       *error;
  gboolean      ok;
  gboolean      json_progress;
  gboolean      bar;
  gboolean      bar_drawn;
} RunData;

/* The phase's name in --json-progress: machine-readable, never translated. */
static const char *
phase_name (CruRunPhase phase)
{
  static const char *const names[] = { "prepare", "stats", "merge", "finish", "done" };
  return phase <= CRU_RUN_PHASE_DONE ? names[phase] : "unknown";
}

/* The phase's name on the progress bar, translated. */
static const char *
phase_label (CruRunPhase phase)
{
  static const char *const labels[] = {
    /* TRANSLATORS: phases of a run on crucible-cli's progress bar; short (about 7 letters) */
    NC_("run phase", "prepare"), NC_("run phase", "stats"), NC_("run phase", "merge"),
    NC_("run phase", "finish"), NC_("run phase", "done"),
  };
  return phase <= CRU_RUN_PHASE_DONE ? g_dpgettext2 (GETTEXT_PACKAGE, "run phase", labels[phase])
                                     : phase_name (phase);
}

static void
on_progress (const CruProgress *p, gpointer user_data)
{
  RunData *rd = user_data;

  if (rd->json_progress)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonGenerator) gen = json_generator_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "phase");
      json_builder_add_string_value (b, phase_name (p->phase));
      json_builder_set_member_name (b, "bytes_done");
      json_builder_add_int_value (b, (gint64) p->bytes_done);
      json_builder_set_member_name (b, "bytes_total");
      json_builder_add_int_value (b, (gint64) p->bytes_total);
      json_builder_set_member_name (b, "tensors_done");
      json_builder_add_int_value (b, p->tensors_done);
      json_builder_set_member_name (b, "tensors_total");
      json_builder_add_int_value (b, p->tensors_total);
      json_builder_set_member_name (b, "tensor");
      if (p->tensor)
        json_builder_add_string_value (b, p->tensor);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "eta");
      if (p->eta_seconds >= 0)
        json_builder_add_double_value (b, p->eta_seconds);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "elapsed");
      json_builder_add_double_value (b, p->elapsed_seconds);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      json_generator_set_root (gen, root);
      text = json_generator_to_data (gen, NULL);
      printf ("%s\n", text);
      fflush (stdout);
    }
  else if (rd->bar)
    {
      const int width = 30;
      double frac = p->bytes_total ? (double) p->bytes_done / p->bytes_total : 0.0;
      int filled = (int) (frac * width);
      char bar[64];
      const char *label = phase_label (p->phase);
      int pad = MAX (0, 7 - (int) g_utf8_strlen (label, -1));   /* columns, not bytes */
      g_autofree char *eta = p->eta_seconds >= 0
                               /* TRANSLATORS: time left on the progress bar, "  5 s left" */
                               ? g_strdup_printf (_("%3.0f s left"), p->eta_seconds)
                               : g_strdup ("");
      /* TRANSLATORS: on the progress bar: tensors written / tensors in all, "12/39 tensors" */
      g_autofree char *count = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u/%u tensor",
                                                             "%u/%u tensors", p->tensors_total),
                                                p->tensors_done, p->tensors_total);

      for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '-';
      bar[width] = '\0';
      fprintf (stderr, "\r%s%*s [%s] %3.0f%% %s %s\033[K", label, pad, "", bar, frac * 100, count,
               eta);
      fflush (stderr);
      rd->bar_drawn = TRUE;
    }
}

static gpointer
run_thread (gpointer data)
{
  RunData *rd = data;

  rd->ok = cru_engine_run (rd->plan, on_progress, rd, cru_cli_get_cancellable (), &rd->error);
  g_main_loop_quit (rd->loop);
  return NULL;
}

static int
compile_and_run (CruGraph *graph, Options *o)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  GThread *thread;
  RunData rd = { 0 };
  CruPlanOptions po;
  gint64 start = g_get_monotonic_time ();
  GCancellable *cancellable = cru_cli_get_cancellable ();

  if (!fill_plan_options (o, &po, &error))
    {
      g_printerr ("crucible-cli: %s\n", error->message);
      return CRU_EXIT_USAGE;
    }
  plan = cru_plan_compile (graph, &po, cancellable, &error);
  if (plan == NULL)
    return cru_cli_fail (error);
  print_problems (plan);
  if (!cru_plan_is_runnable (plan))
    {
      g_printerr (_("crucible-cli: the merge cannot run; fix the errors above\n"));
      return CRU_EXIT_INVALID;
    }

  loop = g_main_loop_new (NULL, FALSE);
  rd.plan = plan;
  rd.loop = loop;
  rd.json_progress = o->json_progress;
  rd.bar = !o->json_progress && isatty (STDERR_FILENO);
  thread = g_thread_new ("crucible-run", run_thread, &rd);
  g_main_loop_run (loop);
  g_thread_join (thread);
  if (rd.bar_drawn)
    fprintf (stderr, "\n");

  if (!rd.ok)
    {
      int status;
      if (g_error_matches (rd.error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
          || g_error_matches (rd.error, CRU_ERROR, CRU_ERROR_CANCELLED)
          || g_cancellable_is_cancelled (cancellable))
        {
          g_printerr (_("crucible-cli: cancelled; nothing was written to %s\n"),
                      cru_plan_get_output_dir (plan));
          status = CRU_EXIT_CANCELLED;
        }
      else
        status = cru_cli_fail (rd.error);
      g_clear_error (&rd.error);
      return status;
    }
  else
    {
      const CruEstimate *est = cru_plan_get_estimate (plan);
      g_autofree char *size = g_format_size (est->output_bytes);
      double secs = (g_get_monotonic_time () - start) / 1e6;
      FILE *out = o->json_progress ? stderr : stdout;
      guint n_experts = cru_plan_get_n_experts (plan);

      g_autoptr(GPtrArray) found = cru_plan_get_run_warnings (plan);

      for (guint i = 0; i < found->len; i++)
        g_printerr (_("warning: %s\n"), ((CruProblem *) g_ptr_array_index (found, i))->message);
      if (n_experts > 0)
        fprintf (out, g_dngettext (GETTEXT_PACKAGE,
                                   /* TRANSLATORS: a mixture of experts was written: "Built a
                                    * mixture of 4 experts into out (67 tensors, 1.2 GB) in
                                    * 3.4 s"; the plural follows the number of experts, the
                                    * third directive is the number of tensors */
                                   "Built a mixture of %u expert into %s (%u tensors, %s) in "
                                   "%.1f s\n",
                                   "Built a mixture of %u experts into %s (%u tensors, %s) in "
                                   "%.1f s\n", n_experts),
                 n_experts, cru_plan_get_output_dir (plan), est->n_tensors, size, secs);
      else
        fprintf (out, g_dngettext (GETTEXT_PACKAGE, "Merged %u tensor into %s (%s) in %.1f s\n",
                                   "Merged %u tensors into %s (%s) in %.1f s\n", est->n_tensors),
                 est->n_tensors, cru_plan_get_output_dir (plan), size, secs);
    }
  return CRU_EXIT_OK;
}

int
cru_cli_merge (int argc, char **argv)
{
  Options o = { 0 };
  g_autoptr(GOptionContext) ctx =
    make_context ("CONFIG.yml OUT_DIR", _("Run a mergekit YAML recipe into OUT_DIR."), &o,
                  FALSE, FALSE, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;
  int status;

  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 3)
    {
      g_printerr (_("Usage: crucible-cli merge CONFIG.yml OUT_DIR [OPTIONS…]\n"));
      options_clear (&o);
      return CRU_EXIT_USAGE;
    }
  cru_cli_get_cancellable ();
  graph = load_graph (argv[1], &error);
  if (graph == NULL)
    {
      options_clear (&o);
      return cru_cli_fail (error);
    }
  o.out = g_strdup (argv[2]);
  status = compile_and_run (graph, &o);
  options_clear (&o);
  return status;
}

int
cru_cli_run (int argc, char **argv)
{
  Options o = { 0 };
  g_autoptr(GOptionContext) ctx =
    make_context ("GRAPH.crucible", _("Run a .crucible graph (or a mergekit YAML recipe)."),
                  &o, TRUE, FALSE, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;
  int status;

  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 2)
    {
      g_printerr (_("Usage: crucible-cli run GRAPH.crucible [--out DIR] [OPTIONS…]\n"));
      options_clear (&o);
      return CRU_EXIT_USAGE;
    }
  cru_cli_get_cancellable ();
  graph = load_graph (argv[1], &error);
  if (graph == NULL)
    {
      options_clear (&o);
      return cru_cli_fail (error);
    }
  status = compile_and_run (graph, &o);
  options_clear (&o);
  return status;
}
