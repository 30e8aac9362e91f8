/* cru-forward.c — configuration, weight streaming and threading of the CPU forward pass
 * (the per-layer math is in cru-forward-kernels.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <cblas.h>
#include <inttypes.h>
#include <string.h>

#include "cru-error.h"
#include "cru-forward-private.h"

/* Tokens per work item: large enough for efficient sgemm, small enough to spread work. */
#define GROUP_TOKENS 1024

struct _CruForward {
  CruModel        *model;
  CruLmConfig      cfg;
  guint            n_threads;
  gboolean         keep;
  CruLayerWeights **kept;      /* [n_layers] when kept */
  float           *final_norm; /* [H] */
  float           *lm_head;    /* [V × H], loaded on first use */
};

/* ---- config --------------------------------------------------------------------------- */

static int
get_int (JsonObject *c, const char *name, int dflt)
{
  JsonNode *n = json_object_has_member (c, name) ? json_object_get_member (c, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? (int) json_node_get_int (n) : dflt;
}

static double
get_double (JsonObject *c, const char *name, double dflt)
{
  JsonNode *n = json_object_has_member (c, name) ? json_object_get_member (c, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : dflt;
}

static gboolean
get_bool (JsonObject *c, const char *name, gboolean dflt)
{
  JsonNode *n = json_object_has_member (c, name) ? json_object_get_member (c, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_boolean (n) : dflt;
}

gboolean
cru_lm_config_parse (JsonObject *c, const char *name, CruLmConfig *cfg, GError **error)
{
  const char *type = json_object_get_string_member_with_default (c, "model_type", "");
  static const char *const known[] = { "llama", "mistral", "qwen2", "qwen3", "mixtral",
                                       "qwen2_moe", "qwen3_moe", NULL };
  JsonNode *rs;

  memset (cfg, 0, sizeof *cfg);
  if (!g_strv_contains (known, type))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("%s: the forward pass supports Llama, Mistral, Qwen2, Qwen3 and their "
                     "mixtures (Mixtral, Qwen2-MoE, Qwen3-MoE), not “%s”"), name, type);
      return FALSE;
    }
  cfg->hidden_size = get_int (c, "hidden_size", 0);
  cfg->intermediate_size = get_int (c, "intermediate_size", 0);
  cfg->n_layers = get_int (c, "num_hidden_layers", 0);
  cfg->n_heads = get_int (c, "num_attention_heads", 0);
  cfg->n_kv_heads = get_int (c, "num_key_value_heads", cfg->n_heads);
  cfg->head_dim = get_int (c, "head_dim", cfg->n_heads ? cfg->hidden_size / cfg->n_heads : 0);
  cfg->vocab_size = get_int (c, "vocab_size", 0);
  cfg->rms_norm_eps = get_double (c, "rms_norm_eps", 1e-6);
  cfg->rope_theta = get_double (c, "rope_theta", 10000.0);
  cfg->tie_word_embeddings = get_bool (c, "tie_word_embeddings", FALSE);
  cfg->bos_token_id = get_int (c, "bos_token_id", -1);
  cfg->qkv_bias = g_str_equal (type, "qwen2") || g_str_equal (type, "qwen2_moe")
                  || get_bool (c, "attention_bias", FALSE);
  cfg->qk_norm = g_str_has_prefix (type, "qwen3");
  if (cfg->hidden_size <= 0 || cfg->n_layers <= 0 || cfg->n_heads <= 0 || cfg->n_kv_heads <= 0
      || cfg->head_dim <= 0 || cfg->head_dim % 2 || cfg->n_heads % cfg->n_kv_heads
      || cfg->vocab_size <= 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: config.json lacks valid hidden_size, num_hidden_layers, "
                     "num_attention_heads, num_key_value_heads, head_dim or vocab_size"), name);
      return FALSE;
    }

  rs = json_object_has_member (c, "rope_scaling") ? json_object_get_member (c, "rope_scaling")
                                                  : NULL;
  if (rs && JSON_NODE_HOLDS_OBJECT (rs))
    {
      JsonObject *r = json_node_get_object (rs);
      const char *kind = json_object_get_string_member_with_default (r, "rope_type",
                           json_object_get_string_member_with_default (r, "type", "default"));
      cfg->rope_factor = get_double (r, "factor", 1.0);
      if (g_str_equal (kind, "llama3"))
        {
          cfg->rope_kind = CRU_ROPE_LLAMA3;
          cfg->rope_low_freq_factor = get_double (r, "low_freq_factor", 1.0);
          cfg->rope_high_freq_factor = get_double (r, "high_freq_factor", 4.0);
          cfg->rope_original_max_position = get_int (r, "original_max_position_embeddings",
                                                     8192);
        }
      else if (g_str_equal (kind, "linear"))
        cfg->rope_kind = CRU_ROPE_LINEAR;
      else if (!g_str_equal (kind, "default"))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                       _("%s: RoPE scaling “%s” is not supported (default, linear and llama3 "
                         "are)"), name, kind);
          return FALSE;
        }
    }

  if (g_str_equal (type, "mixtral"))
    {
      cfg->mlp_kind = CRU_MLP_MIXTRAL;
      cfg->n_experts = get_int (c, "num_local_experts", 0);
      cfg->n_experts_per_token = get_int (c, "num_experts_per_tok", 2);
      cfg->norm_topk_prob = TRUE;
    }
  else if (g_str_has_suffix (type, "_moe"))
    {
      cfg->mlp_kind = CRU_MLP_QWEN_MOE;
      cfg->n_experts = get_int (c, "num_experts", 0);
      cfg->n_experts_per_token = get_int (c, "num_experts_per_tok", 2);
      cfg->norm_topk_prob = get_bool (c, "norm_topk_prob", g_str_equal (type, "qwen3_moe"));
      if (get_int (c, "decoder_sparse_step", 1) != 1
          || (json_object_has_member (c, "mlp_only_layers")
              && json_array_get_length (json_object_get_array_member (c, "mlp_only_layers")) > 0))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                       _("%s: MoE models with dense layers in between are not supported"), name);
          return FALSE;
        }
    }
  if (cfg->mlp_kind != CRU_MLP_DENSE
      && (cfg->n_experts <= 0 || cfg->n_experts_per_token <= 0))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: config.json gives no valid number of experts"), name);
      return FALSE;
    }
  return TRUE;
}

