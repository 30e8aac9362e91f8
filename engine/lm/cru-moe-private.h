/* cru-moe-private.h — what cru-moe.c needs from cru-moe-gates.c beyond the public API
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-moe.h"

G_BEGIN_DECLS

/* Called as the forward pass enters layer @layer of @n_layers (on one worker at a time). */
typedef void (*CruMoeLayerFunc) (int layer, int n_layers, gpointer user_data);

/* cru_moe_compute_gates, telling @layer_func how far the prompts' forward pass is. */
float *_cru_moe_compute_gates_full (const CruMoeConfig *config, CruModel *base,
                                    GPtrArray *experts, CruMoeLayerFunc layer_func,
                                    gpointer user_data, GCancellable *cancellable,
                                    GError **error);

G_END_DECLS
