/* test-cli-moe.c — mixtures of experts through crucible-cli: plan, run, import/export of
 * mergekit-moe YAML, eval of the result, warnings, and the peak RAM estimate against the
 * measured peak (of merges too)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *
cli (void)
{
  return g_getenv ("CRU_CLI");
}

static char *
source_path (const char *rel)
{
  const char *src = g_getenv ("CRU_SOURCE_DIR");
  return g_build_filename (src ? src : ".", rel, NULL);
}

#define NEEDS_CLI_AND_DEMO()                                         \
  if (cli () == NULL || !g_file_test (cli (), G_FILE_TEST_IS_EXECUTABLE)) \
    {                                                                \
      g_test_skip ("CRU_CLI is not set");                            \
      return;                                                        \
    }                                                                \
  if (test_demo_dir () == NULL)                                      \
    {                                                                \
      g_test_skip ("data/demo is missing");                          \
      return;                                                        \
    }

/* Runs the CLI; returns its exit status, captures stdout/stderr. */
static int
run_cli (char **out, char **err, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int status = -1;
  va_list ap;
  const char *arg;

  g_ptr_array_add (argv, (char *) cli ());
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err, &status, &error));
  g_assert_no_error (error);
  if (err && *err)
    g_test_message ("stderr: %s", *err);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static gboolean
same_file (const char *dir_a, const char *dir_b, const char *name)
{
  g_autofree char *a = g_build_filename (dir_a, name, NULL);
  g_autofree char *b = g_build_filename (dir_b, name, NULL);
  return test_files_equal (a, b);
}

