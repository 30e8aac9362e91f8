/* cru-tokenizer.h — Hugging Face tokenizer.json (BPE: byte-level and SentencePiece style)
 *
 * Supported: added/special tokens (split first: leftmost-longest, lstrip/rstrip/single_word),
 * normalizers Sequence/Prepend/Replace/NFC/NFKC/NFD/NFKD/Lowercase/Strip, pre-tokenizers
 * Sequence/ByteLevel/Split/Metaspace/Digits, the BPE model (both merges formats,
 * byte_fallback, fuse_unk, ignore_merges), post-processors TemplateProcessing/ByteLevel/
 * Sequence/BertProcessing/RobertaProcessing, and a decoder good enough to show text.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct _CruTokenizer CruTokenizer;

/* @display_name names the file in error messages. */
CruTokenizer *cru_tokenizer_new_from_data (const char *display_name, const char *json,
                                           gssize length, GError **error);
CruTokenizer *cru_tokenizer_new_from_file (const char *path, GError **error);
void          cru_tokenizer_free          (CruTokenizer *tok);

/* Token ids (gint32) of @text (UTF-8; @length -1 for NUL-terminated). With
 * @add_special_tokens the post-processor adds its tokens (e.g. BOS). Fails only on
 * invalid UTF-8. */
GArray       *cru_tokenizer_encode        (CruTokenizer *tok, const char *text, gssize length,
                                           gboolean add_special_tokens, GError **error);
/* Text of @ids (byte-level / metaspace / byte-fallback decoding). */
char         *cru_tokenizer_decode        (CruTokenizer *tok, const gint32 *ids, gsize n_ids,
                                           gboolean skip_special_tokens);

/* One more than the largest id (vocab and added tokens). */
guint         cru_tokenizer_get_vocab_size (CruTokenizer *tok);
/* -1 when absent. Looks at added tokens, then the model's vocab. */
int           cru_tokenizer_token_to_id   (CruTokenizer *tok, const char *token);
/* NULL when out of range. */
const char   *cru_tokenizer_id_to_token   (CruTokenizer *tok, int id);
/* The first special token the post-processor puts before the text (BOS), or -1. */
int           cru_tokenizer_get_bos_id    (CruTokenizer *tok);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruTokenizer, cru_tokenizer_free)

G_END_DECLS
