/* cru-outdir.c — output folders that appear only when complete
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-safetensors-private.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TMP_INFIX ".crucible-tmp-"
#define OLD_INFIX ".crucible-old-"
#define TRASH_INFIX ".crucible-trash-"

struct _CruOutputDir
{
  char    *target;
  char    *tmp_path;
  int      lock_fd;     /* the temporary folder, flock()ed while this run owns it */
  gboolean overwrite;
  gboolean done;
};

/* A temporary folder is in use while its owner holds a lock on it; the kernel drops the lock
 * when the owner dies, even by SIGKILL, so an unlocked one is a leftover. */
static int
lock_folder (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

  if (fd >= 0 && flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      close (fd);
      fd = -1;
    }
  return fd;
}

static gboolean
folder_in_use (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  gboolean busy;

  if (fd < 0)
    return FALSE;
  busy = flock (fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close (fd);   /* drops the lock if we took it */
  return busy;
}

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
  cru_output_dir_clean_stale (abs);
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
  od->lock_fd = lock_folder (od->tmp_path);
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
  if (od->lock_fd >= 0)
    close (od->lock_fd);
  od->lock_fd = -1;
  return TRUE;
}

void
cru_output_dir_abort (CruOutputDir *od)
{
  if (od == NULL || od->done)
    return;
  remove_recursive (od->tmp_path);
  od->done = TRUE;
  if (od->lock_fd >= 0)
    close (od->lock_fd);
  od->lock_fd = -1;
}

/* Discarded folders being deleted in the background. */
static GMutex discard_lock;
static GCond discard_cond;
static guint discards_pending;

typedef struct {
  char *path;
  int   lock_fd;
} Discard;

static gpointer
discard_thread (gpointer data)
{
  Discard *d = data;

  remove_recursive (d->path);
  if (d->lock_fd >= 0)
    close (d->lock_fd);
  g_free (d->path);
  g_free (d);
  g_mutex_lock (&discard_lock);
  discards_pending--;
  g_cond_broadcast (&discard_cond);
  g_mutex_unlock (&discard_lock);
  return NULL;
}

void
cru_output_dir_discard (CruOutputDir *od)
{
  g_autofree char *parent = NULL;
  g_autofree char *base = NULL;
  g_autofree char *trash = NULL;
  Discard *d;

  if (od == NULL || od->done)
    return;
  parent = g_path_get_dirname (od->target);
  base = g_path_get_basename (od->target);
  trash = g_strdup_printf ("%s/.%s" TRASH_INFIX "XXXXXX", parent, base);
  /* rename() may replace the empty folder mkdtemp made: the name is ours alone. */
  if (g_mkdtemp_full (trash, 0700) == NULL || rename (od->tmp_path, trash) != 0)
    {
      if (trash != NULL)
        g_rmdir (trash);
      cru_output_dir_abort (od);
      return;
    }
  d = g_new0 (Discard, 1);
  d->path = g_steal_pointer (&trash);
  d->lock_fd = od->lock_fd;   /* the lock follows the folder: a live deletion is no leftover */
  od->lock_fd = -1;
  od->done = TRUE;
  g_mutex_lock (&discard_lock);
  discards_pending++;
  g_mutex_unlock (&discard_lock);
  g_thread_unref (g_thread_new ("crucible-discard", discard_thread, d));
}

void
cru_output_dir_wait_discarded (void)
{
  g_mutex_lock (&discard_lock);
  while (discards_pending > 0)
    g_cond_wait (&discard_cond, &discard_lock);
  g_mutex_unlock (&discard_lock);
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

static gboolean
is_old_model (const char *path)
{
  const char *base = strrchr (path, '/');

  return strstr (base ? base : path, OLD_INFIX) != NULL;
}

/* Leftovers beside @target: temporary folders of runs that died (not locked by a live one)
 * and folders moved aside by an overwrite that died before deleting them. */
static GPtrArray *
find_leftovers (const char *target)
{
  g_autofree char *abs = g_canonicalize_filename (target, NULL);
  g_autofree char *parent = g_path_get_dirname (abs);
  g_autofree char *base = g_path_get_basename (abs);
  g_autofree char *tmp_prefix = g_strdup_printf (".%s" TMP_INFIX, base);
  g_autofree char *old_prefix = g_strdup_printf (".%s" OLD_INFIX, base);
  g_autofree char *trash_prefix = g_strdup_printf (".%s" TRASH_INFIX, base);
  g_autoptr(GDir) dir = g_dir_open (parent, 0, NULL);
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  gboolean live_run = FALSE;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      gboolean is_tmp = (g_str_has_prefix (name, tmp_prefix)
                         && strlen (name) == strlen (tmp_prefix) + 6)
                        || (g_str_has_prefix (name, trash_prefix)
                            && strlen (name) == strlen (trash_prefix) + 6);
      gboolean is_old = g_str_has_prefix (name, old_prefix)
                        && strlen (name) == strlen (old_prefix) + 6;
      g_autofree char *path = NULL;

      if (!is_tmp && !is_old)
        continue;
      path = g_build_filename (parent, name, NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_DIR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        continue;
      if (is_tmp && folder_in_use (path))
        {
          live_run = TRUE;
          continue;
        }
      g_ptr_array_add (found, g_steal_pointer (&path));
    }
  /* A live run may be in the middle of its own overwrite: leave old models alone then. */
  for (guint i = found->len; live_run && i > 0; i--)
    if (is_old_model (found->pdata[i - 1]))
      g_ptr_array_remove_index (found, i - 1);
  return found;
}

GPtrArray *
cru_output_dir_find_stale (const char *target)
{
  return find_leftovers (target);
}

guint
cru_output_dir_clean_stale (const char *target)
{
  g_autofree char *abs = g_canonicalize_filename (target, NULL);
  g_autoptr(GPtrArray) victims = find_leftovers (abs);
  guint n = 0;

  for (guint i = 0; i < victims->len; i++)
    {
      const char *path = victims->pdata[i];

      /* An overwrite that died between moving the old model aside and moving the new one in
       * left no target: put the old one back rather than delete the user's model. */
      if (is_old_model (path) && !g_file_test (abs, G_FILE_TEST_EXISTS)
          && rename (path, abs) == 0)
        n++;
      else if (remove_recursive (path))
        n++;
    }
  return n;
}

gboolean
cru_output_dir_explain_no_space (const char *target, guint64 bytes_needed, GError **error)
{
  g_autofree char *abs = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *shown = NULL;
  g_autofree char *need = NULL;
  g_autofree char *have = NULL;
  struct statvfs sv;
  GError *e = error ? *error : NULL;

  if (e == NULL
      || !(g_error_matches (e, CRU_ERROR, CRU_ERROR_NO_SPACE)
           || g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOSPC)
           || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_NO_SPACE)))
    return FALSE;
  abs = g_canonicalize_filename (target, NULL);
  parent = g_path_get_dirname (abs);
  shown = g_filename_display_name (parent);
  need = g_format_size (bytes_needed);
  have = statvfs (parent, &sv) == 0 ? g_format_size ((guint64) sv.f_bavail * sv.f_frsize)
                                    : g_strdup (_("an unknown amount"));
  g_clear_error (error);
  g_set_error (error, CRU_ERROR, CRU_ERROR_NO_SPACE,
               _("The disk holding %s is full: the model needs %s and only %s was free when "
                 "writing stopped. Nothing was written. Free some space or choose another "
                 "output folder."),
               shown, need, have);
  return TRUE;
}
