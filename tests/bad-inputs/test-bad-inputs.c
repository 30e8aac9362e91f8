/* test-bad-inputs.c — the bad-input catalogue: broken model files, graph files, mergekit
 * recipes and command lines. Each case runs crucible-cli in a fresh folder and asserts the
 * exit status, the exact error line on stderr, and that nothing was written (the folder is
 * exactly as before, and the output folder does not exist).
 *
 * README.md's table is generated from the table below (set CRU_WRITE_README=1 to rewrite
 * it); the test fails when the two disagree.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*SetupFunc) (const char *dir);

typedef struct {
  const char *name;       /* category/slug */
  const char *wrong;      /* what is wrong, for the README */
  SetupFunc   setup;
  const char *argv[10];   /* after crucible-cli; {dir} is the case's folder */
  int         status;
  const char *message;    /* one whole line of stderr; {dir} as above */
} BadCase;

/* ---- building blocks ---- */

static void
write_file (const char *dir, const char *name, const char *data, gssize len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, data, len, NULL));
}

static void
good_model (const char *dir, const char *name, int hidden)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  TestModelSpec spec;

  test_spec_init (&spec);
  spec.hidden = hidden;
  test_write_model (path, &spec);
}

/* A linear recipe over the good model "good" and the model "broken". */
static void
recipe_with_broken (const char *dir)
{
  good_model (dir, "good", 16);
  write_file (dir, "recipe.yml",
              "merge_method: linear\n"
              "models:\n"
              "  - model: good\n"
              "    parameters: {weight: 0.5}\n"
              "  - model: broken\n"
              "    parameters: {weight: 0.5}\n", -1);
}

/* "broken" with a good config.json and these weights. */
static void
broken_weights (const char *dir, const char *header, gsize data_len, guint64 claimed)
{
  gsize hl = strlen (header);
  guint64 len = GUINT64_TO_LE (claimed ? claimed : hl);
  g_autofree guint8 *bytes = g_malloc0 (8 + hl + data_len);

  recipe_with_broken (dir);
  good_model (dir, "broken", 16);
  memcpy (bytes, &len, 8);
  memcpy (bytes + 8, header, hl);
  write_file (dir, "broken/model.safetensors", (const char *) bytes, (gssize) (8 + hl + data_len));
}

static void
broken_config (const char *dir, const char *config, gssize len)
{
  recipe_with_broken (dir);
  good_model (dir, "broken", 16);
  write_file (dir, "broken/config.json", config, len);
}

static void
remove_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_cmpint (g_unlink (path), ==, 0);
}

/* ---- model files ---- */

static void setup_config_missing (const char *d) { recipe_with_broken (d); good_model (d, "broken", 16); remove_file (d, "broken/config.json"); }
static void setup_config_not_json (const char *d) { broken_config (d, "{\"model_type\": \"llama\",", -1); }
static void setup_config_not_utf8 (const char *d) { broken_config (d, "{\"model_type\": \"ll\xff" "ama\"}", -1); }
static void setup_config_not_object (const char *d) { broken_config (d, "[1, 2]", -1); }
static void setup_config_layers_text (const char *d) { broken_config (d, "{\"model_type\": \"llama\", \"num_hidden_layers\": \"two\"}", -1); }
static void setup_weights_missing (const char *d) { recipe_with_broken (d); good_model (d, "broken", 16); remove_file (d, "broken/model.safetensors"); }
static void setup_weights_empty (const char *d) { recipe_with_broken (d); good_model (d, "broken", 16); write_file (d, "broken/model.safetensors", "", 0); }
static void setup_weights_short (const char *d) { recipe_with_broken (d); good_model (d, "broken", 16); write_file (d, "broken/model.safetensors", "abc", 3); }
static void setup_header_past_end (const char *d) { broken_weights (d, "{}", 0, 1000000); }
static void setup_header_absurd (const char *d) { broken_weights (d, "{}", 0, G_GUINT64_CONSTANT (1) << 40); }
static void setup_header_not_json (const char *d) { broken_weights (d, "{\"a\": nope}   ", 0, 0); }
static void setup_header_not_utf8 (const char *d) { broken_weights (d, "{\"\xff\": 1}    ", 0, 0); }
static void setup_unknown_dtype (const char *d) { broken_weights (d, "{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0); }
static void setup_offsets_vs_shape (const char *d) { broken_weights (d, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 8, 0); }
static void setup_overlap (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0); }
static void setup_gap (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24, 0); }
static void setup_data_truncated (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0); }
static void setup_trailing_bytes (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, 0); }
static void setup_duplicate_name (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0); }
static void setup_negative_dim (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0); }
static void setup_shape_overflow (const char *d) { broken_weights (d, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 4, 0); }

