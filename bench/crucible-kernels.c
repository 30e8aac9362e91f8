/* crucible-kernels — nanoseconds per element of the CPU engine's hot kernels, with every
 * kernel set this CPU has, on one chunk of the size the engine streams (what stays in the
 * caches between kernels is what a merge sees). For profiling and for comparing builds:
 * build the older commit too and run both here, one after the other.
 *
 *   crucible-kernels [--elements N] [--repeats R]
 *
 * Each figure is the best of seven timings of R calls on N elements (defaults: the engine's
 * chunk of 65536 elements, 200 calls); the data are |Δ| of a fine-tune-like spread, so the
 * radix windows hold what they hold in a merge.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "cru-dtype.h"
#include "cru-kernels.h"
#include "cru-rng.h"
#include "cru-select.h"

typedef struct {
  guint64  n;
  float   *x, *x2, *base, *out, *delta0, *delta1;
  guint8  *bits;
  guint16 *bf16;
  guint32 *hist, *window;
  uint32_t digits[CRU_HIST_WINDOW];
  uint32_t key_t;
  CruRng   rng;
} Data;

typedef void (*KernelFunc) (Data *d, int call);

static void
k_bf16_to_f32 (Data *d, int call)
{
  cru_convert_to_f32 (CRU_DTYPE_BF16, d->bf16, d->x, d->n);
}

static void
k_f32_to_bf16 (Data *d, int call)
{
  cru_convert_from_f32 (CRU_DTYPE_BF16, d->out, d->bf16, d->n);
}

static void
k_random_bits (Data *d, int call)
{
  cru_kernel_random_bits (&d->rng, (guint64) call * d->n, d->n, 0.5f, d->bits);
}

static void
k_diff_l1_bits (Data *d, int call)
{
  double acc[2] = { 0.0, 0.0 };

  cru_kernel_diff_l1_bits (d->x, d->base, d->bits, d->n, acc);
}

static void
k_diff_mask_scale_bits (Data *d, int call)
{
  cru_kernel_diff_mask_scale_bits (d->delta0, d->x, d->base, d->bits, d->n,
                                   CRU_KERNEL_SCALE_MUL, 2.0f, 0.6f);
}

static void
k_hist_window_above (Data *d, int call)
{
  guint64 above[CRU_HIST_WINDOW] = { 0 };

  cru_kernel_diff_hist_window (d->x, d->base, d->n, NULL, NULL, d->digits, d->window, above);
}

static void
k_hist_window_high (Data *d, int call)
{
  guint64 zeros = 0;

  cru_kernel_diff_hist_window (d->x, d->base, d->n, d->hist, &zeros, d->digits, d->window,
                               NULL);
}

static void
k_diff_topk_scale (Data *d, int call)
{
  cru_kernel_diff_topk_scale (d->delta0, d->x, d->base, d->n, d->key_t, 100,
                              CRU_KERNEL_SCALE_MASK, 1.0f, 0.6f);
}

static void
k_diff_kept_sum (Data *d, int call)
{
  double acc = 0.0;

  cru_kernel_diff_kept_sum (d->x, d->base, d->n, 1e-3, &acc);
}

static void
k_consensus (Data *d, int call)
{
  const float *deltas[2] = { d->delta0, d->delta1 };
  const float w[2] = { 0.6f, 0.4f };

  cru_kernel_consensus (d->out, d->base, deltas, w, 2, d->n, TRUE, 1.0f);
}

static const struct {
  const char *name;
  KernelFunc  func;
  gboolean    conversion;   /* cru-dtype's SIMD switch, not the kernel sets */
} kernels[] = {
  { "bf16 → f32", k_bf16_to_f32, TRUE },
  { "f32 → bf16", k_f32_to_bf16, TRUE },
  { "DARE mask bits (Philox)", k_random_bits, FALSE },
  { "DARE Δ L1 sums under bits", k_diff_l1_bits, FALSE },
  { "DARE Δ masked, scaled", k_diff_mask_scale_bits, FALSE },
  { "radix window + above", k_hist_window_above, FALSE },
  { "radix window + high hist", k_hist_window_high, FALSE },
  { "TIES Δ top-k, scaled", k_diff_topk_scale, FALSE },
  { "SDM-W Δ kept sum", k_diff_kept_sum, FALSE },
  { "TIES sign election", k_consensus, FALSE },
};

