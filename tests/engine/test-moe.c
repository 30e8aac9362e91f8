/* test-moe.c — a mixture of experts as a graph: every check of the MoE node before weights
 * are read, and running it through cru_engine_run (bytes, files, progress, cancel, warnings)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-config.h"
#include "engine-test-util.h"
#include "cru-error.h"
#include "cru-moe.h"

#include <glib/gstdio.h>
#include <string.h>

#define NEEDS_DEMO()                                                 \
  if (test_demo_dir () == NULL)                                      \
    {                                                                \
      g_test_skip ("data/demo is missing");                          \
      return;                                                        \
    }

static char *
source_path (const char *rel)
{
  const char *src = g_getenv ("CRU_SOURCE_DIR");
  return g_build_filename (src ? src : CRU_SOURCE_DIR, rel, NULL);
}

static void
set_prompts (CruGraph *g, guint link, const char *name, const char *const *prompts)
{
  cru_graph_set_link_param (g, link, name, cru_value_new_strings (prompts));
}

typedef struct {
  CruGraph *g;
  guint     moe, base, out;
  guint     models[4];
  guint     links[4];     /* expert links */
  guint     base_link;
} Moe;

static const char *const python[] = { "def main():", "import os", NULL };
static const char *const c_code[] = { "#include <stdlib.h>", "typedef struct", NULL };
static const char *const prose[] = { "Once upon a time", "The river ran", NULL };
static const char *const *const prompts[] = { python, c_code, prose };
static const char *const expert_names[] = { "ft-python", "ft-c", "ft-prose" };

/* Base + @n demo experts (with their prompts) into a MoE node into an Output at @out. */
static void
moe_new (Moe *m, guint n, const char *out)
{
  g_autofree char *base = test_demo_model ("base");

  memset (m, 0, sizeof *m);
  m->g = cru_graph_new ();
  m->moe = cru_graph_add_node (m->g, CRU_NODE_MOE, 300, 0);
  cru_graph_set_label (m->g, m->moe, "Experts");
  m->base = test_add_model (m->g, base);
  m->base_link = test_link (m->g, m->base, m->moe, CRU_PORT_BASE);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *path = test_demo_model (expert_names[i]);
      m->models[i] = test_add_model (m->g, path);
      m->links[i] = test_link (m->g, m->models[i], m->moe, CRU_PORT_EXPERT);
      set_prompts (m->g, m->links[i], "positive_prompts", prompts[i]);
    }
  m->out = test_add_output (m->g, out, m->moe);
  test_set_str (m->g, m->out, "dtype", "float32");
}

static void
moe_clear (Moe *m)
{
  g_clear_object (&m->g);
}

static CruPlan *
compile (CruGraph *g, gboolean overwrite)
{
  g_autoptr(GError) error = NULL;
  CruPlanOptions o;
  CruPlan *plan;

  cru_plan_options_init (&o);
  o.n_threads = 2;
  o.overwrite = overwrite;
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  test_dump_problems (plan);
  return plan;
}

/* The one error whose message holds @needle, checked to sit on @node / @link / @port. */
static void
assert_error_at (CruPlan *plan, const char *needle, guint node, guint link, const char *port)
{
  const CruProblem *p = test_find_problem (plan, CRU_SEVERITY_ERROR, needle);

  g_assert_nonnull (p);
  g_assert_cmpuint (p->node, ==, node);
  g_assert_cmpuint (p->link, ==, link);
  g_assert_cmpstr (p->port, ==, port);
  g_assert_false (cru_plan_is_runnable (plan));
}

/* ---- plan ---- */

