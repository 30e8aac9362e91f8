/* cru-moe-yaml.c — mergekit-moe YAML configs (MoEMergeConfig) and model references
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <yaml.h>
#include <string.h>

#include "cru-error.h"
#include "cru-graph.h"
#include "cru-moe.h"

CruMoeConfig *
cru_moe_config_new (void)
{
  CruMoeConfig *c = g_new0 (CruMoeConfig, 1);
  c->gate_mode = CRU_GATE_HIDDEN;
  c->experts_per_token = 2;
  c->experts = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_moe_expert_free);
  c->shared_experts = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_moe_expert_free);
  c->output = CRU_MOE_OUTPUT_MIXTRAL;
  c->seed = 42;
  return c;
}

void
cru_moe_config_free (CruMoeConfig *c)
{
  if (!c)
    return;
  g_free (c->base_model);
  g_free (c->base_dir);
  g_ptr_array_unref (c->experts);
  g_ptr_array_unref (c->shared_experts);
  g_free (c);
}

CruMoeExpert *
cru_moe_expert_new (const char *source_model)
{
  CruMoeExpert *e = g_new0 (CruMoeExpert, 1);
  e->source_model = g_strdup (source_model);
  return e;
}

void
cru_moe_expert_free (CruMoeExpert *e)
{
  if (!e)
    return;
  g_free (e->source_model);
  g_strfreev (e->positive_prompts);
  g_strfreev (e->negative_prompts);
  g_free (e);
}

/* ---- YAML ------------------------------------------------------------------------------ */

typedef struct {
  yaml_document_t *doc;
  const char      *name;
} Ctx;

static const char *
scalar (Ctx *x, yaml_node_t *n, const char *key, GError **error)
{
  if (!n || n->type != YAML_SCALAR_NODE)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “%s” must be a single value"), x->name, key);
      return NULL;
    }
  return (const char *) n->data.scalar.value;
}

static gboolean
number (Ctx *x, yaml_node_t *n, const char *key, double *out, GError **error)
{
  const char *s = scalar (x, n, key, error);
  char *end;
  if (!s)
    return FALSE;
  *out = g_ascii_strtod (s, &end);
  if (end == s || *end)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “%s” must be a number, not “%s”"), x->name, key, s);
      return FALSE;
    }
  return TRUE;
}

static GStrv
strings (Ctx *x, yaml_node_t *n, const char *key, GError **error)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();

  if (n && n->type == YAML_SCALAR_NODE && !*n->data.scalar.value)
    return g_strv_builder_end (b);  /* "key:" with nothing: an empty list */
  if (!n || n->type != YAML_SEQUENCE_NODE)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “%s” must be a list of texts"), x->name, key);
      return NULL;
    }
  for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
    {
      const char *s = scalar (x, yaml_document_get_node (x->doc, *i), key, error);
      if (!s)
        return NULL;
      g_strv_builder_add (b, s);
    }
  return g_strv_builder_end (b);
}

static CruMoeExpert *
parse_expert (Ctx *x, yaml_node_t *n, guint index, GError **error)
{
  static const char *const keys[] = { "source_model", "positive_prompts", "negative_prompts",
                                      "noise_scale", "residual_scale" };
  CruMoeExpert *e = cru_moe_expert_new (NULL);

  if (!n || n->type != YAML_MAPPING_NODE)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: expert %u must be a mapping with source_model and prompts"),
                   x->name, index + 1);
      goto fail;
    }
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
    {
      const char *k = scalar (x, yaml_document_get_node (x->doc, p->key), "key", error);
      yaml_node_t *v = yaml_document_get_node (x->doc, p->value);
      const char *s;

      if (!k)
        goto fail;
      if (g_str_equal (k, "source_model"))
        {
          if (!(s = scalar (x, v, k, error)))
            goto fail;
          g_free (e->source_model);
          e->source_model = g_strdup (s);
        }
      else if (g_str_equal (k, "positive_prompts"))
        {
          if (!(e->positive_prompts = strings (x, v, k, error)))
            goto fail;
        }
      else if (g_str_equal (k, "negative_prompts"))
        {
          if (!(e->negative_prompts = strings (x, v, k, error)))
            goto fail;
        }
      else if (g_str_equal (k, "noise_scale"))
        {
          if (!number (x, v, k, &e->noise_scale, error))
            goto fail;
          e->has_noise_scale = TRUE;
        }
      else if (g_str_equal (k, "residual_scale"))
        {
          if (!number (x, v, k, &e->residual_scale, error))
            goto fail;
          e->has_residual_scale = TRUE;
        }
      else
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: expert %u has an unknown key “%s” (known: %s)"), x->name,
                       index + 1, k, "source_model, positive_prompts, negative_prompts, "
                       "noise_scale, residual_scale");
          goto fail;
        }
    }
  (void) keys;
  if (!e->source_model)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: expert %u has no source_model"), x->name, index + 1);
      goto fail;
    }
  return e;

