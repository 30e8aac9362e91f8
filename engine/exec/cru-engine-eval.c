/* cru-engine-eval.c — evaluating a tensor's expression tree into reused arena buffers
 *
 * The arena is a stack: each method call pushes one buffer per input (the unit's element
 * count), evaluates the inputs into them depth-first, pushes its workspace, runs, and pops
 * everything. cru-plan-expr.c computes the same sizes for the estimate.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-engine-private.h"

#include <string.h>

gpointer
_cru_arena_push (CruArena *arena, guint64 bytes)
{
  guint64 size = (bytes + CRU_PLAN_ALIGN - 1) & ~(guint64) (CRU_PLAN_ALIGN - 1);
  gpointer p;

  if (arena->top + size > arena->size)
    return NULL;
  p = arena->base + arena->top;
  arena->top += size;
  return p;
}

gboolean
_cru_run_check_cancel (CruRun *run, GError **error)
{
  return !g_cancellable_set_error_if_cancelled (run->cancel, error);
}

static gboolean
arena_fail (const CruExpr *e, GError **error)
{
  g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
               _("Internal error: the memory planned for tensor %s was too small"), e->name);
  return FALSE;
}

static gboolean
read_range (CruWorker *w, CruExpr *e, guint64 src_offset, guint64 n, float *dst,
            GError **error)
{
  gsize esize = cru_dtype_size (e->tensor->info->dtype);

  for (guint64 done = 0; done < n;)
    {
      guint64 m = MIN (n - done, (guint64) CRU_READ_PIECE);

      if (!_cru_run_check_cancel (w->run, error))
        return FALSE;
      if (!cru_model_read_f32 (e->model, e->tensor, src_offset + done, m, dst + done, error))
        return FALSE;
      if (!w->gathering)
        _cru_run_add_bytes (w->run, m * esize);
      done += m;
    }
  return TRUE;
}

static gboolean
eval_read (CruWorker *w, CruExpr *e, guint64 offset, guint64 count, float *out, GError **error)
{
  int64_t cols;
  guint64 done = 0;

  if (e->ndim != 2 || e->src_cols == e->shape[1])
    return read_range (w, e, offset, count, out, error);

  /* Cropped columns: row by row. */
  cols = e->shape[1];
  while (done < count)
    {
      guint64 pos = offset + done;
      guint64 row = pos / (guint64) cols, col = pos % (guint64) cols;
      guint64 m = MIN (count - done, (guint64) cols - col);

      if (!read_range (w, e, row * (guint64) e->src_cols + col, m, out + done, error))
        return FALSE;
      done += m;
    }
  return TRUE;
}

static gboolean
eval_crop (CruWorker *w, CruExpr *e, guint64 offset, guint64 count, float *out, GError **error)
{
  CruArena *arena = &w->arena;
  guint64 mark = arena->top;
  CruExpr *c = e->child;
  float *whole = _cru_arena_push (arena, c->numel * sizeof (float));
  int64_t cols = e->ndim == 2 ? e->shape[1] : 1;
  int64_t src_cols = c->ndim == 2 ? c->shape[1] : 1;
  gboolean ok;

  if (whole == NULL)
    return arena_fail (e, error);
  ok = _cru_eval (w, c, 0, c->numel, whole, error);
  for (guint64 i = 0; ok && i < count; i++)
    {
      guint64 pos = offset + i;
      out[i] = whole[(pos / cols) * src_cols + pos % cols];
    }
  arena->top = mark;
  return ok;
}

/* The plan's placement (cru-plan-device.c), confirmed by the backend opened for this run:
 * when free device memory shrank since the plan was made, the call runs on the CPU. */
static CruBackend *
backend_for (CruRun *run, const CruExpr *e, guint64 count)
{
  if (run->device && e->on_device
      && run->device->iface->fit (run->device, e->method, e->params, e->n_models, count)
         == CRU_BACKEND_FITS)
    return run->device;
  return run->cpu;
}

/* Pushes and fills the input buffers of a method call; returns the call's model pointers. */
static gboolean
eval_inputs (CruWorker *w, CruExpr *e, guint64 offset, guint64 count, float **base,
             const float **models, GError **error)
{
  CruArena *arena = &w->arena;

  *base = NULL;
  if (e->base)
    {
      *base = _cru_arena_push (arena, count * sizeof (float));
      if (*base == NULL)
        return arena_fail (e, error);
      if (!_cru_eval (w, e->base, offset, count, *base, error))
        return FALSE;
    }
  for (int i = 0; i < e->n_models; i++)
    {
      float *buf = _cru_arena_push (arena, count * sizeof (float));
      if (buf == NULL)
        return arena_fail (e, error);
      if (!_cru_eval (w, e->models[i], offset, count, buf, error))
        return FALSE;
      models[i] = buf;
    }
  return TRUE;
}

