/* cru-graph.h — the merge graph: nodes, ports, links, parameters; one edit API with change
 * notifications and undo/redo, used by the editor and the CLI alike.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>
#include "cru-value.h"

G_BEGIN_DECLS

#define CRU_GRAPH_FORMAT_VERSION_MAJOR 1
#define CRU_GRAPH_FORMAT_VERSION_MINOR 0

typedef enum {
  CRU_NODE_MODEL,    /* a folder or .safetensors file; output "model" */
  CRU_NODE_METHOD,   /* a registered method; inputs "base" (slot 0) and "model" (variadic) */
  CRU_NODE_SLICE,    /* a layer range [start, end) of input "model"; params start, end */
  CRU_NODE_STACK,    /* concatenates the layers of its "slice" inputs (variadic) in slot order */
  CRU_NODE_OUTPUT,   /* input "model"; params: dtype, shard_size, tokenizer_source, … */
  CRU_NODE_MOE,      /* mixture of experts: input "base", variadic "expert", and
                      * "shared_expert" (Qwen2-MoE's always-on expert) */
  CRU_NODE_N
} CruNodeKind;

/* Port names (interned): */
#define CRU_PORT_OUT    "out"
#define CRU_PORT_BASE   "base"
#define CRU_PORT_MODEL  "model"
#define CRU_PORT_SLICE  "slice"
#define CRU_PORT_EXPERT "expert"
#define CRU_PORT_SHARED_EXPERT "shared_expert"

/* Read-only views: change them only through the API below. */
typedef struct {
  guint        id;        /* > 0, unique in the graph, stable across save/load */
  CruNodeKind  kind;
  char        *label;     /* user's title or NULL (the editor shows a default) */
  double       x, y;      /* canvas position (top-left), in canvas units */
  char        *method;    /* METHOD: registry name */
  char        *path;      /* MODEL: model folder/file; OUTPUT: output folder (absolute) */
  GHashTable  *params;    /* char* → CruValue*: node parameters */
  JsonObject  *extra;     /* unknown fields from the file, written back unchanged */
} CruNode;

typedef struct {
  guint        id;
  guint        from_node; /* its "out" port */
  guint        to_node;
  const char  *to_port;   /* interned CRU_PORT_* */
  int          slot;      /* position among the links into a variadic port; 0 otherwise */
  GHashTable  *params;    /* char* → CruValue*: per-input parameters (weight, density, prompts) */
  JsonObject  *extra;
} CruLink;

typedef enum {
  CRU_GRAPH_CHANGE_NODE_ADDED,
  CRU_GRAPH_CHANGE_NODE_REMOVED,
  CRU_GRAPH_CHANGE_NODE_CHANGED,   /* label, path, method or a parameter */
  CRU_GRAPH_CHANGE_NODE_MOVED,
  CRU_GRAPH_CHANGE_LINK_ADDED,
  CRU_GRAPH_CHANGE_LINK_REMOVED,
  CRU_GRAPH_CHANGE_LINK_CHANGED,
  CRU_GRAPH_CHANGE_RESET,          /* whole graph replaced (load/clear) */
} CruGraphChange;

#define CRU_TYPE_GRAPH (cru_graph_get_type ())
G_DECLARE_FINAL_TYPE (CruGraph, cru_graph, CRU, GRAPH, GObject)

/* Signals: "changed" (CruGraphChange change, guint id) after every elementary change;
 * "history-changed" () when can-undo/can-redo may have changed.
 * Properties: "can-undo", "can-redo", "modified" (since load/save), "file" (GFile*). */

CruGraph      *cru_graph_new            (void);

/* ---- queries ---- */
const CruNode *cru_graph_get_node       (CruGraph *self, guint id);
const CruLink *cru_graph_get_link       (CruGraph *self, guint id);
/* Snapshot arrays (free with g_ptr_array_unref), nodes by id order. */
GPtrArray     *cru_graph_list_nodes     (CruGraph *self);
GPtrArray     *cru_graph_list_links     (CruGraph *self);
/* Links into @node (ordered by port, then slot) / out of @node. */
GPtrArray     *cru_graph_links_to       (CruGraph *self, guint node);
GPtrArray     *cru_graph_links_from     (CruGraph *self, guint node);
const CruLink *cru_graph_find_link      (CruGraph *self, guint to_node, const char *port, int slot);
const CruValue *cru_graph_get_param     (CruGraph *self, guint node, const char *name);
const CruValue *cru_graph_get_link_param(CruGraph *self, guint link, const char *name);
/* Whether @port of a node of @kind accepts several links (model/slice/expert of
 * METHOD/STACK/MOE). */
gboolean       cru_node_port_is_variadic (CruNodeKind kind, const char *port);
/* Input port names of a kind (NULL-terminated, static). */
const char *const *cru_node_kind_inputs (CruNodeKind kind);
gboolean       cru_node_kind_has_output  (CruNodeKind kind);
const char    *cru_node_kind_to_string   (CruNodeKind kind);   /* "model", "method", … */
CruNodeKind    cru_node_kind_from_string (const char *s);      /* CRU_NODE_N if unknown */
/* TRUE if linking from → to would create a cycle. */
gboolean       cru_graph_would_cycle    (CruGraph *self, guint from_node, guint to_node);
/* Whether a link from → (to, port) is allowed; FALSE with a translated reason. */
gboolean       cru_graph_can_link       (CruGraph *self, guint from_node, guint to_node,
                                         const char *port, char **reason);

