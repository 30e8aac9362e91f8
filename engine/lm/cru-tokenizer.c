/* cru-tokenizer.c — Hugging Face tokenizer.json: added tokens, normalizers,
 * pre-tokenizers, post-processors, decoding (the BPE model is in cru-bpe.c)
 *
 * Regex pre-tokenizers (GPT-2, Llama-3, Qwen2 patterns) run on GRegex, which is PCRE2 with
 * UTF-8 and Unicode properties (\p{L}, \p{N}, lookahead) — the same dialect those patterns
 * are written in.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "cru-error.h"
#include "cru-tokenizer-private.h"

/* ---- helpers ------------------------------------------------------------------------ */

static void
normalizer_free (Normalizer *n)
{
  if (!n)
    return;
  g_free (n->text);
  g_clear_pointer (&n->regex, g_regex_unref);
  g_clear_pointer (&n->children, g_ptr_array_unref);
  g_free (n);
}

static void
pre_free (PreTokenizer *p)
{
  if (!p)
    return;
  g_clear_pointer (&p->regex, g_regex_unref);
  g_free (p->replacement);
  g_clear_pointer (&p->children, g_ptr_array_unref);
  g_free (p);
}

static void
added_free (AddedToken *a)
{
  g_free (a->content);
  g_free (a);
}

static GRegex *
compile_pattern (CruTokenizer *tok, JsonObject *pattern, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *escaped = NULL;
  const char *src;
  GRegex *re;

  if (!pattern)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: a pattern is missing"), tok->name);
      return NULL;
    }
  if ((src = _cru_json_string (pattern, "Regex", NULL)) == NULL
      && (src = _cru_json_string (pattern, "String", NULL)) != NULL)
    src = escaped = g_regex_escape_string (src, -1);
  if (!src)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: a pattern is neither a String nor a Regex"), tok->name);
      return NULL;
    }
  re = g_regex_new (src, G_REGEX_OPTIMIZE, 0, &local);
  if (!re)
    g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                 _("%s: cannot use the pattern “%s”: %s"), tok->name, src, local->message);
  return re;
}

static JsonObject *
member_object (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static JsonArray *
member_array (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

/* ---- loading: normalizers and pre-tokenizers ---------------------------------------- */

static Normalizer *
parse_normalizer (CruTokenizer *tok, JsonObject *o, GError **error)
{
  const char *type = _cru_json_string (o, "type", "");
  Normalizer *n = g_new0 (Normalizer, 1);

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list = member_array (o, "normalizers");
      n->kind = NORM_SEQUENCE;
      n->children = g_ptr_array_new_with_free_func ((GDestroyNotify) normalizer_free);
      for (guint i = 0; list && i < json_array_get_length (list); i++)
        {
          Normalizer *c = parse_normalizer (tok, _cru_json_array_object (list, i), error);
          if (!c)
            goto fail;
          g_ptr_array_add (n->children, c);
        }
    }
  else if (g_str_equal (type, "Prepend"))
    {
      n->kind = NORM_PREPEND;
      n->text = g_strdup (_cru_json_string (o, "prepend", ""));
    }
  else if (g_str_equal (type, "Replace"))
    {
      n->kind = NORM_REPLACE;
      n->text = g_strdup (_cru_json_string (o, "content", ""));
      if (!(n->regex = compile_pattern (tok, member_object (o, "pattern"), error)))
        goto fail;
    }
  else if (g_str_equal (type, "NFC") || g_str_equal (type, "NFKC")
           || g_str_equal (type, "NFD") || g_str_equal (type, "NFKD"))
    {
      n->kind = NORM_UNICODE;
      n->mode = g_str_equal (type, "NFC") ? G_NORMALIZE_NFC
                : g_str_equal (type, "NFKC") ? G_NORMALIZE_NFKC
                : g_str_equal (type, "NFD") ? G_NORMALIZE_NFD : G_NORMALIZE_NFKD;
    }
  else if (g_str_equal (type, "Lowercase"))
    n->kind = NORM_LOWERCASE;
  else if (g_str_equal (type, "Strip"))
    {
      n->kind = NORM_STRIP;
      n->left = _cru_json_bool (o, "strip_left", TRUE);
      n->right = _cru_json_bool (o, "strip_right", TRUE);
    }
  else
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("%s: the normalizer “%s” is not supported"), tok->name, type);
      goto fail;
    }
  return n;

fail:
  normalizer_free (n);
  return NULL;
}

