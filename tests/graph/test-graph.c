/* test-graph.c — the graph edit API, undo/redo, notifications, files and copy/paste
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-graph.h"
#include "cru-error.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  guint counts[CRU_GRAPH_CHANGE_RESET + 1];
  guint total;
  guint history;
} Counter;

static void
on_changed (CruGraph *graph, int change, guint id, Counter *counter)
{
  counter->counts[change]++;
  counter->total++;
}

static void
on_history (CruGraph *graph, Counter *counter)
{
  counter->history++;
}

static void
watch (CruGraph *graph, Counter *counter)
{
  memset (counter, 0, sizeof *counter);
  g_signal_connect (graph, "changed", G_CALLBACK (on_changed), counter);
  g_signal_connect (graph, "history-changed", G_CALLBACK (on_history), counter);
}

static guint
n_nodes (CruGraph *graph)
{
  g_autoptr(GPtrArray) nodes = cru_graph_list_nodes (graph);
  return nodes->len;
}

static guint
n_links (CruGraph *graph)
{
  g_autoptr(GPtrArray) links = cru_graph_list_links (graph);
  return links->len;
}

/* base + 3 models into a TIES node into an output */
typedef struct { guint base, a, b, c, merge, out; } Ties;

static CruGraph *
make_ties (Ties *t)
{
  CruGraph *graph = cru_graph_new ();

  t->base = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  t->a = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 100);
  t->b = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 200);
  t->c = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 300);
  t->merge = cru_graph_add_node (graph, CRU_NODE_METHOD, 300, 0);
  t->out = cru_graph_add_node (graph, CRU_NODE_OUTPUT, 600, 0);
  cru_graph_set_method (graph, t->merge, "ties");
  cru_graph_set_path (graph, t->base, "/models/base");
  cru_graph_set_path (graph, t->a, "/models/a");
  cru_graph_set_path (graph, t->b, "/models/b");
  cru_graph_set_path (graph, t->c, "/models/c");
  g_assert_cmpuint (cru_graph_link (graph, t->base, t->merge, CRU_PORT_BASE, 0, NULL), >, 0);
  g_assert_cmpuint (cru_graph_link (graph, t->a, t->merge, CRU_PORT_MODEL, -1, NULL), >, 0);
  g_assert_cmpuint (cru_graph_link (graph, t->b, t->merge, CRU_PORT_MODEL, -1, NULL), >, 0);
  g_assert_cmpuint (cru_graph_link (graph, t->c, t->merge, CRU_PORT_MODEL, -1, NULL), >, 0);
  g_assert_cmpuint (cru_graph_link (graph, t->merge, t->out, CRU_PORT_MODEL, 0, NULL), >, 0);
  return graph;
}

static void
test_add_link_query (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  g_autoptr(GPtrArray) in = cru_graph_links_to (graph, t.merge);
  g_autoptr(GPtrArray) from = cru_graph_links_from (graph, t.merge);

  g_assert_cmpuint (n_nodes (graph), ==, 6);
  g_assert_cmpuint (n_links (graph), ==, 5);
  g_assert_cmpuint (in->len, ==, 4);
  g_assert_cmpstr (((CruLink *) in->pdata[0])->to_port, ==, CRU_PORT_BASE);
  for (guint i = 1; i < 4; i++)
    {
      g_assert_cmpstr (((CruLink *) in->pdata[i])->to_port, ==, CRU_PORT_MODEL);
      g_assert_cmpint (((CruLink *) in->pdata[i])->slot, ==, (int) i - 1);
    }
  g_assert_cmpuint (((CruLink *) in->pdata[1])->from_node, ==, t.a);
  g_assert_cmpuint (from->len, ==, 1);
  g_assert_cmpstr (cru_graph_get_node (graph, t.merge)->method, ==, "ties");
  g_assert_nonnull (cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 2));
  g_assert_null (cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 3));
  g_assert_true (cru_node_port_is_variadic (CRU_NODE_METHOD, CRU_PORT_MODEL));
  g_assert_false (cru_node_port_is_variadic (CRU_NODE_METHOD, CRU_PORT_BASE));
  g_assert_true (cru_node_port_is_variadic (CRU_NODE_STACK, CRU_PORT_SLICE));
  g_assert_true (cru_node_port_is_variadic (CRU_NODE_MOE, CRU_PORT_EXPERT));
  g_assert_false (cru_node_kind_has_output (CRU_NODE_OUTPUT));
  g_assert_cmpint (cru_node_kind_from_string ("stack"), ==, CRU_NODE_STACK);
  g_assert_cmpint (cru_node_kind_from_string ("frame"), ==, CRU_NODE_N);
}

