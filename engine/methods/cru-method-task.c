/* cru-method-task.c — the task-vector family: task_arithmetic, ties, dare_ties, dare_linear,
 * breadcrumbs, breadcrumbs_ties, della, della_linear (mergekit's generalized task arithmetic)
 *
 * Deliberate difference (METHODS.md): breadcrumbs with top = 0 keeps the ranks [bot, n);
 * mergekit's slice [bot:-0] is empty and zeroes the whole task vector.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-method-private.h"

#include <inttypes.h>

#include "cru-fixed-sum.h"
#include "cru-kernels.h"
#include "cru-rng.h"
#include "cru-select.h"

typedef enum {
  SPARSIFY_NONE,
  SPARSIFY_MAGNITUDE,
  SPARSIFY_RANDOM,
  SPARSIFY_OUTLIERS,
  SPARSIFY_DELLA,
} Sparsify;

typedef enum {
  RESCALE_NONE = 0,
  RESCALE_L1 = 1,
  RESCALE_INVERSE = 2,
} Rescale;

static const char *const rescale_choices[] = { "none", "l1", "inverse", NULL };

#define SPEC_DENSITY                                                                \
  { "density", N_("Density"), N_("Fraction of each task vector that is kept"),      \
    CRU_PARAM_FLOAT, TRUE, 1.0, 0.0, 1.0, TRUE, FALSE, NULL }
#define SPEC_GAMMA                                                                  \
  { "gamma", N_("Outlier fraction"),                                                \
    N_("Fraction of the largest changes removed as outliers"),                      \
    CRU_PARAM_FLOAT, TRUE, 0.01, 0.0, 1.0, FALSE, FALSE, NULL }
#define SPEC_EPSILON                                                                \
  { "epsilon", N_("Epsilon"),                                                       \
    N_("Spread of the keep probability between small and large changes"),           \
    CRU_PARAM_FLOAT, TRUE, 0.15, 0.0, 1.0, FALSE, TRUE, NULL }
#define SPEC_NORMALIZE(def)                                                         \
  { "normalize", N_("Normalize"), N_("Divide by the sum of the weights"),           \
    CRU_PARAM_BOOL, FALSE, def, 0.0, 1.0, FALSE, FALSE, NULL }
#define SPEC_LAMBDA                                                                 \
  { "lambda", N_("Scale (λ)"), N_("Multiply the merged task vector by this factor"), \
    CRU_PARAM_FLOAT, FALSE, 1.0, -CRU_PARAM_UNBOUNDED, CRU_PARAM_UNBOUNDED,          \
    FALSE, FALSE, NULL }
#define SPEC_RESCALE(def)                                                           \
  { "rescale", N_("Rescale"),                                                       \
    N_("How kept values are scaled up after dropping: none, l1 (keep the L1 norm, " \
       "mergekit) or inverse (divide by the density, the DARE paper)"),             \
    CRU_PARAM_ENUM, FALSE, def, 0.0, 2.0, FALSE, FALSE, rescale_choices }

static const CruParamSpec task_arithmetic_params[] = {
  CRU_PARAM_SPEC_WEIGHT, SPEC_DENSITY, SPEC_NORMALIZE (0.0), SPEC_LAMBDA,
  SPEC_RESCALE (RESCALE_NONE), CRU_PARAM_SPEC_INT8_MASK,
};
static const CruParamSpec ties_params[] = {
  CRU_PARAM_SPEC_WEIGHT, SPEC_DENSITY, SPEC_NORMALIZE (1.0), SPEC_LAMBDA,
  SPEC_RESCALE (RESCALE_NONE), CRU_PARAM_SPEC_INT8_MASK,
};
static const CruParamSpec dare_params[] = {
  CRU_PARAM_SPEC_WEIGHT, SPEC_DENSITY, SPEC_NORMALIZE (0.0), SPEC_LAMBDA,
  SPEC_RESCALE (RESCALE_L1), CRU_PARAM_SPEC_INT8_MASK,
};
static const CruParamSpec breadcrumbs_params[] = {
  CRU_PARAM_SPEC_WEIGHT, SPEC_DENSITY, SPEC_GAMMA, SPEC_NORMALIZE (0.0), SPEC_LAMBDA,
  SPEC_RESCALE (RESCALE_NONE), CRU_PARAM_SPEC_INT8_MASK,
};
static const CruParamSpec della_params[] = {
  CRU_PARAM_SPEC_WEIGHT, SPEC_DENSITY, SPEC_EPSILON, SPEC_NORMALIZE (1.0), SPEC_LAMBDA,
  SPEC_RESCALE (RESCALE_L1), CRU_PARAM_SPEC_INT8_MASK,
};
static const CruParamSpec della_linear_params[] = {
  CRU_PARAM_SPEC_WEIGHT, SPEC_DENSITY, SPEC_EPSILON, SPEC_NORMALIZE (0.0), SPEC_LAMBDA,
  SPEC_RESCALE (RESCALE_L1), CRU_PARAM_SPEC_INT8_MASK,
};

static gsize
task_workspace_bytes (int n_models, guint64 count)
{
  return _cru_workspace_float_bytes ((guint64) n_models, count) + ((count + 63) & ~(guint64) 63);
}

static int
cmp_u64 (const void *a, const void *b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;
  return x < y ? -1 : x > y;
}

/* DELLA: keep with probability ρ − ε + 2ε·r̃, r̃ the normalized ascending rank of |Δ| in its
 * row (stable: equal magnitudes rank by index). */
