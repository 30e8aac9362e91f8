/* cru-mergekit-yaml.h — small helpers over libyaml's document API, shared by import and
 * export of mergekit recipes (private to the graph layer).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <yaml.h>
#include "cru-graph-private.h"

G_BEGIN_DECLS

/* The value of a scalar YAML node parsed as a number (plain style only); FALSE otherwise. */
gboolean _cru_yaml_scalar_number (yaml_node_t *node, double *out);

/* "did you mean" suggestion: the closest of @candidates within edit distance 2, or NULL. */
const char *_cru_closest_name (const char *name, const char *const *candidates, guint n);

/* ---- the importer (cru-mergekit.c), shared with cru-mergekit-moe.c ---- */

typedef struct {
  yaml_document_t *doc;
  const char      *base_dir;
  const char      *label;       /* file name for messages */
  CruGraph        *graph;
  GPtrArray       *warnings;
  GHashTable      *model_by_path;   /* resolved path → node id */
  GHashTable      *model_by_ref;    /* reference text → node id */
  GHashTable      *stages;          /* stage name → final node id */
  guint            next_node, next_link;
} CruImporter;

/* Sets @error to "LABEL, line N: message" (@node's line); returns FALSE. */
gboolean     _cru_import_fail    (CruImporter *im, yaml_node_t *node, GError **error,
                                  const char *format, ...) G_GNUC_PRINTF (4, 5);
void         _cru_import_warn    (CruImporter *im, const char *format, ...) G_GNUC_PRINTF (2, 3);
yaml_node_t *_cru_import_map_get (CruImporter *im, yaml_node_t *map, const char *key);
const char  *_cru_import_scalar  (yaml_node_t *node);        /* NULL unless a scalar */
gboolean     _cru_import_is_null (yaml_node_t *node);
CruNode     *_cru_import_add_node (CruImporter *im, CruNodeKind kind);
CruLink     *_cru_import_add_link (CruImporter *im, guint from, guint to, const char *port,
                                   int slot);
/* The node a model reference names: an earlier stage, or a Model node (one per folder). */
guint        _cru_import_model   (CruImporter *im, yaml_node_t *ref_node, GError **error);

/* ---- mixtures of experts (cru-mergekit-moe.c) ---- */

/* Whether a document is a mergekit-moe config (it lists `experts`). */
gboolean     _cru_mergekit_is_moe (CruImporter *im, yaml_node_t *root);
/* Adds the MoE node of a mergekit-moe config and its models; returns its id or 0. */
guint        _cru_import_moe      (CruImporter *im, yaml_node_t *root, GError **error);
/* The mergekit-moe YAML of the MoE node @moe feeding @output. */
char        *_cru_export_moe      (CruGraph *graph, const CruNode *output, const CruNode *moe,
                                   const char *base_dir, GError **error);
/* YAML scalars as the exporter writes them (quoted when plain style would be ambiguous). */
void         _cru_yaml_append_string (GString *out, const char *s);
void         _cru_yaml_append_number (GString *out, double v);

G_END_DECLS
