/* cru-mergekit-moe.c — mergekit-moe configs (base_model, gate_mode, experts with prompts)
 * to and from a graph with one MoE node.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-mergekit-yaml.h"
#include "cru-error.h"

#include <glib/gi18n-lib.h>
#include <string.h>

static const char *const top_keys[] = {
  "base_model", "gate_mode", "dtype", "experts_per_token", "experts", "shared_experts",
  "architecture", "seed", "random_seed", NULL
};
static const char *const expert_keys[] = {
  "source_model", "positive_prompts", "negative_prompts", "noise_scale", "residual_scale", NULL
};

gboolean
_cru_mergekit_is_moe (CruImporter *im, yaml_node_t *root)
{
  return root && root->type == YAML_MAPPING_NODE && _cru_import_map_get (im, root, "experts")
         && !_cru_import_map_get (im, root, "merge_method");
}

/* mergekit-moe's spellings to the graph's: gate modes and output architectures. */
static const char *
canonical_gate_mode (const char *s)
{
  static const char *const modes[] = { "hidden", "hidden_avg", "cheap_embed", "random",
                                       "uniform_random", NULL };
  if (g_str_equal (s, "hidden_last"))
    return "hidden";
  for (guint i = 0; modes[i]; i++)
    if (g_str_equal (s, modes[i]))
      return modes[i];
  return NULL;
}

static const char *
canonical_architecture (const char *s)
{
  if (!g_ascii_strcasecmp (s, "mixtral"))
    return "mixtral";
  if (!g_ascii_strcasecmp (s, "qwen") || !g_ascii_strcasecmp (s, "qwen2")
      || !g_ascii_strcasecmp (s, "qwen2_moe"))
    return "qwen2_moe";
  if (!g_ascii_strcasecmp (s, "qwen3") || !g_ascii_strcasecmp (s, "qwen3_moe"))
    return "qwen3_moe";
  return NULL;
}

static void
warn_unknown_keys (CruImporter *im, yaml_node_t *map, const char *const *known,
                   const char *where)
{
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
    {
      const char *key = _cru_import_scalar (yaml_document_get_node (im->doc, p->key));
      const char *close;

      if (key == NULL || g_strv_contains (known, key))
        continue;
      close = _cru_closest_name (key, known, g_strv_length ((char **) known));
      if (close)
        _cru_import_warn (im, _("%s: the setting “%s” of %s is not known — did you mean "
                                "“%s”? It was ignored"), im->label, key, where, close);
      else
        _cru_import_warn (im, _("%s: the setting “%s” of %s is not used by Crucible and was "
                                "ignored"), im->label, key, where);
    }
}

static gboolean
number_param (CruImporter *im, yaml_node_t *node, const char *name, GHashTable *params,
              GError **error)
{
  double v;

  if (node == NULL || _cru_import_is_null (node))
    return TRUE;
  if (!_cru_yaml_scalar_number (node, &v))
    return _cru_import_fail (im, node, error, _("“%s” must be a number"), name);
  g_hash_table_insert (params, g_strdup (name), cru_value_new_scalar (v));
  return TRUE;
}

static gboolean
prompts_param (CruImporter *im, yaml_node_t *node, const char *name, GHashTable *params,
               GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) list = NULL;

  if (node == NULL || _cru_import_is_null (node))
    return TRUE;
  if (node->type == YAML_SCALAR_NODE)
    g_strv_builder_add (b, _cru_import_scalar (node));
  else if (node->type == YAML_SEQUENCE_NODE)
    for (yaml_node_item_t *i = node->data.sequence.items.start;
         i < node->data.sequence.items.top; i++)
      {
        const char *s = _cru_import_scalar (yaml_document_get_node (im->doc, *i));
        if (s == NULL)
          return _cru_import_fail (im, yaml_document_get_node (im->doc, *i), error,
                                   _("“%s” must be a list of texts"), name);
        g_strv_builder_add (b, s);
      }
  else
    return _cru_import_fail (im, node, error, _("“%s” must be a list of texts"), name);
  list = g_strv_builder_end (b);
  g_hash_table_insert (params, g_strdup (name),
                       cru_value_new_strings ((const char *const *) list));
  return TRUE;
}

