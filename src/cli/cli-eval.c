/* cli-eval.c — `crucible-cli eval` (perplexity) and `crucible-cli moe` (build a mixture of
 * experts from a mergekit-moe YAML)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <unistd.h>

#include "cli-common.h"
#include "cru-error.h"
#include "cru-moe.h"
#include "cru-perplexity.h"

/* ---- eval ------------------------------------------------------------------------------ */

static void
add_routing (JsonBuilder *b, const CruPerplexity *p)
{
  json_builder_set_member_name (b, "routing_share");
  json_builder_begin_array (b);
  for (int l = 0; l < p->n_layers; l++)
    {
      guint64 total = 0;
      json_builder_begin_array (b);
      for (int e = 0; e < p->n_experts; e++)
        total += p->routing[(gsize) l * p->n_experts + e];
      for (int e = 0; e < p->n_experts; e++)
        json_builder_add_double_value (b, total ? (double) p->routing[(gsize) l * p->n_experts + e]
                                                  / total : 0.0);
      json_builder_end_array (b);
    }
  json_builder_end_array (b);
}

static void
print_routing (const CruPerplexity *p)
{
  g_print (_("  routing (share of token selections per expert):\n"));
  for (int l = 0; l < p->n_layers; l++)
    {
      guint64 total = 0;
      for (int e = 0; e < p->n_experts; e++)
        total += p->routing[(gsize) l * p->n_experts + e];
      g_print (_("    layer %2d:"), l);
      for (int e = 0; e < p->n_experts; e++)
        g_print ("  e%d %5.1f%%", e,
                 total ? 100.0 * p->routing[(gsize) l * p->n_experts + e] / total : 0.0);
      g_print ("\n");
    }
}

int
cru_cli_eval (int argc, char **argv)
{
  g_auto (GStrv) texts = NULL;
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CruModel) model = NULL;
  g_autoptr (CruTokenizer) tok = NULL;
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  int ctx_len = 256, threads = 0;
  gboolean as_json = FALSE, routing = FALSE;
  GOptionEntry entries[] = {
    { "text", 't', 0, G_OPTION_ARG_FILENAME_ARRAY, &texts,
      N_("Text file to score (repeat for several)"), N_("FILE") },
    { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx_len,
      N_("Tokens per window including the BOS token (default 256)"), N_("N") },
    { "threads", 'j', 0, G_OPTION_ARG_INT, &threads,
      N_("Worker threads (default: all processors)"), N_("N") },
    { "routing", 0, 0, G_OPTION_ARG_NONE, &routing,
      N_("For mixtures of experts: show the share of tokens routed to each expert"), NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, N_("Print the results as JSON"), NULL },
    { NULL }
  };

  ctx = g_option_context_new (_("MODEL — perplexity of a model on text files"));
  g_option_context_set_description (ctx,
    _("Each text is cut into consecutive windows of CTX−1 tokens; each window is scored as "
      "[BOS] + window, so every token is scored once (data/demo/README.md's protocol)."));
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 2 || !texts || !texts[0])
    {
      g_printerr (_("crucible-cli: eval needs one MODEL and at least one --text FILE\n"));
      return CRU_EXIT_USAGE;
    }
  if (ctx_len < 2 || threads < 0)
    {
      g_printerr (_("crucible-cli: --ctx must be at least 2 and --threads not negative\n"));
      return CRU_EXIT_USAGE;
    }
  if (!(model = cru_model_open (argv[1], &error)))
    return cru_cli_fail (error);
  if (!(tok = cru_tokenizer_new_for_model (model, &error)))
    return cru_cli_fail (error);

  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "model");
  json_builder_add_string_value (jb, cru_model_get_path (model));
  json_builder_set_member_name (jb, "ctx");
  json_builder_add_int_value (jb, ctx_len);
  json_builder_set_member_name (jb, "results");
  json_builder_begin_array (jb);

  for (guint i = 0; texts[i]; i++)
    {
      g_autofree char *data = NULL;
      g_autofree char *shown = g_filename_display_name (texts[i]);
      g_autoptr (GError) local = NULL;
      CruPerplexity p;
      gsize len;

      if (!g_file_get_contents (texts[i], &data, &len, &local))
        {
          g_set_error (&error, CRU_ERROR, CRU_ERROR_IO, _("Cannot read %s: %s"), shown,
                       local->message);
          return cru_cli_fail (error);
        }
      if (!cru_perplexity_run (model, tok, data, len, (guint) ctx_len, (guint) threads, NULL,
                               NULL, &p, cru_cli_get_cancellable (), &error))
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return CRU_EXIT_CANCELLED;
          g_prefix_error (&error, "%s: ", shown);
          return cru_cli_fail (error);
        }
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "text");
      json_builder_add_string_value (jb, shown);
      json_builder_set_member_name (jb, "ppl");
      json_builder_add_double_value (jb, p.ppl);
      json_builder_set_member_name (jb, "mean_nll");
      json_builder_add_double_value (jb, p.mean_nll);
      json_builder_set_member_name (jb, "scored_tokens");
      json_builder_add_int_value (jb, (gint64) p.n_scored);
      json_builder_set_member_name (jb, "windows");
      json_builder_add_int_value (jb, p.n_windows);
      json_builder_set_member_name (jb, "seconds");
      json_builder_add_double_value (jb, p.seconds);
      json_builder_set_member_name (jb, "tokens_per_second");
      json_builder_add_double_value (jb, p.seconds > 0 ? p.n_scored / p.seconds : 0);
      if (p.routing)
        add_routing (jb, &p);
      json_builder_end_object (jb);

      if (!as_json)
        {
          g_print (_("%s: perplexity %.4f (mean NLL %.4f nats/token, %" PRIu64
                     " tokens in %u windows; %.2f s, %.0f tokens/s)\n"),
                   shown, p.ppl, p.mean_nll, p.n_scored, p.n_windows, p.seconds,
                   p.seconds > 0 ? p.n_scored / p.seconds : 0);
          if (routing && p.routing)
            print_routing (&p);
          else if (routing)
            g_print (_("  (not a mixture of experts: no routing)\n"));
        }
      cru_perplexity_clear (&p);
    }
  json_builder_end_array (jb);
  json_builder_end_object (jb);

  if (as_json)
    {
      g_autoptr (JsonNode) root = json_builder_get_root (jb);
      g_autofree char *out = json_to_string (root, TRUE);
      g_print ("%s\n", out);
    }
  return CRU_EXIT_OK;
}

