/* test-plan.c — the compiler's diagnostics (one test per validation rule) and estimates
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

#define DEMO_OR_SKIP(var, name)                                     \
  g_autofree char *var = test_demo_model (name);                    \
  if (var == NULL)                                                  \
    {                                                               \
      g_test_skip ("data/demo/" name " is missing");                \
      return;                                                       \
    }

static CruPlan *
compile (CruGraph *g, const CruPlanOptions *options)
{
  g_autoptr(GError) error = NULL;
  CruPlan *plan = cru_plan_compile (g, options, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (plan);
  test_dump_problems (plan);
  return plan;
}

/* base + ft-c through @method into a fresh output folder. */
static CruGraph *
two_model_graph (const char *method, const char *base, const char *other, guint *method_id,
                 char **out_dir)
{
  CruGraph *g = cru_graph_new ();
  g_autofree char *tmp = test_tmpdir ();
  guint b = test_add_model (g, base);
  guint o = test_add_model (g, other);
  guint m = test_add_method (g, method);

  test_link (g, b, m, CRU_PORT_BASE);
  test_link (g, o, m, CRU_PORT_MODEL);
  *out_dir = g_build_filename (tmp, "out", NULL);
  test_add_output (g, *out_dir, m);
  if (method_id)
    *method_id = m;
  return g;
}

static void
test_valid_graph_is_runnable (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("ties", base, ftc, NULL, &out);
  g_autoptr(CruPlan) plan = compile (g, NULL);

  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_cmpuint (cru_plan_get_n_tensors (plan), ==, 39);
  g_assert_cmpstr (cru_plan_get_tensor_name (plan, 0), ==, "lm_head.weight");
}

static void
test_cycle (void)
{
  static const char graph[] =
    "{\"format\": \"crucible-graph\", \"version\": \"1.0\", \"nodes\": ["
    "{\"id\": 1, \"kind\": \"method\", \"method\": \"linear\"},"
    "{\"id\": 2, \"kind\": \"method\", \"method\": \"linear\"},"
    "{\"id\": 3, \"kind\": \"output\", \"path\": \"/tmp/crucible-cycle-out\"}],"
    "\"links\": [{\"id\": 1, \"from\": 1, \"to\": 2, \"port\": \"model\", \"slot\": 0},"
    "{\"id\": 2, \"from\": 2, \"to\": 1, \"port\": \"model\", \"slot\": 0},"
    "{\"id\": 3, \"from\": 2, \"to\": 3, \"port\": \"model\", \"slot\": 0}]}";
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CruPlan) plan = NULL;
  const CruProblem *p;

  if (!cru_graph_load_data (g, graph, -1, NULL, &error))
    {
      g_test_skip ("the graph loader refuses cycles, so the compiler never sees one");
      return;
    }
  plan = compile (g, NULL);
  g_assert_false (cru_plan_is_runnable (plan));
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "cycle");
  g_assert_nonnull (p);
  g_assert_true (p->node == 1 || p->node == 2);
}

static void
test_unconnected_input (void)
{
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  guint o = test_add_output (g, out, 0);
  g_autoptr(CruPlan) plan = compile (g, NULL);
  const CruProblem *p = test_find_problem (plan, CRU_SEVERITY_ERROR, "nothing is connected");

  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (p);
  g_assert_cmpuint (p->node, ==, o);
  g_assert_cmpstr (p->port, ==, CRU_PORT_MODEL);
}

static void
test_missing_base (void)
{
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  guint m = test_add_method (g, "ties");
  g_autoptr(CruPlan) plan = NULL;
  const CruProblem *p;

  test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
  test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
  test_add_output (g, out, m);
  plan = compile (g, NULL);
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "base");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->node, ==, m);
  g_assert_cmpstr (p->port, ==, CRU_PORT_BASE);
  g_assert_false (cru_plan_is_runnable (plan));
}

static void
test_arity (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  DEMO_OR_SKIP (ftp, "ft-python");
  guint m;
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("slerp", base, ftc, &m, &out);
  g_autoptr(CruPlan) plan = NULL;
  const CruProblem *p;

  test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
  plan = compile (g, NULL);
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "at most 1");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->node, ==, m);
}

