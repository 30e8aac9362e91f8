/* cru-hf-cache.c — finding models in the local Hugging Face hub cache
 *
 * Layout: <cache>/models--<org>--<name>/snapshots/<revision>/, refs/main naming the
 * revision the hub client last fetched. <cache> is $HF_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub (~/.cache/huggingface/hub).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph-private.h"
#include "cru-error.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>

/* The hub cache folder (not checked for existence). */
char *
cru_hf_cache_dir (void)
{
  const char *hub = g_getenv ("HF_HUB_CACHE");
  const char *home = g_getenv ("HF_HOME");

  if (hub && *hub)
    return _cru_path_resolve (hub, NULL);
  if (home && *home)
    {
      g_autofree char *abs = _cru_path_resolve (home, NULL);
      return g_build_filename (abs, "hub", NULL);
    }
  return g_build_filename (g_get_user_cache_dir (), "huggingface", "hub", NULL);
}

/* The snapshot a repo folder points at: refs/main when present, else the newest one. */
static char *
pick_snapshot (const char *repo_dir)
{
  g_autofree char *snapshots = g_build_filename (repo_dir, "snapshots", NULL);
  g_autofree char *ref_file = g_build_filename (repo_dir, "refs", "main", NULL);
  g_autofree char *ref = NULL;
  g_autoptr(GDir) dir = NULL;
  char *best = NULL;
  gint64 best_time = G_MININT64;
  const char *name;

  if (g_file_get_contents (ref_file, &ref, NULL, NULL))
    {
      g_autofree char *candidate = g_build_filename (snapshots, g_strstrip (ref), NULL);
      if (*ref && g_file_test (candidate, G_FILE_TEST_IS_DIR))
        return g_steal_pointer (&candidate);
    }
  dir = g_dir_open (snapshots, 0, NULL);
  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *candidate = g_build_filename (snapshots, name, NULL);
      GStatBuf st;

      if (g_stat (candidate, &st) != 0 || !S_ISDIR (st.st_mode))
        continue;
      if (st.st_mtime > best_time || (st.st_mtime == best_time && g_strcmp0 (candidate, best) < 0))
        {
          g_free (best);
          best = g_steal_pointer (&candidate);
          best_time = st.st_mtime;
        }
    }
  return best;
}

char *
cru_hf_cache_resolve (const char *repo_id, GError **error)
{
  g_autofree char *cache = cru_hf_cache_dir ();
  g_autofree char *folder_name = NULL;
  g_autofree char *repo_dir = NULL;
  g_auto(GStrv) parts = NULL;
  char *snapshot;

  g_return_val_if_fail (repo_id != NULL, NULL);
  parts = g_strsplit (repo_id, "/", -1);
  {
    g_autofree char *joined = g_strjoinv ("--", parts);
    folder_name = g_strconcat ("models--", joined, NULL);
  }
  repo_dir = g_build_filename (cache, folder_name, NULL);
  snapshot = pick_snapshot (repo_dir);
  if (snapshot == NULL)
    g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
                 _("The model “%s” is not in the Hugging Face cache (looked in %s/snapshots/). "
                   "Download it first, e.g. with “hf download %s”."),
                 repo_id, repo_dir, repo_id);
  return snapshot;
}

/* The Hub name ("org/name") of a snapshot folder inside the cache, or NULL. */
char *
cru_hf_cache_repo_id (const char *path)
{
  g_autofree char *cache = cru_hf_cache_dir ();
  gsize len = strlen (cache);
  const char *rest, *slash;
  g_autofree char *folder = NULL;
  g_autofree char *snapshot = NULL;
  g_autofree char *repo_dir = NULL;
  g_auto(GStrv) parts = NULL;

  if (path == NULL || strncmp (path, cache, len) != 0 || path[len] != '/')
    return NULL;
  rest = path + len + 1;
  if (!g_str_has_prefix (rest, "models--"))
    return NULL;
  slash = strchr (rest, '/');
  if (slash == NULL || !g_str_has_prefix (slash, "/snapshots/"))
    return NULL;
  if (strchr (slash + strlen ("/snapshots/"), '/') != NULL)
    return NULL;   /* a file inside the snapshot, not the snapshot itself */
  folder = g_strndup (rest + strlen ("models--"), slash - rest - strlen ("models--"));
  /* Only the snapshot the name resolves to maps back to the name. */
  repo_dir = g_strndup (path, slash - path);
  snapshot = pick_snapshot (repo_dir);
  if (g_strcmp0 (snapshot, path) != 0)
    return NULL;
  parts = g_strsplit (folder, "--", -1);
  return g_strjoinv ("/", parts);
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char **) a, *(const char **) b);
}

GPtrArray *
cru_hf_cache_list (void)
{
  g_autofree char *cache = cru_hf_cache_dir ();
  g_autoptr(GDir) dir = g_dir_open (cache, 0, NULL);
  GPtrArray *list = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *repo_dir = NULL;
      char *snapshot;

      if (!g_str_has_prefix (name, "models--"))
        continue;
      repo_dir = g_build_filename (cache, name, NULL);
      snapshot = pick_snapshot (repo_dir);
      if (snapshot)
        g_ptr_array_add (list, snapshot);
    }
  g_ptr_array_sort (list, compare_paths);
  return list;
}
