/* io-test-util.h — helpers shared by the io tests
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-error.h"
#include "cru-model.h"
#include "cru-safetensors.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* Removes a folder tree made by a test. */
static inline void
util_rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);
        if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
          util_rm_rf (child);
        else
          g_unlink (child);
      }
  g_rmdir (path);
}

/* A fresh folder under @base (NULL: the system temp folder). */
static inline char *
util_make_tmp (const char *base)
{
  char *tmpl = g_build_filename (base ? base : g_get_tmp_dir (), "cru-io-test-XXXXXX", NULL);
  char *dir = g_mkdtemp (tmpl);
  g_assert_nonnull (dir);
  return dir;
}

/* Writes a safetensors file: 8-byte length of @header, @header, then @data. */
static inline void
util_write_st (const char *path, const char *header, gssize header_len, const void *data,
               gsize data_len)
{
  g_autoptr(GByteArray) b = g_byte_array_new ();
  guint64 len = header_len < 0 ? strlen (header) : (gsize) header_len;
  guint64 le = GUINT64_TO_LE (len);

  g_byte_array_append (b, (const guint8 *) &le, 8);
  g_byte_array_append (b, (const guint8 *) header, (guint) len);
  if (data_len)
    g_byte_array_append (b, data, (guint) data_len);
  g_assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
}

static inline void
util_write_text (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* Asserts @error has @code and its message contains every one of the NULL-terminated strings. */
static inline void
util_assert_error (const GError *error, int code, ...)
{
  va_list ap;
  const char *s;

  g_assert_nonnull (error);
  g_test_message ("error: %s", error->message);
  g_assert_true (error->domain == CRU_ERROR);
  g_assert_cmpint (error->code, ==, code);
  va_start (ap, code);
  while ((s = va_arg (ap, const char *)) != NULL)
    if (strstr (error->message, s) == NULL)
      g_error ("the message “%s” does not contain “%s”", error->message, s);
  va_end (ap);
}

static inline const char *
util_demo_dir (void)
{
  const char *d = g_getenv ("CRU_DEMO_DIR");
  return d && g_file_test (d, G_FILE_TEST_IS_DIR) ? d : NULL;
}
