/* engine-test-util.c — helpers of the engine and CLI suites
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-config.h"
#include "engine-test-util.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

static GPtrArray *tmpdirs;

static void
remove_tmpdirs (void)
{
  for (guint i = 0; tmpdirs && i < tmpdirs->len; i++)
    test_rm_rf (g_ptr_array_index (tmpdirs, i));
}

const char *
test_demo_dir (void)
{
  static char *dir;

  if (dir == NULL)
    {
      const char *env = g_getenv ("CRU_DEMO_DIR");
      dir = g_strdup (env ? env : CRU_SOURCE_DIR "/data/demo");
    }
  return g_file_test (dir, G_FILE_TEST_IS_DIR) ? dir : NULL;
}

char *
test_demo_model (const char *name)
{
  const char *demo = test_demo_dir ();
  char *path;

  if (demo == NULL)
    return NULL;
  path = g_build_filename (demo, name, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_free (path);
      return NULL;
    }
  return path;
}

char *
test_tmpdir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("crucible-test-XXXXXX", &error);

  g_assert_no_error (error);
  if (tmpdirs == NULL)
    {
      tmpdirs = g_ptr_array_new_with_free_func (g_free);
      atexit (remove_tmpdirs);
    }
  g_ptr_array_add (tmpdirs, g_strdup (dir));
  return dir;
}

void
test_rm_rf (const char *path)
{
  GDir *dir;
  const char *name;

  if (g_file_test (path, G_FILE_TEST_IS_SYMLINK) || !g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_unlink (path);
      return;
    }
  dir = g_dir_open (path, 0, NULL);
  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      test_rm_rf (child);
    }
  if (dir)
    g_dir_close (dir);
  g_rmdir (path);
}

void
test_spec_init (TestModelSpec *spec)
{
  memset (spec, 0, sizeof *spec);
  spec->layers = 2;
  spec->hidden = 16;
  spec->intermediate = 40;
  spec->vocab = 32;
  spec->model_type = "llama";
  spec->seed = 1;
  spec->dtype = CRU_DTYPE_F32;
}

static int
compare_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

void
test_write_model (const char *dir, const TestModelSpec *s)
{
  static const char *const parts[] = {
    "input_layernorm.weight", "mlp.down_proj.weight", "mlp.gate_proj.weight",
    "mlp.up_proj.weight", "post_attention_layernorm.weight", "self_attn.k_proj.weight",
    "self_attn.o_proj.weight", "self_attn.q_proj.weight", "self_attn.v_proj.weight",
  };
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruLayout) layout = cru_layout_new (CRU_DEFAULT_SHARD_SIZE);
  g_autoptr(CruWriter) writer = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *config = NULL;
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  guint64 state = s->seed * 0x9e3779b97f4a7c15ull + 1;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_ptr_array_add (names, g_strdup ("model.embed_tokens.weight"));
  g_ptr_array_add (names, g_strdup ("model.norm.weight"));
  if (!s->tied)
    g_ptr_array_add (names, g_strdup ("lm_head.weight"));
  for (int l = 0; l < s->layers; l++)
    for (guint p = 0; p < G_N_ELEMENTS (parts); p++)
      g_ptr_array_add (names, g_strdup_printf ("model.layers.%d.%s", l, parts[p]));
  g_ptr_array_sort (names, compare_str);

  for (guint i = 0; i < names->len; i++)
    {
      const char *n = g_ptr_array_index (names, i);
      int64_t shape[2];
      int ndim = 2;

      if (g_str_has_suffix (n, "norm.weight"))
        ndim = 1, shape[0] = s->hidden;
      else if (strstr (n, "embed_tokens") || strstr (n, "lm_head"))
        shape[0] = s->vocab, shape[1] = s->hidden;
      else if (strstr (n, "_proj") && strstr (n, "self_attn"))
        shape[0] = s->hidden, shape[1] = s->hidden;
      else if (strstr (n, "down_proj"))
        shape[0] = s->hidden, shape[1] = s->intermediate;
      else
        shape[0] = s->intermediate, shape[1] = s->hidden;
      cru_layout_add (layout, n, s->dtype, ndim, shape);
    }
  g_assert_true (cru_layout_finish (layout, &error));
  writer = cru_writer_open (layout, dir, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < cru_layout_get_n_tensors (layout); i++)
    {
      const CruTensorInfo *t = cru_layout_get_tensor (layout, i);
      g_autofree float *v = g_new (float, t->numel);
      for (guint64 k = 0; k < t->numel; k++)
        {
          state ^= state << 13;
          state ^= state >> 7;
          state ^= state << 17;
          v[k] = (float) ((double) (state >> 11) / (double) (1ull << 53) - 0.5) * 0.1f;
        }
      g_assert_true (cru_writer_write_f32 (writer, i, 0, v, t->numel, &error));
    }
  g_assert_true (cru_writer_close (writer, &error));

  config = g_strdup_printf ("{\n  \"architectures\": [\"LlamaForCausalLM\"],\n"
                            "  \"model_type\": \"%s\",\n  \"hidden_size\": %d,\n"
                            "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
                            "  \"num_attention_heads\": 2,\n  \"num_key_value_heads\": 2,\n"
                            "  \"vocab_size\": %d,\n  \"tie_word_embeddings\": %s,\n"
                            "  \"torch_dtype\": \"%s\"\n}\n",
                            s->model_type, s->hidden, s->intermediate, s->layers, s->vocab,
                            s->tied ? "true" : "false", cru_dtype_to_torch_string (s->dtype));
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
}

guint
test_add_model (CruGraph *g, const char *path)
{
  guint id = cru_graph_add_node (g, CRU_NODE_MODEL, 0, 0);
  cru_graph_set_path (g, id, path);
  return id;
}

guint
test_add_method (CruGraph *g, const char *method)
{
  guint id = cru_graph_add_node (g, CRU_NODE_METHOD, 0, 0);
  cru_graph_set_method (g, id, method);
  return id;
}

guint
test_link (CruGraph *g, guint from, guint to, const char *port)
{
  g_autoptr(GError) error = NULL;
  guint id = cru_graph_link (g, from, to, port, -1, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (id, >, 0);
  return id;
}

guint
test_add_output (CruGraph *g, const char *path, guint from)
{
  guint id = cru_graph_add_node (g, CRU_NODE_OUTPUT, 0, 0);

  if (path)
    cru_graph_set_path (g, id, path);
  if (from)
    test_link (g, from, id, CRU_PORT_MODEL);
  return id;
}

void
test_set (CruGraph *g, guint node, const char *name, double v)
{
  cru_graph_set_param (g, node, name, cru_value_new_scalar (v));
}

void
test_set_link (CruGraph *g, guint link, const char *name, double v)
{
  cru_graph_set_link_param (g, link, name, cru_value_new_scalar (v));
}

void
test_set_str (CruGraph *g, guint node, const char *name, const char *v)
{
  cru_graph_set_param (g, node, name, cru_value_new_string (v));
}

const CruProblem *
test_find_problem (CruPlan *plan, CruSeverity severity, const char *needle)
{
  GPtrArray *problems = cru_plan_get_problems (plan);

  for (guint i = 0; i < problems->len; i++)
    {
      const CruProblem *p = g_ptr_array_index (problems, i);
      if (p->severity == severity && (needle == NULL || strstr (p->message, needle)))
        return p;
    }
  return NULL;
}

guint
test_count_problems (CruPlan *plan, CruSeverity severity, const char *needle)
{
  GPtrArray *problems = cru_plan_get_problems (plan);
  guint n = 0;

  for (guint i = 0; i < problems->len; i++)
    {
      const CruProblem *p = g_ptr_array_index (problems, i);
      if (p->severity == severity && (needle == NULL || strstr (p->message, needle)))
        n++;
    }
  return n;
}

void
test_dump_problems (CruPlan *plan)
{
  GPtrArray *problems = cru_plan_get_problems (plan);

  for (guint i = 0; i < problems->len; i++)
    {
      const CruProblem *p = g_ptr_array_index (problems, i);
      g_test_message ("problem %d (node %u): %s", p->severity, p->node, p->message);
    }
}

void
test_run_graph (CruGraph *g, const CruPlanOptions *options)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruPlan) plan = cru_plan_compile (g, options, NULL, &error);

  g_assert_no_error (error);
  test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

gboolean
test_files_equal (const char *a, const char *b)
{
  g_autofree char *da = NULL, *db = NULL;
  gsize la = 0, lb = 0;

  if (!g_file_get_contents (a, &da, &la, NULL) || !g_file_get_contents (b, &db, &lb, NULL))
    return FALSE;
  return la == lb && memcmp (da, db, la) == 0;
}

float *
test_read_tensor (const char *model_dir, const char *name, guint64 *numel)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) m = cru_model_open (model_dir, &error);
  const CruModelTensor *t;
  float *v;

  g_assert_no_error (error);
  t = cru_model_lookup (m, name);
  g_assert_nonnull (t);
  v = g_new (float, t->info->numel);
  g_assert_true (cru_model_read_f32 (m, t, 0, t->info->numel, v, &error));
  if (numel)
    *numel = t->info->numel;
  return v;
}
