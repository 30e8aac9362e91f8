/* cru-moe.c — writing a mixture of experts: validation, config.json, tensor layout and
 * copying (the router rows come from cru-moe-gates.c, the cost from cru-moe-cost.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "cru-error.h"
#include "cru-moe-private.h"
#include "cru-rng.h"

void
_cru_moe_out_tensor_free (CruMoeOutTensor *t)
{
  g_free (t->out_name);
  g_free (t->src_name);
  g_free (t);
}

static int
compare_out (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(CruMoeOutTensor **) a)->out_name, (*(CruMoeOutTensor **) b)->out_name);
}

static CruMoeOutTensor *
add_out (GPtrArray *list, char *out_name, int model, const char *src, const CruTensorInfo *info)
{
  CruMoeOutTensor *t = g_new0 (CruMoeOutTensor, 1);
  t->out_name = out_name;
  t->model = model;
  t->src_name = g_strdup (src);
  t->layer = -1;
  if (info)
    {
      t->ndim = info->ndim;
      for (int d = 0; d < info->ndim && d < 2; d++)
        t->shape[d] = info->shape[d];
    }
  g_ptr_array_add (list, t);
  return t;
}

/* "model.layers.3.mlp.gate_proj.weight" → the role suffix after ".mlp." or NULL */
static const char *
mlp_suffix (const char *name)
{
  const char *m = strstr (name, ".mlp.");
  return m && g_str_has_prefix (name, "model.layers.") ? m + 5 : NULL;
}

static char *
replace_mlp (const char *name, const char *with)
{
  const char *m = strstr (name, ".mlp.");
  g_autofree char *head = g_strndup (name, m - name);
  return g_strconcat (head, with, NULL);
}

gboolean
_cru_moe_validate (const CruMoeConfig *c, CruModel *base, GPtrArray *models, GError **error)
{
  const char *bt = cru_model_get_model_type (base);
  guint n_exp = c->experts->len;

  if (c->experts_per_token < 1 || (guint) c->experts_per_token > n_exp)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("experts_per_token is %d but must be between 1 and the number of experts "
                     "(%u)"), c->experts_per_token, n_exp);
      return FALSE;
    }
  if (c->gate_mode != CRU_GATE_RANDOM && c->gate_mode != CRU_GATE_UNIFORM_RANDOM)
    {
      gboolean all_same = n_exp > 1;
      for (guint i = 0; i < n_exp; i++)
        {
          CruMoeExpert *e = c->experts->pdata[i], *e0 = c->experts->pdata[0];
          if (!e->positive_prompts || !e->positive_prompts[0])
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                           _("Expert %u (%s) has no positive_prompts; this gate mode routes by "
                             "them"), i + 1, e->source_model);
              return FALSE;
            }
          if (i > 0 && !(g_strv_equal ((const char *const *) e->positive_prompts,
                                       (const char *const *) e0->positive_prompts)
                         && ((!e->negative_prompts && !e0->negative_prompts)
                             || (e->negative_prompts && e0->negative_prompts
                                 && g_strv_equal ((const char *const *) e->negative_prompts,
                                                  (const char *const *) e0->negative_prompts)))))
            all_same = FALSE;
        }
      if (all_same)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                       _("All experts have the same prompts, so the router could not tell them "
                         "apart; give each expert prompts of what it should handle"));
          return FALSE;
        }
    }
  if (c->output == CRU_MOE_OUTPUT_QWEN2_MOE && c->shared_experts->len != 1)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("The Qwen2-MoE output needs exactly one shared expert (shared_experts)"));
      return FALSE;
    }
  if (c->output != CRU_MOE_OUTPUT_QWEN2_MOE && c->shared_experts->len > 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                   _("Shared experts need the qwen2_moe architecture"));
      return FALSE;
    }
  {
    static const char *const mix[] = { "llama", "mistral", NULL };
    static const char *const qw2[] = { "llama", "mistral", "qwen2", NULL };
    static const char *const qw3[] = { "qwen3", NULL };
    const char *const *ok = c->output == CRU_MOE_OUTPUT_MIXTRAL ? mix
                            : c->output == CRU_MOE_OUTPUT_QWEN2_MOE ? qw2 : qw3;
    for (guint i = 0; i < models->len; i++)
      {
        CruModel *m = models->pdata[i];
        const char *t = cru_model_get_model_type (m);
        if (!t || !g_strv_contains (ok, t) || g_strcmp0 (t, bt) != 0)
          {
            g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                         _("%s is a “%s” model; this MoE output needs every model to be of the "
                           "base's type (%s), one of: %s"), cru_model_get_name (m),
                         t ? t : "?", bt ? bt : "?",
                         c->output == CRU_MOE_OUTPUT_MIXTRAL ? "llama, mistral"
                         : c->output == CRU_MOE_OUTPUT_QWEN2_MOE ? "llama, mistral, qwen2"
                                                                 : "qwen3");
            return FALSE;
          }
      }
  }
  return TRUE;
}