static PreTokenizer *
parse_pre (CruTokenizer *tok, JsonObject *o, GError **error)
{
  const char *type = _cru_json_string (o, "type", "");
  PreTokenizer *p = g_new0 (PreTokenizer, 1);

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list = member_array (o, "pretokenizers");
      p->kind = PRE_SEQUENCE;
      p->children = g_ptr_array_new_with_free_func ((GDestroyNotify) pre_free);
      for (guint i = 0; list && i < json_array_get_length (list); i++)
        {
          PreTokenizer *c = parse_pre (tok, _cru_json_array_object (list, i), error);
          if (!c)
            goto fail;
          g_ptr_array_add (p->children, c);
        }
    }
  else if (g_str_equal (type, "ByteLevel"))
    {
      p->kind = PRE_BYTE_LEVEL;
      p->add_prefix_space = _cru_json_bool (o, "add_prefix_space", TRUE);
      if (_cru_json_bool (o, "use_regex", TRUE))
        p->regex = g_regex_new (GPT2_PATTERN, G_REGEX_OPTIMIZE, 0, NULL);
    }
  else if (g_str_equal (type, "Split"))
    {
      const char *b = _cru_json_string (o, "behavior", "Isolated");
      p->kind = PRE_SPLIT;
      p->invert = _cru_json_bool (o, "invert", FALSE);
      p->behavior = g_str_equal (b, "Removed") ? SPLIT_REMOVED
                    : g_str_equal (b, "MergedWithPrevious") ? SPLIT_MERGED_PREVIOUS
                    : g_str_equal (b, "MergedWithNext") ? SPLIT_MERGED_NEXT
                    : g_str_equal (b, "Contiguous") ? SPLIT_CONTIGUOUS : SPLIT_ISOLATED;
      if (!(p->regex = compile_pattern (tok, member_object (o, "pattern"), error)))
        goto fail;
    }
  else if (g_str_equal (type, "Metaspace"))
    {
      const char *scheme = _cru_json_string (o, "prepend_scheme", NULL);
      p->kind = PRE_METASPACE;
      p->replacement = g_strdup (_cru_json_string (o, "replacement", "\u2581"));
      p->split = _cru_json_bool (o, "split", TRUE);
      if (scheme)
        p->scheme = g_str_equal (scheme, "first") ? PREPEND_FIRST
                    : g_str_equal (scheme, "never") ? PREPEND_NEVER : PREPEND_ALWAYS;
      else
        p->scheme = _cru_json_bool (o, "add_prefix_space", TRUE)
                      ? PREPEND_ALWAYS : PREPEND_NEVER;
    }
  else if (g_str_equal (type, "Digits"))
    {
      p->kind = PRE_DIGITS;
      p->individual = _cru_json_bool (o, "individual_digits", FALSE);
    }
  else
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("%s: the pre-tokenizer “%s” is not supported"), tok->name, type);
      goto fail;
    }
  return p;

fail:
  pre_free (p);
  return NULL;
}

/* ---- loading: post-processor and decoder -------------------------------------------- */

static gboolean
append_special_id (CruTokenizer *tok, const char *name, gint64 id, GArray *out, GError **error)
{
  gint32 id32 = (gint32) id;

  /* Checked against the vocabulary once everything is loaded. */
  if (id < 0 || id >= CRU_TOKENIZER_MAX_ID)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the post-processor gives the special token “%s” an invalid id"),
                   tok->name, name);
      return FALSE;
    }
  g_array_append_val (out, id32);
  return TRUE;
}

