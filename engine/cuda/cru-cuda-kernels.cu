/* cru-cuda-kernels.cu — element-wise kernels and reductions of the CUDA backend
 *
 * Each kernel mirrors one loop of the CPU methods (engine/methods/cru-method-*.c) in the same
 * float operation order; built with -fmad=false so nothing is fused into an FMA, which makes
 * the element-wise results bit-identical to the CPU's.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-kernels.h"
#include "cru-cuda-kernels-private.cuh"
#include "cru-fixed-sum.h"

#include <stdlib.h>

/* ---- element-wise ---- */

__global__ static void
k_linear (CruCudaPtrs x, CruCudaFloats w, int nm, int normalize, float wsum, float *out,
          uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float acc = w.v[0] * x.p[0][i];
      for (int m = 1; m < nm; m++)
        acc += w.v[m] * x.p[m][i];
      if (normalize)
        acc = acc / wsum;
      out[i] = acc;
    }
}

cudaError_t
cru_cuda_linear (cudaStream_t s, CruCudaPtrs x, CruCudaFloats w, int nm, int normalize,
                 float wsum, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_linear<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (x, w, nm, normalize, wsum, out, n);
  return cudaGetLastError ();
}

__global__ static void
k_sub_inplace (float *x, const float *b, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    x[i] = x[i] - b[i];
}

cudaError_t
cru_cuda_sub_inplace (cudaStream_t s, float *x, const float *b, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_sub_inplace<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (x, b, n);
  return cudaGetLastError ();
}

__global__ static void
k_dare_mask (uint8_t *mask, uint64_t n, uint64_t offset, CruCudaRng rng, float p)
{
  CRU_CUDA_FOR_EACH (i, n)
    mask[i] = cru_cuda_rng_uniform1 (rng, offset + i) < p;
}

cudaError_t
cru_cuda_dare_mask (cudaStream_t s, uint8_t *mask, uint64_t n, uint64_t offset, CruCudaRng rng,
                    float p)
{
  if (n == 0)
    return cudaSuccess;
  k_dare_mask<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (mask, n, offset, rng, p);
  return cudaGetLastError ();
}

__global__ static void
k_uniform (CruCudaRng rng, uint64_t first, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    out[i] = cru_cuda_rng_uniform1 (rng, first + i);
}

cudaError_t
cru_cuda_uniform (cudaStream_t s, CruCudaRng rng, uint64_t first, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_uniform<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (rng, first, out, n);
  return cudaGetLastError ();
}

__global__ static void
k_task_scale (float *d, const uint8_t *mask, uint64_t n, int mode, float factor, float w)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float v = d[i];
      if (mask)
        v = mask[i] ? v : 0.0f;
      if (mode == 1)
        v = v * factor;
      else if (mode == 2)
        v = v / factor;
      d[i] = v * w;
    }
}

cudaError_t
cru_cuda_task_scale (cudaStream_t s, float *d, const uint8_t *mask, uint64_t n, int mode,
                     float factor, float w)
{
  if (n == 0)
    return cudaSuccess;
  k_task_scale<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (d, mask, n, mode, factor, w);
  return cudaGetLastError ();
}

__global__ static void
k_task_combine (const float *b, CruCudaPtrs d, CruCudaFloats w, int nm, int consensus,
                int normalize, float divisor, float lambda, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float mixed;
      if (consensus)
        {
          float total = 0.0f, div = 0.0f, sign;
          mixed = 0.0f;
          for (int m = 0; m < nm; m++)
            total += d.p[m][i];
          sign = total >= 0.0f ? 1.0f : -1.0f;
          for (int m = 0; m < nm; m++)
            {
              float v = d.p[m][i];
              float sv = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
              if (sv == sign)
                {
                  mixed += v;
                  div += w.v[m];
                }
            }
          if (div == 0.0f)
            div = 1.0f;
          if (normalize)
            mixed = mixed / div;
        }
      else
        {
          mixed = d.p[0][i];
          for (int m = 1; m < nm; m++)
            mixed += d.p[m][i];
          if (normalize)
            mixed = mixed / divisor;
        }
      if (lambda != 1.0f)
        mixed = mixed * lambda;
      out[i] = b[i] + mixed;
    }
}

