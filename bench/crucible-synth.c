/* crucible-synth — writes a synthetic Llama-shaped Hugging Face folder (config.json +
 * sharded safetensors) with deterministic pseudo-random weights, for benchmarks and
 * memory measurements. A "fine-tune" (--delta-of BASE_SEED) is the base of that seed plus
 * small deltas drawn from --seed, so merges of synthetic models behave like real ones.
 *
 *   crucible-synth OUT_DIR --shape 1b|3b|7b|70b|tiny|custom [--layers N] [--hidden H]
 *                  [--intermediate I] [--vocab V] [--dtype bf16] [--seed S]
 *                  [--delta-of SEED] [--shard-size SIZE] [--tied] [--headers-only]
 *                  [--overwrite]
 *
 * --headers-only writes complete safetensors headers and leaves the data as holes (sparse
 * files of the full size): enough to inspect and plan a 70B-shaped merge in no disk space.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cru-safetensors.h"

typedef struct {
  const char *name;
  int hidden, intermediate, layers, heads, kv_heads, vocab;
  gboolean tied;
} Shape;

static const Shape shapes[] = {
  { "tiny",   64,   176,  2,  4,  2,    256, FALSE },
  { "1b",   2048,  8192, 16, 32,  8, 128256, TRUE },
  { "3b",   3072,  8192, 28, 24,  8, 128256, TRUE },
  { "7b",   4096, 11008, 32, 32, 32,  32000, FALSE },
  { "70b",  8192, 28672, 80, 64,  8, 128256, FALSE },
  { "custom", 512, 1408,  4,  8,  8,  32000, FALSE },
};

#define CHUNK (4u << 20)

static inline guint64
mix64 (guint64 x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Uniform in [-1, 1), a function of (seed, tensor, element) only. */
static inline float
noise (guint64 seed, guint64 tensor_key, guint64 i)
{
  guint64 h = mix64 (seed ^ mix64 (tensor_key ^ mix64 (i)));
  return (float) ((double) (h >> 40) / (double) (1ull << 23) - 1.0);
}

static guint64
name_key (const char *name)
{
  guint64 h = 1469598103934665603ull;
  for (const char *p = name; *p; p++)
    h = (h ^ (guint8) *p) * 1099511628211ull;
  return h;
}

static void
fill (const char *name, gboolean is_norm, guint64 seed, gboolean delta, guint64 base_seed,
      guint64 off, guint64 n, float *dst)
{
  guint64 key = name_key (name);

  for (guint64 i = 0; i < n; i++)
    {
      guint64 e = off + i;
      float base_seed_v = noise (delta ? base_seed : seed, key, e);
      float v = is_norm ? 1.0f + 0.05f * base_seed_v : 0.02f * base_seed_v;
      if (delta)
        v += (is_norm ? 0.005f : 0.002f) * noise (seed, key, e);
      dst[i] = v;
    }
}

/* model.safetensors.index.json, as CruWriter writes it for several shards. */
static gboolean
write_index (CruLayout *layout, const char *dir, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = g_build_filename (dir, "model.safetensors.index.json", NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "total_size");
  json_builder_add_int_value (b, (gint64) cru_layout_get_total_data_size (layout));
  json_builder_end_object (b);
  json_builder_set_member_name (b, "weight_map");
  json_builder_begin_object (b);
  for (guint i = 0; i < cru_layout_get_n_tensors (layout); i++)
    {
      g_autofree char *shard = cru_layout_get_shard_name (layout, cru_layout_get_shard (layout, i));
      json_builder_set_member_name (b, cru_layout_get_tensor (layout, i)->name);
      json_builder_add_string_value (b, shard);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  return g_file_set_contents (path, text, -1, error);
}

/* Each shard: the 8-byte length, the header, then a hole up to the shard's full size. */
static gboolean
write_sparse_shards (CruLayout *layout, const char *dir, GError **error)
{
  for (guint s = 0; s < cru_layout_get_n_shards (layout); s++)
    {
      g_autofree char *name = cru_layout_get_shard_name (layout, s);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      gsize len;
      const char *header = cru_layout_get_shard_header (layout, s, &len);
      guint64 len_le = GUINT64_TO_LE ((guint64) len);
      int fd = g_open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      gboolean ok;

      if (fd < 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", path,
                       g_strerror (errno));
          return FALSE;
        }
      ok = write (fd, &len_le, 8) == 8 && write (fd, header, len) == (ssize_t) len
           && ftruncate (fd, (off_t) cru_layout_get_shard_size (layout, s)) == 0;
      if (!ok)
        g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", path,
                     g_strerror (errno));
      close (fd);
      if (!ok)
        return FALSE;
    }
  return cru_layout_get_n_shards (layout) == 1 || write_index (layout, dir, error);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
