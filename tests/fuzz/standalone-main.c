/* standalone-main.c — runs a fuzz target over corpus files without libFuzzer, so the
 * normal (gcc) build replays every seed and every crash reproducer as a regression test.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <stdio.h>

#include "fuzz-common.h"

static guint
run_path (const char *path)
{
  guint n = 0;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          n += run_path (child);
        }
    }
  else
    {
      g_autofree char *data = NULL;
      gsize len = 0;

      if (g_file_get_contents (path, &data, &len, NULL))
        {
          LLVMFuzzerTestOneInput ((const guint8 *) data, len);
          n++;
        }
    }
  return n;
}

int
main (int argc, char **argv)
{
  guint n = 0;

  for (int i = 1; i < argc; i++)
    n += run_path (argv[i]);
  if (n == 0)
    {
      fprintf (stderr, "no corpus files found\n");
      return 1;
    }
  printf ("replayed %u inputs: no crash\n", n);
  return 0;
}