static void
test_param_range (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  guint m;
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("ties", base, ftc, &m, &out);
  g_autoptr(CruPlan) plan = NULL;
  double grad[] = { 0.5, 1.7 };

  /* a gradient whose last point is out of range: every number is checked */
  cru_graph_set_param (g, m, "density", cru_value_new_gradient (grad, 2));
  plan = compile (g, NULL);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "density"));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "1.7"));
}

static void
test_unknown_param_did_you_mean (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  guint m;
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("ties", base, ftc, &m, &out);
  g_autoptr(CruPlan) plan = NULL;
  const CruProblem *p;

  test_set (g, m, "densty", 0.5);
  plan = compile (g, NULL);
  p = test_find_problem (plan, CRU_SEVERITY_WARNING, "densty");
  g_assert_nonnull (p);
  g_assert_nonnull (strstr (p->message, "did you mean “density”"));
  g_assert_cmpstr (p->param, ==, "densty");   /* for front ends: whatever the language */
  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_cmpuint (cru_plan_get_n_experts (plan), ==, 0);
}

static void
test_arch_families (void)
{
  DEMO_OR_SKIP (base, "base");
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *qwen = g_build_filename (tmp, "qwen", NULL);
  g_autofree char *out = NULL;
  TestModelSpec spec;
  g_autoptr(CruGraph) g = NULL;
  g_autoptr(CruPlan) plan = NULL, plan2 = NULL;
  CruPlanOptions options;

  test_spec_init (&spec);
  spec.layers = 4, spec.hidden = 128, spec.intermediate = 352, spec.vocab = 260;
  spec.model_type = "gemma2";
  test_write_model (qwen, &spec);
  g = two_model_graph ("linear", base, qwen, NULL, &out);
  plan = compile (g, NULL);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "--allow-crimes"));

  cru_plan_options_init (&options);
  options.allow_crimes = TRUE;
  plan2 = compile (g, &options);
  g_assert_null (test_find_problem (plan2, CRU_SEVERITY_ERROR, "--allow-crimes"));
  g_assert_nonnull (test_find_problem (plan2, CRU_SEVERITY_WARNING, "--allow-crimes"));
}

static void
test_layer_count_mismatch (void)
{
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *a = g_build_filename (tmp, "a", NULL);
  g_autofree char *b = g_build_filename (tmp, "b", NULL);
  g_autofree char *out = NULL;
  TestModelSpec spec;
  g_autoptr(CruGraph) g = NULL;
  g_autoptr(CruPlan) plan = NULL;

  test_spec_init (&spec);
  test_write_model (a, &spec);
  spec.layers = 3;
  test_write_model (b, &spec);
  g = two_model_graph ("ties", a, b, NULL, &out);
  plan = compile (g, NULL);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "b has 3 layers but a has 2"));
}

static void
test_shape_mismatch_names_both (void)
{
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *a = g_build_filename (tmp, "base", NULL);
  g_autofree char *b = g_build_filename (tmp, "ft-c", NULL);
  g_autofree char *out = NULL;
  TestModelSpec spec;
  g_autoptr(CruGraph) g = NULL;
  g_autoptr(CruPlan) plan = NULL;

  test_spec_init (&spec);
  spec.hidden = 128, spec.intermediate = 344;
  test_write_model (a, &spec);
  spec.intermediate = 352;
  test_write_model (b, &spec);
  g = two_model_graph ("ties", a, b, NULL, &out);
  plan = compile (g, NULL);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR,
                                       "ft-c: tensor model.layers.1.mlp.up_proj.weight has "
                                       "shape [352,128] but the base has [344,128]"));
}

static void
test_layer_range_out_of_bounds (void)
{
  DEMO_OR_SKIP (base, "base");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  guint m = test_add_model (g, base);
  guint s = cru_graph_add_node (g, CRU_NODE_SLICE, 0, 0);
  guint st = cru_graph_add_node (g, CRU_NODE_STACK, 0, 0);
  g_autoptr(CruPlan) plan = NULL;
  const CruProblem *p;

  test_link (g, m, s, CRU_PORT_MODEL);
  test_set (g, s, "start", 2);
  test_set (g, s, "end", 9);
  test_link (g, s, st, CRU_PORT_SLICE);
  test_add_output (g, out, st);
  plan = compile (g, NULL);
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "[2, 9)");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->node, ==, s);
}

