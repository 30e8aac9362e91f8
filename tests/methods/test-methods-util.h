/* test-methods-util.h — building method calls in tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <math.h>
#include <string.h>

#include "cru-error.h"
#include "cru-method.h"

#define TC_MAX_MODELS 8
#define TC_MAX_PARAMS 16

typedef struct {
  const CruMethod *method;
  CruMethodCall    call;
  double           params[TC_MAX_PARAMS];
  double           model_params[TC_MAX_MODELS * TC_MAX_PARAMS];
  int64_t          shape[2];
  const float     *models[TC_MAX_MODELS];
  int              keys[TC_MAX_MODELS];
} TestCall;

static inline void
tc_init (TestCall *tc, const char *method_name, int64_t rows, int64_t cols, const float *base,
         const float *const *models, int n_models)
{
  memset (tc, 0, sizeof *tc);
  tc->method = cru_method_lookup (method_name);
  g_assert_nonnull (tc->method);
  g_assert_cmpint (tc->method->n_params, <=, TC_MAX_PARAMS);
  cru_method_fill_defaults (tc->method, tc->params);
  for (int m = 0; m < TC_MAX_MODELS; m++)
    cru_method_fill_defaults (tc->method, tc->model_params + m * tc->method->n_params);
  for (int m = 0; m < n_models; m++)
    {
      tc->models[m] = models[m];
      tc->keys[m] = m + 1;
    }
  tc->shape[0] = rows;
  tc->shape[1] = cols;
  tc->call.tensor_name = "model.layers.0.mlp.up_proj.weight";
  tc->call.layer = 0;
  tc->call.ndim = rows > 1 ? 2 : 1;
  tc->call.shape = rows > 1 ? tc->shape : tc->shape + 1;
  tc->call.numel = (guint64) (rows * cols);
  tc->call.offset = 0;
  tc->call.count = tc->call.numel;
  tc->call.seed = 42;
  tc->call.base = base;
  tc->call.n_models = n_models;
  tc->call.models = tc->models;
  tc->call.model_keys = tc->keys;
  tc->call.params = tc->params;
  tc->call.model_params = tc->model_params;
}

/* Sets a parameter globally and for every model. */
static inline void
tc_set (TestCall *tc, const char *name, double v)
{
  int p = cru_method_find_param (tc->method, name);
  g_assert_cmpint (p, >=, 0);
  tc->params[p] = v;
  for (int m = 0; m < TC_MAX_MODELS; m++)
    tc->model_params[m * tc->method->n_params + p] = v;
}

static inline void
tc_set_model (TestCall *tc, int m, const char *name, double v)
{
  int p = cru_method_find_param (tc->method, name);
  g_assert_cmpint (p, >=, 0);
  tc->model_params[m * tc->method->n_params + p] = v;
}

/* Runs the method on elements [offset, offset + count) of the tensor. */
static inline gboolean
tc_run_chunk (TestCall *tc, guint64 offset, guint64 count, float *out, GError **error)
{
  gsize bytes = tc->method->workspace_bytes (tc->call.n_models, count);
  void *ws = bytes ? g_aligned_alloc0 (1, bytes, 64) : NULL;
  const float *chunk_models[TC_MAX_MODELS];
  CruMethodCall call = tc->call;
  gboolean ok;

  for (int m = 0; m < tc->call.n_models; m++)
    chunk_models[m] = tc->models[m] + offset;
  call.offset = offset;
  call.count = count;
  call.base = tc->call.base ? tc->call.base + offset : NULL;
  call.models = chunk_models;
  call.workspace = ws;
  call.out = out;
  ok = tc->method->apply (tc->method, &call, error);
  g_aligned_free (ws);
  return ok;
}

static inline void
tc_run (TestCall *tc, float *out)
{
  GError *error = NULL;
  gboolean ok = tc_run_chunk (tc, 0, tc->call.numel, out, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
}

/* |a − b| ≤ rel · max|b| element-wise */
static inline void
assert_close (const float *a, const float *b, guint64 n, double rel)
{
  double mx = 0.0;
  for (guint64 i = 0; i < n; i++)
    mx = MAX (mx, fabs ((double) b[i]));
  for (guint64 i = 0; i < n; i++)
    if (fabs ((double) a[i] - (double) b[i]) > rel * MAX (mx, 1e-30))
      g_error ("element %" G_GUINT64_FORMAT ": %.9g vs expected %.9g", i, a[i], b[i]);
}

static inline void
fill_random (float *v, guint64 n, guint32 seed, float scale)
{
  GRand *r = g_rand_new_with_seed (seed);
  for (guint64 i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (r, -1.0, 1.0) * scale;
  g_rand_free (r);
}
