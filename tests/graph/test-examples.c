/* test-examples.c — every example graph loads, is wired to the demo models, and exports to
 * mergekit YAML where mergekit can express it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph.h"
#include "cru-error.h"

#include <string.h>

typedef struct {
  const char *file;
  guint       n_nodes, n_links, n_models;
  gboolean    exportable;
} Example;

static const Example examples[] = {
  { "two-model-slerp.crucible",          4, 3, 2, TRUE },
  { "gradient-slerp.crucible",           4, 3, 2, TRUE },
  { "ties-of-three.crucible",            6, 5, 4, TRUE },
  { "sdm-w.crucible",                    6, 5, 4, TRUE },
  { "hierarchical-slerp.crucible",       6, 5, 3, TRUE },
  { "passthrough-frankenmerge.crucible", 6, 5, 2, TRUE },
  { "moe-from-experts.crucible",         6, 5, 4, TRUE },
};

static void
test_example (gconstpointer data)
{
  const Example *example = data;
  const char *source = g_getenv ("CRU_SOURCE_DIR");
  g_autofree char *dir = NULL, *path = NULL, *demo = NULL, *yaml = NULL, *again = NULL;
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autoptr(GPtrArray) nodes = NULL;
  g_autoptr(GPtrArray) links = NULL;
  g_autoptr(GError) error = NULL;
  guint n_models = 0, n_outputs = 0;

  if (source == NULL)
    {
      g_test_skip ("CRU_SOURCE_DIR is not set (run through meson test)");
      return;
    }
  dir = g_build_filename (source, "data", "examples", NULL);
  path = g_build_filename (dir, example->file, NULL);
  demo = g_build_filename (source, "data", "demo", NULL);
  g_assert_true (cru_graph_load_file (graph, path, &error));
  g_assert_no_error (error);
  nodes = cru_graph_list_nodes (graph);
  links = cru_graph_list_links (graph);
  g_assert_cmpuint (nodes->len, ==, example->n_nodes);
  g_assert_cmpuint (links->len, ==, example->n_links);
  for (guint i = 0; i < nodes->len; i++)
    {
      const CruNode *node = nodes->pdata[i];
      g_autofree char *config = NULL;
      g_autoptr(GPtrArray) in = cru_graph_links_to (graph, node->id);
      const char *const *ports = cru_node_kind_inputs (node->kind);

      /* every input of every node is connected (a MoE's shared expert is Qwen2-MoE's) */
      for (guint p = 0; ports[p]; p++)
        {
          gboolean found = g_str_equal (ports[p], CRU_PORT_SHARED_EXPERT);
          for (guint j = 0; j < in->len; j++)
            found |= strcmp (((CruLink *) in->pdata[j])->to_port, ports[p]) == 0;
          g_assert_true (found);
        }
      if (node->kind == CRU_NODE_OUTPUT)
        {
          n_outputs++;
          g_assert_null (node->path);   /* the GUI/CLI asks */
          g_assert_nonnull (cru_graph_get_param (graph, node->id, "dtype"));
        }
      if (node->kind != CRU_NODE_MODEL)
        continue;
      n_models++;
      g_assert_true (g_str_has_prefix (node->path, demo));
      config = g_build_filename (node->path, "config.json", NULL);
      g_assert_true (g_file_test (config, G_FILE_TEST_IS_REGULAR));
    }
  g_assert_cmpuint (n_models, ==, example->n_models);
  g_assert_cmpuint (n_outputs, ==, 1);

  /* nodes sit left to right along the flow */
  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = links->pdata[i];
      g_assert_cmpfloat (cru_graph_get_node (graph, link->from_node)->x, <,
                         cru_graph_get_node (graph, link->to_node)->x);
    }

  yaml = cru_graph_export_mergekit (graph, dir, &error);
  if (example->exportable)
    {
      g_autoptr(CruGraph) imported = NULL;
      g_assert_no_error (error);
      g_assert_nonnull (strstr (yaml, demo));
      imported = cru_graph_import_mergekit (yaml, -1, dir, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (imported);
      again = cru_graph_export_mergekit (imported, dir, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (again, ==, yaml);
    }
  else
    {
      g_assert_null (yaml);
      g_assert_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (examples); i++)
    {
      g_autofree char *name = g_strdup (examples[i].file);
      g_autofree char *test_path = NULL;
      *strrchr (name, '.') = '\0';
      test_path = g_strdup_printf ("/graph/examples/%s", name);
      g_test_add_data_func (test_path, &examples[i], test_example);
    }
  return g_test_run ();
}