static void
test_vocab_difference_warns_with_crop_rule (void)
{
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *a = g_build_filename (tmp, "a", NULL);
  g_autofree char *b = g_build_filename (tmp, "b", NULL);
  g_autofree char *out2 = NULL;
  TestModelSpec spec;
  g_autoptr(CruGraph) g2 = NULL;
  g_autoptr(CruPlan) plan2 = NULL;

  test_spec_init (&spec);
  test_write_model (a, &spec);
  spec.vocab = 40;
  test_write_model (b, &spec);

  g2 = two_model_graph ("slerp", a, b, NULL, &out2);
  plan2 = compile (g2, NULL);
  g_assert_true (cru_plan_is_runnable (plan2));
  g_assert_nonnull (test_find_problem (plan2, CRU_SEVERITY_WARNING, "smallest, 32 rows"));
  {
    g_autoptr(CruGraph) g3 = NULL;
    g_autoptr(CruPlan) plan3 = NULL;
    g_autofree char *out3 = NULL;
    g3 = two_model_graph ("task_arithmetic", a, b, NULL, &out3);
    plan3 = compile (g3, NULL);
    g_assert_true (cru_plan_is_runnable (plan3));
    g_assert_nonnull (test_find_problem (plan3, CRU_SEVERITY_WARNING, "base's 32 rows"));
  }
}

static void
test_output_exists (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("linear", base, ftc, NULL, &out);
  g_autoptr(CruPlan) plan = NULL, plan2 = NULL;
  CruPlanOptions options;

  g_assert_cmpint (g_mkdir (out, 0755), ==, 0);
  plan = compile (g, NULL);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "already exists"));
  cru_plan_options_init (&options);
  options.overwrite = TRUE;
  plan2 = compile (g, &options);
  g_assert_true (cru_plan_is_runnable (plan2));
}

static void
test_output_not_writable (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("linear", base, ftc, NULL, &out);
  g_autoptr(CruPlan) plan = NULL;
  CruPlanOptions options;

  cru_plan_options_init (&options);
  options.out_dir = "/proc/crucible-no-such-place/out";
  plan = compile (g, &options);
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "Cannot write into"));
}

static void
test_output_inside_input (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("linear", base, ftc, NULL, &out);
  g_autofree char *inside = g_build_filename (ftc, "merged", NULL);
  g_autoptr(CruPlan) plan = NULL, plan2 = NULL;
  CruPlanOptions options;

  cru_plan_options_init (&options);
  options.out_dir = inside;
  plan = compile (g, &options);
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "inside it"));
  options.out_dir = ftc;
  options.overwrite = TRUE;
  plan2 = compile (g, &options);
  g_assert_nonnull (test_find_problem (plan2, CRU_SEVERITY_ERROR, "inside it"));
}

static void
test_disk_space (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("linear", base, ftc, NULL, &out);
  g_autoptr(CruPlan) plan = NULL;

  g_setenv ("CRU_TEST_DISK_FREE", "1000000", TRUE);
  plan = compile (g, NULL);
  g_unsetenv ("CRU_TEST_DISK_FREE");
  g_assert_false (cru_plan_is_runnable (plan));
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "Not enough disk space"));
  g_assert_cmpuint (cru_plan_get_estimate (plan)->disk_free_bytes, ==, 1000000);
}

static void
test_missing_model_folder (void)
{
  DEMO_OR_SKIP (base, "base");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("linear", base, "/nonexistent/crucible-model", NULL,
                                           &out);
  g_autoptr(CruPlan) plan = compile (g, NULL);
  GPtrArray *problems = cru_plan_get_problems (plan);
  gboolean found = FALSE;

  g_assert_false (cru_plan_is_runnable (plan));
  for (guint i = 0; i < problems->len; i++)
    {
      CruProblem *p = g_ptr_array_index (problems, i);
      const CruNode *n = cru_graph_get_node (g, p->node);
      if (p->severity == CRU_SEVERITY_ERROR && n && n->kind == CRU_NODE_MODEL)
        found = TRUE;
    }
  g_assert_true (found);
}

