/* test-mergekit.c — mergekit YAML import/export, round trips, the HF cache, and the CLI
 *
 * The model folders here hold only a config.json: importing must never open weights.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph.h"
#include "cru-error.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_dir;   /* holds base/, ft-python/, ft-c/, ft-prose/ and hub/ */

static void
make_model (const char *dir)
{
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (config, "{\"model_type\": \"llama\"}", -1, NULL));
}

static char *
model_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static const CruNode *
find_node (CruGraph *graph, CruNodeKind kind, guint nth)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);

  for (guint i = 0; i < nodes->len; i++)
    if (((CruNode *) nodes->pdata[i])->kind == kind && nth-- == 0)
      return nodes->pdata[i];
  return NULL;
}

static guint
count_kind (CruGraph *graph, CruNodeKind kind)
{
  guint n = 0;
  while (find_node (graph, kind, n))
    n++;
  return n;
}

static guint
n_links (CruGraph *graph)
{
  g_autoptr(GPtrArray) links = cru_graph_list_links (graph);
  return links->len;
}

static void
append_params (GString *out, GHashTable *params)
{
  g_autofree gpointer *keys = NULL;
  guint n = 0;

  keys = g_hash_table_get_keys_as_array (params, &n);
  for (guint i = 0; i + 1 < n; i++)   /* tiny sort for a stable text */
    for (guint j = i + 1; j < n; j++)
      if (strcmp (keys[i], keys[j]) > 0)
        {
          gpointer t = keys[i];
          keys[i] = keys[j];
          keys[j] = t;
        }
  g_string_append_c (out, '{');
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *text = cru_value_to_display (g_hash_table_lookup (params, keys[i]));
      g_string_append_printf (out, "%s=%s;", (char *) keys[i], text);
    }
  g_string_append_c (out, '}');
}

/* A description of what feeds @id, independent of ids and positions. */
static void
describe (CruGraph *graph, guint id, GString *out)
{
  const CruNode *node = cru_graph_get_node (graph, id);
  g_autoptr(GPtrArray) in = cru_graph_links_to (graph, id);

  g_string_append_printf (out, "%s(%s,%s", cru_node_kind_to_string (node->kind),
                          node->method ? node->method : "", node->path ? node->path : "");
  append_params (out, node->params);
  for (guint i = 0; i < in->len; i++)
    {
      const CruLink *link = in->pdata[i];
      g_string_append_printf (out, " %s[%d]", link->to_port, link->slot);
      append_params (out, link->params);
      g_string_append_c (out, '<');
      describe (graph, link->from_node, out);
      g_string_append_c (out, '>');
    }
  g_string_append_c (out, ')');
}

static char *
describe_graph (CruGraph *graph)
{
  GString *out = g_string_new (NULL);
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);

  for (guint i = 0; i < nodes->len; i++)
    if (((CruNode *) nodes->pdata[i])->kind == CRU_NODE_OUTPUT)
      describe (graph, ((CruNode *) nodes->pdata[i])->id, out);
  return g_string_free (out, FALSE);
}

static CruGraph *
import (const char *yaml, GPtrArray *warnings)
{
  g_autoptr(GError) error = NULL;
  CruGraph *graph = cru_graph_import_mergekit (yaml, -1, tmp_dir, warnings, &error);

  g_assert_no_error (error);
  g_assert_nonnull (graph);
  return graph;
}

/* import → export → import gives the same graph; returns the exported YAML. */
static char *
check_round_trip (CruGraph *graph)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *yaml = cru_graph_export_mergekit (graph, tmp_dir, &error);
  g_autoptr(CruGraph) again = NULL;
  g_autofree char *a = NULL, *b = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (yaml);
  again = cru_graph_import_mergekit (yaml, -1, tmp_dir, NULL, &error);
  if (error)
    g_printerr ("exported YAML:\n%s\n", yaml);
  g_assert_no_error (error);
  a = describe_graph (graph);
  b = describe_graph (again);
  g_assert_cmpstr (a, ==, b);
  return g_steal_pointer (&yaml);
}

