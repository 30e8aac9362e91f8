/* test-exec.c — the executor: results against straightforward computations, threads,
 * fusion, frankenmerges, output folder contents, cancellation
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"
#include "cru-method.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_OR_SKIP(var, name)                                     \
  g_autofree char *var = test_demo_model (name);                    \
  if (var == NULL)                                                  \
    {                                                               \
      g_test_skip ("data/demo/" name " is missing");                \
      return;                                                       \
    }

static char *
fresh_out (void)
{
  g_autofree char *tmp = test_tmpdir ();
  return g_build_filename (tmp, "out", NULL);
}

static void
options_f32 (CruPlanOptions *o, guint threads)
{
  cru_plan_options_init (o);
  o->out_dtype = CRU_DTYPE_F32;
  o->n_threads = threads;
  o->device = CRU_DEVICE_CPU;
}

typedef void (*RefFunc) (guint64 n, float **in, int n_in, float *out, gpointer data);

/* Compares every tensor of @out with @ref applied to the inputs' tensors. */
static void
compare_all (const char *out, const char *const *inputs, int n_in, RefFunc ref, gpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) m = cru_model_open (out, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (cru_model_get_n_tensors (m), ==, 39);
  for (guint i = 0; i < cru_model_get_n_tensors (m); i++)
    {
      const CruModelTensor *t = cru_model_get_tensor (m, i);
      guint64 n = t->info->numel;
      g_autofree float *got = test_read_tensor (out, t->info->name, NULL);
      g_autofree float *want = g_new (float, n);
      float *in[8];
      double max_abs = 1e-30;

      for (int k = 0; k < n_in; k++)
        in[k] = test_read_tensor (inputs[k], t->info->name, NULL);
      ref (n, in, n_in, want, data);
      for (guint64 j = 0; j < n; j++)
        max_abs = MAX (max_abs, fabs (want[j]));
      for (guint64 j = 0; j < n; j++)
        if (fabs ((double) got[j] - want[j]) > 1e-6 * max_abs)
          g_error ("%s[%" G_GUINT64_FORMAT "]: got %.9g, want %.9g", t->info->name, j,
                   got[j], want[j]);
      for (int k = 0; k < n_in; k++)
        g_free (in[k]);
    }
}

static void
ref_linear (guint64 n, float **in, int n_in, float *out, gpointer data)
{
  const double *w = data;
  for (guint64 j = 0; j < n; j++)
    out[j] = (float) ((w[0] * in[0][j] + w[1] * in[1][j]) / (w[0] + w[1]));
}

static void
test_linear_matches_formula (void)
{
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *out = fresh_out ();
  guint m = test_add_method (g, "linear");
  double w[2] = { 0.6, 0.3 };
  const char *inputs[] = { ftc, ftp };
  CruPlanOptions o;

  test_set_link (g, test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL), "weight", w[0]);
  test_set_link (g, test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL), "weight", w[1]);
  test_add_output (g, out, m);
  options_f32 (&o, 2);
  test_run_graph (g, &o);
  compare_all (out, inputs, 2, ref_linear, w);
}

