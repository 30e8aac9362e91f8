/* cru-plan-expr.c — per-tensor expression trees of a plan and their memory needs
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"

#include <string.h>

CruExpr *
_cru_expr_new_read (CruModel *model, const CruModelTensor *tensor)
{
  CruExpr *e = g_new0 (CruExpr, 1);

  e->ref_count = 1;
  e->kind = CRU_EXPR_READ;
  e->ndim = tensor->info->ndim;
  memcpy (e->shape, tensor->info->shape, sizeof e->shape);
  e->numel = tensor->info->numel;
  e->layer = tensor->layer;
  e->role = tensor->role;
  e->name = g_strdup (tensor->info->name);
  e->origin = g_strdup (cru_model_get_name (model));
  e->model = cru_model_ref (model);
  e->tensor = tensor;
  e->src_cols = e->ndim >= 2 ? e->shape[1] : 0;
  return e;
}

/* Cropping a stored tensor is folded into the read; a computed one gets a CROP node. */
CruExpr *
_cru_expr_new_crop (CruExpr *child, int64_t rows, int64_t cols)
{
  CruExpr *e;

  g_return_val_if_fail (child->ndim >= 1 && child->ndim <= 2, NULL);
  if (child->ndim == 1)
    cols = 1;
  if (child->shape[0] == rows && (child->ndim == 1 || child->shape[1] == cols))
    return _cru_expr_ref (child);

  if (child->kind == CRU_EXPR_READ)
    {
      e = _cru_expr_new_read (child->model, child->tensor);
      e->src_cols = child->src_cols;
    }
  else
    {
      e = g_new0 (CruExpr, 1);
      e->ref_count = 1;
      e->kind = CRU_EXPR_CROP;
      e->ndim = child->ndim;
      e->layer = child->layer;
      e->role = child->role;
      e->name = g_strdup (child->name);
      e->origin = g_strdup (child->origin);
      e->child = _cru_expr_ref (child);
    }
  e->shape[0] = rows;
  if (e->ndim == 2)
    e->shape[1] = cols;
  e->numel = (guint64) rows * (e->ndim == 2 ? (guint64) cols : 1);
  return e;
}

CruExpr *
_cru_expr_new_method (const CruMethod *method, guint node, const char *origin,
                      const char *name, int layer, CruTensorRole role)
{
  CruExpr *e = g_new0 (CruExpr, 1);

  e->ref_count = 1;
  e->kind = CRU_EXPR_METHOD;
  e->method = method;
  e->node = node;
  e->origin = g_strdup (origin);
  e->name = g_strdup (name);
  e->layer = layer;
  e->role = role;
  return e;
}

CruExpr *
_cru_expr_ref (CruExpr *expr)
{
  expr->ref_count++;
  return expr;
}

void
_cru_expr_unref (CruExpr *e)
{
  if (e == NULL || --e->ref_count > 0)
    return;
  g_free (e->name);
  g_free (e->origin);
  if (e->model)
    cru_model_unref (e->model);
  if (e->child)
    _cru_expr_unref (e->child);
  if (e->base)
    _cru_expr_unref (e->base);
  for (int i = 0; i < e->n_models; i++)
    _cru_expr_unref (e->models[i]);
  g_free (e->models);
  g_free (e->model_keys);
  g_free (e->params);
  g_free (e->model_params);
  g_free (e);
}

static inline guint64
aligned (guint64 bytes)
{
  return (bytes + CRU_PLAN_ALIGN - 1) & ~(guint64) (CRU_PLAN_ALIGN - 1);
}

/* Arena bytes needed below the output buffer of @e when it is evaluated on @count elements
 * (the executor allocates exactly this way: one buffer per input, then the workspace). */
static guint64
expr_scratch (const CruExpr *e, guint64 count)
{
  switch (e->kind)
    {
    case CRU_EXPR_READ:
      return 0;
    case CRU_EXPR_CROP:
      return aligned (e->child->numel * sizeof (float)) + expr_scratch (e->child, e->child->numel);
    case CRU_EXPR_METHOD:
      {
        guint64 buf = aligned (count * sizeof (float));
        guint64 held = 0, peak = 0;
        int k = 0;
        guint64 ws;

        for (int i = -1; i < e->n_models; i++)
          {
            const CruExpr *in = i < 0 ? e->base : e->models[i];
            if (in == NULL)
              continue;
            held += buf;
            k++;
            peak = MAX (peak, held + expr_scratch (in, count));
          }
        ws = e->method->workspace_bytes ? e->method->workspace_bytes (e->n_models, count) : 0;
        return MAX (peak, held + aligned (ws));
      }
    }
  return 0;
}

