/* test-flatpak.c — the Flatpak manifests are valid, minimal in what they grant, pinned, and
 * agree with the desktop files on the application id. */
#include <json-glib/json-glib.h>
#include <string.h>

#include "test-tool.h"

#define BASE_APP_ID "io.github.crucible_merge.Crucible"

static JsonObject *
load_manifest (const char *app_id,
               JsonParser *parser)
{
  g_autofree char *name = g_strconcat (app_id, ".json", NULL);
  g_autofree char *path = test_source_path ("flatpak", name, NULL);
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_node_get_object (root);
}

static GPtrArray *
string_array (JsonObject *object,
              const char *member)
{
  GPtrArray *strings = g_ptr_array_new ();
  JsonArray *array;

  if (!json_object_has_member (object, member))
    return strings;
  array = json_object_get_array_member (object, member);
  g_assert_nonnull (array);
  for (guint i = 0; i < json_array_get_length (array); i++)
    g_ptr_array_add (strings, (gpointer) json_array_get_string_element (array, i));
  return strings;
}

static gboolean
strings_contain (GPtrArray  *strings,
                 const char *wanted)
{
  for (guint i = 0; i < strings->len; i++)
    if (g_strcmp0 (g_ptr_array_index (strings, i), wanted) == 0)
      return TRUE;
  return FALSE;
}

static JsonObject *
find_module (JsonObject *manifest,
             const char *name)
{
  JsonArray *modules = json_object_get_array_member (manifest, "modules");

  for (guint i = 0; i < json_array_get_length (modules); i++)
    {
      JsonObject *module = json_array_get_object_element (modules, i);
      if (g_strcmp0 (json_object_get_string_member (module, "name"), name) == 0)
        return module;
    }
  return NULL;
}

static gboolean
is_sha256 (const char *text)
{
  if (text == NULL || strlen (text) != 64)
    return FALSE;
  for (const char *c = text; *c; c++)
    if (!g_ascii_isxdigit (*c) || g_ascii_isupper (*c))
      return FALSE;
  return TRUE;
}

static void
check_manifest (const char *app_id,
                const char *icon_file)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *manifest = load_manifest (app_id, parser);
  g_autoptr(GPtrArray) finish_args = string_array (manifest, "finish-args");
  static const char *const allowed[] = {
    "--share=ipc", "--socket=wayland", "--socket=fallback-x11", "--device=dri",
  };
  const char *runtime_version;
  JsonArray *modules;
  JsonObject *openblas, *crucible;
  g_autoptr(GPtrArray) crucible_opts = NULL;
  g_autofree char *icon = NULL;

  g_assert_cmpstr (json_object_get_string_member (manifest, "id"), ==, app_id);
  g_assert_cmpstr (json_object_get_string_member (manifest, "runtime"), ==, "org.gnome.Platform");
  g_assert_cmpstr (json_object_get_string_member (manifest, "sdk"), ==, "org.gnome.Sdk");
  runtime_version = json_object_get_string_member (manifest, "runtime-version");
  g_assert_true (g_strcmp0 (runtime_version, "49") == 0 ||
                 g_strcmp0 (runtime_version, "50") == 0);
  g_assert_cmpstr (json_object_get_string_member (manifest, "command"), ==, "crucible");

  /* The sandbox gets a display and the GPU for rendering, nothing more: files come in
   * through the file-chooser portal. */
  g_assert_cmpuint (finish_args->len, ==, G_N_ELEMENTS (allowed));
  for (gsize i = 0; i < G_N_ELEMENTS (allowed); i++)
    g_assert_true (strings_contain (finish_args, allowed[i]));

  /* Every downloaded source is pinned. */
  modules = json_object_get_array_member (manifest, "modules");
  g_assert_nonnull (modules);
  for (guint m = 0; m < json_array_get_length (modules); m++)
    {
      JsonObject *module = json_array_get_object_element (modules, m);
      JsonArray *sources = json_object_get_array_member (module, "sources");

      g_assert_nonnull (sources);
      for (guint s = 0; s < json_array_get_length (sources); s++)
        {
          JsonObject *source = json_array_get_object_element (sources, s);
          const char *type = json_object_get_string_member (source, "type");

          if (g_strcmp0 (type, "archive") == 0 || g_strcmp0 (type, "file") == 0)
            {
              const char *url = json_object_get_string_member_with_default (source, "url", NULL);
              g_assert_true (g_str_has_prefix (url, "https://"));
              g_assert_true (is_sha256 (json_object_get_string_member_with_default (source,
                                                                                      "sha256",
                                                                                      NULL)));
            }
          else if (g_strcmp0 (type, "git") == 0)
            g_assert_true (json_object_has_member (source, "commit"));
          else
            g_assert_cmpstr (type, ==, "dir");
        }
    }

  openblas = find_module (manifest, "openblas");
  g_assert_nonnull (openblas);
  {
    JsonArray *commands = json_object_get_array_member (openblas, "build-commands");
    const char *build = json_array_get_string_element (commands, 0);
    static const char *const needed[] = {
      "DYNAMIC_ARCH=1", "NO_AFFINITY=1", "USE_OPENMP=0", "NOFORTRAN=1",
    };

    for (gsize i = 0; i < G_N_ELEMENTS (needed); i++)
      g_assert_nonnull (strstr (build, needed[i]));
  }

  /* The application is the last module, built with Meson and without CUDA. */
  crucible = json_array_get_object_element (modules, json_array_get_length (modules) - 1);
  g_assert_cmpstr (json_object_get_string_member (crucible, "name"), ==, "crucible");
  g_assert_cmpstr (json_object_get_string_member (crucible, "buildsystem"), ==, "meson");
  crucible_opts = string_array (crucible, "config-opts");
  g_assert_true (strings_contain (crucible_opts, "-Dcuda=disabled"));
  if (g_str_has_suffix (app_id, ".Devel"))
    g_assert_true (strings_contain (crucible_opts, "-Dprofile=development"));

  icon = test_source_path ("data", "icons", "hicolor", "scalable", "apps", icon_file, NULL);
  g_assert_true (g_file_test (icon, G_FILE_TEST_EXISTS));
}

static void
test_release_manifest (void)
{
  check_manifest (BASE_APP_ID, BASE_APP_ID ".svg");
}

static void
test_devel_manifest (void)
{
  check_manifest (BASE_APP_ID ".Devel", BASE_APP_ID ".Devel.svg");
}

/* The data files the manifest's app id names exist under that name. */
static void
test_data_files_match_app_id (void)
{
  static const char *const files[] = {
    "data/" BASE_APP_ID ".desktop.in",
    "data/" BASE_APP_ID ".metainfo.xml.in",
    "data/" BASE_APP_ID ".gschema.xml.in",
    "data/" BASE_APP_ID ".mime.xml.in",
    "data/icons/hicolor/scalable/apps/" BASE_APP_ID ".svg",
    "data/icons/hicolor/symbolic/apps/" BASE_APP_ID "-symbolic.svg",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = test_source_path (files[i], NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        g_test_fail_printf ("%s is missing", files[i]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/data/flatpak/release-manifest-is-minimal-and-pinned", test_release_manifest);
  g_test_add_func ("/data/flatpak/devel-manifest-is-minimal-and-pinned", test_devel_manifest);
  g_test_add_func ("/data/flatpak/data-files-named-after-app-id", test_data_files_match_app_id);
  return g_test_run ();
}