/* One entry of `experts:` or `shared_experts:` as a link into the MoE node. */
static gboolean
import_expert (CruImporter *im, yaml_node_t *entry, guint moe, const char *port, int slot,
               GError **error)
{
  yaml_node_t *source = _cru_import_map_get (im, entry, "source_model");
  guint model;
  CruLink *link;

  if (entry == NULL || entry->type != YAML_MAPPING_NODE)
    return _cru_import_fail (im, entry, error, _("an expert must be a mapping with "
                                                 "“source_model” and its prompts"));
  if (source == NULL)
    return _cru_import_fail (im, entry, error, _("an expert has no “source_model”"));
  warn_unknown_keys (im, entry, expert_keys, _("an expert"));
  if ((model = _cru_import_model (im, source, error)) == 0)
    return FALSE;
  link = _cru_import_add_link (im, model, moe, port, slot);
  return prompts_param (im, _cru_import_map_get (im, entry, "positive_prompts"),
                        "positive_prompts", link->params, error)
         && prompts_param (im, _cru_import_map_get (im, entry, "negative_prompts"),
                           "negative_prompts", link->params, error)
         && number_param (im, _cru_import_map_get (im, entry, "noise_scale"), "noise_scale",
                          link->params, error)
         && number_param (im, _cru_import_map_get (im, entry, "residual_scale"),
                          "residual_scale", link->params, error);
}

static gboolean
import_experts (CruImporter *im, yaml_node_t *list, guint moe, const char *port,
                GError **error)
{
  int slot = 0;

  if (list == NULL || _cru_import_is_null (list))
    return TRUE;
  if (list->type != YAML_SEQUENCE_NODE)
    return _cru_import_fail (im, list, error, _("“%s” must be a list of experts"),
                             g_str_equal (port, CRU_PORT_EXPERT) ? "experts" : "shared_experts");
  for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
       i++)
    if (!import_expert (im, yaml_document_get_node (im->doc, *i), moe, port, slot++, error))
      return FALSE;
  return TRUE;
}

