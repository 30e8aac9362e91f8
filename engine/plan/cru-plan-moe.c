/* cru-plan-moe.c — a mixture of experts as the graph's result: the MoE node and its inputs
 * are checked before any weight is read (every problem at once, on its node and port),
 * turned into the CruMoeConfig that cru_moe_build_into runs (cru-engine-moe.c), and
 * estimated; the model card and recipes of the output.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"

#include <math.h>
#include <string.h>

static const char *const gate_modes[] = {
  "hidden", "hidden_avg", "cheap_embed", "random", "uniform_random", NULL
};
static const char *const architectures[] = { "mixtral", "qwen2_moe", "qwen3_moe", NULL };
static const char *const node_params[] = {
  "gate_mode", "experts_per_token", "architecture", "seed", NULL
};
static const char *const link_params[] = {
  "positive_prompts", "negative_prompts", "noise_scale", "residual_scale", NULL
};

/* mergekit-moe's spellings besides the canonical ones. */
static int
find_gate_mode (const char *s)
{
  if (s == NULL)
    return CRU_GATE_HIDDEN;
  if (g_str_equal (s, "hidden_last"))
    return CRU_GATE_HIDDEN;
  for (int i = 0; gate_modes[i]; i++)
    if (g_str_equal (s, gate_modes[i]))
      return i;
  return -1;
}

static int
find_architecture (const char *s)
{
  if (s == NULL)
    return CRU_MOE_OUTPUT_MIXTRAL;
  if (!g_ascii_strcasecmp (s, "mixtral"))
    return CRU_MOE_OUTPUT_MIXTRAL;
  if (!g_ascii_strcasecmp (s, "qwen2_moe") || !g_ascii_strcasecmp (s, "qwen")
      || !g_ascii_strcasecmp (s, "qwen2"))
    return CRU_MOE_OUTPUT_QWEN2_MOE;
  if (!g_ascii_strcasecmp (s, "qwen3_moe") || !g_ascii_strcasecmp (s, "qwen3"))
    return CRU_MOE_OUTPUT_QWEN3_MOE;
  return -1;
}

const char *
_cru_plan_moe_gate_mode_name (int mode)
{
  return mode >= 0 && mode < (int) G_N_ELEMENTS (gate_modes) - 1 ? gate_modes[mode] : "hidden";
}

const char *
_cru_plan_moe_architecture_name (int output)
{
  return output >= 0 && output < (int) G_N_ELEMENTS (architectures) - 1 ? architectures[output]
                                                                          : "mixtral";
}

/* Model types whose MLPs become experts of each output architecture (cru-moe.c). */
static const char *
allowed_types (CruMoeOutput output)
{
  switch (output)
    {
    case CRU_MOE_OUTPUT_QWEN2_MOE: return "llama, mistral, qwen2";
    case CRU_MOE_OUTPUT_QWEN3_MOE: return "qwen3";
    case CRU_MOE_OUTPUT_MIXTRAL:
    default:                       return "llama, mistral";
    }
}

static gboolean
type_allowed (CruMoeOutput output, const char *type)
{
  g_auto(GStrv) list = g_strsplit (allowed_types (output), ", ", -1);
  return type != NULL && g_strv_contains ((const char *const *) list, type);
}

guint
_cru_plan_moe_node (CruGraph *graph, guint out_node)
{
  const CruLink *l = cru_graph_find_link (graph, out_node, CRU_PORT_MODEL, 0);
  const CruNode *n = l ? cru_graph_get_node (graph, l->from_node) : NULL;

  return n && n->kind == CRU_NODE_MOE ? n->id : 0;
}

/* ---- checks ---- */

typedef struct {
  CruCompiler *c;
  guint        node;
  char        *title;
  gboolean     ok;         /* no error so far */
} Check;

static void G_GNUC_PRINTF (5, 6)
report (Check *k, CruSeverity severity, guint link, const char *port, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (severity == CRU_SEVERITY_ERROR)
    k->ok = FALSE;
  _cru_compiler_problem (k->c, severity, k->node, link, port, message);
}

/* Paths in the graph are absolute once loaded; one set through the API may be relative to
 * the graph's file, as in the file itself. */
