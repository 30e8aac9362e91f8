/* cru-cuda-select.cu — exact order statistics on the GPU, the same answers as cru-select.c
 *
 * Radix select on the float keys of cru-select.h: three histogram passes (11 + 11 + 10 bits)
 * on the device, the digit search on the host. Ties follow the CPU exactly: top-k keeps the
 * lowest indices among elements equal to the threshold, rank ranges use stable ranks; both
 * found with an exclusive prefix sum (CUB) over the "equal to the threshold" flags. DELLA's
 * per-row ranks are in cru-cuda-sort.cu.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-kernels.h"
#include "cru-cuda-kernels-private.cuh"

#include <cub/device/device_scan.cuh>
#include <math.h>

#define HIST_BINS 2048

__global__ static void
k_hist (const float *v, uint64_t n, int signed_order, int skip_zeros, uint32_t prefix,
        uint32_t prefix_mask, int shift, uint32_t digit_mask, unsigned long long *hist)
{
  __shared__ unsigned int local[HIST_BINS];

  for (int j = threadIdx.x; j < HIST_BINS; j += blockDim.x)
    local[j] = 0;
  __syncthreads ();
  CRU_CUDA_FOR_EACH (i, n)
    {
      uint32_t key;
      if (skip_zeros && v[i] == 0.0f)
        continue;
      key = cru_cuda_select_key (v[i], signed_order);
      if ((key & prefix_mask) != prefix)
        continue;
      atomicAdd (&local[(key >> shift) & digit_mask], 1u);
    }
  __syncthreads ();
  for (int j = threadIdx.x; j < HIST_BINS; j += blockDim.x)
    if (local[j])
      atomicAdd (&hist[j], (unsigned long long) local[j]);
}

cudaError_t
cru_cuda_kth_key (cudaStream_t s, const float *v, uint64_t n, uint64_t k, int signed_order,
                  int skip_zeros, uint32_t *key)
{
  static const int shifts[3] = { 21, 10, 0 };
  static const int widths[3] = { 11, 11, 10 };
  unsigned long long hist[HIST_BINS];
  uint32_t prefix = 0, prefix_mask = 0;
  unsigned long long *d_hist;
  CruCudaTemp tmp = {};
  cudaError_t err;

  if ((err = cru_cuda_temp_alloc (&tmp, s, sizeof hist, (void **) &d_hist)))
    return err;
  for (int pass = 0; pass < 3; pass++)
    {
      uint32_t digit_mask = (1u << widths[pass]) - 1, d;

      cudaMemsetAsync (d_hist, 0, sizeof hist, s);
      if (n)
        k_hist<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (v, n, signed_order, skip_zeros,
                                                             prefix, prefix_mask,
                                                             shifts[pass], digit_mask, d_hist);
      cudaMemcpyAsync (hist, d_hist, sizeof hist, cudaMemcpyDeviceToHost, s);
      if ((err = cudaStreamSynchronize (s)) != cudaSuccess
          || (err = cudaGetLastError ()) != cudaSuccess)
        {
          cru_cuda_temp_finish (&tmp, s);
          return err;
        }
      for (d = 0; d < digit_mask; d++)
        {
          if (k < hist[d])
            break;
          k -= hist[d];
        }
      prefix |= d << shifts[pass];
      prefix_mask |= digit_mask << shifts[pass];
    }
  *key = prefix;
  return cru_cuda_temp_finish (&tmp, s);
}

/* counts[0] = #(key < t), counts[1] = #(key == t), counts[2] = #(key > t) over the considered
 * elements; counts[3] = #considered; *next = smallest key above t (UINT32_MAX if none) */
__global__ static void
k_count_keys (const float *v, uint64_t n, int signed_order, int skip_zeros, uint32_t t,
              unsigned long long *counts, unsigned int *next)
{
  unsigned long long lt = 0, eq = 0, gt = 0, all = 0;
  uint32_t nx = UINT32_MAX;

  CRU_CUDA_FOR_EACH (i, n)
    {
      uint32_t key;
      if (skip_zeros && v[i] == 0.0f)
        continue;
      key = cru_cuda_select_key (v[i], signed_order);
      all++;
      if (key < t)
        lt++;
      else if (key == t)
        eq++;
      else
        {
          gt++;
          nx = key < nx ? key : nx;
        }
    }
  if (lt)
    atomicAdd (&counts[0], lt);
  if (eq)
    atomicAdd (&counts[1], eq);
  if (gt)
    {
      atomicAdd (&counts[2], gt);
      atomicMin (next, nx);
    }
  if (all)
    atomicAdd (&counts[3], all);
}

