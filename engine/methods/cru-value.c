/* cru-value.c — parameter values: scalar, string, per-layer gradient, or name-filter list
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-value.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#include "cru-error.h"

static CruValue *
value_new (CruValueKind kind)
{
  CruValue *v = g_new0 (CruValue, 1);
  v->kind = kind;
  return v;
}

CruValue *
cru_value_new_scalar (double v)
{
  CruValue *value = value_new (CRU_VALUE_SCALAR);
  value->scalar = v;
  return value;
}

CruValue *
cru_value_new_bool (gboolean v)
{
  return cru_value_new_scalar (v ? 1.0 : 0.0);
}

CruValue *
cru_value_new_string (const char *s)
{
  CruValue *value = value_new (CRU_VALUE_STRING);
  value->string = g_strdup (s ? s : "");
  return value;
}

CruValue *
cru_value_new_strings (const char *const *strv)
{
  CruValue *value = value_new (CRU_VALUE_STRINGS);
  value->strings = strv ? g_strdupv ((char **) strv) : g_new0 (char *, 1);
  return value;
}

CruValue *
cru_value_new_gradient (const double *values, guint n)
{
  CruValue *value = value_new (CRU_VALUE_GRADIENT);
  value->gradient = g_array_sized_new (FALSE, FALSE, sizeof (double), n);
  if (n > 0)
    g_array_append_vals (value->gradient, values, n);
  return value;
}

static void
filter_entry_free (gpointer data)
{
  CruFilterEntry *entry = data;
  g_free (entry->filter);
  cru_value_free (entry->value);
  g_free (entry);
}

CruValue *
cru_value_new_filtered (void)
{
  CruValue *value = value_new (CRU_VALUE_FILTERED);
  value->filters = g_ptr_array_new_with_free_func (filter_entry_free);
  return value;
}

void
cru_value_add_filter (CruValue *v, const char *filter, CruValue *value)
{
  CruFilterEntry *entry;

  g_return_if_fail (v != NULL && v->kind == CRU_VALUE_FILTERED);
  g_return_if_fail (value != NULL);

  entry = g_new0 (CruFilterEntry, 1);
  entry->filter = g_strdup (filter);
  entry->value = value;
  g_ptr_array_add (v->filters, entry);
}

CruValue *
cru_value_copy (const CruValue *v)
{
  CruValue *copy;

  if (v == NULL)
    return NULL;

  switch (v->kind)
    {
    case CRU_VALUE_SCALAR:
      return cru_value_new_scalar (v->scalar);
    case CRU_VALUE_STRING:
      return cru_value_new_string (v->string);
    case CRU_VALUE_STRINGS:
      return cru_value_new_strings ((const char *const *) v->strings);
    case CRU_VALUE_GRADIENT:
      return cru_value_new_gradient ((const double *) v->gradient->data, v->gradient->len);
    case CRU_VALUE_FILTERED:
      copy = cru_value_new_filtered ();
      for (guint i = 0; i < v->filters->len; i++)
        {
          const CruFilterEntry *entry = g_ptr_array_index (v->filters, i);
          cru_value_add_filter (copy, entry->filter, cru_value_copy (entry->value));
        }
      return copy;
    default:
      g_return_val_if_reached (NULL);
    }
}

void
cru_value_free (CruValue *v)
{
  if (v == NULL)
    return;
  g_free (v->string);
  g_strfreev (v->strings);
  if (v->gradient)
    g_array_unref (v->gradient);
  if (v->filters)
    g_ptr_array_unref (v->filters);
  g_free (v);
}

gboolean
cru_value_equal (const CruValue *a, const CruValue *b)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL || a->kind != b->kind)
    return FALSE;

  switch (a->kind)
    {
    case CRU_VALUE_SCALAR:
      return a->scalar == b->scalar;
    case CRU_VALUE_STRING:
      return g_strcmp0 (a->string, b->string) == 0;
    case CRU_VALUE_STRINGS:
      return g_strv_equal ((const char *const *) a->strings,
                           (const char *const *) b->strings);
    case CRU_VALUE_GRADIENT:
      if (a->gradient->len != b->gradient->len)
        return FALSE;
      for (guint i = 0; i < a->gradient->len; i++)
        if (g_array_index (a->gradient, double, i) != g_array_index (b->gradient, double, i))
          return FALSE;
      return TRUE;
    case CRU_VALUE_FILTERED:
      if (a->filters->len != b->filters->len)
        return FALSE;
      for (guint i = 0; i < a->filters->len; i++)
        {
          const CruFilterEntry *ea = g_ptr_array_index (a->filters, i);
          const CruFilterEntry *eb = g_ptr_array_index (b->filters, i);
          if (g_strcmp0 (ea->filter, eb->filter) != 0 || !cru_value_equal (ea->value, eb->value))
            return FALSE;
        }
      return TRUE;
    default:
      return FALSE;
    }
}

double
cru_value_layer_t (int idx_in_slice, int n_layers_in_slice)
{
  if (idx_in_slice < 0 || n_layers_in_slice <= 0)
    return 0.0;
  if (n_layers_in_slice == 1)
    return 1.0;
  return (double) idx_in_slice / (double) (n_layers_in_slice - 1);
}

static gboolean
filter_matches (const char *filter, const char *tensor_name)
{
  if (filter == NULL || filter[0] == '\0' || strcmp (filter, "*") == 0)
    return TRUE;
  return tensor_name != NULL && strstr (tensor_name, filter) != NULL;
}

static const CruFilterEntry *
find_filter (const CruValue *v, const char *tensor_name)
{
  for (guint i = 0; i < v->filters->len; i++)
    {
      const CruFilterEntry *entry = g_ptr_array_index (v->filters, i);
      if (filter_matches (entry->filter, tensor_name))
        return entry;
    }
  return NULL;
}

static double
gradient_at (const GArray *gradient, double t)
{
  const double *v = (const double *) gradient->data;
  guint len = gradient->len;
  double s, f;
  guint i0, i1;

  if (len == 1)
    return v[0];
  t = CLAMP (t, 0.0, 1.0);
  s = t * (double) (len - 1);
  i0 = (guint) floor (s);
  if (i0 > len - 1)
    i0 = len - 1;
  i1 = MIN (i0 + 1, len - 1);
  f = s - (double) i0;
  return (1.0 - f) * v[i0] + f * v[i1];
}

gboolean
cru_value_resolve (const CruValue *v, const char *tensor_name, double t, double *out)
{
  const CruFilterEntry *entry;

  if (v == NULL)
    return FALSE;

  switch (v->kind)
    {
    case CRU_VALUE_SCALAR:
      *out = v->scalar;
      return TRUE;
    case CRU_VALUE_GRADIENT:
      if (v->gradient->len == 0)
        return FALSE;
      *out = gradient_at (v->gradient, t);
      return TRUE;
    case CRU_VALUE_FILTERED:
      entry = find_filter (v, tensor_name);
      return entry != NULL && cru_value_resolve (entry->value, tensor_name, t, out);
    default:
      return FALSE;
    }
}

const char *
cru_value_resolve_string (const CruValue *v, const char *tensor_name)
{
  const CruFilterEntry *entry;

  if (v == NULL)
    return NULL;
  if (v->kind == CRU_VALUE_STRING)
    return v->string;
  if (v->kind == CRU_VALUE_FILTERED)
    {
      entry = find_filter (v, tensor_name);
      return entry ? cru_value_resolve_string (entry->value, tensor_name) : NULL;
    }
  return NULL;
}

void
cru_value_foreach_number (const CruValue *v,
                          void (*func) (double v, gpointer user_data),
                          gpointer user_data)
{
  if (v == NULL)
    return;
  switch (v->kind)
    {
    case CRU_VALUE_SCALAR:
      func (v->scalar, user_data);
      break;
    case CRU_VALUE_GRADIENT:
      for (guint i = 0; i < v->gradient->len; i++)
        func (g_array_index (v->gradient, double, i), user_data);
      break;
    case CRU_VALUE_FILTERED:
      for (guint i = 0; i < v->filters->len; i++)
        {
          const CruFilterEntry *entry = g_ptr_array_index (v->filters, i);
          cru_value_foreach_number (entry->value, func, user_data);
        }
      break;
    default:
      break;
    }
}

JsonNode *
cru_value_to_json (const CruValue *v)
{
  JsonNode *node;
  JsonArray *array;

  g_return_val_if_fail (v != NULL, NULL);

  switch (v->kind)
    {
    case CRU_VALUE_SCALAR:
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_double (node, v->scalar);
      return node;
    case CRU_VALUE_STRING:
      node = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (node, v->string);
      return node;
    case CRU_VALUE_STRINGS:
      array = json_array_new ();
      for (guint i = 0; v->strings[i]; i++)
        json_array_add_string_element (array, v->strings[i]);
      break;
    case CRU_VALUE_GRADIENT:
      array = json_array_new ();
      for (guint i = 0; i < v->gradient->len; i++)
        json_array_add_double_element (array, g_array_index (v->gradient, double, i));
      break;
    case CRU_VALUE_FILTERED:
      array = json_array_new ();
      for (guint i = 0; i < v->filters->len; i++)
        {
          const CruFilterEntry *entry = g_ptr_array_index (v->filters, i);
          JsonObject *object = json_object_new ();
          if (entry->filter)
            json_object_set_string_member (object, "filter", entry->filter);
          json_object_set_member (object, "value", cru_value_to_json (entry->value));
          json_array_add_object_element (array, object);
        }
      break;
    default:
      g_return_val_if_reached (NULL);
    }

  node = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (node, array);
  return node;
}

static gboolean
node_is_number (JsonNode *node)
{
  GType type;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  return type == G_TYPE_DOUBLE || type == G_TYPE_INT64 || type == G_TYPE_BOOLEAN;
}

static double
node_get_number (JsonNode *node)
{
  GType type = json_node_get_value_type (node);

  if (type == G_TYPE_BOOLEAN)
    return json_node_get_boolean (node) ? 1.0 : 0.0;
  if (type == G_TYPE_INT64)
    return (double) json_node_get_int (node);
  return json_node_get_double (node);
}

CruValue *
cru_value_from_json (JsonNode *node, GError **error)
{
  JsonArray *array;
  guint n;
  JsonNode *first;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("A parameter value is missing (null)"));
      return NULL;
    }

  if (JSON_NODE_HOLDS_VALUE (node))
    {
      if (node_is_number (node))
        return cru_value_new_scalar (node_get_number (node));
      if (json_node_get_value_type (node) == G_TYPE_STRING)
        return cru_value_new_string (json_node_get_string (node));
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      array = json_node_get_array (node);
      n = json_array_get_length (array);
      if (n == 0)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("A parameter value is an empty list; give at least one number"));
          return NULL;
        }
      first = json_array_get_element (array, 0);

      if (node_is_number (first))
        {
          g_autofree double *values = g_new (double, n);
          for (guint i = 0; i < n; i++)
            {
              JsonNode *e = json_array_get_element (array, i);
              if (!node_is_number (e))
                {
                  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                               _("A gradient must contain only numbers (item %u is not a number)"),
                               i + 1);
                  return NULL;
                }
              values[i] = node_get_number (e);
            }
          return cru_value_new_gradient (values, n);
        }

      if (JSON_NODE_HOLDS_VALUE (first) && json_node_get_value_type (first) == G_TYPE_STRING)
        {
          g_autoptr(GPtrArray) strv = g_ptr_array_new ();
          for (guint i = 0; i < n; i++)
            {
              JsonNode *e = json_array_get_element (array, i);
              if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
                {
                  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                               _("A list of texts must contain only texts (item %u is not)"),
                               i + 1);
                  return NULL;
                }
              g_ptr_array_add (strv, (gpointer) json_node_get_string (e));
            }
          g_ptr_array_add (strv, NULL);
          return cru_value_new_strings ((const char *const *) strv->pdata);
        }

      if (JSON_NODE_HOLDS_OBJECT (first))
        {
          g_autoptr(CruValue) value = cru_value_new_filtered ();
          for (guint i = 0; i < n; i++)
            {
              JsonNode *e = json_array_get_element (array, i);
              JsonObject *object;
              const char *filter = NULL;
              CruValue *inner;

              if (!JSON_NODE_HOLDS_OBJECT (e))
                {
                  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                               _("A filter list must contain only {\"filter\", \"value\"} "
                                 "entries (item %u is not)"), i + 1);
                  return NULL;
                }
              object = json_node_get_object (e);
              if (!json_object_has_member (object, "value"))
                {
                  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                               _("Filter entry %u has no \"value\""), i + 1);
                  return NULL;
                }
              if (json_object_has_member (object, "filter"))
                {
                  JsonNode *f = json_object_get_member (object, "filter");
                  if (!JSON_NODE_HOLDS_NULL (f))
                    {
                      if (!JSON_NODE_HOLDS_VALUE (f) || json_node_get_value_type (f) != G_TYPE_STRING)
                        {
                          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                                       _("The \"filter\" of entry %u must be a text"), i + 1);
                          return NULL;
                        }
                      filter = json_node_get_string (f);
                    }
                }
              inner = cru_value_from_json (json_object_get_member (object, "value"), error);
              if (inner == NULL)
                return NULL;
              cru_value_add_filter (value, filter, inner);
            }
          return g_steal_pointer (&value);
        }
    }

  g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
               _("A parameter value must be a number, a true/false, a text, a list of numbers, "
                 "a list of texts or a list of {\"filter\", \"value\"} entries"));
  return NULL;
}

static void
append_number (GString *s, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd (buf, sizeof buf, "%.6g", v);
  g_string_append (s, buf);
}

static void
append_display (GString *s, const CruValue *v)
{
  guint n;

  switch (v->kind)
    {
    case CRU_VALUE_SCALAR:
      append_number (s, v->scalar);
      break;
    case CRU_VALUE_STRING:
      g_string_append (s, v->string);
      break;
    case CRU_VALUE_STRINGS:
      n = g_strv_length (v->strings);
      /* TRANSLATORS: a list of n texts, e.g. MoE prompts */
      g_string_append_printf (s, g_dngettext (GETTEXT_PACKAGE, "%u text", "%u texts", n), n);
      break;
    case CRU_VALUE_GRADIENT:
      n = v->gradient->len;
      append_number (s, g_array_index (v->gradient, double, 0));
      if (n > 1)
        {
          g_string_append (s, " → ");
          append_number (s, g_array_index (v->gradient, double, n - 1));
          g_string_append_c (s, ' ');
          g_string_append_printf (s, g_dngettext (GETTEXT_PACKAGE, "(%u point)", "(%u points)", n), n);
        }
      break;
    case CRU_VALUE_FILTERED:
      for (guint i = 0; i < v->filters->len; i++)
        {
          const CruFilterEntry *entry = g_ptr_array_index (v->filters, i);
          if (i > 0)
            g_string_append (s, ", ");
          g_string_append (s, entry->filter && entry->filter[0] ? entry->filter : "*");
          g_string_append (s, ": ");
          append_display (s, entry->value);
        }
      break;
    default:
      break;
    }
}

char *
cru_value_to_display (const CruValue *v)
{
  GString *s = g_string_new (NULL);
  if (v != NULL)
    append_display (s, v);
  return g_string_free (s, FALSE);
}
