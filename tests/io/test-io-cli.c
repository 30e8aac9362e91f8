/* test-io-cli.c — crucible-cli inspect and convert, run as a user would
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "io-test-util.h"

#include <json-glib/json-glib.h>

static char *tmp_root;

/* Runs crucible-cli with the NULL-terminated arguments; returns the exit status. */
static int
run_cli (char **out, char **err, ...)
{
  const char *cli = g_getenv ("CRU_CLI");
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *o = NULL, *e = NULL;
  const char *arg;
  va_list ap;
  int status = -1;

  g_ptr_array_add (argv, (char *) cli);
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &o, &e, &status, &error));
  g_assert_no_error (error);
  g_test_message ("stdout: %s\nstderr: %s", o, e);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static gboolean
have_cli_and_demo (void)
{
  const char *cli = g_getenv ("CRU_CLI");

  if (cli == NULL || !g_file_test (cli, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("CRU_CLI does not name the crucible-cli binary");
      return FALSE;
    }
  if (util_demo_dir () == NULL)
    {
      g_test_skip ("CRU_DEMO_DIR is not set or absent");
      return FALSE;
    }
  return TRUE;
}

static char *
demo (const char *name)
{
  return g_build_filename (util_demo_dir (), name, NULL);
}

static void
test_inspect_json (void)
{
  g_autofree char *base = NULL, *out = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *o, *shard, *t;
  JsonArray *tensors;
  gint64 t0;

  if (!have_cli_and_demo ())
    return;
  base = demo ("base");
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (run_cli (&out, NULL, "inspect", base, "--json", "--tensors", NULL), ==, 0);
  g_test_message ("inspect took %.1f ms", (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "family"), ==, "llama");
  g_assert_cmpint (json_object_get_int_member (o, "layers"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (o, "parameters"), ==, 804992);
  g_assert_cmpint (json_object_get_int_member (o, "tensor_count"), ==, 39);
  g_assert_cmpstr (json_object_get_string_member (o, "dtype"), ==, "F32");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "dtypes"), "F32"), ==, 39);
  g_assert_cmpint (json_object_get_int_member (o, "total_bytes"), ==, 3219968);
  g_assert_cmpint (json_object_get_int_member (o, "vocab_size"), ==, 260);
  g_assert_false (json_object_get_boolean_member (o, "tie_word_embeddings"));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "shards")), ==, 1);
  shard = json_array_get_object_element (json_object_get_array_member (o, "shards"), 0);
  g_assert_cmpstr (json_object_get_string_member (shard, "file"), ==, "model.safetensors");
  g_assert_cmpint (json_object_get_int_member (shard, "bytes"), ==, 3224080);
  g_assert_cmpint (json_object_get_int_member (shard, "tensors"), ==, 39);
  tensors = json_object_get_array_member (o, "tensors");
  g_assert_cmpuint (json_array_get_length (tensors), ==, 39);
  for (guint i = 0; i < 39; i++)
    {
      t = json_array_get_object_element (tensors, i);
      if (strcmp (json_object_get_string_member (t, "name"), "model.layers.1.self_attn.k_proj.weight") != 0)
        continue;
      g_assert_cmpstr (json_object_get_string_member (t, "dtype"), ==, "F32");
      g_assert_cmpint (json_array_get_int_element (json_object_get_array_member (t, "shape"), 0), ==, 64);
      g_assert_cmpint (json_array_get_int_element (json_object_get_array_member (t, "shape"), 1), ==, 128);
      g_assert_cmpint (json_object_get_int_member (t, "layer"), ==, 1);
      g_assert_cmpstr (json_object_get_string_member (t, "role"), ==, "attention");
      return;
    }
  g_assert_not_reached ();
}

