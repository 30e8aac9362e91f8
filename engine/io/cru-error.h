/* cru-error.h — the engine's error domain
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRU_ERROR (cru_error_quark ())
GQuark cru_error_quark (void);

typedef enum {
  CRU_ERROR_FAILED,          /* anything else */
  CRU_ERROR_IO,              /* read/write/open failed (errno text in the message) */
  CRU_ERROR_INVALID_FILE,    /* a malformed safetensors / json / yaml file */
  CRU_ERROR_NOT_FOUND,       /* a file, model, tensor or node that should exist does not */
  CRU_ERROR_UNSUPPORTED,     /* valid input we do not handle (dtype, architecture, …) */
  CRU_ERROR_INVALID_GRAPH,   /* the graph / recipe does not validate */
  CRU_ERROR_INVALID_PARAM,   /* a parameter value out of range */
  CRU_ERROR_EXISTS,          /* the output exists and overwriting was not asked for */
  CRU_ERROR_NO_SPACE,        /* not enough disk space */
  CRU_ERROR_CANCELLED,       /* the run was cancelled (G_IO_ERROR_CANCELLED is also used) */
  CRU_ERROR_VERSION,         /* a file of a newer major format version */
} CruError;

G_END_DECLS
