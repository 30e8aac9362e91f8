/* fuzz-shard-index.c — the shard index reader (model.safetensors.index.json).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-model.h"

#include <string.h>

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GHashTable) weight_map = NULL;
  g_auto(GStrv) files = NULL;
  GHashTableIter iter;
  gpointer name, file;

  fuzz_init ();
  files = cru_model_index_parse ("model.safetensors.index.json", (const char *) data,
                                 (gssize) size, &weight_map, NULL);
  if (files == NULL)
    return 0;
  /* What parsed must be safe to open: every file a plain name listed once, every entry's
   * file among them. */
  if (files[0] == NULL)
    __builtin_trap ();
  for (guint i = 0; files[i]; i++)
    {
      if (*files[i] == '\0' || strchr (files[i], '/') || strcmp (files[i], "..") == 0)
        __builtin_trap ();
      for (guint j = 0; j < i; j++)
        if (strcmp (files[i], files[j]) == 0)
          __builtin_trap ();
    }
  g_hash_table_iter_init (&iter, weight_map);
  while (g_hash_table_iter_next (&iter, &name, &file))
    if (!g_strv_contains ((const char * const *) files, file))
      __builtin_trap ();
  return 0;
}