/* ---- moe ------------------------------------------------------------------------------- */

static void
on_moe_progress (const char *stage, double fraction, gpointer user_data)
{
  gboolean *tty = user_data;
  if (*tty)   /* @stage is translated: pad it to 40 columns, not bytes */
    g_printerr ("\r%s%*s %3.0f%%", stage, MAX (0, 40 - (int) g_utf8_strlen (stage, -1)), "",
                100 * fraction);
}

int
cru_cli_moe (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  CruMoeConfig *config;
  gboolean overwrite = FALSE, tty = isatty (2);
  int threads = 0;
  gboolean ok;
  GOptionEntry entries[] = {
    { "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite,
      N_("Replace OUT_DIR if it exists (only once the new model is complete)"), NULL },
    { "threads", 'j', 0, G_OPTION_ARG_INT, &threads,
      N_("Worker threads for the prompt forward passes (default: all processors)"), N_("N") },
    { NULL }
  };

  ctx = g_option_context_new (_("CONFIG.yml OUT_DIR — build a mixture of experts (mergekit-moe)"));
  g_option_context_set_description (ctx,
    _("CONFIG is a mergekit-moe YAML: base_model, gate_mode (hidden, hidden_avg, cheap_embed, "
      "random, uniform_random), dtype, experts_per_token, experts (source_model, "
      "positive_prompts, negative_prompts, noise_scale, residual_scale), shared_experts and "
      "architecture (mixtral, qwen2_moe/qwen, qwen3_moe/qwen3)."));
  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 3)
    {
      g_printerr (_("crucible-cli: moe needs CONFIG.yml and OUT_DIR\n"));
      return CRU_EXIT_USAGE;
    }
  if (!(config = cru_moe_config_from_yaml (argv[1], &error)))
    return cru_cli_fail (error);
  config->n_threads = threads > 0 ? (guint) threads : 0;
  ok = cru_moe_build (config, argv[2], overwrite, on_moe_progress, &tty, warnings,
                      cru_cli_get_cancellable (), &error);
  if (tty)
    g_printerr ("\n");
  for (guint i = 0; i < warnings->len; i++)
    g_printerr (_("crucible-cli: warning: %s\n"), (char *) warnings->pdata[i]);
  cru_moe_config_free (config);
  if (!ok)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
          || g_error_matches (error, CRU_ERROR, CRU_ERROR_CANCELLED))
        return CRU_EXIT_CANCELLED;
      if (g_error_matches (error, CRU_ERROR, CRU_ERROR_EXISTS))
        {
          cru_cli_fail (error);
          g_printerr (_("Use --overwrite to replace it.\n"));
          return CRU_EXIT_FAILED;
        }
      return cru_cli_fail (error);
    }
  g_print (_("Wrote %s\n"), argv[2]);
  return CRU_EXIT_OK;
}