static void
test_plan_runnable_with_estimates (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(JsonNode) json = NULL;
  const CruEstimate *est;
  JsonObject *root, *moe, *by_dtype;
  Moe m;

  moe_new (&m, 3, out);
  plan = compile (m.g, FALSE);
  g_assert_true (cru_plan_is_runnable (plan));
  est = cru_plan_get_estimate (plan);
  /* 27 tensors of the base + 4 layers × 3 experts × 3 MLP tensors + 4 router rows */
  g_assert_cmpuint (cru_plan_get_n_tensors (plan), ==, 67);
  g_assert_cmpuint (est->n_tensors, ==, 67);
  g_assert_cmpuint (cru_plan_get_n_experts (plan), ==, 3);
  g_assert_cmpstr (cru_plan_get_tensor_name (plan, 0), ==, "lm_head.weight");
  g_assert_cmpuint (est->output_bytes, >, 7000000);    /* f32: about 7.6 MB */
  g_assert_cmpuint (est->bytes_written, ==, est->output_bytes);
  /* reads every copied tensor once, plus the base's layers for the router's prompts */
  g_assert_cmpuint (est->bytes_read, >, est->output_bytes);
  g_assert_cmpuint (est->peak_ram_bytes, >, 0);
  g_assert_cmpuint (est->disk_free_bytes, >, 0);
  g_assert_cmpfloat (est->seconds, >, 0);
  g_assert_cmpint (est->device, ==, CRU_DEVICE_CPU);
  /* the only warning: 3 experts is not a power of two */
  g_assert_cmpuint (test_count_problems (plan, CRU_SEVERITY_WARNING, NULL), ==, 1);
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_WARNING, "power of two"));

  json = cru_plan_to_json (plan);
  root = json_node_get_object (json);
  g_assert_true (json_object_get_boolean_member (root, "runnable"));
  g_assert_cmpint (json_object_get_int_member (root, "tensors"), ==, 67);
  moe = json_object_get_object_member (root, "moe");
  g_assert_nonnull (moe);
  g_assert_cmpint (json_object_get_int_member (moe, "node"), ==, m.moe);
  g_assert_cmpstr (json_object_get_string_member (moe, "architecture"), ==, "mixtral");
  g_assert_cmpstr (json_object_get_string_member (moe, "gate_mode"), ==, "hidden");
  g_assert_cmpint (json_object_get_int_member (moe, "experts"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (moe, "experts_per_token"), ==, 2);
  by_dtype = json_object_get_object_member (json_object_get_object_member (root, "estimate"),
                                            "output_bytes_by_dtype");
  g_assert_cmpint (json_object_get_int_member (by_dtype, "float32"), ==, est->output_bytes);
  g_assert_cmpint (json_object_get_int_member (by_dtype, "bfloat16"), <,
                   est->output_bytes / 2 + 100000);
  moe_clear (&m);
}

static void
test_plan_needs_base_and_experts (void)
{
  NEEDS_DEMO ();
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autoptr(CruPlan) plan = NULL;
  guint moe = cru_graph_add_node (g, CRU_NODE_MOE, 0, 0);

  cru_graph_set_label (g, moe, "Experts");
  test_add_output (g, "/tmp/crucible-never-written", moe);
  plan = compile (g, TRUE);
  /* both at once, each on its port */
  assert_error_at (plan, "“base” input", moe, 0, CRU_PORT_BASE);
  assert_error_at (plan, "“expert” input", moe, 0, CRU_PORT_EXPERT);
}

static void
test_plan_one_expert_warns (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autoptr(CruPlan) plan = NULL;
  const CruProblem *p;
  Moe m;

  moe_new (&m, 1, out);
  test_set (m.g, m.moe, "experts_per_token", 1);
  plan = compile (m.g, FALSE);
  p = test_find_problem (plan, CRU_SEVERITY_WARNING, "two or more experts");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->node, ==, m.moe);
  g_assert_true (cru_plan_is_runnable (plan));
  moe_clear (&m);
}

/* A merge feeding an expert input must be run first; a MoE feeding anything but the Output
 * is refused too. */
