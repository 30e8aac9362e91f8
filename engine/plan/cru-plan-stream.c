/* cru-plan-stream.c — evaluate the graph symbolically: every node's output becomes a
 * stream of named tensor expressions (Model → reads, Slice/Stack → renumbered layers,
 * Method → method calls over its inputs' expressions). Shared sub-expressions make a
 * merge of merges one fused computation per output tensor.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"

#include <inttypes.h>
#include <string.h>

/* How many shape errors to list per pair of inputs before summarizing. */
#define MAX_SHAPE_MESSAGES 4

#define IN_PROGRESS ((gpointer) 1)

static CruStreamEntry *
entry_new (CruExpr *expr, int layer, CruTensorRole role)
{
  CruStreamEntry *e = g_new0 (CruStreamEntry, 1);

  e->expr = expr;
  e->layer = layer;
  e->role = role;
  return e;
}

static void
entry_free (gpointer data)
{
  CruStreamEntry *e = data;

  _cru_expr_unref (e->expr);
  g_free (e);
}

static CruStream *
stream_new (const char *origin)
{
  CruStream *s = g_new0 (CruStream, 1);

  s->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  s->origin = g_strdup (origin);
  return s;
}

void
_cru_stream_free (CruStream *s)
{
  if (s == NULL || s == IN_PROGRESS)
    return;
  g_hash_table_unref (s->entries);
  if (s->config)
    cru_model_unref (s->config);
  g_free (s->origin);
  g_free (s);
}

char *
_cru_node_title (CruGraph *graph, guint id)
{
  const CruNode *n = cru_graph_get_node (graph, id);

  if (n == NULL)
    return g_strdup_printf (_("node %u"), id);
  if (n->label && *n->label)
    return g_strdup (n->label);
  if (n->kind == CRU_NODE_MODEL && n->path)
    return g_path_get_basename (n->path);
  if (n->kind == CRU_NODE_METHOD && n->method)
    /* TRANSLATORS: "ties (node 4)" */
    return g_strdup_printf (_("%s (node %u)"), n->method, id);
  return g_strdup_printf (_("%s (node %u)"), cru_node_kind_to_string (n->kind), id);
}

void
_cru_compiler_problem (CruCompiler *c, CruSeverity severity, guint node, guint link,
                       const char *port, const char *message)
{
  char *key = g_strdup_printf ("%u:%u:%s", node, link, message);

  if (!g_hash_table_add (c->messages, key))
    return;
  _cru_plan_add_problem (c->plan, severity, node, link, port, "%s", message);
}

static void
problem (CruCompiler *c, CruSeverity severity, guint node, const char *format, ...)
  G_GNUC_PRINTF (4, 5);

static void
problem (CruCompiler *c, CruSeverity severity, guint node, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  _cru_compiler_problem (c, severity, node, 0, NULL, message);
}

static CruStreamEntry *
stream_find_role (CruStream *s, CruTensorRole role, const char **name)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, s->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((CruStreamEntry *) value)->role == role)
      {
        if (name)
          *name = key;
        return value;
      }
  return NULL;
}

/* ---- Model ---- */

static CruStream *
model_stream (CruCompiler *c, const CruNode *n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *title = _cru_node_title (c->graph, n->id);
  CruModel *model;
  CruStream *s;

  if (n->path == NULL || *n->path == '\0')
    {
      problem (c, CRU_SEVERITY_ERROR, n->id,
               _("%s: no model chosen; pick a model folder or .safetensors file"), title);
      return NULL;
    }
  model = g_hash_table_lookup (c->models, GUINT_TO_POINTER (n->id));
  if (model == NULL)
    {
      model = cru_model_open (n->path, &error);
      if (model == NULL)
        {
          problem (c, CRU_SEVERITY_ERROR, n->id, "%s", error->message);
          return NULL;
        }
      g_hash_table_insert (c->models, GUINT_TO_POINTER (n->id), model);
      g_ptr_array_add (c->plan->models, cru_model_ref (model));
      g_ptr_array_add (c->plan->model_nodes, GUINT_TO_POINTER (n->id));
    }

  s = stream_new (cru_model_get_name (model));
  s->config = cru_model_ref (model);
  s->arch = cru_model_get_arch (model);
  s->n_layers = cru_model_get_n_layers (model);
  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    {
      const CruModelTensor *t = cru_model_get_tensor (model, i);
      g_hash_table_insert (s->entries, g_strdup (t->info->name),
                           entry_new (_cru_expr_new_read (model, t), t->layer, t->role));
    }
  s->tied = stream_find_role (s, CRU_ROLE_LM_HEAD, NULL) == NULL
            && cru_model_get_tie_word_embeddings (model);
  return s;
}

