/* cru-tokenizer-private.h — internals shared by cru-tokenizer.c (loading) and
 * cru-tokenizer-encode.c (encoding, decoding)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

#include "cru-bpe-private.h"
#include "cru-tokenizer.h"

#define GPT2_PATTERN \
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef enum {
  NORM_SEQUENCE, NORM_PREPEND, NORM_REPLACE, NORM_UNICODE, NORM_LOWERCASE, NORM_STRIP,
} NormKind;

typedef struct Normalizer Normalizer;
struct Normalizer {
  NormKind       kind;
  char          *text;      /* prepend text / replacement content */
  GRegex        *regex;     /* replace pattern */
  GNormalizeMode mode;
  gboolean       left, right;
  GPtrArray     *children;  /* Sequence */
};

typedef enum {
  PRE_SEQUENCE, PRE_BYTE_LEVEL, PRE_SPLIT, PRE_METASPACE, PRE_DIGITS,
} PreKind;

typedef enum {
  SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREVIOUS, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS,
} SplitBehavior;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } PrependScheme;

typedef struct PreTokenizer PreTokenizer;
struct PreTokenizer {
  PreKind       kind;
  gboolean      add_prefix_space;
  GRegex       *regex;        /* ByteLevel use_regex, Split */
  SplitBehavior behavior;
  gboolean      invert;
  char         *replacement;  /* Metaspace */
  PrependScheme scheme;
  gboolean      split;        /* Metaspace */
  gboolean      individual;   /* Digits */
  GPtrArray    *children;
};

typedef struct {
  char    *content;
  int      id;
  gboolean special, lstrip, rstrip, single_word;
} AddedToken;

typedef struct {
  char    *s;
  gboolean at_start;   /* begins at offset 0 of the original text */
} Piece;

struct _CruTokenizer {
  char         *name;
  CruBpe       *bpe;
  GPtrArray    *added;          /* AddedToken */
  GPtrArray    *by_first_byte[256];
  GHashTable   *added_by_content;
  Normalizer   *normalizer;
  PreTokenizer *pre;
  GArray       *prefix_ids;     /* post-processor: before the text */
  GArray       *suffix_ids;     /* after the text */
  guint         n_ids;
  GPtrArray    *added_by_id;    /* AddedToken or NULL, indexed by id */
  /* decoder */
  gboolean      dec_byte_level, dec_byte_fallback;
  char         *dec_replace_from;
  guint         dec_strip_start;
  /* GPT-2 byte ↔ unicode tables */
  char          byte_chars[256][4];
  GHashTable   *char_to_byte;   /* gunichar → byte + 1 */
};

