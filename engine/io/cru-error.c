/* cru-error.c — the engine's error domain
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-error.h"

G_DEFINE_QUARK (cru-error-quark, cru_error)