static void
della_mask (const CruMethodCall *call, const float *delta, double density, double epsilon,
            const CruRng *rng, guint8 *mask)
{
  guint64 n = call->count;
  guint64 row_len = call->ndim >= 2 ? (guint64) call->shape[call->ndim - 1] : n;
  guint64 n_rows = row_len ? n / row_len : 0;
  g_autofree guint64 *order = g_new (guint64, MAX (row_len, 1));

  for (guint64 r = 0; r < n_rows; r++)
    {
      const float *row = delta + r * row_len;
      for (guint64 c = 0; c < row_len; c++)
        order[c] = ((guint64) cru_select_key (row[c], CRU_SELECT_ABS) << 32) | c;
      qsort (order, row_len, sizeof (guint64), cmp_u64);
      for (guint64 rank = 0; rank < row_len; rank++)
        {
          guint64 c = order[rank] & 0xffffffffu;
          guint64 i = r * row_len + c;
          double rank_norm = row_len > 1 ? (double) rank / (double) (row_len - 1) : 0.0;
          float p = (float) ((density - epsilon) + rank_norm * 2.0 * epsilon);
          mask[i] = cru_rng_uniform1 (rng, call->offset + i) < p;
        }
    }
}

/* ---- streaming ----
 *
 * A tensor streams in chunks after gathering passes over all of it:
 *  - magnitude top-k (TIES): the threshold is the exact key of rank numel − k, with how many
 *    elements equal to it are kept (the first by index, so masks are made in order). Pass 0
 *    guesses from the first chunk a window of CRU_HIST_WINDOW digits (high 16 bits) around
 *    its own threshold's digit (cru_select_window_guess) and counts, over all chunks, the
 *    low halves of the keys in those digits and how many keys lie above each: that places
 *    each window digit among all keys, and when the threshold's rank falls in one, its low
 *    counts give the key. Only when the guess misses do pass 1 count the high halves of all
 *    keys (a histogram of 65536, a scattered increment per element: a third of TIES's time
 *    when every tensor paid it) and pass 2 the low halves in the digit found;
 *  - L1 rescale (DARE, TIES with rescale l1): one more pass adds |Δ| and the kept |Δ| in the
 *    fixed order of cru-fixed-sum.h, chunk after chunk. DARE keeps the random masks it drew
 *    there as bits (up to TASK_MASK_CACHE_MAX bytes per tensor), so apply does not draw
 *    them again: drawing was a third of DARE's time.
 * Then apply makes each chunk's masks with the running count of equal keys still to take. */
#define TASK_MASK_CACHE_MAX ((guint64) 256 << 20)

typedef struct {
  guint32        hist[65536];
  guint64        k;            /* elements kept: density · numel */
  guint64        rank;         /* the threshold's rank inside the current digit */
  guint64        below;        /* elements under the current digit */
  uint32_t       high;         /* digit of the threshold key after pass 0 */
  uint32_t       key;          /* the threshold key after pass 1 */
  guint64        take;         /* elements equal to the key that are kept */
  guint64        take_left;    /* … still to keep, walking the chunks in order */
  gboolean       all;          /* k ≥ numel: keep everything */
  double         l1[2];        /* Σ |Δ| and Σ kept |Δ| */
  CruKernelScale scale;        /* after the L1 pass */
  float          factor;
  gboolean       bits_ready;   /* the L1 pass kept the random masks in bits */
  uint32_t       window[CRU_HIST_WINDOW];   /* pass 0's digits whose low halves it counted */
  gboolean       window_set;
  guint64        above[CRU_HIST_WINDOW];   /* keys above each window digit */
  gboolean       needs_high;   /* after pass 0: the threshold's digit is not in the window */
  gboolean       needs_low;    /* after pass 1 */
} TaskModelStream;

