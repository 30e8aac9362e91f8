/* cru-plan-estimate.c — memory, disk and time estimates; the JSON and text reports
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-plan-private.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

/* CruWriter's write-behind: its buffer pool (CRU_WRITER_BUFFER_BYTES) and its threads. A
 * piece starts where its file offset falls in a page: up to a page more than its size. */
#define WRITER_THREADS 2
#define WRITER_PIECE_SLACK 4096u
/* Thread stacks, glibc's per-thread malloc arenas and the pool's own bookkeeping: what a
 * worker or writer thread costs besides its arena (measured: RSS grows by about 256 KB per
 * thread beyond the arenas and the writer's buffers, on the demo and 1B-shaped models). */
#define THREAD_OVERHEAD_BYTES (256u << 10)

/* Conservative constants for the time estimate (no measurement at plan time, so the
 * estimate does not depend on what happens to be in the page cache). Calibrated on a 2-core
 * VM with a virtio disk (1.9 GB bf16 models: linear of two took 27 s, TIES of three 177 s):
 * - reading safetensors by pread and widening to f32: 250 MB/s;
 * - converting and writing with O_DIRECT (fsync included): 250 MB/s;
 * - f32 arithmetic: 250 M input elements per second per thread for element-wise methods;
 *   whole-tensor methods cost 4× that, and magnitude selection (task-vector family, SDM-W)
 *   25×. */
#define READ_BYTES_PER_SECOND  2.5e8
#define WRITE_BYTES_PER_SECOND 2.5e8
#define ELEMENTS_PER_SECOND    2.5e8
/* Method calls on the GPU cost their f32 transfers over PCIe (a conservative figure for a
 * PCIe 4 x16 link with the staging copies; the kernels themselves are far faster). */
#define PCIE_BYTES_PER_SECOND  1.2e10

guint64
_cru_plan_current_rss (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  line = strstr (status, "VmRSS:");
  if (line == NULL)
    return 0;
  return g_ascii_strtoull (line + 6, NULL, 10) * 1024;
}

guint64
_cru_plan_disk_free (const char *path)
{
  g_autofree char *dir = g_strdup (path);
  const char *test_free = g_getenv ("CRU_TEST_DISK_FREE");  /* test hook: fake free space */
  struct statvfs sv;

  if (test_free && *test_free)
    return g_ascii_strtoull (test_free, NULL, 10);

  while (!g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      char *up = g_path_get_dirname (dir);
      gboolean root = g_str_equal (up, dir);
      g_free (dir);
      dir = up;
      if (root)
        break;
    }
  if (statvfs (dir, &sv) != 0)
    return 0;
  return (guint64) sv.f_bavail * sv.f_frsize;
}

