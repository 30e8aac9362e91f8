/* test-model.c — Hugging Face folders, config.json, shards + index, architectures
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "io-test-util.h"

#include <math.h>

static char *tmp_root;

/* Writes tensors named @names (F32, shape [2, 3], value = index) into @dir. */
static void
write_tensors (const char *dir, const char *const *names, guint64 max_shard)
{
  g_autoptr(CruLayout) layout = cru_layout_new (max_shard);
  g_autoptr(CruWriter) w = NULL;
  g_autoptr(GError) error = NULL;
  const int64_t shape[2] = { 2, 3 };

  for (guint i = 0; names[i]; i++)
    cru_layout_add (layout, names[i], CRU_DTYPE_F32, 2, shape);
  g_assert_true (cru_layout_finish (layout, &error));
  w = cru_writer_open (layout, dir, &error);
  g_assert_no_error (error);
  for (guint i = 0; names[i]; i++)
    {
      float v[6];
      for (int k = 0; k < 6; k++)
        v[k] = (float) i;
      g_assert_true (cru_writer_write_f32 (w, i, 0, v, 6, &error));
    }
  g_assert_true (cru_writer_close (w, &error));
}

static const char *const llama_names[] = {
  "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
  "model.layers.0.mlp.up_proj.weight", "model.layers.0.input_layernorm.weight",
  "model.layers.1.self_attn.o_proj.weight", "model.norm.weight", NULL,
};

static char *
make_folder (const char *config, const char *const *names, guint64 max_shard)
{
  char *dir = util_make_tmp (tmp_root);

  if (config)
    util_write_text (dir, "config.json", config);
  if (names)
    write_tensors (dir, names, max_shard);
  return dir;
}

/* ---- the demo models --------------------------------------------------------------- */

