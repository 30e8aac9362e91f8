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

G_END_DECLS