static gboolean
special_ids (CruTokenizer *tok, JsonObject *specials, const char *name, GArray *out,
             GError **error)
{
  JsonObject *entry = specials ? member_object (specials, name) : NULL;
  JsonArray *ids = entry ? member_array (entry, "ids") : NULL;

  if (!ids)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the post-processor uses the special token “%s” without defining it"),
                   tok->name, name);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (ids); i++)
    {
      gint64 id = _cru_json_array_int (ids, i, -1);
      if (!append_special_id (tok, name, id, out, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
parse_post (CruTokenizer *tok, JsonObject *o, GError **error)
{
  const char *type = _cru_json_string (o, "type", "");

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list = member_array (o, "processors");
      for (guint i = 0; list && i < json_array_get_length (list); i++)
        if (!parse_post (tok, _cru_json_array_object (list, i), error))
          return FALSE;
      return TRUE;
    }
  if (g_str_equal (type, "ByteLevel"))
    return TRUE;  /* offsets only */
  if (g_str_equal (type, "TemplateProcessing"))
    {
      JsonArray *single = member_array (o, "single");
      JsonObject *specials = member_object (o, "special_tokens");
      gboolean after = FALSE;

      for (guint i = 0; single && i < json_array_get_length (single); i++)
        {
          JsonObject *item = _cru_json_array_object (single, i);
          JsonObject *sp = item ? member_object (item, "SpecialToken") : NULL;
          if (item && json_object_has_member (item, "Sequence"))
            after = TRUE;
          else if (sp && !special_ids (tok, specials,
                                       _cru_json_string (sp, "id", ""),
                                       after ? tok->suffix_ids : tok->prefix_ids, error))
            return FALSE;
        }
      return TRUE;
    }
  if (g_str_equal (type, "BertProcessing") || g_str_equal (type, "RobertaProcessing"))
    {
      JsonArray *cls = member_array (o, "cls"), *sep = member_array (o, "sep");
      if (cls && json_array_get_length (cls) == 2
          && !append_special_id (tok, "cls", _cru_json_array_int (cls, 1, -1), tok->prefix_ids,
                                 error))
        return FALSE;
      if (sep && json_array_get_length (sep) == 2
          && !append_special_id (tok, "sep", _cru_json_array_int (sep, 1, -1), tok->suffix_ids,
                                 error))
        return FALSE;
      return TRUE;
    }
  g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
               _("%s: the post-processor “%s” is not supported"), tok->name, type);
  return FALSE;
}

static void
parse_decoder (CruTokenizer *tok, JsonObject *o)
{
  const char *type = _cru_json_string (o, "type", "");

  if (g_str_equal (type, "Sequence"))
    {
      JsonArray *list = member_array (o, "decoders");
      for (guint i = 0; list && i < json_array_get_length (list); i++)
        parse_decoder (tok, _cru_json_array_object (list, i));
    }
  else if (g_str_equal (type, "ByteLevel"))
    tok->dec_byte_level = TRUE;
  else if (g_str_equal (type, "ByteFallback"))
    tok->dec_byte_fallback = TRUE;
  else if (g_str_equal (type, "Metaspace"))
    {
      g_free (tok->dec_replace_from);
      tok->dec_replace_from = g_strdup (_cru_json_string (o, "replacement", "\u2581"));
      if (g_strcmp0 (_cru_json_string (o, "prepend_scheme", "always"), "never") != 0)
        tok->dec_strip_start = 1;
    }
  else if (g_str_equal (type, "Replace"))
    {
      JsonObject *pat = member_object (o, "pattern");
      if (pat && json_object_has_member (pat, "String"))
        {
          g_free (tok->dec_replace_from);
          tok->dec_replace_from = g_strdup (_cru_json_string (pat, "String", NULL));
        }
    }
  else if (g_str_equal (type, "Strip"))
    tok->dec_strip_start = (guint) _cru_json_int (o, "start", 0);
}

static void
init_byte_tables (CruTokenizer *tok)
{
  int n = 0;

  tok->char_to_byte = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (int b = 0; b < 256; b++)
    {
      gboolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      gunichar c = printable ? (gunichar) b : (gunichar) (256 + n++);
      int len = g_unichar_to_utf8 (c, tok->byte_chars[b]);
      tok->byte_chars[b][len] = 0;
      g_hash_table_insert (tok->char_to_byte, GUINT_TO_POINTER (c), GINT_TO_POINTER (b + 1));
    }
}

static gboolean
parse_added (CruTokenizer *tok, JsonArray *list, GError **error)
{
  for (guint i = 0; list && i < json_array_get_length (list); i++)
    {
      JsonObject *o = _cru_json_array_object (list, i);
      const char *content = o ? _cru_json_string (o, "content", NULL)
                              : NULL;
      AddedToken *a;

      gint64 id = _cru_json_int (o, "id", -1);

      if (!content || !*content || !json_object_has_member (o, "id"))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: added token %u has no content or id"), tok->name, i);
          return FALSE;
        }
      a = g_new0 (AddedToken, 1);
      a->content = g_strdup (content);
      a->id = (int) CLAMP (id, -1, CRU_TOKENIZER_MAX_ID);
      a->special = _cru_json_bool (o, "special", FALSE);
      a->lstrip = _cru_json_bool (o, "lstrip", FALSE);
      a->rstrip = _cru_json_bool (o, "rstrip", FALSE);
      a->single_word = _cru_json_bool (o, "single_word", FALSE);
      if (a->id < 0 || a->id >= CRU_TOKENIZER_MAX_ID)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: added token “%s” has the id %" PRId64 ", which is not "
                         "between 0 and %d"), tok->name, content, id, CRU_TOKENIZER_MAX_ID - 1);
          added_free (a);
          return FALSE;
        }
      g_ptr_array_add (tok->added, a);
      g_hash_table_replace (tok->added_by_content, a->content, a);
      if (!tok->by_first_byte[(guint8) content[0]])
        tok->by_first_byte[(guint8) content[0]] = g_ptr_array_new ();
      g_ptr_array_add (tok->by_first_byte[(guint8) content[0]], a);
    }
  return TRUE;
}

