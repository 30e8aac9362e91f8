/* cru-model.c — Hugging Face model folders and single .safetensors files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-model.h"
#include "cru-safetensors-private.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct _CruModel
{
  gatomicrefcount ref_count;
  char           *path;         /* absolute */
  char           *dir;          /* folder, NULL for a bare file */
  char           *name;
  JsonObject     *config;       /* NULL for a bare file */
  char           *model_type;
  CruArch         arch;
  int             n_layers;
  guint64         n_params;
  guint64         total_bytes;
  CruDType        dtype;
  gboolean        tie_word_embeddings;
  int64_t         vocab_size;
  int64_t         hidden_size;
  GPtrArray      *shards;       /* CruSafetensors* */
  GArray         *tensors;      /* CruModelTensor, by name */
  GHashTable     *by_name;      /* name → index + 1 */
};

static const char *const tokenizer_files[] = {
  "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
  "vocab.json", "merges.txt", "added_tokens.json",
};

CruModel *
cru_model_ref (CruModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_ref_count_inc (&model->ref_count);
  return model;
}

void
cru_model_unref (CruModel *model)
{
  if (model == NULL || !g_atomic_ref_count_dec (&model->ref_count))
    return;
  g_free (model->path);
  g_free (model->dir);
  g_free (model->name);
  g_clear_pointer (&model->config, json_object_unref);
  g_free (model->model_type);
  g_ptr_array_unref (model->shards);
  g_array_unref (model->tensors);
  g_hash_table_unref (model->by_name);
  g_free (model);
}

/* ---- config.json ------------------------------------------------------------------ */

/* Looks a key up in the config, then in a nested text_config (Gemma 3, multimodal). */
static JsonNode *
config_member (JsonObject *config, const char *key)
{
  JsonNode *node;

  if (config == NULL)
    return NULL;
  node = json_object_get_member (config, key);
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    return node;
  node = json_object_get_member (config, "text_config");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonNode *inner = json_object_get_member (json_node_get_object (node), key);
      if (inner != NULL && !JSON_NODE_HOLDS_NULL (inner))
        return inner;
    }
  return NULL;
}

static gboolean
node_is (JsonNode *node, GType type)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

JsonObject *
cru_config_parse (const char *display_name, const char *data, gssize length, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  static const struct { const char *key; GType type; const char *what; } fields[] = {
    { "model_type", G_TYPE_STRING, N_("a string") },
    { "torch_dtype", G_TYPE_STRING, N_("a string") },
    { "dtype", G_TYPE_STRING, N_("a string") },
    { "num_hidden_layers", G_TYPE_INT64, N_("an integer") },
    { "hidden_size", G_TYPE_INT64, N_("an integer") },
    { "vocab_size", G_TYPE_INT64, N_("an integer") },
    { "tie_word_embeddings", G_TYPE_BOOLEAN, N_("true or false") },
  };
  JsonNode *root;
  JsonObject *obj;

  if (length < 0)
    length = (gssize) strlen (data);
  if (!g_utf8_validate_len (data, (gsize) length, NULL))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the file is not valid UTF-8 text"), display_name);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, length, &local_error))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE, _("%s: not valid JSON: %s"),
                   display_name, local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: expected a JSON object (“{ … }”)"), display_name);
      return NULL;
    }
  obj = json_node_get_object (root);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      JsonNode *node = config_member (obj, fields[i].key);
      if (node == NULL)
        continue;
      if (!node_is (node, fields[i].type)
          || (fields[i].type == G_TYPE_INT64 && json_node_get_int (node) < 0))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: “%s” should be %s"), display_name, fields[i].key,
                       _(fields[i].what));
          return NULL;
        }
    }
  return json_object_ref (obj);
}

/* ---- opening ---------------------------------------------------------------------- */

static CruModel *
model_new (void)
{
  CruModel *m = g_new0 (CruModel, 1);

  g_atomic_ref_count_init (&m->ref_count);
  m->shards = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_safetensors_free);
  m->tensors = g_array_new (FALSE, TRUE, sizeof (CruModelTensor));
  m->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  m->n_layers = 0;
  m->vocab_size = -1;
  m->hidden_size = -1;
  return m;
}