static void
test_replace_link_at_input (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  const CruLink *link;
  guint id;

  /* a new link into an occupied single input replaces the old one */
  id = cru_graph_link (graph, t.c, t.merge, CRU_PORT_BASE, 0, NULL);
  g_assert_cmpuint (id, >, 0);
  link = cru_graph_find_link (graph, t.merge, CRU_PORT_BASE, 0);
  g_assert_cmpuint (link->id, ==, id);
  g_assert_cmpuint (link->from_node, ==, t.c);
  g_assert_cmpuint (n_links (graph), ==, 5);
  /* and into an occupied variadic slot */
  cru_graph_link (graph, t.base, t.merge, CRU_PORT_MODEL, 1, NULL);
  link = cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 1);
  g_assert_cmpuint (link->from_node, ==, t.base);
  g_assert_cmpuint (n_links (graph), ==, 5);
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpuint (cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 1)->from_node, ==, t.b);
}

static void
test_variadic_slots_shift (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  const CruLink *first = cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 0);
  guint c_link = cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 2)->id;
  Counter counter;
  guint id;

  watch (graph, &counter);
  g_assert_true (cru_graph_unlink (graph, first->id));
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_LINK_REMOVED], ==, 1);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_LINK_CHANGED], ==, 2);   /* two shifted */
  g_assert_cmpuint (cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 0)->from_node, ==, t.b);
  g_assert_cmpint (cru_graph_get_link (graph, c_link)->slot, ==, 1);
  g_assert_null (cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 2));
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpuint (cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 0)->from_node, ==, t.a);
  g_assert_cmpint (cru_graph_get_link (graph, c_link)->slot, ==, 2);
  /* removing a model node shifts the later slots too */
  g_assert_true (cru_graph_remove_node (graph, t.b));
  g_assert_cmpint (cru_graph_get_link (graph, c_link)->slot, ==, 1);
  g_assert_true (cru_graph_undo (graph));
  /* a slot beyond the end appends */
  g_assert_true (cru_graph_unlink (graph, cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 1)->id));
  id = cru_graph_link (graph, t.b, t.merge, CRU_PORT_MODEL, 99, NULL);
  g_assert_cmpint (cru_graph_get_link (graph, id)->slot, ==, 2);
}

static void
test_can_link_reasons (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  g_autoptr(GError) error = NULL;
  char *reason = NULL;
  guint stack = cru_graph_add_node (graph, CRU_NODE_STACK, 0, 0);

  g_assert_true (cru_graph_can_link (graph, t.a, stack, CRU_PORT_SLICE, NULL));
  g_assert_false (cru_graph_can_link (graph, t.a, stack, CRU_PORT_BASE, &reason));
  g_assert_nonnull (strstr (reason, "stack"));
  g_assert_nonnull (strstr (reason, "base"));
  g_clear_pointer (&reason, g_free);
  g_assert_false (cru_graph_can_link (graph, t.merge, t.merge, CRU_PORT_MODEL, &reason));
  g_assert_nonnull (strstr (reason, "own input"));
  g_clear_pointer (&reason, g_free);
  g_assert_false (cru_graph_can_link (graph, t.out, stack, CRU_PORT_SLICE, &reason));
  g_assert_nonnull (strstr (reason, "nothing to pass on"));
  g_clear_pointer (&reason, g_free);
  g_assert_false (cru_graph_can_link (graph, t.a, t.base, CRU_PORT_MODEL, &reason));
  g_assert_nonnull (strstr (reason, "no “model” input"));
  g_clear_pointer (&reason, g_free);
  /* merge → stack → merge is a loop */
  g_assert_cmpuint (cru_graph_link (graph, t.merge, stack, CRU_PORT_SLICE, -1, NULL), >, 0);
  g_assert_true (cru_graph_would_cycle (graph, stack, t.merge));
  g_assert_false (cru_graph_can_link (graph, stack, t.merge, CRU_PORT_MODEL, &reason));
  g_assert_nonnull (strstr (reason, "loop"));
  g_clear_pointer (&reason, g_free);
  g_assert_cmpuint (cru_graph_link (graph, stack, t.merge, CRU_PORT_MODEL, -1, &error), ==, 0);
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_GRAPH);
  g_assert_nonnull (strstr (error->message, "loop"));
}