cudaError_t
cru_cuda_task_combine (cudaStream_t s, const float *b, CruCudaPtrs d, CruCudaFloats w, int nm,
                       int consensus, int normalize, float divisor, float lambda, float *out,
                       uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_task_combine<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, d, w, nm, consensus,
                                                               normalize, divisor, lambda,
                                                               out, n);
  return cudaGetLastError ();
}

__global__ static void
k_nearswap (const float *b, const float *x, float t, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float w = t / fabsf (b[i] - x[i]);
      if (isnan (w) || isinf (w))
        w = 1.0f;
      w = w > 1.0f ? 1.0f : (w < 0.0f ? 0.0f : w);
      out[i] = w * x[i] + (1.0f - w) * b[i];
    }
}

cudaError_t
cru_cuda_nearswap (cudaStream_t s, const float *b, const float *x, float t, float *out,
                   uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_nearswap<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, t, out, n);
  return cudaGetLastError ();
}

__global__ static void
k_ram_combine (const float *b, CruCudaPtrs x, int nm, float eps, CruCudaFloats scale,
               int has_scale, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      int c = 0;
      float mixed = 0.0f;
      for (int m = 0; m < nm; m++)
        c += fabsf (x.p[m][i] - b[i]) > eps;
      for (int m = 0; m < nm; m++)
        {
          float tau = x.p[m][i] - b[i];
          float z = fabsf (tau) > eps ? tau : 0.0f;
          float term = 0.0f;
          if (c == 1)
            term = has_scale ? z * scale.v[m] : z;
          else if (c > 1)
            term = z / (float) c;
          mixed += term;
        }
      out[i] = b[i] + mixed;
    }
}

cudaError_t
cru_cuda_ram_combine (cudaStream_t s, const float *b, CruCudaPtrs x, int nm, float eps,
                      const CruCudaFloats *unique_scale, float *out, uint64_t n)
{
  CruCudaFloats scale = { { 0 } };

  if (n == 0)
    return cudaSuccess;
  if (unique_scale)
    scale = *unique_scale;
  k_ram_combine<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, eps, scale,
                                                              unique_scale != NULL, out, n);
  return cudaGetLastError ();
}

__global__ static void
k_ram_counts (const float *b, CruCudaPtrs x, int nm, float eps, uint64_t n,
              unsigned long long *counts)
{
  __shared__ unsigned long long local[2 * CRU_CUDA_MAX_MODELS];

  for (int j = threadIdx.x; j < 2 * nm; j += blockDim.x)
    local[j] = 0;
  __syncthreads ();
  CRU_CUDA_FOR_EACH (i, n)
    {
      int c = 0;
      for (int m = 0; m < nm; m++)
        c += fabsf (x.p[m][i] - b[i]) > eps;
      for (int m = 0; m < nm; m++)
        if (fabsf (x.p[m][i] - b[i]) > eps)
          atomicAdd (&local[2 * m + (c > 1 ? 0 : 1)], 1ull);
    }
  __syncthreads ();
  for (int j = threadIdx.x; j < 2 * nm; j += blockDim.x)
    if (local[j])
      atomicAdd (&counts[j], local[j]);
}

cudaError_t
cru_cuda_ram_counts (cudaStream_t s, const float *b, CruCudaPtrs x, int nm, float eps,
                     uint64_t n, unsigned long long *counts)
{
  CruCudaTemp tmp = {};
  unsigned long long *d_counts;
  cudaError_t err;

  if ((err = cru_cuda_temp_alloc (&tmp, s, 2 * nm * sizeof *d_counts, (void **) &d_counts)))
    return err;
  cudaMemsetAsync (d_counts, 0, 2 * nm * sizeof *d_counts, s);
  if (n)
    k_ram_counts<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, eps, n, d_counts);
  cudaMemcpyAsync (counts, d_counts, 2 * nm * sizeof *d_counts, cudaMemcpyDeviceToHost, s);
  return cru_cuda_temp_finish (&tmp, s);
}