/* ---- weights -------------------------------------------------------------------------- */

static float *
load (CruForward *fw, GPtrArray *owner, const char *name, gboolean optional, guint64 numel,
      GError **error)
{
  const CruModelTensor *t = cru_model_lookup (fw->model, name);
  float *buf;

  if (!t)
    {
      if (!optional)
        g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                     _("%s: tensor %s is missing"), cru_model_get_name (fw->model), name);
      return NULL;
    }
  if (numel && t->info->numel != numel)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor %s has %" PRIu64 " elements but the config implies %"
                     PRIu64), cru_model_get_name (fw->model), name, t->info->numel,
                   numel);
      return NULL;
    }
  buf = g_malloc (t->info->numel * sizeof (float));
  if (!cru_model_read_f32 (fw->model, t, 0, t->info->numel, buf, error))
    {
      g_free (buf);
      return NULL;
    }
  if (owner)
    g_ptr_array_add (owner, buf);
  return buf;
}

static void
layer_free (CruLayerWeights *w)
{
  if (!w)
    return;
  g_ptr_array_unref (w->buffers);
  g_free (w->e_gate), g_free (w->e_up), g_free (w->e_down);
  g_free (w);
}

static guint64
rows_of (CruForward *fw, const char *name)
{
  const CruModelTensor *t = cru_model_lookup (fw->model, name);
  return t && t->info->ndim == 2 ? (guint64) t->info->shape[0] : 0;
}

