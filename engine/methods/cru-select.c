/* cru-select.c — exact O(n) order statistics by radix select on float keys
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-select.h"

#include "cru-kernels.h"

#include <math.h>
#include <string.h>

float
cru_select_key_to_float (uint32_t key, CruSelectOrder order)
{
  union { float f; uint32_t u; } x;

  if (order == CRU_SELECT_ABS)
    x.u = key;
  else
    x.u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  return x.f;
}

static inline gboolean
skipped (float v, gboolean skip_zeros)
{
  return skip_zeros && v == 0.0f;
}

guint64
cru_select_count (const float *v, guint64 n, CruSelectOrder order, gboolean skip_zeros)
{
  guint64 count = 0;

  if (!skip_zeros)
    return n;
  for (guint64 i = 0; i < n; i++)
    count += v[i] != 0.0f;
  return count;
}

/* Three histogram passes of 11 + 11 + 10 bits: small buffers, and counts beyond 32 bits. */
static uint32_t
kth_key_small (const float *v, guint64 n, guint64 k, CruSelectOrder order, gboolean skip_zeros)
{
  static const int shifts[3] = { 21, 10, 0 };
  static const int widths[3] = { 11, 11, 10 };
  uint32_t prefix = 0, prefix_mask = 0;

  for (int pass = 0; pass < 3; pass++)
    {
      guint64 hist[2048] = { 0 };
      int shift = shifts[pass];
      uint32_t digit_mask = (1u << widths[pass]) - 1;
      uint32_t d;

      for (guint64 i = 0; i < n; i++)
        {
          uint32_t key;
          if (skipped (v[i], skip_zeros))
            continue;
          key = cru_select_key (v[i], order);
          if ((key & prefix_mask) != prefix)
            continue;
          hist[(key >> shift) & digit_mask]++;
        }
      for (d = 0; d < digit_mask; d++)
        {
          if (k < hist[d])
            break;
          k -= hist[d];
        }
      prefix |= d << shift;
      prefix_mask |= digit_mask << shift;
    }
  return prefix;
}

void
cru_select_hist_high (const float *v, guint64 n, CruSelectOrder order, guint32 *hist)
{
  if (order == CRU_SELECT_ABS)
    for (guint64 i = 0; i < n; i++)
      hist[cru_select_key (v[i], CRU_SELECT_ABS) >> 16]++;
  else
    for (guint64 i = 0; i < n; i++)
      hist[cru_select_key (v[i], CRU_SELECT_SIGNED) >> 16]++;
}

void
cru_select_hist_low (const float *v, guint64 n, CruSelectOrder order, uint32_t high,
                     guint32 *hist)
{
  /* Branch-free: keys of other digits add 0 to the last slot. */
  for (guint64 i = 0; i < n; i++)
    {
      uint32_t key = cru_select_key (v[i], order);
      gboolean in = (key >> 16) == high;
      hist[in ? key & 0xffffu : 65535] += in;
    }
}

uint32_t
cru_select_hist_find (const guint32 *hist, guint64 *k, guint64 *below)
{
  uint32_t d;

  for (d = 0; d < 65535; d++)
    {
      if (*k < hist[d])
        break;
      *k -= hist[d];
      *below += hist[d];
    }
  return d;
}

static int
index_of (const uint32_t *digits, int n, uint32_t d)
{
  for (int j = 0; j < n; j++)
    if (digits[j] == d)
      return j;
  return -1;
}

/* The digit nearest @d (below first) that is not one of the @n in @digits. */
static uint32_t
window_spare (const uint32_t *digits, int n, uint32_t d)
{
  for (uint32_t off = 1;; off++)
    for (int side = 0; side < 2; side++)
      {
        gint64 c = side ? (gint64) d + off : (gint64) d - off;

        if (c >= 0 && c <= 65535 && index_of (digits, n, (uint32_t) c) < 0)
          return (uint32_t) c;
      }
}

void
cru_select_window_guess (const guint32 *hist, guint64 k, uint32_t digits[CRU_HIST_WINDOW])
{
  guint64 below = 0;
  uint32_t d = cru_select_hist_find (hist, &k, &below);
  gint64 lo = (gint64) d - 1, hi = (gint64) d + 1;

  G_STATIC_ASSERT (CRU_HIST_WINDOW == 3);
  while (lo >= 0 && hist[lo] == 0)
    lo--;
  while (hi <= 65535 && hist[hi] == 0)
    hi++;
  digits[0] = d;
  digits[1] = lo >= 0 ? (uint32_t) lo : window_spare (digits, 1, d);
  digits[2] = hi <= 65535 ? (uint32_t) hi : window_spare (digits, 2, d);
}

