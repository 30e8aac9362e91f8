/* test-cuda-host.c — the CUDA backend's host-side rules, on any machine: the scalar code the
 * kernels share with the CPU (conversions, Philox), the fixed summation order, and the VRAM
 * budget, chunking and placement decisions with made-up free-memory figures
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "cru-cuda-budget.h"
#include "cru-cuda-math.h"
#include "cru-dtype.h"
#include "cru-fixed-sum.h"
#include "cru-method.h"
#include "cru-rng.h"

#define GB ((guint64) 1000000000)
#define MiB ((guint64) 1 << 20)

static uint32_t
bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  return u;
}

static float
from_bits (uint32_t u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

/* ---- conversions: the kernels' scalar functions against cru-dtype.c ---- */

static void
test_widen_all_16_bit_patterns (void)
{
  for (uint32_t h = 0; h < 65536; h++)
    {
      g_assert_cmphex (bits (cru_cuda_bf16_to_f32_one ((uint16_t) h)), ==,
                       bits (cru_bf16_to_f32 ((uint16_t) h)));
      g_assert_cmphex (bits (cru_cuda_f16_to_f32_one ((uint16_t) h)), ==,
                       bits (cru_f16_to_f32 ((uint16_t) h)));
    }
}

static void
check_narrow (uint32_t u)
{
  float f = from_bits (u);

  if (cru_cuda_f32_to_bf16_one (f) != cru_f32_to_bf16 (f)
      || cru_cuda_f32_to_f16_one (f) != cru_f32_to_f16 (f))
    g_error ("f32 0x%08x: bf16 %04x vs %04x, f16 %04x vs %04x", u,
             cru_cuda_f32_to_bf16_one (f), cru_f32_to_bf16 (f), cru_cuda_f32_to_f16_one (f),
             cru_f32_to_f16 (f));
}

/* Every 16-bit pattern widened and narrowed back, every rounding boundary around it, the
 * NaN payloads (one canonical quiet NaN out) and a sweep of all exponents. */
static void
test_narrow_patterns_and_edges (void)
{
  static const uint32_t edges[] = {
    0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,     /* ±0, ±inf */
    0x7f800001u, 0x7fc00000u, 0xffc00001u, 0x7fffffffu,     /* NaNs with payloads */
    0x7f7fffffu, 0x477ff000u, 0x477fefffu, 0x477fe000u,     /* max f32, f16 overflow edge */
    0x38800000u, 0x387fffffu, 0x33000000u, 0x33000001u,     /* f16 normal/subnormal edges */
    0x00000001u, 0x007fffffu, 0x3f808000u, 0x3f818000u,     /* f32 subnormals, bf16 ties */
    0x3f7fffffu, 0x7f7f8000u, 0x7f7f7fffu,
  };

  for (uint32_t h = 0; h < 65536; h++)
    {
      uint32_t u = bits (cru_bf16_to_f32 ((uint16_t) h));
      check_narrow (u);
      check_narrow (u + 0x7fffu);
      check_narrow (u + 0x8000u);
      check_narrow (u + 0x8001u);
      check_narrow (bits (cru_f16_to_f32 ((uint16_t) h)));
      check_narrow (bits (cru_f16_to_f32 ((uint16_t) h)) + 0x0fffu);
      check_narrow (bits (cru_f16_to_f32 ((uint16_t) h)) + 0x1000u);
      check_narrow (bits (cru_f16_to_f32 ((uint16_t) h)) + 0x1001u);
    }
  for (guint i = 0; i < G_N_ELEMENTS (edges); i++)
    check_narrow (edges[i]);
  for (uint64_t u = 0; u <= 0xffffffffu; u += 0x10001u)
    check_narrow ((uint32_t) u);
  g_assert_cmphex (cru_cuda_f32_to_bf16_one (from_bits (0x7f800001u)), ==, 0x7fc0);
  g_assert_cmphex (cru_cuda_f32_to_f16_one (from_bits (0xffc00001u)), ==, 0x7e00);
}

/* ---- Philox: the kernels' counter layout against cru-rng.c ---- */

