/* test-cuda-simulated.c — the plan's device choice, placement and VRAM report, and the
 * engine's routing, with simulated-cuda-module.c standing in for the CUDA module
 * ($CRU_CUDA_MODULE, set by meson): it applies the real module's memory rules to made-up
 * free-memory figures and computes on the CPU, so these run without a GPU.
 *
 * Run twice by meson: once with a simulated device (/cuda/simulated/…), once with the
 * module reporting no device (/cuda/simulated-absent/…), since the plan probes the module
 * once per process.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <gmodule.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "cru-cuda-budget.h"
#include "cru-method.h"

#define DEMO_OR_SKIP(var, name)                                     \
  g_autofree char *var = test_demo_model (name);                    \
  if (var == NULL)                                                  \
    {                                                               \
      g_test_skip ("data/demo/" name " is missing");                \
      return;                                                       \
    }

#define TOTAL ((guint64) 8000000000)

typedef char **(*TakeLogFunc) (void);

static char **
take_log (void)
{
  static TakeLogFunc take;

  if (take == NULL)
    {
      GModule *module = g_module_open (g_getenv ("CRU_CUDA_MODULE"), G_MODULE_BIND_LOCAL);
      g_assert_nonnull (module);
      g_assert_true (g_module_symbol (module, "cru_simulated_cuda_take_log",
                                      (gpointer *) &take));
    }
  return take ();
}

/* Free memory that leaves exactly @budget bytes to the calls. */
static void
set_budget (guint64 budget)
{
  guint64 pipelines = (guint64) CRU_CUDA_N_CONTEXTS * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES;
  g_autofree char *free_ = g_strdup_printf ("%" G_GUINT64_FORMAT,
                                            budget + TOTAL / 10 + pipelines);
  g_autofree char *total = g_strdup_printf ("%" G_GUINT64_FORMAT, TOTAL);

  g_setenv ("CRU_SIMULATED_CUDA_FREE", free_, TRUE);
  g_setenv ("CRU_SIMULATED_CUDA_TOTAL", total, TRUE);
  g_assert_cmpuint (cru_cuda_budget_from_meminfo (budget + TOTAL / 10 + pipelines, TOTAL), ==,
                    budget);
}

/* TIES of the three demo fine-tunes on the demo base, into a fresh folder. */
static CruGraph *
ties_graph (const char *out, char **base_out)
{
  g_autofree char *base = test_demo_model ("base");
  g_autofree char *ftc = test_demo_model ("ft-c");
  g_autofree char *ftp = test_demo_model ("ft-python");
  g_autofree char *fts = test_demo_model ("ft-prose");
  CruGraph *g = cru_graph_new ();
  guint m = test_add_method (g, "ties");

  test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
  test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
  test_link (g, test_add_model (g, fts), m, CRU_PORT_MODEL);
  test_set (g, m, "density", 0.5);
  test_add_output (g, out, m);
  if (base_out)
    *base_out = g_steal_pointer (&base);
  return g;
}

static void
options_init (CruPlanOptions *o, CruDevice device)
{
  cru_plan_options_init (o);
  o->out_dtype = CRU_DTYPE_F32;
  o->n_threads = 2;
  o->device = device;
}

static JsonObject *
plan_json (CruPlan *plan, JsonNode **keep)
{
  *keep = cru_plan_to_json (plan);
  return json_node_get_object (*keep);
}

static char *
out_dir (const char *name)
{
  g_autofree char *tmp = test_tmpdir ();
  return g_build_filename (tmp, name, NULL);
}

static void
run_plan (CruPlan *plan)
{
  g_autoptr(GError) error = NULL;

  test_dump_problems (plan);
  g_assert_true (cru_plan_is_runnable (plan));
  g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
assert_same_model (const char *a, const char *b)
{
  g_autofree char *fa = g_build_filename (a, "model.safetensors", NULL);
  g_autofree char *fb = g_build_filename (b, "model.safetensors", NULL);

  g_assert_true (test_files_equal (fa, fb));
}

/* The demo base's tensor sizes, largest first, distinct. */
static GArray *
distinct_sizes (const char *base)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) m = cru_model_open (base, &error);
  GArray *sizes = g_array_new (FALSE, FALSE, sizeof (guint64));

  g_assert_no_error (error);
  for (guint i = 0; i < cru_model_get_n_tensors (m); i++)
    {
      guint64 n = cru_model_get_tensor (m, i)->info->numel;
      gboolean seen = FALSE;
      for (guint j = 0; j < sizes->len; j++)
        seen = seen || g_array_index (sizes, guint64, j) == n;
      if (!seen)
        g_array_append_val (sizes, n);
    }
  for (guint i = 0; i < sizes->len; i++)
    for (guint j = i + 1; j < sizes->len; j++)
      if (g_array_index (sizes, guint64, j) > g_array_index (sizes, guint64, i))
        {
          guint64 t = g_array_index (sizes, guint64, i);
          g_array_index (sizes, guint64, i) = g_array_index (sizes, guint64, j);
          g_array_index (sizes, guint64, j) = t;
        }
  return sizes;
}

