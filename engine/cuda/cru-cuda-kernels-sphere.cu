/* cru-cuda-kernels-sphere.cu — kernels of the spherical and statistical methods:
 * nuslerp, multislerp, karcher, sce, arcee_fusion and model_stock per row
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-cuda-kernels.h"
#include "cru-cuda-kernels-private.cuh"

/* ---- nuslerp ---- */

__global__ static void
k_nuslerp_acc_rows (const float *b, const float *x0, const float *x1, uint64_t inner,
                    double *acc)
{
  uint64_t row = blockIdx.x;
  double s0 = 0.0, s1 = 0.0, s01 = 0.0;

  for (uint64_t c = threadIdx.x; c < inner; c += blockDim.x)
    {
      uint64_t i = row * inner + c;
      double v0 = b ? (double) (x0[i] - b[i]) : x0[i];
      double v1 = b ? (double) (x1[i] - b[i]) : x1[i];
      s0 += v0 * v0;
      s1 += v1 * v1;
      s01 += v0 * v1;
    }
  s0 = cru_cuda_block_sum (s0);
  s1 = cru_cuda_block_sum (s1);
  s01 = cru_cuda_block_sum (s01);
  if (threadIdx.x == 0)
    {
      acc[3 * row] = s0;
      acc[3 * row + 1] = s1;
      acc[3 * row + 2] = s01;
    }
}

__global__ static void
k_nuslerp_acc_cols (const float *b, const float *x0, const float *x1, uint64_t outer,
                    uint64_t inner, double *acc)
{
  CRU_CUDA_FOR_EACH (c, inner)
    {
      double s0 = 0.0, s1 = 0.0, s01 = 0.0;
      for (uint64_t a = 0; a < outer; a++)
        {
          uint64_t i = a * inner + c;
          double v0 = b ? (double) (x0[i] - b[i]) : x0[i];
          double v1 = b ? (double) (x1[i] - b[i]) : x1[i];
          s0 += v0 * v0;
          s1 += v1 * v1;
          s01 += v0 * v1;
        }
      acc[3 * c] = s0;
      acc[3 * c + 1] = s1;
      acc[3 * c + 2] = s01;
    }
}

cudaError_t
cru_cuda_nuslerp_acc (cudaStream_t s, const float *b, const float *x0, const float *x1,
                      uint64_t outer, uint64_t inner, int vec_is_outer, double *acc)
{
  if (outer == 0 || inner == 0)
    return cudaSuccess;
  if (vec_is_outer)
    k_nuslerp_acc_rows<<<(unsigned int) outer, CRU_CUDA_BLOCK, 0, s>>> (b, x0, x1, inner, acc);
  else
    k_nuslerp_acc_cols<<<cru_cuda_grid (inner), CRU_CUDA_BLOCK, 0, s>>> (b, x0, x1, outer,
                                                                         inner, acc);
  return cudaGetLastError ();
}

__global__ static void
k_nuslerp_out (const float *b, const float *x0, const float *x1, const float *coef,
               uint64_t inner, int vec_is_outer, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      uint64_t j = vec_is_outer ? i / inner : i % inner;
      float v0 = b ? x0[i] - b[i] : x0[i];
      float v1 = b ? x1[i] - b[i] : x1[i];
      float r = (coef[3 * j] * v0 + coef[3 * j + 1] * v1) / coef[3 * j + 2];
      out[i] = b ? b[i] + r : r;
    }
}

cudaError_t
cru_cuda_nuslerp_out (cudaStream_t s, const float *b, const float *x0, const float *x1,
                      const float *coef, uint64_t outer, uint64_t inner, int vec_is_outer,
                      float *out)
{
  uint64_t n = outer * inner;

  if (n == 0)
    return cudaSuccess;
  k_nuslerp_out<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x0, x1, coef, inner,
                                                              vec_is_outer, out, n);
  return cudaGetLastError ();
}

/* ---- multislerp ---- */