static void
test_demo_models (void)
{
  const char *demo = util_demo_dir ();
  const char *folders[] = { "base", "base-bf16", "ft-python", "ft-c", "ft-prose" };

  if (demo == NULL)
    {
      g_test_skip ("CRU_DEMO_DIR is not set or absent");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (folders); i++)
    {
      g_autofree char *path = g_build_filename (demo, folders[i], NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(CruModel) m = cru_model_open (path, &error);
      g_auto(GStrv) tok = NULL;
      g_autofree char *gen = NULL;
      const CruModelTensor *t;

      g_assert_no_error (error);
      g_assert_cmpuint (cru_model_get_n_tensors (m), ==, 39);
      g_assert_cmpuint (cru_model_get_n_params (m), ==, 804992);
      g_assert_cmpint (cru_model_get_n_layers (m), ==, 4);
      g_assert_cmpint (cru_model_get_arch (m), ==, CRU_ARCH_LLAMA);
      g_assert_cmpstr (cru_model_get_model_type (m), ==, "llama");
      g_assert_cmpstr (cru_model_get_name (m), ==, folders[i]);
      g_assert_cmpint (cru_model_get_dtype (m), ==, i == 1 ? CRU_DTYPE_BF16 : CRU_DTYPE_F32);
      g_assert_cmpuint (cru_model_get_total_bytes (m), ==, 804992 * (i == 1 ? 2 : 4));
      g_assert_false (cru_model_get_tie_word_embeddings (m));
      g_assert_cmpint (cru_model_get_vocab_size (m), ==, 260);
      g_assert_cmpint (cru_model_get_hidden_size (m), ==, 128);
      g_assert_cmpuint (cru_model_get_n_shards (m), ==, 1);
      g_assert_nonnull (cru_model_get_config (m));
      tok = cru_model_get_tokenizer_files (m);
      g_assert_cmpuint (g_strv_length (tok), ==, 3);
      g_assert_true (g_strv_contains ((const char *const *) tok, "tokenizer.json"));
      gen = cru_model_get_file (m, "generation_config.json");
      g_assert_nonnull (gen);
      g_assert_null (cru_model_get_file (m, "pytorch_model.bin"));

      t = cru_model_get_tensor (m, 0);
      g_assert_cmpstr (t->info->name, ==, "lm_head.weight");   /* name order */
      g_assert_cmpint (t->role, ==, CRU_ROLE_LM_HEAD);
      t = cru_model_lookup (m, "model.layers.3.mlp.down_proj.weight");
      g_assert_nonnull (t);
      g_assert_cmpint (t->layer, ==, 3);
      g_assert_cmpint (t->role, ==, CRU_ROLE_MLP);
      g_assert_cmpint (t->info->shape[0], ==, 128);
      g_assert_cmpint (t->info->shape[1], ==, 352);
      t = cru_model_lookup (m, "model.layers.2.post_attention_layernorm.weight");
      g_assert_cmpint (t->layer, ==, 2);
      g_assert_cmpint (t->role, ==, CRU_ROLE_NORM);
      t = cru_model_lookup (m, "model.embed_tokens.weight");
      g_assert_cmpint (t->layer, ==, -1);
      g_assert_cmpint (t->role, ==, CRU_ROLE_EMBEDDING);
      g_assert_null (cru_model_lookup (m, "model.layers.4.mlp.down_proj.weight"));
    }
}

/* base-bf16 is base rounded to bf16: reading both gives exactly that relation. */
static void
test_demo_bf16_is_base_rounded (void)
{
  const char *demo = util_demo_dir ();
  g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL;
  g_autoptr(CruModel) base = NULL;
  g_autoptr(CruModel) bf = NULL;
  g_autoptr(CruModel) file = NULL;
  g_autoptr(GError) error = NULL;

  if (demo == NULL)
    {
      g_test_skip ("CRU_DEMO_DIR is not set or absent");
      return;
    }
  p1 = g_build_filename (demo, "base", NULL);
  p2 = g_build_filename (demo, "base-bf16", NULL);
  p3 = g_build_filename (demo, "base", "model.safetensors", NULL);
  base = cru_model_open (p1, &error);
  g_assert_no_error (error);
  bf = cru_model_open (p2, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < cru_model_get_n_tensors (base); i++)
    {
      const CruModelTensor *a = cru_model_get_tensor (base, i);
      const CruModelTensor *b = cru_model_lookup (bf, a->info->name);
      g_autofree float *fa = g_new (float, a->info->numel);
      g_autofree float *fb = g_new (float, a->info->numel);

      g_assert_nonnull (b);
      g_assert_cmpint (b->info->dtype, ==, CRU_DTYPE_BF16);
      g_assert_true (cru_model_read_f32 (base, a, 0, a->info->numel, fa, &error));
      g_assert_true (cru_model_read_f32 (bf, b, 0, b->info->numel, fb, &error));
      for (guint64 k = 0; k < a->info->numel; k++)
        g_assert_cmpfloat (cru_bf16_to_f32 (cru_f32_to_bf16 (fa[k])), ==, fb[k]);
    }

  /* a bare .safetensors file opens as a model: no config, the family from names */
  file = cru_model_open (p3, &error);
  g_assert_no_error (error);
  g_assert_null (cru_model_get_config (file));
  g_assert_cmpint (cru_model_get_arch (file), ==, CRU_ARCH_LLAMA);
  g_assert_null (cru_model_get_model_type (file));
  g_assert_cmpint (cru_model_get_n_layers (file), ==, 4);
  g_assert_cmpuint (cru_model_get_n_params (file), ==, 804992);
  g_assert_cmpint (cru_model_get_dtype (file), ==, CRU_DTYPE_F32);
  g_assert_cmpint (cru_model_get_vocab_size (file), ==, 260);
  g_assert_null (cru_model_get_file (file, "config.json"));
  g_assert_cmpstr (cru_model_get_name (file), ==, "model.safetensors");
}

/* ---- folders ----------------------------------------------------------------------- */

static void
test_sharded_folder (void)
{
  g_autofree char *dir = make_folder ("{\"model_type\": \"mistral\", \"dtype\": \"bfloat16\"}",
                                      llama_names, 20);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) m = cru_model_open (dir, &error);
  float v[6];

  g_assert_no_error (error);
  g_assert_cmpuint (cru_model_get_n_shards (m), ==, 6);
  g_assert_cmpuint (cru_model_get_n_tensors (m), ==, 6);
  g_assert_cmpint (cru_model_get_arch (m), ==, CRU_ARCH_MISTRAL);
  g_assert_cmpint (cru_model_get_dtype (m), ==, CRU_DTYPE_BF16);   /* from "dtype" */
  g_assert_cmpint (cru_model_get_n_layers (m), ==, 2);             /* from names */
  /* tied: no lm_head.weight */
  g_assert_true (cru_model_get_tie_word_embeddings (m));
  g_assert_true (cru_model_read_f32 (m, cru_model_lookup (m, "model.norm.weight"), 0, 6, v, &error));
  g_assert_cmpfloat (v[5], ==, 5.0f);
  util_rm_rf (dir);
}