typedef struct {
  int             n_models;
  TaskModelStream m[];
  /* then, for TIES, each model's window counts (WINDOW_BYTES each); for DARE when they
   * fit, each model's mask bits (mask_cache_stride bytes each) */
} TaskStream;

#define WINDOW_BYTES ((gsize) CRU_HIST_WINDOW * 65536 * sizeof (guint32))

static guint64
mask_cache_stride (guint64 numel)
{
  return ((numel + 7) / 8 + 63) & ~(guint64) 63;
}

static gsize
task_stream_header_bytes (int n_models)
{
  return (sizeof (TaskStream) + (gsize) n_models * sizeof (TaskModelStream) + 63) & ~(gsize) 63;
}

static gboolean
mask_cache_fits (Sparsify kind, int n_models, guint64 numel)
{
  return kind == SPARSIFY_RANDOM
         && (guint64) n_models * mask_cache_stride (numel) <= TASK_MASK_CACHE_MAX;
}

/* Model @m's mask bits of the chunk at @call->offset (a multiple of 8), or NULL. */
static guint8 *
mask_cache (const CruMethodCall *call, Sparsify kind, int m)
{
  if (call->stream == NULL || !mask_cache_fits (kind, call->n_models, call->numel))
    return NULL;
  return (guint8 *) call->stream + task_stream_header_bytes (call->n_models)
         + (gsize) m * mask_cache_stride (call->numel) + call->offset / 8;
}

static guint32 *
model_window (const CruMethodCall *call, int m)
{
  return (guint32 *) ((char *) call->stream + task_stream_header_bytes (call->n_models)
                      + (gsize) m * WINDOW_BYTES);
}

static TaskModelStream *
model_stream (const CruMethodCall *call, int m)
{
  return call->stream ? &((TaskStream *) call->stream)->m[m] : NULL;
}

/* Keeps the @k largest |Δ| (ties: lowest indices), like cru_select_topk_mask. */
static void
topk_mask (const float *delta, guint64 n, guint64 k, guint8 *mask)
{
  uint32_t key;
  guint64 take;

  if (k >= n)
    {
      memset (mask, 1, n);
      return;
    }
  cru_select_topk_threshold (delta, n, k, CRU_SELECT_ABS, &key, &take);
  cru_kernel_topk_mask (delta, n, key, take, mask);
}

/* How a streamed call's kept elements are rescaled, the L1 sums being in @ms (if any) —
 * and a call's that needs no sums. */
static void
kept_scale (const TaskModelStream *ms, Rescale rescale, double density, CruKernelScale *scale,
            float *factor)
{
  *scale = CRU_KERNEL_SCALE_MASK;
  *factor = 1.0f;
  if (rescale == RESCALE_L1 && ms)
    {
      *scale = ms->scale;
      *factor = ms->factor;
    }
  else if (rescale == RESCALE_INVERSE && density > 0.0)
    {
      *scale = CRU_KERNEL_SCALE_DIV;
      *factor = (float) density;
    }
}

/* Fills @mask with the elements of model @m's task vector @delta that are kept, and says in
 * @scale and @factor how the kept ones are rescaled (cru_kernel_mask_scale applies both, and
 * the weight, in one pass). */