static void
index_model (const char *d, const char *index, gboolean keep_weights)
{
  recipe_with_broken (d);
  good_model (d, "broken", 16);
  if (!keep_weights)
    remove_file (d, "broken/model.safetensors");
  write_file (d, "broken/model.safetensors.index.json", index, -1);
}

static void setup_index_no_map (const char *d) { index_model (d, "{\"metadata\": {}}", FALSE); }
static void setup_index_missing_shard (const char *d) { index_model (d, "{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00002.safetensors\"}}", FALSE); }
static void setup_index_escape (const char *d) { index_model (d, "{\"weight_map\": {\"lm_head.weight\": \"../../etc/passwd\"}}", FALSE); }
static void setup_index_absent_tensor (const char *d) { index_model (d, "{\"weight_map\": {\"model.no.such.weight\": \"model.safetensors\"}}", TRUE); }

static void
setup_link_loop (const char *d)
{
  g_autofree char *loop = g_build_filename (d, "loop", NULL);

  g_assert_cmpint (symlink ("loop", loop), ==, 0);
}

static void
setup_shapes_differ (const char *d)
{
  recipe_with_broken (d);
  good_model (d, "broken", 24);
}

static void
setup_tokenizer_broken (const char *d)
{
  good_model (d, "broken", 16);
  write_file (d, "broken/tokenizer.json", "{\"model\": ", -1);
  write_file (d, "text.txt", "Hello, world.\n", -1);
}

static void
setup_nothing (const char *d)
{
}

/* ---- graph files ---- */

static const char graph_good[] =
  "{\"format\": \"crucible-graph\", \"version\": \"1.0\",\n"
  " \"nodes\": [\n"
  "  {\"id\": 1, \"kind\": \"model\", \"x\": 0, \"y\": 0, \"path\": \"a\"},\n"
  "  {\"id\": 2, \"kind\": \"model\", \"x\": 0, \"y\": 140, \"path\": \"b\"},\n"
  "  {\"id\": 3, \"kind\": \"method\", \"x\": 260, \"y\": 0, \"method\": \"METHOD\", \"params\": PARAMS},\n"
  "  {\"id\": 4, \"kind\": \"KIND\", \"x\": 520, \"y\": 0, \"path\": \"out\"}\n"
  " ],\n"
  " \"links\": [\n"
  "  {\"id\": 1, \"from\": FROM, \"to\": 3, \"port\": \"PORT\", \"slot\": 0},\n"
  "  {\"id\": 2, \"from\": 2, \"to\": 3, \"port\": \"model\", \"slot\": SLOT},\n"
  "  {\"id\": 3, \"from\": 3, \"to\": 4, \"port\": \"model\", \"slot\": 0}\n"
  " ]}\n";

/* The good graph with some of its placeholders replaced ("KEY=value;KEY=value"). */
static void
write_graph (const char *d, const char *changes)
{
  g_autoptr(GString) g = g_string_new (graph_good);
  g_auto(GStrv) pairs = g_strsplit (changes, ";", -1);
  const char *defaults[][2] = { { "METHOD", "linear" }, { "PARAMS", "{}" }, { "KIND", "output" },
                                { "FROM", "1" }, { "PORT", "model" }, { "SLOT", "1" } };

  for (guint i = 0; pairs[i] && *pairs[i]; i++)
    {
      char *eq = strchr (pairs[i], '=');
      *eq = '\0';
      g_string_replace (g, pairs[i], eq + 1, 0);
    }
  for (guint i = 0; i < G_N_ELEMENTS (defaults); i++)
    g_string_replace (g, defaults[i][0], defaults[i][1], 0);
  good_model (d, "a", 16);
  good_model (d, "b", 16);
  write_file (d, "graph.crucible", g->str, -1);
}