static const char gradient_slerp[] =
  "slices:\n"
  "  - sources:\n"
  "      - model: base\n"
  "        layer_range: [0, 4]\n"
  "      - model: ft-python\n"
  "        layer_range: [0, 4]\n"
  "merge_method: slerp\n"
  "base_model: base\n"
  "parameters:\n"
  "  t:\n"
  "    - filter: self_attn\n"
  "      value: [0, 0.5, 0.3, 0.7, 1]\n"
  "    - filter: mlp\n"
  "      value: [1, 0.5, 0.7, 0.3, 0]\n"
  "    - value: 0.5\n"
  "dtype: bfloat16\n";

static void
test_import_gradient_slerp (void)
{
  g_autoptr(CruGraph) graph = import (gradient_slerp, NULL);
  const CruNode *merge = find_node (graph, CRU_NODE_METHOD, 0);
  const CruNode *output = find_node (graph, CRU_NODE_OUTPUT, 0);
  const CruLink *base_link = cru_graph_find_link (graph, merge->id, CRU_PORT_BASE, 0);
  const CruValue *t = cru_graph_get_param (graph, merge->id, "t");
  const CruFilterEntry *entry;
  const CruNode *slice;
  g_autofree char *base = model_path ("base");
  g_autofree char *yaml = NULL;

  g_assert_cmpuint (count_kind (graph, CRU_NODE_MODEL), ==, 2);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_SLICE), ==, 2);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_STACK), ==, 1);
  g_assert_cmpuint (n_links (graph), ==, 6);
  g_assert_cmpstr (merge->method, ==, "slerp");
  g_assert_nonnull (base_link);
  slice = cru_graph_get_node (graph, base_link->from_node);
  g_assert_cmpint (slice->kind, ==, CRU_NODE_SLICE);
  g_assert_cmpfloat (cru_graph_get_param (graph, slice->id, "end")->scalar, ==, 4);
  g_assert_cmpstr (cru_graph_get_node (graph, cru_graph_find_link (graph, slice->id, CRU_PORT_MODEL,
                                                                    0)->from_node)->path, ==, base);
  g_assert_nonnull (t);
  g_assert_cmpint (t->kind, ==, CRU_VALUE_FILTERED);
  g_assert_cmpuint (t->filters->len, ==, 3);
  entry = t->filters->pdata[1];
  g_assert_cmpstr (entry->filter, ==, "mlp");
  g_assert_cmpint (entry->value->kind, ==, CRU_VALUE_GRADIENT);
  g_assert_cmpfloat (g_array_index (entry->value->gradient, double, 3), ==, 0.3);
  g_assert_null (((CruFilterEntry *) t->filters->pdata[2])->filter);
  g_assert_cmpstr (cru_graph_get_param (graph, output->id, "dtype")->string, ==, "bfloat16");
  /* laid out left to right by depth */
  g_assert_cmpfloat (find_node (graph, CRU_NODE_MODEL, 0)->x, <, slice->x);
  g_assert_cmpfloat (slice->x, <, merge->x);
  g_assert_cmpfloat (merge->x, <, output->x);
  yaml = check_round_trip (graph);
  g_assert_nonnull (strstr (yaml, "merge_method: slerp"));
  g_assert_nonnull (strstr (yaml, "layer_range: [0, 4]"));
}

static const char ties_three[] =
  "models:\n"
  "  - model: base\n"
  "  - model: ft-python\n"
  "    parameters:\n"
  "      density: [1, 0.7, 0.1]\n"
  "      weight: 1.0\n"
  "  - model: ft-c\n"
  "    parameters:\n"
  "      density: 0.5\n"
  "      weight: [0, 0.3, 0.7, 1]\n"
  "  - model: ft-prose\n"
  "    parameters:\n"
  "      density: 0.33\n"
  "      weight:\n"
  "        - filter: mlp\n"
  "          value: 0.5\n"
  "        - value: 0\n"
  "merge_method: ties\n"
  "base_model: base\n"
  "parameters:\n"
  "  normalize: true\n"
  "  int8_mask: true\n"
  "dtype: float16\n"
  "tokenizer_source: ft-c\n";

