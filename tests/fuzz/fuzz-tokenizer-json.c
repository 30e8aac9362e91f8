/* fuzz-tokenizer-json.c — the tokenizer.json loader; what loads must encode and decode a
 * short text (added tokens, normalizers, pre-tokenizers, BPE, post-processors, decoder).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-tokenizer.h"

#include "fuzz-common.h"

static const char text[] = "Hello, world! <s> 12345 déjà vu\n\tdef f(x): return x ** 2  # 日本語";

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(CruTokenizer) tok = NULL;
  g_autoptr(GArray) ids = NULL;
  guint vocab;

  fuzz_init ();
  tok = cru_tokenizer_new_from_data ("tokenizer.json", (const char *) data, (gssize) size, NULL);
  if (tok == NULL)
    return 0;
  vocab = cru_tokenizer_get_vocab_size (tok);
  ids = cru_tokenizer_encode (tok, text, -1, TRUE, NULL);
  if (ids != NULL)
    {
      g_autofree char *decoded = NULL;

      for (guint i = 0; i < ids->len; i++)
        {
          gint32 id = g_array_index (ids, gint32, i);
          if (id < 0 || (guint) id >= vocab)
            __builtin_trap ();
        }
      decoded = cru_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len, FALSE);
      if (decoded == NULL)   /* may be invalid UTF-8: byte fallback decodes any byte */
        __builtin_trap ();
    }
  cru_tokenizer_token_to_id (tok, "<s>");
  cru_tokenizer_id_to_token (tok, 0);
  cru_tokenizer_id_to_token (tok, (int) vocab);
  cru_tokenizer_get_bos_id (tok);
  return 0;
}
