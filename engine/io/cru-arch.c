/* cru-arch.c — architecture families and tensor-name → (layer, role) mapping
 *
 * All supported families use the Hugging Face naming scheme ("model.layers.N.…"), so one
 * classifier serves them all; family-specific names (Mixtral's block_sparse_moe, Qwen-MoE's
 * shared_expert, Gemma 3's vision tower) are recognised wherever they appear.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-arch.h"

#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  const char *label;
  const char *architecture;   /* transformers class */
} arch_table[CRU_ARCH_N] = {
  [CRU_ARCH_GENERIC]   = { "generic", "Generic", NULL },
  [CRU_ARCH_LLAMA]     = { "llama", "Llama", "LlamaForCausalLM" },
  [CRU_ARCH_MISTRAL]   = { "mistral", "Mistral", "MistralForCausalLM" },
  [CRU_ARCH_QWEN2]     = { "qwen2", "Qwen2", "Qwen2ForCausalLM" },
  [CRU_ARCH_QWEN3]     = { "qwen3", "Qwen3", "Qwen3ForCausalLM" },
  [CRU_ARCH_GEMMA]     = { "gemma", "Gemma", "GemmaForCausalLM" },
  [CRU_ARCH_GEMMA2]    = { "gemma2", "Gemma 2", "Gemma2ForCausalLM" },
  [CRU_ARCH_GEMMA3]    = { "gemma3", "Gemma 3", "Gemma3ForCausalLM" },
  [CRU_ARCH_PHI3]      = { "phi3", "Phi-3", "Phi3ForCausalLM" },
  [CRU_ARCH_MIXTRAL]   = { "mixtral", "Mixtral", "MixtralForCausalLM" },
  [CRU_ARCH_QWEN2_MOE] = { "qwen2_moe", "Qwen2-MoE", "Qwen2MoeForCausalLM" },
  [CRU_ARCH_QWEN3_MOE] = { "qwen3_moe", "Qwen3-MoE", "Qwen3MoeForCausalLM" },
};

static const struct {
  const char *model_type;
  CruArch     arch;
} aliases[] = {
  { "gemma3_text", CRU_ARCH_GEMMA3 },
  { "phi3small", CRU_ARCH_PHI3 },
};

CruArch
cru_arch_from_model_type (const char *model_type, const char *architecture)
{
  if (model_type)
    {
      for (guint i = 1; i < CRU_ARCH_N; i++)
        if (g_ascii_strcasecmp (model_type, arch_table[i].name) == 0)
          return (CruArch) i;
      for (guint i = 0; i < G_N_ELEMENTS (aliases); i++)
        if (g_ascii_strcasecmp (model_type, aliases[i].model_type) == 0)
          return aliases[i].arch;
    }
  if (architecture)
    {
      for (guint i = 1; i < CRU_ARCH_N; i++)
        if (strcmp (architecture, arch_table[i].architecture) == 0)
          return (CruArch) i;
      if (strcmp (architecture, "Gemma3ForConditionalGeneration") == 0)
        return CRU_ARCH_GEMMA3;
    }
  return CRU_ARCH_GENERIC;
}

const char *
cru_arch_get_name (CruArch arch)
{
  return (guint) arch < CRU_ARCH_N ? arch_table[arch].name : "generic";
}

const char *
cru_arch_get_label (CruArch arch)
{
  return (guint) arch < CRU_ARCH_N ? arch_table[arch].label : "Generic";
}

const char *
cru_role_get_name (CruTensorRole role)
{
  static const char *names[CRU_ROLE_N] = {
    "other", "embedding", "lm_head", "attention", "mlp", "norm", "router", "expert",
  };

  return (guint) role < CRU_ROLE_N ? names[role] : "other";
}

gboolean
cru_arch_compatible (CruArch a, CruArch b)
{
  if (a == b)
    return TRUE;
  /* Mistral is Llama with sliding-window attention: same tensors. */
  return (a == CRU_ARCH_LLAMA || a == CRU_ARCH_MISTRAL)
         && (b == CRU_ARCH_LLAMA || b == CRU_ARCH_MISTRAL);
}

gboolean
cru_role_is_embedding (CruTensorRole role)
{
  return role == CRU_ROLE_EMBEDDING || role == CRU_ROLE_LM_HEAD;
}

/* Finds the first ".N." (or a leading "N.") in @name: the layer index. Sets *start and *end to
 * the digits. */
static int
find_layer_index (const char *name, const char **start, const char **end)
{
  for (const char *p = name; *p; p++)
    {
      if (!g_ascii_isdigit (*p) || (p != name && p[-1] != '.'))
        continue;
      const char *q = p;
      while (g_ascii_isdigit (*q))
        q++;
      if (*q != '.' || q - p > 9)
        {
          p = q - 1;
          continue;
        }
      if (start)
        *start = p;
      if (end)
        *end = q;
      return atoi (p);
    }
  return -1;
}

static gboolean
has_part (const char *name, const char *part)
{
  return strstr (name, part) != NULL;
}

static gboolean
ends_with_part (const char *name, const char *part)
{
  /* A whole dotted component: "lm_head.weight", "x.lm_head" */
  const char *p = strstr (name, part);
  return p != NULL && (p == name || p[-1] == '.') && (p[strlen (part)] == '\0' || p[strlen (part)] == '.');
}

void
cru_arch_classify (CruArch arch, const char *name, int *layer, CruTensorRole *role)
{
  CruTensorRole r = CRU_ROLE_OTHER;
  int l;

  /* Gemma 3's vision tower has layers of its own: they are not text layers. */
  if (has_part (name, "vision_tower") || has_part (name, "multi_modal_projector")
      || has_part (name, "vision_model"))
    {
      if (layer)
        *layer = -1;
      if (role)
        *role = CRU_ROLE_OTHER;
      return;
    }

  l = find_layer_index (name, NULL, NULL);

  if (has_part (name, "embed_tokens") || has_part (name, "wte.") || has_part (name, "word_embeddings")
      || has_part (name, "tok_embeddings"))
    r = CRU_ROLE_EMBEDDING;
  else if (ends_with_part (name, "lm_head") || (l < 0 && ends_with_part (name, "output")))
    r = CRU_ROLE_LM_HEAD;
  else if (has_part (name, "norm") || has_part (name, ".ln_") || has_part (name, "ln_f."))
    r = CRU_ROLE_NORM;
  else if (has_part (name, ".experts.") || has_part (name, ".experts_"))
    r = CRU_ROLE_EXPERT;
  else if (has_part (name, "block_sparse_moe.gate.") || has_part (name, "shared_expert_gate")
           || has_part (name, ".router.")
           || (has_part (name, "mlp.gate.") && !has_part (name, "gate_proj")))
    r = CRU_ROLE_ROUTER;
  else if (has_part (name, "attn") || has_part (name, "attention"))
    r = CRU_ROLE_ATTENTION;
  else if (has_part (name, "mlp") || has_part (name, "feed_forward") || has_part (name, "ffn")
           || has_part (name, "shared_expert"))
    r = CRU_ROLE_MLP;

  if (layer)
    *layer = l;
  if (role)
    *role = r;
}

char *
cru_arch_rename_layer (const char *tensor_name, int from, int to)
{
  const char *start = NULL, *end = NULL;
  int l = find_layer_index (tensor_name, &start, &end);

  if (l != from || l < 0)
    return g_strdup (tensor_name);
  return g_strdup_printf ("%.*s%d%s", (int) (start - tensor_name), tensor_name, to, end);
}