void
cru_select_window_next (const guint32 *hist, const uint32_t old[CRU_HIST_WINDOW], gboolean up,
                        uint32_t digits[CRU_HIST_WINDOW])
{
  gint64 step = up ? 1 : -1, edge = old[0];
  int n = 0;

  for (int j = 1; j < CRU_HIST_WINDOW; j++)
    edge = up ? MAX (edge, (gint64) old[j]) : MIN (edge, (gint64) old[j]);
  for (gint64 c = edge + step; c >= 0 && c <= 65535 && n < CRU_HIST_WINDOW; c += step)
    if (hist[c] > 0)
      digits[n++] = (uint32_t) c;
  for (gint64 c = edge + step; c >= 0 && c <= 65535 && n < CRU_HIST_WINDOW; c += step)
    if (index_of (digits, n, (uint32_t) c) < 0)
      digits[n++] = (uint32_t) c;
  while (n < CRU_HIST_WINDOW)
    {
      digits[n] = window_spare (digits, n, (uint32_t) edge);
      n++;
    }
}

int
cru_select_window_place (const uint32_t digits[CRU_HIST_WINDOW], const guint32 *window,
                         const guint64 above[CRU_HIST_WINDOW], guint64 numel, guint64 rank,
                         guint64 count[CRU_HIST_WINDOW], guint64 *below, gboolean *up)
{
  uint32_t lowest = G_MAXUINT32;
  int slot = -1;

  *up = FALSE;
  for (int j = 0; j < CRU_HIST_WINDOW; j++)
    {
      guint64 under;

      count[j] = 0;
      for (guint low = 0; low < 65536; low++)
        count[j] += window[(gsize) j * 65536 + low];
      under = numel - above[j] - count[j];
      if (under <= rank && rank < under + count[j])
        {
          slot = j;
          *below = under;
        }
      if (digits[j] < lowest)
        {
          lowest = digits[j];
          *up = rank >= under;
        }
    }
  return slot;
}

int
cru_select_window_find (const uint32_t digits[CRU_HIST_WINDOW], uint32_t digit)
{
  return index_of (digits, CRU_HIST_WINDOW, digit);
}

/* Two passes of 16 bits: the high half of every key, then the low half of the keys whose
 * high half is the chosen one. A third fewer passes over the data than kth_key_small, no
 * branch per element; the 256 KB histogram stays in L2. */
static uint32_t
kth_key_large (const float *v, guint64 n, guint64 k, CruSelectOrder order)
{
  g_autofree guint32 *hist = g_new0 (guint32, 65536);
  guint64 below = 0;
  uint32_t hi, lo;

  cru_select_hist_high (v, n, order, hist);
  hi = cru_select_hist_find (hist, &k, &below);
  memset (hist, 0, 65536 * sizeof (guint32));
  cru_select_hist_low (v, n, order, hi, hist);
  lo = cru_select_hist_find (hist, &k, &below);
  return (hi << 16) | lo;
}

/* Skipping zeros: ±0 sort first by magnitude, and between the negative and the positive
 * values in signed order, so the k-th non-zero element is the (k + zeros)-th of all — or,
 * among the negatives, the k-th. */
static guint64
rank_with_zeros (const float *v, guint64 n, guint64 k, CruSelectOrder order)
{
  guint64 zeros = 0, negatives = 0;

  for (guint64 i = 0; i < n; i++)
    {
      zeros += v[i] == 0.0f;
      negatives += v[i] < 0.0f;
    }
  if (order == CRU_SELECT_SIGNED && k < negatives)
    return k;
  return k + zeros;
}

uint32_t
cru_select_kth_key (const float *v, guint64 n, guint64 k, CruSelectOrder order,
                    gboolean skip_zeros)
{
  if (n < (1u << 16) || n > G_MAXUINT32)
    return kth_key_small (v, n, k, order, skip_zeros);
  if (skip_zeros)
    k = rank_with_zeros (v, n, k, order);
  return kth_key_large (v, n, k, order);
}