static void setup_graph_not_json (const char *d) { write_file (d, "graph.crucible", "{\"format\": \"crucible-graph\", \"nodes\": [", -1); }
static void setup_graph_wrong_format (const char *d) { write_file (d, "graph.crucible", "{\"format\": \"excel\", \"version\": \"1.0\"}", -1); }
static void setup_graph_newer (const char *d) { write_file (d, "graph.crucible", "{\"format\": \"crucible-graph\", \"version\": \"2.0\", \"nodes\": []}", -1); }
static void setup_graph_no_version (const char *d) { write_file (d, "graph.crucible", "{\"format\": \"crucible-graph\", \"nodes\": []}", -1); }
static void setup_graph_nodes_not_list (const char *d) { write_file (d, "graph.crucible", "{\"format\": \"crucible-graph\", \"version\": \"1.0\", \"nodes\": {}}", -1); }
static void setup_graph_unknown_kind (const char *d) { write_graph (d, "KIND=blender"); }
static void setup_graph_link_missing_node (const char *d) { write_graph (d, "FROM=9"); }
static void setup_graph_loop (const char *d) { write_graph (d, "FROM=3"); }
static void setup_graph_unknown_method (const char *d) { write_graph (d, "METHOD=blend_magic"); }
static void setup_graph_param_range (const char *d) { write_graph (d, "METHOD=slerp;PARAMS={\"t\": 1.7};PORT=base;SLOT=0"); }
static void setup_graph_param_text (const char *d) { write_graph (d, "METHOD=slerp;PARAMS={\"t\": \"half\"};PORT=base;SLOT=0"); }
static void setup_graph_path_not_text (const char *d) { write_graph (d, "\"path\": \"a\"=\"path\": 5"); }
static void setup_graph_model_missing (const char *d) { write_graph (d, "\"path\": \"a\"=\"path\": \"gone\""); }
static void setup_graph_duplicate_id (const char *d) { write_graph (d, "\"id\": 4=\"id\": 3"); }

static void
setup_graph_no_output (const char *d)
{
  write_graph (d, "");
  write_file (d, "graph.crucible",
              "{\"format\": \"crucible-graph\", \"version\": \"1.0\", \"nodes\": [\n"
              "  {\"id\": 1, \"kind\": \"model\", \"path\": \"a\"},\n"
              "  {\"id\": 2, \"kind\": \"method\", \"method\": \"linear\"}],\n"
              " \"links\": [{\"id\": 1, \"from\": 1, \"to\": 2, \"port\": \"model\"}]}", -1);
}

/* ---- recipes ---- */

static void
write_recipe (const char *d, const char *text)
{
  good_model (d, "a", 16);
  good_model (d, "b", 16);
  write_file (d, "recipe.yml", text, -1);
}

#define LINEAR_AB "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 0.5}\n" \
                  "  - model: b\n    parameters: {weight: 0.5}\n"

static void setup_recipe_syntax (const char *d) { write_recipe (d, "merge_method: linear\nmodels:\n  - model: a\n   parameters: {weight: 1}\n"); }
static void setup_recipe_tabs (const char *d) { write_recipe (d, "merge_method: linear\nmodels:\n\t- model: a\n"); }
static void setup_recipe_list (const char *d) { write_recipe (d, "- merge_method: linear\n"); }
static void setup_recipe_empty (const char *d) { write_recipe (d, ""); }
static void setup_recipe_not_utf8 (const char *d) { write_recipe (d, "merge_method: linear\nmodels:\n  - model: \xff" "a\n"); }
static void setup_recipe_unknown_method (const char *d) { write_recipe (d, "merge_method: blend_magic\nmodels:\n  - model: a\n"); }
static void setup_recipe_no_models (const char *d) { write_recipe (d, "merge_method: linear\n"); }
static void setup_recipe_model_missing (const char *d) { write_recipe (d, "merge_method: linear\nmodels:\n  - model: ./gone\n    parameters: {weight: 1}\n"); }
static void setup_recipe_ties_no_base (const char *d) { write_recipe (d, "merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1, density: 0.5}\n"); }
static void setup_recipe_density (const char *d) { write_recipe (d, "merge_method: ties\nbase_model: a\nmodels:\n  - model: b\n    parameters: {weight: 1, density: 1.5}\n"); }
static void setup_recipe_weight_text (const char *d) { write_recipe (d, "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: heavy\n"); }
static void setup_recipe_layer_range (const char *d) { write_recipe (d, "merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 40]\n"); }
static void setup_recipe_dtype (const char *d) { write_recipe (d, "merge_method: linear\ndtype: int4\nmodels:\n  - model: a\n    parameters: {weight: 1}\n"); }
static void setup_recipe_good (const char *d) { write_recipe (d, LINEAR_AB); }

static void
setup_recipe_output_exists (const char *d)
{
  write_recipe (d, LINEAR_AB);
  write_file (d, "out/keep.txt", "the user's", -1);
}

static void
setup_recipe_output_under_file (const char *d)
{
  write_recipe (d, LINEAR_AB);
  write_file (d, "notes.txt", "a file", -1);
}

