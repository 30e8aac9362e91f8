/* cru-bpe-private.h — the BPE model of a tokenizer.json (used by cru-tokenizer.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _CruBpe CruBpe;

/* Ids at or above this are refused: the largest vocabularies have about 260,000 tokens, and
 * an id of two billion in a damaged file must not become a 16 GB table. */
#define CRU_TOKENIZER_MAX_ID (1 << 24)

/* Type-checked reads of tokenizer.json, which comes from strangers: a member or element of
 * the wrong type reads as absent (json-glib's own getters warn, or return NULL strings). */
static inline const char *
_cru_json_string (JsonObject *o, const char *name, const char *fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
           ? json_node_get_string (n) : fallback;
}

static inline gboolean
_cru_json_bool (JsonObject *o, const char *name, gboolean fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN
           ? json_node_get_boolean (n) : fallback;
}

static inline gint64
_cru_json_int (JsonObject *o, const char *name, gint64 fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64
           ? json_node_get_int (n) : fallback;
}

static inline JsonObject *
_cru_json_array_object (JsonArray *a, guint index)
{
  JsonNode *n = a && index < json_array_get_length (a) ? json_array_get_element (a, index) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static inline const char *
_cru_json_array_string (JsonArray *a, guint index)
{
  JsonNode *n = a && index < json_array_get_length (a) ? json_array_get_element (a, index) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
           ? json_node_get_string (n) : NULL;
}

static inline gint64
_cru_json_array_int (JsonArray *a, guint index, gint64 fallback)
{
  JsonNode *n = a && index < json_array_get_length (a) ? json_array_get_element (a, index) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64
           ? json_node_get_int (n) : fallback;
}

CruBpe     *_cru_bpe_new          (JsonObject *model, const char *display_name, GError **error);
void        _cru_bpe_free         (CruBpe *bpe);
/* Appends the ids of one pre-tokenized word (UTF-8) to @ids (gint32). */
void        _cru_bpe_encode_word  (CruBpe *bpe, const char *word, gsize length, GArray *ids);
int         _cru_bpe_token_to_id  (CruBpe *bpe, const char *token);
const char *_cru_bpe_id_to_token  (CruBpe *bpe, int id);
guint       _cru_bpe_get_n_ids    (CruBpe *bpe);   /* largest id + 1 */
gboolean    _cru_bpe_has_byte_fallback (CruBpe *bpe);

G_END_DECLS