static char *
input_path (CruGraph *graph, const char *path)
{
  g_autofree char *dir = NULL;

  if (g_path_is_absolute (path))
    return g_strdup (path);
  if (cru_graph_get_path (graph))
    dir = g_path_get_dirname (cru_graph_get_path (graph));
  return g_canonicalize_filename (path, dir);
}

/* Opens the model a Model node names (once per node, like the merge compiler). */
static CruModel *
open_input (CruCompiler *c, const CruNode *n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *title = _cru_node_title (c->graph, n->id);
  g_autofree char *path = NULL;
  CruModel *model;

  if (n->path == NULL || *n->path == '\0')
    {
      g_autofree char *msg = g_strdup_printf (_("%s: no model chosen; pick a model folder or "
                                                ".safetensors file"), title);
      _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, NULL, msg);
      return NULL;
    }
  model = g_hash_table_lookup (c->models, GUINT_TO_POINTER (n->id));
  if (model)
    return model;
  path = input_path (c->graph, n->path);
  model = cru_model_open (path, &error);
  if (model == NULL)
    {
      _cru_compiler_problem (c, CRU_SEVERITY_ERROR, n->id, 0, NULL, error->message);
      return NULL;
    }
  g_hash_table_insert (c->models, GUINT_TO_POINTER (n->id), model);
  g_ptr_array_add (c->plan->models, cru_model_ref (model));
  g_ptr_array_add (c->plan->model_nodes, GUINT_TO_POINTER (n->id));
  return model;
}

static const char *
port_label (const char *port)
{
  if (g_str_equal (port, CRU_PORT_BASE))
    return _("base");
  if (g_str_equal (port, CRU_PORT_SHARED_EXPERT))
    return _("shared expert");
  return _("expert");
}

/* The model behind @link, or NULL after reporting why there is none. */
static CruModel *
input_model (Check *k, const CruLink *link)
{
  const CruNode *from = cru_graph_get_node (k->c->graph, link->from_node);
  g_autofree char *from_title = _cru_node_title (k->c->graph, link->from_node);
  CruModel *model;

  if (from == NULL)
    return NULL;
  if (from->kind != CRU_NODE_MODEL)
    {
      report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
              _("%s: “%s” feeds its %s input, but a mixture of experts takes whole models "
                "from folders. Run that merge first (into its own Output folder) and connect "
                "a Model node of that folder instead"), k->title, from_title,
              port_label (link->to_port));
      return NULL;
    }
  model = open_input (k->c, from);
  if (model == NULL)
    k->ok = FALSE;
  return model;
}

static int
config_int (CruModel *m, const char *name)
{
  JsonObject *cfg = cru_model_get_config (m);
  return cfg ? (int) json_object_get_int_member_with_default (cfg, name, -1) : -1;
}

/* An expert must have the base's shape: its MLP becomes one of the base's experts. */
static void
check_compatible (Check *k, const CruLink *link, CruModel *base, CruModel *m)
{
  const char *bt = cru_model_get_model_type (base), *mt = cru_model_get_model_type (m);
  const char *bn = cru_model_get_name (base), *mn = cru_model_get_name (m);
  struct { const char *key; const char *what; } dims[] = {
    { "hidden_size", N_("hidden size") },
    { "num_hidden_layers", N_("layers") },
    { "intermediate_size", N_("MLP width (intermediate_size)") },
  };

  if (m == base)
    return;
  if (g_strcmp0 (bt, mt) != 0)
    {
      report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
              _("%s: %s is a “%s” model but the base %s is a “%s” model; experts must have the "
                "base's architecture (fine-tunes of the same model)"), k->title, mn,
              mt ? mt : "?", bn, bt ? bt : "?");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (dims); i++)
    {
      int a = config_int (base, dims[i].key), b = config_int (m, dims[i].key);
      if (g_str_equal (dims[i].key, "num_hidden_layers"))
        a = cru_model_get_n_layers (base), b = cru_model_get_n_layers (m);
      if (a != b)
        report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
                _("%s: %s has %s %d but the base %s has %d; every expert needs the base's "
                  "shape"), k->title, mn, _(dims[i].what), b, bn, a);
    }
}

