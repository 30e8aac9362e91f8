/* cru-outdir.c — output folders that appear only when complete
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-safetensors-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TMP_INFIX ".crucible-tmp-"
#define OLD_INFIX ".crucible-old-"

struct _CruOutputDir
{
  char    *target;
  char    *tmp_path;
  gboolean overwrite;
  gboolean done;
};

static gboolean
remove_recursive (const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileEnumerator) e = NULL;
  GFileType type = g_file_query_file_type (file, G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL);

  if (type == G_FILE_TYPE_DIRECTORY)
    {
      e = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                     G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
      while (e)
        {
          GFileInfo *info = NULL;
          if (!g_file_enumerator_iterate (e, &info, NULL, NULL, NULL) || info == NULL)
            break;
          g_autofree char *child = g_build_filename (path, g_file_info_get_name (info), NULL);
          remove_recursive (child);
        }
    }
  return g_remove (path) == 0;
}

CruOutputDir *
cru_output_dir_begin (const char *target, gboolean overwrite, GError **error)
{
  g_autofree char *abs = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *base = NULL;
  g_autofree char *tmpl = NULL;
  CruOutputDir *od;

  g_return_val_if_fail (target != NULL && *target != '\0', NULL);
  abs = g_canonicalize_filename (target, NULL);
  parent = g_path_get_dirname (abs);
  base = g_path_get_basename (abs);

  if (g_file_test (abs, G_FILE_TEST_EXISTS))
    {
      if (!overwrite)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_EXISTS,
                       _("%s already exists. Choose another output folder, or allow "
                         "overwriting it."), abs);
          return NULL;
        }
      if (!g_file_test (abs, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_EXISTS,
                       _("%s exists and is not a folder; it will not be replaced."), abs);
          return NULL;
        }
    }
  if (g_mkdir_with_parents (parent, 0755) != 0)
    {
      int errsv = errno;
      _cru_set_errno_error (error, errsv, _("creating the folder"), parent, parent);
      return NULL;
    }
  tmpl = g_strdup_printf ("%s/.%s" TMP_INFIX "XXXXXX", parent, base);
  if (g_mkdtemp_full (tmpl, 0755) == NULL)
    {
      int errsv = errno;
      if (errsv == ENOSPC || errsv == EDQUOT)
        _cru_set_errno_error (error, errsv, _("creating a temporary folder"), tmpl, parent);
      else
        g_set_error (error, CRU_ERROR, CRU_ERROR_IO,
                     _("Cannot create a temporary folder in %s: %s"), parent, g_strerror (errsv));
      return NULL;
    }
  od = g_new0 (CruOutputDir, 1);
  od->target = g_steal_pointer (&abs);
  od->tmp_path = g_steal_pointer (&tmpl);
  od->overwrite = overwrite;
  return od;
}

const char *cru_output_dir_get_tmp_path (CruOutputDir *od) { return od->tmp_path; }
const char *cru_output_dir_get_target (CruOutputDir *od) { return od->target; }

static int
rename_noreplace (const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
  if (renameat2 (AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS)
    return -1;
#endif
  /* rename() would replace an empty folder: check first (racy, but only a fallback). */
  if (g_file_test (to, G_FILE_TEST_EXISTS))
    {
      errno = EEXIST;
      return -1;
    }
  return rename (from, to);
}

gboolean
cru_output_dir_commit (CruOutputDir *od, GError **error)
{
  g_autofree char *old = NULL;

  g_return_val_if_fail (!od->done, FALSE);
  if (g_file_test (od->target, G_FILE_TEST_EXISTS))
    {
      g_autofree char *parent = g_path_get_dirname (od->target);
      g_autofree char *base = g_path_get_basename (od->target);

      if (!od->overwrite)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_EXISTS,
                       _("%s appeared while the model was being written; it was not replaced. "
                         "The result is in %s."), od->target, od->tmp_path);
          return FALSE;
        }
      /* Move the old one aside; delete it only once the new one is in place. */
      old = g_strdup_printf ("%s/.%s" OLD_INFIX "XXXXXX", parent, base);
      if (g_mkdtemp_full (old, 0700) == NULL || g_rmdir (old) != 0
          || rename (od->target, old) != 0)
        {
          int errsv = errno;
          g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("Cannot move %s aside to replace it: %s"),
                       od->target, g_strerror (errsv));
          return FALSE;
        }
    }
  if (rename_noreplace (od->tmp_path, od->target) != 0)
    {
      int errsv = errno;
      if (old)
        rename (old, od->target);
      g_set_error (error, CRU_ERROR, errsv == EEXIST ? CRU_ERROR_EXISTS : CRU_ERROR_IO,
                   _("Cannot move the finished model into %s: %s"), od->target,
                   g_strerror (errsv));
      return FALSE;
    }
  if (old)
    remove_recursive (old);
  od->done = TRUE;
  return TRUE;
}

void
cru_output_dir_abort (CruOutputDir *od)
{
  if (od == NULL || od->done)
    return;
  remove_recursive (od->tmp_path);
  od->done = TRUE;
}

void
cru_output_dir_free (CruOutputDir *od)
{
  if (od == NULL)
    return;
  cru_output_dir_abort (od);
  g_free (od->target);
  g_free (od->tmp_path);
  g_free (od);
}

guint
cru_output_dir_clean_stale (const char *target)
{
  g_autofree char *abs = g_canonicalize_filename (target, NULL);
  g_autofree char *parent = g_path_get_dirname (abs);
  g_autofree char *base = g_path_get_basename (abs);
  g_autofree char *tmp_prefix = g_strdup_printf (".%s" TMP_INFIX, base);
  g_autofree char *old_prefix = g_strdup_printf (".%s" OLD_INFIX, base);
  g_autoptr(GDir) dir = g_dir_open (parent, 0, NULL);
  g_autoptr(GPtrArray) victims = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  guint n = 0;

  if (dir == NULL)
    return 0;
  while ((name = g_dir_read_name (dir)) != NULL)
    if ((g_str_has_prefix (name, tmp_prefix) && strlen (name) == strlen (tmp_prefix) + 6)
        || (g_str_has_prefix (name, old_prefix) && strlen (name) == strlen (old_prefix) + 6))
      g_ptr_array_add (victims, g_build_filename (parent, name, NULL));
  for (guint i = 0; i < victims->len; i++)
    if (remove_recursive (victims->pdata[i]))
      n++;
  return n;
}
