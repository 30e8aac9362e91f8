/* cli-inspect.c — “inspect” (headers only) and “convert” (re-save in another dtype/sharding)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cli-common.h"

#include "cru-error.h"
#include "cru-model.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

/* ---- inspect ---------------------------------------------------------------------- */

static char *
format_count (guint64 n)
{
  GString *s = g_string_new (NULL);
  g_autofree char *digits = g_strdup_printf ("%" G_GUINT64_FORMAT, n);
  gsize len = strlen (digits);

  for (gsize i = 0; i < len; i++)
    {
      if (i > 0 && (len - i) % 3 == 0)
        g_string_append_c (s, ',');
      g_string_append_c (s, digits[i]);
    }
  return g_string_free (s, FALSE);
}

static char *
format_shape (const CruTensorInfo *t)
{
  GString *s = g_string_new ("[");

  for (int i = 0; i < t->ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

typedef struct
{
  guint   n_tensors[CRU_DTYPE_N];
  guint64 bytes[CRU_DTYPE_N];
} DTypeStats;

static void
collect_dtypes (CruModel *model, DTypeStats *stats)
{
  memset (stats, 0, sizeof *stats);
  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    {
      const CruTensorInfo *t = cru_model_get_tensor (model, i)->info;
      stats->n_tensors[t->dtype]++;
      stats->bytes[t->dtype] += t->end - t->begin;
    }
}

static guint
shard_n_tensors (CruModel *model, guint shard)
{
  guint n = 0;

  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    if (cru_model_get_tensor (model, i)->shard_index == shard)
      n++;
  return n;
}

static void
print_inspect_json (CruModel *model, gboolean tensors, const DTypeStats *stats)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) tok = cru_model_get_tokenizer_files (model);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "path");
  {
    g_autofree char *shown = g_filename_display_name (cru_model_get_path (model));
    json_builder_add_string_value (b, shown);   /* JSON is UTF-8 whatever the path's bytes */
  }
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, cru_model_get_name (model));
  json_builder_set_member_name (b, "family");
  json_builder_add_string_value (b, cru_arch_get_name (cru_model_get_arch (model)));
  json_builder_set_member_name (b, "family_label");
  json_builder_add_string_value (b, cru_arch_get_label (cru_model_get_arch (model)));
  json_builder_set_member_name (b, "model_type");
  if (cru_model_get_model_type (model))
    json_builder_add_string_value (b, cru_model_get_model_type (model));
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "layers");
  json_builder_add_int_value (b, cru_model_get_n_layers (model));
  json_builder_set_member_name (b, "parameters");
  json_builder_add_int_value (b, (gint64) cru_model_get_n_params (model));
  json_builder_set_member_name (b, "tensor_count");
  json_builder_add_int_value (b, cru_model_get_n_tensors (model));
  json_builder_set_member_name (b, "dtype");
  json_builder_add_string_value (b, cru_dtype_to_string (cru_model_get_dtype (model)) ?: "");
  json_builder_set_member_name (b, "dtypes");
  json_builder_begin_object (b);
  for (guint d = 1; d < CRU_DTYPE_N; d++)
    if (stats->n_tensors[d])
      {
        json_builder_set_member_name (b, cru_dtype_to_string ((CruDType) d));
        json_builder_add_int_value (b, stats->n_tensors[d]);
      }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "total_bytes");
  json_builder_add_int_value (b, (gint64) cru_model_get_total_bytes (model));
  json_builder_set_member_name (b, "vocab_size");
  json_builder_add_int_value (b, cru_model_get_vocab_size (model));
  json_builder_set_member_name (b, "hidden_size");
  json_builder_add_int_value (b, cru_model_get_hidden_size (model));
  json_builder_set_member_name (b, "tie_word_embeddings");
  json_builder_add_boolean_value (b, cru_model_get_tie_word_embeddings (model));
  json_builder_set_member_name (b, "shards");
  json_builder_begin_array (b);
  for (guint s = 0; s < cru_model_get_n_shards (model); s++)
    {
      CruSafetensors *st = cru_model_get_shard (model, s);
      g_autofree char *base = g_filename_display_basename (cru_safetensors_get_path (st));
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "file");
      json_builder_add_string_value (b, base);
      json_builder_set_member_name (b, "tensors");
      json_builder_add_int_value (b, shard_n_tensors (model, s));
      json_builder_set_member_name (b, "bytes");
      json_builder_add_int_value (b, (gint64) cru_safetensors_get_file_size (st));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "tokenizer_files");
  json_builder_begin_array (b);
  for (guint i = 0; tok[i]; i++)
    json_builder_add_string_value (b, tok[i]);
  json_builder_end_array (b);
  if (tensors)
    {
      json_builder_set_member_name (b, "tensors");
      json_builder_begin_array (b);
      for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
        {
          const CruModelTensor *t = cru_model_get_tensor (model, i);
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, t->info->name);
          json_builder_set_member_name (b, "dtype");
          json_builder_add_string_value (b, cru_dtype_to_string (t->info->dtype));
          json_builder_set_member_name (b, "shape");
          json_builder_begin_array (b);
          for (int d = 0; d < t->info->ndim; d++)
            json_builder_add_int_value (b, t->info->shape[d]);
          json_builder_end_array (b);
          json_builder_set_member_name (b, "layer");
          json_builder_add_int_value (b, t->layer);
          json_builder_set_member_name (b, "role");
          json_builder_add_string_value (b, cru_role_get_name (t->role));
          json_builder_set_member_name (b, "shard");
          json_builder_add_int_value (b, t->shard_index);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

/* The spaces that pad @text to @width columns (one a character). */
static int
columns_left (const char *text, int width)
{
  return MAX (0, width - (int) g_utf8_strlen (text, -1));
}

static void
print_inspect_text (CruModel *model, gboolean tensors, const DTypeStats *stats)
{
  g_autofree char *params = format_count (cru_model_get_n_params (model));
  g_autofree char *size = cru_cli_format_size (cru_model_get_total_bytes (model));
  g_autofree char *bytes = format_count (cru_model_get_total_bytes (model));
  g_auto(GStrv) tok = cru_model_get_tokenizer_files (model);
  g_autoptr(GString) dtypes = g_string_new (NULL);
  CruArch arch = cru_model_get_arch (model);

  for (guint d = 1; d < CRU_DTYPE_N; d++)
    if (stats->n_tensors[d])
      g_string_append_printf (dtypes, "%s%s × %u", dtypes->len ? ", " : "",
                              cru_dtype_to_string ((CruDType) d), stats->n_tensors[d]);

  printf (_("Model:        %s\n"), cru_model_get_path (model));
  if (cru_model_get_model_type (model))
    printf (_("Family:       %s (model_type “%s”)\n"), cru_arch_get_label (arch),
            cru_model_get_model_type (model));
  else
    printf (_("Family:       %s (from tensor names)\n"), cru_arch_get_label (arch));
  printf (_("Layers:       %d\n"), cru_model_get_n_layers (model));
  printf (_("Parameters:   %s\n"), params);
  printf (_("Tensors:      %u (%s)\n"), cru_model_get_n_tensors (model), dtypes->str);
  printf (_("Dtype:        %s\n"), cru_dtype_to_string (cru_model_get_dtype (model)) ?: "?");
  printf (_("Size:         %s (%s bytes of tensor data)\n"), size, bytes);
  if (cru_model_get_vocab_size (model) >= 0)
    printf (_("Vocabulary:   %" PRId64 "\n"), cru_model_get_vocab_size (model));
  if (cru_model_get_hidden_size (model) >= 0)
    printf (_("Hidden size:  %" PRId64 "\n"), cru_model_get_hidden_size (model));
  printf (_("Embeddings:   %s\n"), cru_model_get_tie_word_embeddings (model)
                                      ? _("tied (lm_head shares embed_tokens)")
                                      : _("separate lm_head"));
  printf (_("Shards:       %u\n"), cru_model_get_n_shards (model));
  for (guint s = 0; s < cru_model_get_n_shards (model); s++)
    {
      CruSafetensors *st = cru_model_get_shard (model, s);
      g_autofree char *base = g_path_get_basename (cru_safetensors_get_path (st));
      g_autofree char *ssize = cru_cli_format_size (cru_safetensors_get_file_size (st));
      guint n = shard_n_tensors (model, s);
      /* TRANSLATORS: a line of the list of shards: file name, number of tensors, size */
      printf (g_dngettext (GETTEXT_PACKAGE, "  %-36s %5u tensor   %s\n",
                           "  %-36s %5u tensors  %s\n", n),
              base, n, ssize);
    }
  if (tok[0])
    {
      g_autofree char *list = g_strjoinv (", ", tok);
      printf (_("Tokenizer:    %s\n"), list);
    }
  if (!tensors)
    return;

  /* The headings are translated: pad them by characters, not bytes, as printf would. */
  printf ("\n%s%*s %s%*s %s%*s %*s%s  %s\n",
          _("Name"), columns_left (_("Name"), 56), "",
          _("Dtype"), columns_left (_("Dtype"), 8), "",
          _("Shape"), columns_left (_("Shape"), 16), "",
          columns_left (_("Layer"), 5), "", _("Layer"), _("Role"));
  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    {
      const CruModelTensor *t = cru_model_get_tensor (model, i);
      g_autofree char *shape = format_shape (t->info);
      g_autofree char *layer = t->layer >= 0 ? g_strdup_printf ("%d", t->layer) : g_strdup ("-");
      printf ("%-56s %-8s %-16s %5s  %s\n", t->info->name, cru_dtype_to_string (t->info->dtype),
              shape, layer, cru_role_get_name (t->role));
    }
}

int
cru_cli_inspect (int argc, char **argv)
{
  gboolean json = FALSE, tensors = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print JSON"), NULL },
    { "tensors", 0, 0, G_OPTION_ARG_NONE, &tensors, N_("List every tensor"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (_("PATH — show a model's headers"));
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  DTypeStats stats;

  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  g_option_context_set_summary (ctx, _("PATH is a Hugging Face model folder or a .safetensors "
                                       "file. Only headers are read."));
  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 2)
    {
      g_printerr (_("crucible-cli: inspect takes one PATH (got %d)\n"), argc - 1);
      g_printerr (_("Run “crucible-cli inspect --help” for usage.\n"));
      return CRU_EXIT_USAGE;
    }
  model = cru_model_open (argv[1], &error);
  if (model == NULL)
    return cru_cli_fail (error);
  collect_dtypes (model, &stats);
  if (json)
    print_inspect_json (model, tensors, &stats);
  else
    print_inspect_text (model, tensors, &stats);
  return CRU_EXIT_OK;
}

/* ---- convert ---------------------------------------------------------------------- */

static gboolean
is_float_dtype (CruDType d)
{
  return d == CRU_DTYPE_F64 || d == CRU_DTYPE_F32 || d == CRU_DTYPE_F16 || d == CRU_DTYPE_BF16
         || d == CRU_DTYPE_F8_E4M3 || d == CRU_DTYPE_F8_E5M2;
}

static gboolean
copy_side_files (CruModel *model, const char *dir, CruDType dtype, GError **error)
{
  static const char *const side_files[] = {
    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
  };
  JsonObject *config = cru_model_get_config (model);

  if (config)
    {
      /* Edit the text, not a re-serialisation, so that the rest of the file stays as it was. */
      g_autofree char *orig = cru_model_get_file (model, "config.json");
      g_autofree char *out = g_build_filename (dir, "config.json", NULL);
      g_autofree char *text = NULL;
      g_autofree char *quoted = g_strdup_printf ("\"%s\"", cru_dtype_to_torch_string (dtype));
      g_autoptr(GRegex) re = g_regex_new ("(\"(torch_dtype|dtype)\"\\s*:\\s*)(\"[^\"]*\"|null)",
                                          0, 0, NULL);
      g_autoptr(GRegex) brace = g_regex_new ("^\\s*\\{", 0, 0, NULL);
      g_autofree char *replaced = NULL;
      g_autofree char *replacement = g_strdup_printf ("\\1%s", quoted);

      if (!g_file_get_contents (orig, &text, NULL, error))
        return FALSE;
      if (g_regex_match (re, text, 0, NULL))
        replaced = g_regex_replace (re, text, -1, 0, replacement, 0, error);
      else
        {
          g_autofree char *ins = g_strdup_printf ("{\n  \"torch_dtype\": %s,", quoted);
          replaced = g_regex_replace_literal (brace, text, -1, 0, ins, G_REGEX_MATCH_NOTEMPTY, error);
        }
      if (replaced == NULL || !g_file_set_contents (out, replaced, -1, error))
        return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (side_files); i++)
    {
      g_autofree char *src = cru_model_get_file (model, side_files[i]);
      g_autofree char *dst = g_build_filename (dir, side_files[i], NULL);
      g_autofree char *data = NULL;
      gsize len;

      if (src == NULL)
        continue;
      if (!g_file_get_contents (src, &data, &len, error)
          || !g_file_set_contents (dst, data, (gssize) len, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
convert_tensors (CruModel *model, CruLayout *layout, CruWriter *w, GCancellable *cancel,
                 GError **error)
{
  const guint64 chunk = 1u << 20;  /* elements */
  g_autofree float *buf = g_malloc (chunk * sizeof (float) * 2);

  for (guint i = 0; i < cru_layout_get_n_tensors (layout); i++)
    {
      const CruTensorInfo *out = cru_layout_get_tensor (layout, i);
      const CruModelTensor *in = cru_model_lookup (model, out->name);
      gsize in_size = cru_dtype_size (in->info->dtype);

      for (guint64 done = 0; done < out->numel;)
        {
          guint64 n = MIN (chunk, out->numel - done);

          while (g_main_context_iteration (NULL, FALSE))
            ;
          if (g_cancellable_set_error_if_cancelled (cancel, error))
            return FALSE;
          if (in->info->dtype == out->dtype)
            {
              if (!cru_safetensors_read_raw (in->shard, in->info, done * in_size, buf, n * in_size, error)
                  || !cru_writer_write (w, i, done * in_size, buf, n * in_size, error))
                return FALSE;
            }
          else if (!cru_model_read_f32 (model, in, done, n, buf, error)
                   || !cru_writer_write_f32 (w, i, done, buf, n, error))
            return FALSE;
          done += n;
        }
    }
  return TRUE;
}

int
cru_cli_convert (int argc, char **argv)
{
  g_autofree char *dtype_str = NULL;
  g_autofree char *shard_str = NULL;
  gboolean overwrite = FALSE;
  GOptionEntry entries[] = {
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_str, N_("Output dtype: f32, f16 or bf16 (default: "
      "the model's)"), N_("DTYPE") },
    { "shard-size", 0, 0, G_OPTION_ARG_STRING, &shard_str, N_("Largest shard, e.g. 5GB (default), "
      "500MB, 2GiB"), N_("SIZE") },
    { "overwrite", 0, 0, G_OPTION_ARG_NONE, &overwrite, N_("Replace OUT if it exists"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (_("IN OUT — re-save a model"));
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  g_autoptr(CruLayout) layout = NULL;
  g_autoptr(CruOutputDir) od = NULL;
  g_autoptr(CruWriter) w = NULL;
  guint64 shard_size = CRU_DEFAULT_SHARD_SIZE;
  CruDType dtype = CRU_DTYPE_INVALID;
  GCancellable *cancel = cru_cli_get_cancellable ();
  gint64 t0 = g_get_monotonic_time ();

  g_option_context_add_main_entries (ctx, entries, GETTEXT_PACKAGE);
  g_option_context_set_summary (ctx, _("Copies the model IN (folder or .safetensors file) into "
                                       "the new folder OUT with another dtype and sharding, "
                                       "with its config and tokenizer files."));
  if (!cru_cli_parse_options (ctx, &argc, &argv))
    return CRU_EXIT_USAGE;
  if (argc != 3)
    {
      g_printerr (_("crucible-cli: convert takes IN and OUT (got %d paths)\n"), argc - 1);
      g_printerr (_("Run “crucible-cli convert --help” for usage.\n"));
      return CRU_EXIT_USAGE;
    }
  if (dtype_str)
    {
      dtype = cru_dtype_from_user_string (dtype_str);
      if (dtype != CRU_DTYPE_F32 && dtype != CRU_DTYPE_F16 && dtype != CRU_DTYPE_BF16)
        {
          g_printerr (_("crucible-cli: --dtype must be f32, f16 or bf16, not “%s”\n"), dtype_str);
          return CRU_EXIT_USAGE;
        }
    }
  if (shard_str && !cru_cli_parse_size (shard_str, &shard_size, &error))
    {
      g_printerr ("crucible-cli: --shard-size: %s\n", error->message);
      return CRU_EXIT_USAGE;
    }

  model = cru_model_open (argv[1], &error);
  if (model == NULL)
    return cru_cli_fail (error);
  if (dtype == CRU_DTYPE_INVALID)
    dtype = cru_model_get_dtype (model);
  if (dtype != CRU_DTYPE_F32 && dtype != CRU_DTYPE_F16 && dtype != CRU_DTYPE_BF16)
    dtype = CRU_DTYPE_F32;

  layout = cru_layout_new (shard_size);
  for (guint i = 0; i < cru_model_get_n_tensors (model); i++)
    {
      const CruTensorInfo *t = cru_model_get_tensor (model, i)->info;
      cru_layout_add (layout, t->name, is_float_dtype (t->dtype) ? dtype : t->dtype, t->ndim,
                      t->shape);
    }
  if (!cru_layout_finish (layout, &error))
    return cru_cli_fail (error);

  od = cru_output_dir_begin (argv[2], overwrite, &error);
  if (od == NULL)
    return cru_cli_fail (error);
  w = cru_writer_open (layout, cru_output_dir_get_tmp_path (od), &error);
  if (w == NULL
      || !convert_tensors (model, layout, w, cancel, &error)
      || !cru_writer_close (w, &error)
      || !copy_side_files (model, cru_output_dir_get_tmp_path (od), dtype, &error)
      || !cru_output_dir_commit (od, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_printerr (_("crucible-cli: cancelled; nothing was written to %s\n"), argv[2]);
          return CRU_EXIT_CANCELLED;
        }
      {
        guint64 need = 0;
        for (guint i = 0; i < cru_layout_get_n_shards (layout); i++)
          need += cru_layout_get_shard_size (layout, i);
        cru_output_dir_explain_no_space (argv[2], need, &error);
      }
      return cru_cli_fail (error);
    }

  {
    g_autofree char *size = cru_cli_format_size (cru_layout_get_total_data_size (layout));
    guint n_shards = cru_layout_get_n_shards (layout);
    /* TRANSLATORS: "Wrote out: 39 tensors, bf16, 1.2 GB in 2 shards (3.40 s)"; the plural
     * follows the number of shards, the second directive is the number of tensors */
    printf (g_dngettext (GETTEXT_PACKAGE, "Wrote %s: %u tensors, %s, %s in %u shard (%.2f s)\n",
                         "Wrote %s: %u tensors, %s, %s in %u shards (%.2f s)\n", n_shards),
            cru_output_dir_get_target (od), cru_layout_get_n_tensors (layout),
            cru_dtype_to_string (dtype), size, n_shards, (g_get_monotonic_time () - t0) / 1e6);
  }
  return CRU_EXIT_OK;
}
