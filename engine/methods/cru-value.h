/* cru-value.h — parameter values: scalar, string, per-layer gradient, or name-filter list
 * (METHODS.md, "Parameter values").
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
  CRU_VALUE_SCALAR,     /* numbers and booleans (0/1) */
  CRU_VALUE_STRING,     /* enum choices ("square"), paths, dtype names */
  CRU_VALUE_STRINGS,    /* a list of strings (MoE prompts) */
  CRU_VALUE_GRADIENT,   /* list of numbers interpolated over the layers of a slice */
  CRU_VALUE_FILTERED,   /* ordered list of {filter, value}; first match wins */
} CruValueKind;

typedef struct _CruValue CruValue;

typedef struct {
  char     *filter;   /* NULL or "*" = matches every tensor; else substring of the name */
  CruValue *value;
} CruFilterEntry;

struct _CruValue {
  CruValueKind kind;
  double       scalar;     /* SCALAR */
  char        *string;     /* STRING */
  GStrv        strings;    /* STRINGS */
  GArray      *gradient;   /* GRADIENT: double, length ≥ 1 */
  GPtrArray   *filters;    /* FILTERED: CruFilterEntry* */
};

CruValue *cru_value_new_scalar   (double v);
CruValue *cru_value_new_bool     (gboolean v);
CruValue *cru_value_new_string   (const char *s);
CruValue *cru_value_new_strings  (const char *const *strv);
CruValue *cru_value_new_gradient (const double *values, guint n);
CruValue *cru_value_new_filtered (void);
/* Appends an entry (takes ownership of @value). @filter NULL = default entry. */
void      cru_value_add_filter   (CruValue *v, const char *filter, CruValue *value);
CruValue *cru_value_copy         (const CruValue *v);
void      cru_value_free         (CruValue *v);
gboolean  cru_value_equal        (const CruValue *a, const CruValue *b);

/* Layer position of a tensor: t = idx/(n−1) for output layer idx of a slice of n layers
 * (1 when n = 1); 0 for tensors outside layers. */
double    cru_value_layer_t      (int idx_in_slice, int n_layers_in_slice);
/* Resolves a numeric value for a tensor (filters by name, gradient by @t). Returns FALSE
 * (and leaves *out alone) when the value is a string or no filter entry matches. */
gboolean  cru_value_resolve      (const CruValue *v, const char *tensor_name, double t,
                                  double *out);
/* Resolves a string value (through filters); NULL when not a string. */
const char *cru_value_resolve_string (const CruValue *v, const char *tensor_name);
/* Calls @func for every number the value can take (each scalar, gradient point, filter
 * value) — used to range-check a value once instead of per tensor. */
void      cru_value_foreach_number (const CruValue *v,
                                    void (*func) (double v, gpointer user_data),
                                    gpointer user_data);

/* JSON form used by .crucible files: number | bool | string | [numbers] (gradient) |
 * [strings] | [{"filter": "...", "value": V}, …]. */
JsonNode *cru_value_to_json      (const CruValue *v);
CruValue *cru_value_from_json    (JsonNode *node, GError **error);
/* Short human text: "0.5", "0 → 1 (5 points)", "self_attn: 0.3, mlp: 0.7, * : 0.5". */
char     *cru_value_to_display   (const CruValue *v);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruValue, cru_value_free)

G_END_DECLS
