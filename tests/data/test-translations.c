/* test-translations.c — every catalog compiles, is complete (no untranslated or fuzzy
 * messages), covers the committed template, and the translation file lists are consistent. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "test-tool.h"

/* Reads "N translated messages, M fuzzy translations, K untranslated messages." */
static void
parse_statistics (const char *output,
                  guint      *translated,
                  guint      *fuzzy,
                  guint      *untranslated)
{
  const char *p;

  *translated = *fuzzy = *untranslated = 0;
  if ((p = strstr (output, " translated message")) != NULL)
    {
      while (p > output && g_ascii_isdigit (p[-1]))
        p--;
      *translated = (guint) g_ascii_strtoull (p, NULL, 10);
    }
  if ((p = strstr (output, " fuzzy translation")) != NULL)
    {
      while (p > output && g_ascii_isdigit (p[-1]))
        p--;
      *fuzzy = (guint) g_ascii_strtoull (p, NULL, 10);
    }
  if ((p = strstr (output, " untranslated message")) != NULL)
    {
      while (p > output && g_ascii_isdigit (p[-1]))
        p--;
      *untranslated = (guint) g_ascii_strtoull (p, NULL, 10);
    }
}

static void
check_complete (const char *po_path,
                const char *label)
{
  g_autofree char *output = NULL;
  const char *argv[] = { "msgfmt", "--check", "--statistics", "-o", "/dev/null", po_path, NULL };
  guint translated, fuzzy, untranslated;
  int status;

  if (!test_tool_run (argv, &status, &output))
    return;
  if (status != 0)
    {
      g_test_fail_printf ("%s does not compile:\n%s", label, output);
      return;
    }
  parse_statistics (output, &translated, &fuzzy, &untranslated);
  if (fuzzy != 0 || untranslated != 0)
    g_test_fail_printf ("%s: %u fuzzy and %u untranslated messages (run msgattrib "
                        "--only-fuzzy / --untranslated to list them)", label, fuzzy, untranslated);
  g_assert_cmpuint (translated, >, 0);
}

static void
test_catalog_complete (gconstpointer data)
{
  const char *lang = data;
  g_autofree char *name = g_strconcat (lang, ".po", NULL);
  g_autofree char *path = test_source_path ("po", name, NULL);

  check_complete (path, name);
}

/* Merges the committed template into the catalog, as `crucible-update-po` would, and checks
 * that nothing in the template is left untranslated. */