static void
test_plan_inputs_are_model_nodes (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(CruPlan) plan2 = NULL;
  g_autofree char *a = test_demo_model ("ft-c");
  g_autofree char *b = test_demo_model ("ft-prose");
  guint slerp, link, slice;
  Moe m;

  moe_new (&m, 2, out);
  slerp = test_add_method (m.g, "slerp");
  test_link (m.g, test_add_model (m.g, a), slerp, CRU_PORT_BASE);
  test_link (m.g, test_add_model (m.g, b), slerp, CRU_PORT_MODEL);
  link = test_link (m.g, slerp, m.moe, CRU_PORT_EXPERT);
  set_prompts (m.g, link, "positive_prompts", prose);
  plan = compile (m.g, FALSE);
  assert_error_at (plan, "Run that merge first", m.moe, link, CRU_PORT_EXPERT);
  g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "slerp"));

  /* MoE → Slice → Output */
  cru_graph_unlink (m.g, link);
  slice = cru_graph_add_node (m.g, CRU_NODE_SLICE, 0, 0);
  test_link (m.g, m.moe, slice, CRU_PORT_MODEL);
  cru_graph_unlink (m.g, cru_graph_find_link (m.g, m.out, CRU_PORT_MODEL, 0)->id);
  test_link (m.g, slice, m.out, CRU_PORT_MODEL);
  plan2 = compile (m.g, FALSE);
  g_assert_nonnull (test_find_problem (plan2, CRU_SEVERITY_ERROR,
                                       "can only feed the Output node directly"));
  g_assert_false (cru_plan_is_runnable (plan2));
  moe_clear (&m);
}

/* Experts must have the base's type, width, depth and MLP; the message names both. */
static void
test_plan_shapes_match_the_base (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autofree char *wide = g_build_filename (tmp, "wide", NULL);
  g_autofree char *deep = g_build_filename (tmp, "deep", NULL);
  g_autofree char *qwen = g_build_filename (tmp, "qwen", NULL);
  g_autoptr(CruPlan) plan = NULL;
  TestModelSpec spec;
  guint links[3];
  const char *paths[] = { wide, deep, qwen };
  const CruProblem *p;
  Moe m;

  test_spec_init (&spec);
  spec.layers = 4, spec.hidden = 64, spec.intermediate = 352, spec.vocab = 260;
  test_write_model (wide, &spec);
  spec.hidden = 128, spec.layers = 6;
  test_write_model (deep, &spec);
  spec.layers = 4, spec.model_type = "qwen2";
  test_write_model (qwen, &spec);

  moe_new (&m, 1, out);
  for (guint i = 0; i < 3; i++)
    {
      links[i] = test_link (m.g, test_add_model (m.g, paths[i]), m.moe, CRU_PORT_EXPERT);
      set_prompts (m.g, links[i], "positive_prompts", prompts[(i + 1) % 3]);
    }
  plan = compile (m.g, FALSE);
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "hidden size 64");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->link, ==, links[0]);
  g_assert_nonnull (strstr (p->message, "wide"));
  g_assert_nonnull (strstr (p->message, "base"));
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "layers 6");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->link, ==, links[1]);
  p = test_find_problem (plan, CRU_SEVERITY_ERROR, "“qwen2” model");
  g_assert_nonnull (p);
  g_assert_cmpuint (p->link, ==, links[2]);
  g_assert_nonnull (strstr (p->message, "“llama”"));
  g_assert_false (cru_plan_is_runnable (plan));
  moe_clear (&m);
}

static void
test_plan_experts_per_token_range (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  const double bad[] = { 0, 4, 1.5 };
  Moe m;

  moe_new (&m, 3, out);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(CruPlan) plan = NULL;
      test_set (m.g, m.moe, "experts_per_token", bad[i]);
      plan = compile (m.g, FALSE);
      assert_error_at (plan, "experts_per_token", m.moe, 0, NULL);
    }
  {
    g_autoptr(CruPlan) plan = NULL;
    test_set (m.g, m.moe, "experts_per_token", 3);
    plan = compile (m.g, FALSE);
    g_assert_true (cru_plan_is_runnable (plan));
  }
  moe_clear (&m);
}

