/* test-desktop.c — the built desktop entry, metainfo, GSettings schema, MIME type and icons
 * are valid and agree with each other on the application id. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "test-tool.h"

#define BASE_APP_ID "io.github.crucible_merge.Crucible"

static char *
built (const char *suffix)
{
  return g_strconcat (CRU_DATA_BUILD_DIR, "/", CRU_APP_ID, suffix, NULL);
}

static void
test_desktop_validates (void)
{
  g_autofree char *path = built (".desktop");
  g_autofree char *output = NULL;
  const char *argv[] = { "desktop-file-validate", path, NULL };
  int status;

  if (!test_tool_run (argv, &status, &output))
    return;
  g_assert_cmpint (status, ==, 0);
  g_assert_null (strstr (output, "error:"));
  g_assert_null (strstr (output, "warning:"));
}

static void
test_desktop_keys (void)
{
  g_autofree char *path = built (".desktop");
  g_autoptr(GKeyFile) keys = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *exec = NULL, *icon = NULL, *comment_ru = NULL;
  g_auto(GStrv) mime = NULL, categories = NULL;

  g_key_file_load_from_file (keys, path, G_KEY_FILE_KEEP_TRANSLATIONS, &error);
  g_assert_no_error (error);

  /* The GUI opens the *.crucible files (or URIs) it is given on the command line. */
  exec = g_key_file_get_string (keys, "Desktop Entry", "Exec", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exec, ==, "crucible %U");

  icon = g_key_file_get_string (keys, "Desktop Entry", "Icon", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (icon, ==, CRU_APP_ID);

  mime = g_key_file_get_string_list (keys, "Desktop Entry", "MimeType", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_strv_contains ((const char *const *) mime, "application/x-crucible-graph"));

  categories = g_key_file_get_string_list (keys, "Desktop Entry", "Categories", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_strv_contains ((const char *const *) categories, "Development"));
  g_assert_true (g_strv_contains ((const char *const *) categories, "Science"));

  /* Translations are merged in at build time. */
  comment_ru = g_key_file_get_locale_string (keys, "Desktop Entry", "Comment", "ru", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (comment_ru, !=, "Merge language models visually");
}

static void
test_metainfo_validates (void)
{
  g_autofree char *path = built (".metainfo.xml");
  g_autofree char *output = NULL;
  const char *argv[] = { "appstreamcli", "validate", "--no-net", "--no-color", path, NULL };
  int status;

  if (!test_tool_run (argv, &status, &output))
    return;
  /* Exit status is non-zero on errors and warnings; infos (e.g. appstream < 1.0 not
   * knowing <developer>) are accepted. */
  g_assert_cmpint (status, ==, 0);
  g_assert_null (strstr (output, "\nE: "));
  g_assert_null (strstr (output, "\nW: "));
}

static const char *
single_text (GPtrArray  *elements,
             const char *suffix)
{
  g_autoptr(GPtrArray) found = test_xml_find (elements, suffix);

  g_assert_cmpuint (found->len, >=, 1);
  return ((TestXmlElement *) g_ptr_array_index (found, 0))->text->str;
}

static void
test_metainfo_content (void)
{
  g_autofree char *path = built (".metainfo.xml");
  g_autoptr(GPtrArray) xml = test_xml_parse (path);
  g_autoptr(GPtrArray) binaries = NULL, releases = NULL, images = NULL, rating = NULL;
  g_autoptr(GPtrArray) summaries = NULL;
  gboolean have_gui = FALSE, have_cli = FALSE, have_ru_summary = FALSE;

  g_assert_nonnull (xml);
  g_assert_cmpstr (single_text (xml, "component/id"), ==, CRU_APP_ID);
  g_assert_cmpstr (single_text (xml, "component/launchable"), ==, CRU_APP_ID ".desktop");
  g_assert_cmpstr (single_text (xml, "component/metadata_license"), ==, "CC0-1.0");
  g_assert_cmpstr (single_text (xml, "component/project_license"), ==, "GPL-3.0-or-later");
  g_assert_cmpstr (single_text (xml, "provides/mediatype"), ==, "application/x-crucible-graph");
  g_assert_cmpstr (single_text (xml, "component/translation"), ==, GETTEXT_PACKAGE);

  binaries = test_xml_find (xml, "provides/binary");
  for (guint i = 0; i < binaries->len; i++)
    {
      const char *name = ((TestXmlElement *) g_ptr_array_index (binaries, i))->text->str;
      have_gui |= g_str_equal (name, "crucible");
      have_cli |= g_str_equal (name, "crucible-cli");
    }
  g_assert_true (have_gui && have_cli);

  releases = test_xml_find (xml, "releases/release");
  g_assert_cmpuint (releases->len, >=, 1);
  g_assert_cmpstr (test_xml_attr (g_ptr_array_index (releases, 0), "version"), ==, CRU_VERSION);

  rating = test_xml_find (xml, "component/content_rating");
  g_assert_cmpuint (rating->len, ==, 1);
  g_assert_cmpstr (test_xml_attr (g_ptr_array_index (rating, 0), "type"), ==, "oars-1.1");

  /* Screenshots point at the images committed in data/screenshots/. */
  images = test_xml_find (xml, "screenshot/image");
  g_assert_cmpuint (images->len, >=, 1);
  for (guint i = 0; i < images->len; i++)
    {
      const char *url = ((TestXmlElement *) g_ptr_array_index (images, i))->text->str;
      const char *prefix = "https://raw.githubusercontent.com/crucible-merge/crucible/main/";
      g_autofree char *local = NULL;

      g_assert_true (g_str_has_prefix (url, prefix));
      local = test_source_path (url + strlen (prefix), NULL);
      if (!g_file_test (local, G_FILE_TEST_EXISTS))
        g_test_message ("screenshot %s is not committed yet", local);
    }

  summaries = test_xml_find (xml, "component/summary");
  for (guint i = 0; i < summaries->len; i++)
    {
      const char *lang = test_xml_attr (g_ptr_array_index (summaries, i), "xml:lang");
      have_ru_summary |= (lang != NULL && g_str_equal (lang, "ru"));
    }
  g_assert_true (have_ru_summary);
}

static void
test_schema_compiles_strict (void)
{
  g_autofree char *output = NULL;
  const char *argv[] = { "glib-compile-schemas", "--strict", "--dry-run",
                         CRU_DATA_BUILD_DIR, NULL };
  int status;

  if (!test_tool_run (argv, &status, &output))
    return;
  g_assert_cmpint (status, ==, 0);
}

static void
test_schema_keys (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSettingsSchemaSource) source = NULL;
  g_autoptr(GSettingsSchema) schema = NULL;
  static const struct { const char *key, *type, *default_value; } expected[] = {
    { "window-width", "i", NULL },
    { "window-height", "i", NULL },
    { "window-maximized", "b", "false" },
    { "recent-files", "as", "@as []" },
    { "default-threads", "u", "uint32 0" },
    { "default-output-dtype", "s", "'bfloat16'" },
    { "last-output-folder", "s", "''" },
    { "show-welcome", "b", "true" },
  };

  source = g_settings_schema_source_new_from_directory (CRU_DATA_BUILD_DIR, NULL, FALSE, &error);
  g_assert_no_error (error);
  schema = g_settings_schema_source_lookup (source, CRU_APP_ID, FALSE);
  g_assert_nonnull (schema);
  {
    g_autofree char *dotted = g_strdup (CRU_APP_ID);
    g_autofree char *path = NULL;

    g_strdelimit (dotted, ".", '/');
    path = g_strdup_printf ("/%s/", dotted);
    g_assert_cmpstr (g_settings_schema_get_path (schema), ==, path);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autoptr(GSettingsSchemaKey) key = NULL;
      g_autoptr(GVariant) value = NULL;
      g_autofree char *printed = NULL;

      g_assert_true (g_settings_schema_has_key (schema, expected[i].key));
      key = g_settings_schema_get_key (schema, expected[i].key);
      g_assert_cmpstr (g_variant_type_peek_string (g_settings_schema_key_get_value_type (key)),
                       ==, expected[i].type);
      if (expected[i].default_value == NULL)
        continue;
      value = g_settings_schema_key_get_default_value (key);
      printed = g_variant_print (value, TRUE);
      g_assert_cmpstr (printed, ==, expected[i].default_value);
    }
}

