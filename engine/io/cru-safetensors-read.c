/* cru-safetensors-read.c — validated safetensors headers and pread of tensor data
 *
 * Validation follows the reference implementation (huggingface/safetensors) and adds checks
 * it lacks: UTF-8, duplicate names, overflow in shape products, exact end of file.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-safetensors-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _CruSafetensors
{
  char          *path;
  char          *display_name;
  int            fd;
  guint64        file_size;
  guint64        data_offset;
  GPtrArray     *tensors;     /* CruTensorInfo*, sorted by name */
  GHashTable    *by_name;     /* name → CruTensorInfo* */
  GHashTable    *metadata;
  struct stat    opened;      /* the file when it was opened */
};

char *
_cru_display_name (const char *path)
{
  g_autofree char *base = g_filename_display_basename (path);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *parent = g_filename_display_basename (dir);

  if (strcmp (dir, ".") == 0 || strcmp (parent, "/") == 0 || strcmp (parent, ".") == 0)
    return g_steal_pointer (&base);
  return g_build_filename (parent, base, NULL);
}

void
_cru_set_errno_error (GError **error, int errsv, const char *what_failed,
                      const char *display_name, const char *dir)
{
  if (errsv == ENOSPC || errsv == EDQUOT)
    g_set_error (error, CRU_ERROR, CRU_ERROR_NO_SPACE, _("Not enough space in %s: %s %s: %s"),
                 dir ? dir : display_name, what_failed, display_name, g_strerror (errsv));
  else
    g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("%s: %s failed: %s"), display_name,
                 what_failed, g_strerror (errsv));
}