static gboolean
sparsify_delta (const CruMethod *method, const CruMethodCall *call, int m, Sparsify kind,
                Rescale rescale, const float *restrict delta, guint8 *restrict mask,
                CruKernelScale *scale, float *factor, GError **error)
{
  guint64 n = call->count;
  double density = _cru_call_model_param (method, call, m, "density");
  double before = 0.0, after = 0.0;
  TaskModelStream *ms = model_stream (call, m);
  CruRng rng;

  *scale = CRU_KERNEL_SCALE_NONE;
  *factor = 1.0f;
  if (kind == SPARSIFY_NONE || !(density < 1.0))
    return TRUE;

  switch (kind)
    {
    case SPARSIFY_MAGNITUDE:
      {
        guint64 k = (guint64) (density * (double) call->numel);
        if (k == 0)
          {
            g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                         _("%s: density %g keeps no element of tensor %s (%" PRIu64
                           " elements); raise the density"),
                         method->name, density, call->tensor_name, call->numel);
            return FALSE;
          }
        if (ms == NULL)
          topk_mask (delta, n, k, mask);
        else if (ms->all)
          memset (mask, 1, n);
        else
          ms->take_left = cru_kernel_topk_mask (delta, n, ms->key, ms->take_left, mask);
        break;
      }
    case SPARSIFY_OUTLIERS:
      {
        double gamma = _cru_call_model_param (method, call, m, "gamma");
        gint64 keep = (gint64) (density * (double) n);
        gint64 top = (gint64) (gamma * (double) n);
        gint64 bot = (gint64) n - keep - top;
        if (bot < 0)
          {
            top += bot;
            bot = 0;
          }
        /* mergekit slices [bot:-top], which is empty for top = 0; we keep [bot, n) */
        cru_select_rank_range_mask (delta, n, (guint64) bot, n - (guint64) top,
                                    CRU_SELECT_ABS, mask);
        break;
      }
    case SPARSIFY_DELLA:
      {
        double epsilon = _cru_call_model_param (method, call, m, "epsilon");
        if (density <= 0.0)
          {
            memset (mask, 0, n);
            break;
          }
        cru_rng_init (&rng, call->seed, call->tensor_name, call->model_keys ? call->model_keys[m] : m);
        della_mask (call, delta, density, epsilon, &rng, mask);
        break;
      }
    case SPARSIFY_RANDOM:   /* random_delta */
    case SPARSIFY_NONE:
    default:
      return TRUE;
    }

  kept_scale (ms, rescale, density, scale, factor);
  if (rescale == RESCALE_L1 && ms == NULL)
    {
      /* in the fixed order every backend uses, so the factor is the same bits on the GPU */
      double l1[2] = { 0.0, 0.0 };
      cru_kernel_l1_masked (delta, mask, n, l1);
      before = l1[0];
      after = l1[1];
      if (before >= 1e-7 && after >= 1e-7)
        {
          *scale = CRU_KERNEL_SCALE_MUL;
          *factor = (float) before / (float) after;
        }
    }
  return TRUE;
}

/* DARE's mask bits of model @m for this call: the ones its L1 pass kept in the stream state,
 * or drawn now — into that cache during the L1 pass, else into @scratch. */
static const guint8 *
random_bits (const CruMethodCall *call, int m, double density, guint8 *scratch)
{
  TaskModelStream *ms = model_stream (call, m);
  guint8 *bits = mask_cache (call, SPARSIFY_RANDOM, m);
  CruRng rng;

  if (bits != NULL && ms->bits_ready)
    return bits;
  if (bits == NULL)
    bits = scratch;
  cru_rng_init (&rng, call->seed, call->tensor_name, call->model_keys ? call->model_keys[m] : m);
  cru_kernel_random_bits (&rng, call->offset, call->count, (float) density, bits);
  return bits;
}

/* DARE: model @m's Δ under its random mask, rescaled and weighted, in one pass over the
 * inputs (and one more for the L1 sums of a tensor that is not streamed). */
static void
random_delta (const CruMethod *method, const CruMethodCall *call, int m, Rescale rescale,
              float w, float *restrict delta, guint8 *scratch)
{
  double density = _cru_call_model_param (method, call, m, "density");
  const guint8 *bits = random_bits (call, m, density, scratch);
  TaskModelStream *ms = model_stream (call, m);
  CruKernelScale scale;
  float factor;

  kept_scale (ms, rescale, density, &scale, &factor);
  if (rescale == RESCALE_L1 && ms == NULL)
    {
      /* in the fixed order every backend uses, so the factor is the same bits on the GPU */
      double l1[2] = { 0.0, 0.0 };

      cru_kernel_diff_l1_bits (call->models[m], call->base, bits, call->count, l1);
      if (l1[0] >= 1e-7 && l1[1] >= 1e-7)
        {
          scale = CRU_KERNEL_SCALE_MUL;
          factor = (float) l1[0] / (float) l1[1];
        }
    }
  cru_kernel_diff_mask_scale_bits (delta, call->models[m], call->base, bits, call->count,
                                   scale, factor, w);
}

