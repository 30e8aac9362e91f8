/* engine-test-util.h — helpers of the engine and CLI suites: temporary folders, tiny
 * synthetic Llama models, graph building, file comparison.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "cru-engine.h"
#include "cru-graph.h"
#include "cru-model.h"
#include "cru-plan.h"

typedef struct {
  int      layers, hidden, intermediate, vocab;
  gboolean tied;
  const char *model_type;
  guint64  seed;
  CruDType dtype;
} TestModelSpec;

/* data/demo, or NULL (and the test is skipped) when absent. */
const char *test_demo_dir (void);
/* data/demo/<name>; skips when absent. */
char       *test_demo_model (const char *name);
/* A fresh temporary folder, removed at exit. */
char       *test_tmpdir (void);
void        test_rm_rf (const char *path);
void        test_spec_init (TestModelSpec *spec);
/* Writes a Llama-shaped folder (config.json + model.safetensors) into @dir. */
void        test_write_model (const char *dir, const TestModelSpec *spec);

guint       test_add_model  (CruGraph *g, const char *path);
guint       test_add_method (CruGraph *g, const char *method);
guint       test_add_output (CruGraph *g, const char *path, guint from);
guint       test_link       (CruGraph *g, guint from, guint to, const char *port);
void        test_set        (CruGraph *g, guint node, const char *name, double v);
void        test_set_link   (CruGraph *g, guint link, const char *name, double v);
void        test_set_str    (CruGraph *g, guint node, const char *name, const char *v);

/* Problems of a given severity whose message contains @needle. */
guint       test_count_problems (CruPlan *plan, CruSeverity severity, const char *needle);
const CruProblem *test_find_problem (CruPlan *plan, CruSeverity severity, const char *needle);
void        test_dump_problems (CruPlan *plan);
/* Compiles and runs; asserts success. */
void        test_run_graph  (CruGraph *g, const CruPlanOptions *options);
gboolean    test_files_equal (const char *a, const char *b);
/* A tensor of a model folder read as f32 (g_free). */
float      *test_read_tensor (const char *model_dir, const char *name, guint64 *numel);
