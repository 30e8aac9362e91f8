/* test-forward.c — the CPU forward pass against data/demo/REFERENCE.json's forward_probe
 * (residual stream entering each layer, after the last layer, final norm, first logits)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "cru-forward.h"

#define N_LAYERS_MAX 64

typedef struct {
  int    n_layers;
  guint  hidden;
  guint  vocab;
  float  layer_in[N_LAYERS_MAX][8];
  float  last[8];
  float  normed[8];
  float  logits[16];
  double logsumexp;
  int    argmax;
} Probe;

static void
on_layer (gpointer data, guint seq, int layer, const float *h, guint n)
{
  Probe *p = data;
  memcpy (p->layer_in[layer], h + (gsize) (n - 1) * p->hidden, 8 * sizeof (float));
}

static void
on_last (gpointer data, guint seq, const float *h, guint n)
{
  Probe *p = data;
  memcpy (p->last, h + (gsize) (n - 1) * p->hidden, 8 * sizeof (float));
}

static void
on_norm (gpointer data, guint seq, const float *h, guint n)
{
  Probe *p = data;
  memcpy (p->normed, h + (gsize) (n - 1) * p->hidden, 8 * sizeof (float));
}

static void
on_logits (gpointer data, guint seq, const float *lg, guint n)
{
  Probe *p = data;
  const float *row = lg + (gsize) (n - 1) * p->vocab;
  double mx = row[0], sum = 0;

  memcpy (p->logits, row, 16 * sizeof (float));
  p->argmax = 0;
  for (guint i = 1; i < p->vocab; i++)
    if (row[i] > mx)
      mx = row[i], p->argmax = i;
  for (guint i = 0; i < p->vocab; i++)
    sum += exp (row[i] - mx);
  p->logsumexp = mx + log (sum);
}

static double
compare (const char *what, const float *got, JsonArray *want, guint n)
{
  double worst = 0;
  g_assert_cmpuint (json_array_get_length (want), ==, n);
  for (guint i = 0; i < n; i++)
    {
      double w = json_array_get_double_element (want, i);
      double err = fabs (got[i] - w) / MAX (1.0, fabs (w));
      worst = MAX (worst, err);
      if (err > 1e-4)
        g_printerr ("%s[%u]: got %.7f want %.7f\n", what, i, got[i], w);
    }
  return worst;
}

static JsonObject *
load_probe (JsonParser *parser, const char *name)
{
  g_autofree char *path = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "REFERENCE.json", NULL);
  g_autoptr (GError) error = NULL;
  JsonObject *root;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  root = json_node_get_object (json_parser_get_root (parser));
  root = json_object_get_object_member (root, "forward_probe");
  return json_object_get_object_member (json_object_get_object_member (root, "models"), name);
}

static void
check_model (gconstpointer data)
{
  const char *name = data;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *ref = load_probe (parser, name);
  g_autofree char *dir = g_build_filename (g_getenv ("CRU_DEMO_DIR"), name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CruModel) model = cru_model_open (dir, &error);
  CruForward *fw;
  JsonArray *ids_json = json_object_get_array_member (ref, "input_ids");
  guint n = json_array_get_length (ids_json);
  g_autofree gint32 *ids = g_new (gint32, n);
  const gint32 *seqs[1] = { ids };
  Probe probe = { 0 };
  CruForwardHooks hooks = { on_layer, on_last, on_norm, on_logits, &probe, NULL };
  JsonObject *layers = json_object_get_object_member (ref, "hidden_in_layer_first8");
  double worst = 0;

  g_assert_no_error (error);
  fw = cru_forward_new (model, &error);
  g_assert_no_error (error);
  probe.n_layers = cru_forward_get_config (fw)->n_layers;
  probe.hidden = cru_forward_get_config (fw)->hidden_size;
  probe.vocab = cru_forward_get_config (fw)->vocab_size;
  g_assert_cmpint (probe.n_layers, ==, json_object_get_size (layers));
  for (guint i = 0; i < n; i++)
    ids[i] = (gint32) json_array_get_int_element (ids_json, i);

  g_assert_true (cru_forward_run (fw, 1, seqs, &n, &hooks, NULL, &error));
  g_assert_no_error (error);

  for (int l = 0; l < probe.n_layers; l++)
    {
      g_autofree char *key = g_strdup_printf ("%d", l);
      worst = MAX (worst, compare (key, probe.layer_in[l],
                                   json_object_get_array_member (layers, key), 8));
    }
  worst = MAX (worst, compare ("last", probe.last,
                               json_object_get_array_member (ref,
                                                             "hidden_after_last_layer_first8"), 8));
  worst = MAX (worst, compare ("norm", probe.normed,
                               json_object_get_array_member (ref, "after_final_norm_first8"), 8));
  worst = MAX (worst, compare ("logits", probe.logits,
                               json_object_get_array_member (ref, "last_logits_first16"), 16));
  g_assert_cmpint (probe.argmax, ==, json_object_get_int_member (ref, "last_logits_argmax"));
  g_assert_cmpfloat_with_epsilon (probe.logsumexp,
                                  json_object_get_double_member (ref, "last_logits_logsumexp"),
                                  1e-4);
  g_test_message ("%s: worst relative error %.2e", name, worst);
  g_assert_cmpfloat (worst, <, 1e-4);
  cru_forward_free (fw);
}

/* Two sequences of different lengths in one call, on two threads, give the same numbers as
 * each alone (batching must not mix sequences). */