main (int argc, char **argv)
{
  g_autofree char *shape_name = g_strdup ("tiny");
  g_autofree char *dtype_name = g_strdup ("bf16");
  g_autofree char *shard_text = NULL;
  int layers = 0, hidden = 0, intermediate = 0, vocab = 0;
  gint64 seed = 1, delta_of = -1;
  gboolean tied = FALSE, overwrite = FALSE, headers_only = FALSE;
  GOptionEntry entries[] = {
    { "shape", 0, 0, G_OPTION_ARG_STRING, &shape_name, "tiny, 1b, 3b, 7b, 70b or custom", "SHAPE" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "Number of layers", "N" },
    { "hidden", 0, 0, G_OPTION_ARG_INT, &hidden, "Hidden size", "H" },
    { "intermediate", 0, 0, G_OPTION_ARG_INT, &intermediate, "MLP size", "I" },
    { "vocab", 0, 0, G_OPTION_ARG_INT, &vocab, "Vocabulary size", "V" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "bf16, f16 or f32", "DTYPE" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the weights", "S" },
    { "delta-of", 0, 0, G_OPTION_ARG_INT64, &delta_of, "Be a fine-tune of the model of this seed", "SEED" },
    { "shard-size", 0, 0, G_OPTION_ARG_STRING, &shard_text, "Largest shard in bytes", "BYTES" },
    { "tied", 0, 0, G_OPTION_ARG_NONE, &tied, "Tie the embeddings (no lm_head)", NULL },
    { "headers-only", 0, 0, G_OPTION_ARG_NONE, &headers_only, "Write headers only; the data are holes (sparse files)", NULL },
    { "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite, "Replace an existing folder", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("OUT_DIR");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruLayout) layout = NULL;
  g_autoptr(CruOutputDir) od = NULL;
  g_autoptr(CruWriter) writer = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *config = NULL, *config_path = NULL;
  g_autofree float *buf = NULL;
  const Shape *shape = NULL;
  Shape s;
  CruDType dtype;
  guint64 shard_size = CRU_DEFAULT_SHARD_SIZE;
  int head_dim;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc != 2)
    {
      g_printerr ("crucible-synth: %s\n", error ? error->message : "give one OUT_DIR");
      return 2;
    }
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    if (g_str_equal (shapes[i].name, shape_name))
      shape = &shapes[i];
  if (shape == NULL)
    {
      g_printerr ("crucible-synth: unknown shape “%s” (tiny, 1b, 3b, 7b, 70b, custom)\n",
                  shape_name);
      return 2;
    }
  dtype = cru_dtype_from_user_string (dtype_name);
  if (dtype != CRU_DTYPE_BF16 && dtype != CRU_DTYPE_F16 && dtype != CRU_DTYPE_F32)
    {
      g_printerr ("crucible-synth: dtype must be bf16, f16 or f32\n");
      return 2;
    }
  if (shard_text)
    shard_size = g_ascii_strtoull (shard_text, NULL, 10);
  s = *shape;
  if (hidden > 0)
    {
      s.hidden = hidden;
      s.heads = MAX (1, hidden / 64);
      s.kv_heads = s.heads;
      s.intermediate = ((hidden * 8 / 3) + 63) / 64 * 64;
    }
  if (layers > 0)
    s.layers = layers;
  if (intermediate > 0)
    s.intermediate = intermediate;
  if (vocab > 0)
    s.vocab = vocab;
  if (tied)
    s.tied = TRUE;
  head_dim = s.hidden / s.heads;

  /* Tensor list, sorted by name like transformers' files. */
  g_ptr_array_add (names, g_strdup ("model.embed_tokens.weight"));
  for (int l = 0; l < s.layers; l++)
    {
      static const char *const parts[] = {
        "input_layernorm.weight", "mlp.down_proj.weight", "mlp.gate_proj.weight",
        "mlp.up_proj.weight", "post_attention_layernorm.weight", "self_attn.k_proj.weight",
        "self_attn.o_proj.weight", "self_attn.q_proj.weight", "self_attn.v_proj.weight",
      };
      for (guint p = 0; p < G_N_ELEMENTS (parts); p++)
        g_ptr_array_add (names, g_strdup_printf ("model.layers.%d.%s", l, parts[p]));
    }
  g_ptr_array_add (names, g_strdup ("model.norm.weight"));
  if (!s.tied)
    g_ptr_array_add (names, g_strdup ("lm_head.weight"));
  g_ptr_array_sort (names, compare_names);

  layout = cru_layout_new (shard_size);
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = g_ptr_array_index (names, i);
      int64_t shape2[2];
      int ndim = 2;

      if (g_str_has_suffix (n, "norm.weight"))
        {
          ndim = 1;
          shape2[0] = s.hidden;
        }
      else if (strstr (n, "embed_tokens") || strstr (n, "lm_head"))
        shape2[0] = s.vocab, shape2[1] = s.hidden;
      else if (strstr (n, "k_proj") || strstr (n, "v_proj"))
        shape2[0] = (int64_t) s.kv_heads * head_dim, shape2[1] = s.hidden;
      else if (strstr (n, "q_proj") || strstr (n, "o_proj"))
        shape2[0] = s.hidden, shape2[1] = s.hidden;
      else if (strstr (n, "down_proj"))
        shape2[0] = s.hidden, shape2[1] = s.intermediate;
      else
        shape2[0] = s.intermediate, shape2[1] = s.hidden;
      cru_layout_add (layout, n, dtype, ndim, shape2);
    }
  if (!cru_layout_finish (layout, &error)
      || (od = cru_output_dir_begin (argv[1], overwrite, &error)) == NULL)
    goto fail;
  if (headers_only)
    {
      if (!write_sparse_shards (layout, cru_output_dir_get_tmp_path (od), &error))
        goto fail;
      goto config;
    }
  if ((writer = cru_writer_open (layout, cru_output_dir_get_tmp_path (od), &error)) == NULL)
    goto fail;

  buf = g_new (float, CHUNK);
  for (guint i = 0; i < cru_layout_get_n_tensors (layout); i++)
    {
      const CruTensorInfo *t = cru_layout_get_tensor (layout, i);
      gboolean is_norm = t->ndim == 1;

      for (guint64 off = 0; off < t->numel; off += CHUNK)
        {
          guint64 n = MIN ((guint64) CHUNK, t->numel - off);
          fill (t->name, is_norm, (guint64) seed, delta_of >= 0, (guint64) delta_of, off, n, buf);
          if (!cru_writer_write_f32 (writer, i, off, buf, n, &error))
            goto fail;
        }
    }
  if (!cru_writer_close (writer, &error))
    goto fail;

config:
  json_builder_begin_object (b);
#define SET_INT(k, v) json_builder_set_member_name (b, k); json_builder_add_int_value (b, v)
#define SET_STR(k, v) json_builder_set_member_name (b, k); json_builder_add_string_value (b, v)
  json_builder_set_member_name (b, "architectures");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, "LlamaForCausalLM");
  json_builder_end_array (b);
  SET_STR ("model_type", "llama");
  SET_INT ("hidden_size", s.hidden);
  SET_INT ("intermediate_size", s.intermediate);
  SET_INT ("num_hidden_layers", s.layers);
  SET_INT ("num_attention_heads", s.heads);
  SET_INT ("num_key_value_heads", s.kv_heads);
  SET_INT ("head_dim", head_dim);
  SET_INT ("vocab_size", s.vocab);
  SET_INT ("max_position_embeddings", 4096);
  SET_STR ("hidden_act", "silu");
  json_builder_set_member_name (b, "rms_norm_eps");
  json_builder_add_double_value (b, 1e-5);
  json_builder_set_member_name (b, "rope_theta");
  json_builder_add_double_value (b, 10000.0);
  json_builder_set_member_name (b, "tie_word_embeddings");
  json_builder_add_boolean_value (b, s.tied);
  SET_STR ("torch_dtype", cru_dtype_to_torch_string (dtype));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, root);
  config = json_generator_to_data (gen, NULL);
  config_path = g_build_filename (cru_output_dir_get_tmp_path (od), "config.json", NULL);
  if (!g_file_set_contents (config_path, config, -1, &error)
      || !cru_output_dir_commit (od, &error))
    goto fail;
  {
    g_autofree char *size = g_format_size (cru_layout_get_total_data_size (layout));
    printf ("%s: %s, %d layers, hidden %d, %s in %u shard(s)\n", argv[1], s.name, s.layers,
            s.hidden, size, cru_layout_get_n_shards (layout));
  }
  return 0;

fail:
  g_printerr ("crucible-synth: %s\n", error ? error->message : "failed");
  return 1;
}
