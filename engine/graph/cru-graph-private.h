/* cru-graph-private.h — internals shared by the graph layer's files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-graph.h"

G_BEGIN_DECLS

typedef struct _CruGraphStep CruGraphStep;

struct _CruGraph {
  GObject     parent_instance;
  GHashTable *nodes;     /* id → CruNode* */
  GHashTable *links;     /* id → CruLink* */
  guint       next_node_id;
  guint       next_link_id;
  JsonObject *extra;
  char       *file;

  GPtrArray  *undo;      /* CruGraphStep*, last = most recent */
  GPtrArray  *redo;
  CruGraphStep *open;    /* the step being recorded */
  int         depth;
  gboolean    may_coalesce;
  guint64     next_serial;
  guint64     saved_serial;   /* serial of the top undo step at load/save (0 = empty) */
  gboolean    saved_lost;     /* the saved state is no longer reachable */
};

/* Copies of the read-only views (params deep-copied, extra referenced). */
CruNode *_cru_node_copy (const CruNode *node);
void     _cru_node_free (CruNode *node);
CruLink *_cru_link_copy (const CruLink *link);
void     _cru_link_free (CruLink *link);
GHashTable *_cru_params_new (void);

/* Raw inserts that keep the given ids, record nothing and emit nothing: used to build a
 * graph from a file or an import before anyone watches it. */
void     _cru_graph_insert_node_raw (CruGraph *self, CruNode *node);   /* takes ownership */
void     _cru_graph_insert_link_raw (CruGraph *self, CruLink *link);   /* takes ownership */
/* Recorded adds of copies with fresh ids (paste). */
guint    _cru_graph_add_node_copy   (CruGraph *self, const CruNode *node, double dx, double dy);
guint    _cru_graph_add_link_copy   (CruGraph *self, const CruLink *link, guint from, guint to);
/* Moves the contents (nodes, links, extras) of @src into @self, dropping the history;
 * emits RESET. */
void     _cru_graph_take_contents   (CruGraph *self, CruGraph *src);
JsonObject *_cru_graph_get_extra    (CruGraph *self);
void     _cru_graph_set_extra       (CruGraph *self, JsonObject *extra);
void     _cru_graph_set_file        (CruGraph *self, const char *path);
void     _cru_graph_mark_saved      (CruGraph *self);

/* Sets a node's/link's parameter without recording (takes ownership of @value). */
void     _cru_node_set_param_raw    (CruNode *node, const char *name, CruValue *value);

/* Lays nodes out left to right in columns by depth (x spacing 260, y spacing 140),
 * without recording. */
void     _cru_graph_layout_columns  (CruGraph *self);

/* JSON (de)serialisation of a graph's nodes/links, shared by files and copy/paste. */
JsonNode *_cru_graph_to_json        (CruGraph *self, const guint *ids, guint n_ids,
                                     const char *base_dir);
gboolean  _cru_graph_from_json      (CruGraph *self, JsonNode *root, const char *base_dir,
                                     const char *file_label, GError **error);

/* Expands "~/" and makes @path absolute against @base_dir (NULL = the current folder). */
char     *_cru_path_resolve         (const char *path, const char *base_dir);
/* @path relative to @base_dir when below it, else @path itself. */
char     *_cru_path_relativize      (const char *path, const char *base_dir);

/* Number of links into (@to_node, @port). */
int _cru_graph_count_links_at (CruGraph *self, guint to_node, const char *port);
/* Display name of a node in messages: its label, method, path or kind. */
const char *_cru_node_display_name (const CruNode *node);

G_END_DECLS