/* ---- Slice / Stack ---- */

static gboolean
node_int_param (CruCompiler *c, guint node, const char *name, int *out)
{
  const CruValue *v = cru_graph_get_param (c->graph, node, name);
  double d;

  if (v == NULL || !cru_value_resolve (v, "", 0.0, &d))
    return FALSE;
  *out = (int) d;
  return TRUE;
}

static CruStream *
slice_stream (CruCompiler *c, const CruNode *n, CruStream *in)
{
  g_autofree char *title = _cru_node_title (c->graph, n->id);
  GHashTableIter iter;
  gpointer key, value;
  int start = 0, end = in->n_layers;
  CruStream *s;

  node_int_param (c, n->id, "start", &start);
  node_int_param (c, n->id, "end", &end);
  if (start < 0 || end > in->n_layers || start >= end)
    {
      problem (c, CRU_SEVERITY_ERROR, n->id,
               _("%s: layer range [%d, %d) is outside the %d layers of %s; use a range "
                 "within [0, %d)"), title, start, end, in->n_layers, in->origin,
               in->n_layers);
      return NULL;
    }

  s = stream_new (in->origin);
  s->config = in->config ? cru_model_ref (in->config) : NULL;
  s->arch = in->arch;
  s->tied = in->tied;
  s->n_layers = end - start;
  g_hash_table_iter_init (&iter, in->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      CruStreamEntry *e = value;
      if (e->layer < 0)
        g_hash_table_insert (s->entries, g_strdup (key),
                             entry_new (_cru_expr_ref (e->expr), -1, e->role));
      else if (e->layer >= start && e->layer < end)
        g_hash_table_insert (s->entries, cru_arch_rename_layer (key, e->layer, e->layer - start),
                             entry_new (_cru_expr_ref (e->expr), e->layer - start, e->role));
    }
  return s;
}

/* A slice's link into a stack may carry passthrough's `scale` (mergekit: per-source
 * parameters of a passthrough slice), resolved per tensor like a method parameter. */
static CruExpr *
scaled_slice_entry (CruCompiler *c, const CruNode *n, const CruLink *link, const char *name,
                    const CruStreamEntry *e, int n_layers)
{
  const CruMethod *method = cru_method_lookup ("passthrough");
  int p = cru_method_find_param (method, "scale");
  const CruValue *v = cru_graph_get_link_param (c->graph, link->id, "scale");
  double t = e->layer >= 0 ? cru_value_layer_t (e->layer, n_layers) : 0.0;
  double scale = method->params[p].default_value;
  g_autofree double *params = NULL;
  CruExpr *x;

  if (v == NULL || !cru_value_resolve (v, name, t, &scale) || scale == 1.0)
    return _cru_expr_ref (e->expr);
  params = g_new0 (double, method->n_params);
  for (int i = 0; i < method->n_params; i++)
    params[i] = method->params[i].default_value;
  params[p] = scale;
  x = _cru_expr_new_method (method, n->id, e->expr->origin, name, e->layer, e->role);
  x->ndim = e->expr->ndim;
  memcpy (x->shape, e->expr->shape, sizeof x->shape);
  x->numel = e->expr->numel;
  x->n_models = 1;
  x->models = g_new0 (CruExpr *, 1);
  x->models[0] = _cru_expr_ref (e->expr);
  x->model_keys = g_new0 (int, 1);
  x->params = g_memdup2 (params, method->n_params * sizeof (double));
  x->model_params = g_memdup2 (params, method->n_params * sizeof (double));
  return x;
}