static gboolean
task_apply_common (const CruMethod *method, const CruMethodCall *call, Sparsify kind,
                   gboolean consensus, GError **error)
{
  const float *restrict b = call->base;
  int nm = call->n_models;
  guint64 n = call->count;
  gboolean normalize = _cru_call_param (method, call, "normalize") != 0.0;
  float lambda = (float) _cru_call_param (method, call, "lambda");
  Rescale rescale = (Rescale) (int) _cru_call_param (method, call, "rescale");
  guint8 *mask = (guint8 *) ((char *) call->workspace + _cru_workspace_float_bytes (nm, n));
  g_autofree float *w = g_new (float, nm);
  g_autofree const float **deltas = g_new (const float *, nm);
  float wsum = 0.0f;

  for (int m = 0; m < nm; m++)
    {
      float *restrict delta = _cru_workspace_floats (call, m, n);
      double density = _cru_call_model_param (method, call, m, "density");
      TaskModelStream *ms = model_stream (call, m);
      CruKernelScale scale;
      float factor;

      w[m] = (float) _cru_call_model_param (method, call, m, "weight");
      wsum += w[m];
      deltas[m] = delta;
      if (kind == SPARSIFY_RANDOM && density < 1.0)
        {
          random_delta (method, call, m, rescale, w[m], delta, mask);
          continue;
        }
      if (kind == SPARSIFY_MAGNITUDE && density < 1.0 && ms != NULL && !ms->all)
        {
          /* streamed TIES: the threshold is known, Δ is masked as it is made */
          kept_scale (ms, rescale, density, &scale, &factor);
          ms->take_left = cru_kernel_diff_topk_scale (delta, call->models[m], b, n, ms->key,
                                                      ms->take_left, scale, factor, w[m]);
          continue;
        }
      cru_kernel_sub (delta, call->models[m], b, n);
      if (!sparsify_delta (method, call, m, kind, rescale, delta, mask, &scale, &factor, error))
        return FALSE;
      cru_kernel_mask_scale (delta, mask, n, scale, factor, w[m]);
    }

  if (consensus)
    cru_kernel_consensus (call->out, b, deltas, w, nm, n, normalize, lambda);
  else
    cru_kernel_sum_deltas (call->out, b, deltas, nm, n, normalize,
                           fabsf (wsum) < 1e-8f ? 1.0f : wsum, lambda);
  return TRUE;
}

static int
task_stream_n_passes (const CruMethod *method, const double *params, Sparsify kind)
{
  Rescale rescale = (Rescale) (int) params[cru_method_find_param (method, "rescale")];
  int l1 = rescale == RESCALE_L1 ? 1 : 0;

  switch (kind)
    {
    case SPARSIFY_MAGNITUDE:
      return 3 + l1;
    case SPARSIFY_RANDOM:
      return l1;
    case SPARSIFY_NONE:
    case SPARSIFY_OUTLIERS:   /* ranks counted from both ends: whole tensors */
    case SPARSIFY_DELLA:      /* ranks within rows */
    default:
      return 0;
    }
}

static gsize
task_stream_state_bytes (int n_models, guint64 numel, Sparsify kind)
{
  gsize bytes = task_stream_header_bytes (n_models);

  if (kind == SPARSIFY_MAGNITUDE)
    bytes += (gsize) n_models * WINDOW_BYTES;
  if (mask_cache_fits (kind, n_models, numel))
    bytes += (gsize) n_models * mask_cache_stride (numel);
  return bytes;
}

/* Pass 0 of the magnitude top-k on one chunk: the low halves of the |Δ| keys in the window,
 * which the first chunk chooses around its own threshold digit (density · its size largest
 * keys), and the keys above each window digit. */
static void
magnitude_pass0 (const CruMethod *method, const CruMethodCall *chunk, int m,
                 TaskModelStream *ms)
{
  const float *x = chunk->models[m], *b = chunk->base;
  guint32 *window = model_window (chunk, m);
  guint64 n = chunk->count, numel = chunk->numel, k;

  if (chunk->offset > 0)
    {
      if (ms->window_set)
        cru_kernel_diff_hist_window (x, b, n, NULL, NULL, ms->window, window, ms->above);
      return;
    }
  cru_kernel_diff_hist_high (x, b, n, ms->hist, NULL);
  k = (guint64) (_cru_call_model_param (method, chunk, m, "density") * (double) numel);
  if (k == 0 || k >= numel)
    return;   /* stream_pass_end tells or keeps everything */
  cru_select_window_guess (ms->hist, (guint64) ((double) (numel - k) / (double) numel * (double) n),
                           ms->window);
  ms->window_set = TRUE;
  cru_kernel_diff_hist_window (x, b, n, NULL, NULL, ms->window, window, ms->above);
}