/* Which tensors the output has, and where each comes from. */
gboolean
_cru_moe_plan_tensors (const CruMoeConfig *c, GPtrArray *models, GPtrArray *out, GError **error)
{
  CruModel *base = models->pdata[0];
  guint n_exp = c->experts->len;
  int L = cru_model_get_n_layers (base);
  int64_t H = cru_model_get_hidden_size (base);
  gboolean mixtral = c->output == CRU_MOE_OUTPUT_MIXTRAL;

  for (guint i = 0; i < cru_model_get_n_tensors (base); i++)
    {
      const CruModelTensor *t = cru_model_get_tensor (base, i);
      const char *name = t->info->name;
      const char *suffix = mlp_suffix (name);

      if (!suffix)
        {
          add_out (out, g_strdup (name), 0, name, t->info);
          continue;
        }
      for (guint e = 0; e < n_exp + c->shared_experts->len; e++)
        {
          CruModel *m = models->pdata[1 + e];
          const CruModelTensor *src = cru_model_lookup (m, name);
          gboolean shared = e >= n_exp;
          char *out_name;
          CruMoeOutTensor *o;

          if (!src)
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                           _("%s: tensor %s is missing"), cru_model_get_name (m), name);
              return FALSE;
            }
          if (src->info->ndim != t->info->ndim || src->info->numel != t->info->numel
              || memcmp (src->info->shape, t->info->shape, t->info->ndim * sizeof (int64_t)))
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                           _("%s: tensor %s has a different shape than in the base model"),
                           cru_model_get_name (m), name);
              return FALSE;
            }
          if (shared)
            {
              g_autofree char *with = g_strconcat (".mlp.shared_expert.", suffix, NULL);
              out_name = replace_mlp (name, with);
            }
          else if (mixtral)
            {
              const char *w = g_str_has_prefix (suffix, "gate_proj") ? "w1"
                              : g_str_has_prefix (suffix, "down_proj") ? "w2"
                              : g_str_has_prefix (suffix, "up_proj") ? "w3" : NULL;
              g_autofree char *with = NULL;
              if (!w)
                {
                  g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                               _("%s: MLP tensor %s has no Mixtral equivalent"),
                               cru_model_get_name (base), name);
                  return FALSE;
                }
              with = g_strdup_printf (".block_sparse_moe.experts.%u.%s%s", e, w,
                                      strchr (suffix, '.'));
              out_name = replace_mlp (name, with);
            }
          else
            {
              g_autofree char *with = g_strdup_printf (".mlp.experts.%u.%s", e, suffix);
              out_name = replace_mlp (name, with);
            }
          o = add_out (out, out_name, 1 + (int) e, name, src->info);
          o->residual = g_str_has_prefix (suffix, "down_proj");
        }
    }

  for (int l = 0; l < L; l++)
    {
      CruMoeOutTensor *o = add_out (out, mixtral
                                ? g_strdup_printf ("model.layers.%d.block_sparse_moe.gate.weight", l)
                                : g_strdup_printf ("model.layers.%d.mlp.gate.weight", l),
                              -1, NULL, NULL);
      o->layer = l, o->ndim = 2, o->shape[0] = n_exp, o->shape[1] = H;
      if (c->output == CRU_MOE_OUTPUT_QWEN2_MOE)
        {
          o = add_out (out, g_strdup_printf ("model.layers.%d.mlp.shared_expert_gate.weight", l),
                       -1, NULL, NULL);
          o->layer = l, o->shared_router = TRUE, o->ndim = 2, o->shape[0] = 1, o->shape[1] = H;
        }
    }

  /* Qwen2-MoE always has q/k/v biases: zeros when the base (Llama, Mistral) has none */
  if (c->output == CRU_MOE_OUTPUT_QWEN2_MOE)
    {
      JsonObject *cfg = cru_model_get_config (base);
      int64_t nh = json_object_get_int_member_with_default (cfg, "num_attention_heads", 1);
      int64_t nkv = json_object_get_int_member_with_default (cfg, "num_key_value_heads", nh);
      int64_t hd = json_object_get_int_member_with_default (cfg, "head_dim", H / nh);
      for (int l = 0; l < L; l++)
        for (int k = 0; k < 3; k++)
          {
            g_autofree char *n = g_strdup_printf ("model.layers.%d.self_attn.%c_proj.bias", l,
                                                  "qkv"[k]);
            if (!cru_model_lookup (base, n))
              {
                CruMoeOutTensor *o = add_out (out, g_strdup (n), 0, NULL, NULL);
                o->zeros = TRUE, o->ndim = 1, o->shape[0] = (k == 0 ? nh : nkv) * hd;
              }
          }
    }
  g_ptr_array_sort (out, compare_out);
  return TRUE;
}

