/* fuzz-config-json.c — config.json parsing.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-model.h"

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  JsonObject *config;

  fuzz_init ();
  config = cru_config_parse ("config.json", (const char *) data, size, NULL);
  if (config != NULL)
    json_object_unref (config);
  return 0;
}