static void
test_import_ties (void)
{
  g_autoptr(CruGraph) graph = import (ties_three, NULL);
  const CruNode *merge = find_node (graph, CRU_NODE_METHOD, 0);
  const CruNode *output = find_node (graph, CRU_NODE_OUTPUT, 0);
  g_autoptr(GPtrArray) in = cru_graph_links_to (graph, merge->id);
  const CruLink *c_link;
  const CruValue *v;
  g_autofree char *ft_c = model_path ("ft-c");
  g_autofree char *tok = NULL;
  g_autofree char *yaml = NULL;

  g_assert_cmpuint (count_kind (graph, CRU_NODE_MODEL), ==, 4);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_METHOD), ==, 1);
  g_assert_cmpuint (n_links (graph), ==, 5);
  g_assert_cmpuint (in->len, ==, 4);
  g_assert_cmpstr (((CruLink *) in->pdata[0])->to_port, ==, CRU_PORT_BASE);
  g_assert_cmpuint (g_hash_table_size (((CruLink *) in->pdata[0])->params), ==, 0);
  c_link = cru_graph_find_link (graph, merge->id, CRU_PORT_MODEL, 1);
  g_assert_cmpstr (cru_graph_get_node (graph, c_link->from_node)->path, ==, ft_c);
  v = cru_graph_get_link_param (graph, c_link->id, "density");
  g_assert_cmpfloat (v->scalar, ==, 0.5);
  v = cru_graph_get_link_param (graph, c_link->id, "weight");
  g_assert_cmpint (v->kind, ==, CRU_VALUE_GRADIENT);
  g_assert_cmpuint (v->gradient->len, ==, 4);
  v = cru_graph_get_param (graph, merge->id, "normalize");
  g_assert_cmpfloat (v->scalar, ==, 1);
  tok = g_strdup_printf ("model:%u", c_link->from_node);
  g_assert_cmpstr (cru_graph_get_param (graph, output->id, "tokenizer_source")->string, ==, tok);
  yaml = check_round_trip (graph);
  g_assert_nonnull (strstr (yaml, "tokenizer_source: ft-c"));
  g_assert_nonnull (strstr (yaml, "normalize: true"));
  g_assert_nonnull (strstr (yaml, "base_model: base"));
}

static const char frankenmerge[] =
  "slices:\n"
  "  - sources:\n"
  "    - model: ft-python\n"
  "      layer_range: [0, 24]\n"
  "  - sources:\n"
  "    - model: ft-c\n"
  "      layer_range: [8, 32]\n"
  "merge_method: passthrough\n"
  "dtype: bfloat16\n";

static void
test_import_passthrough (void)
{
  g_autoptr(CruGraph) graph = import (frankenmerge, NULL);
  const CruNode *stack = find_node (graph, CRU_NODE_STACK, 0);
  const CruLink *second = cru_graph_find_link (graph, stack->id, CRU_PORT_SLICE, 1);
  const CruNode *slice = cru_graph_get_node (graph, second->from_node);

  g_assert_cmpuint (count_kind (graph, CRU_NODE_MODEL), ==, 2);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_SLICE), ==, 2);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_METHOD), ==, 0);
  g_assert_cmpuint (n_links (graph), ==, 5);
  g_assert_cmpint (slice->kind, ==, CRU_NODE_SLICE);
  g_assert_cmpfloat (cru_graph_get_param (graph, slice->id, "start")->scalar, ==, 8);
  g_assert_cmpfloat (cru_graph_get_param (graph, slice->id, "end")->scalar, ==, 32);
  g_free (check_round_trip (graph));
}

static const char multi_stage[] =
  "name: first\n"
  "merge_method: slerp\n"
  "base_model: ft-python\n"
  "models:\n"
  "  - model: ft-python\n"
  "  - model: ft-c\n"
  "parameters:\n"
  "  t: 0.5\n"
  "dtype: float32\n"
  "---\n"
  "name: final\n"
  "merge_method: slerp\n"
  "base_model: base\n"
  "models:\n"
  "  - model: base\n"
  "  - model: first\n"
  "parameters:\n"
  "  t: 0.3\n"
  "dtype: bfloat16\n";