static cudaError_t
count_keys (cudaStream_t s, const float *v, uint64_t n, int signed_order, int skip_zeros,
            uint32_t t, uint64_t counts[4], uint32_t *next)
{
  CruCudaTemp tmp = {};
  unsigned long long *d_counts, h_counts[4];
  unsigned int *d_next, h_next;
  cudaError_t err;

  if ((err = cru_cuda_temp_alloc (&tmp, s, 4 * sizeof *d_counts + sizeof *d_next,
                                  (void **) &d_counts)))
    return err;
  d_next = (unsigned int *) (d_counts + 4);
  cudaMemsetAsync (d_counts, 0, 4 * sizeof *d_counts, s);
  cudaMemsetAsync (d_next, 0xff, sizeof *d_next, s);
  if (n)
    k_count_keys<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (v, n, signed_order, skip_zeros,
                                                               t, d_counts, d_next);
  cudaMemcpyAsync (h_counts, d_counts, sizeof h_counts, cudaMemcpyDeviceToHost, s);
  cudaMemcpyAsync (&h_next, d_next, sizeof h_next, cudaMemcpyDeviceToHost, s);
  err = cru_cuda_temp_finish (&tmp, s);
  for (int j = 0; j < 4; j++)
    counts[j] = h_counts[j];
  if (next)
    *next = h_next;
  return err;
}

cudaError_t
cru_cuda_count_considered (cudaStream_t s, const float *v, uint64_t n, int skip_zeros,
                           uint64_t *count)
{
  uint64_t counts[4];
  cudaError_t err;

  if (!skip_zeros)
    {
      *count = n;
      return cudaSuccess;
    }
  err = count_keys (s, v, n, 0, 1, 0, counts, NULL);
  *count = counts[3];
  return err;
}

__global__ static void
k_eq_flags (const float *v, uint64_t n, int signed_order, uint32_t t, uint32_t *flags)
{
  CRU_CUDA_FOR_EACH (i, n)
    flags[i] = cru_cuda_select_key (v[i], signed_order) == t;
}

/* pos[i] = number of elements before i whose key equals t */
static cudaError_t
equal_ranks (cudaStream_t s, CruCudaTemp *tmp, const float *v, uint64_t n, int signed_order,
             uint32_t t, uint32_t **pos)
{
  uint32_t *flags;
  void *cub_tmp;
  size_t cub_bytes = 0;
  cudaError_t err;

  if ((err = cru_cuda_temp_alloc (tmp, s, n * sizeof (uint32_t), (void **) &flags))
      || (err = cru_cuda_temp_alloc (tmp, s, n * sizeof (uint32_t), (void **) pos)))
    return err;
  k_eq_flags<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (v, n, signed_order, t, flags);
  cub::DeviceScan::ExclusiveSum (NULL, cub_bytes, flags, *pos, (int64_t) n, s);
  if ((err = cru_cuda_temp_alloc (tmp, s, cub_bytes, &cub_tmp)))
    return err;
  return cub::DeviceScan::ExclusiveSum (cub_tmp, cub_bytes, flags, *pos, (int64_t) n, s);
}

__global__ static void
k_topk_mask (const float *v, uint64_t n, int signed_order, uint32_t t, const uint32_t *pos,
             uint64_t take, uint8_t *mask)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      uint32_t key = cru_cuda_select_key (v[i], signed_order);
      mask[i] = key > t || (key == t && pos[i] < take);
    }
}

cudaError_t
cru_cuda_topk_mask (cudaStream_t s, const float *v, uint64_t n, uint64_t k, int signed_order,
                    uint8_t *mask)
{
  CruCudaTemp tmp = {};
  uint64_t counts[4];
  uint32_t t, *pos;
  cudaError_t err;

  if (k == 0 || k >= n)
    {
      cudaMemsetAsync (mask, k == 0 ? 0 : 1, n, s);
      return cudaStreamSynchronize (s);
    }
  if ((err = cru_cuda_kth_key (s, v, n, n - k, signed_order, 0, &t))
      || (err = count_keys (s, v, n, signed_order, 0, t, counts, NULL)))
    return err;
  if ((err = equal_ranks (s, &tmp, v, n, signed_order, t, &pos)) == cudaSuccess)
    k_topk_mask<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (v, n, signed_order, t, pos,
                                                              k - counts[2], mask);
  if (err)
    tmp.err = err;
  return cru_cuda_temp_finish (&tmp, s);
}