CruTokenizer *
cru_tokenizer_new_from_data (const char *display_name, const char *json, gssize length,
                             GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (CruTokenizer) tok = NULL;
  g_autoptr (GError) local = NULL;
  JsonNode *root;
  JsonObject *o, *sub;

  if (!json_parser_load_from_data (parser, json, length, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not valid JSON: %s"), display_name, local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root) || !member_object (json_node_get_object (root),
                                                                 "model"))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not a tokenizer.json file (it has no “model”)"), display_name);
      return NULL;
    }
  o = json_node_get_object (root);

  tok = g_new0 (CruTokenizer, 1);
  tok->name = g_strdup (display_name);
  tok->added = g_ptr_array_new_with_free_func ((GDestroyNotify) added_free);
  tok->added_by_content = g_hash_table_new (g_str_hash, g_str_equal);
  tok->prefix_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  tok->suffix_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  tok->added_by_id = g_ptr_array_new ();
  init_byte_tables (tok);

  if (!(tok->bpe = _cru_bpe_new (member_object (o, "model"), display_name, error)))
    return NULL;
  if (!parse_added (tok, member_array (o, "added_tokens"), error))
    return NULL;
  if ((sub = member_object (o, "normalizer")) && !(tok->normalizer = parse_normalizer (tok, sub,
                                                                                      error)))
    return NULL;
  if ((sub = member_object (o, "pre_tokenizer")) && !(tok->pre = parse_pre (tok, sub, error)))
    return NULL;
  if ((sub = member_object (o, "post_processor")) && !parse_post (tok, sub, error))
    return NULL;
  if ((sub = member_object (o, "decoder")))
    parse_decoder (tok, sub);

  tok->n_ids = _cru_bpe_get_n_ids (tok->bpe);
  for (guint i = 0; i < tok->added->len; i++)
    tok->n_ids = MAX (tok->n_ids, (guint) ((AddedToken *) tok->added->pdata[i])->id + 1);
  for (guint k = 0; k < 2; k++)
    {
      GArray *ids = k == 0 ? tok->prefix_ids : tok->suffix_ids;
      for (guint i = 0; i < ids->len; i++)
        if ((guint) g_array_index (ids, gint32, i) >= tok->n_ids)
          {
            g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                         _("%s: the post-processor adds the token id %d, but the vocabulary "
                           "has only %u tokens"), display_name, g_array_index (ids, gint32, i),
                         tok->n_ids);
            return NULL;
          }
    }
  g_ptr_array_set_size (tok->added_by_id, tok->n_ids);
  for (guint i = 0; i < tok->added->len; i++)
    {
      AddedToken *a = tok->added->pdata[i];
      tok->added_by_id->pdata[a->id] = a;
    }
  return g_steal_pointer (&tok);
}

CruTokenizer *
cru_tokenizer_new_from_file (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  g_autofree char *display = g_filename_display_name (path);
  g_autoptr (GError) local = NULL;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("Cannot read the tokenizer %s: %s"),
                   display, local->message);
      return NULL;
    }
  return cru_tokenizer_new_from_data (display, data, len, error);
}

void
cru_tokenizer_free (CruTokenizer *tok)
{
  if (!tok)
    return;
  for (int i = 0; i < 256; i++)
    g_clear_pointer (&tok->by_first_byte[i], g_ptr_array_unref);
  g_clear_pointer (&tok->added_by_content, g_hash_table_unref);
  g_clear_pointer (&tok->added, g_ptr_array_unref);
  g_clear_pointer (&tok->added_by_id, g_ptr_array_unref);
  g_clear_pointer (&tok->prefix_ids, g_array_unref);
  g_clear_pointer (&tok->suffix_ids, g_array_unref);
  g_clear_pointer (&tok->char_to_byte, g_hash_table_unref);
  normalizer_free (tok->normalizer);
  pre_free (tok->pre);
  _cru_bpe_free (tok->bpe);
  g_free (tok->dec_replace_from);
  g_free (tok->name);
  g_free (tok);
}