guint
_cru_import_moe (CruImporter *im, yaml_node_t *root, GError **error)
{
  yaml_node_t *base = _cru_import_map_get (im, root, "base_model");
  yaml_node_t *experts = _cru_import_map_get (im, root, "experts");
  yaml_node_t *shared = _cru_import_map_get (im, root, "shared_experts");
  yaml_node_t *node;
  const char *s;
  CruNode *moe;
  guint base_id;

  warn_unknown_keys (im, root, top_keys, _("the mixture of experts"));
  if (base == NULL)
    return _cru_import_fail (im, root, error, _("the mergekit-moe config has no "
                                                "“base_model”")), 0;
  if (experts->type != YAML_SEQUENCE_NODE || experts->data.sequence.items.top
                                             == experts->data.sequence.items.start)
    return _cru_import_fail (im, experts, error, _("“experts” must list at least one "
                                                   "expert")), 0;
  if (shared && shared->type == YAML_SEQUENCE_NODE
      && shared->data.sequence.items.top - shared->data.sequence.items.start > 1)
    return _cru_import_fail (im, shared, error, _("Crucible builds mixtures with one shared "
                                                  "expert (as Qwen2-MoE has), not %d"),
                             (int) (shared->data.sequence.items.top
                                    - shared->data.sequence.items.start)), 0;

  moe = _cru_import_add_node (im, CRU_NODE_MOE);
  if ((node = _cru_import_map_get (im, root, "gate_mode")) && !_cru_import_is_null (node))
    {
      const char *mode = (s = _cru_import_scalar (node)) ? canonical_gate_mode (s) : NULL;
      if (mode == NULL)
        return _cru_import_fail (im, node, error, _("the gate_mode “%s” is not known (use "
                                                    "hidden, hidden_avg, cheap_embed, random "
                                                    "or uniform_random)"), s ? s : "?"), 0;
      _cru_node_set_param_raw (moe, "gate_mode", cru_value_new_string (mode));
    }
  else
    _cru_node_set_param_raw (moe, "gate_mode", cru_value_new_string ("hidden"));
  if ((node = _cru_import_map_get (im, root, "architecture")) && !_cru_import_is_null (node))
    {
      const char *arch = (s = _cru_import_scalar (node)) ? canonical_architecture (s) : NULL;
      if (arch == NULL)
        return _cru_import_fail (im, node, error, _("the architecture “%s” is not supported "
                                                    "(use mixtral, qwen2_moe or qwen3_moe)"),
                                 s ? s : "?"), 0;
      _cru_node_set_param_raw (moe, "architecture", cru_value_new_string (arch));
    }
  else if (shared && shared->type == YAML_SEQUENCE_NODE
           && shared->data.sequence.items.top > shared->data.sequence.items.start)
    /* as in mergekit: a shared expert means Qwen2-MoE */
    _cru_node_set_param_raw (moe, "architecture", cru_value_new_string ("qwen2_moe"));
  if (!number_param (im, _cru_import_map_get (im, root, "experts_per_token"),
                     "experts_per_token", moe->params, error))
    return 0;
  if (!number_param (im, _cru_import_map_get (im, root, "seed"), "seed", moe->params, error)
      || !number_param (im, _cru_import_map_get (im, root, "random_seed"), "seed", moe->params,
                        error))
    return 0;

  if ((base_id = _cru_import_model (im, base, error)) == 0)
    return 0;
  _cru_import_add_link (im, base_id, moe->id, CRU_PORT_BASE, 0);
  if (!import_experts (im, experts, moe->id, CRU_PORT_EXPERT, error)
      || !import_experts (im, shared, moe->id, CRU_PORT_SHARED_EXPERT, error))
    return 0;
  return moe->id;
}

/* ---- export ---- */

static gboolean G_GNUC_PRINTF (3, 4)
fail (GError **error, const CruNode *node, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
               _("Cannot export to mergekit-moe YAML: %s"), message);
  return FALSE;
}

static char *
model_ref (CruGraph *graph, const CruLink *link, const CruNode *moe, const char *base_dir,
           GError **error)
{
  const CruNode *node = cru_graph_get_node (graph, link->from_node);
  char *repo;

  if (node == NULL || node->kind != CRU_NODE_MODEL)
    return fail (error, node, _("“%s” feeds the mixture of experts “%s”, but mergekit-moe "
                                "takes its experts from model folders"),
                 node ? _cru_node_display_name (node) : "?", _cru_node_display_name (moe)),
           NULL;
  if (node->path == NULL)
    return fail (error, node, _("the model node “%s” has no folder"),
                 _cru_node_display_name (node)), NULL;
  if ((repo = cru_hf_cache_repo_id (node->path)))
    return repo;
  return _cru_path_relativize (node->path, base_dir);
}

static void
append_prompts (GString *out, const char *key, const CruValue *v)
{
  if (v == NULL || (v->kind != CRU_VALUE_STRINGS && v->kind != CRU_VALUE_STRING))
    return;
  g_string_append_printf (out, "    %s:\n", key);
  if (v->kind == CRU_VALUE_STRING)
    {
      g_string_append (out, "      - ");
      _cru_yaml_append_string (out, v->string ? v->string : "");
      g_string_append_c (out, '\n');
      return;
    }
  for (guint i = 0; v->strings && v->strings[i]; i++)
    {
      g_string_append (out, "      - ");
      _cru_yaml_append_string (out, v->strings[i]);
      g_string_append_c (out, '\n');
    }
}