static void
test_mime_definition (void)
{
  g_autofree char *path = g_strconcat (CRU_DATA_BUILD_DIR, "/", CRU_APP_ID, ".xml", NULL);
  g_autoptr(GPtrArray) xml = test_xml_parse (path);
  g_autoptr(GPtrArray) types = NULL, globs = NULL, matches = NULL;

  g_assert_nonnull (xml);
  types = test_xml_find (xml, "mime-info/mime-type");
  g_assert_cmpuint (types->len, ==, 1);
  g_assert_cmpstr (test_xml_attr (g_ptr_array_index (types, 0), "type"), ==,
                   "application/x-crucible-graph");
  globs = test_xml_find (xml, "mime-type/glob");
  g_assert_cmpuint (globs->len, ==, 1);
  g_assert_cmpstr (test_xml_attr (g_ptr_array_index (globs, 0), "pattern"), ==, "*.crucible");
  matches = test_xml_find (xml, "magic/match");
  g_assert_cmpuint (matches->len, ==, 1);
  g_assert_cmpstr (test_xml_attr (g_ptr_array_index (matches, 0), "value"), ==,
                   "\"crucible-graph\"");
}

/* Installs the MIME type into a private database and asks GIO what a graph file is. */
static void
test_mime_detects_graph_files (void)
{
  g_autofree char *source = g_strconcat (CRU_DATA_BUILD_DIR, "/", CRU_APP_ID, ".xml", NULL);
  const char *mime_dir = g_getenv ("TEST_MIME_DIR");
  g_autofree char *target = NULL, *contents = NULL, *output = NULL;
  g_autofree char *by_name = NULL, *by_content = NULL;
  const char *argv[] = { "update-mime-database", mime_dir, NULL };
  const char *graph = "{\n  \"format\" : \"crucible-graph\",\n  \"version\" : \"1.0\",\n"
                      "  \"nodes\" : [] }\n";
  g_autoptr(GError) error = NULL;
  gboolean uncertain = TRUE;
  int status;

  target = g_build_filename (mime_dir, "packages", CRU_APP_ID ".xml", NULL);
  g_file_get_contents (source, &contents, NULL, &error);
  g_assert_no_error (error);
  g_file_set_contents (target, contents, -1, &error);
  g_assert_no_error (error);
  if (!test_tool_run (argv, &status, &output))
    return;
  g_assert_cmpint (status, ==, 0);

  by_name = g_content_type_guess ("model-soup.crucible", NULL, 0, &uncertain);
  g_assert_cmpstr (by_name, ==, "application/x-crucible-graph");
  by_content = g_content_type_guess (NULL, (const guchar *) graph, strlen (graph), &uncertain);
  g_assert_cmpstr (by_content, ==, "application/x-crucible-graph");
}

