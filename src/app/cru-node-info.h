/* cru-node-info.h — what the editor shows about nodes: titles, icons, port types, the
 * catalogue of addable nodes, and model header summaries loaded off the main thread.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>
#include "cru-graph.h"
#include "cru-dtype.h"

G_BEGIN_DECLS

typedef enum {
  CRU_STREAM_NONE = 0,
  CRU_STREAM_MODEL = 1 << 0,   /* a model-valued stream (every port but slices) */
  CRU_STREAM_SLICE = 1 << 1,   /* a layer range, only a Stack takes it */
} CruStreamType;

typedef enum {
  CRU_PALETTE_SOURCES,
  CRU_PALETTE_METHODS,
  CRU_PALETTE_STRUCTURE,
  CRU_PALETTE_OUTPUT,
  CRU_PALETTE_N_GROUPS
} CruPaletteGroup;

/* One entry of the palette / add-node popover. */
typedef struct {
  CruNodeKind      kind;
  const char      *method;       /* METHOD: registry name */
  const char      *label;        /* translated */
  const char      *description;  /* translated */
  const char      *icon_name;
  CruPaletteGroup  group;
} CruNodeTemplate;

guint                  cru_node_templates_get_n   (void);
const CruNodeTemplate *cru_node_templates_get_nth (guint index);
const char            *cru_palette_group_label    (CruPaletteGroup group);
/* Stream types the template's inputs accept / its output produces. */
CruStreamType          cru_node_template_accepts  (const CruNodeTemplate *tmpl);
CruStreamType          cru_node_template_produces (const CruNodeTemplate *tmpl);

CruStreamType cru_port_stream_type   (CruNodeKind kind, const char *port);
CruStreamType cru_output_stream_type (CruNodeKind kind);
const char   *cru_node_kind_icon     (CruNodeKind kind);
const char   *cru_node_kind_label    (CruNodeKind kind);
/* The title shown on a node: the user's label, else the model's folder name, the method's
 * label, or the kind's label. */
char         *cru_node_dup_title     (const CruNode *node);
/* A setting's choices as the editor shows them: the value stored in the graph, a short
 * label and a sentence a non-programmer can act on (both untranslated: pass them to _()). */
typedef struct {
  const char *id;
  const char *label;
  const char *description;
} CruChoice;

/* A mixture of experts' routing (gate_mode) and output architecture. */
const CruChoice *cru_moe_gate_modes      (guint *n_choices);
const CruChoice *cru_moe_architectures   (guint *n_choices);
/* The choice whose id is @id, or NULL. */
const CruChoice *cru_choice_find         (const CruChoice *choices, guint n_choices,
                                          const char *id);
/* Human size "1.2 GB" / count "4.5 M". */
char         *cru_format_bytes       (guint64 bytes);
char         *cru_format_count       (guint64 count);
char         *cru_format_seconds     (double seconds);

/* ---- model header summaries (cached, opened on a worker thread) ---- */
typedef struct {
  char     *path;
  gboolean  loaded;      /* FALSE while opening */
  char     *error;       /* translated message when the model could not be opened */
  char     *arch;        /* "Llama" */
  guint64   n_params;
  int       n_layers;
  CruDType  dtype;
  guint64   bytes;
} CruModelInfo;

/* Returns the cached info for @path (loaded or not) and starts loading it if needed;
 * "model-info-changed" is emitted on cru_model_info_get_notifier () when it arrives. */
const CruModelInfo *cru_model_info_lookup (const char *path);
GObject            *cru_model_info_get_notifier (void);
/* Number of models being opened right now (the screenshot mode waits for zero). */
guint               cru_model_info_get_pending (void);

G_END_DECLS
