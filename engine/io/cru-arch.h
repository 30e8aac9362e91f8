/* cru-arch.h — architecture families and tensor-name → (layer, role) mapping
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  CRU_ARCH_GENERIC = 0,   /* unknown: layers found by the ".N." index in names */
  CRU_ARCH_LLAMA,
  CRU_ARCH_MISTRAL,
  CRU_ARCH_QWEN2,
  CRU_ARCH_QWEN3,
  CRU_ARCH_GEMMA,
  CRU_ARCH_GEMMA2,
  CRU_ARCH_GEMMA3,
  CRU_ARCH_PHI3,
  CRU_ARCH_MIXTRAL,
  CRU_ARCH_QWEN2_MOE,
  CRU_ARCH_QWEN3_MOE,
  CRU_ARCH_N
} CruArch;

typedef enum {
  CRU_ROLE_OTHER = 0,
  CRU_ROLE_EMBEDDING,   /* embed_tokens */
  CRU_ROLE_LM_HEAD,
  CRU_ROLE_ATTENTION,
  CRU_ROLE_MLP,
  CRU_ROLE_NORM,
  CRU_ROLE_ROUTER,
  CRU_ROLE_EXPERT,
  CRU_ROLE_N
} CruTensorRole;

/* From config.json's model_type (and architectures[0] as a fallback). */
CruArch     cru_arch_from_model_type (const char *model_type, const char *architecture);
const char *cru_arch_get_name        (CruArch arch);       /* "llama", "qwen2", … */
const char *cru_arch_get_label       (CruArch arch);       /* "Llama", "Qwen2", … */
const char *cru_role_get_name        (CruTensorRole role); /* "attention", … */
/* Families whose tensors can be merged with each other (llama and mistral can). */
gboolean    cru_arch_compatible      (CruArch a, CruArch b);
/* Layer index (-1 outside the transformer layers) and role of a tensor name. */
void        cru_arch_classify        (CruArch arch, const char *tensor_name,
                                      int *layer, CruTensorRole *role);
/* Renames a tensor of layer @from to layer @to ("model.layers.3.x" → "model.layers.7.x").
 * Returns a new string. */
char       *cru_arch_rename_layer    (const char *tensor_name, int from, int to);
/* TRUE for embed_tokens / lm_head (the embedding crop rules apply). */
gboolean    cru_role_is_embedding    (CruTensorRole role);

G_END_DECLS