static void
test_undo_every_edit (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  g_autofree char *before = cru_graph_save_data (graph, NULL);
  g_autofree char *after = NULL;
  guint link = cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 1)->id;
  int n_steps = 0;

  g_assert_true (cru_graph_can_undo (graph));
  cru_graph_set_label (graph, t.a, "Python"), n_steps++;
  cru_graph_set_method (graph, t.merge, "dare_ties"), n_steps++;
  cru_graph_set_path (graph, t.c, "/elsewhere/c"), n_steps++;
  cru_graph_move_node (graph, t.out, 900, 50), n_steps++;
  cru_graph_set_param (graph, t.merge, "lambda", cru_value_new_scalar (0.9)), n_steps++;
  cru_graph_set_link_param (graph, link, "density", cru_value_new_scalar (0.5)), n_steps++;
  cru_graph_remove_node (graph, t.b), n_steps++;
  cru_graph_unlink (graph, cru_graph_find_link (graph, t.merge, CRU_PORT_BASE, 0)->id), n_steps++;
  cru_graph_add_node (graph, CRU_NODE_MOE, 1, 2), n_steps++;
  after = cru_graph_save_data (graph, NULL);
  g_assert_cmpstr (before, !=, after);
  for (int i = 0; i < n_steps; i++)
    g_assert_true (cru_graph_undo (graph));
  {
    g_autofree char *undone = cru_graph_save_data (graph, NULL);
    g_assert_cmpstr (undone, ==, before);
  }
  for (int i = 0; i < n_steps; i++)
    g_assert_true (cru_graph_redo (graph));
  g_assert_false (cru_graph_can_redo (graph));
  {
    g_autofree char *redone = cru_graph_save_data (graph, NULL);
    g_assert_cmpstr (redone, ==, after);
  }
}

static void
test_undo_remove_node_restores_links (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  guint link = cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 1)->id;
  const CruValue *density;

  cru_graph_set_link_param (graph, link, "density", cru_value_new_scalar (0.5));
  g_assert_true (cru_graph_remove_node (graph, t.merge));
  g_assert_cmpuint (n_links (graph), ==, 0);
  g_assert_cmpstr (cru_graph_get_undo_label (graph), ==, "Delete Node");
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpuint (n_links (graph), ==, 5);
  g_assert_nonnull (cru_graph_get_link (graph, link));
  g_assert_cmpint (cru_graph_get_link (graph, link)->slot, ==, 1);
  density = cru_graph_get_link_param (graph, link, "density");
  g_assert_nonnull (density);
  g_assert_cmpfloat (density->scalar, ==, 0.5);
  g_assert_cmpstr (cru_graph_get_node (graph, t.merge)->method, ==, "ties");
}

static guint
count_undo_steps (CruGraph *graph)
{
  guint n = 0;

  while (cru_graph_undo (graph))
    n++;
  while (cru_graph_redo (graph))
    ;
  return n;
}

static void
test_coalescing_and_groups (void)
{
  g_autoptr(CruGraph) graph = cru_graph_new ();
  guint node = cru_graph_add_node (graph, CRU_NODE_METHOD, 0, 0);
  guint other, before;

  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.1));
  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.2));
  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.3));
  g_assert_cmpfloat (cru_graph_get_param (graph, node, "t")->scalar, ==, 0.3);
  g_assert_true (cru_graph_undo (graph));   /* the whole burst */
  g_assert_null (cru_graph_get_param (graph, node, "t"));
  g_assert_true (cru_graph_redo (graph));
  g_assert_cmpfloat (cru_graph_get_param (graph, node, "t")->scalar, ==, 0.3);
  /* a different parameter starts a new step */
  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.4));
  cru_graph_set_param (graph, node, "lambda", cru_value_new_scalar (2));
  g_assert_true (cru_graph_undo (graph));
  g_assert_null (cru_graph_get_param (graph, node, "lambda"));
  g_assert_cmpfloat (cru_graph_get_param (graph, node, "t")->scalar, ==, 0.4);
  /* break_coalescing ends a burst */
  cru_graph_break_coalescing (graph);
  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.6));
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpfloat (cru_graph_get_param (graph, node, "t")->scalar, ==, 0.4);
  /* redo is cleared by a new edit */
  g_assert_true (cru_graph_can_redo (graph));
  cru_graph_move_node (graph, node, 5, 5);
  g_assert_false (cru_graph_can_redo (graph));

  /* nested groups are one step */
  cru_graph_begin_group (graph, "Paste");
  other = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  cru_graph_begin_group (graph, "Inner");
  cru_graph_link (graph, other, node, CRU_PORT_BASE, 0, NULL);
  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.9));
  cru_graph_end_group (graph);
  cru_graph_end_group (graph);
  g_assert_cmpstr (cru_graph_get_undo_label (graph), ==, "Paste");
  g_assert_true (cru_graph_undo (graph));
  g_assert_null (cru_graph_get_node (graph, other));
  g_assert_cmpuint (n_links (graph), ==, 0);
  g_assert_cmpfloat (cru_graph_get_param (graph, node, "t")->scalar, ==, 0.4);
  g_assert_cmpstr (cru_graph_get_redo_label (graph), ==, "Paste");
  /* setting the value a parameter already has is no edit */
  count_undo_steps (graph);            /* redoes "Paste": t = 0.9 */
  before = count_undo_steps (graph);
  cru_graph_break_coalescing (graph);
  cru_graph_set_param (graph, node, "t", cru_value_new_scalar (0.9));
  g_assert_cmpuint (count_undo_steps (graph), ==, before);
}