/* The base's config.json turned into the MoE's. */
static JsonObject *
make_config (const CruMoeConfig *c, CruModel *base, CruDType dtype)
{
  JsonObject *src = cru_model_get_config (base);
  g_autoptr (JsonNode) copy = json_node_copy (json_node_init_object (json_node_alloc (), src));
  JsonObject *o = json_object_ref (json_node_get_object (copy));
  JsonArray *arch = json_array_new ();
  int E = (int) c->experts->len;
  int64_t inter = json_object_get_int_member_with_default (src, "intermediate_size", 0);

  json_object_set_string_member (o, "torch_dtype", cru_dtype_to_torch_string (dtype));
  json_object_set_null_member (o, "sliding_window");
  json_object_set_int_member (o, "num_experts_per_tok", c->experts_per_token);
  switch (c->output)
    {
    case CRU_MOE_OUTPUT_MIXTRAL:
      json_array_add_string_element (arch, "MixtralForCausalLM");
      json_object_set_string_member (o, "model_type", "mixtral");
      json_object_set_int_member (o, "num_local_experts", E);
      json_object_set_double_member (o, "router_aux_loss_coef", 0.001);
      json_object_set_boolean_member (o, "output_router_logits", FALSE);
      break;
    case CRU_MOE_OUTPUT_QWEN2_MOE:
      json_array_add_string_element (arch, "Qwen2MoeForCausalLM");
      json_object_set_string_member (o, "model_type", "qwen2_moe");
      json_object_set_int_member (o, "num_experts", E);
      json_object_set_int_member (o, "decoder_sparse_step", 1);
      json_object_set_boolean_member (o, "norm_topk_prob", TRUE);
      json_object_set_boolean_member (o, "use_sliding_window", FALSE);
      json_object_set_int_member (o, "shared_expert_intermediate_size", inter);
      json_object_set_int_member (o, "moe_intermediate_size", inter);
      json_object_set_array_member (o, "mlp_only_layers", json_array_new ());
      break;
    case CRU_MOE_OUTPUT_QWEN3_MOE:
      json_array_add_string_element (arch, "Qwen3MoeForCausalLM");
      json_object_set_string_member (o, "model_type", "qwen3_moe");
      json_object_set_int_member (o, "num_experts", E);
      json_object_set_int_member (o, "decoder_sparse_step", 1);
      json_object_set_boolean_member (o, "norm_topk_prob", TRUE);
      json_object_set_int_member (o, "moe_intermediate_size", inter);
      json_object_set_array_member (o, "mlp_only_layers", json_array_new ());
      break;
    }
  json_object_set_array_member (o, "architectures", arch);
  return o;
}

/* ---- writing --------------------------------------------------------------------------- */

static gboolean
write_json (const char *dir, const char *name, JsonObject *o, GError **error)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), o);
  g_autofree char *path = g_build_filename (dir, name, NULL);

  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  json_generator_set_root (gen, node);
  return json_generator_to_file (gen, path, error);
}

