/* cru-safetensors-private.h — helpers shared by the io layer's files
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-safetensors.h"
#include "cru-error.h"

#include <sys/types.h>

G_BEGIN_DECLS

/* "parent/file" — how files are named in error messages. */
char *_cru_display_name (const char *path);
/* Sets @error from an errno value (ENOSPC → CRU_ERROR_NO_SPACE naming @dir). */
void  _cru_set_errno_error (GError **error, int errsv, const char *what_failed,
                            const char *display_name, const char *dir);
/* "[2,2]" */
char *_cru_format_shape (int ndim, const int64_t *shape);

const char *_cru_safetensors_get_display_name (CruSafetensors *st);

/* Test hook: the pwrite() the writer calls (NULL restores the real one). Not thread-safe to
 * change during a run. */
typedef ssize_t (*CruPwriteFunc) (int fd, const void *buf, size_t n, off_t offset);
void _cru_writer_set_pwrite_func (CruPwriteFunc func);

G_END_DECLS
