/* cru-dtype-simd.c — AVX2/F16C conversion kernels, chosen at run time
 *
 * Each kernel handles blocks of 8 and leaves the rest to the scalar reference functions, so
 * the results are bit-identical to them: F16C rounds to nearest even like the scalar code but
 * keeps NaN payloads, so NaNs are replaced by the canonical quiet NaN afterwards.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-dtype-private.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define CRU_X86 1
#endif

gboolean
_cru_dtype_simd_supported (void)
{
#ifdef CRU_X86
  static int supported = -1;   /* atomic: worker threads ask at the same time */
  int v = g_atomic_int_get (&supported);

  if (v < 0)
    {
      unsigned int eax, ebx, ecx = 0, edx;

      /* clang's __builtin_cpu_supports knows no "f16c": ask CPUID leaf 1 for it. */
      __get_cpuid (1, &eax, &ebx, &ecx, &edx);
      __builtin_cpu_init ();
      v = __builtin_cpu_supports ("avx2") && (ecx & bit_F16C) != 0
          && __builtin_cpu_supports ("fma");
      g_atomic_int_set (&supported, v);
    }
  return v;
#else
  return FALSE;
#endif
}

#ifdef CRU_X86

#define CRU_SIMD_TARGET __attribute__ ((target ("avx2,f16c,fma")))

CRU_SIMD_TARGET void
_cru_bf16_to_f32_simd (const void *src, float *dst, gsize n)
{
  const uint8_t *s = src;
  gsize i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m128i h = _mm_loadu_si128 ((const __m128i *) (s + 2 * i));
      __m256i w = _mm256_slli_epi32 (_mm256_cvtepu16_epi32 (h), 16);
      _mm256_storeu_si256 ((__m256i *) (dst + i), w);
    }
  for (; i < n; i++)
    {
      uint16_t v;
      memcpy (&v, s + 2 * i, 2);
      dst[i] = cru_bf16_to_f32 (v);
    }
}

CRU_SIMD_TARGET void
_cru_f16_to_f32_simd (const void *src, float *dst, gsize n)
{
  const uint8_t *s = src;
  gsize i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m128i h = _mm_loadu_si128 ((const __m128i *) (s + 2 * i));
      _mm256_storeu_ps (dst + i, _mm256_cvtph_ps (h));
    }
  for (; i < n; i++)
    {
      uint16_t v;
      memcpy (&v, s + 2 * i, 2);
      dst[i] = cru_f16_to_f32 (v);
    }
}

CRU_SIMD_TARGET void
_cru_f32_to_bf16_simd (const float *src, void *dst, gsize n)
{
  uint8_t *d = dst;
  const __m256i one = _mm256_set1_epi32 (1);
  const __m256i round = _mm256_set1_epi32 (0x7fff);
  const __m256i nan16 = _mm256_set1_epi32 (CRU_BF16_CANONICAL_NAN);
  gsize i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 f = _mm256_loadu_ps (src + i);
      __m256i u = _mm256_castps_si256 (f);
      __m256i lsb = _mm256_and_si256 (_mm256_srli_epi32 (u, 16), one);
      __m256i r = _mm256_srli_epi32 (_mm256_add_epi32 (u, _mm256_add_epi32 (round, lsb)), 16);
      __m256i is_nan = _mm256_castps_si256 (_mm256_cmp_ps (f, f, _CMP_UNORD_Q));
      r = _mm256_blendv_epi8 (r, nan16, is_nan);
      /* packus works per 128-bit lane: pack, then gather the two low quadwords. */
      __m256i packed = _mm256_permute4x64_epi64 (_mm256_packus_epi32 (r, r), 0x08);
      _mm_storeu_si128 ((__m128i *) (d + 2 * i), _mm256_castsi256_si128 (packed));
    }
  for (; i < n; i++)
    {
      uint16_t v = cru_f32_to_bf16 (src[i]);
      memcpy (d + 2 * i, &v, 2);
    }
}

CRU_SIMD_TARGET void
_cru_f32_to_f16_simd (const float *src, void *dst, gsize n)
{
  uint8_t *d = dst;
  const __m128i nan16 = _mm_set1_epi16 (CRU_F16_CANONICAL_NAN);
  gsize i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 f = _mm256_loadu_ps (src + i);
      __m128i h = _mm256_cvtps_ph (f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m256i is_nan32 = _mm256_castps_si256 (_mm256_cmp_ps (f, f, _CMP_UNORD_Q));
      __m128i is_nan = _mm_packs_epi32 (_mm256_castsi256_si128 (is_nan32),
                                        _mm256_extracti128_si256 (is_nan32, 1));
      h = _mm_blendv_epi8 (h, nan16, is_nan);
      _mm_storeu_si128 ((__m128i *) (d + 2 * i), h);
    }
  for (; i < n; i++)
    {
      uint16_t v = cru_f32_to_f16 (src[i]);
      memcpy (d + 2 * i, &v, 2);
    }
}

#else /* no x86: never called, _cru_dtype_simd_supported () is FALSE */

void _cru_bf16_to_f32_simd (const void *src, float *dst, gsize n) { g_assert_not_reached (); }
void _cru_f16_to_f32_simd  (const void *src, float *dst, gsize n) { g_assert_not_reached (); }
void _cru_f32_to_bf16_simd (const float *src, void *dst, gsize n) { g_assert_not_reached (); }
void _cru_f32_to_f16_simd  (const float *src, void *dst, gsize n) { g_assert_not_reached (); }

#endif