static void
test_estimate_bytes (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("ties", base, ftc, NULL, &out);
  g_autoptr(CruPlan) plan = NULL, plan16 = NULL;
  const CruEstimate *est;
  CruPlanOptions options;
  g_autofree char *file = NULL;
  GStatBuf st;

  plan = compile (g, NULL);
  est = cru_plan_get_estimate (plan);
  /* 804992 parameters in f32, read from base and ft-c */
  g_assert_cmpuint (est->bytes_read, ==, 2 * 804992 * 4);
  g_assert_cmpuint (est->output_bytes, >, 804992 * 4);
  g_assert_cmpuint (est->output_bytes, <, 804992 * 4 + 8192);
  g_assert_cmpuint (est->bytes_written, ==, est->output_bytes);
  g_assert_cmpuint (est->n_shards, ==, 1);
  g_assert_cmpuint (est->peak_ram_bytes, >, 0);
  g_assert_true (est->seconds > 0);

  cru_plan_options_init (&options);
  options.out_dtype = CRU_DTYPE_BF16;
  plan16 = compile (g, &options);
  g_assert_cmpuint (cru_plan_get_estimate (plan16)->output_bytes, >, 804992 * 2);
  g_assert_cmpuint (cru_plan_get_estimate (plan16)->output_bytes, <, 804992 * 2 + 8192);

  /* the written file has exactly the estimated size */
  g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, NULL));
  file = g_build_filename (out, "model.safetensors", NULL);
  g_assert_cmpint (g_stat (file, &st), ==, 0);
  g_assert_cmpuint ((guint64) st.st_size, ==, est->output_bytes);
}

static void
test_json_schema (void)
{
  DEMO_OR_SKIP (base, "base");
  DEMO_OR_SKIP (ftc, "ft-c");
  g_autofree char *out = NULL;
  g_autoptr(CruGraph) g = two_model_graph ("ties", base, ftc, NULL, &out);
  g_autoptr(CruPlan) plan = compile (g, NULL);
  g_autoptr(JsonNode) root = cru_plan_to_json (plan);
  JsonObject *o = json_node_get_object (root);
  JsonObject *est = json_object_get_object_member (o, "estimate");
  g_autofree char *text = cru_plan_to_text (plan);

  g_assert_true (json_object_get_boolean_member (o, "runnable"));
  g_assert_cmpint (json_object_get_int_member (est, "bytes_read"), ==, 2 * 804992 * 4);
  g_assert_true (json_object_has_member (est, "peak_ram_bytes"));
  g_assert_true (json_object_has_member (json_object_get_object_member (est, "output_bytes_by_dtype"),
                                         "bfloat16"));
  g_assert_cmpint (json_object_get_int_member (o, "tensors"), ==, 39);
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (o, "inputs")), ==, 2);
  g_assert_nonnull (strstr (text, "Ready to run"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/plan/valid-graph-is-runnable", test_valid_graph_is_runnable);
  g_test_add_func ("/engine/plan/cycle", test_cycle);
  g_test_add_func ("/engine/plan/unconnected-input", test_unconnected_input);
  g_test_add_func ("/engine/plan/missing-base", test_missing_base);
  g_test_add_func ("/engine/plan/arity", test_arity);
  g_test_add_func ("/engine/plan/parameter-range-every-gradient-point", test_param_range);
  g_test_add_func ("/engine/plan/unknown-parameter-did-you-mean", test_unknown_param_did_you_mean);
  g_test_add_func ("/engine/plan/architecture-families", test_arch_families);
  g_test_add_func ("/engine/plan/layer-count-mismatch", test_layer_count_mismatch);
  g_test_add_func ("/engine/plan/shape-mismatch-names-both", test_shape_mismatch_names_both);
  g_test_add_func ("/engine/plan/layer-range-out-of-bounds", test_layer_range_out_of_bounds);
  g_test_add_func ("/engine/plan/vocab-difference-warns-crop-rule",
                   test_vocab_difference_warns_with_crop_rule);
  g_test_add_func ("/engine/plan/output-exists", test_output_exists);
  g_test_add_func ("/engine/plan/output-not-writable", test_output_not_writable);
  g_test_add_func ("/engine/plan/output-inside-input", test_output_inside_input);
  g_test_add_func ("/engine/plan/disk-space", test_disk_space);
  g_test_add_func ("/engine/plan/missing-model-folder", test_missing_model_folder);
  g_test_add_func ("/engine/plan/estimate-bytes-exact", test_estimate_bytes);
  g_test_add_func ("/engine/plan/json-schema", test_json_schema);
  return g_test_run ();
}