/* With room for everything, auto picks the GPU, every tensor of the TIES node runs there,
 * and the report shows the device, the VRAM peak and budget and the placement. */
static void
test_plan_places_all_on_gpu (void)
{
  DEMO_OR_SKIP (probe, "base");
  g_autofree char *out = out_dir ("gpu");
  g_autoptr(CruGraph) g = ties_graph (out, NULL);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(JsonNode) keep = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) log = NULL;
  JsonObject *root, *est, *pl;
  JsonArray *placement;
  CruPlanOptions o;

  set_budget (4000000000ull);
  options_init (&o, CRU_DEVICE_AUTO);
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CUDA);
  g_assert_cmpstr (cru_plan_get_device_note (plan), ==, "Simulated GPU");
  g_assert_cmpuint (test_count_problems (plan, CRU_SEVERITY_INFO, "CUDA"), ==, 0);
  /* two threads, two contexts' pipelines, the CUDA context and the two largest calls */
  g_assert_cmpuint (cru_plan_get_estimate (plan)->peak_vram_bytes, >,
                    2 * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES + CRU_CUDA_CONTEXT_BYTES);
  g_assert_cmpuint (cru_plan_get_estimate (plan)->peak_vram_bytes, <,
                    2 * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES + CRU_CUDA_CONTEXT_BYTES
                    + 2 * CRU_CUDA_CALL_SLACK_BYTES + 2 * 64 * 1024 * 1024);

  root = plan_json (plan, &keep);
  est = json_object_get_object_member (root, "estimate");
  g_assert_cmpstr (json_object_get_string_member (est, "device"), ==, "cuda");
  g_assert_cmpint (json_object_get_int_member (est, "vram_budget_bytes"), ==, 4000000000);
  g_assert_cmpint (json_object_get_int_member (est, "peak_vram_bytes"), ==,
                   (gint64) cru_plan_get_estimate (plan)->peak_vram_bytes);
  placement = json_object_get_array_member (root, "placement");
  g_assert_cmpuint (json_array_get_length (placement), ==, 1);
  pl = json_array_get_object_element (placement, 0);
  g_assert_cmpint (json_object_get_int_member (pl, "gpu_tensors"), ==, 39);
  g_assert_cmpint (json_object_get_int_member (pl, "cpu_tensors"), ==, 0);
  g_assert_true (json_object_get_null_member (pl, "cpu_reason"));

  text = cru_plan_to_text (plan);
  g_assert_nonnull (strstr (text, "Simulated GPU"));
  g_assert_nonnull (strstr (text, "VRAM:"));
  g_assert_nonnull (strstr (text, "all 39 tensors on the GPU"));

  g_strfreev (take_log ());
  run_plan (plan);
  log = take_log ();
  g_assert_cmpuint (g_strv_length (log), ==, 39);
}

/* A budget between the two largest tensor sizes: the largest tensors run on the CPU, the
 * plan says which and why, the engine follows it, and the bytes equal a CPU-only run. */
static void
test_small_budget_routes_largest_to_cpu (void)
{
  DEMO_OR_SKIP (base, "base");
  const CruMethod *ties = cru_method_lookup ("ties");
  g_autofree char *out = out_dir ("mixed");
  g_autofree char *out_cpu = out_dir ("cpu");
  g_autoptr(CruGraph) g = ties_graph (out, NULL);
  g_autoptr(CruGraph) g_cpu = ties_graph (out_cpu, NULL);
  g_autoptr(GArray) sizes = distinct_sizes (base);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(CruPlan) plan_cpu = NULL;
  g_autoptr(JsonNode) keep = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  g_auto(GStrv) log = NULL;
  g_autofree char *text = NULL;
  guint64 largest, next, budget;
  guint n_large = 0;
  JsonObject *pl;
  CruPlanOptions o;

  g_assert_cmpuint (sizes->len, >=, 2);
  largest = g_array_index (sizes, guint64, 0);
  next = g_array_index (sizes, guint64, 1);
  budget = (cru_cuda_device_bytes (ties, NULL, 3, largest)
            + cru_cuda_device_bytes (ties, NULL, 3, next)) / 2;
  set_budget (budget);

  options_init (&o, CRU_DEVICE_AUTO);
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CUDA);
  pl = json_array_get_object_element (
      json_object_get_array_member (plan_json (plan, &keep), "placement"), 0);

  model = cru_model_open (base, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    n_large += cru_model_get_tensor (model, i)->info->numel == largest;
  g_assert_cmpuint (n_large, >, 0);
  g_assert_cmpint (json_object_get_int_member (pl, "cpu_tensors"), ==, n_large);
  g_assert_cmpint (json_object_get_int_member (pl, "gpu_tensors"), ==, 39 - n_large);
  g_assert_cmpstr (json_object_get_string_member (pl, "cpu_reason"), ==,
                   cru_backend_fit_to_string (CRU_BACKEND_OVER_BUDGET));
  text = cru_plan_to_text (plan);
  g_assert_nonnull (strstr (text, "on the CPU (larger than the GPU memory budget: "));

  g_strfreev (take_log ());
  run_plan (plan);
  log = take_log ();
  g_assert_cmpuint (g_strv_length (log), ==, 39 - n_large);
  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    {
      const CruModelTensor *t = cru_model_get_tensor (model, i);
      gboolean on_gpu = g_strv_contains ((const char *const *) log, t->info->name);
      g_assert_true (on_gpu == (t->info->numel < largest));
    }

  options_init (&o, CRU_DEVICE_CPU);
  plan_cpu = cru_plan_compile (g_cpu, &o, NULL, &error);
  g_assert_no_error (error);
  run_plan (plan_cpu);
  assert_same_model (out, out_cpu);
}