static gboolean
copy_side_files (CruModel *base, const char *dir, GError **error)
{
  g_auto (GStrv) files = cru_model_get_tokenizer_files (base);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_auto (GStrv) all = NULL;

  g_strv_builder_addv (b, (const char **) files);
  g_strv_builder_add (b, "generation_config.json");
  all = g_strv_builder_end (b);
  for (guint i = 0; all[i]; i++)
    {
      g_autofree char *src = cru_model_get_file (base, all[i]);
      g_autofree char *dst = g_build_filename (dir, all[i], NULL);
      g_autoptr (GFile) fs = NULL, fd = NULL;
      if (!src)
        continue;
      fs = g_file_new_for_path (src);
      fd = g_file_new_for_path (dst);
      if (!g_file_copy (fs, fd, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error))
        {
          g_prefix_error (error, _("Cannot copy %s of %s: "), all[i], cru_model_get_name (base));
          return FALSE;
        }
    }
  return TRUE;
}

static char *
model_card (const CruMoeConfig *c, GPtrArray *paths)
{
  static const char *const modes[] = { "hidden", "hidden_avg", "cheap_embed", "random",
                                       "uniform_random" };
  GString *s = g_string_new ("# Mixture of experts built with Crucible\n\n");

  g_string_append_printf (s, "- base model: `%s`\n- gate_mode: `%s`\n- experts_per_token: %d\n",
                          (char *) paths->pdata[0], modes[c->gate_mode], c->experts_per_token);
  for (guint e = 0; e < c->experts->len; e++)
    {
      CruMoeExpert *x = c->experts->pdata[e];
      g_string_append_printf (s, "- expert %u: `%s`", e, (char *) paths->pdata[1 + e]);
      for (guint i = 0; x->positive_prompts && x->positive_prompts[i]; i++)
        {
          g_autofree char *p = g_strescape (x->positive_prompts[i], NULL);
          g_string_append_printf (s, "%s“%.60s”", i ? ", " : " — prompts: ", p);
        }
      g_string_append (s, "\n");
    }
  return g_string_free (s, FALSE);
}


/* Elements [offset, offset + n) of output tensor @t into @buf (n ≤ CRU_MOE_PIECE_ELEMENTS); @noise
 * holds 2 × CRU_MOE_PIECE_ELEMENTS floats. */
static gboolean
fill_piece (const CruMoeConfig *c, GPtrArray *models, const CruMoeOutTensor *t, const float *gates,
            const float *shared_gates, guint64 offset, guint64 n, float *buf, float *noise,
            GError **error)
{
  const CruMoeExpert *x = NULL;
  guint n_exp = c->experts->len;

  if (t->zeros)
    {
      memset (buf, 0, n * sizeof (float));
      return TRUE;
    }
  if (t->model < 0)
    {
      gsize H = (gsize) t->shape[1];
      const float *rows = t->shared_router ? shared_gates + (gsize) t->layer * H
                                           : gates + (gsize) t->layer * n_exp * H;
      memcpy (buf, rows + offset, n * sizeof (float));
      return TRUE;
    }
  {
    CruModel *m = models->pdata[t->model];
    const CruModelTensor *src = cru_model_lookup (m, t->src_name);
    if (!cru_model_read_f32 (m, src, offset, n, buf, error))
      return FALSE;
  }
  if (t->model >= 1)
    x = (guint) t->model <= n_exp ? c->experts->pdata[t->model - 1]
                                  : c->shared_experts->pdata[t->model - 1 - n_exp];
  if (x && x->has_noise_scale && x->noise_scale != 0)
    {
      /* Element i draws the uniforms 2i and 2i + 1 of the tensor's stream (Box–Muller), so
       * pieces give the same numbers as one pass over the whole tensor. */
      CruRng rng;
      cru_rng_init (&rng, c->seed, t->out_name, t->model);
      cru_rng_uniform (&rng, 2 * offset, 2 * n, noise);
      for (guint64 i = 0; i < n; i++)
        buf[i] += (float) (x->noise_scale * sqrt (-2.0 * log (1.0 - noise[2 * i]))
                           * cos (2 * G_PI * noise[2 * i + 1]));
    }
  if (x && t->residual && x->has_residual_scale)
    for (guint64 i = 0; i < n; i++)
      buf[i] = (float) (buf[i] * x->residual_scale);
  return TRUE;
}

gboolean
_cru_moe_is_noisy (const CruMoeConfig *c, const CruMoeOutTensor *t)
{
  guint n_exp = c->experts->len;
  const CruMoeExpert *x;

  if (t->model < 1 || t->zeros)
    return FALSE;
  x = (guint) t->model <= n_exp ? c->experts->pdata[t->model - 1]
                                : c->shared_experts->pdata[t->model - 1 - n_exp];
  return x->has_noise_scale && x->noise_scale != 0;
}

