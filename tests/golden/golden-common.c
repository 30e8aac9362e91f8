/* golden-common.c — manifest, running crucible-cli, reading outputs
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "golden-common.h"

#include <glib/gstdio.h>
#include <string.h>

static char *dir;
static JsonParser *manifest;

const char *
golden_dir (void)
{
  if (dir == NULL)
    {
      const char *src = g_getenv ("CRU_SOURCE_DIR");
      dir = src ? g_build_filename (src, "tests", "golden", NULL)
                : g_test_build_filename (G_TEST_DIST, ".", NULL);
    }
  return dir;
}

static char *
dup_member (JsonObject *o, const char *name)
{
  if (!json_object_has_member (o, name) || json_object_get_null_member (o, name))
    return NULL;
  return g_strdup (json_object_get_string_member (o, name));
}

static void
golden_case_free (gpointer p)
{
  GoldenCase *c = p;

  g_free (c->name);
  g_free (c->config);
  g_free (c->source);
  g_free (c->check);
  g_free (c->expected);
  g_free (c->error);
  g_free (c);
}

GPtrArray *
golden_load_cases (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (golden_dir (), "cases.json", NULL);
  GPtrArray *cases = g_ptr_array_new_with_free_func (golden_case_free);

  manifest = json_parser_new ();
  if (!json_parser_load_from_file (manifest, path, &error))
    g_error ("cannot read the golden manifest %s: %s", path, error->message);
  JsonObject *root = json_node_get_object (json_parser_get_root (manifest));
  JsonArray *arr = json_object_get_array_member (root, "cases");
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *o = json_array_get_object_element (arr, i);
      GoldenCase *c = g_new0 (GoldenCase, 1);
      c->name = dup_member (o, "name");
      c->config = dup_member (o, "config");
      c->source = dup_member (o, "source");
      c->check = dup_member (o, "check");
      c->expected = dup_member (o, "expected");
      c->error = dup_member (o, "error");
      c->seed = json_object_has_member (o, "seed") && !json_object_get_null_member (o, "seed")
                ? json_object_get_int_member (o, "seed") : -1;
      c->random = json_object_has_member (o, "random")
                  ? json_object_get_object_member (o, "random") : NULL;
      g_ptr_array_add (cases, c);
    }
  return cases;
}

void
golden_rm_rf (const char *path)
{
  if (path == NULL)
    return;
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      GDir *d = g_dir_open (path, 0, NULL);
      const char *n;
      while (d && (n = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *p = g_build_filename (path, n, NULL);
          golden_rm_rf (p);
        }
      if (d)
        g_dir_close (d);
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

CruModel *
golden_merge (const GoldenCase *c, int threads, gint64 seed, char **tmp_out)
{
  g_autoptr(GError) error = NULL;
  const char *cli = g_getenv ("CRU_CLI");
  g_autofree char *config = g_build_filename (golden_dir (), "configs", c->config, NULL);
  g_autofree char *th = g_strdup_printf ("%d", threads);
  g_autofree char *sd = g_strdup_printf ("%" G_GINT64_FORMAT, seed);
  g_autofree char *out_std = NULL, *err_std = NULL;
  int status = 0;

  *tmp_out = NULL;
  if (cli == NULL)
    {
      g_test_fail_printf ("CRU_CLI is not set (run through meson test)");
      return NULL;
    }
  char *tmp = g_dir_make_tmp ("crucible-golden-XXXXXX", &error);
  g_assert_no_error (error);
  *tmp_out = tmp;
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  const char *argv[] = { cli, "merge", config, out, "--threads", th,
                         seed >= 0 ? "--seed" : NULL, sd, NULL };
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                     &out_std, &err_std, &status, &error))
    {
      g_test_fail_printf ("cannot run %s: %s", cli, error->message);
      return NULL;
    }
  if (!g_spawn_check_wait_status (status, &error))
    {
      /* "not implemented" fails too: the reference exists, the engine must produce it. */
      g_test_fail_printf ("crucible-cli merge %s --threads %d failed (%s):\n%s%s", c->config,
                          threads, error->message, out_std, err_std);
      return NULL;
    }
  CruModel *m = cru_model_open (out, &error);
  if (m == NULL)
    g_test_fail_printf ("cannot open the output of %s: %s", c->config, error->message);
  return m;
}

static int
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

GBytes *
golden_output_bytes (const char *tmp)
{
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GByteArray *all = g_byte_array_new ();
  GDir *d = g_dir_open (out, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (n, ".safetensors"))
      g_ptr_array_add (names, g_strdup (n));
  if (d)
    g_dir_close (d);
  g_ptr_array_sort (names, cmp_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *p = g_build_filename (out, g_ptr_array_index (names, i), NULL);
      g_autofree char *data = NULL;
      gsize len = 0;
      if (g_file_get_contents (p, &data, &len, NULL))
        g_byte_array_append (all, (const guint8 *) data, len);
    }
  return g_byte_array_free_to_bytes (all);
}

CruModel *
golden_open_model (const char *relpath)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *p = g_build_filename (golden_dir (), "configs", relpath, NULL);
  g_autofree char *canon = g_canonicalize_filename (p, NULL);
  CruModel *m = cru_model_open (canon, &error);
  g_assert_no_error (error);
  return m;
}

float *
golden_read (CruModel *m, const CruModelTensor *t)
{
  g_autoptr(GError) error = NULL;
  float *v = g_new (float, MAX (t->info->numel, 1));
  cru_model_read_f32 (m, t, 0, t->info->numel, v, &error);
  g_assert_no_error (error);
  return v;
}

float *
golden_read_st (CruSafetensors *st, const CruTensorInfo *t)
{
  g_autoptr(GError) error = NULL;
  float *v = g_new (float, MAX (t->numel, 1));
  cru_safetensors_read_f32 (st, t, 0, t->numel, v, &error);
  g_assert_no_error (error);
  return v;
}

gboolean
golden_same_shape (const CruTensorInfo *a, int ndim, const int64_t *shape)
{
  if (a->ndim != ndim)
    return FALSE;
  for (int d = 0; d < ndim; d++)
    if (a->shape[d] != shape[d])
      return FALSE;
  return TRUE;
}

const char *
golden_shape_str (int ndim, const int64_t *shape)
{
  static char buf[4][128];
  static int k;
  char *b = buf[k++ & 3];
  GString *s = g_string_new ("[");
  for (int d = 0; d < ndim; d++)
    g_string_append_printf (s, d ? ",%" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, shape[d]);
  g_string_append_c (s, ']');
  g_strlcpy (b, s->str, 128);
  g_string_free (s, TRUE);
  return b;
}