fail:
  cru_moe_expert_free (e);
  return NULL;
}

static gboolean
parse_experts (Ctx *x, yaml_node_t *n, const char *key, GPtrArray *out, GError **error)
{
  if (!n || n->type != YAML_SEQUENCE_NODE)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s: “%s” must be a list of experts"), x->name, key);
      return FALSE;
    }
  for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
    {
      CruMoeExpert *e = parse_expert (x, yaml_document_get_node (x->doc, *i),
                                      (guint) (i - n->data.sequence.items.start), error);
      if (!e)
        return FALSE;
      g_ptr_array_add (out, e);
    }
  return TRUE;
}

static gboolean
parse_top (Ctx *x, CruMoeConfig *c, yaml_node_t *root, GError **error)
{
  static const struct { const char *name; CruGateMode mode; } modes[] = {
    { "hidden", CRU_GATE_HIDDEN }, { "hidden_last", CRU_GATE_HIDDEN },
    { "hidden_avg", CRU_GATE_HIDDEN_AVG }, { "cheap_embed", CRU_GATE_CHEAP_EMBED },
    { "random", CRU_GATE_RANDOM }, { "uniform_random", CRU_GATE_UNIFORM_RANDOM },
  };

  if (!root || root->type != YAML_MAPPING_NODE)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not a mergekit-moe config (expected a mapping with base_model and "
                     "experts)"), x->name);
      return FALSE;
    }
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
       p++)
    {
      const char *k = scalar (x, yaml_document_get_node (x->doc, p->key), "key", error);
      yaml_node_t *v = yaml_document_get_node (x->doc, p->value);
      const char *s;
      double d;

      if (!k)
        return FALSE;
      if (g_str_equal (k, "base_model"))
        {
          if (!(s = scalar (x, v, k, error)))
            return FALSE;
          g_free (c->base_model);
          c->base_model = g_strdup (s);
        }
      else if (g_str_equal (k, "gate_mode"))
        {
          gboolean found = FALSE;
          if (!(s = scalar (x, v, k, error)))
            return FALSE;
          for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
            if (g_str_equal (s, modes[i].name))
              c->gate_mode = modes[i].mode, found = TRUE;
          if (!found)
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                           _("%s: unknown gate_mode “%s” (use hidden, hidden_avg, cheap_embed, "
                             "random or uniform_random)"), x->name, s);
              return FALSE;
            }
        }
      else if (g_str_equal (k, "dtype"))
        {
          if (!(s = scalar (x, v, k, error)))
            return FALSE;
          c->dtype = cru_dtype_from_user_string (s);
          if (c->dtype != CRU_DTYPE_F32 && c->dtype != CRU_DTYPE_F16 && c->dtype != CRU_DTYPE_BF16)
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                           _("%s: dtype “%s” is not one of float32, float16, bfloat16"),
                           x->name, s);
              return FALSE;
            }
        }
      else if (g_str_equal (k, "experts_per_token"))
        {
          if (!number (x, v, k, &d, error))
            return FALSE;
          c->experts_per_token = (int) d;
        }
      else if (g_str_equal (k, "seed") || g_str_equal (k, "random_seed"))
        {
          if (!number (x, v, k, &d, error))
            return FALSE;
          c->seed = (guint64) d;
        }
      else if (g_str_equal (k, "experts"))
        {
          if (!parse_experts (x, v, k, c->experts, error))
            return FALSE;
        }
      else if (g_str_equal (k, "shared_experts"))
        {
          if (!parse_experts (x, v, k, c->shared_experts, error))
            return FALSE;
        }
      else if (g_str_equal (k, "architecture") || g_str_equal (k, "output"))
        {
          if (!(s = scalar (x, v, k, error)))
            return FALSE;
          c->output_set = TRUE;
          if (!g_ascii_strcasecmp (s, "mixtral"))
            c->output = CRU_MOE_OUTPUT_MIXTRAL;
          else if (!g_ascii_strcasecmp (s, "qwen") || !g_ascii_strcasecmp (s, "qwen2_moe")
                   || !g_ascii_strcasecmp (s, "qwen2"))
            c->output = CRU_MOE_OUTPUT_QWEN2_MOE;
          else if (!g_ascii_strcasecmp (s, "qwen3") || !g_ascii_strcasecmp (s, "qwen3_moe"))
            c->output = CRU_MOE_OUTPUT_QWEN3_MOE;
          else
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                           _("%s: architecture “%s” is not supported (mixtral, qwen2_moe, "
                             "qwen3_moe are)"), x->name, s);
              return FALSE;
            }
        }
      else
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                       _("%s: unknown key “%s” (known: base_model, gate_mode, dtype, "
                         "experts_per_token, experts, shared_experts, architecture, seed)"),
                       x->name, k);
          return FALSE;
        }
    }
  if (!c->base_model || c->experts->len == 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s needs a base_model and at least one expert"), x->name);
      return FALSE;
    }
  /* without an explicit architecture a shared expert means Qwen2-MoE, as in mergekit */
  if (!c->output_set && c->shared_experts->len > 0)
    c->output = CRU_MOE_OUTPUT_QWEN2_MOE;
  return TRUE;
}