char *
_cru_format_shape (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static void
tensor_info_free (gpointer p)
{
  CruTensorInfo *t = p;

  g_free (t->name);
  g_free (t);
}

void
cru_safetensors_free (CruSafetensors *st)
{
  if (st == NULL)
    return;
  if (st->fd >= 0)
    close (st->fd);
  g_clear_pointer (&st->by_name, g_hash_table_unref);
  g_clear_pointer (&st->tensors, g_ptr_array_unref);
  g_clear_pointer (&st->metadata, g_hash_table_unref);
  g_free (st->path);
  g_free (st->display_name);
  g_free (st);
}

/* json-glib keeps the last of duplicated members silently; watch the parser to catch them. */
typedef struct
{
  GHashTable *names_by_object;  /* JsonObject* → set of member names */
  char       *duplicate;
} DupCheck;

static void
on_object_member (JsonParser *parser, JsonObject *object, const char *name, DupCheck *dc)
{
  GHashTable *names = g_hash_table_lookup (dc->names_by_object, object);

  if (names == NULL)
    {
      names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (dc->names_by_object, object, names);
    }
  if (!g_hash_table_add (names, g_strdup (name)) && dc->duplicate == NULL)
    dc->duplicate = g_strdup (name);
}

static void
on_object_end (JsonParser *parser, JsonObject *object, DupCheck *dc)
{
  /* The object may be freed (a replaced duplicate) and its address reused. */
  g_hash_table_remove (dc->names_by_object, object);
}

static int
compare_by_begin (gconstpointer a, gconstpointer b)
{
  const CruTensorInfo *x = *(CruTensorInfo * const *) a;
  const CruTensorInfo *y = *(CruTensorInfo * const *) b;

  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return strcmp (x->name, y->name);
}

static int
compare_by_name (gconstpointer a, gconstpointer b)
{
  const CruTensorInfo *x = *(CruTensorInfo * const *) a;
  const CruTensorInfo *y = *(CruTensorInfo * const *) b;

  return strcmp (x->name, y->name);
}

static gboolean
get_uint (JsonNode *node, guint64 *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (guint64) v;
  return TRUE;
}

static gboolean
parse_tensor (CruSafetensors *st, const char *name, JsonNode *node, CruTensorInfo **out,
              GError **error)
{
  const char *dn = st->display_name;
  g_autoptr(GList) members = NULL;
  JsonObject *obj;
  JsonNode *dtype_node, *shape_node, *offsets_node;
  JsonArray *shape, *offsets;
  CruTensorInfo *t;
  guint64 bytes;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” is not described by a JSON object"), dn, name);
      return FALSE;
    }
  obj = json_node_get_object (node);
  dtype_node = json_object_get_member (obj, "dtype");
  shape_node = json_object_get_member (obj, "shape");
  offsets_node = json_object_get_member (obj, "data_offsets");
  if (dtype_node == NULL || shape_node == NULL || offsets_node == NULL)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” lacks “%s”"), dn, name,
                   dtype_node == NULL ? "dtype" : shape_node == NULL ? "shape" : "data_offsets");
      return FALSE;
    }
  members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "dtype") != 0 && strcmp (l->data, "shape") != 0
        && strcmp (l->data, "data_offsets") != 0)
      {
        g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                     _("%s: tensor “%s” has an unknown field “%s”"), dn, name,
                     (const char *) l->data);
        return FALSE;
      }
  if (!JSON_NODE_HOLDS_VALUE (dtype_node) || json_node_get_value_type (dtype_node) != G_TYPE_STRING)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has a dtype that is not a string"), dn, name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (shape_node))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has a shape that is not a list of sizes"), dn, name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (offsets_node)
      || json_array_get_length (json_node_get_array (offsets_node)) != 2)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has data_offsets that are not a pair [begin, end]"),
                   dn, name);
      return FALSE;
    }

  t = g_new0 (CruTensorInfo, 1);
  t->name = g_strdup (name);
  *out = t;

  t->dtype = cru_dtype_from_string (json_node_get_string (dtype_node));
  if (t->dtype == CRU_DTYPE_INVALID)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("%s: tensor “%s” has the unknown dtype “%s”"), dn, name,
                   json_node_get_string (dtype_node));
      return FALSE;
    }

  shape = json_node_get_array (shape_node);
  if (json_array_get_length (shape) > CRU_MAX_DIMS)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("%s: tensor “%s” has %u dimensions (at most %d are supported)"), dn, name,
                   json_array_get_length (shape), CRU_MAX_DIMS);
      return FALSE;
    }
  t->ndim = (int) json_array_get_length (shape);
  t->numel = 1;
  for (int i = 0; i < t->ndim; i++)
    {
      guint64 d;
      if (!get_uint (json_array_get_element (shape, i), &d) || d > G_MAXINT64)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: tensor “%s” has a shape entry that is not a non-negative integer"),
                       dn, name);
          return FALSE;
        }
      t->shape[i] = (int64_t) d;
      if (d != 0 && t->numel > G_MAXUINT64 / d)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: tensor “%s” has a shape whose element count overflows"), dn, name);
          return FALSE;
        }
      t->numel *= d;
    }

  offsets = json_node_get_array (offsets_node);
  if (!get_uint (json_array_get_element (offsets, 0), &t->begin)
      || !get_uint (json_array_get_element (offsets, 1), &t->end))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has data_offsets that are not non-negative integers"),
                   dn, name);
      return FALSE;
    }
  if (t->end < t->begin)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has data_offsets [%" PRIu64 ", %" PRIu64
                     "] that end before they begin"), dn, name, t->begin, t->end);
      return FALSE;
    }
  if (t->numel > G_MAXUINT64 / cru_dtype_size (t->dtype))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has a shape whose byte size overflows"), dn, name);
      return FALSE;
    }
  bytes = t->numel * cru_dtype_size (t->dtype);
  if (bytes != t->end - t->begin)
    {
      g_autofree char *shape_str = _cru_format_shape (t->ndim, t->shape);
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: tensor “%s” has data_offsets [%" PRIu64 ", %" PRIu64
                     "] but dtype %s and shape %s need %" PRIu64 " bytes"),
                   dn, name, t->begin, t->end, cru_dtype_to_string (t->dtype), shape_str, bytes);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_metadata (CruSafetensors *st, JsonNode *node, GError **error)
{
  JsonObject *obj;
  g_autoptr(GList) members = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “__metadata__” is not a JSON object"), st->display_name);
      return FALSE;
    }
  obj = json_node_get_object (node);
  members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (obj, l->data);
      if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: “__metadata__” entry “%s” is not a string"), st->display_name,
                       (const char *) l->data);
          return FALSE;
        }
      g_hash_table_insert (st->metadata, g_strdup (l->data), g_strdup (json_node_get_string (v)));
    }
  return TRUE;
}

static CruSafetensors *
safetensors_new (const char *display_name)
{
  CruSafetensors *st = g_new0 (CruSafetensors, 1);

  st->fd = -1;
  st->display_name = g_strdup (display_name);
  st->tensors = g_ptr_array_new_with_free_func (tensor_info_free);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return st;
}