static CruLayerWeights *
layer_load (CruForward *fw, int l, GError **error)
{
  const CruLmConfig *c = &fw->cfg;
  CruLayerWeights *w = g_new0 (CruLayerWeights, 1);
  GPtrArray *b = w->buffers = g_ptr_array_new_with_free_func (g_free);
  guint64 H = c->hidden_size, qd = (guint64) c->n_heads * c->head_dim;
  guint64 kd = (guint64) c->n_kv_heads * c->head_dim;
  g_autofree char *p = g_strdup_printf ("model.layers.%d.", l);
  GError *e = NULL;
#define LOAD(dst, suffix, opt, n)                                     \
  G_STMT_START {                                                      \
    g_autofree char *nm_ = g_strconcat (p, suffix, NULL);             \
    dst = load (fw, b, nm_, opt, n, &e);                              \
    if (e) goto fail;                                                 \
  } G_STMT_END

  LOAD (w->attn_norm, "input_layernorm.weight", FALSE, H);
  LOAD (w->mlp_norm, "post_attention_layernorm.weight", FALSE, H);
  LOAD (w->wq, "self_attn.q_proj.weight", FALSE, qd * H);
  LOAD (w->wk, "self_attn.k_proj.weight", FALSE, kd * H);
  LOAD (w->wv, "self_attn.v_proj.weight", FALSE, kd * H);
  LOAD (w->wo, "self_attn.o_proj.weight", FALSE, H * qd);
  LOAD (w->bq, "self_attn.q_proj.bias", !c->qkv_bias, qd);
  LOAD (w->bk, "self_attn.k_proj.bias", !c->qkv_bias, kd);
  LOAD (w->bv, "self_attn.v_proj.bias", !c->qkv_bias, kd);
  if (c->qk_norm)
    {
      LOAD (w->q_norm, "self_attn.q_norm.weight", FALSE, c->head_dim);
      LOAD (w->k_norm, "self_attn.k_norm.weight", FALSE, c->head_dim);
    }
  if (c->mlp_kind == CRU_MLP_DENSE)
    {
      guint64 inter = c->intermediate_size;
      LOAD (w->w_gate, "mlp.gate_proj.weight", FALSE, inter * H);
      LOAD (w->w_up, "mlp.up_proj.weight", FALSE, inter * H);
      LOAD (w->w_down, "mlp.down_proj.weight", FALSE, H * inter);
    }
  else
    {
      gboolean mixtral = c->mlp_kind == CRU_MLP_MIXTRAL;
      g_autofree char *fused = g_strconcat (p, "mlp.experts.gate_up_proj", NULL);
      const CruModelTensor *gate_up = cru_model_lookup (fw->model, fused);
      /* transformers 5 (and mergekit-moe with it) writes experts fused: mlp.gate.weight,
       * mlp.experts.gate_up_proj [E, 2I, H] (gate rows first), mlp.experts.down_proj [E, H, I] */
      const char *pre = mixtral && !gate_up ? "block_sparse_moe." : "mlp.";
      g_autofree char *first = g_strdup_printf ("%s%s%s", p, pre,
                                                mixtral ? "experts.0.w1.weight"
                                                        : "experts.0.gate_proj.weight");
      guint64 inter = gate_up && gate_up->info->ndim == 3 ? (guint64) gate_up->info->shape[1] / 2
                                                          : rows_of (fw, first);
      g_autofree char *router = g_strconcat (pre, "gate.weight", NULL);

      w->expert_inter = (int) inter;
      w->e_gate = g_new0 (float *, c->n_experts);
      w->e_up = g_new0 (float *, c->n_experts);
      w->e_down = g_new0 (float *, c->n_experts);
      LOAD (w->router, router, FALSE, (guint64) c->n_experts * H);
      if (gate_up)
        {
          float *gu, *down;
          LOAD (gu, "mlp.experts.gate_up_proj", FALSE, (guint64) c->n_experts * 2 * inter * H);
          LOAD (down, "mlp.experts.down_proj", FALSE, (guint64) c->n_experts * H * inter);
          for (int x = 0; x < c->n_experts; x++)
            {
              w->e_gate[x] = gu + (gsize) x * 2 * inter * H;
              w->e_up[x] = w->e_gate[x] + inter * H;
              w->e_down[x] = down + (gsize) x * H * inter;
            }
        }
      for (int x = 0; !gate_up && x < c->n_experts; x++)
        {
          g_autofree char *g = g_strdup_printf ("%sexperts.%d.%s", pre, x,
                                                mixtral ? "w1.weight" : "gate_proj.weight");
          g_autofree char *u = g_strdup_printf ("%sexperts.%d.%s", pre, x,
                                                mixtral ? "w3.weight" : "up_proj.weight");
          g_autofree char *d = g_strdup_printf ("%sexperts.%d.%s", pre, x,
                                                mixtral ? "w2.weight" : "down_proj.weight");
          LOAD (w->e_gate[x], g, FALSE, inter * H);
          LOAD (w->e_up[x], u, FALSE, inter * H);
          LOAD (w->e_down[x], d, FALSE, H * inter);
        }
      if (!mixtral)
        {
          g_autofree char *sg = g_strconcat (p, "mlp.shared_expert.gate_proj.weight", NULL);
          guint64 SI = rows_of (fw, sg);
          if (SI)
            {
              w->shared_inter = (int) SI;
              LOAD (w->sh_gate, "mlp.shared_expert.gate_proj.weight", FALSE, SI * H);
              LOAD (w->sh_up, "mlp.shared_expert.up_proj.weight", FALSE, SI * H);
              LOAD (w->sh_down, "mlp.shared_expert.down_proj.weight", FALSE, H * SI);
              LOAD (w->sh_router, "mlp.shared_expert_gate.weight", FALSE, H);
            }
        }
    }
  return w;
#undef LOAD

fail:
  g_propagate_error (error, e);
  layer_free (w);
  return NULL;
}