static int
cmp_desc (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void
ref_ties (guint64 n, float **in, int n_in, float *out, gpointer data)
{
  const double *p = data;   /* density, w1, w2 */
  g_autofree float *d = g_new0 (float, 2 * n);
  g_autofree float *mag = g_new (float, n);

  for (int i = 0; i < 2; i++)
    {
      float *di = d + i * n;
      guint64 k = (guint64) (p[0] * n);
      float thr;

      for (guint64 j = 0; j < n; j++)
        {
          di[j] = in[i + 1][j] - in[0][j];
          mag[j] = fabsf (di[j]);
        }
      qsort (mag, n, sizeof (float), cmp_desc);
      thr = mag[k - 1];
      for (guint64 j = 0; j < n; j++)
        di[j] = fabsf (di[j]) >= thr ? (float) (p[1 + i] * di[j]) : 0.0f;
    }
  for (guint64 j = 0; j < n; j++)
    {
      double sum = (double) d[j] + d[n + j], mixed = 0, div = 0;
      float s = sum >= 0 ? 1.0f : -1.0f;
      for (int i = 0; i < 2; i++)
        {
          float v = d[i * n + j];
          if (v != 0 && (v > 0) == (s > 0))
            {
              mixed += v;
              div += p[1 + i];
            }
        }
      if (div == 0)
        div = 1;
      out[j] = (float) (in[0][j] + mixed / div);
    }
}

static void
test_ties_matches_formula (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *out = fresh_out ();
  guint m = test_add_method (g, "ties");
  double p[3] = { 0.5, 1.0, 0.7 };
  const char *inputs[] = { base, ftc, ftp };
  guint l1, l2;
  CruPlanOptions o;

  test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
  l1 = test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
  l2 = test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
  test_set (g, m, "density", p[0]);
  test_set_link (g, l1, "weight", p[1]);
  test_set_link (g, l2, "weight", p[2]);
  test_add_output (g, out, m);
  options_f32 (&o, 2);
  test_run_graph (g, &o);
  compare_all (out, inputs, 3, ref_ties, p);
}

static void
ref_slerp (guint64 n, float **in, int n_in, float *out, gpointer data)
{
  double t = *(const double *) data, n0 = 0, n1 = 0, dot = 0, theta, s;

  for (guint64 j = 0; j < n; j++)
    {
      n0 += (double) in[0][j] * in[0][j];
      n1 += (double) in[1][j] * in[1][j];
    }
  n0 = sqrt (n0);
  n1 = sqrt (n1);
  for (guint64 j = 0; j < n; j++)
    dot += (in[0][j] / (n0 > 1e-8 ? n0 : 1)) * (in[1][j] / (n1 > 1e-8 ? n1 : 1));
  if (fabs (dot) > 0.9995)
    {
      for (guint64 j = 0; j < n; j++)
        out[j] = (float) ((1 - t) * in[0][j] + t * in[1][j]);
      return;
    }
  theta = acos (dot);
  s = sin (theta);
  for (guint64 j = 0; j < n; j++)
    out[j] = (float) ((sin ((1 - t) * theta) * in[0][j] + sin (t * theta) * in[1][j]) / s);
}

static void
test_slerp_matches_formula (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *out = fresh_out ();
  guint m = test_add_method (g, "slerp");
  double t = 0.3;
  const char *inputs[] = { base, ftc };
  CruPlanOptions o;

  test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
  test_set (g, m, "t", t);
  test_add_output (g, out, m);
  options_f32 (&o, 2);
  test_run_graph (g, &o);
  compare_all (out, inputs, 2, ref_slerp, &t);
}

static CruGraph *
ties_graph (const char *base, const char *a, const char *b, const char *out)
{
  CruGraph *g = cru_graph_new ();
  guint m = test_add_method (g, "ties");

  test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, a), m, CRU_PORT_MODEL);
  test_link (g, test_add_model (g, b), m, CRU_PORT_MODEL);
  test_set (g, m, "density", 0.6);
  test_add_output (g, out, m);
  return g;
}

static void
test_threads_identical_bytes (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autofree char *out1 = fresh_out ();
  g_autofree char *out3 = fresh_out ();
  g_autoptr(CruGraph) g1 = ties_graph (base, ftc, ftp, out1);
  g_autoptr(CruGraph) g3 = ties_graph (base, ftc, ftp, out3);
  g_autofree char *f1 = g_build_filename (out1, "model.safetensors", NULL);
  g_autofree char *f3 = g_build_filename (out3, "model.safetensors", NULL);
  CruPlanOptions o;

  options_f32 (&o, 1);
  o.out_dtype = CRU_DTYPE_BF16;
  test_run_graph (g1, &o);
  o.n_threads = 3;
  test_run_graph (g3, &o);
  g_assert_true (test_files_equal (f1, f3));
}