/* A prompt list from a link parameter: a list of texts, or one text. */
static GStrv
prompt_list (Check *k, const CruLink *link, const char *name, guint index, const char *model)
{
  const CruValue *v = cru_graph_get_link_param (k->c->graph, link->id, name);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  if (v == NULL)
    return NULL;
  if (v->kind == CRU_VALUE_STRING)
    g_strv_builder_add (b, v->string ? v->string : "");
  else if (v->kind == CRU_VALUE_STRINGS)
    g_strv_builder_addv (b, (const char **) v->strings);
  else
    {
      report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
              _("%s: %s of expert %u (%s) must be a list of texts"), k->title, name, index,
              model);
      return NULL;
    }
  return g_strv_builder_end (b);
}

static gboolean
link_number (Check *k, const CruLink *link, const char *name, double *out)
{
  const CruValue *v = cru_graph_get_link_param (k->c->graph, link->id, name);

  if (v == NULL)
    return FALSE;
  if (v->kind != CRU_VALUE_SCALAR)
    {
      report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
              _("%s: %s must be a single number"), k->title, name);
      return FALSE;
    }
  *out = v->scalar;
  return TRUE;
}

static gboolean
same_prompts (const CruMoeExpert *a, const CruMoeExpert *b)
{
  GStrv an = a->negative_prompts, bn = b->negative_prompts;

  return a->positive_prompts && b->positive_prompts
         && g_strv_equal ((const char *const *) a->positive_prompts,
                          (const char *const *) b->positive_prompts)
         && ((an == NULL || !an[0]) == (bn == NULL || !bn[0]))
         && (an == NULL || !an[0] || g_strv_equal ((const char *const *) an,
                                                   (const char *const *) bn));
}

static gboolean
blank (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isspace (*s))
      return FALSE;
  return TRUE;
}

/* An expert (or shared expert) from its link: model, prompts, scales. */
static CruMoeExpert *
expert_from_link (Check *k, const CruLink *link, guint index, CruModel *model,
                  gboolean needs_prompts)
{
  g_autofree char *name = _cru_node_title (k->c->graph, link->from_node);
  CruMoeExpert *e = cru_moe_expert_new (model ? cru_model_get_path (model) : "");
  const char *who = g_str_equal (link->to_port, CRU_PORT_SHARED_EXPERT) ? _("shared expert")
                                                                         : _("expert");
  GHashTableIter iter;
  gpointer key;

  e->positive_prompts = prompt_list (k, link, "positive_prompts", index, name);
  e->negative_prompts = prompt_list (k, link, "negative_prompts", index, name);
  if (needs_prompts && (e->positive_prompts == NULL || e->positive_prompts[0] == NULL))
    report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
            _("%s: %s %u (%s) has no positive prompts. This routing mode sends each token to "
              "the experts whose prompts it resembles most: add a few texts of what this "
              "expert should handle"), k->title, who, index, name);
  for (int neg = 0; neg < 2; neg++)
    {
      GStrv list = neg ? e->negative_prompts : e->positive_prompts;
      for (guint i = 0; list && list[i]; i++)
        if (blank (list[i]))
          {
            report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
                    neg ? _("%s: a negative prompt of %s %u (%s) is empty; write it or "
                            "remove it")
                        : _("%s: a positive prompt of %s %u (%s) is empty; write it or "
                            "remove it"), k->title, who, index, name);
            break;
          }
    }
  if (!needs_prompts && e->positive_prompts && e->positive_prompts[0])
    report (k, CRU_SEVERITY_INFO, link->id, link->to_port,
            _("%s: random routing does not use the prompts of %s %u (%s)"), k->title, who,
            index, name);
  if ((e->has_noise_scale = link_number (k, link, "noise_scale", &e->noise_scale))
      && (e->noise_scale < 0 || e->noise_scale > 10))
    report (k, CRU_SEVERITY_ERROR, link->id, link->to_port,
            _("%s: noise_scale of %s %u (%s) is %g; use a value from 0 (no noise) to 10"),
            k->title, who, index, name, e->noise_scale);
  e->has_residual_scale = link_number (k, link, "residual_scale", &e->residual_scale);

  g_hash_table_iter_init (&iter, link->params);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_strv_contains (link_params, key))
      _cru_plan_unknown_param (k->c, k->node, link->id, k->title, key, link_params,
                               g_strv_length ((char **) link_params), _("an expert"));
  return e;
}