/* Routing by prompts needs positive prompts for every expert, and none empty; random
 * routing needs none. */
static void
test_plan_prompts (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  static const char *const with_empty[] = { "def f():", "  ", NULL };
  Moe m;

  moe_new (&m, 3, out);
  cru_graph_set_link_param (m.g, m.links[1], "positive_prompts", NULL);
  set_prompts (m.g, m.links[2], "negative_prompts", with_empty);
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    assert_error_at (plan, "has no positive prompts", m.moe, m.links[1], CRU_PORT_EXPERT);
    g_assert_nonnull (strstr (test_find_problem (plan, CRU_SEVERITY_ERROR,
                                                 "no positive prompts")->message, "ft-c"));
    assert_error_at (plan, "negative prompt of expert 3 (ft-prose) is empty", m.moe,
                     m.links[2], CRU_PORT_EXPERT);
  }
  cru_graph_set_link_param (m.g, m.links[2], "negative_prompts", NULL);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(CruPlan) plan = NULL;
      test_set_str (m.g, m.moe, "gate_mode", i == 0 ? "random" : "uniform_random");
      plan = compile (m.g, FALSE);
      g_assert_true (cru_plan_is_runnable (plan));
      g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_INFO, "does not use the prompts"));
    }
  {
    g_autoptr(CruPlan) plan = NULL;
    test_set_str (m.g, m.moe, "gate_mode", "cheap_embed");
    plan = compile (m.g, FALSE);
    assert_error_at (plan, "has no positive prompts", m.moe, m.links[1], CRU_PORT_EXPERT);
  }
  moe_clear (&m);
}

static void
test_plan_same_prompts (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  Moe m;

  moe_new (&m, 3, out);
  set_prompts (m.g, m.links[2], "positive_prompts", python);
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    const CruProblem *p = test_find_problem (plan, CRU_SEVERITY_WARNING, "same prompts");
    g_assert_nonnull (p);
    g_assert_cmpuint (p->link, ==, m.links[2]);
    g_assert_nonnull (strstr (p->message, "experts 1 (ft-python) and 3 (ft-prose)"));
    g_assert_true (cru_plan_is_runnable (plan));
  }
  set_prompts (m.g, m.links[1], "positive_prompts", python);
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    assert_error_at (plan, "all experts have the same prompts", m.moe, 0, NULL);
  }
  moe_clear (&m);
}

static void
test_plan_settings (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  Moe m;

  moe_new (&m, 2, out);
  test_set_str (m.g, m.moe, "gate_mode", "hiden");
  test_set_str (m.g, m.moe, "architecture", "deepseek");
  test_set_link (m.g, m.links[0], "noise_scale", -1);
  cru_graph_set_link_param (m.g, m.links[1], "postive_prompts", cru_value_new_strings (python));
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    const CruProblem *p;
    /* every problem at once */
    assert_error_at (plan, "routing (gate_mode) “hiden”", m.moe, 0, NULL);
    assert_error_at (plan, "architecture “deepseek”", m.moe, 0, NULL);
    assert_error_at (plan, "noise_scale", m.moe, m.links[0], CRU_PORT_EXPERT);
    p = test_find_problem (plan, CRU_SEVERITY_WARNING, "did you mean “positive_prompts”");
    g_assert_nonnull (p);
    g_assert_cmpuint (p->link, ==, m.links[1]);
  }
  moe_clear (&m);
}

/* qwen2_moe needs one shared expert, the others none; each architecture takes its model
 * types. */
