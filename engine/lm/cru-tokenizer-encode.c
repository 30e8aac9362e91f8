/* cru-tokenizer-encode.c — the encoding pipeline of a tokenizer.json, step for step as
 * Hugging Face tokenizers runs it: added tokens are split off the raw text first, then each
 * remaining segment is normalized, pre-tokenized into words, and each word is run through
 * the BPE model; the post-processor adds BOS/EOS.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <stdio.h>
#include <string.h>

#include "cru-error.h"
#include "cru-tokenizer-private.h"

/* ---- normalizers -------------------------------------------------------------------- */

static char *
normalize (Normalizer *n, char *s)  /* takes @s, returns a new string */
{
  char *out;

  if (!n)
    return s;
  switch (n->kind)
    {
    case NORM_SEQUENCE:
      for (guint i = 0; i < n->children->len; i++)
        s = normalize (n->children->pdata[i], s);
      return s;
    case NORM_PREPEND:
      if (!*s)
        return s;
      out = g_strconcat (n->text, s, NULL);
      break;
    case NORM_REPLACE:
      out = g_regex_replace_literal (n->regex, s, -1, 0, n->text, 0, NULL);
      if (!out)
        return s;
      break;
    case NORM_UNICODE:
      out = g_utf8_normalize (s, -1, n->mode);
      if (!out)
        return s;
      break;
    case NORM_LOWERCASE:
      out = g_utf8_strdown (s, -1);
      break;
    case NORM_STRIP:
      {
        const char *b = s, *e = s + strlen (s);
        while (n->left && b < e && g_unichar_isspace (g_utf8_get_char (b)))
          b = g_utf8_next_char (b);
        while (n->right && e > b && g_unichar_isspace (g_utf8_get_char (g_utf8_prev_char (e))))
          e = g_utf8_prev_char (e);
        out = g_strndup (b, e - b);
      }
      break;
    default:
      return s;
    }
  g_free (s);
  return out;
}

/* ---- pre-tokenizers ----------------------------------------------------------------- */

typedef struct {
  gsize    start, end;
  gboolean is_match;
} Span;

static void
piece_clear (Piece *p)
{
  g_free (p->s);
}

static void
add_piece (GArray *out, const char *s, gsize len, gboolean at_start)
{
  Piece p = { g_strndup (s, len), at_start };
  if (len > 0)
    g_array_append_val (out, p);
  else
    g_free (p.s);
}

/* Cuts @p by @spans (covering it completely) the way tokenizers' split behaviors do. */
static void
split_spans (const Piece *p, GArray *spans, SplitBehavior behavior, GArray *out)
{
  g_autoptr (GArray) merged = g_array_new (FALSE, FALSE, sizeof (Span));
  Span *sp = (Span *) spans->data;
  gboolean previous_match = FALSE;

  switch (behavior)
    {
    case SPLIT_ISOLATED:
      g_array_append_vals (merged, sp, spans->len);
      break;
    case SPLIT_REMOVED:
      for (guint i = 0; i < spans->len; i++)
        if (!sp[i].is_match)
          g_array_append_val (merged, sp[i]);
      break;
    case SPLIT_CONTIGUOUS:
      for (guint i = 0; i < spans->len; i++)
        {
          if (sp[i].is_match && previous_match && merged->len)
            g_array_index (merged, Span, merged->len - 1).end = sp[i].end;
          else
            g_array_append_val (merged, sp[i]);
          previous_match = sp[i].is_match;
        }
      break;
    case SPLIT_MERGED_PREVIOUS:
      for (guint i = 0; i < spans->len; i++)
        {
          if (sp[i].is_match && !previous_match && merged->len)
            g_array_index (merged, Span, merged->len - 1).end = sp[i].end;
          else
            g_array_append_val (merged, sp[i]);
          previous_match = sp[i].is_match;
        }
      break;
    case SPLIT_MERGED_NEXT:
      for (guint k = spans->len; k-- > 0;)
        {
          if (sp[k].is_match && !previous_match && merged->len)
            g_array_index (merged, Span, merged->len - 1).start = sp[k].start;
          else
            g_array_append_val (merged, sp[k]);
          previous_match = sp[k].is_match;
        }
      for (guint i = 0; i < merged->len / 2; i++)
        {
          Span t = g_array_index (merged, Span, i);
          g_array_index (merged, Span, i) = g_array_index (merged, Span, merged->len - 1 - i);
          g_array_index (merged, Span, merged->len - 1 - i) = t;
        }
      break;
    }
  for (guint i = 0; i < merged->len; i++)
    {
      Span s = g_array_index (merged, Span, i);
      add_piece (out, p->s + s.start, s.end - s.start, p->at_start && s.start == 0);
    }
}

