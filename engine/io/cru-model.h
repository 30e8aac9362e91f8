/* cru-model.h — a model on disk: a Hugging Face folder or a single .safetensors file.
 * Opening reads headers and config only (milliseconds even for 70B).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include "cru-arch.h"
#include "cru-safetensors.h"

G_BEGIN_DECLS

typedef struct {
  const CruTensorInfo *info;    /* owned by the shard */
  CruSafetensors      *shard;
  guint                shard_index;
  int                  layer;   /* -1 outside layers */
  CruTensorRole        role;
} CruModelTensor;

typedef struct _CruModel CruModel;

CruModel   *cru_model_open   (const char *path, GError **error);
CruModel   *cru_model_ref    (CruModel *model);
void        cru_model_unref  (CruModel *model);

const char *cru_model_get_path        (CruModel *model);  /* as given, made absolute */
const char *cru_model_get_name        (CruModel *model);  /* folder or file basename */
JsonObject *cru_model_get_config      (CruModel *model);  /* NULL for a bare file */
CruArch     cru_model_get_arch        (CruModel *model);
const char *cru_model_get_model_type  (CruModel *model);  /* config's model_type or NULL */
int         cru_model_get_n_layers    (CruModel *model);  /* num_hidden_layers, or from names */
guint64     cru_model_get_n_params    (CruModel *model);
guint64     cru_model_get_total_bytes (CruModel *model);  /* tensor data bytes */
/* config's torch_dtype / dtype, else the most common tensor dtype. */
CruDType    cru_model_get_dtype       (CruModel *model);
gboolean    cru_model_get_tie_word_embeddings (CruModel *model);
int64_t     cru_model_get_vocab_size  (CruModel *model);  /* config or embed rows; -1 */
int64_t     cru_model_get_hidden_size (CruModel *model);  /* -1 when unknown */

guint                 cru_model_get_n_tensors (CruModel *model);
const CruModelTensor *cru_model_get_tensor    (CruModel *model, guint index); /* name order */
const CruModelTensor *cru_model_lookup        (CruModel *model, const char *name);

guint           cru_model_get_n_shards  (CruModel *model);
CruSafetensors *cru_model_get_shard     (CruModel *model, guint index);

/* Path of a side file in the folder ("tokenizer.json", "generation_config.json", …) or NULL
 * when absent. */
char       *cru_model_get_file (CruModel *model, const char *filename);
/* Names of the tokenizer-related files present (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, tokenizer.model, vocab.json, merges.txt, added_tokens.json). */
GStrv       cru_model_get_tokenizer_files (CruModel *model);

/* Reads elements [elem_offset, +n) of a tensor as f32 (see cru_safetensors_read_f32). */
gboolean    cru_model_read_f32 (CruModel *model, const CruModelTensor *t,
                                guint64 elem_offset, guint64 n, float *dst, GError **error);

/* Parses a model.safetensors.index.json without opening any shard: sets @weight_map (tensor
 * name → shard file name) and returns the shard file names in the order they first appear
 * (exported for the fuzzer and tests). */
GStrv       cru_model_index_parse (const char *display_name, const char *data, gssize length,
                                   GHashTable **weight_map, GError **error);

/* Parses a config.json (exported for the fuzzer and tests). */
JsonObject *cru_config_parse (const char *display_name, const char *data, gssize length,
                              GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruModel, cru_model_unref)

G_END_DECLS
