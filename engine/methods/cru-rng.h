/* cru-rng.h — counter-based random numbers (Philox-4x32-10) for DARE, DELLA and random gates.
 *
 * Why counter-based: element i of a tensor always gets the same random number, whatever
 * the thread count, chunking or device, so a seed reproduces a merge bit for bit.
 *
 * Exact layout (the CUDA backend implements the same):
 *   key     k0 = low 32 bits of the seed, k1 = high 32 bits of the seed
 *   counter c0 = low 32 bits of (i / 4), c1 = high 32 bits of (i / 4),
 *           c2 = FNV-1a 32-bit hash of the tensor name (UTF-8 bytes, no terminator),
 *           c3 = the model key (the input's index in the recipe; -1 for "no model" → 0xffffffff)
 *   where i is the ABSOLUTE element index in the whole tensor (call->offset + local index).
 *   Philox-4x32-10 (Salmon et al., Random123) maps (counter, key) to four 32-bit words
 *   x0..x3; element i uses word x[i % 4]; its uniform float is (x >> 8) · 2^-24 ∈ [0, 1).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* One Philox-4x32-10 block: @ctr (4 words) and @key (2 words) to @out (4 words). */
void     cru_philox4x32_10 (const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* FNV-1a 32-bit hash of @s (""/NULL hash the empty string). */
uint32_t cru_rng_hash_name (const char *s);

typedef struct {
  uint32_t key[2];
  uint32_t name_hash;
  uint32_t model_key;
} CruRng;

void     cru_rng_init     (CruRng *rng, guint64 seed, const char *tensor_name, int model_key);
/* Uniform floats in [0, 1) for absolute element indices first … first + n − 1. */
void     cru_rng_uniform  (const CruRng *rng, guint64 first, guint64 n, float *out);
/* The uniform float of one absolute element index. */
float    cru_rng_uniform1 (const CruRng *rng, guint64 index);

G_END_DECLS
