/* test-cuda-gpu.c — the real CUDA module (libcrucible-cuda.so, $CRU_CUDA_MODULE)
 *
 * Everywhere: the module loads and either opens a device or says "CUDA: no device found —
 * running on CPU"; the CLI with --device auto gives the same bytes as --device cpu (and
 * says so once when there is no device); --device cuda without a device is an error.
 *
 * With a GPU: every method's GPU result against the CPU's on the same inputs — bit for bit
 * for the element-wise and selection methods and for DARE/DELLA with the same seed (their
 * L1 rescale sums in the fixed order of cru-fixed-sum.h), within 1e-6 of the largest
 * value for the methods that reduce in double over the whole tensor (SLERP family, Karcher,
 * Model Stock, SCE, Arcee Fusion); the conversions on all 65536 16-bit patterns; Philox;
 * the streamed pipeline over several slices and chunk offsets; SDM-W's statistics pass;
 * and a whole merge through the engine. Without a GPU these skip with "no CUDA device: …".
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <gmodule.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include "cru-backend.h"
#include "cru-cuda.h"
#include "cru-dtype.h"
#include "cru-error.h"
#include "cru-method.h"
#include "cru-rng.h"

static CruBackend *gpu;
static char *no_gpu_reason;

static gboolean
skip_without_gpu (void)
{
  if (gpu != NULL)
    return FALSE;
  g_test_skip_printf ("no CUDA device: %s", no_gpu_reason);
  return TRUE;
}

static GModule *
module (void)
{
  static GModule *m;

  if (m == NULL)
    m = g_module_open (g_getenv ("CRU_CUDA_MODULE"), G_MODULE_BIND_LOCAL);
  g_assert_nonnull (m);
  return m;
}

/* ---- the module and the CLI, with or without a GPU ---- */

static void
test_module_loads (void)
{
  g_autoptr(GError) error = NULL;
  CruBackend *b = cru_backend_cuda_load (&error);

  if (b == NULL)
    {
      /* this machine has no GPU (or no driver): exactly the message users see */
      g_assert_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED);
      g_assert_cmpstr (error->message, ==, "CUDA: no device found — running on CPU");
      g_test_message ("no device: %s", error->message);
      return;
    }
  g_assert_no_error (error);
  g_assert_cmpstr (b->iface->name, ==, "cuda");
  g_assert_nonnull (b->iface->describe (b));
  g_assert_cmpuint (b->iface->budget (b), >, 0);
  g_test_message ("device: %s, budget %" G_GUINT64_FORMAT " bytes", b->iface->describe (b),
                  b->iface->budget (b));
  cru_backend_free (b);
}

static int
run_cli (char **err, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int status = 0;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (gpointer) g_getenv ("CRU_CLI"));
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static guint
count (const char *haystack, const char *needle)
{
  guint n = 0;

  for (const char *p = haystack; (p = strstr (p, needle)) != NULL; p += strlen (needle))
    n++;
  return n;
}