static void
regex_spans (GRegex *re, const char *s, gboolean invert, GArray *spans)
{
  g_autoptr (GMatchInfo) info = NULL;
  gsize len = strlen (s), last = 0;

  g_regex_match (re, s, 0, &info);
  while (g_match_info_matches (info))
    {
      int a, b;
      g_match_info_fetch_pos (info, 0, &a, &b);
      if (b > a)
        {
          if ((gsize) a > last)
            {
              Span gap = { last, a, invert };
              g_array_append_val (spans, gap);
            }
          {
            Span m = { a, b, !invert };
            g_array_append_val (spans, m);
          }
          last = b;
        }
      if (!g_match_info_next (info, NULL))
        break;
    }
  if (last < len)
    {
      Span gap = { last, len, invert };
      g_array_append_val (spans, gap);
    }
}

static gboolean
is_numeric (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  return t == G_UNICODE_DECIMAL_NUMBER || t == G_UNICODE_LETTER_NUMBER
         || t == G_UNICODE_OTHER_NUMBER;
}

static void
digit_spans (const char *s, gboolean individual, GArray *spans)
{
  const char *p = s;

  while (*p)
    {
      const char *q = g_utf8_next_char (p);
      gboolean num = is_numeric (g_utf8_get_char (p));
      Span sp = { p - s, q - s, num };
      Span *last = spans->len ? &g_array_index (spans, Span, spans->len - 1) : NULL;

      if (last && last->is_match == num && (!num || !individual))
        last->end = sp.end;
      else
        g_array_append_val (spans, sp);
      p = q;
    }
}

static char *
byte_level_map (CruTokenizer *tok, const char *s)
{
  GString *out = g_string_sized_new (strlen (s) * 2);
  for (const guint8 *p = (const guint8 *) s; *p; p++)
    g_string_append (out, tok->byte_chars[*p]);
  return g_string_free (out, FALSE);
}