/* Whether the folder has an entry @path (a broken or looping link counts: opening it then
 * says what is wrong); otherwise @errsv tells why not (ENOENT: there is none). */
static gboolean
entry_exists (const char *path, int *errsv)
{
  struct stat sb;

  if (lstat (path, &sb) == 0)
    return TRUE;
  *errsv = errno;
  return FALSE;
}

static CruSafetensors *
open_shard (CruModel *m, const char *filename, GError **error)
{
  g_autofree char *path = g_build_filename (m->dir, filename, NULL);
  int errsv = 0;

  if (!entry_exists (path, &errsv))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                   _("%s: the weights file “%s” is missing"), m->name, filename);
      return NULL;
    }
  return cru_safetensors_open (path, error);
}

GStrv
cru_model_index_parse (const char *display_name, const char *data, gssize length,
                       GHashTable **weight_map, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GHashTable) map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GStrvBuilder) files = g_strv_builder_new ();
  g_autoptr(GList) names = NULL;
  JsonNode *root, *wm;

  if (length < 0)
    length = (gssize) strlen (data);
  if (!g_utf8_validate_len (data, (gsize) length, NULL))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the file is not valid UTF-8 text"), display_name);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, length, &local_error))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE, _("%s: not valid JSON: %s"),
                   display_name, local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  wm = root && JSON_NODE_HOLDS_OBJECT (root)
         ? json_object_get_member (json_node_get_object (root), "weight_map") : NULL;
  if (wm == NULL || !JSON_NODE_HOLDS_OBJECT (wm))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: there is no “weight_map” object"), display_name);
      return NULL;
    }
  names = json_object_get_members (json_node_get_object (wm));
  if (names == NULL)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE, _("%s: “weight_map” is empty"),
                   display_name);
      return NULL;
    }
  for (GList *l = names; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (json_node_get_object (wm), l->data);
      const char *file;

      if (!node_is (v, G_TYPE_STRING))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: the entry of “%s” is not a file name"), display_name,
                       (const char *) l->data);
          return NULL;
        }
      file = json_node_get_string (v);
      if (*file == '\0' || strchr (file, '/') || strcmp (file, "..") == 0 || strcmp (file, ".") == 0)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: “%s” is not a file name inside the model folder"), display_name,
                       file);
          return NULL;
        }
      if (g_hash_table_add (seen, (char *) file))
        g_strv_builder_add (files, file);
      g_hash_table_insert (map, g_strdup (l->data), g_strdup (file));
    }
  *weight_map = g_steal_pointer (&map);
  return g_strv_builder_end (files);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static gboolean
load_index (CruModel *m, const char *index_path, GHashTable *expected, GError **error)
{
  g_autofree char *dn = g_build_filename (m->name, "model.safetensors.index.json", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GHashTable) weight_map = NULL;
  g_autoptr(GHashTable) shard_index = g_hash_table_new (g_str_hash, g_str_equal);
  g_auto(GStrv) files = NULL;
  g_autofree gpointer *names = NULL;
  guint n_names;
  gsize len;

  if (!g_file_get_contents (index_path, &contents, &len, &local_error))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, "%s", local_error->message);
      return FALSE;
    }
  files = cru_model_index_parse (dn, contents, (gssize) len, &weight_map, error);
  if (files == NULL)
    return FALSE;
  /* Shards in the order the index first names them. */
  for (guint i = 0; files[i]; i++)
    {
      CruSafetensors *st = open_shard (m, files[i], error);
      if (st == NULL)
        return FALSE;
      g_hash_table_insert (shard_index, files[i], GUINT_TO_POINTER (i));
      g_ptr_array_add (m->shards, st);
    }
  /* In name order, so that the first problem reported does not depend on hashing. */
  names = g_hash_table_get_keys_as_array (weight_map, &n_names);
  qsort (names, n_names, sizeof (gpointer), compare_strings);
  for (guint i = 0; i < n_names; i++)
    {
      const char *file = g_hash_table_lookup (weight_map, names[i]);
      guint si = GPOINTER_TO_UINT (g_hash_table_lookup (shard_index, file));
      CruSafetensors *st = m->shards->pdata[si];

      if (cru_safetensors_lookup (st, names[i]) == NULL)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                       _("%s names tensor “%s” in %s, but that file has no such tensor"), dn,
                       (const char *) names[i], file);
          return FALSE;
        }
      g_hash_table_insert (expected, g_strdup (names[i]), GUINT_TO_POINTER (si + 1));
    }
  return TRUE;
}