static const char *
node_string (CruGraph *graph, guint node, const char *name)
{
  const CruValue *v = cru_graph_get_param (graph, node, name);
  return v && v->kind == CRU_VALUE_STRING ? v->string : NULL;
}

/* Settings of the MoE node itself. */
static void
check_settings (Check *k, const CruNode *n, CruMoeConfig *cfg)
{
  CruGraph *graph = k->c->graph;
  const char *s;
  const CruValue *v;
  GHashTableIter iter;
  gpointer key;
  int i;

  g_hash_table_iter_init (&iter, n->params);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_strv_contains (node_params, key))
      _cru_plan_unknown_param (k->c, n->id, 0, k->title, key, node_params,
                               g_strv_length ((char **) node_params), _("a mixture of experts"));

  v = cru_graph_get_param (graph, n->id, "gate_mode");
  s = node_string (graph, n->id, "gate_mode");
  if ((v && !s) || (i = find_gate_mode (s)) < 0)
    report (k, CRU_SEVERITY_ERROR, 0, NULL,
            _("%s: the routing (gate_mode) “%s” is not known; use hidden, hidden_avg, "
              "cheap_embed, random or uniform_random"), k->title, s ? s : "?");
  else
    cfg->gate_mode = (CruGateMode) i;

  v = cru_graph_get_param (graph, n->id, "architecture");
  s = node_string (graph, n->id, "architecture");
  if ((v && !s) || (i = find_architecture (s)) < 0)
    report (k, CRU_SEVERITY_ERROR, 0, NULL,
            _("%s: the output architecture “%s” is not supported; use mixtral, qwen2_moe or "
              "qwen3_moe"), k->title, s ? s : "?");
  else
    {
      cfg->output = (CruMoeOutput) i;
      cfg->output_set = v != NULL;
    }

  v = cru_graph_get_param (graph, n->id, "experts_per_token");
  if (v && (v->kind != CRU_VALUE_SCALAR || v->scalar != (int) v->scalar))
    report (k, CRU_SEVERITY_ERROR, 0, NULL,
            _("%s: experts_per_token must be a whole number"), k->title);
  else if (v)
    cfg->experts_per_token = (int) v->scalar;

  v = cru_graph_get_param (graph, n->id, "seed");
  if (v && (v->kind != CRU_VALUE_SCALAR || v->scalar < 0 || v->scalar != floor (v->scalar)))
    report (k, CRU_SEVERITY_ERROR, 0, NULL,
            _("%s: seed must be a whole number of 0 or more"), k->title);
  else if (v)
    cfg->seed = (guint64) v->scalar;
}