static gboolean
append_experts (GString *out, CruGraph *graph, const CruNode *moe, GPtrArray *links,
                const char *port, const char *key, const char *base_dir, GError **error)
{
  gboolean any = FALSE;

  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *link = links->pdata[i];
      g_autofree char *ref = NULL;
      const CruValue *v;

      if (!g_str_equal (link->to_port, port))
        continue;
      if (!(ref = model_ref (graph, link, moe, base_dir, error)))
        return FALSE;
      if (!any)
        g_string_append_printf (out, "%s:\n", key);
      any = TRUE;
      g_string_append (out, "  - source_model: ");
      _cru_yaml_append_string (out, ref);
      g_string_append_c (out, '\n');
      append_prompts (out, "positive_prompts", g_hash_table_lookup (link->params,
                                                                    "positive_prompts"));
      append_prompts (out, "negative_prompts", g_hash_table_lookup (link->params,
                                                                    "negative_prompts"));
      for (guint k = 0; k < 2; k++)
        {
          const char *name = k == 0 ? "noise_scale" : "residual_scale";
          if ((v = g_hash_table_lookup (link->params, name)) && v->kind == CRU_VALUE_SCALAR)
            {
              g_string_append_printf (out, "    %s: ", name);
              _cru_yaml_append_number (out, v->scalar);
              g_string_append_c (out, '\n');
            }
        }
    }
  return TRUE;
}

char *
_cru_export_moe (CruGraph *graph, const CruNode *output, const CruNode *moe,
                 const char *base_dir, GError **error)
{
  g_autoptr(GPtrArray) links = cru_graph_links_to (graph, moe->id);
  g_autoptr(GString) out = g_string_new ("# mergekit-moe config exported by Crucible "
                                         CRU_VERSION "\n");
  const CruLink *base = cru_graph_find_link (graph, moe->id, CRU_PORT_BASE, 0);
  g_autofree char *base_ref = NULL;
  const CruValue *v;

  if (base == NULL)
    return fail (error, moe, _("the mixture of experts “%s” has no base model"),
                 _cru_node_display_name (moe)), NULL;
  if (!(base_ref = model_ref (graph, base, moe, base_dir, error)))
    return NULL;
  g_string_append (out, "base_model: ");
  _cru_yaml_append_string (out, base_ref);
  g_string_append_c (out, '\n');
  /* mergekit-moe picks the output architecture whose name ("Mixtral", "Qwen MoE",
   * "Qwen3 MoE") starts with this text. */
  if ((v = g_hash_table_lookup (moe->params, "architecture")) && v->kind == CRU_VALUE_STRING
      && v->string && canonical_architecture (v->string))
    {
      const char *arch = canonical_architecture (v->string);
      g_string_append_printf (out, "architecture: %s\n",
                              g_str_equal (arch, "qwen2_moe") ? "qwen"
                              : g_str_equal (arch, "qwen3_moe") ? "qwen3" : arch);
    }
  v = g_hash_table_lookup (moe->params, "gate_mode");
  g_string_append_printf (out, "gate_mode: %s\n",
                          v && v->kind == CRU_VALUE_STRING ? v->string : "hidden");
  if ((v = g_hash_table_lookup (output->params, "dtype")) && v->kind == CRU_VALUE_STRING)
    {
      g_string_append (out, "dtype: ");
      _cru_yaml_append_string (out, v->string);
      g_string_append_c (out, '\n');
    }
  for (guint k = 0; k < 2; k++)
    {
      const char *name = k == 0 ? "experts_per_token" : "seed";
      if ((v = g_hash_table_lookup (moe->params, name)) && v->kind == CRU_VALUE_SCALAR)
        {
          g_string_append_printf (out, "%s: ", name);
          _cru_yaml_append_number (out, v->scalar);
          g_string_append_c (out, '\n');
        }
    }
  if (!append_experts (out, graph, moe, links, CRU_PORT_EXPERT, "experts", base_dir, error)
      || !append_experts (out, graph, moe, links, CRU_PORT_SHARED_EXPERT, "shared_experts",
                          base_dir, error))
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}