__global__ static void
k_range_mask (const float *v, uint64_t n, int signed_order, int has_lo, uint32_t key_lo,
              const uint32_t *pos_lo, uint64_t skip_lo, int has_hi, uint32_t key_hi,
              const uint32_t *pos_hi, uint64_t keep_hi, uint8_t *mask)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      uint32_t key = cru_cuda_select_key (v[i], signed_order);
      int above = 1, below = 1;
      if (has_lo)
        {
          if (key < key_lo)
            above = 0;
          else if (key == key_lo)
            above = pos_lo[i] >= skip_lo;
        }
      if (has_hi)
        {
          if (key > key_hi)
            below = 0;
          else if (key == key_hi)
            below = pos_hi[i] < keep_hi;
        }
      mask[i] = above && below;
    }
}

cudaError_t
cru_cuda_rank_range_mask (cudaStream_t s, const float *v, uint64_t n, uint64_t lo, uint64_t hi,
                          int signed_order, uint8_t *mask)
{
  CruCudaTemp tmp = {};
  int has_lo = lo > 0, has_hi = hi < n;
  uint32_t key_lo = 0, key_hi = UINT32_MAX, *pos_lo = NULL, *pos_hi = NULL;
  uint64_t skip_lo = 0, keep_hi = UINT64_MAX, counts[4];
  cudaError_t err = cudaSuccess;

  if (lo >= hi || lo >= n)
    {
      cudaMemsetAsync (mask, 0, n, s);
      return cudaStreamSynchronize (s);
    }
  if (has_lo)
    {
      if ((err = cru_cuda_kth_key (s, v, n, lo, signed_order, 0, &key_lo))
          || (err = count_keys (s, v, n, signed_order, 0, key_lo, counts, NULL)))
        return err;
      skip_lo = lo - counts[0];
    }
  if (has_hi)
    {
      if ((err = cru_cuda_kth_key (s, v, n, hi, signed_order, 0, &key_hi))
          || (err = count_keys (s, v, n, signed_order, 0, key_hi, counts, NULL)))
        return err;
      keep_hi = hi - counts[0];
    }
  if (has_lo)
    err = equal_ranks (s, &tmp, v, n, signed_order, key_lo, &pos_lo);
  if (err == cudaSuccess && has_hi)
    err = equal_ranks (s, &tmp, v, n, signed_order, key_hi, &pos_hi);
  if (err == cudaSuccess)
    k_range_mask<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (v, n, signed_order, has_lo,
                                                               key_lo, pos_lo, skip_lo, has_hi,
                                                               key_hi, pos_hi, keep_hi, mask);
  else
    tmp.err = err;
  return cru_cuda_temp_finish (&tmp, s);
}

cudaError_t
cru_cuda_percentile (cudaStream_t s, const float *v, uint64_t n, double q, int signed_order,
                     int skip_zeros, double *out, int *has)
{
  uint64_t m, lo, counts[4];
  uint32_t key_lo, key_hi, next;
  double pos, frac, a, b, diff;
  cudaError_t err;

  *has = 0;
  if ((err = cru_cuda_count_considered (s, v, n, skip_zeros, &m)) || m == 0)
    return err;
  q = q < 0.0 ? 0.0 : (q > 100.0 ? 100.0 : q);
  pos = (q / 100.0) * (double) (m - 1);
  lo = (uint64_t) floor (pos);
  if (lo > m - 1)
    lo = m - 1;
  frac = pos - (double) lo;

  if ((err = cru_cuda_kth_key (s, v, n, lo, signed_order, skip_zeros, &key_lo)))
    return err;
  key_hi = key_lo;
  if (lo + 1 < m)
    {
      if ((err = count_keys (s, v, n, signed_order, skip_zeros, key_lo, counts, &next)))
        return err;
      /* le = #(key ≤ key_lo) */
      key_hi = counts[0] + counts[1] > lo + 1 ? key_lo : next;
    }
  a = cru_cuda_select_key_to_float (key_lo, signed_order);
  b = cru_cuda_select_key_to_float (key_hi, signed_order);
  diff = b - a;
  *out = frac >= 0.5 ? b - diff * (1.0 - frac) : a + diff * frac;
  *has = 1;
  return cudaSuccess;
}