__global__ static void
k_scale (const float *x, float scale, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    out[i] = x[i] * scale;
}

cudaError_t
cru_cuda_scale (cudaStream_t s, const float *x, float scale, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_scale<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (x, scale, out, n);
  return cudaGetLastError ();
}

__global__ static void
k_axpby (float s0, const float *v0, float s1, const float *v1, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    out[i] = s0 * v0[i] + s1 * v1[i];
}

cudaError_t
cru_cuda_axpby (cudaStream_t s, float s0, const float *v0, float s1, const float *v1,
                float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_axpby<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (s0, v0, s1, v1, out, n);
  return cudaGetLastError ();
}

__global__ static void
k_div_scalar (float *a, float f, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    a[i] = a[i] / f;
}

cudaError_t
cru_cuda_div_scalar (cudaStream_t s, float *a, float f, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_div_scalar<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (a, f, n);
  return cudaGetLastError ();
}

__global__ static void
k_mul_scalar (float *a, float f, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    a[i] = f * a[i];
}

cudaError_t
cru_cuda_mul_scalar (cudaStream_t s, float *a, float f, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_mul_scalar<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (a, f, n);
  return cudaGetLastError ();
}

__global__ static void
k_stock_out (const float *b, CruCudaPtrs x, int nm, const float *t_rows, float t,
             uint64_t row_len, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float tt = t_rows ? t_rows[i / row_len] : t;
      float sum = x.p[0][i];
      for (int m = 1; m < nm; m++)
        sum += x.p[m][i];
      out[i] = tt * (sum / (float) nm) + (1.0f - tt) * b[i];
    }
}

cudaError_t
cru_cuda_stock_out (cudaStream_t s, const float *b, CruCudaPtrs x, int nm, const float *t_rows,
                    float t, uint64_t row_len, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_stock_out<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, t_rows, t,
                                                            row_len ? row_len : 1, out, n);
  return cudaGetLastError ();
}

typedef struct {
  double v[CRU_CUDA_MAX_MODELS];
} CruCudaDoubles;

typedef struct {
  int v[CRU_CUDA_MAX_MODELS];
} CruCudaInts;

__global__ static void
k_sdm_out (const float *b, CruCudaPtrs x, int nm, CruCudaFloats w, CruCudaDoubles p,
           CruCudaInts active, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float acc = 0.0f;
      for (int m = 0; m < nm; m++)
        {
          float d;
          double a;
          if (!active.v[m] || w.v[m] == 0.0f)
            continue;
          d = x.p[m][i];
          a = fabs ((double) d);
          if (a != 0.0 && a >= p.v[m])
            acc += w.v[m] * d;
        }
      out[i] = b[i] + acc;
    }
}

cudaError_t
cru_cuda_sdm_out (cudaStream_t s, const float *b, CruCudaPtrs x, int nm, CruCudaFloats w,
                  const double *p, const int *active, float *out, uint64_t n)
{
  CruCudaDoubles pd;
  CruCudaInts act;

  for (int m = 0; m < nm; m++)
    {
      pd.v[m] = p[m];
      act.v[m] = active[m];
    }
  if (n == 0)
    return cudaSuccess;
  k_sdm_out<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, w, pd, act, out, n);
  return cudaGetLastError ();
}

/* ---- conversions ---- */

__global__ static void
k_f32_to_bf16 (const float *src, uint16_t *dst, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    dst[i] = cru_cuda_f32_to_bf16_one (src[i]);
}

__global__ static void
k_f32_to_f16 (const float *src, uint16_t *dst, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    dst[i] = cru_cuda_f32_to_f16_one (src[i]);
}

__global__ static void
k_bf16_to_f32 (const uint16_t *src, float *dst, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    dst[i] = cru_cuda_bf16_to_f32_one (src[i]);
}

__global__ static void
k_f16_to_f32 (const uint16_t *src, float *dst, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    dst[i] = cru_cuda_f16_to_f32_one (src[i]);
}