static void
test_fused_equals_staged (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  DEMO_OR_SKIP (ftr, "ft-prose");
  g_autoptr(CruGraph) fused = cru_graph_new ();
  g_autoptr(CruGraph) stage1 = cru_graph_new ();
  g_autoptr(CruGraph) stage2 = NULL;
  g_autofree char *out_fused = fresh_out ();
  g_autofree char *out_stage1 = fresh_out ();
  g_autofree char *out_stage2 = fresh_out ();
  g_autofree char *a = NULL, *b = NULL;
  guint lin, ties, lin1;
  CruPlanOptions o;

  /* fused: ties(base; linear(ft-c, ft-python), ft-prose) */
  lin = test_add_method (fused, "linear");
  test_link (fused, test_add_model (fused, ftc), lin, CRU_PORT_MODEL);
  test_set_link (fused, test_link (fused, test_add_model (fused, ftp), lin, CRU_PORT_MODEL),
                 "weight", 0.5);
  ties = test_add_method (fused, "ties");
  test_link (fused, test_add_model (fused, base), ties, CRU_PORT_BASE);
  test_link (fused, lin, ties, CRU_PORT_MODEL);
  test_link (fused, test_add_model (fused, ftr), ties, CRU_PORT_MODEL);
  test_set (fused, ties, "density", 0.7);
  test_add_output (fused, out_fused, ties);
  options_f32 (&o, 2);
  test_run_graph (fused, &o);

  lin1 = test_add_method (stage1, "linear");
  test_link (stage1, test_add_model (stage1, ftc), lin1, CRU_PORT_MODEL);
  test_set_link (stage1, test_link (stage1, test_add_model (stage1, ftp), lin1, CRU_PORT_MODEL),
                 "weight", 0.5);
  test_add_output (stage1, out_stage1, lin1);
  test_run_graph (stage1, &o);
  stage2 = ties_graph (base, out_stage1, ftr, out_stage2);
  {
    g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (stage2);
    for (guint i = 0; i < nodes->len; i++)
      {
        const CruNode *n = g_ptr_array_index (nodes, i);
        if (n->kind == CRU_NODE_METHOD)
          test_set (stage2, n->id, "density", 0.7);
        else if (n->kind != CRU_NODE_MODEL && n->kind != CRU_NODE_OUTPUT)
          g_assert_not_reached ();
      }
  }
  test_run_graph (stage2, &o);
  a = g_build_filename (out_fused, "model.safetensors", NULL);
  b = g_build_filename (out_stage2, "model.safetensors", NULL);
  g_assert_true (test_files_equal (a, b));
}

static void
test_frankenmerge (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *out = fresh_out ();
  guint s1 = cru_graph_add_node (g, CRU_NODE_SLICE, 0, 0);
  guint s2 = cru_graph_add_node (g, CRU_NODE_SLICE, 0, 0);
  guint st = cru_graph_add_node (g, CRU_NODE_STACK, 0, 0);
  g_autoptr(CruModel) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *x = NULL, *y = NULL, *e1 = NULL, *e2 = NULL;
  guint64 n;
  CruPlanOptions o;

  test_link (g, test_add_model (g, base), s1, CRU_PORT_MODEL);
  test_set (g, s1, "start", 0);
  test_set (g, s1, "end", 3);
  test_link (g, test_add_model (g, ftc), s2, CRU_PORT_MODEL);
  test_set (g, s2, "start", 1);
  test_set (g, s2, "end", 4);
  test_link (g, s1, st, CRU_PORT_SLICE);
  test_link (g, s2, st, CRU_PORT_SLICE);
  test_add_output (g, out, st);
  options_f32 (&o, 2);
  test_run_graph (g, &o);

  m = cru_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_model_get_n_layers (m), ==, 6);
  g_assert_cmpuint (cru_model_get_n_tensors (m), ==, 6 * 9 + 3);
  x = test_read_tensor (out, "model.layers.3.mlp.up_proj.weight", &n);
  y = test_read_tensor (ftc, "model.layers.1.mlp.up_proj.weight", NULL);
  g_assert_cmpint (memcmp (x, y, n * sizeof (float)), ==, 0);
  g_clear_pointer (&x, g_free);
  g_clear_pointer (&y, g_free);
  x = test_read_tensor (out, "model.layers.2.self_attn.q_proj.weight", &n);
  y = test_read_tensor (base, "model.layers.2.self_attn.q_proj.weight", NULL);
  g_assert_cmpint (memcmp (x, y, n * sizeof (float)), ==, 0);
  e1 = test_read_tensor (out, "model.embed_tokens.weight", &n);
  e2 = test_read_tensor (base, "model.embed_tokens.weight", NULL);
  g_assert_cmpint (memcmp (e1, e2, n * sizeof (float)), ==, 0);
}

