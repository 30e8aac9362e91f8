/* fuzz-graph-json.c — the .crucible graph loader; what loads must save and load again.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph.h"

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  CruGraph *graph;

  fuzz_init ();
  graph = cru_graph_new ();
  if (cru_graph_load_data (graph, (const char *) data, size, "/nonexistent", NULL))
    {
      char *saved = cru_graph_save_data (graph, "/nonexistent");
      CruGraph *again = cru_graph_new ();
      if (!cru_graph_load_data (again, saved, -1, "/nonexistent", NULL))
        __builtin_trap ();
      g_object_unref (again);
      g_free (saved);
    }
  g_object_unref (graph);
  return 0;
}