static void
warn_degenerate (const CruMoeConfig *c, const float *gates, int L, gsize H, GPtrArray *warnings)
{
  int E = (int) c->experts->len;
  GString *layers = g_string_new (NULL);
  double worst = 0;
  int n_bad = 0;
  char *message;

  if (E < 2 || !warnings)
    {
      g_string_free (layers, TRUE);
      return;
    }
  for (int l = 0; l < L; l++)
    {
      double cond = cru_moe_condition_number (gates + (gsize) l * E * H, E, (int) H);
      if (cond > 5.0)
        {
          g_string_append_printf (layers, "%s%d", n_bad ? ", " : "", l);
          worst = MAX (worst, cond);
          n_bad++;
        }
    }
  if (n_bad == 0)
    {
      g_string_free (layers, TRUE);
      return;
    }
  if (worst >= 1e12 && n_bad == L)
    /* singular: two experts got the same router row */
    message = g_strdup (_("All layers have degenerate routing parameters (some experts' router "
                          "rows are identical): the experts' prompts are too similar, and some "
                          "experts will be underused"));
  else if (worst >= 1e12)
    message = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                            /* TRANSLATORS: %s lists layer numbers: "Layers 0,
                                             * 2 have…" */
                                            "Layer %s has degenerate routing parameters (some "
                                            "experts' router rows are identical): the experts' "
                                            "prompts are too similar, and some experts will be "
                                            "underused",
                                            "Layers %s have degenerate routing parameters (some "
                                            "experts' router rows are identical): the experts' "
                                            "prompts are too similar, and some experts will be "
                                            "underused", n_bad),
                               layers->str);
  else if (n_bad == L)
    message = g_strdup_printf (_("All layers have degenerate routing parameters (gate condition "
                                 "number up to %.3g, above 5): the experts' prompts may be too "
                                 "similar, and some experts will be underused"), worst);
  else
    message = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                            /* TRANSLATORS: the first %s lists layer numbers:
                                             * "Layers 0, 2 have…" */
                                            "Layer %s has degenerate routing parameters (gate "
                                            "condition number up to %.3g, above 5): the experts' "
                                            "prompts may be too similar, and some experts will "
                                            "be underused",
                                            "Layers %s have degenerate routing parameters (gate "
                                            "condition number up to %.3g, above 5): the experts' "
                                            "prompts may be too similar, and some experts will "
                                            "be underused", n_bad),
                               layers->str, worst);
  g_ptr_array_add (warnings, message);
  g_string_free (layers, TRUE);
}

char *
cru_moe_expert_count_warning (guint n_experts)
{
  if (n_experts == 0 || (n_experts & (n_experts - 1)) == 0)
    return NULL;
  return g_strdup_printf (_("The model has %u experts, which is not a power of two; llama.cpp "
                            "cannot load it"), n_experts);
}

static const char *
expert_ref (const CruMoeConfig *c, guint i)
{
  if (i == 0)
    return c->base_model;
  if (i <= c->experts->len)
    return ((CruMoeExpert *) c->experts->pdata[i - 1])->source_model;
  return ((CruMoeExpert *) c->shared_experts->pdata[i - 1 - c->experts->len])->source_model;
}

/* Opens the base, the experts and the shared experts, in that order. */
static gboolean
open_models (const CruMoeConfig *c, GPtrArray *models, GPtrArray *paths, GError **error)
{
  for (guint i = 0; i < 1 + c->experts->len + c->shared_experts->len; i++)
    {
      char *path = cru_moe_resolve_model (c, expert_ref (c, i), error);
      CruModel *m;
      if (!path)
        return FALSE;
      g_ptr_array_add (paths, path);
      if (!(m = cru_model_open (path, error)))
        return FALSE;
      g_ptr_array_add (models, m);
    }
  return TRUE;
}

CruDType
_cru_moe_output_dtype (const CruMoeConfig *c, CruModel *base)
{
  CruDType dtype = c->dtype != CRU_DTYPE_INVALID ? c->dtype : cru_model_get_dtype (base);

  if (dtype != CRU_DTYPE_F32 && dtype != CRU_DTYPE_F16 && dtype != CRU_DTYPE_BF16)
    dtype = CRU_DTYPE_F32;
  return dtype;
}

