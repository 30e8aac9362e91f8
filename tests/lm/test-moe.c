/* test-moe.c — building a mixture of experts from the demo models (mergekit-moe parity)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "cru-error.h"
#include "cru-moe.h"
#include "cru-perplexity.h"

static char *tmp_root;

static char *
source_path (const char *rel)
{
  return g_build_filename (g_getenv ("CRU_SOURCE_DIR"), rel, NULL);
}

static CruModel *
open_model (const char *path)
{
  g_autoptr (GError) error = NULL;
  CruModel *m = cru_model_open (path, &error);
  g_assert_no_error (error);
  return m;
}

static char *
build_demo (const char *yaml_rel, const char *name, GPtrArray *warnings)
{
  g_autofree char *yaml = source_path (yaml_rel);
  g_autoptr (GError) error = NULL;
  g_autoptr (CruMoeConfig) config = cru_moe_config_from_yaml (yaml, &error);
  char *out = g_build_filename (tmp_root, name, NULL);

  g_assert_no_error (error);
  config->n_threads = 2;
  g_assert_true (cru_moe_build (config, out, TRUE, NULL, NULL, warnings, NULL, &error));
  g_assert_no_error (error);
  return out;
}

static void
assert_same_tensor (CruModel *a, const char *na, CruModel *b, const char *nb)
{
  const CruModelTensor *ta = cru_model_lookup (a, na), *tb = cru_model_lookup (b, nb);
  g_autofree float *x = NULL, *y = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (ta);
  g_assert_nonnull (tb);
  g_assert_cmpuint (ta->info->numel, ==, tb->info->numel);
  x = g_new (float, ta->info->numel);
  y = g_new (float, tb->info->numel);
  g_assert_true (cru_model_read_f32 (a, ta, 0, ta->info->numel, x, &error));
  g_assert_true (cru_model_read_f32 (b, tb, 0, tb->info->numel, y, &error));
  g_assert_cmpmem (x, ta->info->numel * 4, y, tb->info->numel * 4);
}

static void
test_demo_layout_and_config (void)
{
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = build_demo ("tests/lm/moe-demo.yml", "layout", warnings);
  g_autofree char *demo = g_strdup (g_getenv ("CRU_DEMO_DIR"));
  g_autofree char *base_dir = g_build_filename (demo, "base", NULL);
  g_autofree char *c_dir = g_build_filename (demo, "ft-c", NULL);
  g_autoptr (CruModel) moe = open_model (out);
  g_autoptr (CruModel) base = open_model (base_dir);
  g_autoptr (CruModel) ftc = open_model (c_dir);
  JsonObject *cfg = cru_model_get_config (moe);
  g_auto (GStrv) tok_files = cru_model_get_tokenizer_files (moe);
  const CruModelTensor *gate;

  /* 27 non-MLP tensors + 4 layers × 3 experts × 3 + 4 routers */
  g_assert_cmpuint (cru_model_get_n_tensors (moe), ==, 27 + 36 + 4);
  g_assert_null (cru_model_lookup (moe, "model.layers.0.mlp.gate_proj.weight"));
  gate = cru_model_lookup (moe, "model.layers.3.block_sparse_moe.gate.weight");
  g_assert_nonnull (gate);
  g_assert_cmpint (gate->info->ndim, ==, 2);
  g_assert_cmpint (gate->info->shape[0], ==, 3);
  g_assert_cmpint (gate->info->shape[1], ==, 128);
  g_assert_cmpint (gate->info->dtype, ==, CRU_DTYPE_F32);
  /* w1 = gate_proj, w2 = down_proj, w3 = up_proj of expert model k */
  assert_same_tensor (moe, "model.layers.2.block_sparse_moe.experts.1.w1.weight", ftc,
                      "model.layers.2.mlp.gate_proj.weight");
  assert_same_tensor (moe, "model.layers.2.block_sparse_moe.experts.1.w2.weight", ftc,
                      "model.layers.2.mlp.down_proj.weight");
  assert_same_tensor (moe, "model.layers.0.block_sparse_moe.experts.1.w3.weight", ftc,
                      "model.layers.0.mlp.up_proj.weight");
  assert_same_tensor (moe, "model.layers.1.self_attn.q_proj.weight", base,
                      "model.layers.1.self_attn.q_proj.weight");
  assert_same_tensor (moe, "lm_head.weight", base, "lm_head.weight");

  g_assert_cmpstr (json_object_get_string_member (cfg, "model_type"), ==, "mixtral");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (cfg,
                                                  "architectures"), 0), ==, "MixtralForCausalLM");
  g_assert_cmpint (json_object_get_int_member (cfg, "num_local_experts"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (cfg, "num_experts_per_tok"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (cfg, "hidden_size"), ==, 128);
  g_assert_cmpstr (json_object_get_string_member (cfg, "torch_dtype"), ==, "float32");
  g_assert_true (g_strv_contains ((const char *const *) tok_files, "tokenizer.json"));
  g_assert_true (g_strv_contains ((const char *const *) tok_files, "tokenizer_config.json"));
  /* 3 experts: the power-of-two warning, and no degenerate-gate warning */
  g_assert_cmpuint (warnings->len, ==, 1);
  g_assert_nonnull (strstr (warnings->pdata[0], "power"));
}

/* Router rows equal mergekit-moe's (run in float32) for the same YAML. */
static void
test_router_rows_match_mergekit (void)
{
  g_autofree char *golden = source_path ("tests/lm/moe-golden.json");
  g_autofree char *yaml = source_path ("tests/lm/moe-demo.yml");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (CruMoeConfig) config = cru_moe_config_from_yaml (yaml, &error);
  g_autofree char *base_path = NULL;
  g_autoptr (CruModel) base = NULL;
  g_autofree float *gates = NULL;
  JsonArray *layers;
  double worst = 0;

  g_assert_no_error (error);
  g_assert_true (json_parser_load_from_file (parser, golden, &error));
  layers = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                         "gates");
  base_path = cru_moe_resolve_model (config, config->base_model, &error);
  g_assert_no_error (error);
  base = open_model (base_path);
  gates = cru_moe_compute_gates (config, base, config->experts, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (json_array_get_length (layers), ==, 4);
  for (guint l = 0; l < 4; l++)
    {
      JsonArray *rows = json_array_get_array_element (layers, l);
      g_assert_cmpuint (json_array_get_length (rows), ==, 3);
      for (guint e = 0; e < 3; e++)
        {
          JsonArray *row = json_array_get_array_element (rows, e);
          double norm = 0;
          g_assert_cmpuint (json_array_get_length (row), ==, 128);
          for (guint j = 0; j < 128; j++)
            {
              float v = gates[(l * 3 + e) * 128 + j];
              worst = MAX (worst, fabs (v - json_array_get_double_element (row, j)));
              norm += (double) v * v;
            }
          g_assert_cmpfloat_with_epsilon (norm, 1.0, 1e-5);
        }
    }
  g_test_message ("router rows vs mergekit-moe: max abs difference %.2e", worst);
  g_assert_cmpfloat (worst, <, 1e-4);
}

/* The built MoE runs: perplexity equals transformers' MixtralForCausalLM on it, and the
 * routing counts add up. */
static void
test_eval_on_moe (void)
{
  g_autofree char *out = build_demo ("tests/lm/moe-demo.yml", "eval", NULL);
  g_autofree char *golden = source_path ("tests/lm/moe-golden.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (CruModel) moe = open_model (out);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "eval", "c.txt", NULL);
  g_autofree char *text = NULL;
  JsonObject *ref;
  CruPerplexity p;
  gsize len;

  g_assert_true (json_parser_load_from_file (parser, golden, &error));
  ref = json_object_get_object_member (json_object_get_object_member (
          json_node_get_object (json_parser_get_root (parser)), "perplexity_slices"), "c");
  g_assert_true (g_file_get_contents (path, &text, &len, &error));
  g_assert_true (cru_perplexity_run (moe, NULL, text, json_object_get_int_member (ref, "bytes"),
                                     256, 2, NULL, NULL, &p, NULL, &error));
  g_assert_no_error (error);
  g_test_message ("MoE on c slice: %.6f, transformers %.6f", p.ppl,
                  json_object_get_double_member (ref, "ppl"));
  g_assert_cmpfloat (fabs (p.ppl / json_object_get_double_member (ref, "ppl") - 1), <, 1e-4);
  g_assert_cmpint (p.n_experts, ==, 3);
  for (int l = 0; l < p.n_layers; l++)
    {
      guint64 sum = 0;
      for (int e = 0; e < 3; e++)
        sum += p.routing[l * 3 + e];
      g_assert_cmpuint (sum, ==, 2 * p.n_routed_tokens);   /* top-2 */
    }
  cru_perplexity_clear (&p);
}

static CruMoeConfig *
config_for (const char *yaml)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (g_getenv ("CRU_SOURCE_DIR"), "tests", "lm", NULL);
  CruMoeConfig *c = cru_moe_config_from_yaml_data (yaml, -1, "test.yml", dir, &error);
  g_assert_no_error (error);
  return c;
}

/* Near-identical prompts give gate rows that are almost parallel: warned about. */
static void
test_condition_warning (void)
{
  g_autoptr (CruMoeConfig) c = config_for (
      "base_model: ../../data/demo/base\n"
      "experts:\n"
      "  - source_model: ../../data/demo/ft-python\n"
      "    positive_prompts: [\"def main():\\n    return 0\\n\"]\n"
      "  - source_model: ../../data/demo/ft-c\n"
      "    positive_prompts: [\"def main():\\n    return 1\\n\"]\n");
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = g_build_filename (tmp_root, "degenerate", NULL);
  g_autoptr (GError) error = NULL;
  static const float ortho[] = { 1, 0, 0, 0, 2, 0 };
  static const float close[] = { 1, 0, 0, 1, 0.01f, 0 };

  g_assert_cmpfloat_with_epsilon (cru_moe_condition_number (ortho, 2, 3), 2.0, 1e-9);
  g_assert_cmpfloat (cru_moe_condition_number (close, 2, 3), >, 100);
  g_assert_true (cru_moe_build (c, out, TRUE, NULL, NULL, warnings, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (warnings->len, ==, 1);
  g_assert_nonnull (strstr (warnings->pdata[0], "degenerate"));
}

static void
test_config_errors (void)
{
  static const char *bad[] = {
    "base_model: ../../data/demo/base\nexperts:\n  - source_model: ../../data/demo/ft-c\n"
    "    positive_prompts: [a]\nexperts_per_tokn: 1\n",
    "base_model: ../../data/demo/base\ngate_mode: hiden\nexperts: []\n",
    "base_model: ../../data/demo/base\n",
    "experts: [ {source_model: x, positive_prompts: [a], weight: 2} ]\nbase_model: b\n",
    "- not a mapping\n",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      CruMoeConfig *c = cru_moe_config_from_yaml_data (bad[i], -1, "bad.yml", NULL, &error);
      g_assert_null (c);
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, "bad.yml"));
    }
  {
    g_autoptr (CruMoeConfig) c = config_for (
        "base_model: ../../data/demo/base\nexperts_per_token: 3\nexperts:\n"
        "  - source_model: ../../data/demo/ft-c\n    positive_prompts: [a]\n"
        "  - source_model: ../../data/demo/ft-prose\n    positive_prompts: [b]\n");
    g_autofree char *out = g_build_filename (tmp_root, "never", NULL);
    g_autoptr (GError) error = NULL;
    g_assert_false (cru_moe_build (c, out, FALSE, NULL, NULL, NULL, NULL, &error));
    g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM);
    g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  }
}