CruMoeConfig *
cru_moe_config_from_yaml_data (const char *yaml, gssize length, const char *display_name,
                               const char *base_dir, GError **error)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  CruMoeConfig *c;
  Ctx x = { &doc, display_name };
  gboolean ok;

  yaml_parser_initialize (&parser);
  yaml_parser_set_input_string (&parser, (const unsigned char *) yaml,
                                length < 0 ? strlen (yaml) : (gsize) length);
  if (!yaml_parser_load (&parser, &doc))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_FILE,
                   _("%s is not valid YAML (line %zu: %s)"), display_name,
                   parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
      yaml_parser_delete (&parser);
      return NULL;
    }
  c = cru_moe_config_new ();
  c->base_dir = g_strdup (base_dir);
  ok = parse_top (&x, c, yaml_document_get_root_node (&doc), error);
  yaml_document_delete (&doc);
  yaml_parser_delete (&parser);
  if (!ok)
    {
      cru_moe_config_free (c);
      return NULL;
    }
  return c;
}

CruMoeConfig *
cru_moe_config_from_yaml (const char *path, GError **error)
{
  g_autofree char *data = NULL, *dir = NULL, *abs = NULL;
  g_autofree char *shown = g_filename_display_name (path);
  g_autoptr (GError) local = NULL;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, &local))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, _("Cannot read %s: %s"), shown,
                   local->message);
      return NULL;
    }
  abs = g_canonicalize_filename (path, NULL);
  dir = g_path_get_dirname (abs);
  return cru_moe_config_from_yaml_data (data, len, shown, dir, error);
}

char *
cru_moe_resolve_model (const CruMoeConfig *config, const char *ref, GError **error)
{
  g_autofree char *in_base = NULL;

  if (g_path_is_absolute (ref))
    return g_strdup (ref);
  if (config->base_dir)
    {
      in_base = g_build_filename (config->base_dir, ref, NULL);
      if (g_file_test (in_base, G_FILE_TEST_EXISTS))
        return g_canonicalize_filename (in_base, NULL);
    }
  if (g_file_test (ref, G_FILE_TEST_EXISTS))
    return g_canonicalize_filename (ref, NULL);
  if (strchr (ref, '/') && !g_str_has_prefix (ref, ".") && !strstr (ref, "//"))
    {
      g_autoptr (GError) local = NULL;
      char *found = cru_hf_cache_resolve (ref, &local);
      if (found)
        return found;
    }
  g_set_error (error, CRU_ERROR, CRU_ERROR_NOT_FOUND,
               _("Model “%s” not found (looked in %s, in the current folder and in the Hugging "
                 "Face cache)"), ref, config->base_dir ? config->base_dir : ".");
  return NULL;
}