/* ---- the catalogue ---- */

#define MERGE "merge", "recipe.yml", "out"
#define RUN "run", "graph.crucible", "--out", "out"
#define CANNOT_RUN "crucible-cli: the merge cannot run; fix the errors above"

static const BadCase cases[] = {
  /* model files (through a merge: the plan opens every model) */
  { "model/config-missing", "the model folder has no config.json", setup_config_missing, { MERGE }, 3,
    "error: broken: config.json is missing (a Hugging Face model folder has one)" },
  { "model/config-not-json", "config.json is cut off", setup_config_not_json, { MERGE }, 3,
    "error: broken/config.json: not valid JSON: <data>:1:23: Parse error: unexpected character `,', expected string constant" },
  { "model/config-not-utf8", "config.json holds a byte that is not UTF-8", setup_config_not_utf8, { MERGE }, 3,
    "error: broken/config.json: the file is not valid UTF-8 text" },
  { "model/config-not-an-object", "config.json is a list", setup_config_not_object, { MERGE }, 3,
    "error: broken/config.json: expected a JSON object (“{ … }”)" },
  { "model/config-layers-not-a-number", "num_hidden_layers is text", setup_config_layers_text, { MERGE }, 3,
    "error: broken/config.json: “num_hidden_layers” should be an integer" },
  { "model/weights-missing", "no model.safetensors and no index", setup_weights_missing, { MERGE }, 3,
    "error: broken: there is no model.safetensors or model.safetensors.index.json (only safetensors weights can be read)" },
  { "model/weights-empty", "model.safetensors is 0 bytes", setup_weights_empty, { MERGE }, 3,
    "error: broken/model.safetensors: the file is empty (an interrupted download?); download it again" },
  { "model/weights-too-short", "model.safetensors is 3 bytes", setup_weights_short, { MERGE }, 3,
    "error: broken/model.safetensors: the file is too short to be a safetensors file (an interrupted download?); download it again" },
  { "model/header-past-end-of-file", "the header length points past the end", setup_header_past_end, { MERGE }, 3,
    "error: broken/model.safetensors: the header claims 1000000 bytes but the file has only 2 after the length (the file is truncated; download it again)" },
  { "model/header-length-absurd", "the header length is 1 TiB", setup_header_absurd, { MERGE }, 3,
    "error: broken/model.safetensors: the header claims 1099511627776 bytes, more than the 100000000 bytes allowed (this is not a safetensors file, or it is damaged)" },
  { "model/header-not-json", "the header is not JSON", setup_header_not_json, { MERGE }, 3,
    "error: broken/model.safetensors: the header is not valid JSON: <data>:1:10: Parse error: unexpected identifier `nope', expected value" },
  { "model/header-not-utf8", "the header holds a byte that is not UTF-8", setup_header_not_utf8, { MERGE }, 3,
    "error: broken/model.safetensors: the header is not valid UTF-8 text" },
  { "model/unknown-dtype", "a tensor's dtype is F12", setup_unknown_dtype, { MERGE }, 3,
    "error: broken/model.safetensors: tensor “w” has the unknown dtype “F12”" },
  { "model/offsets-disagree-with-shape", "data_offsets cover 8 bytes, the shape needs 16", setup_offsets_vs_shape, { MERGE }, 3,
    "error: broken/model.safetensors: tensor “w” has data_offsets [0, 8] but dtype F32 and shape [2,2] need 16 bytes" },
  { "model/tensors-overlap", "two tensors share bytes", setup_overlap, { MERGE }, 3,
    "error: broken/model.safetensors: tensors “a” and “b” overlap (data_offsets [0, 8] and [4, 12])" },
  { "model/gap-between-tensors", "8 unused bytes between tensors", setup_gap, { MERGE }, 3,
    "error: broken/model.safetensors: there is a gap of 8 bytes between tensor “a” (ends at 8) and tensor “b” (begins at 16)" },
  { "model/data-truncated", "the file ends inside the data", setup_data_truncated, { MERGE }, 3,
    "error: broken/model.safetensors: the tensors need 16 bytes of data but the file holds only 8 (the file is truncated; download it again)" },
  { "model/bytes-after-data", "4 bytes after the last tensor", setup_trailing_bytes, { MERGE }, 3,
    "error: broken/model.safetensors: the file has 4 bytes after the last tensor's data" },
  { "model/duplicate-tensor-name", "the header names a tensor twice", setup_duplicate_name, { MERGE }, 3,
    "error: broken/model.safetensors: the header names “a” more than once" },
  { "model/negative-dimension", "a shape of [-1]", setup_negative_dim, { MERGE }, 3,
    "error: broken/model.safetensors: tensor “a” has a shape entry that is not a non-negative integer" },
  { "model/shape-overflows", "a shape of 2⁴⁰ × 2⁴⁰ elements", setup_shape_overflow, { MERGE }, 3,
    "error: broken/model.safetensors: tensor “a” has a shape whose element count overflows" },
  { "model/index-without-weight-map", "the shard index has no weight_map", setup_index_no_map, { MERGE }, 3,
    "error: broken/model.safetensors.index.json: there is no “weight_map” object" },
  { "model/index-names-missing-shard", "the index names a shard that is not there", setup_index_missing_shard, { MERGE }, 3,
    "error: broken: the weights file “model-00001-of-00002.safetensors” is missing" },
  { "model/index-leaves-the-folder", "the index names ../../etc/passwd", setup_index_escape, { MERGE }, 3,
    "error: broken/model.safetensors.index.json: “../../etc/passwd” is not a file name inside the model folder" },
  { "model/index-names-absent-tensor", "the index names a tensor its shard lacks", setup_index_absent_tensor, { MERGE }, 3,
    "error: broken/model.safetensors.index.json names tensor “model.no.such.weight” in model.safetensors, but that file has no such tensor" },
  { "model/shapes-differ", "hidden size 24 merged with hidden size 16", setup_shapes_differ, { MERGE }, 3,
    "error: broken: tensor model.layers.1.mlp.gate_proj.weight has shape [40,24] but good has [40,16]" },
  { "model/path-missing", "inspect a path that does not exist", setup_nothing, { "inspect", "gone" }, 1,
    "crucible-cli: gone: no such file or folder" },
  { "model/path-is-a-link-loop", "inspect a symbolic link to itself", setup_link_loop, { "inspect", "loop" }, 1,
    "crucible-cli: loop: the path is a loop of symbolic links; point it at the model folder itself" },
  { "model/tokenizer-not-json", "eval with a cut-off tokenizer.json", setup_tokenizer_broken, { "eval", "broken", "--text", "text.txt" }, 1,
    "crucible-cli: {dir}/broken/tokenizer.json is not valid JSON: <data>:1:10: Parse error: unexpected end of file, expected character `}'" },

  /* graph files */
  { "graph/not-json", "the file is cut off", setup_graph_not_json, { RUN }, 1,
    "crucible-cli: graph.crucible is not valid JSON: <data>:1:39: Parse error: unexpected end of file, expected character `]'" },
  { "graph/not-a-graph", "“format” is not crucible-graph", setup_graph_wrong_format, { RUN }, 1,
    "crucible-cli: graph.crucible is not a Crucible graph (its “format” is not “crucible-graph”)" },
  { "graph/newer-version", "format 2.0", setup_graph_newer, { RUN }, 1,
    "crucible-cli: graph.crucible was made by a newer Crucible (format 2.0); this version reads format 1.x" },
  { "graph/no-version", "no “version”", setup_graph_no_version, { RUN }, 1,
    "crucible-cli: graph.crucible has no readable format version" },
  { "graph/nodes-not-a-list", "“nodes” is an object", setup_graph_nodes_not_list, { RUN }, 1,
    "crucible-cli: graph.crucible: “nodes” should be a list ([ … ])" },
  { "graph/unknown-node-kind", "a node of kind “blender”", setup_graph_unknown_kind, { RUN }, 1,
    "crucible-cli: graph.crucible: node 4 has an unknown kind “blender”" },
  { "graph/duplicate-node-id", "two nodes with id 3", setup_graph_duplicate_id, { RUN }, 1,
    "crucible-cli: graph.crucible: node id 3 is used twice" },
  { "graph/link-to-missing-node", "a link from node 9, which does not exist", setup_graph_link_missing_node, { RUN }, 1,
    "crucible-cli: graph.crucible: link 1 connects a node that is not in the file" },
  { "graph/links-form-a-loop", "a method fed by its own output", setup_graph_loop, { RUN }, 1,
    "crucible-cli: graph.crucible: link 1 closes a loop through node 3" },
  { "graph/path-not-text", "a model path that is a number", setup_graph_path_not_text, { RUN }, 1,
    "crucible-cli: graph.crucible: the “path” of node 1 should be text (a folder or file name)" },
  { "graph/no-output-node", "nothing receives the merge", setup_graph_no_output, { RUN }, 3,
    "error: The graph has no Output node; add one and connect the merge to it" },
  { "graph/unknown-method", "method “blend_magic”", setup_graph_unknown_method, { RUN }, 3,
    "error: blend_magic (node 3): unknown merge method “blend_magic”" },
  { "graph/parameter-out-of-range", "slerp t = 1.7", setup_graph_param_range, { RUN }, 3,
    "error: slerp: t must be in [0, 1], got 1.7" },
  { "graph/parameter-not-a-number", "slerp t = “half”", setup_graph_param_text, { RUN }, 3,
    "error: slerp (node 3): t should be a number, got “half”" },
  { "graph/model-missing", "a model node names a missing folder", setup_graph_model_missing, { RUN }, 3,
    "error: {dir}/gone: no such file or folder" },

  /* mergekit recipes */
  { "recipe/not-yaml", "a mis-indented line", setup_recipe_syntax, { MERGE }, 1,
    "crucible-cli: recipe.yml is not valid YAML: line 4, column 4: did not find expected '-' indicator while parsing a block collection" },
  { "recipe/tab-indentation", "indented with a tab", setup_recipe_tabs, { MERGE }, 1,
    "crucible-cli: recipe.yml is not valid YAML: line 3, column 1: found character that cannot start any token while scanning for the next token (YAML indents with spaces; this line starts with a tab)" },
  { "recipe/not-utf8", "a byte that is not UTF-8", setup_recipe_not_utf8, { MERGE }, 1,
    "crucible-cli: recipe.yml, line 3: the text is not valid UTF-8; save the recipe as UTF-8" },
  { "recipe/empty", "an empty file", setup_recipe_empty, { MERGE }, 1,
    "crucible-cli: recipe.yml holds no recipe" },
  { "recipe/not-a-mapping", "a list at the top", setup_recipe_list, { MERGE }, 1,
    "crucible-cli: recipe.yml, line 1: the recipe is not a mapping of settings" },
  { "recipe/unknown-method", "merge_method: blend_magic", setup_recipe_unknown_method, { MERGE }, 1,
    "crucible-cli: recipe.yml, line 1: the merge method “blend_magic” is not known to Crucible" },
  { "recipe/no-models", "neither models nor slices", setup_recipe_no_models, { MERGE }, 1,
    "crucible-cli: recipe.yml, line 1: the recipe has neither “models” nor “slices”" },
  { "recipe/model-not-found", "a model folder that does not exist", setup_recipe_model_missing, { MERGE }, 1,
    "crucible-cli: recipe.yml, line 3: model “./gone” was not found (looked for {dir}/gone)" },
  { "recipe/ties-without-base", "TIES needs a base_model", setup_recipe_ties_no_base, { MERGE }, 3,
    "error: ties (node 1): ties needs a base model; connect one to the “base” input" },
  { "recipe/density-out-of-range", "density: 1.5", setup_recipe_density, { MERGE }, 3,
    "error: ties: density must be in (0, 1], got 1.5" },
  { "recipe/weight-not-a-number", "weight: heavy", setup_recipe_weight_text, { MERGE }, 3,
    "error: linear (node 1): weight should be a number, got “heavy”" },
  { "recipe/layer-range-outside-model", "layer_range [0, 40] of a 2-layer model", setup_recipe_layer_range, { MERGE }, 3,
    "error: slice (node 3): layer range [0, 40) is outside the 2 layers of a; use a range within [0, 2)" },
  { "recipe/unknown-dtype", "dtype: int4", setup_recipe_dtype, { MERGE }, 3,
    "error: Output dtype “int4” is not supported; use bfloat16, float16 or float32" },

  /* command lines */
  { "cli/no-command", "crucible-cli alone", setup_nothing, { NULL }, 2,
    "Usage: crucible-cli COMMAND [OPTIONS…]" },
  { "cli/unknown-command", "a command that does not exist", setup_nothing, { "frobnicate" }, 2,
    "crucible-cli: unknown command “frobnicate”" },
  { "cli/merge-without-output", "merge with no OUT_DIR", setup_recipe_good, { "merge", "recipe.yml" }, 2,
    "Usage: crucible-cli merge CONFIG.yml OUT_DIR [OPTIONS…]" },
  { "cli/unknown-option", "an option merge does not have", setup_recipe_good, { MERGE, "--frobnicate" }, 2,
    "crucible-cli: Unknown option --frobnicate" },
  { "cli/threads-negative", "--threads -1", setup_recipe_good, { MERGE, "--threads", "-1" }, 2,
    "crucible-cli: --threads must be a positive number" },
  { "cli/threads-not-a-number", "--threads many", setup_recipe_good, { MERGE, "--threads", "many" }, 2,
    "crucible-cli: Cannot parse integer value “many” for --threads" },
  { "cli/shard-size-not-a-size", "--out-shard-size big", setup_recipe_good, { MERGE, "--out-shard-size", "big" }, 2,
    "crucible-cli: “big” is not a size (examples: 5GB, 500MB, 2GiB)" },
  { "cli/shard-size-zero", "--out-shard-size 0", setup_recipe_good, { MERGE, "--out-shard-size", "0" }, 2,
    "crucible-cli: “0” is not a size (examples: 5GB, 500MB, 2GiB)" },
  { "cli/dtype-unknown", "--dtype int8", setup_recipe_good, { MERGE, "--dtype", "int8" }, 2,
    "crucible-cli: “int8” is not an output dtype (bfloat16, float16, float32)" },
  { "cli/device-unknown", "--device tpu", setup_recipe_good, { MERGE, "--device", "tpu" }, 2,
    "crucible-cli: “tpu” is not a device (cpu, cuda, auto)" },
  { "cli/recipe-missing", "a recipe file that does not exist", setup_nothing, { MERGE }, 1,
    "crucible-cli: Could not read the recipe {dir}/recipe.yml: Failed to open file “{dir}/recipe.yml”: No such file or directory" },
  { "cli/output-exists", "the output folder holds the user's files", setup_recipe_output_exists, { MERGE }, 3,
    "error: The output folder “{dir}/out” already exists; choose another folder or allow replacing it (--overwrite)" },
  { "cli/output-is-an-input", "--overwrite onto an input model", setup_recipe_good, { "merge", "recipe.yml", "a", "--overwrite" }, 3,
    "error: The output folder “{dir}/a” is the input model a or inside it; choose a folder outside the input models" },
  { "cli/output-inside-an-input", "an output folder inside an input model", setup_recipe_good, { "merge", "recipe.yml", "b/merged" }, 3,
    "error: The output folder “{dir}/b/merged” is the input model b or inside it; choose a folder outside the input models" },
  { "cli/output-under-a-file", "an output folder below a file", setup_recipe_output_under_file, { "merge", "recipe.yml", "notes.txt/out" }, 3,
    "error: Cannot write into “{dir}/notes.txt” (Not a directory); choose an output folder you can write to" },
  { "cli/convert-dtype-unknown", "convert --dtype q4", setup_recipe_good, { "convert", "a", "out", "--dtype", "q4" }, 2,
    "crucible-cli: --dtype must be f32, f16 or bf16, not “q4”" },
  { "cli/inspect-without-path", "inspect with nothing to inspect", setup_nothing, { "inspect" }, 2,
    "crucible-cli: inspect takes one PATH (got 0)" },
  { "cli/eval-text-missing", "eval of a model without --text", setup_recipe_good, { "eval", "a" }, 2,
    "crucible-cli: eval needs one MODEL and at least one --text FILE" },
};

