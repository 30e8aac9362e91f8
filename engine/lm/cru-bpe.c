/* cru-bpe.c — byte-pair encoding as Hugging Face tokenizers does it
 *
 * Merging follows tokenizers' Word::merge_all: always apply the pair of lowest rank, the
 * leftmost one among equals, until no adjacent pair has a merge. A heap keeps this
 * O(n log n), because SentencePiece-style tokenizers hand the whole text over as one word.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <string.h>

#include "cru-bpe-private.h"
#include "cru-error.h"

struct _CruBpe {
  GHashTable *vocab;        /* token string → id + 1 */
  GPtrArray  *id_to_token;  /* borrowed keys of vocab, NULL holes */
  GHashTable *merges;       /* packed (left id, right id) → packed (rank, new id) */
  GHashTable *cache;        /* word → GArray of ids */
  GMutex      cache_lock;
  int         unk_id;       /* -1 when none */
  gboolean    fuse_unk;
  gboolean    byte_fallback;
  gboolean    ignore_merges;
  int         byte_ids[256]; /* "<0xXX>" ids for byte fallback, -1 when absent */
};

#define CACHE_MAX_WORDS 50000
#define CACHE_MAX_WORD_BYTES 256

static guint
pair_hash (gconstpointer p)
{
  guint64 v = GPOINTER_TO_SIZE (p);
  v *= 0x9E3779B97F4A7C15ull;
  return (guint) (v >> 32);
}

static inline gpointer
pack_pair (int a, int b)
{
  return GSIZE_TO_POINTER (((guint64) (guint32) a << 32) | (guint32) b);
}

static int
lookup (CruBpe *bpe, const char *s)
{
  gpointer v = g_hash_table_lookup (bpe->vocab, s);
  return v ? GPOINTER_TO_INT (v) - 1 : -1;
}

static gboolean
add_merge (CruBpe *bpe, const char *display_name, const char *a, const char *b, guint rank,
           GError **error)
{
  int ia = lookup (bpe, a), ib = lookup (bpe, b);
  g_autofree char *joined = g_strconcat (a, b, NULL);
  int inew = lookup (bpe, joined);

  if (ia < 0 || ib < 0 || inew < 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: merge %u (“%s” + “%s”) uses a token that is not in the vocabulary"),
                   display_name, rank, a, b);
      return FALSE;
    }
  /* The first (lowest-rank) occurrence of a duplicate merge wins, as in tokenizers. */
  if (!g_hash_table_contains (bpe->merges, pack_pair (ia, ib)))
    g_hash_table_insert (bpe->merges, pack_pair (ia, ib),
                         GSIZE_TO_POINTER (((guint64) rank << 32) | (guint32) inew));
  return TRUE;
}

CruBpe *
_cru_bpe_new (JsonObject *model, const char *display_name, GError **error)
{
  CruBpe *bpe;
  JsonObject *vocab;
  JsonArray *merges;
  const char *type = _cru_json_string (model, "type", "BPE");

  if (g_strcmp0 (type, "BPE") != 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("%s: tokenizer model type “%s” is not supported (only BPE is)"),
                   display_name, type);
      return NULL;
    }
  if (!json_object_has_member (model, "vocab")
      || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (model, "vocab")))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the BPE model has no “vocab” object"), display_name);
      return NULL;
    }
  {
    const char *prefix = _cru_json_string (model,
                                                                     "continuing_subword_prefix", NULL);
    const char *suffix = _cru_json_string (model,
                                                                     "end_of_word_suffix", NULL);
    if ((prefix && *prefix) || (suffix && *suffix))
      {
        g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                     _("%s: BPE with a subword prefix or end-of-word suffix is not supported"),
                     display_name);
        return NULL;
      }
  }

  bpe = g_new0 (CruBpe, 1);
  bpe->vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  bpe->id_to_token = g_ptr_array_new ();
  bpe->merges = g_hash_table_new (pair_hash, g_direct_equal);
  bpe->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_array_unref);
  g_mutex_init (&bpe->cache_lock);
  bpe->unk_id = -1;

  vocab = json_object_get_object_member (model, "vocab");
  {
    JsonObjectIter it;
    const char *key;
    JsonNode *node;

    json_object_iter_init (&it, vocab);
    while (json_object_iter_next (&it, &key, &node))
      {
        gint64 id = JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64
                      ? json_node_get_int (node) : -1;
        char *k;

        if (id < 0 || id >= CRU_TOKENIZER_MAX_ID)
          {
            g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                         _("%s: vocabulary entry “%s” has an invalid id"), display_name, key);
            _cru_bpe_free (bpe);
            return NULL;
          }
        k = g_strdup (key);
        g_hash_table_replace (bpe->vocab, k, GINT_TO_POINTER ((int) id + 1));
        if ((guint) id >= bpe->id_to_token->len)
          g_ptr_array_set_size (bpe->id_to_token, id + 1);
        g_ptr_array_index (bpe->id_to_token, id) = k;
      }
  }

  merges = json_object_get_member (model, "merges")
             && JSON_NODE_HOLDS_ARRAY (json_object_get_member (model, "merges"))
             ? json_object_get_array_member (model, "merges") : NULL;
  for (guint i = 0; merges && i < json_array_get_length (merges); i++)
    {
      JsonNode *m = json_array_get_element (merges, i);
      gboolean ok;

      if (JSON_NODE_HOLDS_ARRAY (m) && json_array_get_length (json_node_get_array (m)) == 2
          && _cru_json_array_string (json_node_get_array (m), 0)
          && _cru_json_array_string (json_node_get_array (m), 1))
        {
          JsonArray *pair = json_node_get_array (m);
          ok = add_merge (bpe, display_name, _cru_json_array_string (pair, 0),
                          _cru_json_array_string (pair, 1), i, error);
        }
      else if (JSON_NODE_HOLDS_VALUE (m) && json_node_get_string (m))
        {
          const char *s = json_node_get_string (m);
          const char *space = strchr (s, ' ');
          g_autofree char *left = NULL;

          if (!space || strchr (space + 1, ' '))
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                           _("%s: merge %u (“%s”) is not two tokens separated by one space"),
                           display_name, i, s);
              _cru_bpe_free (bpe);
              return NULL;
            }
          left = g_strndup (s, space - s);
          ok = add_merge (bpe, display_name, left, space + 1, i, error);
        }
      else
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: merge %u is neither a string nor a pair of strings"),
                       display_name, i);
          ok = FALSE;
        }
      if (!ok)
        {
          _cru_bpe_free (bpe);
          return NULL;
        }
    }

  {
    const char *unk = _cru_json_string (model, "unk_token", NULL);
    if (unk)
      bpe->unk_id = lookup (bpe, unk);
  }
  bpe->fuse_unk = _cru_json_bool (model, "fuse_unk", FALSE);
  bpe->byte_fallback = _cru_json_bool (model, "byte_fallback",
                                                                    FALSE);
  bpe->ignore_merges = _cru_json_bool (model, "ignore_merges",
                                                                    FALSE);
  for (int b = 0; b < 256; b++)
    {
      char name[8];
      g_snprintf (name, sizeof name, "<0x%02X>", b);
      bpe->byte_ids[b] = lookup (bpe, name);
    }
  return bpe;
}