static int
compare_tensor_names (gconstpointer a, gconstpointer b)
{
  return strcmp (((const CruModelTensor *) a)->info->name, ((const CruModelTensor *) b)->info->name);
}

static CruArch
arch_from_names (CruModel *m)
{
  gboolean q_proj = FALSE, q_norm = FALSE, experts = FALSE, q_bias = FALSE;

  for (guint i = 0; i < m->tensors->len; i++)
    {
      const char *n = g_array_index (m->tensors, CruModelTensor, i).info->name;
      if (strstr (n, "block_sparse_moe"))
        return CRU_ARCH_MIXTRAL;
      if (strstr (n, "shared_expert"))
        return CRU_ARCH_QWEN2_MOE;
      if (strstr (n, "qkv_proj"))
        return CRU_ARCH_PHI3;
      if (strstr (n, "pre_feedforward_layernorm"))
        return CRU_ARCH_GEMMA2;
      q_proj |= strstr (n, "self_attn.q_proj.weight") != NULL;
      q_bias |= strstr (n, "self_attn.q_proj.bias") != NULL;
      q_norm |= strstr (n, "self_attn.q_norm") != NULL;
      experts |= strstr (n, "mlp.experts.") != NULL;
    }
  if (q_norm)
    return experts ? CRU_ARCH_QWEN3_MOE : CRU_ARCH_QWEN3;
  if (q_bias)
    return CRU_ARCH_QWEN2;
  if (q_proj)
    return CRU_ARCH_LLAMA;
  return CRU_ARCH_GENERIC;
}

static gboolean
collect_tensors (CruModel *m, GHashTable *expected, GError **error)
{
  for (guint s = 0; s < m->shards->len; s++)
    {
      CruSafetensors *st = m->shards->pdata[s];
      for (guint i = 0; i < cru_safetensors_get_n_tensors (st); i++)
        {
          CruModelTensor mt = { cru_safetensors_get_tensor (st, i), st, s, -1, CRU_ROLE_OTHER };
          if (expected)
            {
              guint want = GPOINTER_TO_UINT (g_hash_table_lookup (expected, mt.info->name));
              /* A tensor the index places in another shard: that copy is the one. */
              if (want != 0 && want != s + 1)
                continue;
            }
          if (g_hash_table_contains (m->by_name, mt.info->name))
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                           _("%s: tensor “%s” is stored in more than one file"), m->name,
                           mt.info->name);
              return FALSE;
            }
          g_hash_table_insert (m->by_name, mt.info->name, GUINT_TO_POINTER (1));
          g_array_append_val (m->tensors, mt);
        }
    }
  g_array_sort (m->tensors, compare_tensor_names);
  g_hash_table_remove_all (m->by_name);
  for (guint i = 0; i < m->tensors->len; i++)
    g_hash_table_insert (m->by_name, g_array_index (m->tensors, CruModelTensor, i).info->name,
                         GUINT_TO_POINTER (i + 1));
  return TRUE;
}