static CruStream *
stack_stream (CruCompiler *c, const CruNode *n, CruStream **ins, const CruLink **links,
              guint n_ins)
{
  CruStream *s = stream_new (ins[0]->origin);
  int offset = 0;

  s->config = ins[0]->config ? cru_model_ref (ins[0]->config) : NULL;
  s->arch = ins[0]->arch;
  /* The head comes from the last slice (see below), so does whether it is tied. */
  s->tied = ins[n_ins - 1]->tied;
  for (guint k = 0; k < n_ins; k++)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, ins[k]->entries);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          CruStreamEntry *e = value;
          if (e->layer < 0)
            {
              /* As in mergekit: what comes before the layers (embeddings) is taken from the
               * first slice, what comes after them (final norm, head) from the last. */
              gboolean after = e->role == CRU_ROLE_NORM || e->role == CRU_ROLE_LM_HEAD;
              if (k == (after ? n_ins - 1 : 0))
                g_hash_table_insert (s->entries, g_strdup (key),
                                     entry_new (scaled_slice_entry (c, n, links[k], key, e,
                                                                    ins[k]->n_layers),
                                                -1, e->role));
            }
          else
            g_hash_table_insert (s->entries,
                                 cru_arch_rename_layer (key, e->layer, e->layer + offset),
                                 entry_new (scaled_slice_entry (c, n, links[k], key, e,
                                                                ins[k]->n_layers),
                                            e->layer + offset, e->role));
        }
      offset += ins[k]->n_layers;
    }
  s->n_layers = offset;
  return s;
}

/* ---- Method ---- */

static gboolean
resolve_value (const CruValue *v, const CruParamSpec *spec, const char *name, double t,
               double *out)
{
  const char *str;

  if (v == NULL)
    return FALSE;
  if (cru_value_resolve (v, name, t, out))
    return TRUE;
  str = cru_value_resolve_string (v, name);
  if (str == NULL)
    return FALSE;
  if (spec->type == CRU_PARAM_ENUM)
    {
      int idx = cru_param_spec_find_choice (spec, str);
      if (idx < 0)
        return FALSE;
      *out = idx;
      return TRUE;
    }
  if (spec->type == CRU_PARAM_BOOL)
    {
      if (g_ascii_strcasecmp (str, "true") == 0 || g_ascii_strcasecmp (str, "yes") == 0)
        *out = 1;
      else if (g_ascii_strcasecmp (str, "false") == 0 || g_ascii_strcasecmp (str, "no") == 0)
        *out = 0;
      else
        return FALSE;
      return TRUE;
    }
  return FALSE;
}

typedef struct {
  const CruNode  *node;
  const CruMethod *method;
  char           *title;
  CruStream      *base;
  CruStream     **models;
  const CruLink **model_links;
  int             n_models;
  CruStream     **all;          /* base (if any) then models */
  int             n_all;
  double         *last_params;  /* to call validate once per distinct vector */
  double         *last_model_params;
  int             shape_messages[64];
  gboolean        failed;
  gboolean        crop_warned;
} MethodCtx;

static void
resolve_params (CruCompiler *c, MethodCtx *m, const char *name, double t, double *params,
                double *model_params)
{
  const CruMethod *method = m->method;

  for (int p = 0; p < method->n_params; p++)
    {
      const CruParamSpec *spec = &method->params[p];
      const CruValue *nv = cru_graph_get_param (c->graph, m->node->id, spec->name);
      double global = spec->default_value;

      resolve_value (nv, spec, name, t, &global);
      params[p] = global;
      for (int i = 0; i < m->n_models; i++)
        {
          const CruValue *lv = cru_graph_get_link_param (c->graph, m->model_links[i]->id,
                                                         spec->name);
          double v = global;
          resolve_value (lv, spec, name, t, &v);
          model_params[(gsize) i * method->n_params + p] = v;
        }
    }
}

static void
validate_params (CruCompiler *c, MethodCtx *m, const double *params, const double *model_params)
{
  gsize np = m->method->n_params, nmp = np * m->n_models;
  g_autoptr(GPtrArray) messages = NULL;

  if (m->method->validate == NULL)
    return;
  if (m->last_params && memcmp (m->last_params, params, np * sizeof (double)) == 0
      && memcmp (m->last_model_params, model_params, nmp * sizeof (double)) == 0)
    return;
  g_free (m->last_params);
  g_free (m->last_model_params);
  m->last_params = g_memdup2 (params, np * sizeof (double) + 1);
  m->last_model_params = g_memdup2 (model_params, nmp * sizeof (double) + 1);

  messages = g_ptr_array_new_with_free_func (g_free);
  m->method->validate (m->method, params, model_params, m->n_models, messages);
  for (guint i = 0; i < messages->len; i++)
    {
      _cru_compiler_problem (c, CRU_SEVERITY_ERROR, m->node->id, 0, NULL,
                             g_ptr_array_index (messages, i));
      m->failed = TRUE;
    }
}