/* ---- running ---- */

static char *
substitute (const char *text, const char *dir)
{
  g_autoptr(GString) s = g_string_new (text);

  g_string_replace (s, "{dir}", dir, 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
snapshot_into (GString *out, const char *root, const char *rel)
{
  g_autofree char *path = rel ? g_build_filename (root, rel, NULL) : g_strdup (root);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *child_rel = rel ? g_build_filename (rel, names->pdata[i], NULL)
                                       : g_strdup (names->pdata[i]);
      g_autofree char *child = g_build_filename (root, child_rel, NULL);
      struct stat sb;

      if (lstat (child, &sb) != 0)
        continue;
      g_string_append_printf (out, "%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT ".%09ld\n",
                              child_rel, (gint64) sb.st_size, (gint64) sb.st_mtim.tv_sec,
                              sb.st_mtim.tv_nsec);
      if (S_ISDIR (sb.st_mode))
        snapshot_into (out, root, child_rel);
    }
}

static char *
snapshot (const char *dir)
{
  GString *s = g_string_new (NULL);

  snapshot_into (s, dir, NULL);
  return g_string_free (s, FALSE);
}

static void
test_case (gconstpointer data)
{
  const BadCase *c = data;
  g_autofree char *dir = test_tmpdir ();
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *expected = substitute (c->message, dir);
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *out_dir = g_build_filename (dir, "out", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean out_existed;
  gboolean found = FALSE;
  int status = 0;

  c->setup (dir);
  out_existed = g_file_test (out_dir, G_FILE_TEST_EXISTS);
  before = snapshot (dir);
  g_ptr_array_add (argv, g_strdup (g_getenv ("CRU_CLI")));
  for (guint i = 0; i < G_N_ELEMENTS (c->argv) && c->argv[i]; i++)
    g_ptr_array_add (argv, substitute (c->argv[i], dir));
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (dir, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &err, &status, &error));
  g_assert_no_error (error);
  g_test_message ("stderr:\n%s", err);

  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, c->status);
  lines = g_strsplit (err, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    found |= g_str_equal (lines[i], expected);
  if (!found)
    {
      g_test_fail_printf ("the line\n  %s\nis not in stderr:\n%s", expected, err);
      return;
    }
  if (c->status == 3)
    g_assert_nonnull (strstr (err, CANNOT_RUN "\n"));
  g_assert_true (g_utf8_validate (err, -1, NULL));

  /* Nothing written: the folder is as it was, and no output appeared. */
  after = snapshot (dir);
  g_assert_cmpstr (after, ==, before);
  g_assert_true (g_file_test (out_dir, G_FILE_TEST_EXISTS) == out_existed);
}

/* ---- README.md ---- */

static char *
code (const char *text)
{
  /* A code span that survives backticks in the text. */
  return strchr (text, '`') ? g_strdup_printf ("`` %s ``", text) : g_strdup_printf ("`%s`", text);
}

static char *
readme_table (void)
{
  GString *s = g_string_new ("| # | Case | What is wrong | Command | Exit | Message |\n"
                             "|---|------|---------------|---------|------|---------|\n");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const BadCase *c = &cases[i];
      g_autoptr(GString) cmd = g_string_new ("crucible-cli");
      g_autofree char *cmd_code = NULL;
      g_autofree char *msg_code = NULL;

      for (guint k = 0; k < G_N_ELEMENTS (c->argv) && c->argv[k]; k++)
        g_string_append_printf (cmd, " %s", c->argv[k]);
      cmd_code = code (cmd->str);
      msg_code = code (c->message);
      g_string_append_printf (s, "| %u | %s | %s | %s | %d | %s |\n", i + 1, c->name, c->wrong,
                              cmd_code, c->status, msg_code);
    }
  return g_string_free (s, FALSE);
}

