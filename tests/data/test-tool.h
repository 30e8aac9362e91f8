/* test-tool.h — helpers shared by the desktop-integration tests: run an external validator,
 * parse an XML file into a small element list. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Runs argv (argv[0] looked up in PATH). Returns FALSE and marks the test skipped when the
 * program is not installed; otherwise stores the exit status and combined output. */
gboolean test_tool_run (const char *const *argv,
                        int                *exit_status,
                        char              **output);

/* One element of a parsed XML document: its name, its attributes, its own text, and its
 * ancestors' names joined with '/' (e.g. "component/provides/binary"). */
typedef struct
{
  char   *path;
  char  **attr_names;
  char  **attr_values;
  GString *text;
} TestXmlElement;

/* Parses an XML file with GMarkup; fails the test (and returns NULL) when it is not
 * well-formed. The array owns its elements. */
GPtrArray  *test_xml_parse (const char *filename);

/* Elements whose path ends with suffix (e.g. "provides/binary"). */
GPtrArray  *test_xml_find (GPtrArray  *elements,
                           const char *path_suffix);
const char *test_xml_attr (const TestXmlElement *element,
                           const char           *name);

/* Absolute path of a file in the source tree, from CRU_SOURCE_DIR. */
char       *test_source_path (const char *first_element, ...) G_GNUC_NULL_TERMINATED;

G_END_DECLS