float
cru_select_kth (const float *v, guint64 n, guint64 k, CruSelectOrder order, gboolean skip_zeros)
{
  return cru_select_key_to_float (cru_select_kth_key (v, n, k, order, skip_zeros), order);
}

void
cru_select_topk_threshold (const float *v, guint64 n, guint64 k, CruSelectOrder order,
                           uint32_t *key, guint64 *n_equal_take)
{
  uint32_t t;
  guint64 greater = 0;

  g_return_if_fail (k > 0 && k <= n);

  t = cru_select_kth_key (v, n, n - k, order, FALSE);
  for (guint64 i = 0; i < n; i++)
    greater += cru_select_key (v[i], order) > t;
  *key = t;
  *n_equal_take = k - greater;
}

void
cru_select_topk_mask (const float *v, guint64 n, guint64 k, CruSelectOrder order, guint8 *mask)
{
  uint32_t t;
  guint64 take;

  if (k == 0)
    {
      memset (mask, 0, n);
      return;
    }
  if (k >= n)
    {
      memset (mask, 1, n);
      return;
    }
  cru_select_topk_threshold (v, n, k, order, &t, &take);
  for (guint64 i = 0; i < n; i++)
    {
      uint32_t key = cru_select_key (v[i], order);
      guint8 keep = key > t;
      if (key == t && take > 0)
        {
          keep = 1;
          take--;
        }
      mask[i] = keep;
    }
}

void
cru_select_rank_range_mask (const float *v, guint64 n, guint64 lo, guint64 hi,
                            CruSelectOrder order, guint8 *mask)
{
  uint32_t key_lo = 0, key_hi = UINT32_MAX;
  guint64 skip_lo = 0, keep_hi = G_MAXUINT64;
  gboolean has_lo = lo > 0, has_hi = hi < n;

  if (lo >= hi || lo >= n)
    {
      memset (mask, 0, n);
      return;
    }
  if (has_lo)
    {
      guint64 less = 0;
      key_lo = cru_select_kth_key (v, n, lo, order, FALSE);
      for (guint64 i = 0; i < n; i++)
        less += cru_select_key (v[i], order) < key_lo;
      skip_lo = lo - less;   /* equal elements with rank < lo: the lowest indices */
    }
  if (has_hi)
    {
      guint64 less = 0;
      key_hi = cru_select_kth_key (v, n, hi, order, FALSE);
      for (guint64 i = 0; i < n; i++)
        less += cru_select_key (v[i], order) < key_hi;
      keep_hi = hi - less;   /* equal elements with rank < hi: the lowest indices */
    }

  for (guint64 i = 0, seen_lo = 0, seen_hi = 0; i < n; i++)
    {
      uint32_t key = cru_select_key (v[i], order);
      gboolean above = TRUE, below = TRUE;

      if (has_lo)
        {
          if (key < key_lo)
            above = FALSE;
          else if (key == key_lo)
            above = seen_lo++ >= skip_lo;
        }
      if (has_hi)
        {
          if (key > key_hi)
            below = FALSE;
          else if (key == key_hi)
            below = seen_hi++ < keep_hi;
        }
      mask[i] = above && below;
    }
}

gboolean
cru_select_percentile (const float *v, guint64 n, double q, CruSelectOrder order,
                       gboolean skip_zeros, double *out)
{
  guint64 m = cru_select_count (v, n, order, skip_zeros);
  guint64 lo;
  double pos, frac, a, b, diff;
  uint32_t key_lo, key_hi;

  if (m == 0)
    return FALSE;

  q = CLAMP (q, 0.0, 100.0);
  pos = (q / 100.0) * (double) (m - 1);
  lo = (guint64) floor (pos);
  if (lo > m - 1)
    lo = m - 1;
  frac = pos - (double) lo;

  key_lo = cru_select_kth_key (v, n, lo, order, skip_zeros);
  key_hi = key_lo;
  if (lo + 1 < m)
    {
      /* (lo+1)-th smallest: key_lo again if it repeats, else the smallest key above it */
      guint64 le = 0;
      uint32_t next = UINT32_MAX;
      for (guint64 i = 0; i < n; i++)
        {
          uint32_t key;
          if (skipped (v[i], skip_zeros))
            continue;
          key = cru_select_key (v[i], order);
          if (key <= key_lo)
            le++;
          else if (key < next)
            next = key;
        }
      key_hi = le > lo + 1 ? key_lo : next;
    }

  a = cru_select_key_to_float (key_lo, order);
  b = cru_select_key_to_float (key_hi, order);
  diff = b - a;
  /* numpy's _lerp: exact at both ends */
  *out = frac >= 0.5 ? b - diff * (1.0 - frac) : a + diff * frac;
  return TRUE;
}

