/* test-cli.c — crucible-cli plan, merge and run end to end on the demo models
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "engine-test-util.h"

#include <glib/gstdio.h>
#include <locale.h>
#include <signal.h>
#include <string.h>

static const char *
cli (void)
{
  return g_getenv ("CRU_CLI");
}

static char *
recipe (const char *name)
{
  const char *src = g_getenv ("CRU_SOURCE_DIR");
  return g_build_filename (src ? src : ".", "tests", "cli", "recipes", name, NULL);
}

#define NEEDS_CLI_AND_DEMO()                                         \
  if (cli () == NULL || !g_file_test (cli (), G_FILE_TEST_IS_EXECUTABLE)) \
    {                                                                \
      g_test_skip ("CRU_CLI is not set");                            \
      return;                                                        \
    }                                                                \
  if (test_demo_dir () == NULL)                                      \
    {                                                                \
      g_test_skip ("data/demo is missing");                          \
      return;                                                        \
    }

/* Runs the CLI with @envp (NULL = this process's environment); returns its exit status,
 * captures stdout/stderr. */
static int
run_cli_v (char **envp, char **out, char **err, va_list ap)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int status = -1;
  const char *arg;

  g_ptr_array_add (argv, (char *) cli ());
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err, &status, &error));
  g_assert_no_error (error);
  if (err && *err)
    g_test_message ("stderr: %s", *err);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static int
run_cli (char **out, char **err, ...)
{
  va_list ap;
  int status;

  va_start (ap, err);
  status = run_cli_v (NULL, out, err, ap);
  va_end (ap);
  return status;
}

static int
run_cli_env (char **envp, char **out, char **err, ...)
{
  va_list ap;
  int status;

  va_start (ap, err);
  status = run_cli_v (envp, out, err, ap);
  va_end (ap);
  return status;
}

static void
test_merge_ties_yaml (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "merged", NULL);
  g_autofree char *yml = recipe ("ties.yml");
  g_autofree char *stdout_text = NULL, *stderr_text = NULL;
  g_autofree char *model = g_build_filename (out, "model.safetensors", NULL);
  g_autofree char *config = g_build_filename (out, "config.json", NULL);
  g_autofree char *config_text = NULL;

  g_assert_cmpint (run_cli (&stdout_text, &stderr_text, "merge", yml, out, "--threads", "2",
                            NULL), ==, 0);
  g_assert_nonnull (strstr (stdout_text, "Merged 39 tensors"));
  g_assert_true (g_file_test (model, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_get_contents (config, &config_text, NULL, NULL));
  g_assert_nonnull (strstr (config_text, "bfloat16"));

  /* the same folder again: refused (exit 3) unless --overwrite */
  g_clear_pointer (&stdout_text, g_free);
  g_clear_pointer (&stderr_text, g_free);
  g_assert_cmpint (run_cli (&stdout_text, &stderr_text, "merge", yml, out, NULL), ==, 3);
  g_assert_nonnull (strstr (stderr_text, "already exists"));
  g_clear_pointer (&stdout_text, g_free);
  g_clear_pointer (&stderr_text, g_free);
  g_assert_cmpint (run_cli (&stdout_text, &stderr_text, "merge", yml, out, "--overwrite", NULL),
                   ==, 0);
}

static void
test_run_crucible_graph (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out1 = g_build_filename (tmp, "one", NULL);
  g_autofree char *out2 = g_build_filename (tmp, "two", NULL);
  g_autofree char *graph = g_build_filename (out1, "crucible-recipe.crucible", NULL);
  g_autofree char *copy = g_build_filename (tmp, "recipe.crucible", NULL);
  g_autofree char *yml = recipe ("frankenmerge.yml");
  g_autofree char *m1 = g_build_filename (out1, "model.safetensors", NULL);
  g_autofree char *m2 = g_build_filename (out2, "model.safetensors", NULL);
  g_autofree char *text = NULL;
  g_autofree char *so = NULL, *se = NULL;

  g_assert_cmpint (run_cli (&so, &se, "merge", yml, out1, NULL), ==, 0);
  /* the recipe saved with the model runs again into another folder, identically */
  g_assert_true (g_file_get_contents (graph, &text, NULL, NULL));
  g_assert_true (g_file_set_contents (copy, text, -1, NULL));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);
  g_assert_cmpint (run_cli (&so, &se, "run", graph, "--out", out2, NULL), ==, 0);
  g_assert_true (test_files_equal (m1, m2));
}