static void
test_import_multi_stage (void)
{
  g_autoptr(CruGraph) graph = import (multi_stage, NULL);
  const CruNode *first = find_node (graph, CRU_NODE_METHOD, 0);
  const CruNode *final = find_node (graph, CRU_NODE_METHOD, 1);
  const CruNode *output = find_node (graph, CRU_NODE_OUTPUT, 0);
  g_autofree char *yaml = NULL;

  g_assert_cmpuint (count_kind (graph, CRU_NODE_MODEL), ==, 3);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_OUTPUT), ==, 1);
  g_assert_cmpuint (n_links (graph), ==, 5);
  g_assert_cmpstr (first->label, ==, "first");
  g_assert_cmpstr (final->label, ==, "final");
  /* the first stage feeds the second directly, without an intermediate output */
  g_assert_cmpuint (cru_graph_find_link (graph, final->id, CRU_PORT_MODEL, 0)->from_node, ==,
                    first->id);
  g_assert_cmpuint (cru_graph_find_link (graph, output->id, CRU_PORT_MODEL, 0)->from_node, ==,
                    final->id);
  g_assert_cmpstr (cru_graph_get_param (graph, output->id, "dtype")->string, ==, "bfloat16");
  g_assert_cmpfloat (first->x, <, final->x);
  yaml = check_round_trip (graph);
  g_assert_nonnull (strstr (yaml, "name: first\n"));
  g_assert_nonnull (strstr (yaml, "---\nname: final\n"));
}

static void
test_import_output_settings (void)
{
  g_autoptr(CruGraph) graph = import ("merge_method: linear\nmodels:\n  - model: ft-c\n"
                                      "    parameters: {weight: 1}\n  - model: ft-prose\n"
                                      "    parameters: {weight: 1}\n"
                                      "dtype: float32\nout_dtype: bfloat16\n"
                                      "tokenizer:\n  source: union\nchat_template: chatml\n",
                                      NULL);
  const CruNode *output = find_node (graph, CRU_NODE_OUTPUT, 0);
  g_autofree char *yaml = NULL;

  g_assert_cmpstr (cru_graph_get_param (graph, output->id, "dtype")->string, ==, "bfloat16");
  g_assert_cmpstr (cru_graph_get_param (graph, output->id, "tokenizer_source")->string, ==,
                   "union");
  g_assert_cmpstr (cru_graph_get_param (graph, output->id, "chat_template")->string, ==,
                   "chatml");
  yaml = check_round_trip (graph);
  g_assert_nonnull (strstr (yaml, "dtype: float32\nout_dtype: bfloat16\n"));
  g_assert_nonnull (strstr (yaml, "tokenizer_source: union\n"));
}

static void
test_unknown_parameter_warning (void)
{
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CruGraph) graph = import ("merge_method: ties\nbase_model: base\nmodels:\n"
                                      "  - model: ft-c\n    parameters:\n      densty: 0.5\n"
                                      "      weight: 1\nparameters:\n  lambada: 1\n"
                                      "out_path: /x\n", warnings);
  const CruNode *merge = find_node (graph, CRU_NODE_METHOD, 0);

  g_assert_cmpuint (warnings->len, ==, 3);
  g_assert_nonnull (strstr (warnings->pdata[0], "out_path"));
  g_assert_nonnull (strstr (warnings->pdata[1], "“lambada”"));
  g_assert_nonnull (strstr (warnings->pdata[1], "“lambda”"));
  g_assert_cmpstr (warnings->pdata[2], ==,
                   "ties: unknown parameter “densty” (ignored by mergekit; did you mean “density”?)");
  /* kept anyway */
  g_assert_nonnull (cru_graph_get_link_param (graph, cru_graph_find_link (graph, merge->id,
                                                                         CRU_PORT_MODEL, 0)->id,
                                              "densty"));
}