#define DEFINE_CONVERT(name, kernel, src_t, dst_t)                                 \
  cudaError_t name (cudaStream_t s, const src_t *src, dst_t *dst, uint64_t n)       \
  {                                                                                \
    if (n == 0)                                                                    \
      return cudaSuccess;                                                          \
    kernel<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (src, dst, n);             \
    return cudaGetLastError ();                                                    \
  }

DEFINE_CONVERT (cru_cuda_f32_to_bf16, k_f32_to_bf16, float, uint16_t)
DEFINE_CONVERT (cru_cuda_f32_to_f16, k_f32_to_f16, float, uint16_t)
DEFINE_CONVERT (cru_cuda_bf16_to_f32, k_bf16_to_f32, uint16_t, float)
DEFINE_CONVERT (cru_cuda_f16_to_f32, k_f16_to_f32, uint16_t, float)

/* ---- reductions ---- */

__device__ static void
reduce_term (const CruCudaReduce r, uint64_t i, double *t0, double *t1)
{
  switch (r.op)
    {
    case CRU_CUDA_RED_SUM_SQ:
      {
        double a = r.a[i];
        *t0 += a * a;
        break;
      }
    case CRU_CUDA_RED_DOT:
      *t0 += (double) r.a[i] * (double) r.b[i];
      break;
    case CRU_CUDA_RED_SUM_SQ_DIFF:
      {
        double d = r.c ? (double) (r.a[i] - r.c[i]) : (double) r.a[i];
        *t0 += d * d;
        break;
      }
    case CRU_CUDA_RED_DOT_DIFF:
      *t0 += (double) (r.a[i] - r.c[i]) * (double) (r.b[i] - r.c[i]);
      break;
    case CRU_CUDA_RED_L1_MASKED:
      {
        double a = fabs ((double) r.a[i]);
        *t0 += a;
        *t1 += r.mask[i] ? a : 0.0;
        break;
      }
    case CRU_CUDA_RED_DOT_SCALED:
      {
        float v = r.c ? r.a[i] - r.c[i] : r.a[i];
        *t0 += (double) (v / r.f) * r.b[i];
        break;
      }
    case CRU_CUDA_RED_DOT_SCALED_B:
      *t0 += (double) r.b[i] * (double) (r.a[i] / r.f);
      break;
    case CRU_CUDA_RED_KEPT_MASS:
      {
        double a = fabs ((double) (r.c ? r.a[i] - r.c[i] : r.a[i]));
        *t0 += a != 0.0 && a >= r.p ? a : 0.0;
        break;
      }
    }
}

#define RED_BLOCKS 256

__global__ static void
k_reduce_partial (CruCudaReduce r, uint64_t n, double *partial)
{
  double t0 = 0.0, t1 = 0.0;

  CRU_CUDA_FOR_EACH (i, n)
    reduce_term (r, i, &t0, &t1);
  t0 = cru_cuda_block_sum (t0);
  t1 = cru_cuda_block_sum (t1);
  if (threadIdx.x == 0)
    {
      partial[2 * blockIdx.x] = t0;
      partial[2 * blockIdx.x + 1] = t1;
    }
}

__global__ static void
k_reduce_final (const double *partial, int n_partial, double *result)
{
  double t0 = 0.0, t1 = 0.0;

  for (int j = threadIdx.x; j < n_partial; j += blockDim.x)
    {
      t0 += partial[2 * j];
      t1 += partial[2 * j + 1];
    }
  t0 = cru_cuda_block_sum (t0);
  t1 = cru_cuda_block_sum (t1);
  if (threadIdx.x == 0)
    {
      result[0] = t0;
      result[1] = t1;
    }
}

/* The fixed order of cru-fixed-sum.h: one warp per block of 1024 elements, lane l adding
 * the elements l, l + 32, … in turn, then the shuffle tree; the host adds the block sums in
 * order. Only for the non-negative terms of L1_MASKED and KEPT_MASS, whose float-rounded
 * results must match the CPU bit for bit. */
