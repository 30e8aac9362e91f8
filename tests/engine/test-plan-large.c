/* test-plan-large.c — planning merges of 70B-shaped models from their headers alone
 *
 * The models are sparse files: complete safetensors headers followed by a hole of the full
 * data size (141 GB each, no disk space). Planning must read nothing but the headers; how
 * long it takes is measured by bench/run (--plan-70b), not asserted here.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "cru-safetensors.h"

/* Llama-3-70B: hidden 8192, MLP 28672, 80 layers, 64 heads / 8 KV heads, vocab 128256. */
#define HIDDEN       8192
#define INTERMEDIATE 28672
#define LAYERS       80
#define KV_DIM       1024
#define VOCAB        128256

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static CruLayout *
llama70b_layout (void)
{
  static const char *const parts[] = {
    "input_layernorm.weight", "mlp.down_proj.weight", "mlp.gate_proj.weight",
    "mlp.up_proj.weight", "post_attention_layernorm.weight", "self_attn.k_proj.weight",
    "self_attn.o_proj.weight", "self_attn.q_proj.weight", "self_attn.v_proj.weight",
  };
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  CruLayout *layout = cru_layout_new (0);
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (names, g_strdup ("model.embed_tokens.weight"));
  g_ptr_array_add (names, g_strdup ("model.norm.weight"));
  g_ptr_array_add (names, g_strdup ("lm_head.weight"));
  for (int l = 0; l < LAYERS; l++)
    for (guint p = 0; p < G_N_ELEMENTS (parts); p++)
      g_ptr_array_add (names, g_strdup_printf ("model.layers.%d.%s", l, parts[p]));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      const char *n = names->pdata[i];
      int64_t shape[2] = { HIDDEN, HIDDEN };
      int ndim = 2;

      if (g_str_has_suffix (n, "norm.weight"))
        ndim = 1;
      else if (strstr (n, "embed_tokens") || strstr (n, "lm_head"))
        shape[0] = VOCAB;
      else if (strstr (n, "k_proj") || strstr (n, "v_proj"))
        shape[0] = KV_DIM;
      else if (strstr (n, "down_proj"))
        shape[1] = INTERMEDIATE;
      else if (strstr (n, "gate_proj") || strstr (n, "up_proj"))
        shape[0] = INTERMEDIATE;
      cru_layout_add (layout, n, CRU_DTYPE_BF16, ndim, shape);
    }
  g_assert_true (cru_layout_finish (layout, &error));
  g_assert_no_error (error);
  return layout;
}