/* After pass 0: the window digit holding the threshold's rank, made the current digit
 * (rank and below as cru_select_hist_find leaves them), or −1 and *@up: whether the rank
 * is above the window's lowest digit. */
static int
magnitude_window_slot (TaskModelStream *ms, const guint32 *window, guint64 numel,
                       gboolean *up)
{
  guint64 count[CRU_HIST_WINDOW], below = 0;
  int slot = cru_select_window_place (ms->window, window, ms->above, numel, numel - ms->k,
                                      count, &below, up);

  if (slot >= 0)
    {
      ms->high = ms->window[slot];
      ms->rank = numel - ms->k - below;
      ms->below = below;
    }
  return slot;
}

/* The threshold key from the low-half counts of its digit, and how many equal to it to keep. */
static void
magnitude_threshold (TaskModelStream *ms, const guint32 *low_hist, guint64 numel)
{
  uint32_t low = cru_select_hist_find (low_hist, &ms->rank, &ms->below);
  guint64 equal = low_hist[low];
  guint64 greater = numel - ms->below - equal;

  ms->key = (ms->high << 16) | low;
  ms->take = ms->k - greater;
  ms->take_left = ms->take;
}

static void
task_stream_pass (const CruMethod *method, const CruMethodCall *chunk, int pass,
                  gpointer state, Sparsify kind)
{
  TaskStream *st = state;
  Rescale rescale = (Rescale) (int) _cru_call_param (method, chunk, "rescale");
  int nm = chunk->n_models;
  guint64 n = chunk->count;
  int l1_pass = kind == SPARSIFY_MAGNITUDE ? 3 : 0;
  guint8 *mask = (guint8 *) ((char *) chunk->workspace + _cru_workspace_float_bytes (nm, n));

  st->n_models = nm;
  for (int m = 0; m < nm; m++)
    {
      TaskModelStream *ms = &st->m[m];
      float *delta = _cru_workspace_floats (chunk, m, n);

      if (!(_cru_call_model_param (method, chunk, m, "density") < 1.0))
        continue;   /* not sparsified */
      if (pass == l1_pass && rescale == RESCALE_L1 && kind == SPARSIFY_RANDOM)
        {
          double density = _cru_call_model_param (method, chunk, m, "density");
          const guint8 *bits = random_bits (chunk, m, density, mask);

          cru_kernel_diff_l1_bits (chunk->models[m], chunk->base, bits, n, ms->l1);
        }
      else if (pass == l1_pass && rescale == RESCALE_L1)
        {
          CruKernelScale scale;
          float factor;

          /* The masks the apply will make (take_left runs from the start again). */
          ms->scale = CRU_KERNEL_SCALE_MASK;
          cru_kernel_sub (delta, chunk->models[m], chunk->base, n);
          if (sparsify_delta (method, chunk, m, kind, RESCALE_NONE, delta, mask, &scale,
                              &factor, NULL))
            cru_kernel_l1_masked (delta, mask, n, ms->l1);
        }
      else if (pass == 0)
        magnitude_pass0 (method, chunk, m, ms);
      else if (pass == 1 && ms->needs_high)
        cru_kernel_diff_hist_window (chunk->models[m], chunk->base, n, ms->hist, NULL,
                                     ms->window, model_window (chunk, m), NULL);
      else if (pass == 2 && ms->needs_low)
        cru_kernel_diff_hist_low (chunk->models[m], chunk->base, n, ms->high, ms->hist, 65536,
                                  NULL);
    }
}