static double
best_time (KernelFunc func, Data *d, int repeats)
{
  double best = G_MAXDOUBLE;

  for (int t = 0; t < 7; t++)
    {
      gint64 start = g_get_monotonic_time ();

      for (int r = 0; r < repeats; r++)
        func (d, r);
      best = MIN (best, (double) (g_get_monotonic_time () - start) * 1e3);
    }
  return best / ((double) repeats * (double) d->n);
}

int
main (int argc, char **argv)
{
  gint64 elements = 65536, repeats = 200;
  GOptionEntry entries[] = {
    { "elements", 0, 0, G_OPTION_ARG_INT64, &elements, "Elements per call (65536)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT64, &repeats, "Calls per timing (200)", "R" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("— time the CPU kernels");
  g_autoptr (GError) error = NULL;
  static const char *const isa_names[] = { "scalar", "AVX2", "AVX-512" };
  GRand *rand = g_rand_new_with_seed (7);
  Data d = { 0 };
  guint64 k;
  int top;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("crucible-kernels: %s\n", error->message);
      return 2;
    }
  if (elements < 64 || repeats < 1)
    {
      g_printerr ("crucible-kernels: --elements must be at least 64, --repeats at least 1\n");
      return 2;
    }
  d.n = (guint64) elements;
  d.x = g_new (float, d.n);
  d.x2 = g_new (float, d.n);
  d.base = g_new (float, d.n);
  d.out = g_new (float, d.n);
  d.delta0 = g_new (float, d.n);
  d.delta1 = g_new (float, d.n);
  d.bits = g_new0 (guint8, d.n / 8 + 1);
  d.bf16 = g_new (guint16, d.n);
  d.hist = g_new0 (guint32, 65536);
  d.window = g_new0 (guint32, CRU_HIST_WINDOW * 65536);
  for (guint64 i = 0; i < d.n; i++)
    {
      /* weights of ~0.02, changes of ~0.001 in bf16 steps, as a fine-tune's */
      d.base[i] = cru_bf16_to_f32 (cru_f32_to_bf16 ((float) g_rand_double_range (rand, -0.04, 0.04)));
      d.x[i] = cru_bf16_to_f32 (cru_f32_to_bf16 (d.base[i] + (float) g_rand_double_range (rand, -0.002, 0.002)));
      d.x2[i] = d.x[i] - d.base[i];
      d.delta0[i] = d.x2[i] * 0.6f;
      d.delta1[i] = (float) g_rand_double_range (rand, -0.001, 0.001);
      d.bf16[i] = cru_f32_to_bf16 (d.x[i]);
      d.out[i] = d.x[i];
    }
  cru_rng_init (&d.rng, 42, "model.layers.0.mlp.up_proj.weight", 1);
  cru_kernel_random_bits (&d.rng, 0, d.n, 0.5f, d.bits);
  /* the window and threshold of a TIES density of 0.5 on these data */
  cru_kernel_diff_hist_window (d.x, d.base, d.n, d.hist, NULL, (uint32_t[]) { 0, 1, 2 },
                               d.window, NULL);
  cru_select_window_guess (d.hist, d.n / 2, d.digits);
  k = d.n / 2;
  d.key_t = cru_select_kth_key (d.x2, d.n, k, CRU_SELECT_ABS, FALSE);

  top = (int) cru_kernels_isa_available ();
  printf ("%-28s", "ns per element");
  for (int isa = CRU_KERNELS_SCALAR; isa <= top; isa++)
    printf ("%10s", isa_names[isa]);
  printf ("\n");
  for (guint i = 0; i < G_N_ELEMENTS (kernels); i++)
    {
      printf ("%-28s", kernels[i].name);
      for (int isa = CRU_KERNELS_SCALAR; isa <= top; isa++)
        {
          if (kernels[i].conversion)
            {
              if (isa > CRU_KERNELS_AVX2)
                break;
              cru_dtype_set_simd_enabled (isa > CRU_KERNELS_SCALAR);
            }
          cru_kernels_set_isa ((CruKernelsIsa) isa);
          printf ("%10.3f", best_time (kernels[i].func, &d, (int) repeats));
        }
      printf ("\n");
    }
  cru_kernels_set_isa ((CruKernelsIsa) top);
  cru_dtype_set_simd_enabled (TRUE);
  g_rand_free (rand);
  return 0;
}
