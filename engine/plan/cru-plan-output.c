/* cru-plan-output.c — the files around the weights: config.json, tokenizer files, chat
 * template, the model card and the recipes.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"

#include <string.h>

static const char chatml_template[] =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
  "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
  "{{ '<|im_start|>assistant\\n' }}{% endif %}";

static CruModel *
model_of_node (CruPlan *plan, guint node)
{
  for (guint i = 0; i < plan->models->len; i++)
    if (GPOINTER_TO_UINT (g_ptr_array_index (plan->model_nodes, i)) == node)
      return g_ptr_array_index (plan->models, i);
  return NULL;
}

static gboolean
same_file_contents (const char *a, const char *b)
{
  g_autofree char *da = NULL, *db = NULL;
  gsize la = 0, lb = 0;

  if (a == NULL || b == NULL)
    return a == b;
  if (!g_file_get_contents (a, &da, &la, NULL) || !g_file_get_contents (b, &db, &lb, NULL))
    return FALSE;
  return la == lb && memcmp (da, db, la) == 0;
}

static gboolean
same_tokenizer (CruModel *a, CruModel *b)
{
  g_auto(GStrv) fa = cru_model_get_tokenizer_files (a);
  g_auto(GStrv) fb = cru_model_get_tokenizer_files (b);

  if (g_strv_length (fa) != g_strv_length (fb))
    return FALSE;
  for (guint i = 0; fa[i]; i++)
    {
      g_autofree char *pa = cru_model_get_file (a, fa[i]);
      g_autofree char *pb = cru_model_get_file (b, fa[i]);
      if (!same_file_contents (pa, pb))
        return FALSE;
    }
  return TRUE;
}

/* Picks the model whose tokenizer files are copied; called at compile time. */
CruModel *
_cru_plan_choose_tokenizer (CruPlan *plan)
{
  const char *src = plan->tokenizer_source ? plan->tokenizer_source : "base";
  CruModel *chosen = plan->config_source;

  if (g_str_has_prefix (src, "model:"))
    {
      guint64 id = g_ascii_strtoull (src + 6, NULL, 10);
      chosen = model_of_node (plan, (guint) id);
      if (chosen == NULL)
        _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, plan->output_node, 0, NULL,
                               _("Tokenizer source “%s” is not one of the input models; choose "
                                 "“base”, “union” or an input model"), src);
    }
  else if (g_str_equal (src, "union"))
    {
      gboolean identical = TRUE;
      CruModel *largest = chosen;

      for (guint i = 0; i < plan->models->len; i++)
        {
          CruModel *m = g_ptr_array_index (plan->models, i);
          if (chosen && !same_tokenizer (chosen, m))
            identical = FALSE;
          if (largest == NULL || cru_model_get_vocab_size (m) > cru_model_get_vocab_size (largest))
            largest = m;
        }
      if (!identical)
        {
          _cru_plan_add_problem (plan, CRU_SEVERITY_WARNING, plan->output_node, 0, NULL,
                                 _("The inputs' tokenizers differ and a true union of "
                                   "vocabularies is not implemented; the tokenizer of %s (the "
                                   "largest vocabulary) is used"),
                                 cru_model_get_name (largest));
          chosen = largest;
        }
    }
  else if (!g_str_equal (src, "base"))
    _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, plan->output_node, 0, NULL,
                           _("Unknown tokenizer source “%s”; use “base”, “union” or "
                             "“model:<node>”"), src);
  return chosen;
}

static gboolean
write_json (JsonNode *root, const char *path, GError **error)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;
  g_autofree char *with_nl = NULL;

  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  with_nl = g_strconcat (text, "\n", NULL);
  return g_file_set_contents (path, with_nl, -1, error);
}

static gboolean
write_config (CruPlan *plan, const char *dir, GError **error)
{
  JsonObject *src = plan->config_source ? cru_model_get_config (plan->config_source) : NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *path = g_build_filename (dir, "config.json", NULL);
  JsonObject *obj;
  JsonNode *wrap;
  const char *dtype = cru_dtype_to_torch_string (plan->out_dtype);

  if (src == NULL)
    return TRUE;
  wrap = json_node_alloc ();
  json_node_init_object (wrap, src);
  root = json_node_copy (wrap);
  json_node_unref (wrap);
  obj = json_node_get_object (root);

  json_object_set_int_member (obj, "num_hidden_layers", plan->n_layers);
  json_object_set_string_member (obj, "torch_dtype", dtype);
  if (json_object_has_member (obj, "dtype"))
    json_object_set_string_member (obj, "dtype", dtype);
  if (plan->vocab_size > 0)
    json_object_set_int_member (obj, "vocab_size", plan->vocab_size);
  json_object_set_boolean_member (obj, "tie_word_embeddings", !plan->has_lm_head);
  return write_json (root, path, error);
}

static gboolean
copy_file (const char *from, const char *dir, const char *name, GError **error)
{
  g_autoptr(GFile) src = g_file_new_for_path (from);
  g_autofree char *to = g_build_filename (dir, name, NULL);
  g_autoptr(GFile) dst = g_file_new_for_path (to);

  return g_file_copy (src, dst, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error);
}