static gboolean
task_stream_pass_end (const CruMethod *method, const CruMethodCall *call, int pass,
                      gpointer state, Sparsify kind, GError **error)
{
  TaskStream *st = state;
  Rescale rescale = (Rescale) (int) _cru_call_param (method, call, "rescale");
  int l1_pass = kind == SPARSIFY_MAGNITUDE ? 3 : 0;
  guint64 numel = call->numel;

  for (int m = 0; m < call->n_models; m++)
    {
      TaskModelStream *ms = &st->m[m];
      double density = _cru_call_model_param (method, call, m, "density");
      guint32 *window = model_window (call, m);
      gboolean up = FALSE;
      int slot;

      if (!(density < 1.0))
        continue;
      if (pass == l1_pass && rescale == RESCALE_L1)
        {
          ms->scale = CRU_KERNEL_SCALE_MASK;
          ms->factor = 1.0f;
          if (ms->l1[0] >= 1e-7 && ms->l1[1] >= 1e-7)
            {
              ms->scale = CRU_KERNEL_SCALE_MUL;
              ms->factor = (float) ms->l1[0] / (float) ms->l1[1];
            }
          ms->take_left = ms->take;
          ms->bits_ready = kind == SPARSIFY_RANDOM;
        }
      else if (pass == 0)
        {
          ms->k = (guint64) (density * (double) numel);
          if (ms->k == 0)
            {
              g_set_error (error, CRU_ERROR, CRU_ERROR_INVALID_PARAM,
                           _("%s: density %g keeps no element of tensor %s (%" PRIu64
                             " elements); raise the density"),
                           method->name, density, call->tensor_name, numel);
              return FALSE;
            }
          ms->all = ms->k >= numel;
          if (ms->all)
            continue;
          /* the threshold is the (numel − k)-th smallest key (cru_select_topk_threshold);
           * 0 < k < numel, so the first chunk set the window (an unset one, all zeros,
           * would only send the tensor to pass 1) */
          slot = magnitude_window_slot (ms, window, numel, &up);
          if (slot >= 0)
            magnitude_threshold (ms, window + (gsize) slot * 65536, numel);
          else
            {
              /* pass 1 counts the high halves, and the low halves in the next digits on
               * the side of the rank (ms->hist still holds the first chunk's counts) */
              uint32_t next[CRU_HIST_WINDOW];

              cru_select_window_next (ms->hist, ms->window, up, next);
              memcpy (ms->window, next, sizeof next);
              memset (window, 0, WINDOW_BYTES);
              ms->needs_high = TRUE;
              memset (ms->hist, 0, sizeof ms->hist);
            }
        }
      else if (pass == 1 && ms->needs_high)
        {
          ms->rank = numel - ms->k;
          ms->below = 0;
          ms->high = cru_select_hist_find (ms->hist, &ms->rank, &ms->below);
          slot = cru_select_window_find (ms->window, ms->high);
          if (slot >= 0)
            magnitude_threshold (ms, window + (gsize) slot * 65536, numel);
          else
            {
              ms->needs_low = TRUE;
              memset (ms->hist, 0, sizeof ms->hist);
            }
        }
      else if (pass == 2 && ms->needs_low)
        magnitude_threshold (ms, ms->hist, numel);
    }
  return TRUE;
}

static gboolean
task_stream_pass_skip (int pass, gconstpointer state, Sparsify kind)
{
  const TaskStream *st = state;

  if (kind != SPARSIFY_MAGNITUDE || (pass != 1 && pass != 2))
    return FALSE;
  for (int m = 0; m < st->n_models; m++)
    if (pass == 1 ? st->m[m].needs_high : st->m[m].needs_low)
      return FALSE;
  return TRUE;
}

static void
della_validate (const CruMethod *method, const double *params, const double *model_params,
                int n_models, GPtrArray *problems)
{
  int pd = cru_method_find_param (method, "density");
  int pe = cru_method_find_param (method, "epsilon");

  if (model_params == NULL)
    return;
  for (int i = 0; i < n_models; i++)
    {
      double rho = model_params[(gsize) i * method->n_params + pd];
      double eps = model_params[(gsize) i * method->n_params + pe];
      if (!(rho < 1.0))
        continue;
      if (!(rho - eps > 0.0) || !(rho + eps < 1.0))
        g_ptr_array_add (problems,
                         g_strdup_printf (_("%s: density ± epsilon must stay inside (0, 1), "
                                            "got density %g and epsilon %g (model %d); "
                                            "lower epsilon or change the density"),
                                          method->name, rho, eps, i + 1));
    }
}