gboolean
_cru_moe_needs_forward (const CruMoeConfig *c)
{
  return c->gate_mode == CRU_GATE_HIDDEN || c->gate_mode == CRU_GATE_HIDDEN_AVG;
}

/* Bytes of the base's weights that one forward pass over the prompts reads. */
guint64
_cru_moe_forward_read_bytes (CruModel *base)
{
  guint64 n = 0;

  for (guint i = 0; i < cru_model_get_n_tensors (base); i++)
    {
      const CruModelTensor *t = cru_model_get_tensor (base, i);
      if (t->layer >= 0 || g_str_equal (t->info->name, "model.norm.weight"))
        n += t->info->numel * cru_dtype_size (t->info->dtype);
    }
  return n;
}

/* ---- building -------------------------------------------------------------------------- */

typedef struct {
  CruMoeStatusFunc func;
  gpointer         data;
  CruMoeStatus     st;
  guint64          pass_read;   /* bytes one forward pass reads */
  guint64          read_before; /* by the passes before this one */
  int              pass, n_passes;
} Status;

static void
report (Status *s)
{
  if (s->func)
    s->func (&s->st, s->data);
}

static void
gate_layer (int layer, int n_layers, gpointer data)
{
  Status *s = data;
  double f = (double) layer / MAX (n_layers, 1);

  s->st.fraction = (s->pass + f) / MAX (s->n_passes, 1);
  s->st.bytes_read = s->read_before + (guint64) (f * s->pass_read);
  report (s);
}

gboolean
cru_moe_build_into (const CruMoeConfig *c, const char *dir, CruMoeStatusFunc status,
                    gpointer user_data, GPtrArray *warnings, GCancellable *cancellable,
                    GError **error)
{
  g_autoptr (GPtrArray) models = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_model_unref);
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) plan = g_ptr_array_new_with_free_func ((GDestroyNotify) _cru_moe_out_tensor_free);
  g_autoptr (CruLayout) layout = NULL;
  g_autoptr (CruWriter) writer = NULL;
  g_autoptr (JsonObject) config = NULL;
  g_autofree float *gates = NULL, *shared_gates = NULL, *buf = NULL, *noise = NULL;
  g_autofree char *count_warning = NULL;
  Status s = { status, user_data };
  guint64 max_numel = 0;
  gboolean any_noise = FALSE;
  CruModel *base;
  CruDType dtype;
  int L;
  gsize H;

  g_return_val_if_fail (c != NULL && dir != NULL, FALSE);
  if (!open_models (c, models, paths, error))
    return FALSE;
  base = models->pdata[0];
  if (!_cru_moe_validate (c, base, models, error) || !_cru_moe_plan_tensors (c, models, plan, error))
    return FALSE;
  dtype = _cru_moe_output_dtype (c, base);
  L = cru_model_get_n_layers (base);
  H = (gsize) cru_model_get_hidden_size (base);

  s.st.stage = CRU_MOE_STAGE_GATES;
  s.st.tensors_total = plan->len;
  s.n_passes = c->output == CRU_MOE_OUTPUT_QWEN2_MOE ? 2 : 1;
  s.pass_read = _cru_moe_needs_forward (c) ? _cru_moe_forward_read_bytes (base) : 0;
  report (&s);
  if (!(gates = _cru_moe_compute_gates_full (c, base, c->experts, gate_layer, &s, cancellable,
                                             error)))
    return FALSE;
  s.pass = 1;
  s.read_before = s.pass_read;
  if (c->output == CRU_MOE_OUTPUT_QWEN2_MOE
      && !(shared_gates = _cru_moe_compute_gates_full (c, base, c->shared_experts, gate_layer,
                                                       &s, cancellable, error)))
    return FALSE;
  s.st.fraction = 1;
  s.st.bytes_read = s.read_before + (s.n_passes == 2 ? s.pass_read : 0);
  report (&s);
  warn_degenerate (c, gates, L, H, warnings);
  if (warnings && (count_warning = cru_moe_expert_count_warning (c->experts->len)))
    g_ptr_array_add (warnings, g_steal_pointer (&count_warning));

  layout = cru_layout_new (c->shard_size ? c->shard_size : CRU_DEFAULT_SHARD_SIZE);
  for (guint i = 0; i < plan->len; i++)
    {
      CruMoeOutTensor *t = plan->pdata[i];
      guint64 n = 1;
      for (int d = 0; d < t->ndim; d++)
        n *= (guint64) t->shape[d];
      cru_layout_add (layout, t->out_name, dtype, t->ndim, t->shape);
      max_numel = MAX (max_numel, n);
      any_noise |= _cru_moe_is_noisy (c, t);
    }
  if (!cru_layout_finish (layout, error))
    return FALSE;
  if (!(writer = cru_writer_open (layout, dir, error)))
    return FALSE;

  s.st.stage = CRU_MOE_STAGE_TENSORS;
  s.st.fraction = 0;
  report (&s);
  buf = g_new (float, MAX (MIN (max_numel, (guint64) CRU_MOE_PIECE_ELEMENTS), 1));
  if (any_noise)
    noise = g_new (float, 2 * (gsize) MIN (max_numel, (guint64) CRU_MOE_PIECE_ELEMENTS));
  for (guint i = 0; i < plan->len; i++)
    {
      CruMoeOutTensor *t = plan->pdata[i];
      guint64 n = cru_layout_get_tensor (layout, i)->numel;

      s.st.tensor = t->out_name;
      for (guint64 off = 0; off < n; off += CRU_MOE_PIECE_ELEMENTS)
        {
          guint64 m = MIN (n - off, (guint64) CRU_MOE_PIECE_ELEMENTS);

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return FALSE;
          if (!fill_piece (c, models, t, gates, shared_gates, off, m, buf, noise, error)
              || !cru_writer_write_f32 (writer, i, off, buf, m, error))
            return FALSE;
          if (t->model >= 0 && t->src_name)
            {
              const CruModelTensor *src = cru_model_lookup (models->pdata[t->model],
                                                            t->src_name);
              s.st.bytes_read += m * cru_dtype_size (src->info->dtype);
            }
          s.st.bytes_written += m * cru_dtype_size (dtype);
          if (m < n)
            report (&s);
        }
      s.st.tensors_done = i + 1;
      s.st.fraction = (double) (i + 1) / MAX (plan->len, 1);
      report (&s);
    }
  s.st.tensor = NULL;
  if (!cru_writer_close (writer, error))
    return FALSE;

  s.st.stage = CRU_MOE_STAGE_FILES;
  s.st.fraction = 0;
  report (&s);
  config = make_config (c, base, dtype);
  return write_json (dir, "config.json", config, error) && copy_side_files (base, dir, error);
}