static void
test_output_folder_contents (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autofree char *out = fresh_out ();
  g_autoptr(CruGraph) g = ties_graph (base, ftc, ftp, out);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *config = g_build_filename (out, "config.json", NULL);
  g_autofree char *card = g_build_filename (out, "README.md", NULL);
  g_autofree char *recipe = g_build_filename (out, "crucible-recipe.crucible", NULL);
  g_autofree char *yaml = g_build_filename (out, "mergekit_config.yml", NULL);
  g_autofree char *tok = g_build_filename (out, "tokenizer.json", NULL);
  g_autofree char *card_text = NULL;
  g_autoptr(CruGraph) back = cru_graph_new ();
  g_autoptr(CruGraph) imported = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *c;
  CruPlanOptions o;

  cru_plan_options_init (&o);
  o.out_dtype = CRU_DTYPE_BF16;
  test_run_graph (g, &o);

  g_assert_true (json_parser_load_from_file (parser, config, &error));
  c = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (c, "num_hidden_layers"), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (c, "torch_dtype"), ==, "bfloat16");
  g_assert_cmpint (json_object_get_int_member (c, "vocab_size"), ==, 260);
  g_assert_false (json_object_get_boolean_member (c, "tie_word_embeddings"));
  g_assert_true (g_file_test (tok, G_FILE_TEST_EXISTS));

  g_assert_true (g_file_get_contents (card, &card_text, NULL, NULL));
  g_assert_nonnull (strstr (card_text, "Crucible"));
  g_assert_nonnull (strstr (card_text, ftc));
  g_assert_nonnull (strstr (card_text, "ties"));

  g_assert_true (cru_graph_load_file (back, recipe, &error));
  g_assert_no_error (error);
  if (g_file_test (yaml, G_FILE_TEST_EXISTS))
    {
      imported = cru_graph_import_mergekit_file (yaml, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (imported);
    }
  else
    g_assert_nonnull (strstr (card_text, "No mergekit recipe"));
}