void
_cru_plan_moe_check (CruCompiler *c, guint moe_node, guint out_node)
{
  CruPlan *plan = c->plan;
  CruGraph *graph = c->graph;
  const CruNode *n = cru_graph_get_node (graph, moe_node);
  g_autoptr(GPtrArray) links = cru_graph_links_to (graph, moe_node);
  g_autoptr(GPtrArray) expert_links = g_ptr_array_new ();
  g_autoptr(GPtrArray) shared_links = g_ptr_array_new ();
  g_autoptr(CruMoeConfig) cfg = cru_moe_config_new ();
  g_autoptr(GPtrArray) models = g_ptr_array_new_with_free_func ((GDestroyNotify) cru_model_unref);
  Check k = { c, moe_node, _cru_node_title (graph, moe_node), TRUE };
  const CruLink *base_link = NULL;
  CruModel *base = NULL;
  gboolean needs_prompts;
  guint n_experts;
  g_autofree char *count_warning = NULL;

  for (guint i = 0; i < links->len; i++)
    {
      const CruLink *l = g_ptr_array_index (links, i);
      if (g_str_equal (l->to_port, CRU_PORT_BASE))
        base_link = l;
      else if (g_str_equal (l->to_port, CRU_PORT_SHARED_EXPERT))
        g_ptr_array_add (shared_links, (gpointer) l);
      else
        g_ptr_array_add (expert_links, (gpointer) l);
    }
  n_experts = expert_links->len;
  check_settings (&k, n, cfg);
  needs_prompts = cfg->gate_mode == CRU_GATE_HIDDEN || cfg->gate_mode == CRU_GATE_HIDDEN_AVG
                  || cfg->gate_mode == CRU_GATE_CHEAP_EMBED;

  if (base_link == NULL)
    report (&k, CRU_SEVERITY_ERROR, 0, CRU_PORT_BASE,
            _("%s: connect a base model to the “base” input; attention, embeddings and the "
              "router come from it"), k.title);
  else if ((base = input_model (&k, base_link)) != NULL)
    {
      const char *bt = cru_model_get_model_type (base);
      cfg->base_model = g_strdup (cru_model_get_path (base));
      g_ptr_array_add (models, cru_model_ref (base));
      if (!type_allowed (cfg->output, bt))
        report (&k, CRU_SEVERITY_ERROR, base_link->id, CRU_PORT_BASE,
                _("%s: the base %s is a “%s” model; the %s architecture is built from %s "
                  "models"), k.title, cru_model_get_name (base), bt ? bt : "?",
                _cru_plan_moe_architecture_name (cfg->output), allowed_types (cfg->output));
    }

  if (n_experts == 0)
    report (&k, CRU_SEVERITY_ERROR, 0, CRU_PORT_EXPERT,
            _("%s: connect the expert models to the “expert” input (two or more)"), k.title);
  else if (n_experts == 1)
    report (&k, CRU_SEVERITY_WARNING, 0, CRU_PORT_EXPERT,
            _("%s: with one expert every token goes to it, so the router has nothing to "
              "choose; connect two or more experts"), k.title);

  for (guint pass = 0; pass < 2; pass++)
    {
      GPtrArray *list = pass == 0 ? expert_links : shared_links;
      for (guint i = 0; i < list->len; i++)
        {
          const CruLink *l = g_ptr_array_index (list, i);
          CruModel *m = input_model (&k, l);
          CruMoeExpert *e;

          if (m && base)
            check_compatible (&k, l, base, m);
          e = expert_from_link (&k, l, i + 1, m, needs_prompts);
          g_ptr_array_add (pass == 0 ? cfg->experts : cfg->shared_experts, e);
          if (m)
            g_ptr_array_add (models, cru_model_ref (m));
        }
    }

  /* Prompts the router cannot tell apart. */
  if (needs_prompts && n_experts >= 2)
    {
      gboolean all_same = TRUE;
      for (guint i = 1; i < n_experts; i++)
        all_same &= same_prompts (cfg->experts->pdata[0], cfg->experts->pdata[i]);
      if (all_same && ((CruMoeExpert *) cfg->experts->pdata[0])->positive_prompts)
        report (&k, CRU_SEVERITY_ERROR, 0, NULL,
                _("%s: all experts have the same prompts, so the router could not tell them "
                  "apart; give each expert prompts of what it should handle"), k.title);
      else
        for (guint i = 1; i < n_experts; i++)
          for (guint j = 0; j < i; j++)
            if (same_prompts (cfg->experts->pdata[j], cfg->experts->pdata[i]))
              {
                const CruLink *li = g_ptr_array_index (expert_links, i);
                const CruLink *lj = g_ptr_array_index (expert_links, j);
                g_autofree char *ni = _cru_node_title (graph, li->from_node);
                g_autofree char *nj = _cru_node_title (graph, lj->from_node);
                report (&k, CRU_SEVERITY_WARNING, li->id, CRU_PORT_EXPERT,
                        _("%s: experts %u (%s) and %u (%s) have the same prompts, so the "
                          "router sends them the same tokens; give each its own prompts"),
                        k.title, j + 1, nj, i + 1, ni);
                break;
              }
    }

  if (n_experts > 0 && (cfg->experts_per_token < 1 || (guint) cfg->experts_per_token > n_experts))
    report (&k, CRU_SEVERITY_ERROR, 0, NULL,
            _("%s: experts_per_token is %d but must be between 1 and the number of experts "
              "(%u)"), k.title, cfg->experts_per_token, n_experts);

  if (cfg->output == CRU_MOE_OUTPUT_QWEN2_MOE && shared_links->len != 1)
    report (&k, CRU_SEVERITY_ERROR, 0, CRU_PORT_SHARED_EXPERT,
            _("%s: the qwen2_moe architecture needs one shared expert (a model every token "
              "also goes through); connect one to the “shared expert” input"), k.title);
  else if (cfg->output != CRU_MOE_OUTPUT_QWEN2_MOE && shared_links->len > 0)
    report (&k, CRU_SEVERITY_ERROR,
            ((const CruLink *) g_ptr_array_index (shared_links, 0))->id, CRU_PORT_SHARED_EXPERT,
            _("%s: only the qwen2_moe architecture has a shared expert; choose qwen2_moe or "
              "disconnect the shared expert"), k.title);

  if ((count_warning = cru_moe_expert_count_warning (n_experts)) != NULL)
    report (&k, CRU_SEVERITY_WARNING, 0, CRU_PORT_EXPERT,
            _("%s: %u experts is not a power of two, so llama.cpp cannot load the result "
              "(transformers can); connect 2, 4 or 8 experts for llama.cpp"), k.title,
            n_experts);

  /* The Output node's settings that a merge uses but a MoE build does not. */
  {
    const CruValue *v = cru_graph_get_param (graph, out_node, "tokenizer_source");
    const char *tok = v ? cru_value_resolve_string (v, "") : NULL;
    g_autofree char *out_title = _cru_node_title (graph, out_node);
    double d;

    if (tok && !g_str_equal (tok, "base"))
      _cru_plan_add_problem (plan, CRU_SEVERITY_WARNING, out_node, 0, NULL,
                             _("%s: a mixture of experts always takes the base's tokenizer "
                               "(its router was set with it); the tokenizer source “%s” is "
                               "ignored"), out_title, tok);
    if ((v = cru_graph_get_param (graph, out_node, "copy_tokenizer"))
        && cru_value_resolve (v, "", 0, &d) && d == 0)
      _cru_plan_add_problem (plan, CRU_SEVERITY_WARNING, out_node, 0, NULL,
                             _("%s: a mixture of experts always carries the base's tokenizer "
                               "files; “copy tokenizer: no” is ignored"), out_title);
    if (cru_graph_get_param (graph, out_node, "chat_template"))
      _cru_plan_add_problem (plan, CRU_SEVERITY_WARNING, out_node, 0, NULL,
                             _("%s: the chat template setting is not applied to a mixture of "
                               "experts; the base's tokenizer_config.json is copied as it "
                               "is"), out_title);
  }

  if (!k.ok || base == NULL)
    {
      g_free (k.title);
      return;
    }
  plan->moe = g_steal_pointer (&cfg);
  plan->moe_node = moe_node;
  plan->moe_title = g_strdup (k.title);
  plan->moe_models = g_steal_pointer (&models);
  plan->config_source = base;
  plan->n_layers = cru_model_get_n_layers (base);
  plan->vocab_size = cru_model_get_vocab_size (base);
  plan->has_lm_head = cru_model_lookup (base, "lm_head.weight") != NULL;
  g_free (k.title);
}

