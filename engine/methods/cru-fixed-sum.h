/* cru-fixed-sum.h — double sums in one fixed association order, the same on every backend
 *
 * A double sum that is then rounded to float (DARE/DELLA's L1 rescale factor, SDM-W's kept
 * mass and so its weights) must come out identical on the CPU and on the GPU, or the
 * merged tensors differ in their last bits; floating-point addition is not associative, so
 * both backends add in this order:
 *  - the elements are split into blocks of CRU_FIXED_SUM_BLOCK (1024), from the start of
 *    the buffer;
 *  - inside a block, lane l (0 … 31) adds the terms l, l + 32, l + 64, … in turn;
 *  - the 32 lane sums are combined pairwise 16, 8, 4, 2 and 1 lanes apart (a warp's
 *    shuffle tree), giving the block's sum;
 *  - the block sums are added in block order.
 * The CUDA kernel (cru-cuda-kernels.cu, k_fixed_sum) is one warp per block and leaves the
 * last step to cru_fixed_sum_blocks on the host.
 *
 * Every term is ≥ 0 here, so a term outside the tensor may be skipped or counted as +0.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <math.h>
#include <stdint.h>

#define CRU_FIXED_SUM_LANES 32
#define CRU_FIXED_SUM_BLOCK (CRU_FIXED_SUM_LANES * 32)

static inline uint64_t
cru_fixed_sum_n_blocks (uint64_t n)
{
  return (n + CRU_FIXED_SUM_BLOCK - 1) / CRU_FIXED_SUM_BLOCK;
}

/* The warp tree over 32 lane sums (overwrites @lanes). */
static inline double
cru_fixed_sum_lanes (double lanes[CRU_FIXED_SUM_LANES])
{
  for (int off = CRU_FIXED_SUM_LANES / 2; off > 0; off >>= 1)
    for (int l = 0; l < off; l++)
      lanes[l] = lanes[l] + lanes[l + off];
  return lanes[0];
}

/* The last step: block sums in order. */
static inline double
cru_fixed_sum_blocks (const double *block_sums, uint64_t n_blocks)
{
  double total = 0.0;

  for (uint64_t b = 0; b < n_blocks; b++)
    total += block_sums[b];
  return total;
}

/* out[0] = Σ |a_i|, out[1] = Σ |a_i| over mask_i ≠ 0 (DARE/DELLA's L1 rescale). */
static inline void
cru_fixed_sum_l1_masked (const float *a, const uint8_t *mask, uint64_t n, double out[2])
{
  double total0 = 0.0, total1 = 0.0;

  for (uint64_t start = 0; start < n; start += CRU_FIXED_SUM_BLOCK)
    {
      double l0[CRU_FIXED_SUM_LANES] = { 0 }, l1[CRU_FIXED_SUM_LANES] = { 0 };
      uint64_t len = n - start < CRU_FIXED_SUM_BLOCK ? n - start : CRU_FIXED_SUM_BLOCK;

      for (uint64_t j = 0; j < len; j++)
        {
          double t = fabs ((double) a[start + j]);
          l0[j % CRU_FIXED_SUM_LANES] += t;
          l1[j % CRU_FIXED_SUM_LANES] += mask[start + j] ? t : 0.0;
        }
      total0 += cru_fixed_sum_lanes (l0);
      total1 += cru_fixed_sum_lanes (l1);
    }
  out[0] = total0;
  out[1] = total1;
}

/* Σ |a_i| over the elements with a_i ≠ 0 and |a_i| ≥ @p (SDM-W's kept mass). */
static inline double
cru_fixed_sum_kept (const float *a, uint64_t n, double p)
{
  double total = 0.0;

  for (uint64_t start = 0; start < n; start += CRU_FIXED_SUM_BLOCK)
    {
      double lanes[CRU_FIXED_SUM_LANES] = { 0 };
      uint64_t len = n - start < CRU_FIXED_SUM_BLOCK ? n - start : CRU_FIXED_SUM_BLOCK;

      for (uint64_t j = 0; j < len; j++)
        {
          double t = fabs ((double) a[start + j]);
          lanes[j % CRU_FIXED_SUM_LANES] += t != 0.0 && t >= p ? t : 0.0;
        }
      total += cru_fixed_sum_lanes (lanes);
    }
  return total;
}