static void
fill_call (CruRun *run, CruExpr *e, guint64 offset, guint64 count, CruMethodCall *call)
{
  memset (call, 0, sizeof *call);
  call->tensor_name = e->name;
  call->layer = e->layer;
  call->role = e->role;
  call->ndim = e->ndim;
  call->shape = e->shape;
  call->numel = e->numel;
  call->offset = offset;
  call->count = count;
  call->seed = run->seed;
  call->n_models = e->n_models;
  call->model_keys = e->model_keys;
  call->params = e->params;
  call->model_params = e->model_params;
  call->stats = e->stats ? e->stats->stats : NULL;
}

static gpointer
stream_state (CruWorker *w, const CruExpr *e)
{
  if (e->stream_passes == 0 || w->streams == NULL)
    return NULL;
  for (guint i = 0; i < w->streams->len; i++)
    {
      CruStreamState *s = &g_array_index (w->streams, CruStreamState, i);
      if (s->expr == e)
        return s->state;
    }
  return NULL;
}

static gboolean
eval_method (CruWorker *w, CruExpr *e, guint64 offset, guint64 count, float *out,
             GError **error)
{
  CruRun *run = w->run;
  CruArena *arena = &w->arena;
  guint64 mark = arena->top;
  const float **models = g_newa (const float *, MAX (e->n_models, 1));
  float *base = NULL;
  CruMethodCall call;
  CruBackend *backend;
  gsize ws_bytes;
  gboolean ok = FALSE;

  if (!eval_inputs (w, e, offset, count, &base, models, error))
    goto out;
  if (!_cru_run_check_cancel (run, error))
    goto out;

  fill_call (run, e, offset, count, &call);
  call.base = base;
  call.models = models;
  call.out = out;
  call.stream = stream_state (w, e);
  ws_bytes = e->method->workspace_bytes ? e->method->workspace_bytes (e->n_models, count) : 0;
  if (ws_bytes)
    {
      call.workspace = _cru_arena_push (arena, ws_bytes);
      if (call.workspace == NULL)
        {
          arena_fail (e, error);
          goto out;
        }
    }
  backend = backend_for (run, e, count);
  ok = backend->iface->run (backend, e->method, &call, error);
  if (!ok && error && *error && !g_str_has_prefix ((*error)->message, e->origin))
    g_prefix_error (error, "%s: %s: ", e->origin, e->name);
out:
  arena->top = mark;
  return ok;
}

gboolean
_cru_eval (CruWorker *w, CruExpr *e, guint64 offset, guint64 count, float *out, GError **error)
{
  switch (e->kind)
    {
    case CRU_EXPR_READ:
      return eval_read (w, e, offset, count, out, error);
    case CRU_EXPR_CROP:
      return eval_crop (w, e, offset, count, out, error);
    case CRU_EXPR_METHOD:
      w->node = e->node;
      return eval_method (w, e, offset, count, out, error);
    }
  return FALSE;
}