static void
test_philox_matches_cpu (void)
{
  static const guint64 seeds[] = { 0, 1, 42, 0xdeadbeefcafef00dull };
  static const char *const names[] = { "", "model.layers.0.mlp.up_proj.weight", "lm_head.weight" };
  static const guint64 firsts[] = { 0, 3, 4099, (guint64) 1 << 32, ((guint64) 1 << 40) + 1 };

  for (guint s = 0; s < G_N_ELEMENTS (seeds); s++)
    for (guint n = 0; n < G_N_ELEMENTS (names); n++)
      for (int key = 0; key < 3; key++)
        {
          CruRng rng;
          CruCudaRng dev = cru_cuda_rng_make (seeds[s], names[n], key);
          float cpu[37];

          cru_rng_init (&rng, seeds[s], names[n], key);
          for (guint f = 0; f < G_N_ELEMENTS (firsts); f++)
            {
              cru_rng_uniform (&rng, firsts[f], G_N_ELEMENTS (cpu), cpu);
              for (guint i = 0; i < G_N_ELEMENTS (cpu); i++)
                {
                  float gpu = cru_cuda_rng_uniform1 (dev, firsts[f] + i);
                  g_assert_cmphex (bits (gpu), ==, bits (cpu[i]));
                  g_assert_cmphex (bits (gpu), ==,
                                   bits (cru_rng_uniform1 (&rng, firsts[f] + i)));
                }
            }
        }
}

/* ---- the fixed summation order ---- */

/* The order of cru-fixed-sum.h written out the slow way: lanes as a GPU warp would hold
 * them, the shuffle tree applied to a copy in each round. */
static double
reference_order (const double *t, guint64 n)
{
  double total = 0.0;

  for (guint64 start = 0; start < n; start += 1024)
    {
      double lane[32] = { 0 };
      for (int j = 0; j < 32; j++)
        for (int l = 0; l < 32; l++)
          if (start + 32 * (guint64) j + l < n)
            lane[l] = lane[l] + t[start + 32 * j + l];
      for (int off = 16; off > 0; off >>= 1)
        {
          double before[32];
          memcpy (before, lane, sizeof lane);
          for (int l = 0; l < 32; l++)
            lane[l] = before[l] + (l + off < 32 ? before[l + off] : before[l]);
        }
      total += lane[0];
    }
  return total;
}

static void
test_fixed_sum_order (void)
{
  static const guint64 sizes[] = { 0, 1, 31, 1023, 1024, 1025, 70001 };
  GRand *rand = g_rand_new_with_seed (7);

  for (guint k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      guint64 n = sizes[k];
      g_autofree float *a = g_new (float, n + 1);
      g_autofree guint8 *mask = g_new (guint8, n + 1);
      g_autofree double *t_all = g_new (double, n + 1);
      g_autofree double *t_mask = g_new (double, n + 1);
      g_autofree double *t_kept = g_new (double, n + 1);
      double l1[2], plain = 0.0, p = 0.004;

      for (guint64 i = 0; i < n; i++)
        {
          /* magnitudes over many binades, so that the order shows in the last bits */
          a[i] = (float) (g_rand_double_range (rand, -1, 1)
                          * pow (2.0, g_rand_int_range (rand, -30, 10)));
          if (i % 7 == 3)
            a[i] = 0.0f;
          mask[i] = g_rand_boolean (rand);
          t_all[i] = fabs ((double) a[i]);
          t_mask[i] = mask[i] ? t_all[i] : 0.0;
          t_kept[i] = t_all[i] != 0.0 && t_all[i] >= p ? t_all[i] : 0.0;
          plain += t_all[i];
        }
      cru_fixed_sum_l1_masked (a, mask, n, l1);
      g_assert_cmpfloat (l1[0], ==, reference_order (t_all, n));
      g_assert_cmpfloat (l1[1], ==, reference_order (t_mask, n));
      g_assert_cmpfloat (cru_fixed_sum_kept (a, n, p), ==, reference_order (t_kept, n));
      g_assert_cmpfloat_with_epsilon (l1[0], plain, 1e-12 * MAX (plain, 1.0));
      g_assert_cmpuint (cru_fixed_sum_n_blocks (n), ==, (n + 1023) / 1024);
    }
  g_rand_free (rand);
}

/* ---- budget, chunking and placement rules ---- */

static void
test_budget_from_free_memory (void)
{
  guint64 pipelines = (guint64) CRU_CUDA_N_CONTEXTS * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES;

  /* an idle 141 GB card: free minus a tenth of the total minus the pipelines */
  g_assert_cmpuint (cru_cuda_budget_from_meminfo (140 * GB, 141 * GB), ==,
                    140 * GB - 141 * GB / 10 - pipelines);
  /* a busy 24 GB card with 2 GB free: nothing left after the headroom */
  g_assert_cmpuint (cru_cuda_budget_from_meminfo (2 * GB, 24 * GB), ==, 0);
  g_assert_cmpuint (cru_cuda_budget_from_meminfo (0, 0), ==, 0);
  /* just above the headroom: less than the pipelines is nothing */
  g_assert_cmpuint (cru_cuda_budget_from_meminfo (24 * GB / 10 + 100 * MiB, 24 * GB), ==, 0);
}

