/* test-mergekit-moe.c — mergekit-moe configs into a graph with a MoE node and back
 *
 * The model folders hold only a config.json: importing never opens weights.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph.h"
#include "cru-error.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_dir;   /* base/, ft-a/, ft-b/ */

static void
make_model (const char *name)
{
  g_autofree char *dir = g_build_filename (tmp_dir, name, NULL);
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (config, "{\"model_type\": \"llama\"}", -1, NULL));
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_unlink (child);
    }
  if (dir)
    g_dir_close (dir);
  g_rmdir (path);
}

static CruGraph *
import (const char *yaml, GPtrArray *warnings, GError **error)
{
  return cru_graph_import_mergekit (yaml, -1, tmp_dir, warnings, error);
}

static const CruNode *
find_kind (CruGraph *graph, CruNodeKind kind)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);

  for (guint i = 0; i < nodes->len; i++)
    if (((const CruNode *) nodes->pdata[i])->kind == kind)
      return nodes->pdata[i];
  return NULL;
}

static const char *
node_string (CruGraph *graph, guint node, const char *name)
{
  const CruValue *v = cru_graph_get_param (graph, node, name);
  return v && v->kind == CRU_VALUE_STRING ? v->string : NULL;
}

static const char *
model_name_of (CruGraph *graph, const CruLink *link)
{
  const CruNode *n = cru_graph_get_node (graph, link->from_node);
  return n && n->path ? strrchr (n->path, '/') + 1 : NULL;
}

static void
test_import_builds_a_moe_node (void)
{
  static const char yaml[] =
    "base_model: base\n"
    "gate_mode: hidden_last\n"
    "architecture: qwen\n"
    "dtype: bfloat16\n"
    "experts_per_token: 1\n"
    "random_seed: 7\n"
    "experts:\n"
    "  - source_model: ft-a\n"
    "    positive_prompts: [\"def f():\", \"import os\"]\n"
    "    negative_prompts: \"Once upon a time\"\n"
    "    noise_scale: 0.01\n"
    "  - source_model: ft-b\n"
    "    positive_prompts:\n"
    "      - \"line one\\nline two\"\n"
    "    residual_scale: 0.5\n"
    "shared_experts:\n"
    "  - source_model: base\n"
    "    positive_prompts: [\"anything\"]\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruGraph) g = import (yaml, warnings, &error);
  const CruNode *moe, *out;
  const CruLink *l;
  const CruValue *v;

  g_assert_no_error (error);
  g_assert_cmpuint (warnings->len, ==, 0);
  moe = find_kind (g, CRU_NODE_MOE);
  g_assert_nonnull (moe);
  /* mergekit-moe's spellings become the graph's */
  g_assert_cmpstr (node_string (g, moe->id, "gate_mode"), ==, "hidden");
  g_assert_cmpstr (node_string (g, moe->id, "architecture"), ==, "qwen2_moe");
  g_assert_cmpfloat (cru_graph_get_param (g, moe->id, "experts_per_token")->scalar, ==, 1);
  g_assert_cmpfloat (cru_graph_get_param (g, moe->id, "seed")->scalar, ==, 7);
  out = find_kind (g, CRU_NODE_OUTPUT);
  g_assert_cmpstr (node_string (g, out->id, "dtype"), ==, "bfloat16");
  g_assert_cmpuint (cru_graph_find_link (g, out->id, CRU_PORT_MODEL, 0)->from_node, ==, moe->id);

  l = cru_graph_find_link (g, moe->id, CRU_PORT_BASE, 0);
  g_assert_cmpstr (model_name_of (g, l), ==, "base");
  l = cru_graph_find_link (g, moe->id, CRU_PORT_EXPERT, 0);
  g_assert_cmpstr (model_name_of (g, l), ==, "ft-a");
  v = cru_graph_get_link_param (g, l->id, "positive_prompts");
  g_assert_cmpint (v->kind, ==, CRU_VALUE_STRINGS);
  g_assert_cmpuint (g_strv_length (v->strings), ==, 2);
  v = cru_graph_get_link_param (g, l->id, "negative_prompts");
  g_assert_cmpstr (v->strings[0], ==, "Once upon a time");
  g_assert_cmpfloat (cru_graph_get_link_param (g, l->id, "noise_scale")->scalar, ==, 0.01);
  l = cru_graph_find_link (g, moe->id, CRU_PORT_EXPERT, 1);
  g_assert_cmpstr (cru_graph_get_link_param (g, l->id, "positive_prompts")->strings[0], ==,
                   "line one\nline two");
  g_assert_cmpfloat (cru_graph_get_link_param (g, l->id, "residual_scale")->scalar, ==, 0.5);
  /* the base is also the shared expert: one Model node, two links */
  l = cru_graph_find_link (g, moe->id, CRU_PORT_SHARED_EXPERT, 0);
  g_assert_nonnull (l);
  g_assert_cmpuint (l->from_node, ==, cru_graph_find_link (g, moe->id, CRU_PORT_BASE, 0)->from_node);
}