#define DEFINE_TASK_METHOD(ident, mname, mlabel, mdesc, kind, consensus, mflags, specs, vfunc) \
  static gboolean                                                                          \
  ident##_apply (const CruMethod *method, const CruMethodCall *call, GError **error)      \
  {                                                                                        \
    return task_apply_common (method, call, kind, consensus, error);                       \
  }                                                                                        \
  static int                                                                               \
  ident##_stream_n_passes (const CruMethod *method, const double *params)                 \
  {                                                                                        \
    return task_stream_n_passes (method, params, kind);                                    \
  }                                                                                        \
  static void                                                                              \
  ident##_stream_pass (const CruMethod *method, const CruMethodCall *chunk, int pass,      \
                       gpointer state)                                                     \
  {                                                                                        \
    task_stream_pass (method, chunk, pass, state, kind);                                   \
  }                                                                                        \
  static gsize                                                                             \
  ident##_stream_state_bytes (int n_models, guint64 numel)                                 \
  {                                                                                        \
    return task_stream_state_bytes (n_models, numel, kind);                                \
  }                                                                                        \
  static gboolean                                                                          \
  ident##_stream_pass_end (const CruMethod *method, const CruMethodCall *call, int pass,  \
                           gpointer state, GError **error)                                 \
  {                                                                                        \
    return task_stream_pass_end (method, call, pass, state, kind, error);                  \
  }                                                                                        \
  static gboolean                                                                          \
  ident##_stream_pass_skip (const CruMethod *method, int pass, gconstpointer state)       \
  {                                                                                        \
    return task_stream_pass_skip (pass, state, kind);                                      \
  }                                                                                        \
  const CruMethod cru_method_##ident = {                                                   \
    .name = mname,                                                                         \
    .label = mlabel,                                                                       \
    .description = mdesc,                                                                  \
    .family = "task-vector",                                                               \
    .flags = CRU_METHOD_NEEDS_BASE | (mflags),                                             \
    .min_models = 1,                                                                       \
    .max_models = -1,                                                                      \
    .params = specs,                                                                       \
    .n_params = G_N_ELEMENTS (specs),                                                      \
    .workspace_bytes = task_workspace_bytes,                                               \
    .apply = ident##_apply,                                                                \
    .validate = vfunc,                                                                     \
    .stream_n_passes = ident##_stream_n_passes,                                            \
    .stream_state_bytes = ident##_stream_state_bytes,                                      \
    .stream_pass = ident##_stream_pass,                                                    \
    .stream_pass_end = ident##_stream_pass_end,                                            \
    .stream_pass_skip = ident##_stream_pass_skip,                                          \
  };

DEFINE_TASK_METHOD (task_arithmetic, "task_arithmetic", N_("Task Arithmetic"),
                    N_("Add the weighted differences of each model from the base"),
                    SPARSIFY_NONE, FALSE, CRU_METHOD_ELEMENTWISE, task_arithmetic_params, NULL)
DEFINE_TASK_METHOD (ties, "ties", N_("TIES"),
                    N_("Keep each model's largest changes, elect a sign per weight and "
                       "average the agreeing changes"),
                    SPARSIFY_MAGNITUDE, TRUE, 0, ties_params, NULL)
DEFINE_TASK_METHOD (dare_ties, "dare_ties", N_("DARE TIES"),
                    N_("Randomly drop changes, rescale the rest, then merge with TIES sign "
                       "election"),
                    SPARSIFY_RANDOM, TRUE, CRU_METHOD_RANDOM, dare_params, NULL)
DEFINE_TASK_METHOD (dare_linear, "dare_linear", N_("Linear DARE"),
                    N_("Randomly drop changes, rescale the rest and add them up"),
                    SPARSIFY_RANDOM, FALSE, CRU_METHOD_RANDOM, dare_params, NULL)
DEFINE_TASK_METHOD (breadcrumbs, "breadcrumbs", N_("Model Breadcrumbs"),
                    N_("Drop the smallest changes and the largest outliers, then add them up"),
                    SPARSIFY_OUTLIERS, FALSE, 0, breadcrumbs_params, NULL)
DEFINE_TASK_METHOD (breadcrumbs_ties, "breadcrumbs_ties", N_("Model Breadcrumbs with TIES"),
                    N_("Drop the smallest changes and the largest outliers, then merge with "
                       "TIES sign election"),
                    SPARSIFY_OUTLIERS, TRUE, 0, breadcrumbs_params, NULL)
DEFINE_TASK_METHOD (della, "della", N_("DELLA"),
                    N_("Drop changes at random, keeping larger ones more often, then merge "
                       "with sign election"),
                    SPARSIFY_DELLA, TRUE, CRU_METHOD_RANDOM, della_params, della_validate)
DEFINE_TASK_METHOD (della_linear, "della_linear", N_("Linear DELLA"),
                    N_("Drop changes at random, keeping larger ones more often, then add "
                       "them up"),
                    SPARSIFY_DELLA, FALSE, CRU_METHOD_RANDOM, della_linear_params,
                    della_validate)