__global__ static void
k_mslerp_mean (const float *b, CruCudaPtrs x, int nm, CruCudaFloats inv, CruCudaFloats w,
               float *mean, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float acc = 0.0f;
      for (int m = 0; m < nm; m++)
        {
          float v = b ? x.p[m][i] - b[i] : x.p[m][i];
          acc += (v / inv.v[m]) * w.v[m];
        }
      mean[i] = acc;
    }
}

cudaError_t
cru_cuda_mslerp_mean (cudaStream_t s, const float *b, CruCudaPtrs x, int nm, CruCudaFloats inv,
                      CruCudaFloats w, float *mean, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_mslerp_mean<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, inv, w, mean, n);
  return cudaGetLastError ();
}

__global__ static void
k_mslerp_tangent (const float *b, CruCudaPtrs x, int nm, CruCudaFloats inv, CruCudaFloats dots,
                  CruCudaFloats w, const float *mean, float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float acc = 0.0f;
      for (int m = 0; m < nm; m++)
        {
          float v = b ? x.p[m][i] - b[i] : x.p[m][i];
          acc += ((v / inv.v[m]) - dots.v[m] * mean[i]) * w.v[m];
        }
      out[i] = acc;
    }
}

cudaError_t
cru_cuda_mslerp_tangent (cudaStream_t s, const float *b, CruCudaPtrs x, int nm,
                         CruCudaFloats inv, CruCudaFloats dots, CruCudaFloats w,
                         const float *mean, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_mslerp_tangent<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, inv, dots, w, mean,
                                                                 out, n);
  return cudaGetLastError ();
}

__global__ static void
k_mslerp_final (const float *b, const float *mean, float c0, float c1, float avg_norm,
                float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float r = (mean[i] * c0 + out[i] * c1) * avg_norm;
      out[i] = b ? r + b[i] : r;
    }
}

cudaError_t
cru_cuda_mslerp_final (cudaStream_t s, const float *b, const float *mean, float c0, float c1,
                       float avg_norm, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_mslerp_final<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, mean, c0, c1, avg_norm, out,
                                                               n);
  return cudaGetLastError ();
}

__global__ static void
k_mslerp_pair (const float *b, const float *x0, const float *x1, float w0, float w1,
               float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float v0 = b ? x0[i] - b[i] : x0[i];
      float v1 = b ? x1[i] - b[i] : x1[i];
      float r = v0 * w0 + v1 * w1;
      out[i] = b ? r + b[i] : r;
    }
}

cudaError_t
cru_cuda_mslerp_pair (cudaStream_t s, const float *b, const float *x0, const float *x1,
                      float w0, float w1, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_mslerp_pair<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x0, x1, w0, w1, out, n);
  return cudaGetLastError ();
}

/* ---- karcher ---- */

__global__ static void
k_karcher_init (CruCudaPtrs x, int nm, CruCudaFloats alpha, CruCudaFloats nf, float *mean,
                uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float acc = 0.0f;
      for (int m = 0; m < nm; m++)
        if (alpha.v[m] != 0.0f)
          acc += alpha.v[m] * (x.p[m][i] / nf.v[m]);
      mean[i] = acc;
    }
}

cudaError_t
cru_cuda_karcher_init (cudaStream_t s, CruCudaPtrs x, int nm, CruCudaFloats alpha,
                       CruCudaFloats nf, float *mean, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_karcher_init<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (x, nm, alpha, nf, mean, n);
  return cudaGetLastError ();
}

__global__ static void
k_karcher_tangent (const float *x, float nf, float coef, float dot, const float *mean,
                   float *tangent, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    tangent[i] += coef * ((x[i] / nf) - dot * mean[i]);
}

cudaError_t
cru_cuda_karcher_tangent (cudaStream_t s, const float *x, float nf, float coef, float dot,
                          const float *mean, float *tangent, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_karcher_tangent<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (x, nf, coef, dot, mean,
                                                                  tangent, n);
  return cudaGetLastError ();
}

__global__ static void
k_karcher_step (float *mean, const float *tangent, float c, float sn, float tn, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    mean[i] = c * mean[i] + sn * (tangent[i] / tn);
}

