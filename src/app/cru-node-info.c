/* cru-node-info.c — node titles, icons, port types, the node catalogue, model summaries
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-node-info.h"

#include <glib/gi18n-lib.h>
#include <string.h>
#include "cru-method.h"
#include "cru-model.h"

static GArray *templates;

static void
add_template (CruNodeKind kind, const char *method, const char *label,
              const char *description, const char *icon, CruPaletteGroup group)
{
  CruNodeTemplate t = { kind, method, label, description, icon, group };
  g_array_append_val (templates, t);
}

static void
ensure_templates (void)
{
  if (templates != NULL)
    return;
  templates = g_array_new (FALSE, TRUE, sizeof (CruNodeTemplate));
  add_template (CRU_NODE_MODEL, NULL, _("Model"),
                _("A model folder or .safetensors file"), cru_node_kind_icon (CRU_NODE_MODEL),
                CRU_PALETTE_SOURCES);
  for (guint i = 0; i < cru_method_get_n (); i++)
    {
      const CruMethod *m = cru_method_get_nth (i);
      add_template (CRU_NODE_METHOD, m->name, _(m->label),
                    m->description ? _(m->description) : "",
                    cru_node_kind_icon (CRU_NODE_METHOD), CRU_PALETTE_METHODS);
    }
  add_template (CRU_NODE_SLICE, NULL, _("Slice"), _("A range of layers of one model"),
                cru_node_kind_icon (CRU_NODE_SLICE), CRU_PALETTE_STRUCTURE);
  add_template (CRU_NODE_STACK, NULL, _("Stack"),
                _("Stacks slices into one model (frankenmerge)"),
                cru_node_kind_icon (CRU_NODE_STACK), CRU_PALETTE_STRUCTURE);
  add_template (CRU_NODE_MOE, NULL, _("Mixture of Experts"),
                _("Builds a mixture-of-experts model from a base and experts"),
                cru_node_kind_icon (CRU_NODE_MOE), CRU_PALETTE_STRUCTURE);
  add_template (CRU_NODE_OUTPUT, NULL, _("Output"),
                _("Writes the merged model to a folder"), cru_node_kind_icon (CRU_NODE_OUTPUT),
                CRU_PALETTE_OUTPUT);
}

guint
cru_node_templates_get_n (void)
{
  ensure_templates ();
  return templates->len;
}

const CruNodeTemplate *
cru_node_templates_get_nth (guint index)
{
  ensure_templates ();
  g_return_val_if_fail (index < templates->len, NULL);
  return &g_array_index (templates, CruNodeTemplate, index);
}

const char *
cru_palette_group_label (CruPaletteGroup group)
{
  switch (group)
    {
    case CRU_PALETTE_SOURCES:   return _("Sources");
    case CRU_PALETTE_METHODS:   return _("Methods");
    case CRU_PALETTE_STRUCTURE: return _("Structure");
    case CRU_PALETTE_OUTPUT:    return _("Output");
    default:                    return "";
    }
}

CruStreamType
cru_port_stream_type (CruNodeKind kind, const char *port)
{
  if (port == NULL)
    return CRU_STREAM_NONE;
  if (kind == CRU_NODE_STACK && strcmp (port, CRU_PORT_SLICE) == 0)
    return CRU_STREAM_SLICE;
  return CRU_STREAM_MODEL;
}

CruStreamType
cru_output_stream_type (CruNodeKind kind)
{
  if (!cru_node_kind_has_output (kind))
    return CRU_STREAM_NONE;
  return kind == CRU_NODE_SLICE ? CRU_STREAM_SLICE : CRU_STREAM_MODEL;
}

CruStreamType
cru_node_template_accepts (const CruNodeTemplate *tmpl)
{
  const char *const *inputs = cru_node_kind_inputs (tmpl->kind);
  CruStreamType types = CRU_STREAM_NONE;

  for (guint i = 0; inputs != NULL && inputs[i] != NULL; i++)
    types |= cru_port_stream_type (tmpl->kind, inputs[i]);
  return types;
}

CruStreamType
cru_node_template_produces (const CruNodeTemplate *tmpl)
{
  return cru_output_stream_type (tmpl->kind);
}

const char *
cru_node_kind_icon (CruNodeKind kind)
{
  switch (kind)
    {
    case CRU_NODE_MODEL:  return "drive-harddisk-symbolic";
    case CRU_NODE_METHOD: return "applications-science-symbolic";
    case CRU_NODE_SLICE:  return "edit-cut-symbolic";
    case CRU_NODE_STACK:  return "view-list-symbolic";
    case CRU_NODE_OUTPUT: return "document-save-symbolic";
    case CRU_NODE_MOE:    return "view-grid-symbolic";
    default:              return "dialog-question-symbolic";
    }
}

const char *
cru_node_kind_label (CruNodeKind kind)
{
  switch (kind)
    {
    case CRU_NODE_MODEL:  return _("Model");
    case CRU_NODE_METHOD: return _("Method");
    case CRU_NODE_SLICE:  return _("Slice");
    case CRU_NODE_STACK:  return _("Stack");
    case CRU_NODE_OUTPUT: return _("Output");
    case CRU_NODE_MOE:    return _("Mixture of Experts");
    default:              return _("Unknown");
    }
}

/* ---- mixture-of-experts settings ---- */

