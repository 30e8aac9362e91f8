/* cru-cuda-kernels-private.cuh — helpers shared by the .cu files (not installed)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#define CRU_CUDA_BLOCK 256

/* grid-stride loop over 64-bit element indices */
#define CRU_CUDA_FOR_EACH(i, n)                                                      \
  for (uint64_t i = (uint64_t) blockIdx.x * blockDim.x + threadIdx.x; i < (n);       \
       i += (uint64_t) gridDim.x * blockDim.x)

static inline unsigned int
cru_cuda_grid (uint64_t n)
{
  uint64_t blocks = (n + CRU_CUDA_BLOCK - 1) / CRU_CUDA_BLOCK;
  if (blocks > 16384)
    blocks = 16384;
  return blocks ? (unsigned int) blocks : 1u;
}

/* Block-wide sum (blockDim.x a multiple of 32, at most 1024); every thread gets the sum. */
template <typename T>
__device__ static T
cru_cuda_block_reduce (T v, int op_max)
{
  __shared__ T warp_vals[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int n_warps = (blockDim.x + 31) >> 5;

  for (int off = 16; off > 0; off >>= 1)
    {
      T o = __shfl_down_sync (0xffffffffu, v, off);
      v = op_max ? (o > v ? o : v) : v + o;
    }
  __syncthreads ();
  if (lane == 0)
    warp_vals[warp] = v;
  __syncthreads ();
  if (warp == 0)
    {
      v = lane < n_warps ? warp_vals[lane] : warp_vals[0];
      if (!op_max && lane >= n_warps)
        v = 0;
      for (int off = 16; off > 0; off >>= 1)
        {
          T o = __shfl_down_sync (0xffffffffu, v, off);
          v = op_max ? (o > v ? o : v) : v + o;
        }
      if (lane == 0)
        warp_vals[0] = v;
    }
  __syncthreads ();
  v = warp_vals[0];
  __syncthreads ();
  return v;
}

__device__ static inline double
cru_cuda_block_sum (double v)
{
  return cru_cuda_block_reduce<double> (v, 0);
}

__device__ static inline double
cru_cuda_block_max (double v)
{
  return cru_cuda_block_reduce<double> (v, 1);
}

/* Temporary device allocations of one host-side operation, from the stream-ordered pool;
 * finish frees them, synchronizes the stream and returns the first error. */
#define CRU_CUDA_TEMP_MAX 8

typedef struct {
  void       *ptr[CRU_CUDA_TEMP_MAX];
  int         n;
  cudaError_t err;
} CruCudaTemp;

static inline cudaError_t
cru_cuda_temp_alloc (CruCudaTemp *t, cudaStream_t s, size_t bytes, void **out)
{
  cudaError_t err;

  *out = NULL;
  if (t->n >= CRU_CUDA_TEMP_MAX)
    return cudaErrorMemoryAllocation;
  err = cudaMallocAsync (out, bytes ? bytes : 16, s);
  if (err != cudaSuccess)
    {
      t->err = err;
      return err;
    }
  t->ptr[t->n++] = *out;
  return cudaSuccess;
}

static inline cudaError_t
cru_cuda_temp_finish (CruCudaTemp *t, cudaStream_t s)
{
  cudaError_t err = cudaGetLastError ();

  if (t->err == cudaSuccess)
    t->err = err;
  for (int i = 0; i < t->n; i++)
    cudaFreeAsync (t->ptr[i], s);
  t->n = 0;
  err = cudaStreamSynchronize (s);
  if (t->err == cudaSuccess)
    t->err = err;
  return t->err;
}