cudaError_t
cru_cuda_karcher_step (cudaStream_t s, float *mean, const float *tangent, float c, float sn,
                       float tn, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_karcher_step<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (mean, tangent, c, sn, tn, n);
  return cudaGetLastError ();
}

/* ---- sce ---- */

__global__ static void
k_sce_var (CruCudaPtrs tau, int nm, float *var, uint64_t n, unsigned long long *nonzero)
{
  unsigned long long count = 0;

  CRU_CUDA_FOR_EACH (i, n)
    {
      float mean = 0.0f, acc = 0.0f;
      for (int m = 0; m < nm; m++)
        mean += tau.p[m][i];
      mean = mean / (float) nm;
      for (int m = 0; m < nm; m++)
        {
          float d = tau.p[m][i] - mean;
          acc += d * d;
        }
      var[i] = acc / (float) nm;
      count += var[i] != 0.0f;
    }
  count = (unsigned long long) cru_cuda_block_sum ((double) count);
  if (threadIdx.x == 0 && count)
    atomicAdd (nonzero, count);
}

cudaError_t
cru_cuda_sce_var (cudaStream_t s, CruCudaPtrs tau, int nm, float *var, uint64_t n,
                  unsigned long long *nonzero)
{
  CruCudaTemp tmp = {};
  unsigned long long *d_count;
  cudaError_t err;

  if ((err = cru_cuda_temp_alloc (&tmp, s, sizeof *d_count, (void **) &d_count)))
    return err;
  cudaMemsetAsync (d_count, 0, sizeof *d_count, s);
  if (n)
    k_sce_var<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (tau, nm, var, n, d_count);
  cudaMemcpyAsync (nonzero, d_count, sizeof *d_count, cudaMemcpyDeviceToHost, s);
  return cru_cuda_temp_finish (&tmp, s);
}

__global__ static void
k_mask_zero (float *a, const uint8_t *mask, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    a[i] = mask[i] ? a[i] : 0.0f;
}

cudaError_t
cru_cuda_mask_zero (cudaStream_t s, float *a, const uint8_t *mask, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_mask_zero<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (a, mask, n);
  return cudaGetLastError ();
}

__global__ static void
k_sce_combine (const float *b, CruCudaPtrs tau, int nm, CruCudaFloats omega, float *out,
               uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    {
      float total = 0.0f, mixed = 0.0f, divisor = 0.0f, sign;
      for (int m = 0; m < nm; m++)
        total += tau.p[m][i];
      sign = total >= 0.0f ? 1.0f : -1.0f;
      for (int m = 0; m < nm; m++)
        {
          float t = tau.p[m][i];
          float st = t > 0.0f ? 1.0f : (t < 0.0f ? -1.0f : 0.0f);
          if (st == sign)
            {
              mixed += t * omega.v[m];
              divisor += omega.v[m];
            }
        }
      out[i] = b[i] + mixed / (divisor > 1e-6f ? divisor : 1e-6f);
    }
}

cudaError_t
cru_cuda_sce_combine (cudaStream_t s, const float *b, CruCudaPtrs tau, int nm,
                      CruCudaFloats omega, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_sce_combine<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, tau, nm, omega, out, n);
  return cudaGetLastError ();
}

/* ---- arcee_fusion ---- */

/* KL(softmax(x) + 1e-8 ‖ softmax(b) + 1e-8) of one row per block, in double */
__global__ static void
k_arcee_row_kl (const float *b, const float *x, uint64_t row_len, float *kl_rows)
{
  const float *xr = x + (uint64_t) blockIdx.x * row_len;
  const float *br = b + (uint64_t) blockIdx.x * row_len;
  double mx = -INFINITY, mb = -INFINITY, sx = 0.0, sb = 0.0, kl = 0.0;

  for (uint64_t i = threadIdx.x; i < row_len; i += blockDim.x)
    {
      mx = fmax (mx, (double) xr[i]);
      mb = fmax (mb, (double) br[i]);
    }
  mx = cru_cuda_block_max (mx);
  mb = cru_cuda_block_max (mb);
  for (uint64_t i = threadIdx.x; i < row_len; i += blockDim.x)
    {
      sx += exp ((double) xr[i] - mx);
      sb += exp ((double) br[i] - mb);
    }
  sx = cru_cuda_block_sum (sx);
  sb = cru_cuda_block_sum (sb);
  for (uint64_t i = threadIdx.x; i < row_len; i += blockDim.x)
    {
      double p = exp ((double) xr[i] - mx) / sx + 1e-8;
      double q = exp ((double) br[i] - mb) / sb + 1e-8;
      kl += p * log (p / q);
    }
  kl = cru_cuda_block_sum (kl);
  if (threadIdx.x == 0)
    kl_rows[blockIdx.x] = (float) kl;
}

