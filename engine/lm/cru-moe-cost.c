/* cru-moe-cost.c — what building a mixture of experts costs, from the inputs' headers:
 * tensors, bytes read and written, the router's arithmetic, and the memory the build holds
 * at most (measured against cru_moe_build's peak RSS: see tests/cli/test-cli-moe.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gstdio.h>
#include <string.h>

#include "cru-moe-private.h"

/* Bytes tokenizer.json costs in memory per byte of the file (vocabulary and merges in hash
 * tables: measured about 3× on Llama and Qwen tokenizers). */
#define TOKENIZER_MEMORY_FACTOR 4
/* The prompts' forward pass groups sequences up to this many tokens (cru-forward.c). */
#define FORWARD_GROUP_TOKENS 1024
/* CruWriter's aligned buffer (CRU_IO_BUFFER_SIZE). */
#define WRITER_BUFFER_BYTES (4u << 20)
/* A forward-pass thread's stack, glibc arena and bookkeeping. */
#define THREAD_OVERHEAD_BYTES (1u << 20)

static void
moe_tensor_free (CruMoeTensor *t)
{
  g_free (t->name);
  g_free (t);
}

void
cru_moe_cost_clear (CruMoeCost *cost)
{
  g_clear_pointer (&cost->tensors, g_ptr_array_unref);
  memset (cost, 0, sizeof *cost);
}

/* Upper bound on the tokens of @experts' prompts (BOS + at most one token per byte). */
static guint64
prompt_tokens (GPtrArray *experts, guint *n_prompts, guint64 *longest)
{
  guint64 n = 0;

  for (guint e = 0; e < experts->len; e++)
    {
      CruMoeExpert *x = experts->pdata[e];
      for (int neg = 0; neg < 2; neg++)
        {
          GStrv list = neg ? x->negative_prompts : x->positive_prompts;
          for (guint i = 0; list && list[i]; i++)
            {
              guint64 len = strlen (list[i]) + 1;
              n += len;
              *longest = MAX (*longest, len);
              (*n_prompts)++;
            }
        }
    }
  return n;
}

/* Memory of one gate computation over @experts besides the gate rows themselves. */
static guint64
gate_pass_bytes (const CruMoeConfig *c, CruModel *base, GPtrArray *experts, guint n_threads,
                 double *flops)
{
  JsonObject *cfg = cru_model_get_config (base);
  int L = cru_model_get_n_layers (base);
  guint64 H = (guint64) MAX (cru_model_get_hidden_size (base), 1);
  gint64 nh = cfg ? json_object_get_int_member_with_default (cfg, "num_attention_heads", 1) : 1;
  gint64 nkv = cfg ? json_object_get_int_member_with_default (cfg, "num_key_value_heads", nh) : nh;
  gint64 hd = cfg ? json_object_get_int_member_with_default (cfg, "head_dim", H / MAX (nh, 1))
                  : (gint64) H;
  gint64 inter = cfg ? json_object_get_int_member_with_default (cfg, "intermediate_size", 0) : 0;
  guint64 qd = (guint64) (nh * hd), kd = (guint64) (nkv * hd), layer_f32 = 0, layer_params = 0;
  guint64 longest = 0, tokens, group, scratch, tok_bytes = 0;
  guint n_prompts = 0, active;
  g_autofree char *tok_path = cru_model_get_file (base, "tokenizer.json");
  GStatBuf st;

  tokens = prompt_tokens (experts, &n_prompts, &longest);
  if (tok_path && g_stat (tok_path, &st) == 0)
    tok_bytes = (guint64) st.st_size * TOKENIZER_MEMORY_FACTOR;
  if (!_cru_moe_needs_forward (c))
    {
      *flops = 0;
      if (c->gate_mode == CRU_GATE_CHEAP_EMBED)   /* per-prompt sums and an embedding row */
        return tok_bytes + (guint64) MAX (n_prompts, 1) * L * H * 4 + 2 * L * H * 4;
      return 2 * (guint64) L * experts->len * H * 4;   /* the uniforms of random gates */
    }

  /* The pass holds one layer's weights in f32 at a time. */
  {
    g_autofree guint64 *per_layer = g_new0 (guint64, MAX (L, 1));
    for (guint i = 0; i < cru_model_get_n_tensors (base); i++)
      {
        const CruModelTensor *t = cru_model_get_tensor (base, i);
        if (t->layer >= 0 && t->layer < L)
          per_layer[t->layer] += t->info->numel;
      }
    for (int l = 0; l < L; l++)
      {
        layer_f32 = MAX (layer_f32, per_layer[l] * 4);
        layer_params = MAX (layer_params, per_layer[l]);
      }
  }
  group = MIN (tokens, (guint64) FORWARD_GROUP_TOKENS);
  active = MIN (MAX (n_threads, 1u), (guint) ((tokens + FORWARD_GROUP_TOKENS - 1)
                                               / FORWARD_GROUP_TOKENS));
  /* cru-forward-kernels.c's scratch slots for a group of tokens */
  scratch = 4 * (2 * group * H + group * MAX (qd, (guint64) inter) + group * MAX (kd, (guint64) inter)
                 + group * MAX (kd, H) + group * qd + longest * longest);
  *flops = 2.0 * (double) tokens * (double) layer_params * L;
  return layer_f32 + tokens * H * 4                    /* the residual streams */
         + (guint64) MAX (n_prompts, 1) * L * H * 4    /* per-prompt states */
         + 2 * longest * (guint64) hd * 4              /* rotary tables */
         + (guint64) MAX (active, 1) * (scratch + THREAD_OVERHEAD_BYTES) + tok_bytes;
}