static void
test_plan_json (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "merged", NULL);
  g_autofree char *yml = recipe ("slerp-gradient.yml");
  g_autofree char *so = NULL, *se = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *root, *est;

  g_assert_cmpint (run_cli (&so, &se, "plan", yml, "--json", "--out", out, "--threads", "3",
                            NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, so, -1, &error));
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_get_boolean_member (root, "runnable"));
  est = json_object_get_object_member (root, "estimate");
  g_assert_cmpint (json_object_get_int_member (est, "threads"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (est, "peak_ram_bytes"), >, 0);
  g_assert_cmpint (json_object_get_int_member (est, "bytes_read"), ==, 2 * 804992 * 4);
  g_assert_true (json_object_has_member (est, "seconds"));
  g_assert_cmpint (json_object_get_int_member (root, "tensors"), ==, 39);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (root, "output"),
                                                  "path"), ==, out);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

static void
test_exit_codes (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *yml = recipe ("typo.yml");
  g_autofree char *so = NULL, *se = NULL;

  g_assert_cmpint (run_cli (&so, &se, "plan", yml, NULL), ==, 3);
  g_assert_nonnull (strstr (so, "density must be"));
  g_assert_nonnull (strstr (so, "did you mean “density”"));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);
  g_assert_cmpint (run_cli (&so, &se, "merge", NULL), ==, 2);
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);
  g_assert_cmpint (run_cli (&so, &se, "plan", "/nonexistent/recipe.yml", NULL), ==, 1);
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);
  g_assert_cmpint (run_cli (&so, &se, "merge", yml, "/tmp/crucible-never", "--threads", "-1",
                            NULL), ==, 2);
}

static void
test_sigint_leaves_nothing (void)
{
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *a = g_build_filename (tmp, "base", NULL);
  g_autofree char *b = g_build_filename (tmp, "ft", NULL);
  g_autofree char *yml = g_build_filename (tmp, "slerp.yml", NULL);
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GError) error = NULL;
  TestModelSpec spec;
  gboolean signalled = FALSE;
  char *line;
  GDir *dir;
  const char *name;

  test_spec_init (&spec);
  spec.layers = 16, spec.hidden = 384, spec.intermediate = 1024, spec.vocab = 8000;
  test_write_model (a, &spec);
  spec.seed = 7;
  test_write_model (b, &spec);
  text = g_strdup_printf ("merge_method: slerp\nbase_model: %s\nmodels:\n  - model: %s\n"
                          "  - model: %s\nparameters:\n  t: 0.5\ndtype: float32\n", a, a, b);
  g_assert_true (g_file_set_contents (yml, text, -1, NULL));

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                           &error, cli (), "merge", yml, out, "--json-progress", "--threads",
                           "2", NULL);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  while ((line = g_data_input_stream_read_line (lines, NULL, NULL, NULL)) != NULL)
    {
      if (!signalled && strstr (line, "\"phase\":\"merge\"")
          && !strstr (line, "\"bytes_done\":0,"))
        {
          g_subprocess_send_signal (proc, SIGINT);
          signalled = TRUE;
        }
      g_free (line);
    }
  g_assert_true (g_subprocess_wait (proc, NULL, &error));
  if (!signalled)
    {
      g_test_skip ("the merge finished before any progress was reported");
      return;
    }
  if (g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 0)
    {
      g_test_skip ("the merge finished before the signal arrived");
      return;
    }
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 130);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  dir = g_dir_open (tmp, 0, NULL);
  while ((name = g_dir_read_name (dir)))
    g_assert_null (strstr (name, "crucible-tmp"));
  g_dir_close (dir);
}