/* A TIES graph of the demo models saved as a .crucible file. */
static char *
write_demo_graph (const char *dir, const char *method)
{
  g_autofree char *base = test_demo_model ("base");
  g_autofree char *ftc = test_demo_model ("ft-c");
  g_autofree char *ftp = test_demo_model ("ft-python");
  g_autoptr(CruGraph) g = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, "graph.crucible", NULL);
  guint m = test_add_method (g, method);

  test_link (g, test_add_model (g, base), m, CRU_PORT_BASE);
  test_link (g, test_add_model (g, ftc), m, CRU_PORT_MODEL);
  test_link (g, test_add_model (g, ftp), m, CRU_PORT_MODEL);
  if (g_str_equal (method, "ties") || g_str_has_prefix (method, "dare_")
      || g_str_has_prefix (method, "della"))
    test_set (g, m, "density", 0.45);
  if (g_str_has_prefix (method, "della"))
    test_set (g, m, "epsilon", 0.15);
  test_add_output (g, NULL, m);
  g_assert_true (cru_graph_save_file (g, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
assert_same_model (const char *a, const char *b)
{
  g_autofree char *fa = g_build_filename (a, "model.safetensors", NULL);
  g_autofree char *fb = g_build_filename (b, "model.safetensors", NULL);

  g_assert_true (test_files_equal (fa, fb));
}

static void
test_cli_auto_and_cpu_give_same_bytes (gconstpointer data)
{
  const char *method = data;
  g_autofree char *probe = test_demo_model ("base");
  g_autofree char *dir = NULL, *graph = NULL, *out_auto = NULL, *out_cpu = NULL;
  g_autofree char *out_cuda = NULL;
  g_autofree char *err_auto = NULL, *err_cpu = NULL, *err_cuda = NULL;
  int status;

  if (probe == NULL)
    {
      g_test_skip ("data/demo is missing");
      return;
    }
  dir = test_tmpdir ();
  graph = write_demo_graph (dir, method);
  out_auto = g_build_filename (dir, "auto", NULL);
  out_cpu = g_build_filename (dir, "cpu", NULL);
  out_cuda = g_build_filename (dir, "cuda", NULL);
  g_assert_cmpint (run_cli (&err_auto, "run", graph, "--out", out_auto, "--device", "auto",
                            "--dtype", "float32", "--threads", "2", NULL), ==, 0);
  g_assert_cmpint (run_cli (&err_cpu, "run", graph, "--out", out_cpu, "--device", "cpu",
                            "--dtype", "float32", "--threads", "2", NULL), ==, 0);
  assert_same_model (out_auto, out_cpu);
  g_assert_cmpuint (count (err_cpu, "CUDA"), ==, 0);

  status = run_cli (&err_cuda, "run", graph, "--out", out_cuda, "--device", "cuda",
                    "--dtype", "float32", "--threads", "2", NULL);
  if (gpu == NULL)
    {
      /* said once, and the run went on, on the CPU */
      g_assert_cmpuint (count (err_auto, "CUDA: no device found — running on CPU"), ==, 1);
      /* asked for explicitly: a clear error, nothing written */
      g_assert_cmpint (status, ==, 3);
      g_assert_nonnull (strstr (err_cuda, "no CUDA device was found"));
      g_assert_false (g_file_test (out_cuda, G_FILE_TEST_EXISTS));
    }
  else
    {
      g_assert_cmpuint (count (err_auto, "CUDA"), ==, 0);
      g_assert_cmpint (status, ==, 0);
      assert_same_model (out_cuda, out_cpu);
    }
}

/* ---- methods: GPU against CPU ---- */

typedef enum { SAME_BITS, WITHIN_1E6 } Compare;

typedef struct {
  const char *method;
  const char *params;      /* "name=value;name=v0|v1|v2" (per-model lists) */
  int         n_models;
  gboolean    base;
  int         rows, cols;  /* cols = 0: a 1-D tensor of @rows */
  Compare     compare;
  guint64     offset;      /* a chunk of a larger tensor (element-wise methods) */
} Case;

typedef struct {
  const CruMethod *method;
  int64_t          shape[2];
  CruMethodCall    call;
  float           *base;
  float          **models;
  double          *params;
  double          *model_params;
  int             *keys;
  gsize            ws_bytes;
} Inputs;

/* Small random changes on a random base, rounded to multiples of 2^-12 so that many
 * magnitudes tie (the selections' tie rules matter), a tenth of them exactly zero. */
static void
fill_inputs (Inputs *in, const Case *c, guint64 n, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);

  in->base = g_new (float, n);
  for (guint64 i = 0; i < n; i++)
    in->base[i] = (float) g_rand_double_range (rand, -0.05, 0.05);
  in->models = g_new0 (float *, c->n_models);
  for (int m = 0; m < c->n_models; m++)
    {
      in->models[m] = g_new (float, n);
      for (guint64 i = 0; i < n; i++)
        {
          double d = round (g_rand_double_range (rand, -0.01, 0.01) * 4096.0) / 4096.0;
          if (g_rand_int_range (rand, 0, 10) == 0)
            d = 0.0;
          in->models[m][i] = in->base[i] + (float) d;
        }
    }
  g_rand_free (rand);
}

static void
set_params (Inputs *in, const char *spec, int n_models)
{
  const CruMethod *method = in->method;
  g_auto(GStrv) items = g_strsplit (spec ? spec : "", ";", -1);

  in->params = g_new (double, MAX (method->n_params, 1));
  in->model_params = g_new (double, MAX (method->n_params, 1) * n_models);
  cru_method_fill_defaults (method, in->params);
  for (guint i = 0; items[i]; i++)
    {
      g_auto(GStrv) kv = g_strsplit (items[i], "=", 2);
      int p;
      if (kv[0] == NULL || kv[1] == NULL)
        continue;
      p = cru_method_find_param (method, kv[0]);
      g_assert_cmpint (p, >=, 0);
      in->params[p] = g_ascii_strtod (kv[1], NULL);
    }
  for (int m = 0; m < n_models; m++)
    memcpy (in->model_params + (gsize) m * method->n_params, in->params,
            method->n_params * sizeof (double));
  for (guint i = 0; items[i]; i++)
    {
      g_auto(GStrv) kv = g_strsplit (items[i], "=", 2);
      g_auto(GStrv) values = NULL;
      int p;
      if (kv[0] == NULL || kv[1] == NULL || strchr (kv[1], '|') == NULL)
        continue;
      p = cru_method_find_param (method, kv[0]);
      values = g_strsplit (kv[1], "|", -1);
      g_assert_cmpuint (g_strv_length (values), ==, n_models);
      for (int m = 0; m < n_models; m++)
        in->model_params[(gsize) m * method->n_params + p] = g_ascii_strtod (values[m], NULL);
    }
}

static void
inputs_init (Inputs *in, const Case *c, guint32 seed)
{
  guint64 n = (guint64) c->rows * (c->cols ? c->cols : 1);

  memset (in, 0, sizeof *in);
  in->method = cru_method_lookup (c->method);
  g_assert_nonnull (in->method);
  in->shape[0] = c->rows;
  in->shape[1] = c->cols;
  fill_inputs (in, c, n, seed);
  set_params (in, c->params, c->n_models);
  in->keys = g_new (int, c->n_models);
  for (int m = 0; m < c->n_models; m++)
    in->keys[m] = m + 1;

  in->call.tensor_name = "model.layers.3.mlp.up_proj.weight";
  in->call.layer = 3;
  in->call.ndim = c->cols ? 2 : 1;
  in->call.shape = in->shape;
  in->call.offset = c->offset;
  in->call.count = n;
  in->call.numel = c->offset + n;
  in->call.seed = 20240607;
  in->call.base = c->base ? in->base : NULL;
  in->call.n_models = c->n_models;
  in->call.models = (const float *const *) in->models;
  in->call.model_keys = in->keys;
  in->call.params = in->params;
  in->call.model_params = in->model_params;
  in->ws_bytes = in->method->workspace_bytes ? in->method->workspace_bytes (c->n_models, n) : 0;
}

static void
inputs_clear (Inputs *in, const Case *c)
{
  g_free (in->base);
  for (int m = 0; m < c->n_models; m++)
    g_free (in->models[m]);
  g_free (in->models);
  g_free (in->params);
  g_free (in->model_params);
  g_free (in->keys);
}

/* Runs the call on @backend into a fresh buffer. */
static float *
run_on (CruBackend *backend, Inputs *in)
{
  g_autoptr(GError) error = NULL;
  CruMethodCall call = in->call;
  float *out = g_new0 (float, call.count);
  void *ws = in->ws_bytes ? g_aligned_alloc0 (1, in->ws_bytes, 64) : NULL;

  call.out = out;
  call.workspace = ws;
  g_assert_true (backend->iface->run (backend, in->method, &call, &error));
  g_assert_no_error (error);
  g_aligned_free (ws);
  return out;
}

static void
compare_outputs (const float *got, const float *want, guint64 n, Compare how,
                 const char *what)
{
  double max_abs = 1e-30, max_diff = 0.0;
  guint64 worst = 0, n_diff = 0;

  for (guint64 i = 0; i < n; i++)
    {
      double d = fabs ((double) got[i] - want[i]);
      max_abs = MAX (max_abs, fabs (want[i]));
      if (memcmp (&got[i], &want[i], 4) != 0)
        n_diff++;
      if (d > max_diff || (isnan (got[i]) != isnan (want[i])))
        {
          max_diff = isnan (d) ? INFINITY : d;
          worst = i;
        }
    }
  g_test_message ("%s: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " elements differ in "
                  "their bits, max |diff| %.3g (max |value| %.3g)", what, n_diff, n, max_diff,
                  max_abs);
  if (how == SAME_BITS && n_diff != 0)
    g_error ("%s: not bit-identical: element %" G_GUINT64_FORMAT " GPU %.9g CPU %.9g "
             "(%" G_GUINT64_FORMAT " elements differ)", what, worst, got[worst], want[worst],
             n_diff);
  if (how == WITHIN_1E6 && max_diff > 1e-6 * max_abs)
    g_error ("%s: element %" G_GUINT64_FORMAT " GPU %.9g CPU %.9g: off by %.3g, more than "
             "1e-6 of %.3g", what, worst, got[worst], want[worst], max_diff, max_abs);
}

static void
test_method_case (gconstpointer data)
{
  const Case *c = data;
  g_autofree char *what = g_strdup_printf ("%s [%s] on %d×%d", c->method,
                                           c->params ? c->params : "defaults", c->rows,
                                           c->cols);
  g_autoptr(CruBackend) cpu = NULL;
  g_autofree float *want = NULL, *got = NULL;
  Inputs in;

  if (skip_without_gpu ())
    return;
  cpu = cru_backend_cpu_new ();
  inputs_init (&in, c, 1234);
  want = run_on (cpu, &in);
  got = run_on (gpu, &in);
  compare_outputs (got, want, in.call.count, c->compare, what);
  inputs_clear (&in, c);
}

/* Every family, with the parameters that change its code path. */
static const Case cases[] = {
  { "linear", "weight=0.3|0.7|0.5", 3, FALSE, 173, 1031, SAME_BITS, 0 },
  { "linear", "weight=0.3|0.7;normalize=0", 2, FALSE, 4099, 0, SAME_BITS, 0 },
  { "task_arithmetic", "weight=0.5|0.8;lambda=0.9", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "ties", "density=0.4;weight=1|0.6|0.8", 3, TRUE, 173, 1031, SAME_BITS, 0 },
  { "ties", "density=0.3|0.7", 2, TRUE, 4099, 0, SAME_BITS, 0 },
  { "ties", "density=0.5;normalize=0;lambda=1.5", 2, TRUE, 64, 64, SAME_BITS, 0 },
  { "dare_ties", "density=0.5", 3, TRUE, 173, 1031, SAME_BITS, 0 },
  { "dare_ties", "density=0.5;rescale=2", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "dare_linear", "density=0.3;weight=0.6|0.4", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "dare_linear", "density=0.3;rescale=0", 2, TRUE, 4099, 0, SAME_BITS, 0 },
  { "breadcrumbs", "density=0.8;gamma=0.05", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "breadcrumbs", "density=0.9;gamma=0", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "breadcrumbs_ties", "density=0.7;gamma=0.02", 3, TRUE, 173, 1031, SAME_BITS, 0 },
  { "della", "density=0.5;epsilon=0.1", 3, TRUE, 173, 1031, SAME_BITS, 0 },
  { "della_linear", "density=0.4;epsilon=0.2", 2, TRUE, 4099, 0, SAME_BITS, 0 },
  { "della", "density=0.6;epsilon=0.1;rescale=2", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "ram", NULL, 3, TRUE, 173, 1031, SAME_BITS, 0 },
  { "ramplus_tl", "r=0.2;alpha=0.3", 3, TRUE, 173, 1031, SAME_BITS, 0 },
  { "nearswap", "t=0.004", 1, TRUE, 173, 1031, SAME_BITS, 0 },
  { "passthrough", "scale=0.5", 1, FALSE, 173, 1031, SAME_BITS, 0 },
  { "sdm_w", "k=10;weights_scope=1", 2, TRUE, 173, 1031, SAME_BITS, 0 },
  { "sdm_w", "k=35;weights_scope=1;normalization=1", 3, TRUE, 4099, 0, SAME_BITS, 0 },
  { "slerp", "t=0.3", 1, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "nuslerp", "weight=0.4|0.6", 2, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "nuslerp", "weight=0.4|0.6;nuslerp_flatten=0", 2, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "nuslerp", "weight=0.7|0.3;nuslerp_flatten=0;nuslerp_row_wise=1", 2, FALSE, 173, 1031,
    WITHIN_1E6, 0 },
  { "multislerp", "weight=0.2|0.5|0.3", 3, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "multislerp", "weight=1|2", 2, FALSE, 4099, 0, WITHIN_1E6, 0 },
  { "karcher", NULL, 3, FALSE, 173, 1031, WITHIN_1E6, 0 },
  { "model_stock", NULL, 3, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "model_stock", "filter_wise=1", 2, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "sce", "select_topk=0.5", 3, TRUE, 173, 1031, WITHIN_1E6, 0 },
  { "sce", NULL, 2, TRUE, 4099, 0, WITHIN_1E6, 0 },
  { "arcee_fusion", NULL, 1, TRUE, 173, 1031, WITHIN_1E6, 0 },
  /* the streamed pipeline: several slices, and a chunk far into its tensor (DARE's random
   * numbers are indexed by the absolute element) */
  { "linear", "weight=1|2|3", 3, FALSE, 3001, 1024, SAME_BITS, 0 },
  { "dare_linear", "density=0.4;rescale=2", 2, TRUE, 2500, 1000, SAME_BITS, 1000003 },
  { "ram", NULL, 2, TRUE, 2500, 1000, SAME_BITS, 8388608 },
  /* whole-tensor calls larger than one 32 MB staging slot per input */
  { "ties", "density=0.25", 2, TRUE, 2304, 4096, SAME_BITS, 0 },
  { "della", "density=0.5;epsilon=0.05", 2, TRUE, 2304, 4096, SAME_BITS, 0 },
};

/* SDM-W's statistics pass: the GPU's per-tensor masses, added as partials, give the same
 * model weights as the CPU's, and so the same merged bits. */
static void
test_sdm_statistics (void)
{
  static const Case c = { "sdm_w", "k=20", 3, TRUE, 173, 1031, SAME_BITS, 0 };
  g_autoptr(CruBackend) cpu = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *want = NULL, *got = NULL;
  double partial[3];
  gpointer s_cpu, s_gpu;
  const double *w_cpu, *w_gpu;
  const CruMethod *sdm;
  Inputs in;

  if (skip_without_gpu ())
    return;
  cpu = cru_backend_cpu_new ();
  inputs_init (&in, &c, 99);
  sdm = in.method;
  s_cpu = sdm->stats_new (sdm, 3);
  s_gpu = sdm->stats_new (sdm, 3);
  for (int t = 0; t < 2; t++)
    {
      CruMethodCall call = in.call;
      void *ws = g_aligned_alloc0 (1, in.ws_bytes, 64);

      call.tensor_name = t == 0 ? "model.layers.0.mlp.up_proj.weight" : "lm_head.weight";
      call.workspace = ws;
      sdm->stats_accumulate (s_cpu, &call);
      g_assert_true (gpu->iface->stats_partial (gpu, sdm, &call, partial, &error));
      g_assert_no_error (error);
      sdm->stats_add_partial (s_gpu, &call, partial);
      g_aligned_free (ws);
    }
  g_assert_true (sdm->stats_finish (s_cpu, &error));
  g_assert_true (sdm->stats_finish (s_gpu, &error));
  w_cpu = sdm->stats_get_weights (s_cpu);
  w_gpu = sdm->stats_get_weights (s_gpu);
  g_assert_cmpmem (w_gpu, 3 * sizeof (double), w_cpu, 3 * sizeof (double));

  in.call.stats = s_cpu;
  want = run_on (cpu, &in);
  in.call.stats = s_gpu;
  got = run_on (gpu, &in);
  compare_outputs (got, want, in.call.count, SAME_BITS, "sdm_w with model weights");
  sdm->stats_free (s_cpu);
  sdm->stats_free (s_gpu);
  inputs_clear (&in, &c);
}

/* ---- conversions and random numbers on the device ---- */

static void
test_conversions (void)
{
  CruCudaConvertFunc convert;
  g_autoptr(GError) error = NULL;
  g_autofree uint16_t *h = g_new (uint16_t, 65536);
  g_autofree float *wide = g_new (float, 65536);
  g_autoptr(GArray) narrow_in = g_array_new (FALSE, FALSE, sizeof (float));
  g_autofree uint16_t *narrow_out = NULL;

  if (skip_without_gpu ())
    return;
  g_assert_true (g_module_symbol (module (), CRU_CUDA_CONVERT_SYMBOL, (gpointer *) &convert));
  for (guint32 i = 0; i < 65536; i++)
    h[i] = (uint16_t) i;

  g_assert_true (convert (CRU_CUDA_CONVERT_BF16_TO_F32, h, wide, 65536, &error));
  for (guint32 i = 0; i < 65536; i++)
    {
      float ref = cru_bf16_to_f32 (h[i]);
      g_assert_cmpmem (&wide[i], 4, &ref, 4);
    }
  g_assert_true (convert (CRU_CUDA_CONVERT_F16_TO_F32, h, wide, 65536, &error));
  for (guint32 i = 0; i < 65536; i++)
    {
      float ref = cru_f16_to_f32 (h[i]);
      g_assert_cmpmem (&wide[i], 4, &ref, 4);
    }

  /* narrowing: every widened pattern, its rounding neighbours, and a sweep of all floats */
  for (guint32 i = 0; i < 65536; i++)
    {
      guint32 u;
      float f = cru_bf16_to_f32 (h[i]), g;
      memcpy (&u, &f, 4);
      for (guint32 d = 0; d <= 0x8001u; d += 0x4000u)
        {
          guint32 v = u + (d == 0x8000u ? 0x7fffu : d);
          memcpy (&g, &v, 4);
          g_array_append_val (narrow_in, g);
        }
      f = cru_f16_to_f32 (h[i]);
      g_array_append_val (narrow_in, f);
    }
  for (guint64 u = 0; u <= 0xffffffffu; u += 0x10001u)
    {
      guint32 v = (guint32) u;
      float g;
      memcpy (&g, &v, 4);
      g_array_append_val (narrow_in, g);
    }
  narrow_out = g_new (uint16_t, narrow_in->len);
  g_assert_true (convert (CRU_CUDA_CONVERT_F32_TO_BF16, narrow_in->data, narrow_out,
                          narrow_in->len, &error));
  for (guint i = 0; i < narrow_in->len; i++)
    g_assert_cmphex (narrow_out[i], ==, cru_f32_to_bf16 (g_array_index (narrow_in, float, i)));
  g_assert_true (convert (CRU_CUDA_CONVERT_F32_TO_F16, narrow_in->data, narrow_out,
                          narrow_in->len, &error));
  for (guint i = 0; i < narrow_in->len; i++)
    g_assert_cmphex (narrow_out[i], ==, cru_f32_to_f16 (g_array_index (narrow_in, float, i)));
  g_assert_no_error (error);
}

static void
test_philox (void)
{
  CruCudaUniformFunc uniform;
  g_autoptr(GError) error = NULL;
  const guint64 n = 100003, first = ((guint64) 1 << 32) - 7;
  g_autofree float *got = g_new (float, n);
  g_autofree float *want = g_new (float, n);
  CruRng rng;

  if (skip_without_gpu ())
    return;
  g_assert_true (g_module_symbol (module (), CRU_CUDA_UNIFORM_SYMBOL, (gpointer *) &uniform));
  g_assert_true (uniform (42, "model.layers.7.self_attn.q_proj.weight", 3, first, n, got,
                          &error));
  g_assert_no_error (error);
  cru_rng_init (&rng, 42, "model.layers.7.self_attn.q_proj.weight", 3);
  cru_rng_uniform (&rng, first, n, want);
  g_assert_cmpmem (got, n * sizeof (float), want, n * sizeof (float));
}

/* ---- a whole merge through the plan and the engine ---- */

static void
test_engine_merges_match (gconstpointer data)
{
  const char *method = data;
  g_autofree char *probe = test_demo_model ("base");
  g_autofree char *dir = NULL, *out_gpu = NULL, *out_cpu = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_gpu ())
    return;
  if (probe == NULL)
    {
      g_test_skip ("data/demo is missing");
      return;
    }
  dir = test_tmpdir ();
  out_gpu = g_build_filename (dir, "gpu", NULL);
  out_cpu = g_build_filename (dir, "cpu", NULL);
  for (int pass = 0; pass < 2; pass++)
    {
      g_autofree char *path = write_demo_graph (dir, method);
      g_autoptr(CruGraph) g = cru_graph_new ();
      g_autoptr(CruPlan) plan = NULL;
      CruPlanOptions o;

      g_assert_true (cru_graph_load_file (g, path, &error));
      cru_plan_options_init (&o);
      o.out_dir = pass == 0 ? out_gpu : out_cpu;
      o.out_dtype = CRU_DTYPE_BF16;
      o.n_threads = 3;
      o.seed = 7;
      o.device = pass == 0 ? CRU_DEVICE_CUDA : CRU_DEVICE_CPU;
      plan = cru_plan_compile (g, &o, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (cru_plan_get_estimate (plan)->device, ==,
                       pass == 0 ? CRU_DEVICE_CUDA : CRU_DEVICE_CPU);
      if (pass == 0)
        g_assert_cmpuint (cru_plan_get_estimate (plan)->peak_vram_bytes, >, 0);
      test_dump_problems (plan);
      g_assert_true (cru_engine_run (plan, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  {
    g_autofree char *fa = g_build_filename (out_gpu, "model.safetensors", NULL);
    g_autofree char *fb = g_build_filename (out_cpu, "model.safetensors", NULL);
    g_assert_true (test_files_equal (fa, fb));
  }
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  static const char *const engine_methods[] = { "linear", "ties", "dare_ties", "sdm_w",
                                                "della" };

  g_test_init (&argc, &argv, NULL);
  gpu = cru_backend_cuda_load (&error);
  no_gpu_reason = g_strdup (error ? error->message : "");

  g_test_add_func ("/cuda/module/loads-and-reports-its-device", test_module_loads);
  g_test_add_data_func ("/cuda/module/cli-auto-cpu-and-cuda/linear", "linear",
                        test_cli_auto_and_cpu_give_same_bytes);
  g_test_add_data_func ("/cuda/module/cli-auto-cpu-and-cuda/ties", "ties",
                        test_cli_auto_and_cpu_give_same_bytes);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/cuda/gpu/methods/%s/%u", cases[i].method, i);
      g_test_add_data_func (path, &cases[i], test_method_case);
    }
  g_test_add_func ("/cuda/gpu/sdm-w/statistics-pass-same-weights", test_sdm_statistics);
  g_test_add_func ("/cuda/gpu/conversions/all-16-bit-patterns-and-edges", test_conversions);
  g_test_add_func ("/cuda/gpu/philox/same-numbers-as-cpu", test_philox);
  for (guint i = 0; i < G_N_ELEMENTS (engine_methods); i++)
    {
      g_autofree char *path = g_strdup_printf ("/cuda/gpu/engine/%s-bytes-equal-cpu",
                                               engine_methods[i]);
      g_test_add_data_func (path, engine_methods[i], test_engine_merges_match);
    }
  return g_test_run ();
}
