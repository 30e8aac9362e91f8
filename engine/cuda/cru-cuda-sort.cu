/* cru-cuda-sort.cu — DELLA's per-row stable ranks on the GPU: one CUB radix sort of
 * (row, |Δ| key) pairs, which is stable, so equal magnitudes rank by column as in the CPU's
 * della_mask. Its own file because CUB's radix sort is the slowest code to compile; apart,
 * it compiles in parallel with the rest.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-kernels.h"
#include "cru-cuda-kernels-private.cuh"

#include <cub/device/device_radix_sort.cuh>

/* ---- DELLA ---- */

__global__ static void
k_della_keys (const float *delta, uint64_t n, uint64_t row_len, unsigned long long *keys,
              uint32_t *cols)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      uint64_t row = i / row_len;
      keys[i] = ((unsigned long long) row << 31) | cru_cuda_select_key (delta[i], 0);
      cols[i] = (uint32_t) (i - row * row_len);
    }
}

__global__ static void
k_della_mask (const uint32_t *cols_sorted, uint64_t n, uint64_t row_len, uint64_t offset,
              CruCudaRng rng, double density, double epsilon, uint8_t *mask)
{
  CRU_CUDA_FOR_EACH (j, n)
    {
      uint64_t row = j / row_len, rank = j - row * row_len;
      uint64_t i = row * row_len + cols_sorted[j];
      double rank_norm = row_len > 1 ? (double) rank / (double) (row_len - 1) : 0.0;
      float p = (float) ((density - epsilon) + rank_norm * 2.0 * epsilon);
      mask[i] = cru_cuda_rng_uniform1 (rng, offset + i) < p;
    }
}

cudaError_t
cru_cuda_della_mask (cudaStream_t s, const float *delta, uint64_t n, uint64_t row_len,
                     uint64_t offset, CruCudaRng rng, double density, double epsilon,
                     uint8_t *mask)
{
  CruCudaTemp tmp = {};
  uint64_t n_rows = row_len ? n / row_len : 0, nr = n_rows * row_len;
  unsigned long long *keys, *keys_out;
  uint32_t *cols, *cols_out;
  void *cub_tmp;
  size_t cub_bytes = 0;
  int end_bit = 31;
  cudaError_t err;

  if (nr == 0)
    return cudaSuccess;
  while (end_bit < 64 && (n_rows - 1) >> (end_bit - 31))
    end_bit++;
  if ((err = cru_cuda_temp_alloc (&tmp, s, nr * sizeof *keys, (void **) &keys))
      || (err = cru_cuda_temp_alloc (&tmp, s, nr * sizeof *keys, (void **) &keys_out))
      || (err = cru_cuda_temp_alloc (&tmp, s, nr * sizeof *cols, (void **) &cols))
      || (err = cru_cuda_temp_alloc (&tmp, s, nr * sizeof *cols, (void **) &cols_out)))
    goto out;
  k_della_keys<<<cru_cuda_grid (nr), CRU_CUDA_BLOCK, 0, s>>> (delta, nr, row_len, keys, cols);
  cub::DeviceRadixSort::SortPairs (NULL, cub_bytes, keys, keys_out, cols, cols_out,
                                   (int64_t) nr, 0, end_bit, s);
  if ((err = cru_cuda_temp_alloc (&tmp, s, cub_bytes, &cub_tmp)))
    goto out;
  if ((err = cub::DeviceRadixSort::SortPairs (cub_tmp, cub_bytes, keys, keys_out, cols, cols_out,
                                              (int64_t) nr, 0, end_bit, s)))
    goto out;
  k_della_mask<<<cru_cuda_grid (nr), CRU_CUDA_BLOCK, 0, s>>> (cols_out, nr, row_len, offset,
                                                              rng, density, epsilon, mask);
out:
  if (err)
    tmp.err = err;
  return cru_cuda_temp_finish (&tmp, s);
}