static void
test_missing_model_error (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;
  g_autofree char *local = model_path ("nope/missing");
  g_autofree char *hub = g_build_filename (tmp_dir, "hub", "models--nope--missing", NULL);

  graph = cru_graph_import_mergekit ("merge_method: linear\nmodels:\n  - model: base\n"
                                     "  - model: nope/missing\n", -1, tmp_dir, NULL, &error);
  g_assert_null (graph);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH);
  g_assert_nonnull (strstr (error->message, "line 4"));
  g_assert_nonnull (strstr (error->message, "“nope/missing”"));
  g_assert_nonnull (strstr (error->message, local));
  g_assert_nonnull (strstr (error->message, hub));
  g_clear_error (&error);
  graph = cru_graph_import_mergekit ("merge_method: linear\nmodels:\n  - model: ./gone\n", -1,
                                     tmp_dir, NULL, &error);
  g_assert_null (graph);
  g_assert_nonnull (strstr (error->message, "gone"));
  g_clear_error (&error);
  graph = cru_graph_import_mergekit ("merge_method: frobnicate\nmodels:\n  - model: base\n",
                                     -1, tmp_dir, NULL, &error);
  g_assert_null (graph);
  g_assert_nonnull (strstr (error->message, "frobnicate"));
}

static void
test_hf_cache_resolution (void)
{
  g_autofree char *hub = g_build_filename (tmp_dir, "hub", NULL);
  g_autofree char *repo = g_build_filename (hub, "models--org--tiny", NULL);
  g_autofree char *snapshot = g_build_filename (repo, "snapshots", "abc123", NULL);
  g_autofree char *old = g_build_filename (repo, "snapshots", "0ld", NULL);
  g_autofree char *refs = g_build_filename (repo, "refs", NULL);
  g_autofree char *ref_main = g_build_filename (refs, "main", NULL);
  g_autofree char *home = g_build_filename (tmp_dir, "hfhome", NULL);
  g_autofree char *resolved = NULL, *repo_id = NULL, *yaml = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;
  g_autoptr(GPtrArray) list = NULL;

  make_model (snapshot);
  make_model (old);
  g_assert_cmpint (g_mkdir_with_parents (refs, 0755), ==, 0);
  g_assert_true (g_file_set_contents (ref_main, "abc123", -1, NULL));
  g_setenv ("HF_HUB_CACHE", hub, TRUE);
  resolved = cru_hf_cache_resolve ("org/tiny", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (resolved, ==, snapshot);
  repo_id = cru_hf_cache_repo_id (snapshot);
  g_assert_cmpstr (repo_id, ==, "org/tiny");
  list = cru_hf_cache_list ();
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpstr (list->pdata[0], ==, snapshot);

  graph = import ("merge_method: slerp\nbase_model: org/tiny\nmodels:\n  - model: org/tiny\n"
                  "  - model: ft-c\nparameters:\n  t: 0.5\n", NULL);
  g_assert_cmpstr (cru_graph_get_node (graph, cru_graph_find_link (
                     graph, find_node (graph, CRU_NODE_METHOD, 0)->id, CRU_PORT_BASE,
                     0)->from_node)->path, ==, snapshot);
  yaml = check_round_trip (graph);
  g_assert_nonnull (strstr (yaml, "base_model: org/tiny"));

  /* HF_HOME/hub when HF_HUB_CACHE is not set */
  g_unsetenv ("HF_HUB_CACHE");
  g_setenv ("HF_HOME", home, TRUE);
  g_clear_pointer (&resolved, g_free);
  resolved = cru_hf_cache_resolve ("org/tiny", &error);
  g_assert_null (resolved);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, home));
  g_unsetenv ("HF_HOME");
  g_setenv ("HF_HUB_CACHE", hub, TRUE);
}

static void
test_bad_yaml_line_column (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CruGraph) graph = NULL;

  graph = cru_graph_import_mergekit ("merge_method: linear\nmodels:\n  - model: base\n"
                                     "    parameters: [1, 2\n", -1, tmp_dir, NULL, &error);
  g_assert_null (graph);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "line 5, column"));
  g_clear_error (&error);
  graph = cru_graph_import_mergekit ("a: b\n  c: d\n", -1, tmp_dir, NULL, &error);
  g_assert_null (graph);
  g_assert_nonnull (strstr (error->message, "line 2, column"));
  g_clear_error (&error);
  graph = cru_graph_import_mergekit ("models:\n  - model: base\n", -1, tmp_dir, NULL, &error);
  g_assert_null (graph);
  g_assert_nonnull (strstr (error->message, "merge_method"));
}