/* ---- the percentile in streamed passes ---- */

static uint32_t
first_nonzero (const guint32 *hist)
{
  uint32_t low = 0;

  while (low < 65535 && hist[low] == 0)
    low++;
  return low;
}

/* The high counts are complete (ps->hist): the digit of considered rank ps->lo, the next
 * non-empty digit after it, and whether a window holds what the value needs (the digit's
 * low counts, and the next digit's smallest low half when the upper sample is there). */
static void
percentile_from_high (CruPercentileStream *ps)
{
  gboolean needs_next;
  int slot = -1, next = -1;

  ps->hist[0] -= (guint32) ps->zeros;   /* ±0 are the keys 0 */
  ps->rank = ps->lo;
  ps->below = 0;
  ps->high = cru_select_hist_find (ps->hist, &ps->rank, &ps->below);
  for (ps->next_high = ps->high + 1; ps->next_high < 65536; ps->next_high++)
    if (ps->hist[ps->next_high] > 0)
      break;
  needs_next = ps->lo + 1 < ps->considered && ps->rank + 1 >= ps->hist[ps->high]
               && ps->next_high < 65536;
  ps->next_low = 65536;
  if (ps->window_set)
    {
      slot = cru_select_window_find (ps->digits, ps->high);
      next = needs_next ? cru_select_window_find (ps->digits, ps->next_high) : 0;
    }
  if (slot >= 0 && next >= 0)
    {
      memcpy (ps->hist, ps->window[slot], sizeof ps->hist);
      if (needs_next)
        ps->next_low = first_nonzero (ps->window[next]);
      ps->resolved = TRUE;
      return;
    }
  memset (ps->hist, 0, sizeof ps->hist);
  ps->needs_low = TRUE;
}

/* After pass 0 with a window: the window digit holding considered rank ps->lo, placed among
 * all keys by the counts above it (the zeros are the smallest keys), and the next non-empty
 * digit when the upper sample is there — if the window tells them; else *@up: whether the
 * rank is above the window's lowest digit. */
static gboolean
percentile_from_window (CruPercentileStream *ps, guint64 numel, gboolean *up)
{
  guint64 r = ps->zeros + ps->lo, count[CRU_HIST_WINDOW], below = 0;
  int slot = cru_select_window_place (ps->digits, &ps->window[0][0], ps->above, numel, r,
                                      count, &below, up);
  int next = -1;

  if (slot < 0)
    return FALSE;
  if (ps->lo + 1 < ps->considered && r + 1 >= below + count[slot])
    {
      /* the upper sample is in the next non-empty digit: a window digit when none lies
       * between */
      for (int j = 0; j < CRU_HIST_WINDOW; j++)
        if (ps->digits[j] > ps->digits[slot] && count[j] > 0
            && (next < 0 || ps->digits[j] < ps->digits[next]))
          next = j;
      if (next < 0 || ps->above[slot] - ps->above[next] != count[next])
        return FALSE;
      ps->next_high = ps->digits[next];
      ps->next_low = first_nonzero (ps->window[next]);
    }
  ps->high = ps->digits[slot];
  ps->below = ps->high > 0 ? below - ps->zeros : 0;
  ps->rank = ps->lo - ps->below;
  memcpy (ps->hist, ps->window[slot], sizeof ps->hist);
  if (ps->high == 0)
    ps->hist[0] -= (guint32) ps->zeros;
  ps->resolved = TRUE;
  return TRUE;
}