static void
test_notifications (void)
{
  g_autoptr(CruGraph) graph = cru_graph_new ();
  Counter counter;
  guint a, m, l;

  watch (graph, &counter);
  a = cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  m = cru_graph_add_node (graph, CRU_NODE_METHOD, 0, 0);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_NODE_ADDED], ==, 2);
  g_assert_cmpuint (counter.history, ==, 2);
  l = cru_graph_link (graph, a, m, CRU_PORT_MODEL, -1, NULL);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_LINK_ADDED], ==, 1);
  cru_graph_set_link_param (graph, l, "weight", cru_value_new_scalar (1));
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_LINK_CHANGED], ==, 1);
  cru_graph_set_param (graph, m, "t", cru_value_new_scalar (1));
  cru_graph_set_label (graph, m, "x");
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_NODE_CHANGED], ==, 2);
  cru_graph_move_node (graph, m, 3, 3);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_NODE_MOVED], ==, 1);
  cru_graph_remove_node (graph, a);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_LINK_REMOVED], ==, 1);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_NODE_REMOVED], ==, 1);
  g_assert_cmpuint (counter.total, ==, 9);
  g_assert_cmpuint (counter.history, ==, 8);
  cru_graph_undo (graph);   /* node back, link back */
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_NODE_ADDED], ==, 3);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_LINK_ADDED], ==, 2);
  g_assert_cmpuint (counter.history, ==, 9);
  cru_graph_clear (graph);
  g_assert_cmpuint (counter.counts[CRU_GRAPH_CHANGE_RESET], ==, 1);
  g_assert_cmpuint (n_nodes (graph), ==, 0);
  g_assert_false (cru_graph_can_undo (graph));
}