static void
test_export_refusals (void)
{
  g_autoptr(CruGraph) graph = import (ties_three, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *yaml = NULL;
  guint moe, out2;

  moe = cru_graph_add_node (graph, CRU_NODE_MOE, 0, 0);
  cru_graph_set_label (graph, moe, "Experts");
  yaml = cru_graph_export_mergekit (graph, tmp_dir, &error);
  g_assert_null (yaml);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "“Experts”"));
  g_assert_nonnull (strstr (error->message, "mixture of experts"));
  g_clear_error (&error);
  cru_graph_remove_node (graph, moe);
  out2 = cru_graph_add_node (graph, CRU_NODE_OUTPUT, 0, 0);
  cru_graph_set_label (graph, out2, "Second");
  yaml = cru_graph_export_mergekit (graph, tmp_dir, &error);
  g_assert_null (yaml);
  g_assert_nonnull (strstr (error->message, "more than one output"));
  g_assert_nonnull (strstr (error->message, "“Second”"));
  g_clear_error (&error);
  /* a slice feeding a merge without a stack */
  cru_graph_remove_node (graph, out2);
  {
    const CruNode *merge = find_node (graph, CRU_NODE_METHOD, 0);
    guint slice = cru_graph_add_node (graph, CRU_NODE_SLICE, 0, 0);
    cru_graph_set_label (graph, slice, "Top layers");
    cru_graph_link (graph, find_node (graph, CRU_NODE_MODEL, 1)->id, slice, CRU_PORT_MODEL, 0,
                    NULL);
    cru_graph_link (graph, slice, merge->id, CRU_PORT_MODEL, -1, NULL);
    yaml = cru_graph_export_mergekit (graph, tmp_dir, &error);
    g_assert_null (yaml);
    g_assert_nonnull (strstr (error->message, "“Top layers”"));
  }
}

static void
test_hierarchical_export_is_multi_stage (void)
{
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *yaml = NULL;
  g_autofree char *py = model_path ("ft-python"), *c = model_path ("ft-c");
  g_autofree char *prose = model_path ("ft-prose"), *base = model_path ("base");
  guint m_py = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  guint m_c = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  guint m_prose = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  guint m_base = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  guint inner = cru_graph_add_node (graph, CRU_NODE_METHOD, 0, 0);
  guint outer = cru_graph_add_node (graph, CRU_NODE_METHOD, 0, 0);
  guint out = cru_graph_add_node (graph, CRU_NODE_OUTPUT, 0, 0);

  cru_graph_set_path (graph, m_py, py);
  cru_graph_set_path (graph, m_c, c);
  cru_graph_set_path (graph, m_prose, prose);
  cru_graph_set_path (graph, m_base, base);
  cru_graph_set_method (graph, inner, "slerp");
  cru_graph_set_method (graph, outer, "linear");
  cru_graph_set_param (graph, inner, "t", cru_value_new_scalar (0.5));
  cru_graph_link (graph, m_py, inner, CRU_PORT_BASE, 0, NULL);
  cru_graph_link (graph, m_c, inner, CRU_PORT_MODEL, -1, NULL);
  cru_graph_link (graph, inner, outer, CRU_PORT_MODEL, -1, NULL);
  cru_graph_link (graph, m_prose, outer, CRU_PORT_MODEL, -1, NULL);
  cru_graph_link (graph, outer, out, CRU_PORT_MODEL, 0, NULL);
  yaml = cru_graph_export_mergekit (graph, tmp_dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (yaml, "name: slerp-5\nmerge_method: slerp"));
  g_assert_nonnull (strstr (yaml, "---\nname: linear-6\n"));
  g_assert_nonnull (strstr (yaml, "  - model: slerp-5\n"));
  g_free (check_round_trip (graph));
}