static void
test_catalog_covers_template (gconstpointer data)
{
  const char *lang = data;
  g_autofree char *name = g_strconcat (lang, ".po", NULL);
  g_autofree char *po = test_source_path ("po", name, NULL);
  g_autofree char *pot = test_source_path ("po", GETTEXT_PACKAGE ".pot", NULL);
  g_autofree char *dir = g_dir_make_tmp ("crucible-po-XXXXXX", NULL);
  g_autofree char *merged = g_build_filename (dir, name, NULL);
  g_autofree char *output = NULL;
  const char *argv[] = { "msgmerge", "--quiet", "--no-fuzzy-matching", "-o", merged, po, pot,
                         NULL };
  int status;

  if (!g_file_test (pot, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("po/" GETTEXT_PACKAGE ".pot is not committed");
      return;
    }
  if (test_tool_run (argv, &status, &output))
    {
      g_assert_cmpint (status, ==, 0);
      check_complete (merged, name);
    }
  g_unlink (merged);
  g_rmdir (dir);
}

/* The template xgettext makes from the sources now (meson's "glib" preset keywords), so that
 * a string added without a translation fails here, not in front of a user. */
static char *
fresh_template (const char *dir)
{
  g_autofree char *src = test_source_path (".", NULL);
  g_autofree char *potfiles = test_source_path ("po", "POTFILES.in", NULL);
  g_autofree char *pot = g_build_filename (dir, "fresh.pot", NULL);
  g_autofree char *output = NULL;
  g_autofree char *files_from = g_strconcat ("--files-from=", potfiles, NULL);
  g_autofree char *directory = g_strconcat ("--directory=", src, NULL);
  g_autofree char *out = g_strconcat ("--output=", pot, NULL);
  const char *argv[] = {
    "xgettext", "--from-code=UTF-8", "--add-comments", "--keyword=_", "--keyword=N_",
    "--keyword=C_:1c,2", "--keyword=NC_:1c,2", "--keyword=g_dcgettext:2",
    "--keyword=g_dngettext:2,3", "--keyword=g_dpgettext2:2c,3", "--flag=N_:1:pass-c-format",
    "--flag=C_:2:pass-c-format", "--flag=NC_:2:pass-c-format",
    "--flag=g_dngettext:2:pass-c-format", "--flag=g_strdup_printf:1:c-format",
    "--flag=g_string_printf:2:c-format", "--flag=g_string_append_printf:2:c-format",
    "--flag=g_error_new:3:c-format", "--flag=g_set_error:4:c-format",
    files_from, directory, out, NULL
  };
  int status;

  if (!test_tool_run (argv, &status, &output))
    return NULL;
  if (status != 0)
    {
      g_test_fail_printf ("xgettext failed on po/POTFILES.in:\n%s", output);
      return NULL;
    }
  /* "…%" G_GUINT64_FORMAT "…" is cut at the macro, so the catalog's msgid never matches the
   * one looked up at run time: translatable strings must use PRIu64/PRId64 (<inttypes.h>,
   * which xgettext understands) or %zu. */
  if (output != NULL && strstr (output, "ends in the middle of a directive") != NULL)
    g_test_fail_printf ("a translatable string is cut by a format macro (use PRIu64, PRId64 or "
                        "%%zu, not G_G*_FORMAT):\n%s", output);
  return g_steal_pointer (&pot);
}

static void
test_catalog_covers_sources (gconstpointer data)
{
  const char *lang = data;
  g_autofree char *name = g_strconcat (lang, ".po", NULL);
  g_autofree char *po = test_source_path ("po", name, NULL);
  g_autofree char *dir = g_dir_make_tmp ("crucible-po-XXXXXX", NULL);
  g_autofree char *pot = fresh_template (dir);
  g_autofree char *merged = g_build_filename (dir, name, NULL);
  g_autofree char *output = NULL;
  int status;

  if (pot != NULL)
    {
      const char *argv[] = { "msgmerge", "--quiet", "--no-fuzzy-matching", "-o", merged, po,
                             pot, NULL };
      if (test_tool_run (argv, &status, &output))
        {
          g_assert_cmpint (status, ==, 0);
          check_complete (merged, name);
        }
      g_unlink (merged);
      g_unlink (pot);
    }
  g_rmdir (dir);
}

/* Does @path hold a string marked for translation? (tools/update-potfiles's test) */
static gboolean
has_translatable (const char *path)
{
  static GRegex *c_marks;
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  if (g_str_has_suffix (path, ".ui"))
    return strstr (text, "translatable=\"yes\"") != NULL;
  if (c_marks == NULL)
    c_marks = g_regex_new ("(^|[^A-Za-z0-9_])((N|C|NC)?_ ?\\(|(g_d?n?gettext|ngettext|"
                           "g_dpgettext2?) ?\\()", G_REGEX_MULTILINE, 0, NULL);
  return g_regex_match (c_marks, text, 0, NULL);
}

static void
collect_marked (const char *root, const char *rel, GPtrArray *found)
{
  g_autofree char *dir_path = g_build_filename (root, rel, NULL);
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child_rel = g_build_filename (rel, entry, NULL);
      g_autofree char *child = g_build_filename (root, child_rel, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        collect_marked (root, child_rel, found);
      else if ((g_str_has_suffix (entry, ".c") || g_str_has_suffix (entry, ".h")
                || g_str_has_suffix (entry, ".ui"))
               && has_translatable (child))
        g_ptr_array_add (found, g_steal_pointer (&child_rel));
    }
}

/* Every source file with marked strings is in POTFILES.in, or its strings are never
 * extracted (headers included: parameter labels live in macros there). */
static void
test_potfiles_complete (void)
{
  g_autofree char *root = test_source_path (".", NULL);
  g_autofree char *path = test_source_path ("po", "POTFILES.in", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  const char *const dirs[] = { "engine", "src", "ui" };

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    collect_marked (root, dirs[i], found);
  g_assert_cmpuint (found->len, >, 0);
  for (guint i = 0; i < found->len; i++)
    {
      g_autofree char *line = g_strconcat ("\n", (char *) g_ptr_array_index (found, i), "\n",
                                           NULL);
      if (strstr (contents, line) == NULL)
        g_test_fail_printf ("%s has translatable strings but is not in po/POTFILES.in; run "
                            "tools/update-potfiles", (char *) g_ptr_array_index (found, i));
    }
}

static void
test_linguas_match_catalogs (void)
{
  g_autofree char *linguas_path = test_source_path ("po", "LINGUAS", NULL);
  g_autofree char *po_dir = test_source_path ("po", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GPtrArray) listed = g_ptr_array_new_with_free_func (g_free);
  const char *entry;

  g_file_get_contents (linguas_path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit_set (contents, " \t\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (lines[i][0] != '\0' && lines[i][0] != '#')
      {
        g_autofree char *name = g_strconcat (lines[i], ".po", NULL);
        g_autofree char *path = test_source_path ("po", name, NULL);

        if (!g_file_test (path, G_FILE_TEST_EXISTS))
          g_test_fail_printf ("LINGUAS lists %s but po/%s is missing", lines[i], name);
        g_ptr_array_add (listed, g_strdup (lines[i]));
      }

  dir = g_dir_open (po_dir, 0, &error);
  g_assert_no_error (error);
  while ((entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (entry, ".po"))
      {
        g_autofree char *lang = g_strndup (entry, strlen (entry) - 3);
        if (!g_ptr_array_find_with_equal_func (listed, lang, g_str_equal, NULL))
          g_test_fail_printf ("po/%s exists but %s is not in LINGUAS", entry, lang);
      }
}

/* A file listed in POTFILES.in that was renamed or deleted breaks `crucible-pot`. */
static void
test_potfiles_exist (void)
{
  g_autofree char *path = test_source_path ("po", "POTFILES.in", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  guint count = 0;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_autofree char *file = NULL;

      g_strstrip (lines[i]);
      if (lines[i][0] == '\0' || lines[i][0] == '#')
        continue;
      file = test_source_path (lines[i], NULL);
      if (!g_file_test (file, G_FILE_TEST_EXISTS))
        g_test_fail_printf ("POTFILES.in lists %s, which does not exist; run tools/update-potfiles",
                            lines[i]);
      count++;
    }
  g_assert_cmpuint (count, >, 0);
}

int
main (int argc, char **argv)
{
  static const char *const languages[] = { "ko", "ru", "zh_CN" };

  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (languages); i++)
    {
      g_autofree char *complete = g_strdup_printf ("/data/po/%s/compiles-with-no-untranslated-or-fuzzy",
                                                   languages[i]);
      g_autofree char *covers = g_strdup_printf ("/data/po/%s/covers-every-template-message",
                                                 languages[i]);
      g_test_add_data_func (complete, languages[i], test_catalog_complete);
      g_test_add_data_func (covers, languages[i], test_catalog_covers_template);
      g_free (covers);
      covers = g_strdup_printf ("/data/po/%s/covers-every-source-string", languages[i]);
      g_test_add_data_func (covers, languages[i], test_catalog_covers_sources);
    }
  g_test_add_func ("/data/po/potfiles-list-every-marked-file", test_potfiles_complete);
  g_test_add_func ("/data/po/linguas-match-catalogs", test_linguas_match_catalogs);
  g_test_add_func ("/data/po/potfiles-exist", test_potfiles_exist);
  return g_test_run ();
}