static void
compute_summary (CruModel *m)
{
  JsonNode *node;
  guint64 bytes_by_dtype[CRU_DTYPE_N] = { 0 };
  int max_layer = -1;
  const CruModelTensor *embed = NULL;
  gboolean has_lm_head = FALSE;

  if ((node = config_member (m->config, "model_type")) && node_is (node, G_TYPE_STRING))
    m->model_type = g_strdup (json_node_get_string (node));
  {
    const char *architecture = NULL;
    node = m->config ? json_object_get_member (m->config, "architectures") : NULL;
    if (node && JSON_NODE_HOLDS_ARRAY (node) && json_array_get_length (json_node_get_array (node)) > 0)
      {
        JsonNode *first = json_array_get_element (json_node_get_array (node), 0);
        if (node_is (first, G_TYPE_STRING))
          architecture = json_node_get_string (first);
      }
    m->arch = cru_arch_from_model_type (m->model_type, architecture);
  }
  if (m->arch == CRU_ARCH_GENERIC && m->model_type == NULL)
    m->arch = arch_from_names (m);

  for (guint i = 0; i < m->tensors->len; i++)
    {
      CruModelTensor *t = &g_array_index (m->tensors, CruModelTensor, i);
      cru_arch_classify (m->arch, t->info->name, &t->layer, &t->role);
      max_layer = MAX (max_layer, t->layer);
      m->n_params += t->info->numel;
      m->total_bytes += t->info->end - t->info->begin;
      bytes_by_dtype[t->info->dtype] += t->info->end - t->info->begin;
      if (t->role == CRU_ROLE_EMBEDDING && embed == NULL)
        embed = t;
      if (t->role == CRU_ROLE_LM_HEAD)
        has_lm_head = TRUE;
    }

  node = config_member (m->config, "num_hidden_layers");
  m->n_layers = node ? (int) json_node_get_int (node) : max_layer + 1;

  m->dtype = CRU_DTYPE_INVALID;
  node = config_member (m->config, "torch_dtype");
  if (node == NULL)
    node = config_member (m->config, "dtype");
  if (node)
    m->dtype = cru_dtype_from_user_string (json_node_get_string (node));
  if (m->dtype == CRU_DTYPE_INVALID)
    {
      guint64 best = 0;
      for (guint d = 1; d < CRU_DTYPE_N; d++)
        if (bytes_by_dtype[d] > best)
          {
            best = bytes_by_dtype[d];
            m->dtype = (CruDType) d;
          }
    }

  node = config_member (m->config, "tie_word_embeddings");
  m->tie_word_embeddings = (node && json_node_get_boolean (node)) || (!has_lm_head && embed);

  node = config_member (m->config, "vocab_size");
  m->vocab_size = node ? json_node_get_int (node) : (embed && embed->info->ndim == 2 ? embed->info->shape[0] : -1);
  node = config_member (m->config, "hidden_size");
  m->hidden_size = node ? json_node_get_int (node) : (embed && embed->info->ndim == 2 ? embed->info->shape[1] : -1);
}

static gboolean
open_folder (CruModel *m, GError **error)
{
  g_autofree char *config_path = g_build_filename (m->dir, "config.json", NULL);
  g_autofree char *index_path = g_build_filename (m->dir, "model.safetensors.index.json", NULL);
  g_autofree char *single_path = g_build_filename (m->dir, "model.safetensors", NULL);
  g_autofree char *config_dn = g_build_filename (m->name, "config.json", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GHashTable) expected = NULL;
  gsize len;
  int errsv = 0;

  if (!entry_exists (config_path, &errsv))
    {
      if (errsv == ENOENT)
        g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                     _("%s: config.json is missing (a Hugging Face model folder has one)"),
                     m->name);
      else
        g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("%s: cannot look inside the folder: %s"),
                     m->name, g_strerror (errsv));
      return FALSE;
    }
  if (!g_file_get_contents (config_path, &contents, &len, &local_error))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, "%s", local_error->message);
      return FALSE;
    }
  m->config = cru_config_parse (config_dn, contents, (gssize) len, error);
  if (m->config == NULL)
    return FALSE;

  if (entry_exists (index_path, &errsv))
    {
      expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      if (!load_index (m, index_path, expected, error))
        return FALSE;
    }
  else if (entry_exists (single_path, &errsv))
    {
      CruSafetensors *st = cru_safetensors_open (single_path, error);
      if (st == NULL)
        return FALSE;
      g_ptr_array_add (m->shards, st);
    }
  else
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                   _("%s: there is no model.safetensors or model.safetensors.index.json "
                     "(only safetensors weights can be read)"), m->name);
      return FALSE;
    }
  return collect_tensors (m, expected, error);
}

