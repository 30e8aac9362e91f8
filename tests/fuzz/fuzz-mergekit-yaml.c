/* fuzz-mergekit-yaml.c — the mergekit YAML importer.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph.h"

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  GPtrArray *warnings;
  CruGraph *graph;

  fuzz_init ();
  warnings = g_ptr_array_new_with_free_func (g_free);
  graph = cru_graph_import_mergekit ((const char *) data, size, "/nonexistent", warnings, NULL);
  if (graph != NULL)
    {
      char *yaml = cru_graph_export_mergekit (graph, "/nonexistent", NULL);
      g_free (yaml);
      g_object_unref (graph);
    }
  g_ptr_array_unref (warnings);
  return 0;
}