static int
compare_desc (gconstpointer a, gconstpointer b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Element-wise-equivalent operations of an expression on the CPU (see the constants
 * above); calls placed on the GPU add their transfers to *pcie_bytes instead. */
static double
method_cost (const CruExpr *e, double *pcie_bytes)
{
  double n, factor = 1.0;

  if (e->kind == CRU_EXPR_CROP)
    return method_cost (e->child, pcie_bytes);
  if (e->kind != CRU_EXPR_METHOD)
    return 0;
  if (g_str_equal (e->method->family, "task-vector") || g_str_equal (e->method->family, "sdm"))
    factor = 25.0;
  else if (!e->chunkable)
    factor = 4.0;
  n = factor * (double) e->numel * (e->n_models + (e->base ? 1 : 0));
  if (e->on_device)
    {
      *pcie_bytes += 4.0 * (double) e->numel * (e->n_models + (e->base ? 1 : 0) + 1);
      n = 0;
    }
  if (e->base)
    n += method_cost (e->base, pcie_bytes);
  for (int i = 0; i < e->n_models; i++)
    n += method_cost (e->models[i], pcie_bytes);
  return n;
}

void
_cru_plan_estimate (CruPlan *plan)
{
  CruEstimate *est = &plan->estimate;
  guint n_threads = plan->options.n_threads ? plan->options.n_threads : g_get_num_processors ();
  g_autofree guint64 *arenas = NULL;
  guint64 arena_sum = 0, max_piece = 0, writer_bytes;
  double compute = 0, pcie_bytes = 0;

  if (n_threads > MAX (plan->n_tasks, 1u))
    n_threads = MAX (plan->n_tasks, 1u);
  est->n_threads = n_threads;
  est->n_tensors = plan->n_tasks;
  est->n_shards = plan->layout ? cru_layout_get_n_shards (plan->layout) : 0;
  est->has_stats_pass = plan->stats_nodes->len > 0;

  /* Each worker keeps the pages of the largest task it ran: the n largest arenas. */
  arenas = g_new0 (guint64, plan->n_tasks + 1);
  for (guint i = 0; i < plan->n_tasks; i++)
    arenas[i] = plan->tasks[i].arena_bytes;
  qsort (arenas, plan->n_tasks, sizeof (guint64), compare_desc);
  for (guint i = 0; i < n_threads && i < plan->n_tasks; i++)
    arena_sum += arenas[i];

  est->bytes_read = 0;
  for (guint i = 0; i < plan->n_tasks; i++)
    {
      est->bytes_read += plan->tasks[i].expr->read_bytes;
      compute += method_cost (plan->tasks[i].expr, &pcie_bytes);
    }
  for (guint s = 0; s < plan->stats_nodes->len; s++)
    {
      CruStatsNode *sn = g_ptr_array_index (plan->stats_nodes, s);
      for (guint i = 0; i < sn->exprs->len; i++)
        {
          CruExpr *e = g_ptr_array_index (sn->exprs, i);
          guint64 need;

          if (e->unit == 0)
            _cru_expr_finish (e);
          est->bytes_read += e->read_bytes;
          /* The statistics pass evaluates a tensor's inputs (no output buffer): whole, or
           * chunk by chunk with the stream states when the call is chunkable. */
          need = e->scratch_bytes + e->stream_bytes + e->stats_stream_bytes;
          plan->arena_bytes = MAX (plan->arena_bytes, need);
          if (e->stats_on_device)
            pcie_bytes += 4.0 * e->numel * (e->n_models + 1);
          else
            compute += 25.0 * e->numel * (e->n_models + 1);
        }
    }

  est->output_bytes = 0;
  if (plan->layout)
    for (guint s = 0; s < cru_layout_get_n_shards (plan->layout); s++)
      est->output_bytes += cru_layout_get_shard_size (plan->layout, s);
  est->bytes_written = est->output_bytes;

  /* The writer's pool: a buffer is allocated when all others wait for the disk, and only the
   * pages that the largest piece written through it covers are ever touched (a piece is one
   * chunk of a task's output, converted to the output dtype, at most a buffer). */
  for (guint i = 0; i < plan->n_tasks; i++)
    max_piece = MAX (max_piece, plan->tasks[i].expr->unit * cru_dtype_size (plan->out_dtype));
  writer_bytes = (guint64) CRU_WRITER_N_BUFFERS
                 * MIN ((guint64) CRU_WRITER_BUFFER_SIZE, max_piece + WRITER_PIECE_SLACK);

  plan->baseline_rss = _cru_plan_current_rss ();
  est->peak_ram_bytes = plan->baseline_rss + arena_sum + writer_bytes
                        + (guint64) (n_threads + WRITER_THREADS) * THREAD_OVERHEAD_BYTES;
  est->peak_vram_bytes = 0;
  if (est->device == CRU_DEVICE_CUDA && plan->device_call_bytes)
    {
      CruBackend *device = _cru_plan_cuda_probe (NULL, NULL);
      if (device)
        {
          est->peak_vram_bytes = device->iface->peak_bytes (device, plan->device_call_bytes,
                                                            plan->n_device_call_bytes,
                                                            n_threads);
          est->peak_ram_bytes += device->iface->host_bytes (device, n_threads);
        }
    }
  est->disk_free_bytes = plan->out_dir ? _cru_plan_disk_free (plan->out_dir) : 0;
  est->seconds = est->bytes_read / READ_BYTES_PER_SECOND
                 + est->bytes_written / WRITE_BYTES_PER_SECOND
                 + compute / (ELEMENTS_PER_SECOND * n_threads)
                 + pcie_bytes / PCIE_BYTES_PER_SECOND;
}

/* A mixture of experts' prompts run through the base with OpenBLAS on small matrices (a few
 * dozen tokens): far below sgemm's peak. */
#define MOE_FLOPS_PER_SECOND 5e9

void
_cru_plan_estimate_moe (CruPlan *plan)
{
  CruEstimate *est = &plan->estimate;
  const CruMoeCost *cost = &plan->moe_cost;
  guint n_threads = plan->options.n_threads ? plan->options.n_threads : g_get_num_processors ();

  est->n_threads = n_threads;
  est->n_tensors = cost->tensors ? cost->tensors->len : 0;
  est->n_shards = plan->layout ? cru_layout_get_n_shards (plan->layout) : 0;
  est->has_stats_pass = FALSE;
  est->bytes_read = cost->read_bytes;
  est->output_bytes = 0;
  if (plan->layout)
    for (guint s = 0; s < cru_layout_get_n_shards (plan->layout); s++)
      est->output_bytes += cru_layout_get_shard_size (plan->layout, s);
  est->bytes_written = est->output_bytes;
  plan->baseline_rss = _cru_plan_current_rss ();
  est->peak_ram_bytes = plan->baseline_rss + cost->peak_bytes;
  est->peak_vram_bytes = 0;
  est->disk_free_bytes = plan->out_dir ? _cru_plan_disk_free (plan->out_dir) : 0;
  est->seconds = est->bytes_read / READ_BYTES_PER_SECOND
                 + est->bytes_written / WRITE_BYTES_PER_SECOND
                 + cost->gate_flops / (MOE_FLOPS_PER_SECOND * n_threads);
}

/* Output bytes if written in @dtype (data plus the same headers). */
static guint64
output_bytes_as (CruPlan *plan, CruDType dtype)
{
  guint64 data = 0, current = 0;

  if (plan->moe)
    {
      data = plan->moe_cost.output_numel * cru_dtype_size (dtype);
      current = plan->moe_cost.output_numel * cru_dtype_size (plan->out_dtype);
      return plan->estimate.output_bytes - current + data;
    }
  for (guint i = 0; i < plan->n_tasks; i++)
    {
      data += plan->tasks[i].expr->numel * cru_dtype_size (dtype);
      current += plan->tasks[i].out_bytes;
    }
  return plan->estimate.output_bytes - current + data;
}

static const char *
severity_name (CruSeverity s)
{
  return s == CRU_SEVERITY_ERROR ? "error" : s == CRU_SEVERITY_WARNING ? "warning" : "info";
}

static const char *
device_name (CruDevice d)
{
  return d == CRU_DEVICE_CUDA ? "cuda" : "cpu";
}

/* Schema (version 1), stable for tooling:
 * { "format": "crucible-plan", "version": 1, "runnable": bool,
 *   "problems": [ { "severity": "error"|"warning"|"info", "node": uint (0 = graph),
 *                   "link": uint (0 = none), "port": string|null, "message": string } ],
 *   "estimate": { "peak_ram_bytes", "peak_vram_bytes", "bytes_read", "bytes_written",
 *                 "output_bytes", "disk_free_bytes": uint, "seconds": number,
 *                 "threads", "tensors", "shards": uint, "device": "cpu"|"cuda",
 *                 "device_note": string|null (the GPU's name, or why the CPU runs it),
 *                 "vram_budget_bytes": uint (0 on the CPU), "stats_pass": bool,
 *                 "output_bytes_by_dtype": { "float32", "bfloat16", "float16": uint } },
 *   "output": { "path": string|null, "dtype": "bfloat16"|"float16"|"float32",
 *               "shard_size": uint, "layers": int, "vocab_size": int (-1 unknown),
 *               "tie_word_embeddings": bool, "tokenizer_source": string,
 *               "copy_tokenizer": bool, "mergekit_yaml": bool },
 *   "inputs": [ { "node": uint, "name": string, "path": string, "architecture": string,
 *                 "layers": int, "dtype": string } ],
 *   "tensors": uint,
 *   "placement": [ { "node": uint, "title": string, "gpu_tensors", "cpu_tensors": uint,
 *                    "cpu_reason": string|null, "cpu_example": string|null } ]
 *                (one entry per method node; empty on the CPU),
 *   "moe": null, or for a mixture of experts { "node": uint, "architecture": "mixtral"|
 *          "qwen2_moe"|"qwen3_moe", "gate_mode": string, "experts", "shared_experts",
 *          "experts_per_token": uint, "gate_bytes_read": uint } } */
JsonNode *
cru_plan_to_json (CruPlan *plan)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  const CruEstimate *est = &plan->estimate;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "crucible-plan");
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "runnable");
  json_builder_add_boolean_value (b, cru_plan_is_runnable (plan));

  json_builder_set_member_name (b, "problems");
  json_builder_begin_array (b);
  for (guint i = 0; i < plan->problems->len; i++)
    {
      CruProblem *p = g_ptr_array_index (plan->problems, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "severity");
      json_builder_add_string_value (b, severity_name (p->severity));
      json_builder_set_member_name (b, "node");
      json_builder_add_int_value (b, p->node);
      json_builder_set_member_name (b, "link");
      json_builder_add_int_value (b, p->link);
      json_builder_set_member_name (b, "port");
      if (p->port)
        json_builder_add_string_value (b, p->port);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, p->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "estimate");
  json_builder_begin_object (b);