/* A budget below every call: the GPU takes nothing, so the CPU runs the merge (the engine
 * does not open the device) and the report still says why. */
static void
test_nothing_fits_runs_on_cpu (void)
{
  DEMO_OR_SKIP (probe, "base");
  g_autofree char *out = out_dir ("nothing-fits");
  g_autoptr(CruGraph) g = ties_graph (out, NULL);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(JsonNode) keep = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) log = NULL;
  JsonObject *pl;
  CruPlanOptions o;

  set_budget (1000000);
  options_init (&o, CRU_DEVICE_AUTO);
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CPU);
  g_assert_cmpuint (cru_plan_get_estimate (plan)->peak_vram_bytes, ==, 0);
  g_assert_cmpstr (cru_plan_get_device_note (plan), ==,
                   "CPU: Simulated GPU takes none of these tensors");
  pl = json_array_get_object_element (
      json_object_get_array_member (plan_json (plan, &keep), "placement"), 0);
  g_assert_cmpint (json_object_get_int_member (pl, "gpu_tensors"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (pl, "cpu_tensors"), ==, 39);
  text = cru_plan_to_text (plan);
  g_assert_null (strstr (text, "VRAM:"));
  g_assert_nonnull (strstr (text, "0 tensors on the GPU, 39 on the CPU (larger than the GPU "
                                  "memory budget"));
  g_strfreev (take_log ());
  run_plan (plan);
  log = take_log ();
  g_assert_cmpuint (g_strv_length (log), ==, 0);
}

/* --device cpu: no GPU in the plan, no call on the device. */
static void
test_device_cpu_uses_no_gpu (void)
{
  DEMO_OR_SKIP (probe, "base");
  g_autofree char *out = out_dir ("cpu-only");
  g_autoptr(CruGraph) g = ties_graph (out, NULL);
  g_autoptr(CruPlan) plan = NULL;
  g_autoptr(JsonNode) keep = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) log = NULL;
  CruPlanOptions o;

  set_budget (4000000000ull);
  options_init (&o, CRU_DEVICE_CPU);
  plan = cru_plan_compile (g, &o, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CPU);
  g_assert_cmpuint (cru_plan_get_estimate (plan)->peak_vram_bytes, ==, 0);
  g_assert_cmpstr (cru_plan_get_device_note (plan), ==, "CPU (chosen)");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (
                        plan_json (plan, &keep), "placement")), ==, 0);
  g_strfreev (take_log ());
  run_plan (plan);
  log = take_log ();
  g_assert_cmpuint (g_strv_length (log), ==, 0);
}

/* The Output node's "device" decides when the options leave it to the graph. */
static void
test_output_node_device (void)
{
  DEMO_OR_SKIP (probe, "base");
  g_autofree char *out = out_dir ("node");
  g_autoptr(CruGraph) g = ties_graph (out, NULL);
  g_autoptr(GError) error = NULL;
  guint output = 0;
  CruPlanOptions o;

  for (guint id = 1; output == 0 && id < 100; id++)
    if (cru_graph_get_node (g, id) && cru_graph_get_node (g, id)->kind == CRU_NODE_OUTPUT)
      output = id;
  set_budget (4000000000ull);
  options_init (&o, CRU_DEVICE_AUTO);
  test_set_str (g, output, "device", "cpu");
  {
    g_autoptr(CruPlan) plan = cru_plan_compile (g, &o, NULL, &error);
    g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CPU);
  }
  test_set_str (g, output, "device", "cuda");
  {
    g_autoptr(CruPlan) plan = cru_plan_compile (g, &o, NULL, &error);
    g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CUDA);
    g_assert_true (cru_plan_is_runnable (plan));
  }
  test_set_str (g, output, "device", "gpu");
  {
    g_autoptr(CruPlan) plan = cru_plan_compile (g, &o, NULL, &error);
    g_assert_cmpuint (test_count_problems (plan, CRU_SEVERITY_ERROR,
                                           "must be “cpu”, “cuda” or “auto”"), ==, 1);
  }
  /* the options win over the node */
  test_set_str (g, output, "device", "cpu");
  options_init (&o, CRU_DEVICE_CUDA);
  {
    g_autoptr(CruPlan) plan = cru_plan_compile (g, &o, NULL, &error);
    g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CUDA);
  }
}