static char *
make_tmpdir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("cru-graph-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
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

static void
test_save_load_round_trip (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  g_autoptr(CruGraph) loaded = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *file = g_build_filename (dir, "g.crucible", NULL);
  g_autofree char *inside = g_build_filename (dir, "models", "a", NULL);
  g_autofree char *first = NULL, *second = NULL;
  CruValue *filtered = cru_value_new_filtered ();
  const double grad[] = { 0, 0.5, 1 };
  const char *prompts[] = { "def f():", "import os", NULL };

  cru_value_add_filter (filtered, "self_attn", cru_value_new_gradient (grad, 3));
  cru_value_add_filter (filtered, NULL, cru_value_new_scalar (0.5));
  cru_graph_set_param (graph, t.merge, "density", filtered);
  cru_graph_set_link_param (graph, cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 0)->id,
                            "prompts", cru_value_new_strings (prompts));
  cru_graph_set_path (graph, t.a, inside);
  cru_graph_set_label (graph, t.b, "Fine-tune “B”");
  g_assert_true (cru_graph_get_modified (graph));
  g_assert_true (cru_graph_save_file (graph, file, &error));
  g_assert_no_error (error);
  g_assert_false (cru_graph_get_modified (graph));
  g_assert_cmpstr (cru_graph_get_path (graph), ==, file);
  g_assert_true (g_file_get_contents (file, &first, NULL, NULL));
  /* paths below the file's folder are relative, others absolute */
  g_assert_nonnull (strstr (first, "\"path\" : \"models/a\""));
  g_assert_nonnull (strstr (first, "\"path\" : \"/models/base\""));
  g_assert_nonnull (strstr (first, "\"format\" : \"crucible-graph\""));
  g_assert_nonnull (strstr (first, "\"version\" : \"1.0\""));

  g_assert_true (cru_graph_load_file (loaded, file, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (cru_graph_get_node (loaded, t.a)->path, ==, inside);
  g_assert_cmpstr (cru_graph_get_node (loaded, t.b)->label, ==, "Fine-tune “B”");
  g_assert_true (cru_value_equal (cru_graph_get_param (loaded, t.merge, "density"),
                                  cru_graph_get_param (graph, t.merge, "density")));
  g_assert_cmpuint (n_links (loaded), ==, 5);
  g_assert_false (cru_graph_get_modified (loaded));
  g_assert_true (cru_graph_save_file (loaded, file, &error));
  g_assert_true (g_file_get_contents (file, &second, NULL, NULL));
  g_assert_cmpstr (first, ==, second);
  /* a loaded graph keeps counting ids after the highest */
  g_assert_cmpuint (cru_graph_add_node (loaded, CRU_NODE_MODEL, 0, 0), ==, t.out + 1);
  g_assert_true (cru_graph_get_modified (loaded));
  cru_graph_undo (loaded);
  g_assert_false (cru_graph_get_modified (loaded));
  remove_tree (dir);
}

static void
test_unknown_fields_preserved (void)
{
  const char *text =
    "{\"format\": \"crucible-graph\", \"version\": \"1.3\", \"future\": {\"a\": [1, 2]},\n"
    " \"nodes\": [{\"id\": 4, \"kind\": \"model\", \"x\": 1, \"y\": 2, \"path\": \"/m\","
    "  \"color\": \"red\", \"params\": {}},\n"
    "  {\"id\": 9, \"kind\": \"method\", \"x\": 1, \"y\": 2, \"method\": \"linear\","
    "   \"params\": {\"normalize\": true}, \"muted\": false}],\n"
    " \"links\": [{\"id\": 7, \"from\": 4, \"to\": 9, \"port\": \"model\", \"slot\": 0,"
    "  \"params\": {\"weight\": 0.25}, \"reroute\": [3, 4]}]}";
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autoptr(CruGraph) again = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = NULL, *saved2 = NULL;

  g_assert_true (cru_graph_load_data (graph, text, -1, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (cru_graph_get_node (graph, 9));
  g_assert_cmpfloat (cru_graph_get_link_param (graph, 7, "weight")->scalar, ==, 0.25);
  saved = cru_graph_save_data (graph, NULL);
  g_assert_nonnull (strstr (saved, "\"future\""));
  g_assert_nonnull (strstr (saved, "\"color\" : \"red\""));
  g_assert_nonnull (strstr (saved, "\"muted\" : false"));
  g_assert_nonnull (strstr (saved, "\"reroute\""));
  g_assert_nonnull (strstr (saved, "\"version\" : \"1.0\""));
  g_assert_true (cru_graph_load_data (again, saved, -1, NULL, &error));
  saved2 = cru_graph_save_data (again, NULL);
  g_assert_cmpstr (saved, ==, saved2);
}

static void
test_newer_major_refused (void)
{
  g_autoptr(CruGraph) graph = cru_graph_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *file = g_build_filename (dir, "new.crucible", NULL);

  g_assert_true (g_file_set_contents (file, "{\"format\": \"crucible-graph\", \"version\": "
                                      "\"2.0\", \"nodes\": [], \"links\": []}", -1, NULL));
  cru_graph_add_node (graph, CRU_NODE_MODEL, 0, 0);
  g_assert_false (cru_graph_load_file (graph, file, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_VERSION);
  g_assert_nonnull (strstr (error->message, "new.crucible was made by a newer Crucible "
                                            "(format 2.0); this version reads format 1.x"));
  g_assert_cmpuint (n_nodes (graph), ==, 1);   /* untouched */
  g_clear_error (&error);
  g_assert_false (cru_graph_load_data (graph, "{\"format\": \"other\"}", -1, NULL, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE);
  g_clear_error (&error);
  g_assert_false (cru_graph_load_data (graph, "{\"format\": \"crucible-graph\", \"version\": "
                                       "\"1.0\", \"nodes\": [], \"links\": [{\"id\": 1, "
                                       "\"from\": 1, \"to\": 2, \"port\": \"model\"}]}",
                                       -1, NULL, &error));
  g_assert_nonnull (strstr (error->message, "not in the file"));
  g_clear_error (&error);
  g_assert_false (cru_graph_load_data (graph, "{\"format\": \"crucible-graph\", \"version\": "
                                       "\"1.0\", \"nodes\": [{\"id\": 1, \"kind\": \"method\"}, "
                                       "{\"id\": 2, \"kind\": \"method\"}], \"links\": ["
                                       "{\"id\": 1, \"from\": 1, \"to\": 2, \"port\": \"base\"},"
                                       "{\"id\": 2, \"from\": 2, \"to\": 1, \"port\": \"base\"}]}",
                                       -1, NULL, &error));
  g_assert_nonnull (strstr (error->message, "loop"));
  g_clear_error (&error);
  g_assert_false (cru_graph_load_data (graph, "{\"format\": \"crucible-graph\", \"version\": "
                                       "\"1.0\", \"nodes\": [{\"id\": 1, \"kind\": \"model\"}, "
                                       "{\"id\": 2, \"kind\": \"output\"}], \"links\": ["
                                       "{\"id\": 1, \"from\": 1, \"to\": 2, \"port\": \"model\"},"
                                       "{\"id\": 2, \"from\": 1, \"to\": 2, \"port\": \"model\"}]}",
                                       -1, NULL, &error));
  g_assert_nonnull (strstr (error->message, "already uses"));
  g_clear_error (&error);
  g_assert_false (cru_graph_load_data (graph, "{ nope", -1, NULL, &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE);
  remove_tree (dir);
}

static void
test_copy_paste (void)
{
  Ties t;
  g_autoptr(CruGraph) graph = make_ties (&t);
  guint ids[3];
  g_autofree char *text = NULL;
  g_autoptr(GArray) pasted = NULL;
  g_autoptr(GError) error = NULL;
  guint nodes_before = n_nodes (graph), links_before = n_links (graph);
  const CruNode *copy;
  const CruLink *l;

  ids[0] = t.a, ids[1] = t.b, ids[2] = t.merge;
  cru_graph_set_link_param (graph, cru_graph_find_link (graph, t.merge, CRU_PORT_MODEL, 0)->id,
                            "weight", cru_value_new_scalar (0.7));
  text = cru_graph_copy_nodes (graph, ids, G_N_ELEMENTS (ids));
  pasted = cru_graph_paste (graph, text, 50, 60, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pasted->len, ==, 3);
  g_assert_cmpuint (n_nodes (graph), ==, nodes_before + 3);
  /* only the two links among the copied nodes come along */
  g_assert_cmpuint (n_links (graph), ==, links_before + 2);
  copy = cru_graph_get_node (graph, g_array_index (pasted, guint, 2));
  g_assert_cmpstr (copy->method, ==, "ties");
  g_assert_cmpfloat (copy->x, ==, 300 + 50);
  g_assert_cmpfloat (copy->y, ==, 0 + 60);
  l = cru_graph_find_link (graph, copy->id, CRU_PORT_MODEL, 0);
  g_assert_nonnull (l);
  g_assert_cmpuint (l->from_node, ==, g_array_index (pasted, guint, 0));
  g_assert_cmpfloat (cru_graph_get_link_param (graph, l->id, "weight")->scalar, ==, 0.7);
  g_assert_cmpstr (cru_graph_get_undo_label (graph), ==, "Paste");
  g_assert_true (cru_graph_undo (graph));
  g_assert_cmpuint (n_nodes (graph), ==, nodes_before);
  g_assert_null (cru_graph_paste (graph, "hello", 0, 0, &error));
  g_assert_nonnull (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/graph/api/add-link-query", test_add_link_query);
  g_test_add_func ("/graph/api/link-replaces-occupied-input", test_replace_link_at_input);
  g_test_add_func ("/graph/api/variadic-slots-shift-down", test_variadic_slots_shift);
  g_test_add_func ("/graph/api/can-link-reasons", test_can_link_reasons);
  g_test_add_func ("/graph/api/notifications", test_notifications);
  g_test_add_func ("/graph/api/copy-paste", test_copy_paste);
  g_test_add_func ("/graph/undo/every-edit-kind", test_undo_every_edit);
  g_test_add_func ("/graph/undo/remove-node-restores-links", test_undo_remove_node_restores_links);
  g_test_add_func ("/graph/undo/coalescing-and-groups", test_coalescing_and_groups);
  g_test_add_func ("/graph/file/round-trip-byte-stable", test_save_load_round_trip);
  g_test_add_func ("/graph/file/unknown-fields-preserved", test_unknown_fields_preserved);
  g_test_add_func ("/graph/file/newer-major-refused", test_newer_major_refused);
  return g_test_run ();
}
