/* test-tool.c — see test-tool.h */
#include "test-tool.h"

#include <string.h>

gboolean
test_tool_run (const char *const *argv,
               int                *exit_status,
               char              **output)
{
  g_autofree char *program = g_find_program_in_path (argv[0]);
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;

  if (program == NULL)
    {
      g_autofree char *message = g_strdup_printf ("%s is not installed", argv[0]);
      g_test_skip (message);
      return FALSE;
    }

  g_ptr_array_add (args, program);
  for (guint i = 1; argv[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);

  g_spawn_sync (NULL, (char **) args->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                &out, &err, &wait_status, &error);
  g_assert_no_error (error);

  *exit_status = g_spawn_check_wait_status (wait_status, NULL) ? 0 : 1;
  *output = g_strconcat (out, err, NULL);
  g_test_message ("%s: exit %d\n%s", argv[0], *exit_status, *output);
  return TRUE;
}

static void
element_free (gpointer data)
{
  TestXmlElement *element = data;

  g_free (element->path);
  g_strfreev (element->attr_names);
  g_strfreev (element->attr_values);
  g_string_free (element->text, TRUE);
  g_free (element);
}

typedef struct
{
  GPtrArray *elements;
  GPtrArray *open;     /* stack of TestXmlElement, not owned */
} ParseState;

static void
on_start (GMarkupParseContext *context,
          const char          *name,
          const char         **attr_names,
          const char         **attr_values,
          gpointer             user_data,
          GError             **error)
{
  ParseState *state = user_data;
  TestXmlElement *element = g_new0 (TestXmlElement, 1);

  if (state->open->len > 0)
    {
      TestXmlElement *parent = g_ptr_array_index (state->open, state->open->len - 1);
      element->path = g_strconcat (parent->path, "/", name, NULL);
    }
  else
    element->path = g_strdup (name);

  element->attr_names = g_strdupv ((char **) attr_names);
  element->attr_values = g_strdupv ((char **) attr_values);
  element->text = g_string_new (NULL);
  g_ptr_array_add (state->elements, element);
  g_ptr_array_add (state->open, element);
}

static void
on_end (GMarkupParseContext *context,
        const char          *name,
        gpointer             user_data,
        GError             **error)
{
  ParseState *state = user_data;

  g_ptr_array_remove_index (state->open, state->open->len - 1);
}

static void
on_text (GMarkupParseContext *context,
         const char          *text,
         gsize                len,
         gpointer             user_data,
         GError             **error)
{
  ParseState *state = user_data;

  if (state->open->len > 0)
    {
      TestXmlElement *element = g_ptr_array_index (state->open, state->open->len - 1);
      g_string_append_len (element->text, text, len);
    }
}

GPtrArray *
test_xml_parse (const char *filename)
{
  static const GMarkupParser parser = { on_start, on_end, on_text, NULL, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(GPtrArray) open = g_ptr_array_new ();
  GPtrArray *elements = g_ptr_array_new_with_free_func (element_free);
  ParseState state = { elements, open };
  GMarkupParseContext *context;
  gsize length;

  if (!g_file_get_contents (filename, &contents, &length, &error))
    {
      g_test_fail_printf ("%s", error->message);
      g_ptr_array_unref (elements);
      return NULL;
    }

  context = g_markup_parse_context_new (&parser, G_MARKUP_TREAT_CDATA_AS_TEXT, &state, NULL);
  if (!g_markup_parse_context_parse (context, contents, length, &error) ||
      !g_markup_parse_context_end_parse (context, &error))
    {
      g_test_fail_printf ("%s is not well-formed XML: %s", filename, error->message);
      g_clear_pointer (&elements, g_ptr_array_unref);
    }
  g_markup_parse_context_free (context);
  return elements;
}

GPtrArray *
test_xml_find (GPtrArray  *elements,
               const char *path_suffix)
{
  GPtrArray *found = g_ptr_array_new ();

  for (guint i = 0; i < elements->len; i++)
    {
      TestXmlElement *element = g_ptr_array_index (elements, i);
      gsize plen = strlen (element->path), slen = strlen (path_suffix);

      if (plen >= slen && strcmp (element->path + plen - slen, path_suffix) == 0 &&
          (plen == slen || element->path[plen - slen - 1] == '/'))
        g_ptr_array_add (found, element);
    }
  return found;
}

const char *
test_xml_attr (const TestXmlElement *element,
               const char           *name)
{
  for (guint i = 0; element->attr_names[i] != NULL; i++)
    if (strcmp (element->attr_names[i], name) == 0)
      return element->attr_values[i];
  return NULL;
}

char *
test_source_path (const char *first_element,
                  ...)
{
  const char *root = g_getenv ("CRU_SOURCE_DIR");
  g_autoptr(GPtrArray) parts = g_ptr_array_new ();
  va_list args;

  g_assert_nonnull (root);
  g_ptr_array_add (parts, (gpointer) root);
  va_start (args, first_element);
  for (const char *part = first_element; part != NULL; part = va_arg (args, const char *))
    g_ptr_array_add (parts, (gpointer) part);
  va_end (args);
  g_ptr_array_add (parts, NULL);
  return g_build_filenamev ((char **) parts->pdata);
}