#define INT_MEMBER(name, value) \
  json_builder_set_member_name (b, name); json_builder_add_int_value (b, (gint64) (value))
  INT_MEMBER ("peak_ram_bytes", est->peak_ram_bytes);
  INT_MEMBER ("peak_vram_bytes", est->peak_vram_bytes);
  INT_MEMBER ("bytes_read", est->bytes_read);
  INT_MEMBER ("bytes_written", est->bytes_written);
  INT_MEMBER ("output_bytes", est->output_bytes);
  INT_MEMBER ("disk_free_bytes", est->disk_free_bytes);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, est->seconds);
  INT_MEMBER ("threads", est->n_threads);
  INT_MEMBER ("tensors", est->n_tensors);
  INT_MEMBER ("shards", est->n_shards);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, device_name (est->device));
  json_builder_set_member_name (b, "device_note");
  if (plan->device_note)
    json_builder_add_string_value (b, plan->device_note);
  else
    json_builder_add_null_value (b);
  INT_MEMBER ("vram_budget_bytes", plan->vram_budget);
  json_builder_set_member_name (b, "stats_pass");
  json_builder_add_boolean_value (b, est->has_stats_pass);
  json_builder_set_member_name (b, "output_bytes_by_dtype");
  json_builder_begin_object (b);
  INT_MEMBER ("float32", output_bytes_as (plan, CRU_DTYPE_F32));
  INT_MEMBER ("bfloat16", output_bytes_as (plan, CRU_DTYPE_BF16));
  INT_MEMBER ("float16", output_bytes_as (plan, CRU_DTYPE_F16));
  json_builder_end_object (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "output");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "path");
  if (plan->out_dir)
    {
      g_autofree char *shown = g_filename_display_name (plan->out_dir);  /* JSON is UTF-8 */
      json_builder_add_string_value (b, shown);
    }
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "dtype");
  json_builder_add_string_value (b, cru_dtype_to_torch_string (plan->out_dtype));
  INT_MEMBER ("shard_size", plan->shard_size);
  INT_MEMBER ("layers", plan->n_layers);
  INT_MEMBER ("vocab_size", plan->vocab_size);
  json_builder_set_member_name (b, "tie_word_embeddings");
  json_builder_add_boolean_value (b, !plan->has_lm_head);
  json_builder_set_member_name (b, "tokenizer_source");
  json_builder_add_string_value (b, plan->tokenizer_source ? plan->tokenizer_source : "base");
  json_builder_set_member_name (b, "copy_tokenizer");
  json_builder_add_boolean_value (b, plan->copy_tokenizer);
  json_builder_set_member_name (b, "mergekit_yaml");
  json_builder_add_boolean_value (b, plan->mergekit_yaml != NULL);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "inputs");
  json_builder_begin_array (b);
  for (guint i = 0; i < plan->models->len; i++)
    {
      CruModel *m = g_ptr_array_index (plan->models, i);
      json_builder_begin_object (b);
      INT_MEMBER ("node", GPOINTER_TO_UINT (g_ptr_array_index (plan->model_nodes, i)));
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, cru_model_get_name (m));
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, cru_model_get_path (m));
      json_builder_set_member_name (b, "architecture");
      json_builder_add_string_value (b, cru_arch_get_name (cru_model_get_arch (m)));
      INT_MEMBER ("layers", cru_model_get_n_layers (m));
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, cru_dtype_to_torch_string (cru_model_get_dtype (m))
                                          ? cru_dtype_to_torch_string (cru_model_get_dtype (m))
                                          : "unknown");
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  INT_MEMBER ("tensors", cru_plan_get_n_tensors (plan));
  _cru_plan_placement_to_json (plan, b);
  _cru_plan_moe_to_json (plan, b);