static void
test_refuses_existing_output (void)
{
  g_autoptr (CruMoeConfig) c = config_for (
      "base_model: ../../data/demo/base\ngate_mode: random\nexperts:\n"
      "  - source_model: ../../data/demo/ft-c\n  - source_model: ../../data/demo/ft-prose\n");
  g_autofree char *out = g_build_filename (tmp_root, "exists", NULL);
  g_autofree char *marker = g_build_filename (out, "mine.txt", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (out, 0755), ==, 0);
  g_assert_true (g_file_set_contents (marker, "keep", -1, NULL));
  g_assert_false (cru_moe_build (c, out, FALSE, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_EXISTS);
  g_assert_true (g_file_test (marker, G_FILE_TEST_EXISTS));
}

/* Other gate modes and the Qwen2-MoE output (shared expert, zero q/k/v biases) build and run. */
static void
test_other_modes_and_qwen2_moe (void)
{
  static const char *yamls[] = {
    "base_model: ../../data/demo/base\ngate_mode: cheap_embed\nexperts:\n"
    "  - source_model: ../../data/demo/ft-c\n    positive_prompts: [\"#include <x.h>\"]\n"
    "  - source_model: ../../data/demo/ft-prose\n    positive_prompts: [\"The manual\"]\n",
    "base_model: ../../data/demo/base\ngate_mode: hidden_avg\nexperts_per_token: 1\nexperts:\n"
    "  - source_model: ../../data/demo/ft-c\n    positive_prompts: [\"#include <x.h>\"]\n"
    "    negative_prompts: [\"The manual\"]\n"
    "  - source_model: ../../data/demo/ft-prose\n    positive_prompts: [\"The manual\"]\n",
    "base_model: ../../data/demo/base\narchitecture: qwen2_moe\ngate_mode: uniform_random\n"
    "experts:\n  - source_model: ../../data/demo/ft-c\n  - source_model: ../../data/demo/ft-prose\n"
    "shared_experts:\n  - source_model: ../../data/demo/base\n    residual_scale: 0.5\n",
  };
  for (guint i = 0; i < G_N_ELEMENTS (yamls); i++)
    {
      g_autoptr (CruMoeConfig) c = config_for (yamls[i]);
      g_autofree char *name = g_strdup_printf ("mode-%u", i);
      g_autofree char *out = g_build_filename (tmp_root, name, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (CruModel) m = NULL;
      CruPerplexity p;

      g_assert_true (cru_moe_build (c, out, TRUE, NULL, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      m = open_model (out);
      if (i == 2)
        {
          g_assert_cmpstr (cru_model_get_model_type (m), ==, "qwen2_moe");
          g_assert_nonnull (cru_model_lookup (m, "model.layers.0.mlp.shared_expert.up_proj.weight"));
          g_assert_nonnull (cru_model_lookup (m, "model.layers.0.mlp.shared_expert_gate.weight"));
          g_assert_nonnull (cru_model_lookup (m, "model.layers.3.mlp.experts.1.down_proj.weight"));
          g_assert_nonnull (cru_model_lookup (m, "model.layers.2.self_attn.k_proj.bias"));
        }
      g_assert_true (cru_perplexity_run (m, NULL, "def main():\n    return 0\n", 25,
                                         256, 1, NULL, NULL, &p, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (isfinite (p.ppl) && p.ppl > 1.0);
      cru_perplexity_clear (&p);
    }
}

/* crucible-cli moe + eval --routing --json on the result */
static void
test_cli (void)
{
  const char *cli = g_getenv ("CRU_CLI");
  g_autofree char *yaml = source_path ("tests/lm/moe-demo-top1.yml");
  g_autofree char *out = g_build_filename (tmp_root, "cli", NULL);
  g_autofree char *text = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "eval", "prose.txt", NULL);
  g_autofree char *sout = NULL, *serr = NULL;
  g_autoptr (GError) error = NULL;
  int status;

  if (!cli)
    {
      g_test_skip ("CRU_CLI is not set");
      return;
    }
  {
    const char *argv[] = { cli, "moe", yaml, out, "--overwrite", NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &sout,
                                 &serr, &status, &error));
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
  {
    /* without --overwrite an existing folder is refused */
    const char *argv[] = { cli, "moe", yaml, out, NULL };
    g_clear_pointer (&serr, g_free);
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
                                 &serr, &status, &error));
    g_assert_false (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (strstr (serr, "--overwrite"));
  }
  {
    const char *argv[] = { cli, "eval", out, "--text", text, "--ctx", "64", "--routing", NULL };
    g_clear_pointer (&sout, g_free);
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &sout,
                                 NULL, &status, &error));
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (strstr (sout, "perplexity"));
    g_assert_nonnull (strstr (sout, "layer  3:"));
  }
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_unlink (child);
    }
  if (dir)
    g_dir_close (dir);
  g_rmdir (path);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp ("cru-test-moe-XXXXXX", NULL);
  g_test_add_func ("/lm/moe/demo-layout-and-config", test_demo_layout_and_config);
  g_test_add_func ("/lm/moe/router-rows-match-mergekit", test_router_rows_match_mergekit);
  g_test_add_func ("/lm/moe/eval-matches-transformers-mixtral", test_eval_on_moe);
  g_test_add_func ("/lm/moe/near-identical-prompts-warn", test_condition_warning);
  g_test_add_func ("/lm/moe/config-errors", test_config_errors);
  g_test_add_func ("/lm/moe/refuses-existing-output", test_refuses_existing_output);
  g_test_add_func ("/lm/moe/other-gate-modes-and-qwen2-moe", test_other_modes_and_qwen2_moe);
  g_test_add_func ("/lm/moe/cli-moe-and-eval-routing", test_cli);
  rc = g_test_run ();
  remove_tree (tmp_root);
  g_free (tmp_root);
  return rc;
}
