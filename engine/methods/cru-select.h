/* cru-select.h — exact O(n) order statistics over f32 buffers (no sort)
 *
 * Radix select on the float bit patterns: a float is mapped to a 32-bit key whose unsigned
 * order is the float order (ABS: |v|, the sign bit dropped; SIGNED: the usual total order,
 * −0 < +0). Three histogram passes (11 + 11 + 10 bits) find any order statistic exactly.
 * NaN sorts above +inf (callers never pass NaN).
 *
 * Ties at a threshold: torch leaves the choice unspecified. Crucible is deterministic:
 *  - top-k (cru_select_topk_*): among elements equal to the threshold the LOWEST indices win;
 *  - rank ranges (cru_select_rank_range_mask): ranks are those of a STABLE ascending sort,
 *    so among equal elements the lower index has the lower rank.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "cru-kernels.h"

G_BEGIN_DECLS

typedef enum {
  CRU_SELECT_ABS,      /* order by |v| */
  CRU_SELECT_SIGNED,   /* order by v */
} CruSelectOrder;

static inline uint32_t
cru_select_key (float v, CruSelectOrder order)
{
  union { float f; uint32_t u; } x = { .f = v };
  if (order == CRU_SELECT_ABS)
    return x.u & 0x7fffffffu;
  return (x.u & 0x80000000u) ? ~x.u : (x.u | 0x80000000u);
}

float    cru_select_key_to_float (uint32_t key, CruSelectOrder order);

/* Number of elements considered (all, or those ≠ 0 when @skip_zeros). */
guint64  cru_select_count       (const float *v, guint64 n, CruSelectOrder order,
                                 gboolean skip_zeros);
/* Key of the @k-th smallest (0-based) considered element; k < cru_select_count (). */
uint32_t cru_select_kth_key     (const float *v, guint64 n, guint64 k, CruSelectOrder order,
                                 gboolean skip_zeros);
/* The @k-th smallest value itself (for ABS: the magnitude). */
float    cru_select_kth         (const float *v, guint64 n, guint64 k, CruSelectOrder order,
                                 gboolean skip_zeros);

/* Threshold for keeping exactly @k of the largest (0 < k ≤ n): keep every element whose key
 * is > *key, plus the first *n_equal_take elements (by index) whose key == *key. */
void     cru_select_topk_threshold (const float *v, guint64 n, guint64 k, CruSelectOrder order,
                                    uint32_t *key, guint64 *n_equal_take);
/* mask[i] = 1 for the @k largest (ties: lowest index), else 0. k = 0 gives all zeros. */
void     cru_select_topk_mask   (const float *v, guint64 n, guint64 k, CruSelectOrder order,
                                 guint8 *mask);
/* mask[i] = 1 when the stable ascending rank of element i lies in [lo, hi). */
void     cru_select_rank_range_mask (const float *v, guint64 n, guint64 lo, guint64 hi,
                                     CruSelectOrder order, guint8 *mask);

/* The 16 + 16-bit radix select in pieces, for data seen in chunks (streaming): add the
 * high halves of every key to @hist (65536 counts), pick the digit holding rank @k, then
 * add the low halves of the keys in that digit to a cleared @hist and pick again.
 * cru_select_hist_find returns the digit, makes @k the rank inside it and adds the counts
 * of the digits before it to @below. Counts are 32-bit: n < 2^32 per tensor. */
void     cru_select_hist_high   (const float *v, guint64 n, CruSelectOrder order,
                                 guint32 *hist);
void     cru_select_hist_low    (const float *v, guint64 n, CruSelectOrder order,
                                 uint32_t high, guint32 *hist);
uint32_t cru_select_hist_find   (const guint32 *hist, guint64 *k, guint64 *below);
/* The window of cru_kernel_diff_hist_window from a first chunk's counts @hist: the digit
 * holding rank @k and the nearest non-empty digit on each side (the adjacent one where there
 * is none) — a guess of where the whole tensor's digit is, which holds on smooth
 * distributions and on the few distinct |Δ| of bf16 fine-tunes alike. */
void     cru_select_window_guess (const guint32 *hist, guint64 k, uint32_t digits[3]);
/* A second window, for when the whole tensor's digit turned out to be beyond the first
 * (@old) on the side @up: the first chunk's (@hist) next non-empty digits that way, then
 * the digits right after the edge. */
void     cru_select_window_next  (const guint32 *hist, const uint32_t old[3], gboolean up,
                                  uint32_t digits[3]);
/* Where a window counted over all @numel keys stands (cru_kernel_diff_hist_window with the
 * counts @above each digit): fills @count with each digit's keys and returns the index of
 * the digit holding rank @rank (0 = smallest key), with *@below the keys under it; or −1,
 * with *@up telling whether @rank is above the window's lowest digit. */
int      cru_select_window_place (const uint32_t digits[3], const guint32 *window,
                                  const guint64 above[3], guint64 numel, guint64 rank,
                                  guint64 count[3], guint64 *below, gboolean *up);
/* The index of @digit in the window, or −1. */
int      cru_select_window_find  (const uint32_t digits[3], uint32_t digit);

/* cru_select_percentile of |v| without zeros, v = x − base (SDM-W's task vectors), for data
 * seen in chunks, in up to three passes (0, 1, 2): feed every chunk of a pass to _pass, then
 * call _end (FALSE after pass 0: no non-zero element); skip a pass that _needs says is not
 * needed. Pass 0 counts the low halves in a window of digits guessed from the first chunk
 * (for percentile @q) and the keys above each, pass 1 all the high halves (with a second
 * window), pass 2 the low halves of the digit found. Once _resolved, _value gives the same
 * value as cru_select_percentile. Zero the struct first. */
typedef struct {
  guint32  hist[65536];
  guint32  window[CRU_HIST_WINDOW][65536];
  guint64  above[CRU_HIST_WINDOW];
  guint64  zeros, considered, lo, rank, below;
  double   frac;
  uint32_t high, next_high, next_low;
  uint32_t digits[CRU_HIST_WINDOW];
  gboolean started, window_set, needs_high, needs_low, resolved;
} CruPercentileStream;

void     cru_percentile_stream_pass     (CruPercentileStream *ps, int pass, const float *x,
                                         const float *base, guint64 n, double q);
gboolean cru_percentile_stream_end      (CruPercentileStream *ps, int pass, guint64 numel,
                                         double q);
gboolean cru_percentile_stream_needs    (const CruPercentileStream *ps, int pass);
gboolean cru_percentile_stream_resolved (const CruPercentileStream *ps);
double   cru_percentile_stream_value    (const CruPercentileStream *ps);

/* numpy.percentile (method "linear") of the considered elements, @q in [0, 100]; FALSE when
 * no element is considered. ABS order gives the percentile of |v|. */
gboolean cru_select_percentile  (const float *v, guint64 n, double q, CruSelectOrder order,
                                 gboolean skip_zeros, double *out);

G_END_DECLS