/* The device setting: a MoE is built on the CPU. */
void
_cru_plan_moe_device (CruCompiler *c, guint out_node)
{
  CruPlan *plan = c->plan;
  const CruValue *v = cru_graph_get_param (c->graph, out_node, "device");
  const char *s = v ? cru_value_resolve_string (v, "") : NULL;

  plan->estimate.device = CRU_DEVICE_CPU;
  g_clear_pointer (&plan->device_note, g_free);
  plan->device_note = g_strdup (_("CPU (a mixture of experts is built on the CPU)"));
  if ((s && !g_ascii_strcasecmp (s, "cuda")) || plan->options.device == CRU_DEVICE_CUDA)
    _cru_plan_add_problem (plan, CRU_SEVERITY_INFO, out_node, 0, NULL,
                           _("A mixture of experts is built on the CPU; the device “cuda” "
                             "is not used"));
}

/* Once the output settings are known: the build's configuration, tensors and layout. */
void
_cru_plan_moe_finish (CruCompiler *c)
{
  CruPlan *plan = c->plan;
  CruMoeConfig *cfg = plan->moe;
  g_autoptr(GError) error = NULL;

  if (cfg == NULL)
    return;
  cfg->dtype = plan->out_dtype;
  cfg->shard_size = plan->shard_size;
  cfg->n_threads = plan->options.n_threads;
  if (plan->options.seed != 0)
    cfg->seed = plan->options.seed;
  if (!cru_moe_cost (cfg, plan->moe_models, plan->options.n_threads, &plan->moe_cost, &error))
    {
      _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, plan->moe_node, 0, NULL, "%s",
                             error->message);
      g_clear_pointer (&plan->moe, cru_moe_config_free);
      return;
    }
  plan->layout = cru_layout_new (plan->shard_size);
  for (guint i = 0; i < plan->moe_cost.tensors->len; i++)
    {
      CruMoeTensor *t = g_ptr_array_index (plan->moe_cost.tensors, i);
      cru_layout_add (plan->layout, t->name, plan->out_dtype, t->ndim, t->shape);
    }
  if (!cru_layout_finish (plan->layout, &error))
    {
      _cru_plan_add_problem (plan, CRU_SEVERITY_ERROR, plan->output_node, 0, NULL, "%s",
                             error->message);
      g_clear_pointer (&plan->moe, cru_moe_config_free);
    }
}