/* Task-vector style methods crop every model to the base's shape; the interpolating ones
 * crop all inputs to the common smallest shape (METHODS.md, embedding rules). */
static gboolean
crops_to_base (const CruMethod *method, gboolean has_base)
{
  if (!has_base)
    return FALSE;
  return !(g_str_equal (method->name, "slerp") || g_str_equal (method->name, "nuslerp")
           || g_str_equal (method->name, "model_stock") || g_str_equal (method->name, "linear")
           || g_str_equal (method->name, "multislerp") || g_str_equal (method->name, "karcher"));
}

/* Gathers the inputs of one tensor, reconciling shapes; FALSE after reporting a problem. */
static gboolean
gather_inputs (CruCompiler *c, MethodCtx *m, const char *name, const CruStreamEntry *ref,
               CruExpr **exprs)
{
  const CruStream *rs = m->all[0];
  gboolean same = TRUE, ok = TRUE;

  for (int i = 0; i < m->n_all; i++)
    {
      CruStream *s = m->all[i];
      CruStreamEntry *e = g_hash_table_lookup (s->entries, name);

      if (e == NULL && ref->role == CRU_ROLE_LM_HEAD && s->tied)
        e = stream_find_role (s, CRU_ROLE_EMBEDDING, NULL);
      if (e == NULL)
        {
          problem (c, CRU_SEVERITY_ERROR, m->node->id,
                   _("%s: %s has no tensor %s, which %s has; these models do not have the "
                     "same architecture"), m->title, s->origin, name, rs->origin);
          ok = FALSE;
          continue;
        }
      exprs[i] = _cru_expr_ref (e->expr);
      if (exprs[0] && !_cru_shape_equal (e->expr, exprs[0]))
        same = FALSE;
    }
  if (!ok || same)
    return ok;

  if (cru_role_is_embedding (ref->role) && exprs[0]->ndim == 2)
    {
      gboolean to_base = crops_to_base (m->method, m->base != NULL);
      int64_t rows = exprs[0]->shape[0], cols = exprs[0]->shape[1];

      for (int i = 0; i < m->n_all; i++)
        {
          if (exprs[i]->ndim != 2)
            ok = FALSE;
          else if (to_base && (exprs[i]->shape[0] < rows || exprs[i]->shape[1] < cols))
            {
              problem (c, CRU_SEVERITY_ERROR, m->node->id,
                       _("%s: %s has a smaller vocabulary than the base (%s: %" PRId64
                         " rows, base: %" PRId64 "); %s crops every model to the "
                         "base's vocabulary, so choose the model with the smallest vocabulary "
                         "as the base"), m->title, m->all[i]->origin, name,
                       exprs[i]->shape[0], rows, m->method->name);
              return FALSE;
            }
          else if (!to_base)
            {
              rows = MIN (rows, exprs[i]->shape[0]);
              cols = MIN (cols, exprs[i]->shape[1]);
            }
        }
      if (ok)
        {
          gboolean rows_differ = FALSE;

          for (int i = 1; i < m->n_all; i++)
            rows_differ |= exprs[i]->shape[0] != exprs[0]->shape[0];
          /* Only rows are a vocabulary; different widths are different hidden sizes, which
           * the other tensors' shape errors name. */
          if (!m->crop_warned && rows_differ)
            problem (c, CRU_SEVERITY_WARNING, m->node->id,
                     to_base
                       ? _("%s: the inputs' vocabularies differ (%s); every model is cropped "
                           "to the base's %" PRId64 " rows")
                       : _("%s: the inputs' vocabularies differ (%s); all inputs are cropped "
                           "to the smallest, %" PRId64 " rows"),
                     m->title, name, rows);
          m->crop_warned = TRUE;
          for (int i = 0; i < m->n_all; i++)
            {
              CruExpr *cropped = _cru_expr_new_crop (exprs[i], rows, cols);
              _cru_expr_unref (exprs[i]);
              exprs[i] = cropped;
            }
          return TRUE;
        }
    }

  for (int i = 1; i < m->n_all; i++)
    if (!_cru_shape_equal (exprs[i], exprs[0]))
      {
        g_autofree char *a = _cru_shape_to_string (exprs[i]->ndim, exprs[i]->shape);
        g_autofree char *b = _cru_shape_to_string (exprs[0]->ndim, exprs[0]->shape);
        int *count = &m->shape_messages[MIN (i, 63)];

        if (*count < MAX_SHAPE_MESSAGES)
          {
            if (m->base)
              problem (c, CRU_SEVERITY_ERROR, m->node->id,
                       _("%s: tensor %s has shape %s but the base has %s"),
                       m->all[i]->origin, name, a, b);
            else
              problem (c, CRU_SEVERITY_ERROR, m->node->id,
                       _("%s: tensor %s has shape %s but %s has %s"),
                       m->all[i]->origin, name, a, m->all[0]->origin, b);
          }
        else if (*count == MAX_SHAPE_MESSAGES)
          problem (c, CRU_SEVERITY_ERROR, m->node->id,
                   _("%s: more tensors have shapes that differ from %s"),
                   m->all[i]->origin, m->all[0]->origin);
        (*count)++;
      }
  return FALSE;
}

