/* cru-forward-kernels.c — the math of one decoder layer, as transformers computes it in
 * float32: RMSNorm, rotate-half RoPE, causal GQA attention with softmax in f32, SwiGLU, and
 * the sparse MoE blocks of Mixtral (softmax → top-k → renormalize) and Qwen2/3-MoE.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cru-forward-private.h"

float *
_cru_scratch_get (CruScratch *s, guint slot, gsize n_floats)
{
  if (s->size[slot] < n_floats)
    {
      g_free (s->buf[slot]);
      s->buf[slot] = g_malloc (n_floats * sizeof (float));
      s->size[slot] = n_floats;
    }
  return s->buf[slot];
}

void
_cru_scratch_clear (CruScratch *s)
{
  for (guint i = 0; i < G_N_ELEMENTS (s->buf); i++)
    g_clear_pointer (&s->buf[i], g_free);
  memset (s->size, 0, sizeof s->size);
}

void
_cru_rmsnorm (const float *x, const float *w, float *out, gsize n, gsize dim, double eps)
{
  for (gsize r = 0; r < n; r++)
    {
      const float *xr = x + r * dim;
      float *o = out + r * dim;
      float ss = 0.f;
      float scale;

      for (gsize i = 0; i < dim; i++)
        ss += xr[i] * xr[i];
      scale = 1.f / sqrtf (ss / (float) dim + (float) eps);
      for (gsize i = 0; i < dim; i++)
        o[i] = w[i] * (xr[i] * scale);
    }
}

void
_cru_rope_tables (const CruLmConfig *cfg, guint max_pos, float *cos_t, float *sin_t)
{
  int d = cfg->head_dim, half = d / 2;
  float *inv = g_new (float, half);

  for (int i = 0; i < half; i++)
    {
      float f = (float) (1.0 / pow (cfg->rope_theta, (double) (2 * i) / d));
      if (cfg->rope_kind == CRU_ROPE_LINEAR)
        f = (float) (f / cfg->rope_factor);
      else if (cfg->rope_kind == CRU_ROPE_LLAMA3)
        {
          double old = cfg->rope_original_max_position;
          double low_wl = old / cfg->rope_low_freq_factor;
          double high_wl = old / cfg->rope_high_freq_factor;
          double wl = 2 * G_PI / f;
          double v = wl > low_wl ? f / cfg->rope_factor : f;
          if (!(wl < high_wl) && !(wl > low_wl))
            {
              double smooth = (old / wl - cfg->rope_low_freq_factor)
                              / (cfg->rope_high_freq_factor - cfg->rope_low_freq_factor);
              v = (1 - smooth) * v / cfg->rope_factor + smooth * v;
            }
          f = (float) v;
        }
      inv[i] = f;
    }
  for (guint p = 0; p < max_pos; p++)
    for (int i = 0; i < half; i++)
      {
        float angle = (float) p * inv[i];  /* f32 product, as torch does */
        float c = (float) cos (angle), s = (float) sin (angle);
        cos_t[p * d + i] = cos_t[p * d + i + half] = c;
        sin_t[p * d + i] = sin_t[p * d + i + half] = s;
      }
  g_free (inv);
}

/* y[n × out] = x[n × in] · W[out × in]ᵀ (+ b) */
static void
linear (const float *x, const float *W, const float *b, float *y, gsize n, gsize in, gsize out)
{
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) n, (int) out, (int) in, 1.f, x,
               (int) in, W, (int) in, 0.f, y, (int) out);
  if (b)
    for (gsize r = 0; r < n; r++)
      for (gsize j = 0; j < out; j++)
        y[r * out + j] += b[j];
}

static void
rope_apply (float *v, gsize n_heads, int d, const float *c, const float *s)
{
  int half = d / 2;
  for (gsize h = 0; h < n_heads; h++)
    {
      float *x = v + h * d;
      for (int i = 0; i < half; i++)
        {
          float a = x[i], b = x[i + half];
          x[i] = a * c[i] - b * s[i];
          x[i + half] = b * c[i + half] + a * s[i + half];
        }
    }
}