static JsonObject *
plan_json (JsonParser *parser, const char *graph, const char *out)
{
  g_autofree char *so = NULL, *se = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (run_cli (&so, &se, "plan", graph, "--json", "--out", out, "--threads", "2",
                            NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, so, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

/* `plan` on the welcome page's example: the text and the JSON both describe the MoE. */
static void
test_plan_example (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autofree char *example = source_path ("data/examples/moe-from-experts.crucible");
  g_autofree char *so = NULL, *se = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *root, *moe;

  g_assert_cmpint (run_cli (&so, &se, "plan", example, "--out", out, NULL), ==, 0);
  g_assert_nonnull (strstr (so, "67 tensors, 4 layers, float32"));
  g_assert_nonnull (strstr (so, "Experts: 3, 2 per token, mixtral"));
  g_assert_nonnull (strstr (so, "Memory:  about"));
  g_assert_nonnull (strstr (so, "Ready to run (1 warning)"));
  root = plan_json (parser, example, out);
  g_assert_true (json_object_get_boolean_member (root, "runnable"));
  g_assert_cmpint (json_object_get_int_member (root, "tensors"), ==, 67);
  moe = json_object_get_object_member (root, "moe");
  g_assert_cmpint (json_object_get_int_member (moe, "experts"), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (moe, "gate_mode"), ==, "hidden");
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

/* `run` of the example equals `moe` of the same recipe as YAML, and `eval` scores it. */
static void
test_run_example (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "from-graph", NULL);
  g_autofree char *ref = g_build_filename (tmp, "from-yaml", NULL);
  g_autofree char *example = source_path ("data/examples/moe-from-experts.crucible");
  g_autofree char *yaml = source_path ("tests/engine/moe-example.yml");
  g_autofree char *python = source_path ("data/demo/eval/python.txt");
  g_autofree char *text = g_build_filename (tmp, "sample.txt", NULL);
  g_autofree char *sample = NULL;
  g_autofree char *so = NULL, *se = NULL;

  g_assert_cmpint (run_cli (&so, &se, "run", example, "--out", out, "--threads", "2", NULL),
                   ==, 0);
  g_assert_nonnull (strstr (so, "Built a mixture of 3 experts into "));
  g_assert_nonnull (strstr (so, " (67 tensors, "));
  g_assert_nonnull (strstr (se, "not a power of two"));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);
  g_assert_cmpint (run_cli (&so, &se, "moe", yaml, ref, NULL), ==, 0);
  g_assert_true (same_file (out, ref, "model.safetensors"));
  g_assert_true (same_file (out, ref, "config.json"));
  g_assert_true (same_file (out, ref, "tokenizer.json"));

  /* a few kB of the demo's Python text: enough to score and to see the routing */
  g_assert_true (g_file_get_contents (python, &sample, NULL, NULL));
  g_assert_true (g_file_set_contents (text, sample, MIN (strlen (sample), 4000), NULL));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);
  g_assert_cmpint (run_cli (&so, &se, "eval", out, "--text", text, "--routing", NULL), ==, 0);
  g_assert_nonnull (strstr (so, "perplexity"));
  g_assert_nonnull (strstr (so, "routing (share of token selections per expert)"));
}

/* mergekit-moe YAML → graph → YAML is stable, and the exported YAML builds the same model
 * as the original (with `crucible-cli moe`, and with `run` on the imported graph). */
static void
test_import_export_round_trip (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *yaml = source_path ("tests/lm/moe-demo.yml");
  g_autofree char *graph = g_build_filename (tmp, "moe.crucible", NULL);
  g_autofree char *back = g_build_filename (tmp, "back.yml", NULL);
  g_autofree char *graph2 = g_build_filename (tmp, "again.crucible", NULL);
  g_autofree char *back2 = g_build_filename (tmp, "again.yml", NULL);
  g_autofree char *a = g_build_filename (tmp, "original", NULL);
  g_autofree char *b = g_build_filename (tmp, "exported", NULL);
  g_autofree char *c = g_build_filename (tmp, "graph", NULL);
  g_autofree char *text = NULL, *text2 = NULL, *so = NULL, *se = NULL;
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) nodes = NULL;
  guint n_moe = 0;

  g_assert_cmpint (run_cli (&so, &se, "import", yaml, "-o", graph, NULL), ==, 0);
  g_assert_true (cru_graph_load_file (g, graph, &error));
  g_assert_no_error (error);
  nodes = cru_graph_list_nodes (g);
  for (guint i = 0; i < nodes->len; i++)
    n_moe += ((const CruNode *) nodes->pdata[i])->kind == CRU_NODE_MOE;
  g_assert_cmpuint (n_moe, ==, 1);
  g_assert_cmpuint (nodes->len, ==, 6);   /* MoE, base, 3 experts, output */

  g_assert_cmpint (run_cli (NULL, NULL, "export", graph, "-o", back, NULL), ==, 0);
  g_assert_cmpint (run_cli (NULL, NULL, "import", back, "-o", graph2, NULL), ==, 0);
  g_assert_cmpint (run_cli (NULL, NULL, "export", graph2, "-o", back2, NULL), ==, 0);
  g_assert_true (g_file_get_contents (back, &text, NULL, NULL));
  g_assert_true (g_file_get_contents (back2, &text2, NULL, NULL));
  g_assert_cmpstr (text, ==, text2);
  g_assert_nonnull (strstr (text, "gate_mode: hidden"));
  g_assert_nonnull (strstr (text, "positive_prompts:"));

  g_assert_cmpint (run_cli (NULL, NULL, "moe", yaml, a, NULL), ==, 0);
  g_assert_cmpint (run_cli (NULL, NULL, "moe", back, b, NULL), ==, 0);
  g_assert_cmpint (run_cli (NULL, NULL, "run", graph, "--out", c, NULL), ==, 0);
  g_assert_true (same_file (a, b, "model.safetensors"));
  g_assert_true (same_file (a, c, "model.safetensors"));
}