static gboolean
expr_chunkable (const CruExpr *e, gboolean stream)
{
  switch (e->kind)
    {
    case CRU_EXPR_READ:
      return TRUE;
    case CRU_EXPR_CROP:
      return FALSE;
    case CRU_EXPR_METHOD:
      if (e->stats != NULL)
        {
          /* element-wise once the statistics pass recorded what each tensor needs */
          if (!(stream && e->method->stats_elementwise))
            return FALSE;
        }
      else if (!cru_method_is_elementwise (e->method, e->params)
               && !(stream && cru_method_stream_passes (e->method, e->params) > 0))
        return FALSE;
      if (e->base && !expr_chunkable (e->base, stream))
        return FALSE;
      for (int i = 0; i < e->n_models; i++)
        if (!expr_chunkable (e->models[i], stream))
          return FALSE;
      return TRUE;
    }
  return FALSE;
}

/* Marks the streamed method calls of a chunkable tree; returns their states' arena bytes. */
static guint64
mark_streams (CruExpr *e)
{
  guint64 bytes = 0;

  if (e->kind != CRU_EXPR_METHOD)
    return 0;
  if (e->base)
    bytes += mark_streams (e->base);
  for (int i = 0; i < e->n_models; i++)
    bytes += mark_streams (e->models[i]);
  /* a statistics-pass method streams in its statistics pass (stats_stream_bytes) */
  e->stream_passes = e->stats ? 0 : cru_method_stream_passes (e->method, e->params);
  if (e->stream_passes > 0)
    bytes += aligned (e->method->stream_state_bytes (e->n_models, e->numel));
  return bytes;
}

/* Elements per chunk: CRU_PLAN_CPU_CHUNK_ELEMENTS for CPU plans (those that stream),
 * CRU_PLAN_CHUNK_ELEMENTS otherwise, or (tests, benchmarks) $CRU_TEST_CHUNK_ELEMENTS rounded
 * up to a whole number of CRU_FIXED_SUM_BLOCK-sized blocks, which streamed fixed-order sums
 * need. */
static guint64
chunk_elements (gboolean cpu)
{
  const char *test = g_getenv ("CRU_TEST_CHUNK_ELEMENTS");
  guint64 n;

  if (test == NULL || *test == '\0')
    return cpu ? CRU_PLAN_CPU_CHUNK_ELEMENTS : CRU_PLAN_CHUNK_ELEMENTS;
  n = g_ascii_strtoull (test, NULL, 10);
  return MAX ((n + 1023) / 1024, 1) * 1024;
}

static guint64
expr_read_bytes (const CruExpr *e)
{
  guint64 sum = 0;

  switch (e->kind)
    {
    case CRU_EXPR_READ:
      return e->numel * cru_dtype_size (e->tensor->info->dtype);
    case CRU_EXPR_CROP:
      return expr_read_bytes (e->child);
    case CRU_EXPR_METHOD:
      if (e->base)
        sum += expr_read_bytes (e->base);
      for (int i = 0; i < e->n_models; i++)
        sum += expr_read_bytes (e->models[i]);
      return sum;
    }
  return 0;
}

static void
expr_finish (CruExpr *e, gboolean stream)
{
  e->chunkable = expr_chunkable (e, stream);
  e->stream_bytes = stream && e->chunkable ? mark_streams (e) : 0;
  e->stats_stream_bytes = 0;
  if (e->kind == CRU_EXPR_METHOD && e->stats && e->chunkable && e->method->stream_state_bytes)
    e->stats_stream_bytes = aligned (e->method->stream_state_bytes (e->n_models, e->numel));
  e->unit = e->chunkable ? MIN (e->numel, chunk_elements (stream)) : e->numel;
  if (e->unit == 0)
    e->unit = 1;
  if (e->numel <= e->unit)
    e->stream_bytes = e->stats_stream_bytes = 0;   /* one chunk: the engine streams nothing */
  e->scratch_bytes = expr_scratch (e, e->unit);
  e->read_bytes = expr_read_bytes (e);
}

void
_cru_expr_finish (CruExpr *e)
{
  expr_finish (e, FALSE);
}

void
_cru_expr_finish_streaming (CruExpr *e)
{
  const char *off = g_getenv ("CRU_TEST_NO_STREAMING");   /* tests compare both ways */

  expr_finish (e, off == NULL || *off == '\0' || g_str_equal (off, "0"));
}

void
_cru_expr_foreach_read (CruExpr *e, void (*func) (CruExpr *leaf, gpointer data), gpointer data)
{
  switch (e->kind)
    {
    case CRU_EXPR_READ:
      func (e, data);
      break;
    case CRU_EXPR_CROP:
      _cru_expr_foreach_read (e->child, func, data);
      break;
    case CRU_EXPR_METHOD:
      if (e->base)
        _cru_expr_foreach_read (e->base, func, data);
      for (int i = 0; i < e->n_models; i++)
        _cru_expr_foreach_read (e->models[i], func, data);
      break;
    }
}

char *
_cru_shape_to_string (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

gboolean
_cru_shape_equal (const CruExpr *a, const CruExpr *b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return FALSE;
  return TRUE;
}
