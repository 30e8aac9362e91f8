/* cru-bpe-private.h — the BPE model of a tokenizer.json (used by cru-tokenizer.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _CruBpe CruBpe;

CruBpe     *_cru_bpe_new          (JsonObject *model, const char *display_name, GError **error);
void        _cru_bpe_free         (CruBpe *bpe);
/* Appends the ids of one pre-tokenized word (UTF-8) to @ids (gint32). */
void        _cru_bpe_encode_word  (CruBpe *bpe, const char *word, gsize length, GArray *ids);
int         _cru_bpe_token_to_id  (CruBpe *bpe, const char *token);
const char *_cru_bpe_id_to_token  (CruBpe *bpe, int id);
guint       _cru_bpe_get_n_ids    (CruBpe *bpe);   /* largest id + 1 */
gboolean    _cru_bpe_has_byte_fallback (CruBpe *bpe);

G_END_DECLS