static gboolean
parse_json (CruSafetensors *st, const guint8 *json, gsize len, GError **error)
{
  const char *dn = st->display_name;
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GList) members = NULL;
  g_autoptr(GPtrArray) by_begin = NULL;
  DupCheck dc = { g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_hash_table_unref), NULL };
  JsonNode *root;
  JsonObject *obj;
  gboolean ok;
  guint64 expected_begin = 0;
  gsize len_trimmed = len;

  if (!g_utf8_validate_len ((const char *) json, len, NULL))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header is not valid UTF-8 text"), dn);
      g_hash_table_unref (dc.names_by_object);
      return FALSE;
    }
  /* Writers pad the header with spaces; json-glib wants no trailing junk but allows spaces. */
  while (len_trimmed > 0 && json[len_trimmed - 1] == ' ')
    len_trimmed--;
  if (len_trimmed == 0 || json[0] != '{')
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header is not a JSON object (it should start with “{”)"), dn);
      g_hash_table_unref (dc.names_by_object);
      return FALSE;
    }

  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &dc);
  g_signal_connect (parser, "object-end", G_CALLBACK (on_object_end), &dc);
  ok = json_parser_load_from_data (parser, (const char *) json, (gssize) len_trimmed, &local_error);
  g_hash_table_unref (dc.names_by_object);
  if (!ok)
    {
      g_free (dc.duplicate);
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header is not valid JSON: %s"), dn, local_error->message);
      return FALSE;
    }
  if (dc.duplicate)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header names “%s” more than once"), dn, dc.duplicate);
      g_free (dc.duplicate);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header is not a JSON object"), dn);
      return FALSE;
    }
  obj = json_node_get_object (root);
  members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (obj, name);
      CruTensorInfo *t = NULL;

      if (strcmp (name, "__metadata__") == 0)
        {
          if (!parse_metadata (st, node, error))
            return FALSE;
          continue;
        }
      if (!parse_tensor (st, name, node, &t, error))
        {
          if (t)
            tensor_info_free (t);
          return FALSE;
        }
      g_ptr_array_add (st->tensors, t);
      g_hash_table_insert (st->by_name, t->name, t);
    }

  /* The data must be tiled exactly: sorted by offset, each tensor begins where the previous
   * ended, the first at 0, the last at the end of the file. */
  by_begin = g_ptr_array_copy (st->tensors, NULL, NULL);
  g_ptr_array_set_free_func (by_begin, NULL);   /* the copy would free the tensors too */
  g_ptr_array_sort (by_begin, compare_by_begin);
  for (guint i = 0; i < by_begin->len; i++)
    {
      const CruTensorInfo *t = by_begin->pdata[i];
      const CruTensorInfo *prev = i ? by_begin->pdata[i - 1] : NULL;

      if (t->begin > expected_begin)
        {
          if (prev)
            g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                         _("%s: there is a gap of %" PRIu64 " bytes between tensor “%s” "
                           "(ends at %" PRIu64 ") and tensor “%s” (begins at %"
                           PRIu64 ")"), dn, t->begin - expected_begin, prev->name,
                         prev->end, t->name, t->begin);
          else
            g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                         _("%s: there is a gap of %" PRIu64 " bytes before the first "
                           "tensor “%s”"), dn, t->begin, t->name);
          return FALSE;
        }
      if (t->begin < expected_begin)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: tensors “%s” and “%s” overlap (data_offsets [%" PRIu64
                         ", %" PRIu64 "] and [%" PRIu64 ", %"
                         PRIu64 "])"), dn, prev->name, t->name, prev->begin,
                       prev->end, t->begin, t->end);
          return FALSE;
        }
      expected_begin = t->end;
    }
  if (st->data_offset > st->file_size || expected_begin > st->file_size - st->data_offset)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the tensors need %" PRIu64 " bytes of data but the file holds "
                     "only %" PRIu64 " (the file is truncated; download it again)"),
                   dn, expected_begin,
                   st->file_size - MIN (st->data_offset, st->file_size));
      return FALSE;
    }
  if (expected_begin < st->file_size - st->data_offset)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the file has %" PRIu64 " bytes after the last tensor's data"),
                   dn, st->file_size - st->data_offset - expected_begin);
      return FALSE;
    }
  g_ptr_array_sort (st->tensors, compare_by_name);
  return TRUE;
}