static const char *
readme_path (void)
{
  static char *path;

  if (path == NULL)
    path = g_build_filename (g_getenv ("CRU_SOURCE_DIR") ? g_getenv ("CRU_SOURCE_DIR") : ".",
                             "tests", "bad-inputs", "README.md", NULL);
  return path;
}

#define TABLE_START "<!-- the table is generated by test-bad-inputs.c -->\n"
#define TABLE_END "<!-- end of the generated table -->\n"

static void
test_readme_lists_every_case (void)
{
  g_autofree char *readme = NULL;
  g_autofree char *table = readme_table ();
  const char *start, *end;

  g_assert_true (g_file_get_contents (readme_path (), &readme, NULL, NULL));
  start = strstr (readme, TABLE_START);
  end = start ? strstr (start, TABLE_END) : NULL;
  g_assert_nonnull (end);
  start += strlen (TABLE_START);
  {
    g_autofree char *listed = g_strndup (start, end - start);
    if (!g_str_equal (listed, table))
      g_error ("tests/bad-inputs/README.md does not match the catalogue; regenerate it with "
               "CRU_WRITE_README=1 (the table should be:\n%s)", table);
  }
  g_assert_cmpuint (G_N_ELEMENTS (cases), >=, 40);
}

static void
write_readme (void)
{
  g_autofree char *readme = NULL;
  g_autofree char *table = readme_table ();
  const char *start, *end;
  g_autoptr(GString) s = NULL;

  g_assert_true (g_file_get_contents (readme_path (), &readme, NULL, NULL));
  start = strstr (readme, TABLE_START);
  end = start ? strstr (start, TABLE_END) : NULL;
  g_assert_nonnull (end);
  s = g_string_new_len (readme, start + strlen (TABLE_START) - readme);
  g_string_append (s, table);
  g_string_append (s, end);
  g_assert_true (g_file_set_contents (readme_path (), s->str, -1, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("CRU_WRITE_README"))
    {
      write_readme ();
      return 0;
    }
  g_test_add_func ("/bad-inputs/readme-lists-every-case", test_readme_lists_every_case);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/bad-inputs/%s", cases[i].name);
      g_test_add_data_func (path, &cases[i], test_case);
    }
  return g_test_run ();
}