void
cru_percentile_stream_pass (CruPercentileStream *ps, int pass, const float *x,
                            const float *base, guint64 n, double q)
{
  guint64 considered;

  if (!cru_percentile_stream_needs (ps, pass))
    return;
  if (pass == 1)
    {
      cru_kernel_diff_hist_window (x, base, n, ps->hist, NULL, ps->digits, &ps->window[0][0],
                                   NULL);
      return;
    }
  if (pass == 2)
    {
      cru_kernel_diff_hist_low (x, base, n, ps->high, ps->hist, ps->next_high, &ps->next_low);
      return;
    }
  if (ps->started)
    {
      if (ps->window_set)
        cru_kernel_diff_hist_window (x, base, n, NULL, &ps->zeros, ps->digits,
                                     &ps->window[0][0], ps->above);
      else
        cru_kernel_diff_hist_high (x, base, n, ps->hist, &ps->zeros);
      return;
    }
  /* the first chunk: its own percentile's digit guesses the window */
  ps->started = TRUE;
  cru_kernel_diff_hist_high (x, base, n, ps->hist, &ps->zeros);
  considered = n - ps->zeros;
  if (considered == 0)
    return;   /* the high counts go on */
  q = CLAMP (q, 0.0, 100.0);
  cru_select_window_guess (ps->hist,
                           ps->zeros + (guint64) floor ((q / 100.0) * (double) (considered - 1)),
                           ps->digits);
  ps->window_set = TRUE;
  cru_kernel_diff_hist_window (x, base, n, NULL, NULL, ps->digits, &ps->window[0][0],
                               ps->above);
}

gboolean
cru_percentile_stream_end (CruPercentileStream *ps, int pass, guint64 numel, double q)
{
  double pos;
  gboolean up;

  if (!cru_percentile_stream_needs (ps, pass))
    return TRUE;
  if (pass == 1)
    {
      ps->needs_high = FALSE;
      percentile_from_high (ps);
      return TRUE;
    }
  if (pass == 2)
    {
      if (ps->high == 0)
        ps->hist[0] -= (guint32) ps->zeros;
      ps->needs_low = FALSE;
      ps->resolved = TRUE;
      return TRUE;
    }
  ps->considered = numel - ps->zeros;
  if (ps->considered == 0)
    return FALSE;
  q = CLAMP (q, 0.0, 100.0);
  pos = (q / 100.0) * (double) (ps->considered - 1);
  ps->lo = (guint64) floor (pos);
  if (ps->lo > ps->considered - 1)
    ps->lo = ps->considered - 1;
  ps->frac = pos - (double) ps->lo;
  if (!ps->window_set)
    {
      percentile_from_high (ps);   /* the first chunk had no non-zero element */
      return TRUE;
    }
  if (percentile_from_window (ps, numel, &up))
    return TRUE;
  /* pass 1: all the high halves, and the low halves in the next digits on the side of the
   * rank (ps->hist still holds the first chunk's counts) */
  {
    uint32_t next[CRU_HIST_WINDOW];

    cru_select_window_next (ps->hist, ps->digits, up, next);
    memcpy (ps->digits, next, sizeof next);
  }
  memset (ps->window, 0, sizeof ps->window);
  memset (ps->hist, 0, sizeof ps->hist);
  ps->needs_high = TRUE;
  return TRUE;
}

gboolean
cru_percentile_stream_needs (const CruPercentileStream *ps, int pass)
{
  if (ps->resolved)
    return FALSE;
  return pass == 0 || (pass == 1 && ps->needs_high) || (pass == 2 && ps->needs_low);
}

gboolean
cru_percentile_stream_resolved (const CruPercentileStream *ps)
{
  return ps->resolved;
}

double
cru_percentile_stream_value (const CruPercentileStream *ps)
{
  guint64 rank = ps->rank, below = ps->below, le;
  uint32_t low, key_lo, key_hi;
  double a, b, diff;

  g_return_val_if_fail (ps->resolved, NAN);
  low = cru_select_hist_find (ps->hist, &rank, &below);
  key_lo = (ps->high << 16) | low;
  key_hi = key_lo;
  le = below + ps->hist[low];   /* considered keys ≤ key_lo */
  if (ps->lo + 1 < ps->considered && le <= ps->lo + 1)
    {
      /* the smallest key above key_lo: in the same digit, or the next digit's smallest */
      uint32_t j;
      for (j = low + 1; j < 65536 && ps->hist[j] == 0; j++)
        ;
      key_hi = j < 65536 ? (ps->high << 16) | j : (ps->next_high << 16) | ps->next_low;
    }
  a = cru_select_key_to_float (key_lo, CRU_SELECT_ABS);
  b = cru_select_key_to_float (key_hi, CRU_SELECT_ABS);
  diff = b - a;
  /* numpy's _lerp: exact at both ends */
  return ps->frac >= 0.5 ? b - diff * (1.0 - ps->frac) : a + diff * ps->frac;
}
