/* cru-rng.c — Philox-4x32-10 counter-based random numbers
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void
philox_round (uint32_t c[4], const uint32_t k[2])
{
  uint64_t p0 = (uint64_t) PHILOX_M0 * c[0];
  uint64_t p1 = (uint64_t) PHILOX_M1 * c[2];
  uint32_t hi0 = (uint32_t) (p0 >> 32), lo0 = (uint32_t) p0;
  uint32_t hi1 = (uint32_t) (p1 >> 32), lo1 = (uint32_t) p1;
  uint32_t n0 = hi1 ^ c[1] ^ k[0];
  uint32_t n2 = hi0 ^ c[3] ^ k[1];

  c[0] = n0;
  c[1] = lo1;
  c[2] = n2;
  c[3] = lo0;
}

void
cru_philox4x32_10 (const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
  uint32_t c[4] = { ctr[0], ctr[1], ctr[2], ctr[3] };
  uint32_t k[2] = { key[0], key[1] };

  for (int r = 0; r < 10; r++)
    {
      if (r > 0)
        {
          k[0] += PHILOX_W0;
          k[1] += PHILOX_W1;
        }
      philox_round (c, k);
    }
  out[0] = c[0];
  out[1] = c[1];
  out[2] = c[2];
  out[3] = c[3];
}

uint32_t
cru_rng_hash_name (const char *s)
{
  uint32_t h = 2166136261u;

  for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++)
    {
      h ^= *p;
      h *= 16777619u;
    }
  return h;
}

void
cru_rng_init (CruRng *rng, guint64 seed, const char *tensor_name, int model_key)
{
  rng->key[0] = (uint32_t) seed;
  rng->key[1] = (uint32_t) (seed >> 32);
  rng->name_hash = cru_rng_hash_name (tensor_name);
  rng->model_key = (uint32_t) model_key;
}

static inline float
word_to_uniform (uint32_t x)
{
  return (float) (x >> 8) * (1.0f / 16777216.0f);
}

static inline void
block_at (const CruRng *rng, guint64 block, uint32_t out[4])
{
  uint32_t ctr[4] = { (uint32_t) block, (uint32_t) (block >> 32), rng->name_hash,
                      rng->model_key };
  cru_philox4x32_10 (ctr, rng->key, out);
}

float
cru_rng_uniform1 (const CruRng *rng, guint64 index)
{
  uint32_t x[4];

  block_at (rng, index / 4, x);
  return word_to_uniform (x[index % 4]);
}

void
cru_rng_uniform (const CruRng *rng, guint64 first, guint64 n, float *out)
{
  guint64 i = 0;
  uint32_t x[4];

  /* leading partial block */
  while (i < n && (first + i) % 4 != 0)
    {
      out[i] = cru_rng_uniform1 (rng, first + i);
      i++;
    }
  for (; i + 4 <= n; i += 4)
    {
      block_at (rng, (first + i) / 4, x);
      out[i] = word_to_uniform (x[0]);
      out[i + 1] = word_to_uniform (x[1]);
      out[i + 2] = word_to_uniform (x[2]);
      out[i + 3] = word_to_uniform (x[3]);
    }
  for (; i < n; i++)
    out[i] = cru_rng_uniform1 (rng, first + i);
}