static void
test_inspect_text_and_errors (void)
{
  g_autofree char *base = NULL, *out = NULL, *err = NULL, *out2 = NULL;

  if (!have_cli_and_demo ())
    return;
  base = demo ("base-bf16");
  g_assert_cmpint (run_cli (&out, NULL, "inspect", base, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Llama"));
  g_assert_nonnull (strstr (out, "804,992"));
  g_assert_nonnull (strstr (out, "BF16"));
  g_assert_null (strstr (out, "model.layers.0.mlp.up_proj.weight"));
  g_assert_cmpint (run_cli (&out2, NULL, "inspect", base, "--tensors", NULL), ==, 0);
  g_assert_nonnull (strstr (out2, "model.layers.0.mlp.up_proj.weight"));
  g_assert_cmpint (run_cli (NULL, &err, "inspect", "/nonexistent/model", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "/nonexistent/model"));
  g_assert_cmpint (run_cli (NULL, NULL, "inspect", NULL), ==, 2);
  g_assert_cmpint (run_cli (NULL, NULL, "inspect", base, "--bogus", NULL), ==, 2);
}

/* Compares every tensor of two model files byte for byte. */
static void
assert_same_tensors (const char *path_a, const char *path_b)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) a = cru_model_open (path_a, &error);
  g_autoptr(CruModel) b = NULL;

  g_assert_no_error (error);
  b = cru_model_open (path_b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cru_model_get_n_tensors (a), ==, cru_model_get_n_tensors (b));
  for (guint i = 0; i < cru_model_get_n_tensors (a); i++)
    {
      const CruModelTensor *ta = cru_model_get_tensor (a, i);
      const CruModelTensor *tb = cru_model_lookup (b, ta->info->name);
      gsize n = ta->info->end - ta->info->begin;
      g_autofree guint8 *ba = g_malloc (n);
      g_autofree guint8 *bb = g_malloc (n);

      g_assert_nonnull (tb);
      g_assert_cmpint (ta->info->dtype, ==, tb->info->dtype);
      g_assert_cmpmem (ta->info->shape, sizeof ta->info->shape, tb->info->shape, sizeof tb->info->shape);
      g_assert_cmpuint (tb->info->end - tb->info->begin, ==, n);
      g_assert_true (cru_safetensors_read_raw (ta->shard, ta->info, 0, ba, n, &error));
      g_assert_true (cru_safetensors_read_raw (tb->shard, tb->info, 0, bb, n, &error));
      g_assert_cmpmem (ba, n, bb, n);
    }
}

static void
test_convert_bf16_matches_reference (void)
{
  g_autofree char *base = NULL, *ref = NULL, *out_dir = NULL, *err = NULL;
  g_autofree char *config = NULL, *tok_a = NULL, *tok_b = NULL;
  g_autofree char *p1 = NULL, *p2 = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) m = NULL;

  if (!have_cli_and_demo ())
    return;
  base = demo ("base");
  ref = demo ("base-bf16");
  out_dir = g_build_filename (tmp_root, "base-bf16-converted", NULL);
  g_assert_cmpint (run_cli (NULL, NULL, "convert", base, out_dir, "--dtype", "bf16", NULL), ==, 0);
  assert_same_tensors (out_dir, ref);

  m = cru_model_open (out_dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_model_get_dtype (m), ==, CRU_DTYPE_BF16);   /* torch_dtype updated */
  g_assert_cmpint (cru_model_get_n_layers (m), ==, 4);
  p1 = g_build_filename (out_dir, "tokenizer.json", NULL);
  p2 = g_build_filename (ref, "tokenizer.json", NULL);
  g_assert_true (g_file_get_contents (p1, &tok_a, NULL, NULL));
  g_assert_true (g_file_get_contents (p2, &tok_b, NULL, NULL));
  g_assert_cmpstr (tok_a, ==, tok_b);
  {
    g_autofree char *gen = cru_model_get_file (m, "generation_config.json");
    g_autofree char *special = cru_model_get_file (m, "special_tokens_map.json");
    g_assert_nonnull (gen);
    g_assert_nonnull (special);
  }

  /* the target now exists: refused, then replaced with --overwrite */
  g_assert_cmpint (run_cli (NULL, &err, "convert", base, out_dir, "--dtype", "bf16", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "already exists"));
  g_assert_cmpint (run_cli (NULL, NULL, "convert", base, out_dir, "--dtype", "f16",
                            "--overwrite", NULL), ==, 0);
  {
    g_autoptr(CruModel) m2 = cru_model_open (out_dir, &error);
    g_assert_no_error (error);
    g_assert_cmpint (cru_model_get_dtype (m2), ==, CRU_DTYPE_F16);
    g_assert_cmpint (cru_model_get_tensor (m2, 0)->info->dtype, ==, CRU_DTYPE_F16);
  }
  /* nothing but the output is left beside it */
  {
    g_autoptr(GDir) d = g_dir_open (tmp_root, 0, NULL);
    const char *name;
    while ((name = g_dir_read_name (d)) != NULL)
      g_assert_false (g_str_has_prefix (name, ".base-bf16-converted"));
  }
  util_rm_rf (out_dir);
}