CruForward *
cru_forward_new (CruModel *model, GError **error)
{
  JsonObject *config = cru_model_get_config (model);
  CruForward *fw;
  CruLmConfig cfg;

  if (!config)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                   _("%s has no config.json, which the forward pass needs"),
                   cru_model_get_name (model));
      return NULL;
    }
  if (!cru_lm_config_parse (config, cru_model_get_name (model), &cfg, error))
    return NULL;
  if (!cru_model_lookup (model, "model.embed_tokens.weight"))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                   _("%s: tensor model.embed_tokens.weight is missing"),
                   cru_model_get_name (model));
      return NULL;
    }
  fw = g_new0 (CruForward, 1);
  fw->model = cru_model_ref (model);
  fw->cfg = cfg;
  fw->n_threads = MAX (1, g_get_num_processors ());
  return fw;
}

void
cru_forward_free (CruForward *fw)
{
  if (!fw)
    return;
  for (int l = 0; fw->kept && l < fw->cfg.n_layers; l++)
    layer_free (fw->kept[l]);
  g_free (fw->kept);
  g_free (fw->final_norm);
  g_free (fw->lm_head);
  cru_model_unref (fw->model);
  g_free (fw);
}

const CruLmConfig *
cru_forward_get_config (CruForward *fw)
{
  return &fw->cfg;
}

CruModel *
cru_forward_get_model (CruForward *fw)
{
  return fw->model;
}

void
cru_forward_set_threads (CruForward *fw, guint n_threads)
{
  fw->n_threads = MAX (1, n_threads);
}

void
cru_forward_set_keep_weights (CruForward *fw, gboolean keep)
{
  fw->keep = keep;
}

guint64
cru_forward_get_f32_bytes (CruForward *fw)
{
  guint64 n = cru_model_get_n_params (fw->model);
  return n * 4;
}

/* ---- running -------------------------------------------------------------------------- */

typedef struct {
  CruForward            *fw;
  const CruForwardHooks *hooks;
  const guint           *lengths;
  const gsize           *offsets;  /* first token row of each sequence */
  const guint           *group_first; /* [n_groups + 1] sequence index */
  guint                  n_groups;
  float                 *x;
  const CruLayerWeights *w;
  int                    layer;    /* -1: final norm + logits */
  const float           *cos_t, *sin_t;
  gint                   next;
  GMutex                 lock;
  guint64               *counts;   /* [n_experts] of this layer */
} Job;

static void
run_group (Job *job, guint g, CruScratch *scratch, guint64 *counts)
{
  CruForward *fw = job->fw;
  const CruForwardHooks *hk = job->hooks;
  guint s0 = job->group_first[g], s1 = job->group_first[g + 1];
  gsize H = fw->cfg.hidden_size;
  float *x = job->x + job->offsets[s0] * H;

  if (job->layer >= 0)
    {
      if (hk && hk->layer_input)
        for (guint s = s0; s < s1; s++)
          hk->layer_input (hk->user_data, s, job->layer, job->x + job->offsets[s] * H,
                           job->lengths[s]);
      _cru_layer_forward (&fw->cfg, job->w, x, s1 - s0, job->lengths + s0, job->cos_t,
                          job->sin_t, counts, scratch);
      return;
    }
  for (guint s = s0; s < s1; s++)
    {
      guint n = job->lengths[s];
      float *xs = job->x + job->offsets[s] * H;
      float *h = _cru_scratch_get (scratch, 7, (gsize) n * H);
      if (hk && hk->last_hidden)
        hk->last_hidden (hk->user_data, s, xs, n);
      _cru_rmsnorm (xs, fw->final_norm, h, n, H, fw->cfg.rms_norm_eps);
      if (hk && hk->final_norm)
        hk->final_norm (hk->user_data, s, h, n);
      if (hk && hk->logits)
        {
          gsize V = fw->cfg.vocab_size;
          float *lg = _cru_scratch_get (scratch, 2, (gsize) n * V);
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, (int) V, (int) H, 1.f, h,
                       (int) H, fw->lm_head, (int) H, 0.f, lg, (int) V);
          hk->logits (hk->user_data, s, lg, n);
        }
    }
}

static gpointer
worker (gpointer data)
{
  Job *job = data;
  CruScratch scratch = { 0 };
  int E = job->fw->cfg.n_experts;
  guint64 *counts = E > 0 ? g_new0 (guint64, E) : NULL;

  for (;;)
    {
      guint g = (guint) g_atomic_int_add (&job->next, 1);
      if (g >= job->n_groups)
        break;
      run_group (job, g, &scratch, counts);
    }
  if (counts && job->counts)
    {
      g_mutex_lock (&job->lock);
      for (int e = 0; e < E; e++)
        job->counts[e] += counts[e];
      g_mutex_unlock (&job->lock);
    }
  g_free (counts);
  _cru_scratch_clear (&scratch);
  return NULL;
}