static void
test_plan_architectures (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  Moe m;
  guint shared;

  moe_new (&m, 2, out);
  test_set_str (m.g, m.moe, "architecture", "qwen2_moe");
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    assert_error_at (plan, "needs one shared expert", m.moe, 0, CRU_PORT_SHARED_EXPERT);
  }
  shared = test_link (m.g, m.base, m.moe, CRU_PORT_SHARED_EXPERT);
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    assert_error_at (plan, "shared expert 1 (base) has no positive prompts", m.moe, shared,
                     CRU_PORT_SHARED_EXPERT);
  }
  set_prompts (m.g, shared, "positive_prompts", prose);
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    g_assert_true (cru_plan_is_runnable (plan));
  }
  test_set_str (m.g, m.moe, "architecture", "mixtral");
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    assert_error_at (plan, "only the qwen2_moe architecture has a shared expert", m.moe,
                     shared, CRU_PORT_SHARED_EXPERT);
  }
  cru_graph_unlink (m.g, shared);
  test_set_str (m.g, m.moe, "architecture", "qwen3_moe");
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    assert_error_at (plan, "is built from qwen3 models", m.moe, m.base_link, CRU_PORT_BASE);
  }
  moe_clear (&m);
}

/* ---- running ---- */

typedef struct {
  CruRunPhase   phases[16];
  guint         n_phases;
  guint         last_tensors, tensors_total, node;
  guint64       last_bytes, bytes_total;
  gboolean      went_back;
  GCancellable *cancel_in;     /* cancel on the first report of this phase */
  CruRunPhase   cancel_phase;
  gint64        cancelled_at;
} Progress;

static void
on_progress (const CruProgress *p, gpointer data)
{
  Progress *pr = data;

  if (pr->n_phases == 0 || pr->phases[pr->n_phases - 1] != p->phase)
    {
      g_assert_cmpuint (pr->n_phases, <, G_N_ELEMENTS (pr->phases));
      pr->phases[pr->n_phases++] = p->phase;
    }
  pr->went_back |= p->bytes_done < pr->last_bytes || p->tensors_done < pr->last_tensors;
  pr->last_bytes = p->bytes_done;
  pr->last_tensors = p->tensors_done;
  pr->bytes_total = p->bytes_total;
  pr->tensors_total = p->tensors_total;
  if (p->phase != CRU_RUN_PHASE_PREPARE && p->phase != CRU_RUN_PHASE_DONE)
    pr->node = p->node;
  g_assert_cmpuint (p->bytes_done, <=, p->bytes_total);
  if (pr->cancel_in && p->phase == pr->cancel_phase && pr->cancelled_at == 0)
    {
      pr->cancelled_at = g_get_monotonic_time ();
      g_cancellable_cancel (pr->cancel_in);
    }
}

static void
build_yaml (const char *rel, const char *out)
{
  g_autofree char *yaml = source_path (rel);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruMoeConfig) config = cru_moe_config_from_yaml (yaml, &error);

  g_assert_no_error (error);
  g_assert_true (cru_moe_build (config, out, FALSE, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
assert_same_model (const char *a, const char *b)
{
  g_autofree char *ma = g_build_filename (a, "model.safetensors", NULL);
  g_autofree char *mb = g_build_filename (b, "model.safetensors", NULL);
  g_autofree char *ca = g_build_filename (a, "config.json", NULL);
  g_autofree char *cb = g_build_filename (b, "config.json", NULL);

  g_assert_true (test_files_equal (ma, mb));
  g_assert_true (test_files_equal (ca, cb));
}

/* The welcome page's example, run through the engine with progress, gives the bytes of
 * `crucible-cli moe` on the same recipe written as mergekit-moe YAML. */
static void
test_run_example_equals_moe_build (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "from-graph", NULL);
  g_autofree char *ref = g_build_filename (tmp, "from-yaml", NULL);
  g_autofree char *example = source_path ("data/examples/moe-from-experts.crucible");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  g_autoptr(GPtrArray) found = NULL;
  Progress pr = { 0 };
  CruPlanOptions o;

  g_assert_true (cru_graph_load_file (g, example, &error));
  g_assert_no_error (error);
  cru_plan_options_init (&o);
  o.out_dir = out;
  o.n_threads = 2;
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_true (cru_engine_run (plan, on_progress, &pr, NULL, &error));
  g_assert_no_error (error);

  /* progress: router rows, tensors, files, done — never backwards, ending complete */
  g_assert_cmpuint (pr.n_phases, ==, 5);
  g_assert_cmpint (pr.phases[0], ==, CRU_RUN_PHASE_PREPARE);
  g_assert_cmpint (pr.phases[1], ==, CRU_RUN_PHASE_STATS);
  g_assert_cmpint (pr.phases[2], ==, CRU_RUN_PHASE_MERGE);
  g_assert_cmpint (pr.phases[3], ==, CRU_RUN_PHASE_FINISH);
  g_assert_cmpint (pr.phases[4], ==, CRU_RUN_PHASE_DONE);
  g_assert_false (pr.went_back);
  g_assert_cmpuint (pr.last_tensors, ==, 67);
  g_assert_cmpuint (pr.tensors_total, ==, 67);
  g_assert_cmpuint (pr.last_bytes, ==, pr.bytes_total);
  g_assert_cmpuint (pr.node, ==, 5);

  build_yaml ("tests/engine/moe-example.yml", ref);
  assert_same_model (out, ref);
  model = cru_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cru_model_get_model_type (model), ==, "mixtral");
  found = cru_plan_get_run_warnings (plan);
  g_assert_cmpuint (found->len, ==, 0);
}