static void
test_convert_sharded_round_trip (void)
{
  g_autofree char *base = NULL, *sharded = NULL, *back = NULL, *out = NULL;
  g_autofree char *base_file = NULL, *back_file = NULL;
  g_autoptr(GError) error = NULL;

  if (!have_cli_and_demo ())
    return;
  base = demo ("base");
  sharded = g_build_filename (tmp_root, "sharded", NULL);
  back = g_build_filename (tmp_root, "back", NULL);
  g_assert_cmpint (run_cli (NULL, NULL, "convert", base, sharded, "--shard-size", "500KB", NULL), ==, 0);
  {
    g_autoptr(CruModel) m = cru_model_open (sharded, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (cru_model_get_n_shards (m), >, 4);
    for (guint s = 0; s < cru_model_get_n_shards (m); s++)
      g_assert_cmpuint (cru_safetensors_get_file_size (cru_model_get_shard (m, s)), <=, 500000 + 4096);
  }
  assert_same_tensors (sharded, base);
  g_assert_cmpint (run_cli (&out, NULL, "inspect", sharded, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "model-00001-of-"));
  /* and back into one file: the same bytes as the original, header included */
  g_assert_cmpint (run_cli (NULL, NULL, "convert", sharded, back, NULL), ==, 0);
  base_file = g_build_filename (base, "model.safetensors", NULL);
  back_file = g_build_filename (back, "model.safetensors", NULL);
  {
    g_autofree char *a = NULL, *b = NULL;
    gsize la, lb;
    g_assert_true (g_file_get_contents (base_file, &a, &la, NULL));
    g_assert_true (g_file_get_contents (back_file, &b, &lb, NULL));
    g_assert_cmpmem (a, la, b, lb);
  }
  util_rm_rf (sharded);
  util_rm_rf (back);
}

static void
test_convert_usage_errors (void)
{
  g_autofree char *base = NULL, *out = NULL, *err = NULL;

  if (!have_cli_and_demo ())
    return;
  base = demo ("base");
  out = g_build_filename (tmp_root, "never", NULL);
  g_assert_cmpint (run_cli (NULL, &err, "convert", base, out, "--dtype", "int4", NULL), ==, 2);
  g_assert_nonnull (strstr (err, "int4"));
  g_assert_cmpint (run_cli (NULL, NULL, "convert", base, out, "--shard-size", "lots", NULL), ==, 2);
  g_assert_cmpint (run_cli (NULL, NULL, "convert", base, NULL), ==, 2);
  g_assert_cmpint (run_cli (NULL, NULL, "convert", "/nonexistent/in", out, NULL), ==, 1);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmp_root = util_make_tmp (NULL);
  g_test_add_func ("/io/cli/inspect-json-values", test_inspect_json);
  g_test_add_func ("/io/cli/inspect-text-and-errors", test_inspect_text_and_errors);
  g_test_add_func ("/io/cli/convert-bf16-matches-reference-bytes", test_convert_bf16_matches_reference);
  g_test_add_func ("/io/cli/convert-sharded-and-back-identical", test_convert_sharded_round_trip);
  g_test_add_func ("/io/cli/convert-usage-errors", test_convert_usage_errors);
  ret = g_test_run ();
  util_rm_rf (tmp_root);
  g_free (tmp_root);
  return ret;
}