/* Exported YAML names the architecture as mergekit-moe matches it, and imports back to the
 * same graph settings. */
static void
test_export_round_trip (void)
{
  static const char yaml[] =
    "base_model: base\ngate_mode: cheap_embed\narchitecture: qwen2_moe\nexperts:\n"
    "  - source_model: ft-a\n    positive_prompts: [\"a: b\", \"# not a comment\"]\n"
    "  - source_model: ft-b\n    positive_prompts: [\"yes\"]\n"
    "shared_experts:\n  - source_model: base\n    positive_prompts: [\"x\"]\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) g = import (yaml, NULL, &error);
  g_autoptr(CruGraph) again = NULL;
  g_autofree char *out = NULL, *out2 = NULL;
  const CruNode *moe;

  g_assert_no_error (error);
  out = cru_graph_export_mergekit (g, tmp_dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (out, "architecture: qwen\n"));
  g_assert_nonnull (strstr (out, "gate_mode: cheap_embed\n"));
  g_assert_nonnull (strstr (out, "base_model: base\n"));
  g_assert_nonnull (strstr (out, "shared_experts:\n  - source_model: base\n"));
  g_assert_nonnull (strstr (out, "\"yes\""));   /* quoted: plain yes is a boolean */
  again = import (out, NULL, &error);
  g_assert_no_error (error);
  moe = find_kind (again, CRU_NODE_MOE);
  g_assert_cmpstr (node_string (again, moe->id, "architecture"), ==, "qwen2_moe");
  g_assert_cmpstr (cru_graph_get_link_param (again,
                     cru_graph_find_link (again, moe->id, CRU_PORT_EXPERT, 0)->id,
                     "positive_prompts")->strings[1], ==, "# not a comment");
  out2 = cru_graph_export_mergekit (again, tmp_dir, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out2, ==, out);
}

static void
test_import_problems (void)
{
  struct { const char *yaml; const char *needle; } bad[] = {
    { "experts:\n  - source_model: ft-a\n", "no “base_model”" },
    { "base_model: base\nexperts: []\n", "at least one expert" },
    { "base_model: base\ngate_mode: hiden\nexperts:\n  - source_model: ft-a\n",
      "gate_mode “hiden”" },
    { "base_model: base\narchitecture: deepseek\nexperts:\n  - source_model: ft-a\n",
      "architecture “deepseek”" },
    { "base_model: base\nexperts:\n  - positive_prompts: [a]\n", "no “source_model”" },
    { "base_model: base\nexperts:\n  - source_model: missing\n", "missing" },
    { "base_model: base\nexperts:\n  - source_model: ft-a\n    noise_scale: lots\n",
      "“noise_scale” must be a number" },
    { "base_model: base\nexperts:\n  - source_model: ft-a\nshared_experts:\n"
      "  - source_model: ft-a\n  - source_model: ft-b\n", "one shared expert" },
    { "merge_method: linear\nmodels:\n  - model: base\n---\nbase_model: base\n"
      "experts:\n  - source_model: ft-a\n", "only document" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CruGraph) g = import (bad[i].yaml, NULL, &error);
      g_assert_null (g);
      g_assert_nonnull (error);
      if (!strstr (error->message, bad[i].needle))
        g_error ("case %u: “%s” lacks “%s”", i, error->message, bad[i].needle);
    }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
    g_autoptr(CruGraph) g = import ("base_model: base\nexpert_per_token: 2\nexperts:\n"
                                    "  - source_model: ft-a\n    postive_prompts: [a]\n",
                                    warnings, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (warnings->len, ==, 2);
    g_assert_nonnull (strstr (warnings->pdata[0], "did you mean “experts_per_token”"));
    g_assert_nonnull (strstr (warnings->pdata[1], "did you mean “positive_prompts”"));
  }
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("crucible-mergekit-moe-XXXXXX", &error);
  g_assert_no_error (error);
  make_model ("base");
  make_model ("ft-a");
  make_model ("ft-b");
  g_test_add_func ("/graph/mergekit-moe/import-builds-a-moe-node", test_import_builds_a_moe_node);
  g_test_add_func ("/graph/mergekit-moe/export-round-trip", test_export_round_trip);
  g_test_add_func ("/graph/mergekit-moe/import-problems", test_import_problems);
  status = g_test_run ();
  remove_tree (tmp_dir);
  g_free (tmp_dir);
  return status;
}