static void
run_cli (const char *const *args, int expected_status, char **out, char **err)
{
  const char *cli = g_getenv ("CRU_CLI");
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_ptr_array_add (argv, (gpointer) cli);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (tmp_dir, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, out, err, &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, expected_status);
}

static void
test_cli_import_export (void)
{
  g_autofree char *yml = g_build_filename (tmp_dir, "ties.yml", NULL);
  g_autofree char *graph_file = g_build_filename (tmp_dir, "ties.crucible", NULL);
  g_autofree char *back = g_build_filename (tmp_dir, "back.yml", NULL);
  g_autofree char *out = NULL, *err = NULL, *text = NULL;
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autoptr(GError) error = NULL;

  if (g_getenv ("CRU_CLI") == NULL || !g_file_test (g_getenv ("CRU_CLI"), G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("CRU_CLI does not name the crucible-cli executable");
      return;
    }
  g_assert_true (g_file_set_contents (yml, "merge_method: ties\nbase_model: base\nmodels:\n"
                                      "  - model: ft-c\n    parameters:\n      densty: 0.5\n",
                                      -1, NULL));
  g_unlink (graph_file);
  run_cli ((const char *[]) { "import", yml, "-o", graph_file, NULL }, 0, &out, &err);
  g_assert_nonnull (strstr (err, "densty"));
  g_assert_true (cru_graph_load_file (graph, graph_file, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_kind (graph, CRU_NODE_MODEL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  /* no overwriting without --force */
  run_cli ((const char *[]) { "import", yml, "-o", graph_file, NULL }, 1, &out, &err);
  g_assert_nonnull (strstr (err, "--force"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  run_cli ((const char *[]) { "import", yml, "-o", graph_file, "--force", NULL }, 0, &out, &err);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  run_cli ((const char *[]) { "export", graph_file, "-o", "-", NULL }, 0, &out, &err);
  g_assert_nonnull (strstr (out, "merge_method: ties"));
  g_assert_nonnull (strstr (out, "densty: 0.5"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_unlink (back);
  run_cli ((const char *[]) { "export", graph_file, "-o", back, NULL }, 0, &out, &err);
  g_assert_true (g_file_get_contents (back, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "base_model: base"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  run_cli ((const char *[]) { "export", graph_file, "-o", back, NULL }, 1, &out, &err);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  run_cli ((const char *[]) { "import", NULL }, 2, &out, &err);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

int
main (int argc, char **argv)
{
  const char *names[] = { "base", "ft-python", "ft-c", "ft-prose" };
  g_autofree char *hub = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("cru-mergekit-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *dir = model_path (names[i]);
      make_model (dir);
    }
  hub = g_build_filename (tmp_dir, "hub", NULL);
  g_mkdir_with_parents (hub, 0755);
  g_setenv ("HF_HUB_CACHE", hub, TRUE);

  g_test_add_func ("/graph/mergekit/import/gradient-slerp", test_import_gradient_slerp);
  g_test_add_func ("/graph/mergekit/import/ties-per-model-params", test_import_ties);
  g_test_add_func ("/graph/mergekit/import/passthrough-frankenmerge", test_import_passthrough);
  g_test_add_func ("/graph/mergekit/import/multi-stage-fused", test_import_multi_stage);
  g_test_add_func ("/graph/mergekit/import/output-settings", test_import_output_settings);
  g_test_add_func ("/graph/mergekit/import/unknown-parameter-warns", test_unknown_parameter_warning);
  g_test_add_func ("/graph/mergekit/import/missing-model-names-paths", test_missing_model_error);
  g_test_add_func ("/graph/mergekit/import/hf-cache", test_hf_cache_resolution);
  g_test_add_func ("/graph/mergekit/import/bad-yaml-line-column", test_bad_yaml_line_column);
  g_test_add_func ("/graph/mergekit/export/refusals-name-the-node", test_export_refusals);
  g_test_add_func ("/graph/mergekit/export/hierarchical-is-multi-stage",
                   test_hierarchical_export_is_multi_stage);
  g_test_add_func ("/graph/mergekit/cli/import-export", test_cli_import_export);
  status = g_test_run ();
  remove_tree (tmp_dir);
  g_free (tmp_dir);
  return status;
}