static const CruChoice gate_modes[] = {
  { "hidden", N_("By meaning"),
    N_("Each token goes to the experts whose prompts the base model reads most like it. The "
       "usual choice") },
  { "hidden_avg", N_("By meaning, whole prompts"),
    N_("Like “By meaning”, but compares with each prompt as a whole rather than with its "
       "end") },
  { "cheap_embed", N_("By words"),
    N_("Compares the words of the prompts without running the base model: quicker to build, "
       "routes less well") },
  { "random", N_("Random"),
    N_("A random router that ignores the prompts, for a model you will train further") },
  { "uniform_random", N_("Random, small"),
    N_("A small random router like a new layer's, for a model you will train further; the "
       "prompts are ignored") },
};

static const CruChoice architectures[] = {
  { "mixtral", N_("Mixtral"),
    N_("Llama or Mistral experts become a Mixtral model, which most tools can load") },
  { "qwen2_moe", N_("Qwen2-MoE"),
    N_("Adds a shared expert that every token also goes through: connect one to “shared "
       "expert”. For Llama, Mistral or Qwen2 experts") },
  { "qwen3_moe", N_("Qwen3-MoE"),
    N_("Qwen3 experts become a Qwen3-MoE model") },
};

const CruChoice *
cru_moe_gate_modes (guint *n_choices)
{
  *n_choices = G_N_ELEMENTS (gate_modes);
  return gate_modes;
}

const CruChoice *
cru_moe_architectures (guint *n_choices)
{
  *n_choices = G_N_ELEMENTS (architectures);
  return architectures;
}

const CruChoice *
cru_choice_find (const CruChoice *choices, guint n_choices, const char *id)
{
  for (guint i = 0; id != NULL && i < n_choices; i++)
    if (g_str_equal (choices[i].id, id))
      return &choices[i];
  return NULL;
}

char *
cru_node_dup_title (const CruNode *node)
{
  if (node->label != NULL && node->label[0] != '\0')
    return g_strdup (node->label);
  if (node->kind == CRU_NODE_MODEL && node->path != NULL)
    return g_path_get_basename (node->path);
  if (node->kind == CRU_NODE_METHOD && node->method != NULL)
    {
      const CruMethod *m = cru_method_lookup (node->method);
      return g_strdup (m != NULL ? _(m->label) : node->method);
    }
  return g_strdup (cru_node_kind_label (node->kind));
}

char *
cru_format_bytes (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_DEFAULT);
}

char *
cru_format_count (guint64 count)
{
  if (count >= 1000000000ull)
    return g_strdup_printf ("%.1f B", count / 1e9);
  if (count >= 1000000ull)
    return g_strdup_printf ("%.1f M", count / 1e6);
  if (count >= 1000ull)
    return g_strdup_printf ("%.1f K", count / 1e3);
  return g_strdup_printf ("%" G_GUINT64_FORMAT, count);
}

char *
cru_format_seconds (double seconds)
{
  if (seconds < 0)
    return g_strdup ("—");
  if (seconds < 1)
    return g_strdup (_("under a second"));
  if (seconds < 90)
    return g_strdup_printf (_("%.0f s"), seconds);
  if (seconds < 3600 * 1.5)
    return g_strdup_printf (_("%.0f min"), seconds / 60);
  return g_strdup_printf (_("%.1f h"), seconds / 3600);
}

/* ---- model summaries ---- */

static GHashTable *model_infos;   /* path → CruModelInfo* */
static GObject *notifier;
static guint n_pending;

static void
model_info_free (CruModelInfo *info)
{
  g_free (info->path);
  g_free (info->error);
  g_free (info->arch);
  g_free (info);
}

GObject *
cru_model_info_get_notifier (void)
{
  if (notifier == NULL)
    {
      notifier = g_object_new (G_TYPE_OBJECT, NULL);
      g_signal_new ("model-info-changed", G_TYPE_OBJECT, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    }
  return notifier;
}

guint
cru_model_info_get_pending (void)
{
  return n_pending;
}

static void
open_model_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *c)
{
  const char *path = task_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = cru_model_open (path, &error);
  CruModelInfo *info = g_new0 (CruModelInfo, 1);

  info->path = g_strdup (path);
  info->loaded = TRUE;
  if (model == NULL)
    info->error = g_strdup (error->message);
  else
    {
      CruArch arch = cru_model_get_arch (model);
      const char *type = cru_model_get_model_type (model);

      info->arch = g_strdup (arch != CRU_ARCH_GENERIC ? cru_arch_get_label (arch)
                             : type != NULL ? type : _("Unknown architecture"));
      info->n_params = cru_model_get_n_params (model);
      info->n_layers = cru_model_get_n_layers (model);
      info->dtype = cru_model_get_dtype (model);
      info->bytes = cru_model_get_total_bytes (model);
    }
  g_task_return_pointer (task, info, (GDestroyNotify) model_info_free);
}

static void
open_model_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CruModelInfo *info = g_task_propagate_pointer (G_TASK (result), NULL);

  n_pending--;
  if (info == NULL)
    return;
  g_hash_table_replace (model_infos, info->path, info);
  g_signal_emit_by_name (cru_model_info_get_notifier (), "model-info-changed", info->path);
}

const CruModelInfo *
cru_model_info_lookup (const char *path)
{
  CruModelInfo *info;
  g_autoptr(GTask) task = NULL;

  if (path == NULL)
    return NULL;
  if (model_infos == NULL)
    model_infos = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) model_info_free);
  info = g_hash_table_lookup (model_infos, path);
  if (info != NULL)
    return info;

  info = g_new0 (CruModelInfo, 1);
  info->path = g_strdup (path);
  g_hash_table_insert (model_infos, info->path, info);

  /* Headers only, but a network folder or a 70B index can still take a moment. */
  n_pending++;
  task = g_task_new (NULL, NULL, open_model_done, NULL);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_run_in_thread (task, open_model_thread);
  return info;
}