/* SDM-W: the statistics pass stays on the CPU (this device has no route for it), the
 * output pass runs on the device, and the bytes equal a CPU-only run. */
static void
test_sdm_stats_on_cpu_output_on_gpu (void)
{
  DEMO_OR_SKIP (base, "base");
  g_autofree char *ftc = test_demo_model ("ft-c");
  g_autofree char *ftp = test_demo_model ("ft-python");
  g_autofree char *out = out_dir ("sdm-gpu");
  g_autofree char *out_cpu = out_dir ("sdm-cpu");
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) log = NULL;
  CruPlanOptions o;

  set_budget (4000000000ull);
  for (int pass = 0; pass < 2; pass++)
    {
      g_autoptr(CruGraph) g = cru_graph_new ();
      g_autoptr(CruPlan) plan = NULL;
      guint m = test_add_method (g, "sdm_w");

      test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
      test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
      test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
      test_add_output (g, pass == 0 ? out : out_cpu, m);
      options_init (&o, pass == 0 ? CRU_DEVICE_AUTO : CRU_DEVICE_CPU);
      plan = cru_plan_compile (g, &o, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (cru_plan_get_estimate (plan)->has_stats_pass);
      g_strfreev (take_log ());
      run_plan (plan);
      log = take_log ();
      g_assert_cmpuint (g_strv_length (log), ==, pass == 0 ? 39 : 0);
      g_clear_pointer (&log, g_strfreev);
    }
  assert_same_model (out, out_cpu);
}

/* ---- no device ---- */

/* The module is there but finds no device: auto says so once, as a note, and plans the
 * CPU; asking for cuda is an error that says what to choose instead. */
static void
test_absent_auto_and_cuda (void)
{
  DEMO_OR_SKIP (probe, "base");
  g_autofree char *out = out_dir ("absent");
  g_autoptr(CruGraph) g = ties_graph (out, NULL);
  g_autoptr(GError) error = NULL;
  CruPlanOptions o;

  options_init (&o, CRU_DEVICE_AUTO);
  {
    g_autoptr(CruPlan) plan = cru_plan_compile (g, &o, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==, CRU_DEVICE_CPU);
    g_assert_cmpuint (cru_plan_get_estimate (plan)->peak_vram_bytes, ==, 0);
    g_assert_cmpuint (test_count_problems (plan, CRU_SEVERITY_INFO,
                                           "CUDA: no device found — running on CPU"), ==, 1);
    g_assert_cmpuint (cru_plan_get_problems (plan)->len, ==, 1);
    g_assert_true (cru_plan_is_runnable (plan));
    g_assert_cmpstr (cru_plan_get_device_note (plan), ==,
                     "CUDA: no device found — running on CPU");
    run_plan (plan);
  }
  options_init (&o, CRU_DEVICE_CUDA);
  {
    g_autoptr(CruPlan) plan = cru_plan_compile (g, &o, NULL, &error);
    g_assert_no_error (error);
    g_assert_false (cru_plan_is_runnable (plan));
    g_assert_cmpuint (test_count_problems (plan, CRU_SEVERITY_ERROR,
                                           "no CUDA device was found; choose “cpu” or “auto”"),
                      ==, 1);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cuda/simulated/plan-places-every-tensor-on-the-gpu",
                   test_plan_places_all_on_gpu);
  g_test_add_func ("/cuda/simulated/small-budget-routes-largest-tensors-to-cpu",
                   test_small_budget_routes_largest_to_cpu);
  g_test_add_func ("/cuda/simulated/nothing-fits-runs-on-cpu", test_nothing_fits_runs_on_cpu);
  g_test_add_func ("/cuda/simulated/device-cpu-uses-no-gpu", test_device_cpu_uses_no_gpu);
  g_test_add_func ("/cuda/simulated/output-node-device-choice", test_output_node_device);
  g_test_add_func ("/cuda/simulated/sdm-w-statistics-on-cpu-output-on-gpu",
                   test_sdm_stats_on_cpu_output_on_gpu);
  g_test_add_func ("/cuda/simulated-absent/auto-notes-once-cuda-is-an-error",
                   test_absent_auto_and_cuda);
  return g_test_run ();
}