static gboolean
write_tokenizer (CruPlan *plan, CruModel *tok, const char *dir, GError **error)
{
  g_auto(GStrv) files = NULL;
  g_autofree char *cfg_path = g_build_filename (dir, "tokenizer_config.json", NULL);

  if (tok && plan->copy_tokenizer)
    {
      files = cru_model_get_tokenizer_files (tok);
      for (guint i = 0; files && files[i]; i++)
        {
          g_autofree char *from = cru_model_get_file (tok, files[i]);
          if (from && !copy_file (from, dir, files[i], error))
            return FALSE;
        }
    }

  if (plan->chat_template && *plan->chat_template
      && g_ascii_strcasecmp (plan->chat_template, "auto") != 0)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(JsonNode) root = NULL;
      const char *tmpl = g_ascii_strcasecmp (plan->chat_template, "chatml") == 0
                           ? chatml_template : plan->chat_template;

      if (g_file_test (cfg_path, G_FILE_TEST_EXISTS)
          && json_parser_load_from_file (parser, cfg_path, NULL)
          && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        root = json_node_copy (json_parser_get_root (parser));
      else
        {
          root = json_node_new (JSON_NODE_OBJECT);
          json_node_take_object (root, json_object_new ());
        }
      json_object_set_string_member (json_node_get_object (root), "chat_template", tmpl);
      if (!write_json (root, cfg_path, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
write_card (CruPlan *plan, const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "README.md", NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = g_date_time_format (now, "%Y-%m-%d %H:%M UTC");
  g_autofree char *name = g_filename_display_basename (plan->out_dir);
  GString *s = g_string_new (NULL);

  g_string_append (s, "---\nlibrary_name: transformers\ntags:\n- merge\n- crucible\n");
  if (plan->mergekit_yaml)
    g_string_append (s, "- mergekit\n");
  g_string_append (s, "---\n\n");
  g_string_append_printf (s, "# %s\n\n", name);
  g_string_append_printf (s, "This model was merged with Crucible %s on %s.\n\n", CRU_VERSION,
                          date);
  g_string_append (s, "## Inputs\n\n");
  for (guint i = 0; i < plan->card_inputs->len; i++)
    g_string_append_printf (s, "- %s\n", (char *) g_ptr_array_index (plan->card_inputs, i));
  g_string_append (s, "\n## Method\n\n");
  g_string_append (s, plan->card_methods ? plan->card_methods : "");
  for (guint i = 0; i < plan->stats_nodes->len; i++)
    {
      CruStatsNode *sn = g_ptr_array_index (plan->stats_nodes, i);
      if (sn->weights)
        {
          g_string_append_printf (s, "- computed weights of node %u:", sn->node);
          for (int k = 0; k < sn->n_models; k++)
            g_string_append_printf (s, " %.4f", sn->weights[k]);
          g_string_append_c (s, '\n');
        }
    }
  g_string_append_printf (s, "\nOutput: %d layers, %s, %u tensors.\n\n", plan->n_layers,
                          cru_dtype_to_torch_string (plan->out_dtype), plan->n_tasks);
  g_string_append (s, "## Recipe\n\nThe graph is in `crucible-recipe.crucible` (open it in "
                      "Crucible or run it with `crucible-cli run`).\n");
  if (plan->mergekit_yaml)
    g_string_append_printf (s, "\nAs a mergekit recipe (`mergekit_config.yml`):\n\n```yaml\n%s"
                               "```\n", plan->mergekit_yaml);
  else
    g_string_append_printf (s, "\nNo mergekit recipe was written: %s\n",
                            plan->mergekit_error ? plan->mergekit_error : "");
  {
    gboolean ok = g_file_set_contents (path, s->str, s->len, error);
    g_string_free (s, TRUE);
    return ok;
  }
}

gboolean
_cru_plan_write_side_files (CruPlan *plan, const char *dir, GError **error)
{
  CruModel *tok = NULL;
  g_autofree char *gen = NULL;

  if (!write_config (plan, dir, error))
    return FALSE;
  if (plan->config_source
      && (gen = cru_model_get_file (plan->config_source, "generation_config.json")) != NULL
      && !copy_file (gen, dir, "generation_config.json", error))
    return FALSE;

  tok = plan->tokenizer_model;
  if (!write_tokenizer (plan, tok, dir, error))
    return FALSE;
  if (!write_card (plan, dir, error))
    return FALSE;
  if (plan->recipe)
    {
      g_autofree char *p = g_build_filename (dir, "crucible-recipe.crucible", NULL);
      if (!g_file_set_contents (p, plan->recipe, -1, error))
        return FALSE;
    }
  if (plan->mergekit_yaml)
    {
      g_autofree char *p = g_build_filename (dir, "mergekit_config.yml", NULL);
      if (!g_file_set_contents (p, plan->mergekit_yaml, -1, error))
        return FALSE;
    }
  return TRUE;
}