typedef struct {
  guint vocab;
  float last[2][260];
} Batch;

static void
on_batch_logits (gpointer data, guint seq, const float *lg, guint n)
{
  Batch *b = data;
  memcpy (b->last[seq], lg + (gsize) (n - 1) * b->vocab, b->vocab * sizeof (float));
}

static void
test_batch_matches_single (void)
{
  g_autofree char *dir = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "base", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CruModel) model = cru_model_open (dir, &error);
  CruForward *fw;
  static const gint32 a[] = { 256, 100, 101, 102, 32, 109, 97, 105, 110, 40, 41, 58, 10 };
  static const gint32 b[] = { 256, 84, 104, 101, 32 };
  const gint32 *both[2] = { b, a };
  guint lens[2] = { G_N_ELEMENTS (b), G_N_ELEMENTS (a) };
  Batch alone = { 0 }, together = { 0 };
  CruForwardHooks h1 = { NULL, NULL, NULL, on_batch_logits, &alone, NULL };
  CruForwardHooks h2 = { NULL, NULL, NULL, on_batch_logits, &together, NULL };

  g_assert_no_error (error);
  fw = cru_forward_new (model, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cru_forward_get_config (fw)->vocab_size, ==, 260);
  alone.vocab = together.vocab = 260;
  cru_forward_set_threads (fw, 1);
  /* alone: the hook stores into slot 0 each time */
  g_assert_true (cru_forward_run (fw, 1, &both[1], &lens[1], &h1, NULL, &error));
  memcpy (alone.last[1], alone.last[0], sizeof alone.last[0]);
  g_assert_true (cru_forward_run (fw, 1, &both[0], &lens[0], &h1, NULL, &error));
  cru_forward_set_threads (fw, 2);
  g_assert_true (cru_forward_run (fw, 2, both, lens, &h2, NULL, &error));
  g_assert_no_error (error);
  for (guint s = 0; s < 2; s++)
    for (guint i = 0; i < 260; i++)
      g_assert_cmpfloat_with_epsilon (together.last[s][i], alone.last[s][i], 1e-5);
  cru_forward_free (fw);
}

int
main (int argc, char **argv)
{
  static const char *models[] = { "base", "base-bf16", "ft-python", "ft-c", "ft-prose" };
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (models); i++)
    {
      g_autofree char *path = g_strdup_printf ("/lm/forward/probe/%s", models[i]);
      g_test_add_data_func (path, models[i], check_model);
    }
  g_test_add_func ("/lm/forward/batch-matches-single", test_batch_matches_single);
  return g_test_run ();
}