/* ---- reports ---- */

static const char *
gate_mode_label (CruGateMode mode)
{
  switch (mode)
    {
    case CRU_GATE_HIDDEN_AVG:     return _("hidden states of the prompts, averaged over tokens");
    case CRU_GATE_CHEAP_EMBED:    return _("token embeddings of the prompts");
    case CRU_GATE_RANDOM:         return _("random");
    case CRU_GATE_UNIFORM_RANDOM: return _("uniform random");
    case CRU_GATE_HIDDEN:
    default:                      return _("hidden states of the prompts");
    }
}

void
_cru_plan_moe_to_json (CruPlan *plan, JsonBuilder *b)
{
  CruMoeConfig *cfg = plan->moe;

  json_builder_set_member_name (b, "moe");
  if (cfg == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "node");
  json_builder_add_int_value (b, plan->moe_node);
  json_builder_set_member_name (b, "architecture");
  json_builder_add_string_value (b, _cru_plan_moe_architecture_name (cfg->output));
  json_builder_set_member_name (b, "gate_mode");
  json_builder_add_string_value (b, _cru_plan_moe_gate_mode_name (cfg->gate_mode));
  json_builder_set_member_name (b, "experts");
  json_builder_add_int_value (b, cfg->experts->len);
  json_builder_set_member_name (b, "shared_experts");
  json_builder_add_int_value (b, cfg->shared_experts->len);
  json_builder_set_member_name (b, "experts_per_token");
  json_builder_add_int_value (b, cfg->experts_per_token);
  json_builder_set_member_name (b, "gate_bytes_read");
  json_builder_add_int_value (b, (gint64) plan->moe_cost.gate_read_bytes);
  json_builder_end_object (b);
}

void
_cru_plan_moe_to_text (CruPlan *plan, GString *s)
{
  CruMoeConfig *cfg = plan->moe;

  if (cfg == NULL)
    return;
  g_string_append_printf (s, ngettext ("Experts: %u, %d per token, %s; routing by %s\n",
                                       "Experts: %u, %d per token, %s; routing by %s\n",
                                       cfg->experts->len),
                          cfg->experts->len, cfg->experts_per_token,
                          _cru_plan_moe_architecture_name (cfg->output),
                          gate_mode_label (cfg->gate_mode));
}

/* ---- the output's model card and recipes ---- */

static void
append_prompts (GString *s, const char *label, GStrv prompts)
{
  if (prompts == NULL || prompts[0] == NULL)
    return;
  g_string_append_printf (s, "  - %s:", label);
  for (guint i = 0; prompts[i]; i++)
    {
      g_autofree char *escaped = g_strescape (prompts[i], NULL);
      g_string_append_printf (s, "%s “%s”", i ? "," : "", escaped);
    }
  g_string_append_c (s, '\n');
}