/* Two experts with the same prompts: the plan warns, the run prints the router warning. */
static void
test_run_prints_router_warning (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *yaml = g_build_filename (tmp, "same.yml", NULL);
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autofree char *demo = g_strdup (test_demo_dir ());
  g_autofree char *text = NULL, *so = NULL, *se = NULL;

  text = g_strdup_printf ("base_model: %s/base\nexperts:\n"
                          "  - source_model: %s/ft-python\n    positive_prompts: [\"def f():\"]\n"
                          "  - source_model: %s/ft-c\n    positive_prompts: [\"def f():\"]\n"
                          "  - source_model: %s/ft-prose\n    positive_prompts: [\"Once\"]\n"
                          "  - source_model: %s/ft-c\n    positive_prompts: [\"int x;\"]\n",
                          demo, demo, demo, demo, demo);
  g_assert_true (g_file_set_contents (yaml, text, -1, NULL));
  g_assert_cmpint (run_cli (&so, &se, "run", yaml, "--out", out, NULL), ==, 0);
  g_assert_nonnull (strstr (se, "have the same prompts"));
  g_assert_nonnull (strstr (se, "degenerate routing"));
  g_assert_null (strstr (se, "power of two"));
}

/* ---- peak RAM: the estimate within 20% of what the run really holds ---- */

/* The peak RSS of `crucible-cli run GRAPH --out OUT`. A process's peak counts what its
 * parent held when it forked, so a small fresh process (this test, run with
 * --measure-peak) forks the CLI rather than the test process itself. */
static int
measure_peak_main (char **argv)
{
  struct rusage usage;
  int status;
  pid_t pid = fork ();

  if (pid == 0)
    {
      int fd = open ("/dev/null", O_WRONLY);
      dup2 (fd, 1);
      dup2 (fd, 2);
      execv (argv[0], argv);
      _exit (127);
    }
  if (pid < 0 || wait4 (pid, &status, 0, &usage) != pid || !WIFEXITED (status)
      || WEXITSTATUS (status) != 0)
    return 1;
  printf ("%ld\n", usage.ru_maxrss);
  return 0;
}

static guint64
measured_peak (const char *graph, const char *out)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  const char *argv[] = { self, "--measure-peak", cli (), "run", graph, "--out", out,
                         "--threads", "2", NULL };
  g_autofree char *so = NULL;
  g_autoptr(GError) error = NULL;
  int status = -1;

  g_assert_nonnull (self);
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &so,
                               NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  return g_ascii_strtoull (so, NULL, 10) * 1024;
}

/* The estimate against the highest of @runs measured peaks: which worker runs which tensor
 * changes from run to run, and so does how much of the second worker's arena is touched
 * (SDM-W's wide merge measured 19.9–24.1 MB against one estimate). */
static void
assert_estimate_close (const char *graph, const char *tmp, int runs)
{
  g_autofree char *out = g_build_filename (tmp, "measured", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *root = plan_json (parser, graph, out);
  guint64 estimate = json_object_get_int_member (json_object_get_object_member (root,
                                                                                "estimate"),
                                                 "peak_ram_bytes");
  guint64 measured = 0;
  g_autofree char *of = NULL;

  for (int r = 0; r < runs; r++)
    {
      guint64 peak = measured_peak (graph, out);

      measured = MAX (measured, peak);
      test_rm_rf (out);
    }
  of = runs > 1 ? g_strdup_printf (" (the highest of %d runs)", runs) : g_strdup ("");
  g_test_message ("%s: estimated %" G_GUINT64_FORMAT " bytes, measured %" G_GUINT64_FORMAT
                  "%s", graph, estimate, measured, of);
  g_assert_cmpfloat ((double) estimate, >=, 0.8 * (double) measured);
  g_assert_cmpfloat ((double) estimate, <=, 1.2 * (double) measured);
}

static void
copy_tokenizer (const char *to)
{
  static const char *const files[] = { "tokenizer.json", "tokenizer_config.json",
                                       "special_tokens_map.json" };
  g_autofree char *base = g_build_filename (test_demo_dir (), "base", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *a = g_build_filename (base, files[i], NULL);
      g_autofree char *b = g_build_filename (to, files[i], NULL);
      g_autofree char *data = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (a, &data, &len, NULL));
      g_assert_true (g_file_set_contents (b, data, len, NULL));
    }
}