#undef INT_MEMBER
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

char *
cru_plan_to_text (CruPlan *plan)
{
  GString *s = g_string_new (NULL);
  const CruEstimate *est = &plan->estimate;
  guint n_err = 0, n_warn = 0;

  for (guint i = 0; i < plan->problems->len; i++)
    {
      CruProblem *p = g_ptr_array_index (plan->problems, i);
      const char *tag = p->severity == CRU_SEVERITY_ERROR ? _("error")
                        : p->severity == CRU_SEVERITY_WARNING ? _("warning") : _("note");
      n_err += p->severity == CRU_SEVERITY_ERROR;
      n_warn += p->severity == CRU_SEVERITY_WARNING;
      g_string_append_printf (s, "%s: %s\n", tag, p->message);
    }
  if (plan->problems->len)
    g_string_append_c (s, '\n');

  for (guint i = 0; i < plan->models->len; i++)
    {
      CruModel *m = g_ptr_array_index (plan->models, i);
      g_autofree char *size = g_format_size (cru_model_get_total_bytes (m));
      g_string_append_printf (s, _("Input:   %s (%s, %d layers, %s) — %s\n"),
                              cru_model_get_name (m), cru_arch_get_label (cru_model_get_arch (m)),
                              cru_model_get_n_layers (m), size, cru_model_get_path (m));
    }
  if (plan->n_tasks || plan->moe)
    {
      g_autofree char *out = g_format_size (est->output_bytes);
      g_autofree char *ram = g_format_size (est->peak_ram_bytes);
      g_autofree char *rd = g_format_size (est->bytes_read);
      g_autofree char *wr = g_format_size (est->bytes_written);
      g_autofree char *fr = g_format_size (est->disk_free_bytes);

      g_string_append_printf (s, _("Output:  %s\n"), plan->out_dir ? plan->out_dir : _("(none)"));
      g_string_append_printf (s, g_dngettext (GETTEXT_PACKAGE,
                                              "         %u tensors, %d layers, %s, %s in %u shard\n",
                                              "         %u tensors, %d layers, %s, %s in %u shards\n",
                                              est->n_shards),
                              cru_plan_get_n_tensors (plan), plan->n_layers,
                              cru_dtype_to_torch_string (plan->out_dtype), out, est->n_shards);
      g_string_append_printf (s, g_dngettext (GETTEXT_PACKAGE,
                                              "Memory:  about %s peak with %u thread\n",
                                              "Memory:  about %s peak with %u threads\n",
                                              est->n_threads), ram, est->n_threads);
      g_string_append_printf (s, _("Disk:    reads %s, writes %s; %s free\n"), rd, wr, fr);
      g_string_append_printf (s, _("Device:  %s%s\n"), device_name (est->device),
                              est->has_stats_pass ? _(" (with a statistics pass)") : "");
      if (plan->device_note)
        g_string_append_printf (s, "         %s\n", plan->device_note);
      _cru_plan_placement_to_text (plan, s);
      _cru_plan_moe_to_text (plan, s);
      g_string_append_printf (s, _("Time:    about %.0f s\n"), MAX (1.0, est->seconds));
    }
  if (cru_plan_is_runnable (plan))
    g_string_append_printf (s, g_dngettext (GETTEXT_PACKAGE, "Ready to run (%u warning).\n",
                                            "Ready to run (%u warnings).\n", n_warn), n_warn);
  else
    g_string_append_printf (s, g_dngettext (GETTEXT_PACKAGE,
                                            "Cannot run: %u error. Fix it and plan again.\n",
                                            "Cannot run: %u errors. Fix them and plan again.\n",
                                            n_err), n_err);
  return g_string_free (s, FALSE);
}