/* mergekit-moe YAML imported into a graph runs to the bytes of building the YAML itself. */
static void
test_run_imported_yaml_equals_moe_build (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "imported", NULL);
  g_autofree char *ref = g_build_filename (tmp, "built", NULL);
  g_autofree char *yaml = source_path ("tests/lm/moe-demo.yml");
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) g = cru_graph_import_mergekit_file (yaml, NULL, &error);
  CruPlanOptions o;

  g_assert_no_error (error);
  cru_plan_options_init (&o);
  o.out_dir = out;
  o.n_threads = 2;
  test_run_graph (g, &o);
  build_yaml ("tests/lm/moe-demo.yml", ref);
  assert_same_model (out, ref);
}

static void
test_run_output_folder_contents (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autofree char *card = NULL, *recipe = NULL, *yaml = NULL;
  g_autofree char *card_path = g_build_filename (out, "README.md", NULL);
  g_autofree char *recipe_path = g_build_filename (out, "crucible-recipe.crucible", NULL);
  g_autofree char *yaml_path = g_build_filename (out, "mergekit_moe_config.yml", NULL);
  g_autofree char *tok = g_build_filename (out, "tokenizer.json", NULL);
  g_autoptr(CruGraph) again = cru_graph_new ();
  g_autoptr(CruGraph) imported = NULL;
  g_autoptr(GError) error = NULL;
  Moe m;

  moe_new (&m, 2, out);
  set_prompts (m.g, m.links[0], "negative_prompts", prose);
  test_run_graph (m.g, NULL);
  g_assert_true (g_file_get_contents (card_path, &card, NULL, NULL));
  g_assert_nonnull (strstr (card, "- moe"));
  g_assert_nonnull (strstr (card, "gate_mode: hidden"));
  g_assert_nonnull (strstr (card, "experts_per_token: 2"));
  g_assert_nonnull (strstr (card, "“def main():”"));
  g_assert_nonnull (strstr (card, "negative prompts: “Once upon a time”"));
  g_assert_nonnull (strstr (card, "ft-c"));
  g_assert_true (g_file_test (tok, G_FILE_TEST_IS_REGULAR));
  /* the recipe opens again as the same graph; the YAML imports as a MoE */
  g_assert_true (g_file_get_contents (recipe_path, &recipe, NULL, NULL));
  g_assert_true (cru_graph_load_data (again, recipe, -1, out, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (cru_graph_get_node (again, m.moe)->kind, ==, CRU_NODE_MOE);
  g_assert_true (g_file_get_contents (yaml_path, &yaml, NULL, NULL));
  g_assert_nonnull (strstr (yaml, "gate_mode: hidden"));
  imported = cru_graph_import_mergekit (yaml, -1, out, NULL, &error);
  g_assert_no_error (error);
  moe_clear (&m);
}

/* The target is never replaced unless asked, and then only when the new model is done. */
static void
test_run_existing_target (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autofree char *mine = g_build_filename (out, "mine.txt", NULL);
  g_autofree char *model = g_build_filename (out, "model.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  Moe m;

  g_assert_cmpint (g_mkdir_with_parents (out, 0755), ==, 0);
  g_assert_true (g_file_set_contents (mine, "keep", -1, NULL));
  moe_new (&m, 2, out);
  {
    g_autoptr(CruPlan) plan = compile (m.g, FALSE);
    g_assert_nonnull (test_find_problem (plan, CRU_SEVERITY_ERROR, "already exists"));
    g_assert_false (cru_engine_run (plan, NULL, NULL, NULL, &error));
    g_clear_error (&error);
    g_assert_true (g_file_test (mine, G_FILE_TEST_EXISTS));
  }
  {
    g_autoptr(CruPlan) plan = compile (m.g, TRUE);
    g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
    g_assert_no_error (error);
    g_assert_false (g_file_test (mine, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_test (model, G_FILE_TEST_EXISTS));
  }
  moe_clear (&m);
}

static void
assert_nothing_left (const char *out)
{
  g_autofree char *parent = g_path_get_dirname (out);
  GDir *dir = g_dir_open (parent, 0, NULL);
  const char *name;

  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  cru_output_dir_wait_discarded ();
  while (dir && (name = g_dir_read_name (dir)))
    g_assert_null (strstr (name, ".crucible-"));
  if (dir)
    g_dir_close (dir);
}

/* Cancelling while the router rows are computed or while tensors are written leaves no
 * output and no temporary folder. */
static void
test_run_cancel_leaves_nothing (void)
{
  NEEDS_DEMO ();
  const CruRunPhase phases[] = { CRU_RUN_PHASE_STATS, CRU_RUN_PHASE_MERGE };

  for (guint i = 0; i < G_N_ELEMENTS (phases); i++)
    {
      g_autofree char *tmp = test_tmpdir ();
      g_autofree char *out = g_build_filename (tmp, "moe", NULL);
      g_autoptr(CruPlan) plan = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) found = NULL;
      Progress pr = { 0 };
      Moe m;

      moe_new (&m, 3, out);
      plan = compile (m.g, FALSE);
      pr.cancel_in = g_cancellable_new ();
      pr.cancel_phase = phases[i];
      g_assert_false (cru_engine_run (plan, on_progress, &pr, pr.cancel_in, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpint (pr.cancelled_at, >, 0);
      g_assert_cmpint (g_get_monotonic_time () - pr.cancelled_at, <, 200000);
      assert_nothing_left (out);
      found = cru_plan_get_run_warnings (plan);
      g_assert_cmpuint (found->len, ==, 0);
      g_object_unref (pr.cancel_in);
      moe_clear (&m);
    }
}

/* Two experts with the same prompts get the same router row: the run says so on the MoE
 * node and in the model card. */
static void
test_run_warns_about_similar_prompts (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "moe", NULL);
  g_autofree char *card_path = g_build_filename (out, "README.md", NULL);
  g_autofree char *card = NULL;
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  const CruProblem *w;
  g_autoptr(GPtrArray) warnings = NULL;
  Moe m;

  moe_new (&m, 3, out);
  set_prompts (m.g, m.links[1], "positive_prompts", python);
  plan = compile (m.g, FALSE);
  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  warnings = cru_plan_get_run_warnings (plan);
  /* the condition number; not the number of experts, which the plan already said */
  g_assert_cmpuint (warnings->len, ==, 1);
  w = g_ptr_array_index (warnings, 0);
  g_assert_cmpint (w->severity, ==, CRU_SEVERITY_WARNING);
  g_assert_cmpuint (w->node, ==, m.moe);
  g_assert_nonnull (strstr (w->message, "Experts: "));
  g_assert_nonnull (strstr (w->message, "degenerate routing"));
  g_assert_true (g_file_get_contents (card_path, &card, NULL, NULL));
  g_assert_nonnull (strstr (card, "## Warnings"));
  moe_clear (&m);
}

/* Qwen2-MoE with a shared expert, noise, an output scale and a seed: the graph runs to the
 * bytes of `crucible-cli moe` on the mergekit-moe YAML the graph exports. */
static void
test_run_qwen2_moe_equals_exported_yaml (void)
{
  NEEDS_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "graph", NULL);
  g_autofree char *ref = g_build_filename (tmp, "yaml", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruMoeConfig) config = NULL;
  g_autoptr(CruModel) model = NULL;
  g_autofree char *yaml = NULL;
  guint shared;
  Moe m;

  moe_new (&m, 2, out);
  test_set_str (m.g, m.moe, "architecture", "qwen2_moe");
  test_set_str (m.g, m.moe, "gate_mode", "cheap_embed");
  test_set (m.g, m.moe, "experts_per_token", 1);
  test_set (m.g, m.moe, "seed", 1234);
  test_set_link (m.g, m.links[0], "noise_scale", 0.01);
  test_set_link (m.g, m.links[1], "residual_scale", 0.5);
  shared = test_link (m.g, m.base, m.moe, CRU_PORT_SHARED_EXPERT);
  set_prompts (m.g, shared, "positive_prompts", prose);
  test_run_graph (m.g, NULL);

  yaml = cru_graph_export_mergekit (m.g, tmp, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (yaml, "architecture: qwen\n"));
  g_assert_nonnull (strstr (yaml, "seed: 1234\n"));
  config = cru_moe_config_from_yaml_data (yaml, -1, "exported.yml", tmp, &error);
  g_assert_no_error (error);
  g_assert_true (cru_moe_build (config, ref, FALSE, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  assert_same_model (out, ref);
  model = cru_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cru_model_get_model_type (model), ==, "qwen2_moe");
  g_assert_nonnull (cru_model_lookup (model, "model.layers.0.mlp.shared_expert_gate.weight"));
  moe_clear (&m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/moe/plan/runnable-with-estimates", test_plan_runnable_with_estimates);
  g_test_add_func ("/engine/moe/plan/needs-base-and-experts", test_plan_needs_base_and_experts);
  g_test_add_func ("/engine/moe/plan/one-expert-warns", test_plan_one_expert_warns);
  g_test_add_func ("/engine/moe/plan/inputs-are-model-nodes", test_plan_inputs_are_model_nodes);
  g_test_add_func ("/engine/moe/plan/shapes-match-the-base", test_plan_shapes_match_the_base);
  g_test_add_func ("/engine/moe/plan/experts-per-token-range", test_plan_experts_per_token_range);
  g_test_add_func ("/engine/moe/plan/prompts", test_plan_prompts);
  g_test_add_func ("/engine/moe/plan/same-prompts", test_plan_same_prompts);
  g_test_add_func ("/engine/moe/plan/settings", test_plan_settings);
  g_test_add_func ("/engine/moe/plan/architectures", test_plan_architectures);
  g_test_add_func ("/engine/moe/run/example-equals-moe-build", test_run_example_equals_moe_build);
  g_test_add_func ("/engine/moe/run/imported-yaml-equals-moe-build",
                   test_run_imported_yaml_equals_moe_build);
  g_test_add_func ("/engine/moe/run/output-folder-contents", test_run_output_folder_contents);
  g_test_add_func ("/engine/moe/run/existing-target", test_run_existing_target);
  g_test_add_func ("/engine/moe/run/cancel-leaves-nothing", test_run_cancel_leaves_nothing);
  g_test_add_func ("/engine/moe/run/qwen2-moe-equals-exported-yaml",
                   test_run_qwen2_moe_equals_exported_yaml);
  g_test_add_func ("/engine/moe/run/warns-about-similar-prompts",
                   test_run_warns_about_similar_prompts);
  return g_test_run ();
}