static void
test_tied_embeddings_and_nested_config (void)
{
  const char *names[] = { "language_model.model.embed_tokens.weight",
                          "language_model.model.layers.0.mlp.gate_proj.weight",
                          "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", NULL };
  g_autofree char *dir = make_folder ("{\"model_type\": \"gemma3\", \"architectures\": "
                                      "[\"Gemma3ForConditionalGeneration\"], \"text_config\": "
                                      "{\"num_hidden_layers\": 26, \"hidden_size\": 1152, "
                                      "\"tie_word_embeddings\": true, \"torch_dtype\": \"float16\"}}",
                                      names, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) m = cru_model_open (dir, &error);
  const CruModelTensor *t;

  g_assert_no_error (error);
  g_assert_cmpint (cru_model_get_arch (m), ==, CRU_ARCH_GEMMA3);
  g_assert_cmpint (cru_model_get_n_layers (m), ==, 26);
  g_assert_cmpint (cru_model_get_hidden_size (m), ==, 1152);
  g_assert_cmpint (cru_model_get_dtype (m), ==, CRU_DTYPE_F16);
  g_assert_true (cru_model_get_tie_word_embeddings (m));
  t = cru_model_lookup (m, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight");
  g_assert_cmpint (t->layer, ==, -1);   /* not a text layer */
  t = cru_model_lookup (m, "language_model.model.layers.0.mlp.gate_proj.weight");
  g_assert_cmpint (t->layer, ==, 0);
  g_assert_cmpint (t->role, ==, CRU_ROLE_MLP);
  util_rm_rf (dir);
}

/* ---- broken folders: an error naming the model, the file and the problem ---------- */

static void
assert_open_fails (const char *dir, int code, const char *needle1, const char *needle2)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_path_get_basename (dir);
  CruModel *m = cru_model_open (dir, &error);

  g_assert_null (m);
  util_assert_error (error, code, name, needle1, needle2, NULL);
}