static void
run_parallel (Job *job, guint n_threads)
{
  guint n = MIN (n_threads, job->n_groups);
  GThread **threads = g_new0 (GThread *, n);

  job->next = 0;
  for (guint i = 1; i < n; i++)
    threads[i] = g_thread_new ("cru-forward", worker, job);
  worker (job);
  for (guint i = 1; i < n; i++)
    g_thread_join (threads[i]);
  g_free (threads);
}

gboolean
cru_forward_run (CruForward *fw, guint n_seqs, const gint32 *const *tokens,
                 const guint *lengths, const CruForwardHooks *hooks,
                 GCancellable *cancellable, GError **error)
{
  const CruLmConfig *c = &fw->cfg;
  gsize H = c->hidden_size, total = 0;
  guint max_len = 0;
  g_autofree gsize *offsets = g_new (gsize, n_seqs + 1);
  g_autoptr (GArray) group_first = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree float *x = NULL, *cos_t = NULL, *sin_t = NULL;
  const CruModelTensor *embed = cru_model_lookup (fw->model, "model.embed_tokens.weight");
  Job job = { 0 };
  gsize in_group = 0;

  openblas_set_num_threads (1);
  for (guint s = 0; s < n_seqs; s++)
    {
      offsets[s] = total;
      if (in_group > 0 && in_group + lengths[s] > GROUP_TOKENS)
        in_group = 0;
      if (in_group == 0)
        g_array_append_val (group_first, s);
      in_group += lengths[s];
      total += lengths[s];
      max_len = MAX (max_len, lengths[s]);
    }
  offsets[n_seqs] = total;
  g_array_append_val (group_first, n_seqs);
  if (total == 0)
    return TRUE;

  x = g_malloc (total * H * sizeof (float));
  for (guint s = 0; s < n_seqs; s++)
    for (guint t = 0; t < lengths[s]; t++)
      {
        gint32 id = tokens[s][t];
        if (id < 0 || (guint64) id * H >= embed->info->numel)
          {
            g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                         _("%s: token id %d is outside the vocabulary (%d tokens)"),
                         cru_model_get_name (fw->model), id, c->vocab_size);
            return FALSE;
          }
        if (!cru_model_read_f32 (fw->model, embed, (guint64) id * H, H,
                                 x + (offsets[s] + t) * H, error))
          return FALSE;
      }
  cos_t = g_new (float, (gsize) max_len * c->head_dim);
  sin_t = g_new (float, (gsize) max_len * c->head_dim);
  _cru_rope_tables (c, max_len, cos_t, sin_t);

  job.fw = fw;
  job.hooks = hooks;
  job.lengths = lengths;
  job.offsets = offsets;
  job.group_first = (const guint *) group_first->data;
  job.n_groups = group_first->len - 1;
  job.x = x;
  job.cos_t = cos_t;
  job.sin_t = sin_t;
  g_mutex_init (&job.lock);

  if (fw->keep && !fw->kept)
    fw->kept = g_new0 (CruLayerWeights *, c->n_layers);
  for (int l = 0; l < c->n_layers; l++)
    {
      CruLayerWeights *w = fw->kept ? fw->kept[l] : NULL;
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        goto fail;
      if (!w && !(w = layer_load (fw, l, error)))
        goto fail;
      job.w = w;
      job.layer = l;
      job.counts = hooks && hooks->routing_counts ? hooks->routing_counts
                                                    + (gsize) l * MAX (c->n_experts, 0) : NULL;
      run_parallel (&job, fw->n_threads);
      if (fw->kept)
        fw->kept[l] = w;
      else
        layer_free (w);
    }

  if (!fw->final_norm && !(fw->final_norm = load (fw, NULL, "model.norm.weight", FALSE, H,
                                                  error)))
    goto fail;
  if (hooks && hooks->logits && !fw->lm_head)
    {
      const char *head = c->tie_word_embeddings || !cru_model_lookup (fw->model, "lm_head.weight")
                           ? "model.embed_tokens.weight" : "lm_head.weight";
      if (!(fw->lm_head = load (fw, NULL, head, FALSE, (guint64) c->vocab_size * H, error)))
        goto fail;
    }
  job.layer = -1;
  job.counts = NULL;
  run_parallel (&job, fw->n_threads);
  if (!fw->keep)
    g_clear_pointer (&fw->lm_head, g_free);
  g_mutex_clear (&job.lock);
  return TRUE;

fail:
  g_mutex_clear (&job.lock);
  return FALSE;
}
