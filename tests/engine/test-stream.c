/* test-stream.c — streamed methods give the same bytes as whole-tensor calls
 *
 * SLERP, TIES and DARE (L1 rescale) need whole-tensor quantities; on the CPU they gather them
 * in passes over a tensor's chunks and then merge chunk by chunk. Here the chunk is made
 * tiny (CRU_TEST_CHUNK_ELEMENTS) so that every tensor spans many chunks, bf16 inputs make
 * many |Δ| equal (so top-k thresholds fall on ties that cross chunk borders), and each
 * recipe is merged streamed and not (CRU_TEST_NO_STREAMING): the files must be identical,
 * and the streamed plan must need less memory.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <string.h>

static char *models;

typedef struct {
  const char *name;
  const char *yaml;
  gboolean    streams;   /* a whole-tensor method that streams */
} Recipe;

#define TAIL "dtype: float32\nout_dtype: bfloat16\n"

static const Recipe recipes[] = {
  { "slerp",
    "merge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n"
    "parameters:\n  t: [0.0, 0.3, 1.0]\n" TAIL, TRUE },
  { "ties",
    "merge_method: ties\nbase_model: base\nmodels:\n"
    "  - model: ft1\n    parameters: {weight: 0.6, density: 0.4}\n"
    "  - model: ft2\n    parameters: {weight: 0.5, density: 0.7}\n"
    "parameters: {normalize: true}\n" TAIL, TRUE },
  { "ties-l1-lambda",
    "merge_method: ties\nbase_model: base\nmodels:\n"
    "  - model: ft1\n    parameters: {weight: 1.0, density: 0.3}\n"
    "  - model: ft2\n    parameters: {weight: 0.7, density: 1.0}\n"
    "parameters: {normalize: false, rescale: l1, lambda: 0.8}\n" TAIL, TRUE },
  { "dare-ties",
    "merge_method: dare_ties\nbase_model: base\nmodels:\n"
    "  - model: ft1\n    parameters: {weight: 0.6, density: 0.5}\n"
    "  - model: ft2\n    parameters: {weight: 0.4, density: 0.3}\n" TAIL, TRUE },
  { "dare-linear",
    "merge_method: dare_linear\nbase_model: base\nmodels:\n"
    "  - model: ft1\n    parameters: {weight: 0.6, density: 0.5}\n"
    "  - model: ft2\n    parameters: {weight: 0.4, density: 0.9}\n" TAIL, TRUE },
  { "two-levels",
    "name: inner\nmerge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n"
    "  - model: ft1\nparameters:\n  t: 0.6\n" TAIL
    "---\nmerge_method: ties\nbase_model: base\nmodels:\n"
    "  - model: inner\n    parameters: {weight: 0.5, density: 0.5}\n"
    "  - model: ft2\n    parameters: {weight: 0.5, density: 0.6}\n" TAIL, TRUE },
  { "sdm-w",
    "merge_method: sdm_w\nbase_model: base\nmodels:\n  - model: ft1\n  - model: ft2\n"
    "parameters: {k: 30}\n" TAIL, TRUE },
  { "sdm-w-square-per-tensor",
    "merge_method: sdm_w\nbase_model: base\nmodels:\n  - model: ft1\n  - model: ft2\n"
    "parameters: {k: 0, normalization: square, weights_scope: tensor}\n" TAIL, TRUE },
  { "sdm-w-over-slerp",
    "name: inner\nmerge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n"
    "  - model: ft1\nparameters:\n  t: 0.6\n" TAIL
    "---\nmerge_method: sdm_w\nbase_model: base\nmodels:\n  - model: inner\n"
    "  - model: ft2\nparameters: {k: 99.9}\n" TAIL, TRUE },
  /* not streamed: the same bytes either way, as a control */
  { "linear",
    "merge_method: linear\nmodels:\n  - model: ft1\n    parameters: {weight: 0.6}\n"
    "  - model: ft2\n    parameters: {weight: 0.4}\n" TAIL, FALSE },
  { "breadcrumbs-ties",
    "merge_method: breadcrumbs_ties\nbase_model: base\nmodels:\n"
    "  - model: ft1\n    parameters: {weight: 0.6, density: 0.5, gamma: 0.05}\n"
    "  - model: ft2\n    parameters: {weight: 0.4, density: 0.5, gamma: 0.05}\n" TAIL, FALSE },
};

static CruPlan *
compile (const Recipe *r, const char *out, gboolean stream)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;
  CruPlanOptions options;
  CruPlan *plan;

  if (stream)
    g_unsetenv ("CRU_TEST_NO_STREAMING");
  else
    g_setenv ("CRU_TEST_NO_STREAMING", "1", TRUE);
  graph = cru_graph_import_mergekit_full (r->yaml, -1, models, out, NULL, &error);
  g_assert_no_error (error);
  cru_plan_options_init (&options);
  options.n_threads = 2;
  options.seed = 11;
  options.device = CRU_DEVICE_CPU;
  options.copy_tokenizer = 0;
  plan = cru_plan_compile (graph, &options, NULL, &error);
  g_unsetenv ("CRU_TEST_NO_STREAMING");
  g_assert_no_error (error);
  test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  return plan;
}

static void
test_same_bytes (gconstpointer data)
{
  const Recipe *r = data;
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *whole = g_build_filename (tmp, "whole", NULL);
  g_autofree char *streamed = g_build_filename (tmp, "streamed", NULL);
  g_autofree char *whole_file = g_build_filename (whole, "model.safetensors", NULL);
  g_autofree char *streamed_file = g_build_filename (streamed, "model.safetensors", NULL);
  g_autoptr(CruPlan) plan_whole = compile (r, whole, FALSE);
  g_autoptr(CruPlan) plan_streamed = compile (r, streamed, TRUE);
  g_autoptr(GError) error = NULL;
  guint64 ram_whole = cru_plan_get_estimate (plan_whole)->peak_ram_bytes;
  guint64 ram_streamed = cru_plan_get_estimate (plan_streamed)->peak_ram_bytes;

  g_assert_true (cru_engine_run (plan_whole, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (cru_engine_run (plan_streamed, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (test_files_equal (whole_file, streamed_file));

  /* Memory per worker: chunks instead of whole tensors (of 1 MB as f32 here). Both
   * estimates include the test process's own RSS, which grows a little between them. */
  if (r->streams)
    g_assert_cmpuint (ram_streamed + (2u << 20), <, ram_whole);
}

int
main (int argc, char **argv)
{
  static const char *const names[] = { "base", "ft1", "ft2" };
  TestModelSpec spec;

  g_test_init (&argc, &argv, NULL);
  /* 2048-element chunks over tensors of 64 to 262 144 elements */
  g_setenv ("CRU_TEST_CHUNK_ELEMENTS", "2048", TRUE);
  models = test_tmpdir ();
  test_spec_init (&spec);
  spec.hidden = 64;
  spec.intermediate = 176;
  spec.vocab = 4096;
  spec.dtype = CRU_DTYPE_BF16;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *dir = g_build_filename (models, names[i], NULL);
      spec.seed = i + 1;
      test_write_model (dir, &spec);
    }
  for (guint i = 0; i < G_N_ELEMENTS (recipes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/engine/stream/%s-streamed-equals-whole",
                                               recipes[i].name);
      g_test_add_data_func (path, &recipes[i], test_same_bytes);
    }
  return g_test_run ();
}