static void
test_config_errors (void)
{
  g_autofree char *dir = make_folder (NULL, llama_names, 0);
  g_autoptr(GError) error = NULL;

  assert_open_fails (dir, CRU_ERROR_NOT_FOUND, "config.json is missing", NULL);
  util_write_text (dir, "config.json", "{\"model_type\": \"llama\",");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "config.json", "not valid JSON");
  util_write_text (dir, "config.json", "[\"llama\"]");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "config.json", "expected a JSON object");
  util_write_text (dir, "config.json", "{\"num_hidden_layers\": \"4\"}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "config.json", "“num_hidden_layers” should be an integer");
  util_write_text (dir, "config.json", "{\"tie_word_embeddings\": 1}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "config.json", "“tie_word_embeddings” should be true or false");
  util_write_text (dir, "config.json", "{\"model_type\": \"llama\xff\"}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "config.json", "UTF-8");

  g_assert_null (cru_config_parse ("x/config.json", "{\"vocab_size\": -5}", -1, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, "x/config.json", "“vocab_size”", NULL);
  util_rm_rf (dir);
}

static void
test_weights_errors (void)
{
  g_autofree char *dir = make_folder ("{}", NULL, 0);
  g_autofree char *st = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr(GError) error = NULL;

  assert_open_fails (dir, CRU_ERROR_NOT_FOUND, "no model.safetensors", NULL);
  /* a broken weights file: the error names the file inside the folder */
  util_write_st (st, "{\"x\": 1}", -1, NULL, 0);
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "model.safetensors: tensor “x”", NULL);
  g_assert_null (cru_model_open ("/nonexistent/folder", &error));
  util_assert_error (error, CRU_ERROR_NOT_FOUND, "/nonexistent/folder", "no such file", NULL);
  util_rm_rf (dir);
}

static void
test_index_errors (void)
{
  g_autofree char *dir = make_folder ("{}", llama_names, 20);
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autofree char *shard3 = g_build_filename (dir, "model-00003-of-00006.safetensors", NULL);
  g_autofree char *moved = g_build_filename (dir, "elsewhere.bin", NULL);
  g_autofree char *orig = NULL;

  g_assert_true (g_file_get_contents (index, &orig, NULL, NULL));

  /* a missing shard */
  g_assert_cmpint (g_rename (shard3, moved), ==, 0);
  assert_open_fails (dir, CRU_ERROR_NOT_FOUND, "“model-00003-of-00006.safetensors” is missing", NULL);
  g_assert_cmpint (g_rename (moved, shard3), ==, 0);

  /* the index names a tensor its shard lacks */
  util_write_text (dir, "model.safetensors.index.json",
                   "{\"metadata\": {}, \"weight_map\": {\"model.layers.9.mlp.up_proj.weight\": "
                   "\"model-00001-of-00006.safetensors\"}}");
  assert_open_fails (dir, CRU_ERROR_NOT_FOUND, "model.safetensors.index.json names tensor "
                     "“model.layers.9.mlp.up_proj.weight” in model-00001-of-00006.safetensors", NULL);

  /* malformed indexes */
  util_write_text (dir, "model.safetensors.index.json", "{\"weight_map\": ");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "model.safetensors.index.json", "not valid JSON");
  util_write_text (dir, "model.safetensors.index.json", "{\"metadata\": {}}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "model.safetensors.index.json", "no “weight_map”");
  util_write_text (dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "model.safetensors.index.json", "entry of “a”");
  util_write_text (dir, "model.safetensors.index.json", "{\"weight_map\": {}}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "model.safetensors.index.json", "empty");
  util_write_text (dir, "model.safetensors.index.json",
                   "{\"weight_map\": {\"a\": \"../../etc/passwd\"}}");
  assert_open_fails (dir, CRU_ERROR_INVALID_FILE, "“../../etc/passwd” is not a file name inside", NULL);

  /* restored, it opens */
  util_write_text (dir, "model.safetensors.index.json", orig);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(CruModel) m = cru_model_open (dir, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (cru_model_get_n_tensors (m), ==, 6);
  }
  util_rm_rf (dir);
}

static void
test_duplicate_across_shards (void)
{
  const char *a[] = { "x", "y", NULL };
  g_autofree char *dir = make_folder ("{}", NULL, 0);
  g_autofree char *sub = g_build_filename (dir, "sub", NULL);
  g_autofree char *f1 = g_build_filename (sub, "model.safetensors", NULL);
  g_autofree char *s1 = g_build_filename (dir, "one.safetensors", NULL);
  g_autofree char *s2 = g_build_filename (dir, "two.safetensors", NULL);
  g_autoptr(GError) error = NULL;

  g_mkdir (sub, 0755);
  write_tensors (sub, a, 0);
  g_assert_cmpint (g_rename (f1, s1), ==, 0);
  write_tensors (sub, a, 0);
  g_assert_cmpint (g_rename (f1, s2), ==, 0);
  /* "x" is placed by the index: the copy in two.safetensors is ignored; "y" is ambiguous */
  util_write_text (dir, "model.safetensors.index.json",
                   "{\"weight_map\": {\"x\": \"one.safetensors\", \"z\": \"two.safetensors\"}}");
  assert_open_fails (dir, CRU_ERROR_NOT_FOUND, "“z”", "two.safetensors");
  util_write_text (dir, "model.safetensors.index.json",
                   "{\"weight_map\": {\"x\": \"one.safetensors\", \"y\": \"two.safetensors\"}}");
  {
    g_autoptr(CruModel) m = cru_model_open (dir, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (cru_model_get_n_tensors (m), ==, 2);
    g_assert_cmpuint (cru_model_lookup (m, "x")->shard_index, ==, 0);
    g_assert_cmpuint (cru_model_lookup (m, "y")->shard_index, ==, 1);
  }
  util_rm_rf (dir);
}

/* ---- architectures ----------------------------------------------------------------- */

typedef struct
{
  CruArch       arch;
  const char   *name;
  int           layer;
  CruTensorRole role;
} ClassifyCase;

static const ClassifyCase classify_cases[] = {
  { CRU_ARCH_LLAMA, "model.embed_tokens.weight", -1, CRU_ROLE_EMBEDDING },
  { CRU_ARCH_LLAMA, "lm_head.weight", -1, CRU_ROLE_LM_HEAD },
  { CRU_ARCH_LLAMA, "model.norm.weight", -1, CRU_ROLE_NORM },
  { CRU_ARCH_LLAMA, "model.layers.12.self_attn.k_proj.weight", 12, CRU_ROLE_ATTENTION },
  { CRU_ARCH_MISTRAL, "model.layers.31.mlp.gate_proj.weight", 31, CRU_ROLE_MLP },
  { CRU_ARCH_QWEN2, "model.layers.3.self_attn.q_proj.bias", 3, CRU_ROLE_ATTENTION },
  { CRU_ARCH_QWEN3, "model.layers.5.self_attn.q_norm.weight", 5, CRU_ROLE_NORM },
  { CRU_ARCH_GEMMA2, "model.layers.7.pre_feedforward_layernorm.weight", 7, CRU_ROLE_NORM },
  { CRU_ARCH_GEMMA3, "language_model.model.layers.2.self_attn.o_proj.weight", 2, CRU_ROLE_ATTENTION },
  { CRU_ARCH_GEMMA3, "vision_tower.vision_model.encoder.layers.2.self_attn.q_proj.weight", -1, CRU_ROLE_OTHER },
  { CRU_ARCH_PHI3, "model.layers.1.self_attn.qkv_proj.weight", 1, CRU_ROLE_ATTENTION },
  { CRU_ARCH_PHI3, "model.layers.1.mlp.gate_up_proj.weight", 1, CRU_ROLE_MLP },
  { CRU_ARCH_MIXTRAL, "model.layers.4.block_sparse_moe.gate.weight", 4, CRU_ROLE_ROUTER },
  { CRU_ARCH_MIXTRAL, "model.layers.4.block_sparse_moe.experts.7.w2.weight", 4, CRU_ROLE_EXPERT },
  { CRU_ARCH_QWEN2_MOE, "model.layers.6.mlp.gate.weight", 6, CRU_ROLE_ROUTER },
  { CRU_ARCH_QWEN2_MOE, "model.layers.6.mlp.experts.59.down_proj.weight", 6, CRU_ROLE_EXPERT },
  { CRU_ARCH_QWEN2_MOE, "model.layers.6.mlp.shared_expert.up_proj.weight", 6, CRU_ROLE_MLP },
  { CRU_ARCH_QWEN2_MOE, "model.layers.6.mlp.shared_expert_gate.weight", 6, CRU_ROLE_ROUTER },
  { CRU_ARCH_QWEN3_MOE, "model.layers.0.mlp.experts.127.gate_proj.weight", 0, CRU_ROLE_EXPERT },
  { CRU_ARCH_GENERIC, "transformer.h.11.attn.c_attn.weight", 11, CRU_ROLE_ATTENTION },
  { CRU_ARCH_GENERIC, "transformer.h.11.mlp.c_fc.weight", 11, CRU_ROLE_MLP },
  { CRU_ARCH_GENERIC, "transformer.wte.weight", -1, CRU_ROLE_EMBEDDING },
  { CRU_ARCH_GENERIC, "transformer.ln_f.weight", -1, CRU_ROLE_NORM },
  { CRU_ARCH_GENERIC, "gpt_neox.layers.3.attention.dense.weight", 3, CRU_ROLE_ATTENTION },
  { CRU_ARCH_GENERIC, "blocks.0.ffn.w1", 0, CRU_ROLE_MLP },
  { CRU_ARCH_GENERIC, "model.layers.x2.y", -1, CRU_ROLE_OTHER },
};

static void
test_classify (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (classify_cases); i++)
    {
      const ClassifyCase *c = &classify_cases[i];
      int layer = 99;
      CruTensorRole role = CRU_ROLE_N;

      cru_arch_classify (c->arch, c->name, &layer, &role);
      g_test_message ("%s → %d %s", c->name, layer, cru_role_get_name (role));
      g_assert_cmpint (layer, ==, c->layer);
      g_assert_cmpstr (cru_role_get_name (role), ==, cru_role_get_name (c->role));
    }
}

static void
test_arch_names (void)
{
  static const struct { const char *mt, *arch; CruArch want; } cases[] = {
    { "llama", NULL, CRU_ARCH_LLAMA }, { "mistral", NULL, CRU_ARCH_MISTRAL },
    { "qwen2", NULL, CRU_ARCH_QWEN2 }, { "qwen3", NULL, CRU_ARCH_QWEN3 },
    { "gemma", NULL, CRU_ARCH_GEMMA }, { "gemma2", NULL, CRU_ARCH_GEMMA2 },
    { "gemma3_text", NULL, CRU_ARCH_GEMMA3 }, { "phi3", NULL, CRU_ARCH_PHI3 },
    { "mixtral", NULL, CRU_ARCH_MIXTRAL }, { "qwen2_moe", NULL, CRU_ARCH_QWEN2_MOE },
    { "qwen3_moe", NULL, CRU_ARCH_QWEN3_MOE }, { NULL, "Qwen2ForCausalLM", CRU_ARCH_QWEN2 },
    { "somethingnew", "SomethingForCausalLM", CRU_ARCH_GENERIC }, { NULL, NULL, CRU_ARCH_GENERIC },
  };
  g_autofree char *r1 = cru_arch_rename_layer ("model.layers.3.mlp.up_proj.weight", 3, 17);
  g_autofree char *r2 = cru_arch_rename_layer ("model.layers.3.mlp.experts.3.w1", 3, 0);
  g_autofree char *r3 = cru_arch_rename_layer ("model.norm.weight", 3, 4);
  g_autofree char *r4 = cru_arch_rename_layer ("model.layers.5.x", 3, 4);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (cru_arch_from_model_type (cases[i].mt, cases[i].arch), ==, cases[i].want);
  for (guint a = 0; a < CRU_ARCH_N; a++)
    {
      g_assert_nonnull (cru_arch_get_name ((CruArch) a));
      g_assert_nonnull (cru_arch_get_label ((CruArch) a));
      if (a != CRU_ARCH_GENERIC)
        g_assert_cmpint (cru_arch_from_model_type (cru_arch_get_name ((CruArch) a), NULL), ==, a);
    }
  g_assert_true (cru_arch_compatible (CRU_ARCH_LLAMA, CRU_ARCH_MISTRAL));
  g_assert_true (cru_arch_compatible (CRU_ARCH_QWEN2, CRU_ARCH_QWEN2));
  g_assert_false (cru_arch_compatible (CRU_ARCH_LLAMA, CRU_ARCH_QWEN2));
  g_assert_cmpstr (r1, ==, "model.layers.17.mlp.up_proj.weight");
  g_assert_cmpstr (r2, ==, "model.layers.0.mlp.experts.3.w1");
  g_assert_cmpstr (r3, ==, "model.norm.weight");
  g_assert_cmpstr (r4, ==, "model.layers.5.x");
  g_assert_true (cru_role_is_embedding (CRU_ROLE_LM_HEAD));
  g_assert_false (cru_role_is_embedding (CRU_ROLE_MLP));
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmp_root = util_make_tmp (NULL);
  g_test_add_func ("/io/model/demo-models-load-with-right-counts", test_demo_models);
  g_test_add_func ("/io/model/demo-bf16-is-base-rounded-and-bare-file-opens", test_demo_bf16_is_base_rounded);
  g_test_add_func ("/io/model/sharded-folder-with-index", test_sharded_folder);
  g_test_add_func ("/io/model/tied-embeddings-and-nested-text-config", test_tied_embeddings_and_nested_config);
  g_test_add_func ("/io/model/malformed/config-json", test_config_errors);
  g_test_add_func ("/io/model/malformed/weights-missing-or-broken", test_weights_errors);
  g_test_add_func ("/io/model/malformed/index-and-shards", test_index_errors);
  g_test_add_func ("/io/model/index-decides-between-duplicate-tensors", test_duplicate_across_shards);
  g_test_add_func ("/io/arch/classify-every-family", test_classify);
  g_test_add_func ("/io/arch/names-compatibility-rename", test_arch_names);
  ret = g_test_run ();
  util_rm_rf (tmp_root);
  g_free (tmp_root);
  return ret;
}