static void
attention (const CruLmConfig *cfg, const CruLayerWeights *w, const float *h, float *out,
           guint n, const float *cos_t, const float *sin_t, CruScratch *scratch)
{
  int d = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads;
  gsize qd = (gsize) nh * d, kd = (gsize) nkv * d;
  float *q = _cru_scratch_get (scratch, 2, n * qd);
  float *k = _cru_scratch_get (scratch, 3, n * kd);
  float *v = _cru_scratch_get (scratch, 4, n * kd);
  float *att = _cru_scratch_get (scratch, 5, n * qd);
  float *sc = _cru_scratch_get (scratch, 6, (gsize) n * n);
  float scale = 1.f / sqrtf ((float) d);
  int group = nh / nkv;

  linear (h, w->wq, w->bq, q, n, cfg->hidden_size, qd);
  linear (h, w->wk, w->bk, k, n, cfg->hidden_size, kd);
  linear (h, w->wv, w->bv, v, n, cfg->hidden_size, kd);
  if (w->q_norm)
    {
      _cru_rmsnorm (q, w->q_norm, q, n * nh, d, cfg->rms_norm_eps);
      _cru_rmsnorm (k, w->k_norm, k, n * nkv, d, cfg->rms_norm_eps);
    }
  for (guint t = 0; t < n; t++)
    {
      rope_apply (q + t * qd, nh, d, cos_t + (gsize) t * d, sin_t + (gsize) t * d);
      rope_apply (k + t * kd, nkv, d, cos_t + (gsize) t * d, sin_t + (gsize) t * d);
    }

  for (int hq = 0; hq < nh; hq++)
    {
      int hk = hq / group;
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, scale, q + hq * d,
                   (int) qd, k + hk * d, (int) kd, 0.f, sc, n);
      for (guint i = 0; i < n; i++)
        {
          float *row = sc + (gsize) i * n;
          float mx = row[0], sum = 0.f;
          for (guint j = 1; j <= i; j++)
            mx = MAX (mx, row[j]);
          for (guint j = 0; j <= i; j++)
            sum += (row[j] = expf (row[j] - mx));
          for (guint j = 0; j <= i; j++)
            row[j] /= sum;
          for (guint j = i + 1; j < n; j++)
            row[j] = 0.f;
        }
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.f, sc, n,
                   v + hk * d, (int) kd, 0.f, att + hq * d, (int) qd);
    }
  linear (att, w->wo, NULL, out, n, qd, cfg->hidden_size);
}

/* out[n × H] (+)= down(silu(gate(h)) * up(h)) * row_scale */
static void
swiglu (const float *h, const float *wg, const float *wu, const float *wd, gsize n, gsize H,
        gsize inter, float *out, const float *row_scale, gboolean accumulate,
        CruScratch *scratch)
{
  float *g = _cru_scratch_get (scratch, 2, n * inter);
  float *u = _cru_scratch_get (scratch, 3, n * inter);

  linear (h, wg, NULL, g, n, H, inter);
  linear (h, wu, NULL, u, n, H, inter);
  for (gsize i = 0; i < n * inter; i++)
    g[i] = g[i] / (1.f + expf (-g[i])) * u[i];
  if (!row_scale && !accumulate)
    {
      linear (g, wd, NULL, out, n, inter, H);
      return;
    }
  {
    float *y = _cru_scratch_get (scratch, 4, n * H);
    linear (g, wd, NULL, y, n, inter, H);
    for (gsize r = 0; r < n; r++)
      {
        float s = row_scale ? row_scale[r] : 1.f;
        for (gsize j = 0; j < H; j++)
          out[r * H + j] = (accumulate ? out[r * H + j] : 0.f) + s * y[r * H + j];
      }
  }
}

