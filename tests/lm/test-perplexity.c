/* test-perplexity.c — perplexity (data/demo/README.md protocol) against independent numbers
 *
 * The short-text references were computed once with the numpy forward pass of
 * tools/perplexity.py (independent of this code) on the first whole lines of each eval text
 * up to 10240 bytes:
 *   python3 -c "d=open(F,'rb').read()[:10240]; d=d[:d.rindex(b'\n')+1]" > slices/NAME.txt
 *   tools/perplexity.py data/demo/base data/demo/ft-python data/demo/base-bf16 \
 *       --eval-dir slices --json ref.json
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <unistd.h>
#include <string.h>

#include "cru-error.h"
#include "cru-perplexity.h"

typedef struct {
  const char *model, *text;
  gsize       bytes;
  double      ppl;
} Case;

static const Case cases[] = {
  { "base", "python", 10236, 4.690723612651025 },
  { "base", "c", 10239, 4.58097733334567 },
  { "base", "prose", 10196, 3.8211422829754893 },
  { "ft-python", "python", 10236, 4.391083081491126 },
  { "ft-python", "c", 10239, 5.535404437825833 },
  { "base-bf16", "prose", 10196, 3.8200421187973443 },
};

static char *
read_text (const char *name, gsize *len)
{
  g_autofree char *path = g_strdup_printf ("%s/eval/%s.txt", g_getenv ("CRU_DEMO_DIR"), name);
  g_autoptr (GError) error = NULL;
  char *data = NULL;
  g_assert_true (g_file_get_contents (path, &data, len, &error));
  return data;
}

static CruModel *
open_demo (const char *name)
{
  g_autofree char *dir = g_build_filename (g_getenv ("CRU_DEMO_DIR"), name, NULL);
  g_autoptr (GError) error = NULL;
  CruModel *m = cru_model_open (dir, &error);
  g_assert_no_error (error);
  return m;
}

static void
check_slice (gconstpointer data)
{
  const Case *c = data;
  gsize len;
  g_autofree char *text = read_text (c->text, &len);
  g_autoptr (CruModel) model = open_demo (c->model);
  g_autoptr (GError) error = NULL;
  CruPerplexity p;

  g_assert_cmpuint (len, >=, c->bytes);
  g_assert_cmpint (text[c->bytes - 1], ==, '\n');
  g_assert_true (cru_perplexity_run (model, NULL, text, c->bytes, 256, 2, NULL, NULL, &p, NULL,
                                     &error));
  g_assert_no_error (error);
  g_assert_cmpuint (p.n_scored, ==, c->bytes);
  g_assert_cmpuint (p.n_windows, ==, (c->bytes + 254) / 255);
  g_test_message ("%s on %s: %.8f, reference %.8f (%.1e relative), %.0f tokens/s", c->model,
                  c->text, p.ppl, c->ppl, fabs (p.ppl / c->ppl - 1), p.n_scored / p.seconds);
  g_assert_cmpfloat (fabs (p.ppl / c->ppl - 1), <, 1e-5);
  cru_perplexity_clear (&p);
}

/* The whole python.txt (100000 bytes) against REFERENCE.json. */
static void
test_full_file (void)
{
  gsize len;
  g_autofree char *text = read_text ("python", &len);
  g_autoptr (CruModel) model = open_demo ("base");
  g_autoptr (GError) error = NULL;
  CruPerplexity p;

  g_assert_cmpuint (len, ==, 100000);
  g_assert_true (cru_perplexity_run (model, NULL, text, len, 256, 0, NULL, NULL, &p, NULL,
                                     &error));
  g_assert_no_error (error);
  g_assert_cmpuint (p.n_scored, ==, 100000);
  g_test_message ("base on python.txt: %.6f in %.2f s (%.0f tokens/s)", p.ppl, p.seconds,
                  p.n_scored / p.seconds);
  g_assert_cmpfloat (fabs (p.ppl / 4.040855389130871 - 1), <, 1e-5);
  cru_perplexity_clear (&p);
}

/* A different window size changes the windows, not the protocol: every byte scored once. */
static void
test_ctx_and_errors (void)
{
  gsize len;
  g_autofree char *text = read_text ("c", &len);
  g_autoptr (CruModel) model = open_demo ("base");
  g_autoptr (GError) error = NULL;
  CruPerplexity p;

  g_assert_true (cru_perplexity_run (model, NULL, text, 3000, 64, 1, NULL, NULL, &p, NULL,
                                     &error));
  g_assert_no_error (error);
  g_assert_cmpuint (p.n_scored, ==, 3000);
  g_assert_cmpuint (p.n_windows, ==, (3000 + 62) / 63);
  g_assert_cmpfloat (p.ppl, >, 1.0);
  g_assert_cmpfloat (p.ppl, <, 20.0);
  cru_perplexity_clear (&p);

  g_assert_false (cru_perplexity_run (model, NULL, text, 100, 1, 1, NULL, NULL, &p, NULL,
                                      &error));
  g_assert_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM);
  g_clear_error (&error);
  g_assert_false (cru_perplexity_run (model, NULL, "", 0, 256, 1, NULL, NULL, &p, NULL, &error));
  g_assert_nonnull (error);
}

/* crucible-cli eval --json on a file */
static void
test_cli_eval_json (void)
{
  const char *cli = g_getenv ("CRU_CLI");
  g_autofree char *model = g_build_filename (g_getenv ("CRU_DEMO_DIR"), "base", NULL);
  g_autofree char *tmp = NULL, *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len;
  g_autofree char *text = read_text ("python", &len);
  int fd, status;
  JsonObject *r;

  if (!cli)
    {
      g_test_skip ("CRU_CLI is not set");
      return;
    }
  fd = g_file_open_tmp ("cru-eval-XXXXXX.txt", &tmp, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (g_file_set_contents (tmp, text, 10236, &error));
  {
    const char *argv[] = { cli, "eval", model, "--text", tmp, "--json", NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &status, &error));
  }
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  r = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                    "results"), 0);
  g_assert_cmpfloat (fabs (json_object_get_double_member (r, "ppl") / 4.690723612651025 - 1),
                     <, 1e-5);
  g_assert_cmpint (json_object_get_int_member (r, "scored_tokens"), ==, 10236);
  g_unlink (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/lm/perplexity/slice/%s/%s", cases[i].model,
                                               cases[i].text);
      g_test_add_data_func (path, &cases[i], check_slice);
    }
  g_test_add_func ("/lm/perplexity/full-python-matches-reference", test_full_file);
  g_test_add_func ("/lm/perplexity/ctx-and-errors", test_ctx_and_errors);
  g_test_add_func ("/lm/perplexity/cli-eval-json", test_cli_eval_json);
  return g_test_run ();
}
