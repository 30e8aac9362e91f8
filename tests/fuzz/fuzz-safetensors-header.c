/* fuzz-safetensors-header.c — the safetensors header parser and validator.
 * Input: 8 bytes little-endian claimed file size, then the file's first bytes
 * (8-byte header length + JSON header).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-safetensors.h"

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  guint64 file_size = 0;
  CruSafetensors *st;

  fuzz_init ();
  if (size < 8)
    return 0;
  for (int i = 7; i >= 0; i--)
    file_size = (file_size << 8) | data[i];
  st = cru_safetensors_parse_header ("fuzz.safetensors", data + 8, size - 8, file_size, NULL);
  if (st != NULL)
    {
      /* Whatever validated must be self-consistent. */
      guint n = cru_safetensors_get_n_tensors (st);
      for (guint i = 0; i < n; i++)
        {
          const CruTensorInfo *t = cru_safetensors_get_tensor (st, i);
          if (t->end < t->begin || cru_safetensors_lookup (st, t->name) != t)
            __builtin_trap ();
        }
      cru_safetensors_free (st);
    }
  return 0;
}
