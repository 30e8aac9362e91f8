/* golden-common.h — shared helpers of the golden test
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include "cru-model.h"
#include "cru-safetensors.h"

typedef struct {
  char       *name;
  char       *config;     /* file name in configs/ */
  char       *source;     /* "mergekit" | "numpy" */
  char       *check;      /* "exact" | "random" */
  char       *expected;   /* file name in expected/, NULL when not generated */
  char       *error;      /* why the reference could not be made, or NULL */
  gint64      seed;       /* -1 when none */
  JsonObject *random;     /* the "random" entry (owned by the parser), or NULL */
} GoldenCase;

const char *golden_dir          (void);           /* …/tests/golden */
GPtrArray  *golden_load_cases   (void);
/* Runs crucible-cli merge for @c into a new temporary folder (returned in @tmp_out, to be
 * removed with golden_rm_rf) and opens the output; NULL (test failed) on any error.
 * @seed < 0: none given. */
CruModel   *golden_merge        (const GoldenCase *c, int threads, gint64 seed, char **tmp_out);
/* Concatenated bytes of every *.safetensors file of the output folder in @tmp. */
GBytes     *golden_output_bytes (const char *tmp);
void        golden_rm_rf        (const char *path);
/* Opens a model named by a path relative to configs/. */
CruModel   *golden_open_model   (const char *relpath);

float      *golden_read         (CruModel *m, const CruModelTensor *t);
float      *golden_read_st      (CruSafetensors *st, const CruTensorInfo *t);
gboolean    golden_same_shape   (const CruTensorInfo *a, int ndim, const int64_t *shape);
const char *golden_shape_str    (int ndim, const int64_t *shape);  /* static buffer */

void        golden_test_random  (gconstpointer data);
void        golden_test_random_reference (gconstpointer data);
