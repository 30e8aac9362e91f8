/* cru-cuda-math.h — scalar functions shared by the CUDA kernels and the host tests
 *
 * Compiled by nvcc as __host__ __device__ for the kernels, and by a plain C compiler for
 * tests/cuda, which compare them bit for bit with engine/methods/cru-rng.c (Philox layout)
 * and engine/io/cru-dtype.c (bf16/f16 rounding and the canonical NaNs).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <stdint.h>

#ifdef __CUDACC__
#define CRU_HD static __host__ __device__ __forceinline__
#else
#define CRU_HD static inline
#endif

#define CRU_CUDA_PHILOX_M0 0xD2511F53u
#define CRU_CUDA_PHILOX_M1 0xCD9E8D57u
#define CRU_CUDA_PHILOX_W0 0x9E3779B9u
#define CRU_CUDA_PHILOX_W1 0xBB67AE85u

#define CRU_CUDA_BF16_NAN ((uint16_t) 0x7fc0u)
#define CRU_CUDA_F16_NAN  ((uint16_t) 0x7e00u)

/* Counter layout of cru-rng.h: key = seed (lo, hi); counter = (i/4 lo, i/4 hi, FNV-1a of the
 * tensor name, model key); element i takes word i % 4, uniform = (x >> 8) · 2^-24. */
typedef struct {
  uint32_t key0, key1;
  uint32_t name_hash;
  uint32_t model_key;
} CruCudaRng;

CRU_HD uint32_t
cru_cuda_mulhilo (uint32_t a, uint32_t b, uint32_t *hi)
{
  uint64_t p = (uint64_t) a * (uint64_t) b;
  *hi = (uint32_t) (p >> 32);
  return (uint32_t) p;
}

CRU_HD void
cru_cuda_philox4x32_10 (const uint32_t ctr[4], uint32_t key0, uint32_t key1, uint32_t out[4])
{
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key0, k1 = key1;

  for (int r = 0; r < 10; r++)
    {
      uint32_t hi0, hi1, lo0, lo1, n0, n2;
      if (r > 0)
        {
          k0 += CRU_CUDA_PHILOX_W0;
          k1 += CRU_CUDA_PHILOX_W1;
        }
      lo0 = cru_cuda_mulhilo (CRU_CUDA_PHILOX_M0, c0, &hi0);
      lo1 = cru_cuda_mulhilo (CRU_CUDA_PHILOX_M1, c2, &hi1);
      n0 = hi1 ^ c1 ^ k0;
      n2 = hi0 ^ c3 ^ k1;
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
    }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

CRU_HD uint32_t
cru_cuda_hash_name (const char *s)
{
  uint32_t h = 2166136261u;

  for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++)
    {
      h ^= *p;
      h *= 16777619u;
    }
  return h;
}

CRU_HD CruCudaRng
cru_cuda_rng_make (uint64_t seed, const char *tensor_name, int model_key)
{
  CruCudaRng rng;
  rng.key0 = (uint32_t) seed;
  rng.key1 = (uint32_t) (seed >> 32);
  rng.name_hash = cru_cuda_hash_name (tensor_name);
  rng.model_key = (uint32_t) model_key;
  return rng;
}

CRU_HD float
cru_cuda_word_to_uniform (uint32_t x)
{
  return (float) (x >> 8) * (1.0f / 16777216.0f);
}

/* The uniform float of absolute element @index. */
CRU_HD float
cru_cuda_rng_uniform1 (CruCudaRng rng, uint64_t index)
{
  uint64_t block = index / 4;
  uint32_t ctr[4] = { (uint32_t) block, (uint32_t) (block >> 32), rng.name_hash,
                      rng.model_key };
  uint32_t x[4];

  cru_cuda_philox4x32_10 (ctr, rng.key0, rng.key1, x);
  return cru_cuda_word_to_uniform (x[index % 4]);
}

/* ---- f32 ↔ bf16 / f16, as cru-dtype.c ---- */

CRU_HD uint32_t
cru_cuda_f32_bits (float f)
{
  union { float f; uint32_t u; } x;
  x.f = f;
  return x.u;
}

CRU_HD float
cru_cuda_bits_f32 (uint32_t u)
{
  union { float f; uint32_t u; } x;
  x.u = u;
  return x.f;
}

CRU_HD float
cru_cuda_bf16_to_f32_one (uint16_t h)
{
  return cru_cuda_bits_f32 ((uint32_t) h << 16);
}

CRU_HD uint16_t
cru_cuda_f32_to_bf16_one (float f)
{
  uint32_t u = cru_cuda_f32_bits (f);

  if ((u & 0x7fffffffu) > 0x7f800000u)
    return CRU_CUDA_BF16_NAN;
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}

CRU_HD float
cru_cuda_f16_to_f32_one (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;

  if (exp == 0x1f)
    return cru_cuda_bits_f32 (sign | 0x7f800000u | (mant ? 0x00400000u | (mant << 13) : 0));
  if (exp == 0)
    {
      int e = -1;
      if (mant == 0)
        return cru_cuda_bits_f32 (sign);
      do
        {
          mant <<= 1;
          e++;
        }
      while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      return cru_cuda_bits_f32 (sign | ((uint32_t) (127 - 15 - e) << 23) | (mant << 13));
    }
  return cru_cuda_bits_f32 (sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

CRU_HD uint16_t
cru_cuda_f32_to_f16_one (float f)
{
  uint32_t x = cru_cuda_f32_bits (f);
  uint16_t sign = (uint16_t) ((x >> 16) & 0x8000u);

  x &= 0x7fffffffu;
  if (x > 0x7f800000u)
    return CRU_CUDA_F16_NAN;
  if (x >= 0x477ff000u)
    return (uint16_t) (sign | 0x7c00u);
  if (x < 0x38800000u)
    {
      int e, shift;
      uint32_t m, r, rem, half;
      if (x <= 0x33000000u)
        return sign;
      e = (int) (x >> 23);
      m = (x & 0x7fffffu) | 0x800000u;
      shift = 126 - e;
      r = m >> shift;
      rem = m & ((1u << shift) - 1u);
      half = 1u << (shift - 1);
      if (rem > half || (rem == half && (r & 1u)))
        r++;
      return (uint16_t) (sign | r);
    }
  x -= 0x38000000u;
  x = (x + 0xfffu + ((x >> 13) & 1u)) >> 13;
  return (uint16_t) (sign | x);
}

/* ---- selection keys, as cru-select.h ---- */

CRU_HD uint32_t
cru_cuda_select_key (float v, int signed_order)
{
  uint32_t u = cru_cuda_f32_bits (v);
  if (!signed_order)
    return u & 0x7fffffffu;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

CRU_HD float
cru_cuda_select_key_to_float (uint32_t key, int signed_order)
{
  if (!signed_order)
    return cru_cuda_bits_f32 (key);
  return cru_cuda_bits_f32 ((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}