/* Checks the 8-byte length prefix against the file size. */
static gboolean
check_header_length (const char *dn, guint64 header_len, guint64 file_size, GError **error)
{
  if (header_len > CRU_SAFETENSORS_MAX_HEADER)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header claims %" PRIu64 " bytes, more than the %u bytes "
                     "allowed (this is not a safetensors file, or it is damaged)"), dn,
                   header_len, CRU_SAFETENSORS_MAX_HEADER);
      return FALSE;
    }
  if (header_len > file_size - 8)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header claims %" PRIu64 " bytes but the file has only %"
                     PRIu64 " after the length (the file is truncated; download it "
                     "again)"), dn,
                   header_len, file_size - 8);
      return FALSE;
    }
  return TRUE;
}

CruSafetensors *
cru_safetensors_parse_header (const char *display_name, const guint8 *bytes, gsize n_bytes,
                              guint64 file_size, GError **error)
{
  g_autoptr(CruSafetensors) st = safetensors_new (display_name);
  guint64 header_len;

  g_return_val_if_fail (display_name != NULL, NULL);
  if (n_bytes < 8 || file_size < 8)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the file is too short to be a safetensors file (%" PRIu64
                     " bytes)"), display_name, MIN ((guint64) n_bytes, file_size));
      return NULL;
    }
  memcpy (&header_len, bytes, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (!check_header_length (display_name, header_len, file_size, error))
    return NULL;
  if (header_len > n_bytes - 8)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header is truncated"), display_name);
      return NULL;
    }
  st->file_size = file_size;
  st->data_offset = 8 + header_len;
  if (!parse_json (st, bytes + 8, header_len, error))
    return NULL;
  return g_steal_pointer (&st);
}

static gboolean
pread_all (int fd, void *buf, gsize n, guint64 offset, gsize *n_read)
{
  gsize done = 0;

  while (done < n)
    {
      ssize_t r = pread (fd, (char *) buf + done, n - done, (off_t) (offset + done));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          *n_read = done;
          return FALSE;
        }
      if (r == 0)
        break;
      done += (gsize) r;
    }
  *n_read = done;
  return TRUE;
}

CruSafetensors *
cru_safetensors_open (const char *path, GError **error)
{
  g_autofree char *dn = _cru_display_name (path);
  g_autoptr(CruSafetensors) st = NULL;
  g_autofree guint8 *header = NULL;
  struct stat sb;
  guint8 prefix[8];
  guint64 header_len;
  gsize n_read;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, CRU_ERROR, errsv == ENOENT ? CRU_ERROR_NOT_FOUND : CRU_ERROR_IO,
                   _("%s: cannot open: %s"), dn, g_strerror (errsv));
      return NULL;
    }
  st = safetensors_new (dn);
  st->fd = fd;
  st->path = g_canonicalize_filename (path, NULL);
  if (fstat (fd, &sb) != 0 || !S_ISREG (sb.st_mode))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE, _("%s: is not a regular file"), dn);
      return NULL;
    }
  st->file_size = (guint64) sb.st_size;
  st->opened = sb;
  if (st->file_size < 8)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   st->file_size == 0
                     ? _("%s: the file is empty (an interrupted download?); download it again")
                     : _("%s: the file is too short to be a safetensors file (an interrupted "
                         "download?); download it again"),
                   dn);
      return NULL;
    }
  if (!pread_all (fd, prefix, 8, 0, &n_read) || n_read != 8)
    {
      _cru_set_errno_error (error, errno, _("reading"), dn, NULL);
      return NULL;
    }
  memcpy (&header_len, prefix, 8);
  header_len = GUINT64_FROM_LE (header_len);
  if (!check_header_length (dn, header_len, st->file_size, error))
    return NULL;
  header = g_malloc (header_len ? header_len : 1);
  if (!pread_all (fd, header, header_len, 8, &n_read))
    {
      _cru_set_errno_error (error, errno, _("reading the header of"), dn, NULL);
      return NULL;
    }
  if (n_read != header_len)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: the header is truncated (the file changed while being read?)"), dn);
      return NULL;
    }
  st->data_offset = 8 + header_len;
  if (!parse_json (st, header, header_len, error))
    return NULL;
  return g_steal_pointer (&st);
}

const char *
cru_safetensors_get_path (CruSafetensors *st)
{
  return st->path ? st->path : st->display_name;
}