__global__ static void
k_fixed_sum (CruCudaReduce r, uint64_t n, uint64_t n_blocks, double *sums0, double *sums1)
{
  uint64_t warp = ((uint64_t) blockIdx.x * blockDim.x + threadIdx.x) / CRU_FIXED_SUM_LANES;
  uint64_t n_warps = ((uint64_t) gridDim.x * blockDim.x) / CRU_FIXED_SUM_LANES;
  int lane = threadIdx.x % CRU_FIXED_SUM_LANES;

  for (uint64_t b = warp; b < n_blocks; b += n_warps)
    {
      double acc0 = 0.0, acc1 = 0.0;
      for (int j = 0; j < CRU_FIXED_SUM_BLOCK / CRU_FIXED_SUM_LANES; j++)
        {
          uint64_t i = b * CRU_FIXED_SUM_BLOCK + (uint64_t) j * CRU_FIXED_SUM_LANES + lane;
          if (i < n)
            reduce_term (r, i, &acc0, &acc1);
        }
      for (int off = CRU_FIXED_SUM_LANES / 2; off > 0; off >>= 1)
        {
          acc0 = acc0 + __shfl_down_sync (0xffffffffu, acc0, off);
          acc1 = acc1 + __shfl_down_sync (0xffffffffu, acc1, off);
        }
      if (lane == 0)
        {
          sums0[b] = acc0;
          sums1[b] = acc1;
        }
    }
}

static cudaError_t
fixed_sum (cudaStream_t s, const CruCudaReduce *r, uint64_t n, double result[2])
{
  CruCudaTemp tmp = {};
  uint64_t n_blocks = cru_fixed_sum_n_blocks (n), warps_per_block = CRU_CUDA_BLOCK / 32;
  uint64_t grid = (n_blocks + warps_per_block - 1) / warps_per_block;
  double *d_sums, *h_sums;
  cudaError_t err;

  result[0] = result[1] = 0.0;
  if (n == 0)
    return cudaSuccess;
  if ((err = cru_cuda_temp_alloc (&tmp, s, 2 * n_blocks * sizeof (double), (void **) &d_sums)))
    return err;
  h_sums = (double *) malloc (2 * n_blocks * sizeof (double));
  if (h_sums == NULL)
    {
      tmp.err = cudaErrorMemoryAllocation;
      return cru_cuda_temp_finish (&tmp, s);
    }
  k_fixed_sum<<<(unsigned int) (grid < 65535 ? grid : 65535), CRU_CUDA_BLOCK, 0, s>>> (
      *r, n, n_blocks, d_sums, d_sums + n_blocks);
  cudaMemcpyAsync (h_sums, d_sums, 2 * n_blocks * sizeof (double), cudaMemcpyDeviceToHost, s);
  err = cru_cuda_temp_finish (&tmp, s);
  if (err == cudaSuccess)
    {
      result[0] = cru_fixed_sum_blocks (h_sums, n_blocks);
      result[1] = cru_fixed_sum_blocks (h_sums + n_blocks, n_blocks);
    }
  free (h_sums);
  return err;
}

cudaError_t
cru_cuda_reduce (cudaStream_t s, const CruCudaReduce *r, uint64_t n, double result[2])
{
  CruCudaTemp tmp = {};
  double *partial;
  cudaError_t err;

  if (r->op == CRU_CUDA_RED_L1_MASKED || r->op == CRU_CUDA_RED_KEPT_MASS)
    return fixed_sum (s, r, n, result);
  if ((err = cru_cuda_temp_alloc (&tmp, s, (2 * RED_BLOCKS + 2) * sizeof (double),
                                  (void **) &partial)))
    return err;
  k_reduce_partial<<<RED_BLOCKS, CRU_CUDA_BLOCK, 0, s>>> (*r, n, partial);
  k_reduce_final<<<1, CRU_CUDA_BLOCK, 0, s>>> (partial, RED_BLOCKS, partial + 2 * RED_BLOCKS);
  cudaMemcpyAsync (result, partial + 2 * RED_BLOCKS, 2 * sizeof (double),
                   cudaMemcpyDeviceToHost, s);
  return cru_cuda_temp_finish (&tmp, s);
}