static void
append_expert (GString *s, CruPlan *plan, const char *label, const CruMoeExpert *e)
{
  g_string_append_printf (s, "- %s: `%s`\n", label, e->source_model);
  append_prompts (s, "positive prompts", e->positive_prompts);
  append_prompts (s, "negative prompts", e->negative_prompts);
  if (e->has_noise_scale)
    g_string_append_printf (s, "  - noise_scale: %g\n", e->noise_scale);
  if (e->has_residual_scale)
    g_string_append_printf (s, "  - residual_scale: %g\n", e->residual_scale);
}

static gboolean
write_card (CruPlan *plan, const char *dir, GError **error)
{
  CruMoeConfig *cfg = plan->moe;
  g_autofree char *path = g_build_filename (dir, "README.md", NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = g_date_time_format (now, "%Y-%m-%d %H:%M UTC");
  g_autofree char *name = g_filename_display_basename (plan->out_dir);
  g_autoptr(GString) s = g_string_new (NULL);

  /* The card is for the Hub: English, like merges' cards. */
  g_string_append (s, "---\nlibrary_name: transformers\ntags:\n- merge\n- crucible\n- moe\n");
  if (plan->mergekit_yaml)
    g_string_append (s, "- mergekit\n");
  g_string_append (s, "---\n\n");
  g_string_append_printf (s, "# %s\n\n", name);
  g_string_append_printf (s, "This mixture of experts was built with Crucible %s on %s: "
                             "attention, embeddings, norms and the output head come from the "
                             "base model, each expert's MLP from one expert model, and the "
                             "router from the base's view of the prompts below.\n\n",
                          CRU_VERSION, date);
  g_string_append (s, "## Inputs\n\n");
  g_string_append_printf (s, "- base: `%s`\n", cfg->base_model);
  for (guint i = 0; i < cfg->experts->len; i++)
    {
      g_autofree char *label = g_strdup_printf ("expert %u", i);
      append_expert (s, plan, label, cfg->experts->pdata[i]);
    }
  for (guint i = 0; i < cfg->shared_experts->len; i++)
    append_expert (s, plan, "shared expert", cfg->shared_experts->pdata[i]);
  g_string_append (s, "\n## Routing\n\n");
  g_string_append_printf (s, "- architecture: %s\n- gate_mode: %s\n- experts_per_token: %d\n",
                          _cru_plan_moe_architecture_name (cfg->output),
                          _cru_plan_moe_gate_mode_name (cfg->gate_mode),
                          cfg->experts_per_token);
  if (cfg->gate_mode == CRU_GATE_RANDOM || cfg->gate_mode == CRU_GATE_UNIFORM_RANDOM)
    g_string_append_printf (s, "- seed: %" G_GUINT64_FORMAT "\n", cfg->seed);
  if (plan->run_warnings && plan->run_warnings->len)
    {
      g_string_append (s, "\n## Warnings\n\n");
      for (guint i = 0; i < plan->run_warnings->len; i++)
        g_string_append_printf (s, "- %s\n",
                                ((CruProblem *) plan->run_warnings->pdata[i])->message);
    }
  g_string_append_printf (s, "\nOutput: %d layers, %s, %u tensors.\n\n", plan->n_layers,
                          cru_dtype_to_torch_string (plan->out_dtype),
                          plan->moe_cost.tensors->len);
  g_string_append (s, "## Recipe\n\nThe graph is in `crucible-recipe.crucible` (open it in "
                      "Crucible or run it with `crucible-cli run`).\n");
  if (plan->mergekit_yaml)
    g_string_append_printf (s, "\nAs a mergekit-moe recipe (`mergekit_moe_config.yml`):\n\n"
                               "```yaml\n%s```\n", plan->mergekit_yaml);
  else
    g_string_append_printf (s, "\nNo mergekit-moe recipe was written: %s\n",
                            plan->mergekit_error ? plan->mergekit_error : "");
  return g_file_set_contents (path, s->str, s->len, error);
}

gboolean
_cru_plan_moe_write_side_files (CruPlan *plan, const char *dir, GError **error)
{
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
      g_autofree char *p = g_build_filename (dir, "mergekit_moe_config.yml", NULL);
      if (!g_file_set_contents (p, plan->mergekit_yaml, -1, error))
        return FALSE;
    }
  return TRUE;
}