static CruStatsNode *
stats_node_for (CruCompiler *c, MethodCtx *m)
{
  CruStatsNode *sn;

  for (guint i = 0; i < c->plan->stats_nodes->len; i++)
    {
      sn = g_ptr_array_index (c->plan->stats_nodes, i);
      if (sn->node == m->node->id)
        return sn;
    }
  sn = g_new0 (CruStatsNode, 1);
  sn->node = m->node->id;
  sn->method = m->method;
  sn->n_models = m->n_models;
  sn->exprs = g_ptr_array_new_with_free_func ((GDestroyNotify) _cru_expr_unref);
  g_ptr_array_add (c->plan->stats_nodes, sn);
  return sn;
}

static CruStream *
method_stream (CruCompiler *c, MethodCtx *m)
{
  const CruMethod *method = m->method;
  CruStream *ref = m->all[0];
  CruStream *s;
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  const char *head_name = NULL;
  gsize np = method->n_params;
  g_autofree double *params = g_new0 (double, np + 1);
  g_autofree double *model_params = g_new0 (double, np * m->n_models + 1);
  g_autofree CruExpr **exprs = g_new0 (CruExpr *, m->n_all);

  for (int i = 1; i < m->n_all; i++)
    if (m->all[i]->n_layers != ref->n_layers)
      {
        problem (c, CRU_SEVERITY_ERROR, m->node->id,
                 _("%s: %s has %d layers but %s has %d; use Slice nodes to take the same "
                   "number of layers from each"), m->title, m->all[i]->origin,
                 m->all[i]->n_layers, ref->origin, ref->n_layers);
        return NULL;
      }

  g_hash_table_iter_init (&iter, ref->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_ptr_array_add (names, key);
  /* A tied reference still gets a head when another input has one. */
  if (stream_find_role (ref, CRU_ROLE_LM_HEAD, NULL) == NULL)
    for (int i = 1; i < m->n_all && head_name == NULL; i++)
      stream_find_role (m->all[i], CRU_ROLE_LM_HEAD, &head_name);
  if (head_name)
    g_ptr_array_add (names, (gpointer) head_name);

  s = stream_new (m->title);
  s->config = ref->config ? cru_model_ref (ref->config) : NULL;
  s->arch = ref->arch;
  s->n_layers = ref->n_layers;

  for (guint k = 0; k < names->len; k++)
    {
      const char *name = g_ptr_array_index (names, k);
      CruStreamEntry *re = g_hash_table_lookup (ref->entries, name);
      CruStreamEntry head_entry;
      CruExpr *e;
      double t;

      if (re == NULL)  /* the head taken from another input */
        {
          CruStreamEntry *emb = stream_find_role (ref, CRU_ROLE_EMBEDDING, NULL);
          if (emb == NULL)
            {
              problem (c, CRU_SEVERITY_ERROR, m->node->id,
                       _("%s: %s has neither %s nor an embedding to stand in for it"),
                       m->title, ref->origin, name);
              m->failed = TRUE;
              continue;
            }
          head_entry = *emb;
          head_entry.role = CRU_ROLE_LM_HEAD;
          re = &head_entry;
        }
      memset (exprs, 0, sizeof (CruExpr *) * m->n_all);
      if (!gather_inputs (c, m, name, re, exprs))
        {
          for (int i = 0; i < m->n_all; i++)
            g_clear_pointer (&exprs[i], _cru_expr_unref);
          m->failed = TRUE;
          continue;
        }
      t = re->layer >= 0 ? cru_value_layer_t (re->layer, ref->n_layers) : 0.0;
      resolve_params (c, m, name, t, params, model_params);
      validate_params (c, m, params, model_params);

      if ((method->flags & CRU_METHOD_STRUCTURAL) && m->base == NULL && m->n_models == 1
          && (np == 0 || cru_method_find_param (method, "scale") < 0
              || model_params[cru_method_find_param (method, "scale")] == 1.0))
        e = _cru_expr_ref (exprs[0]);
      else
        {
          int off = m->base ? 1 : 0;

          e = _cru_expr_new_method (method, m->node->id, m->title, name, re->layer, re->role);
          e->ndim = exprs[0]->ndim;
          memcpy (e->shape, exprs[0]->shape, sizeof e->shape);
          e->numel = exprs[0]->numel;
          e->base = m->base ? _cru_expr_ref (exprs[0]) : NULL;
          e->n_models = m->n_models;
          e->models = g_new0 (CruExpr *, m->n_models);
          e->model_keys = g_new0 (int, m->n_models);
          for (int i = 0; i < m->n_models; i++)
            {
              e->models[i] = _cru_expr_ref (exprs[off + i]);
              e->model_keys[i] = i;
            }
          e->params = g_memdup2 (params, np * sizeof (double) + 1);
          e->model_params = g_memdup2 (model_params, np * m->n_models * sizeof (double) + 1);
          if (method->flags & CRU_METHOD_STATS_PASS)
            {
              e->stats = stats_node_for (c, m);
              g_ptr_array_add (e->stats->exprs, _cru_expr_ref (e));
            }
        }
      for (int i = 0; i < m->n_all; i++)
        g_clear_pointer (&exprs[i], _cru_expr_unref);
      g_hash_table_insert (s->entries, g_strdup (name), entry_new (e, re->layer, re->role));
    }

  /* A tensor that failed is left out too, but its error already says why. */
  for (int i = 1; !m->failed && i < m->n_all; i++)
    {
      guint extra = 0;
      const char *example = NULL;

      g_hash_table_iter_init (&iter, m->all[i]->entries);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (!g_hash_table_contains (s->entries, key))
          {
            extra++;
            example = key;
          }
      if (extra)
        problem (c, CRU_SEVERITY_WARNING, m->node->id,
                 g_dngettext (GETTEXT_PACKAGE,
                              "%s: %s has %u tensor that %s lacks (%s); it is left out",
                              "%s: %s has %u tensors that %s lacks (e.g. %s); they are left out",
                              extra),
                 m->title, m->all[i]->origin, extra, ref->origin, example);
    }

  s->tied = stream_find_role (s, CRU_ROLE_LM_HEAD, NULL) == NULL && ref->tied;
  if (m->failed)
    {
      _cru_stream_free (s);
      return NULL;
    }
  return s;
}

/* ---- dispatch ---- */

static CruStream *
compile_node (CruCompiler *c, const CruNode *n)
{
  g_autoptr(GPtrArray) links = cru_graph_links_to (c->graph, n->id);
  g_autoptr(GPtrArray) ins = g_ptr_array_new ();
  g_autoptr(GPtrArray) in_links = g_ptr_array_new ();
  CruStream *base = NULL;
  const CruLink *base_link = NULL;
  gboolean failed = FALSE;

  if (n->kind == CRU_NODE_MODEL)
    return model_stream (c, n);

  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *l = g_ptr_array_index (links, i);
      CruStream *s = _cru_compile_stream (c, l->from_node);

      if (s == NULL)
        failed = TRUE;
      else if (g_str_equal (l->to_port, CRU_PORT_BASE))
        {
          base = s;
          base_link = l;
        }
      else
        {
          g_ptr_array_add (ins, s);
          g_ptr_array_add (in_links, (gpointer) l);
        }
    }
  if (failed)
    return NULL;

  switch (n->kind)
    {
    case CRU_NODE_OUTPUT:
    case CRU_NODE_SLICE:
      if (ins->len == 0)
        return NULL;    /* reported by the node checks */
      if (n->kind == CRU_NODE_SLICE)
        return slice_stream (c, n, g_ptr_array_index (ins, 0));
      else
        {
          CruStream *in = g_ptr_array_index (ins, 0);
          CruStream *s = stream_new (in->origin);
          GHashTableIter iter;
          gpointer key, value;

          g_hash_table_iter_init (&iter, in->entries);
          while (g_hash_table_iter_next (&iter, &key, &value))
            {
              CruStreamEntry *e = value;
              g_hash_table_insert (s->entries, g_strdup (key),
                                   entry_new (_cru_expr_ref (e->expr), e->layer, e->role));
            }
          s->n_layers = in->n_layers;
          s->config = in->config ? cru_model_ref (in->config) : NULL;
          s->arch = in->arch;
          s->tied = in->tied;
          return s;
        }
    case CRU_NODE_STACK:
      if (ins->len == 0)
        return NULL;
      return stack_stream (c, n, (CruStream **) ins->pdata,
                           (const CruLink **) in_links->pdata, ins->len);
    case CRU_NODE_METHOD:
      {
        MethodCtx m = { 0 };
        CruStream *s;

        m.node = n;
        m.method = n->method ? cru_method_lookup (n->method) : NULL;
        if (m.method == NULL || ins->len == 0)
          return NULL;   /* reported by the node checks */
        if (base && !(m.method->flags & (CRU_METHOD_NEEDS_BASE | CRU_METHOD_BASE_OPTIONAL)))
          {
            g_autofree char *t = _cru_node_title (c->graph, n->id);
            g_autofree char *msg =
              g_strdup_printf (_("%s: %s does not use a base model; the base input is "
                                 "ignored"), t, m.method->name);
            _cru_compiler_problem (c, CRU_SEVERITY_WARNING, n->id, base_link->id,
                                   CRU_PORT_BASE, msg);
            base = NULL;
          }
        m.title = _cru_node_title (c->graph, n->id);
        m.base = base;
        m.models = (CruStream **) ins->pdata;
        m.model_links = (const CruLink **) in_links->pdata;
        m.n_models = ins->len;
        m.n_all = ins->len + (base ? 1 : 0);
        m.all = g_new0 (CruStream *, m.n_all);
        if (base)
          m.all[0] = base;
        for (guint i = 0; i < ins->len; i++)
          m.all[i + (base ? 1 : 0)] = g_ptr_array_index (ins, i);
        s = method_stream (c, &m);
        g_free (m.all);
        g_free (m.title);
        g_free (m.last_params);
        g_free (m.last_model_params);
        return s;
      }
    case CRU_NODE_MOE:
      {
        g_autofree char *t = _cru_node_title (c->graph, n->id);
        problem (c, CRU_SEVERITY_ERROR, n->id,
                 _("%s: a mixture of experts can only feed the Output node directly. Connect "
                   "it to the Output node; to merge it further, build it first and use its "
                   "folder as a Model node"), t);
        return NULL;
      }
    default:
      return NULL;
    }
}

CruStream *
_cru_compile_stream (CruCompiler *c, guint node)
{
  gpointer found;
  const CruNode *n;
  CruStream *s;

  if (g_hash_table_lookup_extended (c->streams, GUINT_TO_POINTER (node), NULL, &found))
    {
      if (found == IN_PROGRESS)
        {
          g_autofree char *t = _cru_node_title (c->graph, node);
          problem (c, CRU_SEVERITY_ERROR, node,
                   _("%s: the graph has a cycle through this node; remove one of its links"),
                   t);
          return NULL;
        }
      return found;
    }
  n = cru_graph_get_node (c->graph, node);
  if (n == NULL)
    return NULL;
  g_hash_table_insert (c->streams, GUINT_TO_POINTER (node), IN_PROGRESS);
  s = compile_node (c, n);
  g_hash_table_insert (c->streams, GUINT_TO_POINTER (node), s);
  return s;
}