/* The gathering passes of one streamed call, whose inner streamed calls are ready. */
static gboolean
gather (CruWorker *w, CruExpr *e, guint64 unit, int n_passes, gpointer state, GError **error)
{
  CruRun *run = w->run;
  CruArena *arena = &w->arena;
  const float **models = g_newa (const float *, MAX (e->n_models, 1));
  gboolean gathering = w->gathering;

  for (int pass = 0; pass < n_passes; pass++)
    {
      CruMethodCall call;

      if (e->method->stream_pass_skip && e->method->stream_pass_skip (e->method, pass, state))
        continue;
      w->gathering = gathering || pass > 0;   /* what the disk gives is progress once */

      for (guint64 off = 0; off < e->numel; off += unit)
        {
          guint64 n = MIN (unit, e->numel - off), mark = arena->top;
          float *base = NULL;
          gsize ws_bytes;

          w->node = e->node;
          if (!eval_inputs (w, e, off, n, &base, models, error)
              || !_cru_run_check_cancel (run, error))
            {
              arena->top = mark;
              w->gathering = gathering;
              return FALSE;
            }
          fill_call (run, e, off, n, &call);
          call.base = base;
          call.models = models;
          call.stream = state;
          ws_bytes = e->method->workspace_bytes ? e->method->workspace_bytes (e->n_models, n) : 0;
          if (ws_bytes && (call.workspace = _cru_arena_push (arena, ws_bytes)) == NULL)
            {
              arena->top = mark;
              w->gathering = gathering;
              return arena_fail (e, error);
            }
          e->method->stream_pass (e->method, &call, pass, state);
          arena->top = mark;
        }
      w->gathering = gathering;
      fill_call (run, e, 0, e->numel, &call);
      call.stream = state;
      if (!e->method->stream_pass_end (e->method, &call, pass, state, error))
        {
          if (error && *error && !g_str_has_prefix ((*error)->message, e->origin))
            g_prefix_error (error, "%s: %s: ", e->origin, e->name);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
prepare_streams (CruWorker *w, CruExpr *e, guint64 unit, GError **error)
{
  CruStreamState s = { e, NULL };
  gsize bytes;

  if (e->kind != CRU_EXPR_METHOD)
    return TRUE;
  if (e->base && !prepare_streams (w, e->base, unit, error))
    return FALSE;
  for (int i = 0; i < e->n_models; i++)
    if (!prepare_streams (w, e->models[i], unit, error))
      return FALSE;
  if (e->stream_passes == 0 || stream_state (w, e) != NULL)
    return TRUE;   /* not streamed, or a call the tree holds twice */
  bytes = e->method->stream_state_bytes (e->n_models, e->numel);
  s.state = _cru_arena_push (&w->arena, bytes);
  if (s.state == NULL)
    return arena_fail (e, error);
  memset (s.state, 0, bytes);
  if (!gather (w, e, unit, e->stream_passes, s.state, error))
    return FALSE;
  g_array_append_val (w->streams, s);
  return TRUE;
}

gboolean
_cru_eval_prepare_streams (CruWorker *w, CruExpr *e, GError **error)
{
  gboolean ok;

  if (w->streams == NULL)
    w->streams = g_array_new (FALSE, FALSE, sizeof (CruStreamState));
  g_array_set_size (w->streams, 0);
  if (e->stream_bytes == 0 || e->numel <= e->unit)
    return TRUE;   /* nothing streamed, or one chunk: the calls see the whole tensor */
  w->gathering = TRUE;
  ok = prepare_streams (w, e, e->unit, error);
  w->gathering = FALSE;
  return ok;
}

/* A chunkable statistics-pass call: its inputs' streamed calls, then its own gathering
 * passes, and the statistics from their state. Reads count as progress once (the first
 * pass); the merge reads the inputs again. */
static gboolean
eval_stats_streamed (CruWorker *w, CruExpr *e, GError **error)
{
  CruArena *arena = &w->arena;
  guint64 mark = arena->top;
  gsize bytes = e->method->stream_state_bytes (e->n_models, e->numel);
  gpointer state;
  CruMethodCall call;
  gboolean ok;

  if (w->streams == NULL)
    w->streams = g_array_new (FALSE, FALSE, sizeof (CruStreamState));
  g_array_set_size (w->streams, 0);
  w->gathering = TRUE;
  ok = (e->base == NULL || prepare_streams (w, e->base, e->unit, error));
  for (int i = 0; ok && i < e->n_models; i++)
    ok = prepare_streams (w, e->models[i], e->unit, error);
  w->gathering = FALSE;
  if (!ok)
    goto out;
  state = _cru_arena_push (arena, bytes);
  if (state == NULL)
    {
      ok = arena_fail (e, error);
      goto out;
    }
  memset (state, 0, bytes);
  ok = gather (w, e, e->unit, cru_method_stream_passes (e->method, e->params), state, error);
  if (ok)
    {
      fill_call (w->run, e, 0, e->numel, &call);
      call.stats = e->stats->stats;
      call.stream = state;
      e->method->stats_accumulate (e->stats->stats, &call);
    }
out:
  g_array_set_size (w->streams, 0);
  arena->top = mark;
  return ok;
}

gboolean
_cru_eval_stats (CruWorker *w, CruExpr *e, GError **error)
{
  CruRun *run = w->run;
  CruArena *arena = &w->arena;
  guint64 mark = arena->top;
  const float **models = g_newa (const float *, MAX (e->n_models, 1));
  float *base = NULL;
  CruMethodCall call;
  gsize ws_bytes;
  gboolean ok = FALSE;

  w->node = e->node;
  if (e->stats_stream_bytes > 0 && e->unit < e->numel && !e->stats_on_device)
    return eval_stats_streamed (w, e, error);
  if (!eval_inputs (w, e, 0, e->numel, &base, models, error))
    goto out;
  if (!_cru_run_check_cancel (run, error))
    goto out;
  fill_call (run, e, 0, e->numel, &call);
  call.base = base;
  call.models = models;
  call.stats = e->stats->stats;
  ws_bytes = e->method->workspace_bytes ? e->method->workspace_bytes (e->n_models, e->numel) : 0;
  if (ws_bytes && (call.workspace = _cru_arena_push (arena, ws_bytes)) == NULL)
    {
      arena_fail (e, error);
      goto out;
    }
  if (run->device && e->stats_on_device && run->device->iface->stats_partial
      && e->method->stats_add_partial
      && run->device->iface->fit (run->device, e->method, e->params, e->n_models, e->numel)
         == CRU_BACKEND_FITS)
    {
      double *partial = g_newa (double, MAX (e->n_models, 1));
      if (!run->device->iface->stats_partial (run->device, e->method, &call, partial, error))
        {
          if (error && *error && !g_str_has_prefix ((*error)->message, e->origin))
            g_prefix_error (error, "%s: %s: ", e->origin, e->name);
          goto out;
        }
      e->method->stats_add_partial (e->stats->stats, &call, partial);
    }
  else
    e->method->stats_accumulate (e->stats->stats, &call);
  ok = TRUE;
out:
  arena->top = mark;
  return ok;
}