static void
check_svg (const char *relative,
           const char *view_box)
{
  g_autofree char *path = test_source_path ("data", "icons", "hicolor", relative, NULL);
  g_autoptr(GPtrArray) xml = test_xml_parse (path);
  TestXmlElement *root;

  g_assert_nonnull (xml);
  root = g_ptr_array_index (xml, 0);
  g_assert_cmpstr (root->path, ==, "svg");
  g_assert_cmpstr (test_xml_attr (root, "viewBox"), ==, view_box);
}

static void
test_icons (void)
{
  check_svg ("scalable/apps/" BASE_APP_ID ".svg", "0 0 128 128");
  check_svg ("scalable/apps/" BASE_APP_ID ".Devel.svg", "0 0 128 128");
  check_svg ("symbolic/apps/" BASE_APP_ID "-symbolic.svg", "0 0 16 16");
}

int
main (int argc, char **argv)
{
  g_autofree char *mime_root = g_dir_make_tmp ("crucible-mime-XXXXXX", NULL);
  g_autofree char *mime_dir = g_build_filename (mime_root, "mime", NULL);
  g_autofree char *packages = g_build_filename (mime_dir, "packages", NULL);
  int result;

  /* GIO reads the MIME database once: point it at a private one before any lookup. */
  g_mkdir_with_parents (packages, 0755);
  g_setenv ("XDG_DATA_HOME", mime_root, TRUE);
  g_setenv ("XDG_DATA_DIRS", mime_root, TRUE);
  g_setenv ("TEST_MIME_DIR", mime_dir, TRUE);

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/desktop/validates", test_desktop_validates);
  g_test_add_func ("/data/desktop/opens-graph-files-and-uses-app-icon", test_desktop_keys);
  g_test_add_func ("/data/metainfo/validates", test_metainfo_validates);
  g_test_add_func ("/data/metainfo/describes-app-binaries-and-release", test_metainfo_content);
  g_test_add_func ("/data/schema/compiles-strict", test_schema_compiles_strict);
  g_test_add_func ("/data/schema/has-keys-with-defaults", test_schema_keys);
  g_test_add_func ("/data/mime/defines-glob-and-magic", test_mime_definition);
  g_test_add_func ("/data/mime/detects-graph-files-by-name-and-content",
                   test_mime_detects_graph_files);
  g_test_add_func ("/data/icons/are-svg-with-expected-size", test_icons);
  result = g_test_run ();

  {
    const char *rm[] = { "rm", "-rf", mime_root, NULL };
    g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                  NULL);
  }
  return result;
}