static GArray *
pre_tokenize (CruTokenizer *tok, PreTokenizer *pre, GArray *pieces)
{
  GArray *out;

  if (pre->kind == PRE_SEQUENCE)
    {
      for (guint i = 0; i < pre->children->len; i++)
        pieces = pre_tokenize (tok, pre->children->pdata[i], pieces);
      return pieces;
    }

  out = g_array_new (FALSE, FALSE, sizeof (Piece));
  g_array_set_clear_func (out, (GDestroyNotify) piece_clear);
  for (guint i = 0; i < pieces->len; i++)
    {
      Piece *p = &g_array_index (pieces, Piece, i);
      g_autoptr (GArray) spans = g_array_new (FALSE, FALSE, sizeof (Span));

      switch (pre->kind)
        {
        case PRE_BYTE_LEVEL:
          {
            g_autoptr (GArray) words = g_array_new (FALSE, FALSE, sizeof (Piece));
            g_autofree char *text = NULL;
            Piece whole;

            g_array_set_clear_func (words, (GDestroyNotify) piece_clear);
            text = pre->add_prefix_space && p->s[0] != ' ' ? g_strconcat (" ", p->s, NULL)
                                                           : g_strdup (p->s);
            whole.s = text;
            whole.at_start = p->at_start;
            if (pre->regex)
              {
                regex_spans (pre->regex, text, FALSE, spans);
                split_spans (&whole, spans, SPLIT_ISOLATED, words);
              }
            else
              add_piece (words, text, strlen (text), p->at_start);
            for (guint w = 0; w < words->len; w++)
              {
                Piece *wp = &g_array_index (words, Piece, w);
                Piece mapped = { byte_level_map (tok, wp->s), wp->at_start };
                g_array_append_val (out, mapped);
              }
          }
          break;
        case PRE_SPLIT:
          regex_spans (pre->regex, p->s, pre->invert, spans);
          split_spans (p, spans, pre->behavior, out);
          break;
        case PRE_DIGITS:
          digit_spans (p->s, pre->individual, spans);
          split_spans (p, spans, SPLIT_ISOLATED, out);
          break;
        case PRE_METASPACE:
          {
            g_auto (GStrv) parts = g_strsplit (p->s, " ", -1);
            g_autofree char *joined = g_strjoinv (pre->replacement, parts);
            g_autofree char *text = NULL;
            gboolean prepend = pre->scheme == PREPEND_ALWAYS
                               || (pre->scheme == PREPEND_FIRST && p->at_start);
            Piece whole;

            if (prepend && !g_str_has_prefix (joined, pre->replacement))
              text = g_strconcat (pre->replacement, joined, NULL);
            else
              text = g_steal_pointer (&joined);
            whole.s = text;
            whole.at_start = p->at_start;
            if (pre->split)
              {
                gsize rl = strlen (pre->replacement), last = 0, len = strlen (text);
                for (const char *f = strstr (text, pre->replacement); f;
                     f = strstr (f + rl, pre->replacement))
                  {
                    gsize a = f - text;
                    if (a > last)
                      {
                        Span gap = { last, a, FALSE };
                        g_array_append_val (spans, gap);
                      }
                    {
                      Span m = { a, a + rl, TRUE };
                      g_array_append_val (spans, m);
                    }
                    last = a + rl;
                  }
                if (last < len)
                  {
                    Span gap = { last, len, FALSE };
                    g_array_append_val (spans, gap);
                  }
                split_spans (&whole, spans, SPLIT_MERGED_NEXT, out);
              }
            else
              add_piece (out, text, strlen (text), p->at_start);
          }
          break;
        case PRE_SEQUENCE:
          break;
        }
    }
  g_array_unref (pieces);
  return out;
}

/* ---- added tokens ------------------------------------------------------------------- */

static gboolean
is_word_char (gunichar c)
{
  return g_unichar_isalnum (c) || c == '_';
}

/* Finds the leftmost-longest added token at or after @from; returns its span (including
 * stripped whitespace) in @start and @end. */
static AddedToken *
find_added (CruTokenizer *tok, const char *text, gsize len, gsize from, gsize floor,
            gsize *start, gsize *end)
{
  for (gsize pos = from; pos < len; pos++)
    {
      GPtrArray *cands = tok->by_first_byte[(guint8) text[pos]];
      AddedToken *best = NULL;
      gsize best_len = 0;

      for (guint i = 0; cands && i < cands->len; i++)
        {
          AddedToken *a = cands->pdata[i];
          gsize n = strlen (a->content);
          if (n > best_len && pos + n <= len && memcmp (text + pos, a->content, n) == 0)
            {
              if (a->single_word
                  && ((pos > 0 && is_word_char (g_utf8_get_char (g_utf8_prev_char (text + pos))))
                      || (pos + n < len && is_word_char (g_utf8_get_char (text + pos + n)))))
                continue;
              best = a, best_len = n;
            }
        }
      if (best)
        {
          gsize s = pos, e = pos + best_len;
          if (best->lstrip)
            while (s > floor && g_ascii_isspace (text[s - 1]))
              s--;
          if (best->rstrip)
            while (e < len && g_ascii_isspace (text[e]))
              e++;
          *start = s, *end = e;
          return best;
        }
    }
  return NULL;
}

static void
encode_segment (CruTokenizer *tok, const char *s, gsize len, gboolean at_start, GArray *ids)
{
  GArray *pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
  char *text = normalize (tok->normalizer, g_strndup (s, len));

  g_array_set_clear_func (pieces, (GDestroyNotify) piece_clear);
  add_piece (pieces, text, strlen (text), at_start);
  g_free (text);
  if (tok->pre)
    pieces = pre_tokenize (tok, tok->pre, pieces);
  for (guint i = 0; i < pieces->len; i++)
    {
      Piece *p = &g_array_index (pieces, Piece, i);
      _cru_bpe_encode_word (tok->bpe, p->s, strlen (p->s), ids);
    }
  g_array_unref (pieces);
}