gboolean
cru_moe_cost (const CruMoeConfig *c, GPtrArray *models, guint n_threads, CruMoeCost *cost,
              GError **error)
{
  g_autoptr (GPtrArray) plan = g_ptr_array_new_with_free_func ((GDestroyNotify) _cru_moe_out_tensor_free);
  CruModel *base = models->pdata[0];
  int L = cru_model_get_n_layers (base);
  guint64 H = (guint64) MAX (cru_model_get_hidden_size (base), 1);
  guint64 max_numel = 0, max_noisy = 0, gates, gate_pass, shared_pass = 0, writing, piece;
  double flops = 0, shared_flops = 0;

  memset (cost, 0, sizeof *cost);
  if (n_threads == 0)
    n_threads = c->n_threads ? c->n_threads : g_get_num_processors ();
  if (!_cru_moe_validate (c, base, models, error) || !_cru_moe_plan_tensors (c, models, plan, error))
    return FALSE;

  cost->tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) moe_tensor_free);
  for (guint i = 0; i < plan->len; i++)
    {
      CruMoeOutTensor *t = plan->pdata[i];
      CruMoeTensor *x = g_new0 (CruMoeTensor, 1);

      x->name = g_strdup (t->out_name);
      x->ndim = t->ndim;
      x->numel = 1;
      for (int d = 0; d < t->ndim; d++)
        {
          x->shape[d] = t->shape[d];
          x->numel *= (guint64) t->shape[d];
        }
      if (t->model >= 0 && t->src_name)
        {
          const CruModelTensor *src = cru_model_lookup (models->pdata[t->model], t->src_name);
          x->read_bytes = src->info->numel * cru_dtype_size (src->info->dtype);
        }
      if (_cru_moe_is_noisy (c, t))
        max_noisy = MAX (max_noisy, x->numel);
      max_numel = MAX (max_numel, x->numel);
      cost->output_numel += x->numel;
      cost->read_bytes += x->read_bytes;
      g_ptr_array_add (cost->tensors, x);
    }

  gate_pass = gate_pass_bytes (c, base, c->experts, n_threads, &flops);
  if (c->output == CRU_MOE_OUTPUT_QWEN2_MOE)
    shared_pass = gate_pass_bytes (c, base, c->shared_experts, n_threads, &shared_flops);
  if (_cru_moe_needs_forward (c))
    cost->gate_read_bytes = _cru_moe_forward_read_bytes (base) * (shared_pass ? 2 : 1);
  cost->read_bytes += cost->gate_read_bytes;
  cost->gate_flops = flops + shared_flops;

  /* The router rows live through the whole build; then either a gate pass or the writing is
   * the rest: a piece in f32, its noise's uniforms, and the part of the writer's buffer that
   * a piece fills in the output dtype (pages never touched cost nothing). */
  gates = (guint64) L * (c->experts->len + (shared_pass ? 1 : 0)) * H * 4;
  piece = MIN (max_numel, (guint64) CRU_MOE_PIECE_ELEMENTS);
  writing = piece * 4 + 2 * MIN (max_noisy, (guint64) CRU_MOE_PIECE_ELEMENTS) * 4
            + MIN (piece * cru_dtype_size (_cru_moe_output_dtype (c, base)) + 4096,
                   (guint64) WRITER_BUFFER_BYTES);
  cost->peak_bytes = gates + MAX (MAX (gate_pass, shared_pass), writing);
  return TRUE;
}