static void
moe (const CruLmConfig *cfg, const CruLayerWeights *w, const float *h, float *out, guint n,
     guint64 *route_counts, CruScratch *scratch)
{
  gsize H = cfg->hidden_size;
  int E = cfg->n_experts, K = MIN (cfg->n_experts_per_token, E);
  float *logits = g_new (float, (gsize) n * E);
  int *sel = g_new (int, (gsize) n * K);
  float *selw = g_new (float, (gsize) n * K);
  float *gathered = g_new (float, (gsize) n * H);
  float *scales = g_new (float, n);
  guint *rows = g_new (guint, n);
  float *y = g_new (float, (gsize) n * H);

  linear (h, w->router, NULL, logits, n, H, E);
  for (guint t = 0; t < n; t++)
    {
      float *l = logits + (gsize) t * E;
      float mx = l[0], sum = 0.f, ksum = 0.f;
      for (int e = 1; e < E; e++)
        mx = MAX (mx, l[e]);
      for (int e = 0; e < E; e++)
        sum += (l[e] = expf (l[e] - mx));
      for (int e = 0; e < E; e++)
        l[e] /= sum;
      for (int k = 0; k < K; k++)   /* top-k, lower index first among equals (torch.topk) */
        {
          int best = -1;
          for (int e = 0; e < E; e++)
            {
              gboolean taken = FALSE;
              for (int j = 0; j < k; j++)
                taken = taken || sel[t * K + j] == e;
              if (!taken && (best < 0 || l[e] > l[best]))
                best = e;
            }
          sel[t * K + k] = best;
          selw[t * K + k] = l[best];
          ksum += l[best];
        }
      if (cfg->mlp_kind == CRU_MLP_MIXTRAL || cfg->norm_topk_prob)
        for (int k = 0; k < K; k++)
          selw[t * K + k] /= ksum;
    }

  memset (out, 0, (gsize) n * H * sizeof (float));
  for (int e = 0; e < E; e++)
    {
      guint m = 0;
      for (guint t = 0; t < n; t++)
        for (int k = 0; k < K; k++)
          if (sel[t * K + k] == e)
            {
              memcpy (gathered + (gsize) m * H, h + (gsize) t * H, H * sizeof (float));
              scales[m] = selw[t * K + k];
              rows[m++] = t;
            }
      if (route_counts)
        route_counts[e] += m;
      if (m == 0)
        continue;
      swiglu (gathered, w->e_gate[e], w->e_up[e], w->e_down[e], m, H, w->expert_inter, y,
              scales, FALSE, scratch);
      for (guint r = 0; r < m; r++)
        for (gsize j = 0; j < H; j++)
          out[(gsize) rows[r] * H + j] += y[(gsize) r * H + j];
    }

  if (w->sh_gate)
    {
      for (guint t = 0; t < n; t++)
        {
          float z = cblas_sdot ((int) H, h + (gsize) t * H, 1, w->sh_router, 1);
          scales[t] = 1.f / (1.f + expf (-z));
        }
      swiglu (h, w->sh_gate, w->sh_up, w->sh_down, n, H, w->shared_inter, out, scales, TRUE,
              scratch);
    }
  g_free (logits), g_free (sel), g_free (selw), g_free (gathered);
  g_free (scales), g_free (rows), g_free (y);
}

void
_cru_layer_forward (const CruLmConfig *cfg, const CruLayerWeights *w, float *x, guint n_seqs,
                    const guint *lengths, const float *cos_t, const float *sin_t,
                    guint64 *route_counts, CruScratch *scratch)
{
  gsize H = cfg->hidden_size, total = 0;
  float *h, *o;

  for (guint s = 0; s < n_seqs; s++)
    total += lengths[s];
  h = _cru_scratch_get (scratch, 0, total * H);
  o = _cru_scratch_get (scratch, 1, total * H);

  _cru_rmsnorm (x, w->attn_norm, h, total, H, cfg->rms_norm_eps);
  for (guint s = 0, off = 0; s < n_seqs; off += lengths[s], s++)
    attention (cfg, w, h + (gsize) off * H, o + (gsize) off * H, lengths[s], cos_t, sin_t,
               scratch);
  for (gsize i = 0; i < total * H; i++)
    x[i] += o[i];

  _cru_rmsnorm (x, w->mlp_norm, h, total, H, cfg->rms_norm_eps);
  if (cfg->mlp_kind == CRU_MLP_DENSE)
    swiglu (h, w->w_gate, w->w_up, w->w_down, total, H, cfg->intermediate_size, o, NULL,
            FALSE, scratch);
  else
    moe (cfg, w, h, o, total, route_counts, scratch);
  for (gsize i = 0; i < total * H; i++)
    x[i] += o[i];
}