void
_cru_bpe_free (CruBpe *bpe)
{
  if (!bpe)
    return;
  g_hash_table_unref (bpe->merges);
  g_hash_table_unref (bpe->cache);
  g_ptr_array_unref (bpe->id_to_token);
  g_hash_table_unref (bpe->vocab);
  g_mutex_clear (&bpe->cache_lock);
  g_free (bpe);
}

/* ---- merging ------------------------------------------------------------------------ */

typedef struct {
  int id;
  int prev, next;
  gboolean alive;
} Symbol;

typedef struct {
  guint32 rank;
  int pos;       /* left symbol */
  int new_id;
} Candidate;

static inline gboolean
cand_less (const Candidate *a, const Candidate *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (GArray *heap, Candidate c)
{
  Candidate *h;
  guint i;

  g_array_append_val (heap, c);
  h = (Candidate *) heap->data;
  i = heap->len - 1;
  while (i > 0)
    {
      guint parent = (i - 1) / 2;
      Candidate tmp;
      if (!cand_less (&h[i], &h[parent]))
        break;
      tmp = h[i], h[i] = h[parent], h[parent] = tmp;
      i = parent;
    }
}

static Candidate
heap_pop (GArray *heap)
{
  Candidate *h = (Candidate *) heap->data;
  Candidate top = h[0];
  guint n = heap->len - 1, i = 0;

  h[0] = h[n];
  g_array_set_size (heap, n);
  for (;;)
    {
      guint l = 2 * i + 1, r = l + 1, m = i;
      Candidate tmp;
      if (l < n && cand_less (&h[l], &h[m]))
        m = l;
      if (r < n && cand_less (&h[r], &h[m]))
        m = r;
      if (m == i)
        break;
      tmp = h[i], h[i] = h[m], h[m] = tmp;
      i = m;
    }
  return top;
}

static gboolean
find_merge (CruBpe *bpe, int a, int b, guint32 *rank, int *new_id)
{
  gpointer v;
  if (!g_hash_table_lookup_extended (bpe->merges, pack_pair (a, b), NULL, &v))
    return FALSE;
  *rank = (guint32) (GPOINTER_TO_SIZE (v) >> 32);
  *new_id = (int) (guint32) GPOINTER_TO_SIZE (v);
  return TRUE;
}

static void
push_pair (CruBpe *bpe, GArray *heap, Symbol *sym, int pos)
{
  Candidate c;
  int next = sym[pos].next;

  if (next < 0)
    return;
  if (find_merge (bpe, sym[pos].id, sym[next].id, &c.rank, &c.new_id))
    {
      c.pos = pos;
      heap_push (heap, c);
    }
}

static void
encode_uncached (CruBpe *bpe, const char *word, gsize length, GArray *ids)
{
  g_autoptr (GArray) syms = g_array_new (FALSE, FALSE, sizeof (Symbol));
  g_autoptr (GArray) heap = NULL;
  const char *p = word, *end = word + length;
  gboolean prev_unk = FALSE;
  Symbol *sym;

  if (bpe->ignore_merges)
    {
      g_autofree char *w = g_strndup (word, length);
      int id = lookup (bpe, w);
      if (id >= 0)
        {
          g_array_append_val (ids, id);
          return;
        }
    }

  while (p < end)
    {
      const char *q = g_utf8_next_char (p);
      char buf[8];
      gsize n = MIN ((gsize) (q - p), sizeof buf - 1);
      int id;

      memcpy (buf, p, n);
      buf[n] = 0;
      id = lookup (bpe, buf);
      if (id >= 0)
        {
          Symbol s = { id, (int) syms->len - 1, -1, TRUE };
          g_array_append_val (syms, s);
          prev_unk = FALSE;
        }
      else
        {
          gboolean done = FALSE;
          if (bpe->byte_fallback)
            {
              done = TRUE;
              for (gsize k = 0; k < n; k++)
                done = done && bpe->byte_ids[(guint8) buf[k]] >= 0;
              for (gsize k = 0; done && k < n; k++)
                {
                  Symbol s = { bpe->byte_ids[(guint8) buf[k]], (int) syms->len - 1, -1, TRUE };
                  g_array_append_val (syms, s);
                }
              if (done)
                prev_unk = FALSE;
            }
          if (!done && bpe->unk_id >= 0 && !(bpe->fuse_unk && prev_unk))
            {
              Symbol s = { bpe->unk_id, (int) syms->len - 1, -1, TRUE };
              g_array_append_val (syms, s);
              prev_unk = TRUE;
            }
          /* without an unk token the character is dropped, as tokenizers does */
        }
      p = q;
    }

  sym = (Symbol *) syms->data;
  for (guint i = 0; i + 1 < syms->len; i++)
    sym[i].next = (int) i + 1;

  heap = g_array_sized_new (FALSE, FALSE, sizeof (Candidate), syms->len);
  for (guint i = 0; i + 1 < syms->len; i++)
    push_pair (bpe, heap, sym, (int) i);

  while (heap->len > 0)
    {
      Candidate c = heap_pop (heap);
      int next = sym[c.pos].next;
      guint32 rank;
      int new_id;

      /* skip candidates made stale by earlier merges */
      if (!sym[c.pos].alive || next < 0
          || !find_merge (bpe, sym[c.pos].id, sym[next].id, &rank, &new_id)
          || rank != c.rank || new_id != c.new_id)
        continue;
      sym[c.pos].id = c.new_id;
      sym[next].alive = FALSE;
      sym[c.pos].next = sym[next].next;
      if (sym[next].next >= 0)
        sym[sym[next].next].prev = c.pos;
      if (sym[c.pos].prev >= 0)
        push_pair (bpe, heap, sym, sym[c.pos].prev);
      push_pair (bpe, heap, sym, c.pos);
    }

  for (int i = syms->len ? 0 : -1; i >= 0; i = sym[i].next)
    g_array_append_val (ids, sym[i].id);
}

void
_cru_bpe_encode_word (CruBpe *bpe, const char *word, gsize length, GArray *ids)
{
  g_autofree char *key = NULL;
  GArray *cached, *fresh;

  if (length == 0)
    return;
  if (length > CACHE_MAX_WORD_BYTES)
    {
      encode_uncached (bpe, word, length, ids);
      return;
    }
  key = g_strndup (word, length);
  g_mutex_lock (&bpe->cache_lock);
  cached = g_hash_table_lookup (bpe->cache, key);
  if (cached)
    {
      g_array_append_vals (ids, cached->data, cached->len);
      g_mutex_unlock (&bpe->cache_lock);
      return;
    }
  g_mutex_unlock (&bpe->cache_lock);

  fresh = g_array_new (FALSE, FALSE, sizeof (gint32));
  encode_uncached (bpe, word, length, fresh);
  g_array_append_vals (ids, fresh->data, fresh->len);
  g_mutex_lock (&bpe->cache_lock);
  if (g_hash_table_size (bpe->cache) < CACHE_MAX_WORDS)
    g_hash_table_replace (bpe->cache, g_steal_pointer (&key), fresh);
  else
    g_array_unref (fresh);
  g_mutex_unlock (&bpe->cache_lock);
}

int
_cru_bpe_token_to_id (CruBpe *bpe, const char *token)
{
  return lookup (bpe, token);
}

const char *
_cru_bpe_id_to_token (CruBpe *bpe, int id)
{
  if (id < 0 || (guint) id >= bpe->id_to_token->len)
    return NULL;
  return g_ptr_array_index (bpe->id_to_token, id);
}

guint
_cru_bpe_get_n_ids (CruBpe *bpe)
{
  return bpe->id_to_token->len;
}

gboolean
_cru_bpe_has_byte_fallback (CruBpe *bpe)
{
  return bpe->byte_fallback;
}