static void
test_slices (void)
{
  /* base + 2 models + output = 4 float arrays and a mask byte per element */
  guint64 n = cru_cuda_slice_elements (4, CRU_CUDA_SLOT_BYTES);

  g_assert_cmpuint (n % 4096, ==, 0);
  g_assert_cmpuint (n * (4 * 4 + 1), <=, CRU_CUDA_SLOT_BYTES);
  g_assert_cmpuint ((n + 4096) * (4 * 4 + 1), >, CRU_CUDA_SLOT_BYTES);
  /* 33 arrays still get a useful slice; a tiny slot gets the minimum */
  g_assert_cmpuint (cru_cuda_slice_elements (34, CRU_CUDA_SLOT_BYTES), >=, 4096);
  g_assert_cmpuint (cru_cuda_slice_elements (4, 1000), ==, 4096);
}

static double *
params_of (const CruMethod *m, const char *name, double value)
{
  double *p = g_new (double, m->n_params);

  cru_method_fill_defaults (m, p);
  if (name)
    p[cru_method_find_param (m, name)] = value;
  return p;
}

static void
test_streaming_methods (void)
{
  const CruMethod *dare = cru_method_lookup ("dare_linear");
  g_autofree double *l1 = params_of (dare, "rescale", 1);
  g_autofree double *inverse = params_of (dare, "rescale", 2);

  g_assert_true (cru_cuda_method_streams (cru_method_lookup ("linear"), NULL));
  g_assert_true (cru_cuda_method_streams (cru_method_lookup ("nearswap"), NULL));
  g_assert_true (cru_cuda_method_streams (cru_method_lookup ("ram"), NULL));
  g_assert_false (cru_cuda_method_streams (cru_method_lookup ("ties"), NULL));
  g_assert_false (cru_cuda_method_streams (cru_method_lookup ("sdm_w"), NULL));
  g_assert_false (cru_cuda_method_streams (cru_method_lookup ("slerp"), NULL));
  /* DARE streams unless its L1 rescale needs the whole tensor */
  g_assert_false (cru_cuda_method_streams (dare, NULL));
  g_assert_false (cru_cuda_method_streams (dare, l1));
  g_assert_true (cru_cuda_method_streams (dare, inverse));
}

static void
test_device_bytes (void)
{
  const CruMethod *ties = cru_method_lookup ("ties");
  const CruMethod *linear = cru_method_lookup ("linear");
  const CruMethod *della = cru_method_lookup ("della");
  guint64 n = 4096 * 11008;   /* a 7B MLP matrix */

  /* a streamed call holds only its slack: its data passes through the fixed pipeline */
  g_assert_cmpuint (cru_cuda_device_bytes (linear, NULL, 2, n), ==, CRU_CUDA_CALL_SLACK_BYTES);
  g_assert_cmpuint (cru_cuda_device_bytes (linear, NULL, 2, (guint64) 1 << 36), ==,
                    CRU_CUDA_CALL_SLACK_BYTES);
  /* TIES of two: base, two models and the output in f32, a mask byte, selection scratch */
  g_assert_cmpuint (cru_cuda_device_bytes (ties, NULL, 2, n), >=, n * 4 * 4 + n);
  g_assert_cmpuint (cru_cuda_device_bytes (ties, NULL, 2, n), <=,
                    n * (4 * 4 + 17) + CRU_CUDA_CALL_SLACK_BYTES);
  /* DELLA sorts: more than TIES */
  g_assert_cmpuint (cru_cuda_device_bytes (della, NULL, 2, n), >,
                    cru_cuda_device_bytes (ties, NULL, 2, n));
  g_assert_cmpuint (cru_cuda_device_bytes (ties, NULL, 2, 0), ==, 0);
}

