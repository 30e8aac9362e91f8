/* fuzz-common.h — shared by the fuzz targets
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* A g_critical() or g_warning() is a bug on any input: a failed precondition inside the
 * engine means unchecked input reached it. Make them crash so that the fuzzer reports them. */
static inline void
fuzz_init (void)
{
  static gboolean done;

  if (!done)
    {
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_ERROR);
      done = TRUE;
    }
}
