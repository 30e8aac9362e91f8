/* test-tokenizer.c — tokenizer.json encoding against ids made by Hugging Face tokenizers
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "cru-tokenizer.h"

static char *
source_path (const char *rel)
{
  const char *root = g_getenv ("CRU_SOURCE_DIR");
  return g_build_filename (root ? root : ".", rel, NULL);
}

static guint
compare_ids (GArray *got, JsonArray *want)
{
  if (got->len != json_array_get_length (want))
    return 1;
  for (guint i = 0; i < got->len; i++)
    if (g_array_index (got, gint32, i) != json_array_get_int_element (want, i))
      return 1;
  return 0;
}

static char *
format_ids (GArray *ids)
{
  GString *s = g_string_new ("[");
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "", g_array_index (ids, gint32, i));
  g_string_append (s, "]");
  return g_string_free (s, FALSE);
}

static void
check_family (gconstpointer data)
{
  const char *family = data;
  g_autofree char *rel = g_strdup_printf ("tests/lm/tokenizer-golden/%s.json", family);
  g_autofree char *golden_path = source_path (rel);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (CruTokenizer) tok = NULL;
  g_autofree char *tok_path = NULL;
  JsonObject *root;
  JsonArray *cases;
  guint failures = 0;

  g_assert_true (json_parser_load_from_file (parser, golden_path, &error));
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  tok_path = source_path (json_object_get_string_member (root, "tokenizer"));
  tok = cru_tokenizer_new_from_file (tok_path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tok);

  cases = json_object_get_array_member (root, "cases");
  g_assert_cmpuint (json_array_get_length (cases), >=, 200);
  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      const char *text = json_object_get_string_member (c, "text");
      for (int special = 0; special < 2; special++)
        {
          g_autoptr (GArray) ids = cru_tokenizer_encode (tok, text, -1, special, &error);
          JsonArray *want = json_object_get_array_member (c, special ? "ids" : "ids_no_special");
          g_assert_no_error (error);
          if (compare_ids (ids, want))
            {
              g_autofree char *got = format_ids (ids);
              g_autoptr (JsonNode) node = json_node_init_array (json_node_alloc (), want);
              g_autofree char *exp = json_to_string (node, FALSE);
              if (failures++ < 5)
                g_printerr ("%s case %u (special %d) “%s”:\n  got  %s\n  want %s\n", family, i,
                            special, text, got, exp);
            }
        }
    }
  g_assert_cmpuint (failures, ==, 0);
}

/* The demo models' tokenizer: [256] + UTF-8 bytes, special-token strings split off first. */
static void
test_demo_special_split (void)
{
  g_autofree char *path = source_path ("data/demo/base/tokenizer.json");
  g_autoptr (GError) error = NULL;
  g_autoptr (CruTokenizer) tok = cru_tokenizer_new_from_file (path, &error);
  g_autoptr (GArray) ids = NULL;
  g_autofree char *text = NULL;
  static const gint32 want[] = { 256, 97, 257, 98, 32, 256, 258, 195, 169 };

  g_assert_no_error (error);
  g_assert_cmpint (cru_tokenizer_get_bos_id (tok), ==, 256);
  g_assert_cmpuint (cru_tokenizer_get_vocab_size (tok), ==, 260);
  ids = cru_tokenizer_encode (tok, "a</s>b <s><pad>\xc3\xa9", -1, TRUE, &error);
  g_assert_no_error (error);
  /* "<s>" inside the text is the special id (as in HF), not its bytes */
  g_assert_cmpmem (ids->data, ids->len * sizeof (gint32), want, sizeof want);
  text = cru_tokenizer_decode (tok, (gint32 *) ids->data, ids->len, TRUE);
  g_assert_cmpstr (text, ==, "ab \xc3\xa9");
}

static void
test_invalid_utf8_is_an_error (void)
{
  g_autofree char *path = source_path ("tools/tokenizer-golden/gpt2.json");
  g_autoptr (GError) error = NULL;
  g_autoptr (CruTokenizer) tok = cru_tokenizer_new_from_file (path, &error);
  GArray *ids;

  g_assert_no_error (error);
  ids = cru_tokenizer_encode (tok, "ab\xff", -1, FALSE, &error);
  g_assert_null (ids);
  g_assert_nonnull (error);
}

static void
test_bad_file_is_an_error (void)
{
  g_autoptr (GError) error = NULL;
  CruTokenizer *tok = cru_tokenizer_new_from_data ("broken.json", "{\"model\": {\"type\": "
                                                   "\"WordPiece\", \"vocab\": {}}}", -1, &error);
  g_assert_null (tok);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "broken.json"));
}

int
main (int argc, char **argv)
{
  static const char *families[] = { "gpt2", "llama3", "qwen2", "spm-legacy", "metaspace",
                                    "demo" };
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (families); i++)
    {
      g_autofree char *name = g_strdup_printf ("/lm/tokenizer/golden/%s", families[i]);
      g_test_add_data_func (name, families[i], check_family);
    }
  g_test_add_func ("/lm/tokenizer/demo-special-tokens-split-first", test_demo_special_split);
  g_test_add_func ("/lm/tokenizer/invalid-utf8-is-an-error", test_invalid_utf8_is_an_error);
  g_test_add_func ("/lm/tokenizer/unsupported-model-is-an-error", test_bad_file_is_an_error);
  return g_test_run ();
}