static void
test_fit_decisions (void)
{
  static const CruMethod unknown = { .name = "frobnicate" };
  const CruMethod *ties = cru_method_lookup ("ties");
  const CruMethod *linear = cru_method_lookup ("linear");
  const CruMethod *dare = cru_method_lookup ("dare_ties");
  g_autofree double *inverse = params_of (dare, "rescale", 2);
  guint64 budget = cru_cuda_budget_from_meminfo (22 * GB, 24 * GB);
  guint64 embed = (guint64) 128256 * 4096;   /* Llama 3 embedding: 2.1 GB in f32 */

  g_assert_cmpint (cru_cuda_fit (&unknown, NULL, 2, 1000, budget), ==, CRU_BACKEND_NO_KERNEL);
  g_assert_cmpint (cru_cuda_fit (cru_method_lookup ("passthrough"), NULL, 1, 1000, budget), ==,
                   CRU_BACKEND_CPU_FASTER);
  g_assert_cmpint (cru_cuda_fit (ties, NULL, 32, 1000, budget), ==, CRU_BACKEND_FITS);
  g_assert_cmpint (cru_cuda_fit (ties, NULL, 33, 1000, budget), ==,
                   CRU_BACKEND_TOO_MANY_INPUTS);
  g_assert_cmpint (cru_cuda_fit (ties, NULL, 2, (guint64) 1 << 33, G_MAXUINT64), ==,
                   CRU_BACKEND_TOO_LARGE);
  /* a 24 GB card with 22 GB free takes TIES of two on the embedding … */
  g_assert_cmpint (cru_cuda_fit (ties, NULL, 2, embed, budget), ==, CRU_BACKEND_FITS);
  /* … but not TIES of four with only 4 GB free: that tensor runs on the CPU */
  budget = cru_cuda_budget_from_meminfo (8 * GB, 24 * GB);
  g_assert_cmpint (cru_cuda_fit (ties, NULL, 4, embed, budget), ==, CRU_BACKEND_OVER_BUDGET);
  g_assert_cmpint (cru_cuda_fit (ties, NULL, 4, 4096 * 4096, budget), ==, CRU_BACKEND_FITS);
  /* streamed methods fit whatever the size, as long as their slack fits */
  g_assert_cmpint (cru_cuda_fit (linear, NULL, 4, (guint64) 1 << 36, budget), ==,
                   CRU_BACKEND_FITS);
  g_assert_cmpint (cru_cuda_fit (dare, inverse, 4, (guint64) 1 << 33, budget), ==,
                   CRU_BACKEND_FITS);
  g_assert_cmpint (cru_cuda_fit (dare, NULL, 4, (guint64) 1 << 33, budget), ==,
                   CRU_BACKEND_TOO_LARGE);
  g_assert_cmpint (cru_cuda_fit (linear, NULL, 2, 1000, 0), ==, CRU_BACKEND_OVER_BUDGET);
}

static void
test_peak_bytes (void)
{
  guint64 fixed_8 = 8 * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES + CRU_CUDA_CONTEXT_BYTES;
  guint64 fixed_2 = 2 * CRU_CUDA_N_SLOTS * CRU_CUDA_SLOT_BYTES + CRU_CUDA_CONTEXT_BYTES;
  const guint64 calls[] = { 1 * GB, 5 * GB, 0, 2 * GB, 3 * GB, 4 * GB, 1 * GB, 1 * GB,
                            1 * GB, 2 * GB, 1 * GB };

  g_assert_cmpint (CRU_CUDA_N_CONTEXTS, ==, 8);
  /* nothing on the GPU: no VRAM */
  g_assert_cmpuint (cru_cuda_peak_bytes (calls + 2, 1, 16, 100 * GB), ==, 0);
  g_assert_cmpuint (cru_cuda_peak_bytes (NULL, 0, 16, 100 * GB), ==, 0);
  /* 16 threads share 8 contexts: the eight largest calls at once (5+4+3+2+2+1+1+1) */
  g_assert_cmpuint (cru_cuda_peak_bytes (calls, 11, 16, 100 * GB), ==, 19 * GB + fixed_8);
  /* two threads: the two largest, and two contexts' pipelines */
  g_assert_cmpuint (cru_cuda_peak_bytes (calls, 11, 2, 100 * GB), ==, 9 * GB + fixed_2);
  /* a budget of 6 GB lets no more than 6 GB in together, except one larger call alone */
  g_assert_cmpuint (cru_cuda_peak_bytes (calls, 11, 16, 6 * GB), ==, 6 * GB + fixed_8);
  g_assert_cmpuint (cru_cuda_peak_bytes (calls, 11, 16, 1 * GB), ==, 5 * GB + fixed_8);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cuda/host/conversions/widen-every-16-bit-pattern",
                   test_widen_all_16_bit_patterns);
  g_test_add_func ("/cuda/host/conversions/narrow-patterns-ties-nans-and-edges",
                   test_narrow_patterns_and_edges);
  g_test_add_func ("/cuda/host/philox/same-counter-layout-as-cpu", test_philox_matches_cpu);
  g_test_add_func ("/cuda/host/fixed-sum/documented-order", test_fixed_sum_order);
  g_test_add_func ("/cuda/host/budget/from-free-memory", test_budget_from_free_memory);
  g_test_add_func ("/cuda/host/budget/pipeline-slices", test_slices);
  g_test_add_func ("/cuda/host/budget/which-methods-stream", test_streaming_methods);
  g_test_add_func ("/cuda/host/budget/device-bytes-per-call", test_device_bytes);
  g_test_add_func ("/cuda/host/budget/fit-decisions", test_fit_decisions);
  g_test_add_func ("/cuda/host/budget/peak-vram", test_peak_bytes);
  return g_test_run ();
}