CruModel *
cru_model_open (const char *path, GError **error)
{
  g_autoptr(CruModel) m = model_new ();
  struct stat sb;

  g_return_val_if_fail (path != NULL, NULL);
  m->path = g_canonicalize_filename (path, NULL);
  /* For messages: valid UTF-8 whatever the file system's bytes. */
  m->name = g_filename_display_basename (m->path);

  if (stat (m->path, &sb) != 0 && errno != ENOENT && errno != ENOTDIR)
    {
      int errsv = errno;
      g_autofree char *shown = g_filename_display_name (path);

      if (errsv == ELOOP)
        g_set_error (error, CRU_ERROR, CRU_ERROR_IO,
                     _("%s: the path is a loop of symbolic links; point it at the model "
                       "folder itself"), shown);
      else
        g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("%s: cannot open: %s"), shown,
                     g_strerror (errsv));
      return NULL;
    }
  if (g_file_test (m->path, G_FILE_TEST_IS_DIR))
    {
      m->dir = g_strdup (m->path);
      if (!open_folder (m, error))
        return NULL;
    }
  else if (g_file_test (m->path, G_FILE_TEST_EXISTS))
    {
      CruSafetensors *st = cru_safetensors_open (m->path, error);
      if (st == NULL)
        return NULL;
      g_ptr_array_add (m->shards, st);
      if (!collect_tensors (m, NULL, error))
        return NULL;
    }
  else
    {
      g_autofree char *shown = g_filename_display_name (path);
      g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND, _("%s: no such file or folder"), shown);
      return NULL;
    }
  compute_summary (m);
  return g_steal_pointer (&m);
}

const char *cru_model_get_path (CruModel *m) { return m->path; }
const char *cru_model_get_name (CruModel *m) { return m->name; }
JsonObject *cru_model_get_config (CruModel *m) { return m->config; }
CruArch cru_model_get_arch (CruModel *m) { return m->arch; }
const char *cru_model_get_model_type (CruModel *m) { return m->model_type; }
int cru_model_get_n_layers (CruModel *m) { return m->n_layers; }
guint64 cru_model_get_n_params (CruModel *m) { return m->n_params; }
guint64 cru_model_get_total_bytes (CruModel *m) { return m->total_bytes; }
CruDType cru_model_get_dtype (CruModel *m) { return m->dtype; }
gboolean cru_model_get_tie_word_embeddings (CruModel *m) { return m->tie_word_embeddings; }
int64_t cru_model_get_vocab_size (CruModel *m) { return m->vocab_size; }
int64_t cru_model_get_hidden_size (CruModel *m) { return m->hidden_size; }
guint cru_model_get_n_tensors (CruModel *m) { return m->tensors->len; }
guint cru_model_get_n_shards (CruModel *m) { return m->shards->len; }

const CruModelTensor *
cru_model_get_tensor (CruModel *m, guint index)
{
  g_return_val_if_fail (index < m->tensors->len, NULL);
  return &g_array_index (m->tensors, CruModelTensor, index);
}

const CruModelTensor *
cru_model_lookup (CruModel *m, const char *name)
{
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (m->by_name, name));

  return i ? &g_array_index (m->tensors, CruModelTensor, i - 1) : NULL;
}

CruSafetensors *
cru_model_get_shard (CruModel *m, guint index)
{
  g_return_val_if_fail (index < m->shards->len, NULL);
  return m->shards->pdata[index];
}

char *
cru_model_get_file (CruModel *m, const char *filename)
{
  g_autofree char *path = NULL;

  if (m->dir == NULL || strchr (filename, '/') != NULL)
    return NULL;
  path = g_build_filename (m->dir, filename, NULL);
  return g_file_test (path, G_FILE_TEST_IS_REGULAR) ? g_steal_pointer (&path) : NULL;
}

GStrv
cru_model_get_tokenizer_files (CruModel *m)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (guint i = 0; i < G_N_ELEMENTS (tokenizer_files); i++)
    {
      g_autofree char *p = cru_model_get_file (m, tokenizer_files[i]);
      if (p)
        g_strv_builder_add (b, tokenizer_files[i]);
    }
  return g_strv_builder_end (b);
}

gboolean
cru_model_read_f32 (CruModel *m, const CruModelTensor *t, guint64 elem_offset, guint64 n,
                    float *dst, GError **error)
{
  return cru_safetensors_read_f32 (t->shard, t->info, elem_offset, n, dst, error);
}