/* ---- edits (each is one undo step unless inside a group) ---- */
guint    cru_graph_add_node       (CruGraph *self, CruNodeKind kind, double x, double y);
gboolean cru_graph_remove_node    (CruGraph *self, guint id);   /* and its links */
void     cru_graph_set_label      (CruGraph *self, guint id, const char *label);
void     cru_graph_set_method     (CruGraph *self, guint id, const char *method);
void     cru_graph_set_path       (CruGraph *self, guint id, const char *path);
void     cru_graph_move_node      (CruGraph *self, guint id, double x, double y);
/* Takes ownership of @value; NULL removes the parameter. Consecutive sets of the same
 * parameter of the same node coalesce into one undo step (a burst of typing). */
void     cru_graph_set_param      (CruGraph *self, guint node, const char *name, CruValue *value);
void     cru_graph_set_link_param (CruGraph *self, guint link, const char *name, CruValue *value);
/* Links from's output to (to, port, slot). slot −1 appends to a variadic port. A link
 * already at that input is replaced. Refuses cycles and wrong ports. Returns the link id
 * or 0 with @error set. */
guint    cru_graph_link           (CruGraph *self, guint from_node, guint to_node,
                                   const char *port, int slot, GError **error);
gboolean cru_graph_unlink         (CruGraph *self, guint link);
void     cru_graph_clear          (CruGraph *self);

/* Groups edits into one undo step ("Paste", "Delete Selection"). Nestable. */
void     cru_graph_begin_group    (CruGraph *self, const char *label);
void     cru_graph_end_group      (CruGraph *self);
gboolean cru_graph_can_undo       (CruGraph *self);
gboolean cru_graph_can_redo       (CruGraph *self);
gboolean cru_graph_undo           (CruGraph *self);
gboolean cru_graph_redo           (CruGraph *self);
/* Ends a burst of parameter edits: the next set_param starts a new undo step (call it when
 * an entry loses focus). */
void     cru_graph_break_coalescing (CruGraph *self);
const char *cru_graph_get_undo_label (CruGraph *self);   /* NULL when nothing to undo */
const char *cru_graph_get_redo_label (CruGraph *self);

/* ---- copy/paste ---- */
/* Serializes @ids (and the links among them) as .crucible-style JSON text. */
char    *cru_graph_copy_nodes     (CruGraph *self, const guint *ids, guint n_ids);
/* Adds the nodes of copied text offset by (dx, dy), one undo step; returns new ids. */
GArray  *cru_graph_paste          (CruGraph *self, const char *text, double dx, double dy,
                                   GError **error);

/* ---- files ---- */
/* .crucible JSON: {"format": "crucible-graph", "version": "1.0", "nodes": [...],
 * "links": [...], ...}. Model/output paths below the file's folder are stored relative. */
gboolean  cru_graph_load_file     (CruGraph *self, const char *path, GError **error);
gboolean  cru_graph_save_file     (CruGraph *self, const char *path, GError **error);
gboolean  cru_graph_load_data     (CruGraph *self, const char *data, gssize length,
                                   const char *base_dir, GError **error);
char     *cru_graph_save_data     (CruGraph *self, const char *base_dir);
const char *cru_graph_get_path    (CruGraph *self);      /* last loaded/saved file or NULL */
gboolean  cru_graph_get_modified  (CruGraph *self);

/* ---- mergekit YAML (cru-mergekit.c) ---- */
/* Imports a mergekit (or mergekit-multi, multi-document) YAML recipe, or a mergekit-moe
 * config (recognised by its `experts:`) as a MoE node. Model references are resolved
 * relative to @base_dir, then in the local Hugging Face cache. @out_dir, if not NULL,
 * becomes the Output node's folder. Warnings (unknown parameter names…) are appended to
 * @warnings when not NULL. */
CruGraph *cru_graph_import_mergekit (const char *yaml, gssize length, const char *base_dir,
                                     GPtrArray *warnings, GError **error);
/* As above, with the Output node's folder set to @out_dir when not NULL. */
CruGraph *cru_graph_import_mergekit_full (const char *yaml, gssize length, const char *base_dir,
                                          const char *out_dir, GPtrArray *warnings,
                                          GError **error);
CruGraph *cru_graph_import_mergekit_file (const char *path, GPtrArray *warnings,
                                          GError **error);
/* Exports to mergekit YAML — a mergekit-moe config when a MoE node feeds the output; fails
 * with a translated reason when the graph cannot be expressed (e.g. a MoE node that is not
 * the result, a Stack fed by nested merges). */
char     *cru_graph_export_mergekit (CruGraph *self, const char *base_dir, GError **error);
/* Finds a Hub name ("org/model") in the HF cache; NULL and @error naming where it looked. */
char     *cru_hf_cache_resolve      (const char *repo_id, GError **error);
/* The hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
char     *cru_hf_cache_dir          (void);
/* "org/name" when @path is the snapshot folder that name resolves to, else NULL. */
char     *cru_hf_cache_repo_id      (const char *path);
/* Lists model folders in the HF cache (snapshot paths), for "Add Model…". */
GPtrArray *cru_hf_cache_list        (void);

G_END_DECLS