static void
test_peak_ram_estimate (void)
{
  NEEDS_CLI_AND_DEMO ();
#ifdef CRU_TEST_SANITIZED
  g_test_skip ("a sanitizer's shadow memory and quarantine are not the program's memory");
  return;
#endif
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *example = source_path ("data/examples/moe-from-experts.crucible");
  g_autofree char *yaml = g_build_filename (tmp, "wide.yml", NULL);
  g_autofree char *text = NULL;
  const char *names[] = { "base", "ft1", "ft2" };
  TestModelSpec spec;

  /* meson test sets MALLOC_PERTURB_, which fills every allocation and so makes buffers
   * resident that a run only partly touches: measure what users get. */
  g_unsetenv ("MALLOC_PERTURB_");
  /* the demo: mostly the process itself */
  assert_estimate_close (example, tmp, 1);

  /* wide layers in bfloat16: the router's forward pass holds one layer in f32 */
  test_spec_init (&spec);
  spec.layers = 2, spec.hidden = 512, spec.intermediate = 2048, spec.vocab = 300;
  spec.dtype = CRU_DTYPE_BF16;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *dir = g_build_filename (tmp, names[i], NULL);
      spec.seed = i + 1;
      test_write_model (dir, &spec);
      copy_tokenizer (dir);
    }
  text = g_strdup_printf ("base_model: %s/base\nexperts:\n"
                          "  - source_model: %s/ft1\n    positive_prompts: [\"def f():\"]\n"
                          "  - source_model: %s/ft2\n    positive_prompts: [\"Once upon\"]\n",
                          tmp, tmp, tmp);
  g_assert_true (g_file_set_contents (yaml, text, -1, NULL));
  assert_estimate_close (yaml, tmp, 1);
}

/* The same check for merges: the demo models (mostly the process itself) and a synthetic
 * bfloat16 model with a large embedding, so that arenas and the writer's buffers count. */
static void
test_merge_peak_ram_estimate (void)
{
  NEEDS_CLI_AND_DEMO ();
#ifdef CRU_TEST_SANITIZED
  g_test_skip ("a sanitizer's shadow memory and quarantine are not the program's memory");
  return;
#endif
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *ties = source_path ("tests/cli/recipes/ties.yml");
  g_autofree char *sdm = source_path ("tools/golden/quality/sdm_w_linear.yml");
  const char *methods[] = { "linear", "ties", "sdm_w" };
  const char *names[] = { "base", "ft1", "ft2" };
  TestModelSpec spec;

  g_unsetenv ("MALLOC_PERTURB_");
  assert_estimate_close (ties, tmp, 3);
  assert_estimate_close (sdm, tmp, 3);

  test_spec_init (&spec);
  spec.layers = 2, spec.hidden = 512, spec.intermediate = 1536, spec.vocab = 16000;
  spec.dtype = CRU_DTYPE_BF16;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *dir = g_build_filename (tmp, names[i], NULL);
      spec.seed = i + 1;
      test_write_model (dir, &spec);
    }
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autofree char *yaml = g_build_filename (tmp, "wide-merge.yml", NULL);
      g_autofree char *text = g_strdup_printf (
          "merge_method: %s\nbase_model: %s/base\nmodels:\n"
          "  - model: %s/ft1\n    parameters: {weight: 0.5, density: 0.5}\n"
          "  - model: %s/ft2\n    parameters: {weight: 0.5, density: 0.5}\n"
          "dtype: bfloat16\n", methods[i], tmp, tmp, tmp);
      g_assert_true (g_file_set_contents (yaml, text, -1, NULL));
      assert_estimate_close (yaml, tmp, 3);
    }
}

int
main (int argc, char **argv)
{
  if (argc > 2 && g_str_equal (argv[1], "--measure-peak"))
    return measure_peak_main (argv + 2);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/moe/plan-example", test_plan_example);
  g_test_add_func ("/cli/moe/run-example-equals-moe-and-evals", test_run_example);
  g_test_add_func ("/cli/moe/import-export-round-trip", test_import_export_round_trip);
  g_test_add_func ("/cli/moe/run-prints-router-warning", test_run_prints_router_warning);
  g_test_add_func ("/cli/moe/peak-ram-estimate-within-20-percent", test_peak_ram_estimate);
  g_test_add_func ("/cli/merge/peak-ram-estimate-within-20-percent",
                   test_merge_peak_ram_estimate);
  return g_test_run ();
}