typedef struct {
  CruMoeProgress func;
  gpointer       data;
} LegacyProgress;

static void
legacy_status (const CruMoeStatus *st, gpointer data)
{
  LegacyProgress *lp = data;

  if (st->stage == CRU_MOE_STAGE_GATES && st->fraction == 0)
    lp->func (_("Computing router gates"), 0.0, lp->data);
  else if (st->stage == CRU_MOE_STAGE_TENSORS && st->tensors_done > 0 && st->tensor)
    lp->func (_("Writing tensors"), st->fraction, lp->data);
}

gboolean
cru_moe_build (const CruMoeConfig *c, const char *out_dir, gboolean overwrite,
               CruMoeProgress progress, gpointer user_data, GPtrArray *warnings,
               GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) models = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_model_unref);
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (CruOutputDir) od = NULL;
  g_autofree char *card = NULL, *card_path = NULL;
  LegacyProgress lp = { progress, user_data };

  g_return_val_if_fail (c != NULL && out_dir != NULL, FALSE);
  /* Check the inputs before the output folder is touched. */
  if (!open_models (c, models, paths, error) || !_cru_moe_validate (c, models->pdata[0], models, error))
    return FALSE;
  if (!(od = cru_output_dir_begin (out_dir, overwrite, error)))
    return FALSE;
  if (!cru_moe_build_into (c, cru_output_dir_get_tmp_path (od), progress ? legacy_status : NULL,
                           &lp, warnings, cancellable, error))
    return FALSE;
  card = model_card (c, paths);
  card_path = g_build_filename (cru_output_dir_get_tmp_path (od), "README.md", NULL);
  if (!g_file_set_contents (card_path, card, -1, error))
    return FALSE;
  return cru_output_dir_commit (od, error);
}