GArray *
cru_tokenizer_encode (CruTokenizer *tok, const char *text, gssize length,
                      gboolean add_special_tokens, GError **error)
{
  GArray *ids;
  gsize len = length < 0 ? strlen (text) : (gsize) length;
  gsize pos = 0;
  const char *bad;

  g_return_val_if_fail (tok != NULL, NULL);

  if (!g_utf8_validate_len (text, len, &bad))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("The text is not valid UTF-8 (at byte %zu)"),
                   (gsize) (bad - text));
      return NULL;
    }
  ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (add_special_tokens)
    g_array_append_vals (ids, tok->prefix_ids->data, tok->prefix_ids->len);
  while (pos < len)
    {
      gsize start = len, end = len;
      AddedToken *a = find_added (tok, text, len, pos, pos, &start, &end);

      if (!a)
        start = end = len;
      if (start > pos)
        encode_segment (tok, text + pos, start - pos, pos == 0, ids);
      if (a)
        {
          gint32 id = a->id;
          g_array_append_val (ids, id);
        }
      pos = end;
    }
  if (add_special_tokens)
    g_array_append_vals (ids, tok->suffix_ids->data, tok->suffix_ids->len);
  return ids;
}

/* ---- decoding and lookups ----------------------------------------------------------- */

char *
cru_tokenizer_decode (CruTokenizer *tok, const gint32 *ids, gsize n_ids,
                      gboolean skip_special_tokens)
{
  GString *out = g_string_new (NULL);

  for (gsize i = 0; i < n_ids; i++)
    {
      AddedToken *a = ids[i] >= 0 && (guint) ids[i] < tok->n_ids
                        ? tok->added_by_id->pdata[ids[i]] : NULL;
      const char *t = a ? a->content : _cru_bpe_id_to_token (tok->bpe, ids[i]);
      unsigned int byte;

      if (!t || (a && a->special && skip_special_tokens))
        continue;
      if (a)
        g_string_append (out, t);
      else if (tok->dec_byte_fallback && strlen (t) == 6 && sscanf (t, "<0x%2X>", &byte) == 1)
        g_string_append_c (out, (char) byte);
      else if (tok->dec_byte_level)
        for (const char *p = t; *p; p = g_utf8_next_char (p))
          {
            gunichar c = g_utf8_get_char (p);
            gpointer b = g_hash_table_lookup (tok->char_to_byte, GUINT_TO_POINTER (c));
            if (b)
              g_string_append_c (out, (char) (GPOINTER_TO_INT (b) - 1));
            else
              g_string_append_unichar (out, c);
          }
      else
        g_string_append (out, t);
    }
  if (tok->dec_replace_from && *tok->dec_replace_from)
    g_string_replace (out, tok->dec_replace_from, " ", 0);
  for (guint k = 0; k < tok->dec_strip_start && out->len && out->str[0] == ' '; k++)
    g_string_erase (out, 0, 1);
  return g_string_free (out, FALSE);
}

guint
cru_tokenizer_get_vocab_size (CruTokenizer *tok)
{
  return tok->n_ids;
}

int
cru_tokenizer_token_to_id (CruTokenizer *tok, const char *token)
{
  AddedToken *a = g_hash_table_lookup (tok->added_by_content, token);
  return a ? a->id : _cru_bpe_token_to_id (tok->bpe, token);
}

const char *
cru_tokenizer_id_to_token (CruTokenizer *tok, int id)
{
  if (id >= 0 && (guint) id < tok->n_ids && tok->added_by_id->pdata[id])
    return ((AddedToken *) tok->added_by_id->pdata[id])->content;
  return _cru_bpe_id_to_token (tok->bpe, id);
}

int
cru_tokenizer_get_bos_id (CruTokenizer *tok)
{
  return tok->prefix_ids->len ? g_array_index (tok->prefix_ids, gint32, 0) : -1;
}