/* config.json, shards with real headers and holes for data, and the shard index. */
static void
write_sparse_model (const char *dir, CruLayout *layout)
{
  static const char config[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
    "\"hidden_size\": 8192, \"intermediate_size\": 28672, \"num_hidden_layers\": 80, "
    "\"num_attention_heads\": 64, \"num_key_value_heads\": 8, \"head_dim\": 128, "
    "\"vocab_size\": 128256, \"max_position_embeddings\": 8192, \"hidden_act\": \"silu\", "
    "\"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0, \"tie_word_embeddings\": false, "
    "\"torch_dtype\": \"bfloat16\"}";
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GString) index = g_string_new ("{\"metadata\": {\"total_size\": ");
  g_autofree char *index_path = g_build_filename (dir, "model.safetensors.index.json", NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
  for (guint s = 0; s < cru_layout_get_n_shards (layout); s++)
    {
      g_autofree char *name = cru_layout_get_shard_name (layout, s);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      gsize len;
      const char *header = cru_layout_get_shard_header (layout, s, &len);
      guint64 len_le = GUINT64_TO_LE ((guint64) len);
      int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

      g_assert_cmpint (fd, >=, 0);
      g_assert_cmpint (write (fd, &len_le, 8), ==, 8);
      g_assert_cmpint (write (fd, header, len), ==, (gssize) len);
      g_assert_cmpint (ftruncate (fd, (off_t) cru_layout_get_shard_size (layout, s)), ==, 0);
      close (fd);
    }
  g_string_append_printf (index, "%" G_GUINT64_FORMAT "}, \"weight_map\": {",
                          cru_layout_get_total_data_size (layout));
  for (guint i = 0; i < cru_layout_get_n_tensors (layout); i++)
    {
      g_autofree char *shard = cru_layout_get_shard_name (layout, cru_layout_get_shard (layout, i));
      g_string_append_printf (index, "%s\"%s\": \"%s\"", i ? ", " : "",
                              cru_layout_get_tensor (layout, i)->name, shard);
    }
  g_string_append (index, "}}");
  g_assert_true (g_file_set_contents (index_path, index->str, -1, NULL));
}

typedef struct {
  char *tmp;
  char *base, *ft1, *ft2;
  guint64 model_bytes;
  guint n_tensors;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(CruLayout) layout = llama70b_layout ();

  f->tmp = test_tmpdir ();
  f->base = g_build_filename (f->tmp, "base", NULL);
  f->ft1 = g_build_filename (f->tmp, "ft1", NULL);
  f->ft2 = g_build_filename (f->tmp, "ft2", NULL);
  write_sparse_model (f->base, layout);
  write_sparse_model (f->ft1, layout);
  write_sparse_model (f->ft2, layout);
  f->model_bytes = cru_layout_get_total_data_size (layout);
  f->n_tensors = cru_layout_get_n_tensors (layout);
  /* The output would need 141 GB: let the plan believe the disk has room. */
  g_setenv ("CRU_TEST_DISK_FREE", "1000000000000000", TRUE);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_unsetenv ("CRU_TEST_DISK_FREE");
  test_rm_rf (f->tmp);
  g_free (f->tmp);
  g_free (f->base);
  g_free (f->ft1);
  g_free (f->ft2);
}

static CruPlan *
plan_yaml (Fixture *f, const char *yaml, guint threads)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruGraph) graph = NULL;
  g_autofree char *out = g_build_filename (f->tmp, "out", NULL);
  CruPlanOptions options;
  CruPlan *plan;

  graph = cru_graph_import_mergekit (yaml, -1, f->tmp, warnings, &error);
  g_assert_no_error (error);
  g_assert_nonnull (graph);
  cru_plan_options_init (&options);
  options.out_dir = out;
  options.n_threads = threads;
  options.device = CRU_DEVICE_CPU;
  plan = cru_plan_compile (graph, &options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (plan);
  if (!cru_plan_is_runnable (plan))
    test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  return plan;
}

static void
test_plan_ties_of_three (Fixture *f, gconstpointer data)
{
  static const char yaml[] =
    "merge_method: ties\n"
    "base_model: base\n"
    "models:\n"
    "  - model: ft1\n"
    "    parameters: {weight: 0.6, density: 0.5}\n"
    "  - model: ft2\n"
    "    parameters: {weight: 0.4, density: 0.5}\n"
    "dtype: float32\n"
    "out_dtype: bfloat16\n";
  g_autoptr(CruPlan) plan = plan_yaml (f, yaml, 2);
  const CruEstimate *est = cru_plan_get_estimate (plan);

  g_assert_cmpuint (f->n_tensors, ==, 3 + 9 * LAYERS);
  g_assert_cmpuint (est->n_tensors, ==, f->n_tensors);
  g_assert_cmpuint (est->bytes_read, ==, 3 * f->model_bytes);
  g_assert_cmpuint (est->output_bytes, >, f->model_bytes);
  g_assert_cmpuint (est->n_shards, >=, 2);
  g_assert_cmpuint (est->n_threads, ==, 2);
  g_assert_cmpint (cru_plan_get_output_dtype (plan), ==, CRU_DTYPE_BF16);
}

static void
test_plan_slerp_of_two (Fixture *f, gconstpointer data)
{
  static const char yaml[] =
    "merge_method: slerp\n"
    "base_model: base\n"
    "models:\n"
    "  - model: base\n"
    "  - model: ft1\n"
    "parameters:\n"
    "  t: [0.0, 0.5, 1.0]\n"
    "dtype: float32\n"
    "out_dtype: bfloat16\n";
  g_autoptr(CruPlan) plan = plan_yaml (f, yaml, 1);
  const CruEstimate *est = cru_plan_get_estimate (plan);

  g_assert_cmpuint (est->n_tensors, ==, f->n_tensors);
  g_assert_cmpuint (est->bytes_read, ==, 2 * f->model_bytes);
  /* The estimate is finite and does not hold whole models in memory. */
  g_assert_cmpuint (est->peak_ram_bytes, <, f->model_bytes);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/engine/plan-large/70b-ties-of-three-from-headers", Fixture, NULL,
              fixture_setup, test_plan_ties_of_three, fixture_teardown);
  g_test_add ("/engine/plan-large/70b-slerp-gradient-from-headers", Fixture, NULL,
              fixture_setup, test_plan_slerp_of_two, fixture_teardown);
  return g_test_run ();
}