static void
test_existing_target_refused (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autofree char *out = fresh_out ();
  g_autofree char *marker = g_build_filename (out, "keep-me", NULL);
  g_autoptr(CruGraph) g = ties_graph (base, ftc, ftp, out);
  g_autoptr(CruPlan) plan = NULL, plan2 = NULL;
  g_autoptr(GError) error = NULL;
  CruPlanOptions o;

  g_assert_cmpint (g_mkdir (out, 0755), ==, 0);
  g_assert_true (g_file_set_contents (marker, "x", 1, NULL));
  cru_plan_options_init (&o);
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_false (cru_engine_run (plan, NULL, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_assert_true (g_file_test (marker, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  o.overwrite = TRUE;
  plan2 = cru_plan_compile (g, &o, NULL, &error);
  g_assert_true (cru_engine_run (plan2, NULL, NULL, NULL, &error));
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
}

static void
test_sdm_stats_pass (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *out = fresh_out ();
  guint m = test_add_method (g, "sdm_w");
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  const double *w;
  guint n = 0;

  if (cru_method_lookup ("sdm_w") == NULL)
    {
      g_test_skip ("sdm_w is not registered");
      return;
    }
  test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
  test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
  test_add_output (g, out, m);
  plan = cru_plan_compile (g, NULL, NULL, &error);
  test_dump_problems (plan);
  g_assert_true (cru_plan_get_estimate (plan)->has_stats_pass);
  g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  w = cru_plan_get_node_weights (plan, m, &n);
  g_assert_nonnull (w);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpfloat (fabs (w[0] + w[1] - 1.0), <, 1e-9);
}

/* ---- cancellation ---- */

typedef struct {
  GCancellable *cancellable;
  gint64        cancelled_at;
  double        at_fraction;
} CancelData;

static void
cancel_on_progress (const CruProgress *p, gpointer user_data)
{
  CancelData *cd = user_data;

  if (cd->cancelled_at == 0 && p->bytes_total
      && (double) p->bytes_done / p->bytes_total >= cd->at_fraction)
    {
      cd->cancelled_at = g_get_monotonic_time ();
      g_cancellable_cancel (cd->cancellable);
    }
}

static char *
big_models (char **a, char **b)
{
  char *tmp = test_tmpdir ();
  TestModelSpec spec;

  test_spec_init (&spec);
  spec.layers = 12, spec.hidden = 320, spec.intermediate = 864, spec.vocab = 4000;
  *a = g_build_filename (tmp, "base", NULL);
  *b = g_build_filename (tmp, "ft", NULL);
  test_write_model (*a, &spec);
  spec.seed = 2;
  test_write_model (*b, &spec);
  return tmp;
}

static void
assert_nothing_left (const char *out)
{
  g_autofree char *parent = g_path_get_dirname (out);
  GDir *dir = g_dir_open (parent, 0, NULL);
  const char *name;

  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  while (dir && (name = g_dir_read_name (dir)))
    g_assert_null (strstr (name, "crucible-tmp"));
  if (dir)
    g_dir_close (dir);
}

static void
test_cancel_from_progress (void)
{
  g_autofree char *a = NULL, *b = NULL;
  g_autofree char *tmp = big_models (&a, &b);
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  g_autoptr(CruGraph) g = cru_graph_new ();
  guint m = test_add_method (g, "ties");
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  CancelData cd = { g_cancellable_new (), 0, 0.3 };
  CruPlanOptions o;
  gboolean ok;

  test_link (g, test_add_model (g, a), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, b), m, CRU_PORT_MODEL);
  test_add_output (g, out, m);
  options_f32 (&o, 2);
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_true (cru_plan_is_runnable (plan));
  ok = cru_engine_run (plan, cancel_on_progress, &cd, cd.cancellable, &error);
  if (cd.cancelled_at == 0)
    {
      g_test_skip ("the merge finished before 30% was reported");
      g_object_unref (cd.cancellable);
      return;
    }
  g_assert_false (ok);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - cd.cancelled_at, <, 200000);
  assert_nothing_left (out);
  g_object_unref (cd.cancellable);
}

typedef struct {
  CruPlan  *plan;
  GCancellable *cancellable;
  gboolean  ok;
  GError   *error;
  gint64    done_at;
  gboolean  started;
} ThreadRun;

static void
note_progress (const CruProgress *p, gpointer user_data)
{
  ThreadRun *tr = user_data;
  if (p->phase == CRU_RUN_PHASE_MERGE)
    g_atomic_int_set (&tr->started, TRUE);
}

static gpointer
run_in_thread (gpointer data)
{
  ThreadRun *tr = data;
  tr->ok = cru_engine_run (tr->plan, note_progress, tr, tr->cancellable, &tr->error);
  tr->done_at = g_get_monotonic_time ();
  return NULL;
}

static void
test_cancel_from_thread (void)
{
  g_autofree char *a = NULL, *b = NULL;
  g_autofree char *tmp = big_models (&a, &b);
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  g_autoptr(CruGraph) g = cru_graph_new ();
  guint m = test_add_method (g, "slerp");
  g_autoptr(GError) error = NULL;
  ThreadRun tr = { 0 };
  CruPlanOptions o;
  GThread *thread;
  gint64 cancelled_at;

  test_link (g, test_add_model (g, a), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, b), m, CRU_PORT_MODEL);
  test_set (g, m, "t", 0.5);
  test_add_output (g, out, m);
  options_f32 (&o, 2);
  tr.plan = cru_plan_compile (g, &o, NULL, &error);
  tr.cancellable = g_cancellable_new ();
  thread = g_thread_new ("run", run_in_thread, &tr);
  while (!g_atomic_int_get (&tr.started) && tr.done_at == 0)
    g_usleep (1000);
  g_usleep (5000);
  cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (tr.cancellable);
  g_thread_join (thread);
  if (tr.ok)
    {
      g_test_skip ("the merge finished before the cancel");
      test_rm_rf (out);
    }
  else
    {
      g_assert_error (tr.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpint (tr.done_at - cancelled_at, <, 200000);
      assert_nothing_left (out);
    }
  g_clear_error (&tr.error);
  g_object_unref (tr.cancellable);
  cru_plan_unref (tr.plan);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/exec/linear-matches-formula", test_linear_matches_formula);
  g_test_add_func ("/engine/exec/ties-matches-formula", test_ties_matches_formula);
  g_test_add_func ("/engine/exec/slerp-matches-formula", test_slerp_matches_formula);
  g_test_add_func ("/engine/exec/threads-give-identical-bytes", test_threads_identical_bytes);
  g_test_add_func ("/engine/exec/fused-equals-staged", test_fused_equals_staged);
  g_test_add_func ("/engine/exec/frankenmerge-renumbers-layers", test_frankenmerge);
  g_test_add_func ("/engine/exec/output-folder-contents", test_output_folder_contents);
  g_test_add_func ("/engine/exec/existing-target-refused", test_existing_target_refused);
  g_test_add_func ("/engine/exec/sdm-w-statistics-pass", test_sdm_stats_pass);
  g_test_add_func ("/engine/exec/cancel-from-progress", test_cancel_from_progress);
  g_test_add_func ("/engine/exec/cancel-from-thread", test_cancel_from_thread);
  return g_test_run ();
}