__global__ static void
k_arcee_importance (const float *b, const float *x, const float *kl_rows, uint64_t row_len,
                    float *importance, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    importance[i] = fabsf (x[i] - b[i]) * kl_rows[i / row_len];
}

cudaError_t
cru_cuda_arcee_importance (cudaStream_t s, const float *b, const float *x, uint64_t n_rows,
                           uint64_t row_len, float *importance)
{
  CruCudaTemp tmp = {};
  float *kl_rows;
  uint64_t n = n_rows * row_len;
  cudaError_t err;

  if (n == 0)
    return cudaSuccess;
  if ((err = cru_cuda_temp_alloc (&tmp, s, n_rows * sizeof (float), (void **) &kl_rows)))
    return err;
  k_arcee_row_kl<<<(unsigned int) n_rows, CRU_CUDA_BLOCK, 0, s>>> (b, x, row_len, kl_rows);
  k_arcee_importance<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, kl_rows, row_len,
                                                                   importance, n);
  return cru_cuda_temp_finish (&tmp, s);
}

__global__ static void
k_arcee_out (const float *b, const float *x, const float *importance, float threshold,
             float *out, uint64_t n)
{
  CRU_CUDA_FOR_EACH (i, n)
    out[i] = b[i] + (x[i] - b[i]) * (importance[i] >= threshold ? 1.0f : 0.0f);
}

cudaError_t
cru_cuda_arcee_out (cudaStream_t s, const float *b, const float *x, const float *importance,
                    float threshold, float *out, uint64_t n)
{
  if (n == 0)
    return cudaSuccess;
  k_arcee_out<<<cru_cuda_grid (n), CRU_CUDA_BLOCK, 0, s>>> (b, x, importance, threshold, out,
                                                            n);
  return cudaGetLastError ();
}

/* ---- model_stock per row ---- */

__global__ static void
k_stock_rows (const float *b, CruCudaPtrs x, int nm, uint64_t row_len, double *res)
{
  uint64_t start = (uint64_t) blockIdx.x * row_len;
  int per_row = nm + nm * (nm - 1) / 2, slot = nm;
  double *r = res + (uint64_t) blockIdx.x * per_row;

  for (int m = 0; m < nm; m++)
    {
      double acc = 0.0;
      for (uint64_t i = start + threadIdx.x; i < start + row_len; i += blockDim.x)
        {
          double d = x.p[m][i] - b[i];
          acc += d * d;
        }
      acc = cru_cuda_block_sum (acc);
      if (threadIdx.x == 0)
        r[m] = acc;
    }
  for (int p = 0; p < nm; p++)
    for (int q = p + 1; q < nm; q++, slot++)
      {
        double acc = 0.0;
        for (uint64_t i = start + threadIdx.x; i < start + row_len; i += blockDim.x)
          acc += (double) (x.p[p][i] - b[i]) * (double) (x.p[q][i] - b[i]);
        acc = cru_cuda_block_sum (acc);
        if (threadIdx.x == 0)
          r[slot] = acc;
      }
}

cudaError_t
cru_cuda_stock_rows (cudaStream_t s, const float *b, CruCudaPtrs x, int nm, uint64_t n_rows,
                     uint64_t row_len, double *res)
{
  if (n_rows == 0)
    return cudaSuccess;
  k_stock_rows<<<(unsigned int) n_rows, CRU_CUDA_BLOCK, 0, s>>> (b, x, nm, row_len, res);
  return cudaGetLastError ();
}