static guint
count_substrings (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *at = strstr (text, needle); at; at = strstr (at + 1, needle))
    n++;
  return n;
}

static gboolean
has_cyrillic (const char *text)
{
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c >= 0x0400 && c <= 0x04FF)
        return TRUE;
    }
  return FALSE;
}

/* Under LANGUAGE=ru the CLI speaks Russian (the build's catalogs, CRU_LOCALEDIR), still
 * leaves out the plan's repeat of the importer's warning, and keeps --json in English. */
static void
test_translated (void)
{
#ifdef CRU_TEST_LOCALEDIR
  NEEDS_CLI_AND_DEMO ();
  g_autofree char *mo = g_build_filename (CRU_TEST_LOCALEDIR, "ru", "LC_MESSAGES",
                                          GETTEXT_PACKAGE ".mo", NULL);
  g_autofree char *tmp = test_tmpdir ();
  g_autofree char *out = g_build_filename (tmp, "merged", NULL);
  g_autofree char *typo = recipe ("typo.yml");
  g_autofree char *ties = recipe ("ties.yml");
  g_autofree char *so = NULL, *se = NULL;
  g_auto(GStrv) env = g_get_environ ();

  if (!g_file_test (mo, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("the Russian catalog is not built");
      return;
    }
  if (setlocale (LC_ALL, "C.UTF-8") == NULL)
    {
      g_test_skip ("no C.UTF-8 locale (LANGUAGE is ignored under plain C)");
      return;
    }
  setlocale (LC_ALL, "C");
  env = g_environ_setenv (env, "LC_ALL", "C.UTF-8", TRUE);
  env = g_environ_setenv (env, "LANGUAGE", "ru", TRUE);
  env = g_environ_setenv (env, "CRU_LOCALEDIR", CRU_TEST_LOCALEDIR, TRUE);

  g_assert_cmpint (run_cli_env (env, &so, &se, "--help", NULL), ==, 0);
  g_assert_nonnull (strstr (so, "Команды:"));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);

  /* the importer's warning once, not again from the plan, in whatever words */
  g_assert_cmpint (run_cli_env (env, &so, &se, "merge", typo, out, NULL), ==, 3);
  g_assert_nonnull (strstr (se, "предупреждение: ties: неизвестный параметр «densty»"));
  g_assert_cmpuint (count_substrings (se, "densty"), ==, 1);
  g_assert_nonnull (strstr (se, "ошибка: ties: density"));
  g_assert_nonnull (strstr (se, "crucible-cli: слияние запустить нельзя"));
  g_assert_null (strstr (se, "error:"));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);

  /* --json is for programs: English */
  g_assert_cmpint (run_cli_env (env, &so, &se, "plan", typo, "--json", "--out", out, NULL), ==, 3);
  g_assert_nonnull (strstr (so, "did you mean “density”"));
  g_assert_false (has_cyrillic (so));
  g_clear_pointer (&so, g_free);
  g_clear_pointer (&se, g_free);

  g_assert_cmpint (run_cli_env (env, &so, &se, "merge", ties, out, "--threads", "2", NULL), ==, 0);
  g_assert_nonnull (strstr (so, "Объединено 39 тензоров в "));
#else
  g_test_skip ("built without the catalogs (-Dgui=false)");
#endif
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/merge/ties-yaml", test_merge_ties_yaml);
  g_test_add_func ("/cli/run/crucible-graph", test_run_crucible_graph);
  g_test_add_func ("/cli/plan/json", test_plan_json);
  g_test_add_func ("/cli/exit-codes", test_exit_codes);
  g_test_add_func ("/cli/merge/sigint-leaves-nothing", test_sigint_leaves_nothing);
  g_test_add_func ("/cli/locale/ru", test_translated);
  return g_test_run ();
}