guint64 cru_safetensors_get_file_size (CruSafetensors *st) { return st->file_size; }
guint64 cru_safetensors_get_data_offset (CruSafetensors *st) { return st->data_offset; }
guint cru_safetensors_get_n_tensors (CruSafetensors *st) { return st->tensors->len; }
GHashTable *cru_safetensors_get_metadata (CruSafetensors *st) { return st->metadata; }

const char *
_cru_safetensors_get_display_name (CruSafetensors *st)
{
  return st->display_name;
}

const CruTensorInfo *
cru_safetensors_get_tensor (CruSafetensors *st, guint index)
{
  g_return_val_if_fail (index < st->tensors->len, NULL);
  return st->tensors->pdata[index];
}

const CruTensorInfo *
cru_safetensors_lookup (CruSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->by_name, name);
}

gboolean
cru_safetensors_read_raw (CruSafetensors *st, const CruTensorInfo *t, guint64 byte_offset,
                          void *dst, gsize n_bytes, GError **error)
{
  gsize n_read = 0;

  if (st->fd < 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("%s: only the header was parsed; there is no data to read"), st->display_name);
      return FALSE;
    }
  if (byte_offset > t->end - t->begin || n_bytes > t->end - t->begin - byte_offset)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("%s: read past the end of tensor “%s”"), st->display_name, t->name);
      return FALSE;
    }
  if (!pread_all (st->fd, dst, n_bytes, st->data_offset + t->begin + byte_offset, &n_read))
    {
      int errsv = errno;
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("%s: reading tensor “%s” failed: %s"),
                   st->display_name, t->name, g_strerror (errsv));
      return FALSE;
    }
  if (n_read != n_bytes)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO,
                   _("%s: tensor “%s” ends early: the file is shorter than when it was opened "
                     "(was it changed on disk?)"), st->display_name, t->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
cru_safetensors_read_f32 (CruSafetensors *st, const CruTensorInfo *t, guint64 elem_offset,
                          guint64 n, float *dst, GError **error)
{
  gsize size = cru_dtype_size (t->dtype);

  if (elem_offset > t->numel || n > t->numel - elem_offset)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("%s: read past the end of tensor “%s”"), st->display_name, t->name);
      return FALSE;
    }
  if (size <= 4)
    {
      /* Read into the tail of @dst and widen forward in place. */
      guint8 *tail = (guint8 *) dst + n * (4 - size);
      if (!cru_safetensors_read_raw (st, t, elem_offset * size, tail, n * size, error))
        return FALSE;
      cru_convert_to_f32 (t->dtype, tail, dst, n);
      return TRUE;
    }

  /* 8-byte elements do not fit: go through a small stack buffer. */
  {
    guint64 chunk[512];
    for (guint64 done = 0; done < n;)
      {
        gsize m = (gsize) MIN (n - done, G_N_ELEMENTS (chunk));
        if (!cru_safetensors_read_raw (st, t, (elem_offset + done) * size, chunk, m * size, error))
          return FALSE;
        cru_convert_to_f32 (t->dtype, chunk, dst + done, m);
        done += m;
      }
  }
  return TRUE;
}

void
cru_safetensors_prefetch (CruSafetensors *st, const CruTensorInfo *t)
{
#ifdef POSIX_FADV_WILLNEED
  if (st->fd >= 0 && t->end > t->begin)
    posix_fadvise (st->fd, (off_t) (st->data_offset + t->begin), (off_t) (t->end - t->begin),
                   POSIX_FADV_WILLNEED);
#endif
}

gboolean
cru_safetensors_check_unchanged (CruSafetensors *st, GError **error)
{
  struct stat now;

  if (st->fd < 0)
    return TRUE;
  if (fstat (st->fd, &now) != 0 || now.st_size != st->opened.st_size
      || now.st_mtim.tv_sec != st->opened.st_mtim.tv_sec
      || now.st_mtim.tv_nsec != st->opened.st_mtim.tv_nsec)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO,
                   _("%s was changed on disk while it was being read, so the result would mix "
                     "old and new weights; nothing was written. Run again once the file is "
                     "complete."), st->display_name);
      return FALSE;
    }
  if (st->path != NULL
      && (stat (st->path, &now) != 0 || now.st_ino != st->opened.st_ino
          || now.st_dev != st->opened.st_dev))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO,
                   _("%s was replaced or removed while it was being read; nothing was written. "
                     "Run again once the model folder is complete."), st->display_name);
      return FALSE;
    }
  return TRUE;
}
