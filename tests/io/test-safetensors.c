/* test-safetensors.c — header validation, round trips, the writer and output folders
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "io-test-util.h"

#include <math.h>

static char *tmp_root;

/* ---- malformed files: each is refused with a specific message naming the file ---- */

typedef struct
{
  const char *test_name;
  const char *header;     /* NULL: raw bytes below */
  gsize       data_len;   /* bytes of data after the header */
  int         code;
  const char *needle1;
  const char *needle2;
} BadCase;

static const BadCase bad_cases[] = {
  { "invalid-json", "{\"a\": {\"dtype\": \"F32\",", 0, CRU_ERROR_INVALID_FILE, "not valid JSON", NULL },
  { "root-not-object", "[1, 2, 3]", 0, CRU_ERROR_INVALID_FILE, "not a JSON object", NULL },
  { "blank-header", "        ", 0, CRU_ERROR_INVALID_FILE, "not a JSON object", NULL },
  { "tensor-not-object", "{\"x\": 5}", 0, CRU_ERROR_INVALID_FILE, "“x”", "not described by a JSON object" },
  { "missing-dtype", "{\"x\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
    CRU_ERROR_INVALID_FILE, "“x”", "lacks “dtype”" },
  { "missing-offsets", "{\"x\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
    CRU_ERROR_INVALID_FILE, "“x”", "lacks “data_offsets”" },
  { "unknown-field", "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"y\": 1}}",
    4, CRU_ERROR_INVALID_FILE, "“x”", "unknown field “y”" },
  { "unknown-dtype", "{\"x\": {\"dtype\": \"F4\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
    CRU_ERROR_UNSUPPORTED, "“x”", "unknown dtype “F4”" },
  { "dtype-not-string", "{\"x\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
    CRU_ERROR_INVALID_FILE, "“x”", "dtype that is not a string" },
  { "negative-shape", "{\"x\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
    CRU_ERROR_INVALID_FILE, "“x”", "shape entry" },
  { "fractional-shape", "{\"x\": {\"dtype\": \"F32\", \"shape\": [2.0], \"data_offsets\": [0, 8]}}", 8,
    CRU_ERROR_INVALID_FILE, "“x”", "shape entry" },
  { "shape-element-overflow",
    "{\"x\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 0]}}", 0,
    CRU_ERROR_INVALID_FILE, "“x”", "element count overflows" },
  { "shape-byte-overflow",
    "{\"x\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 0]}}", 0,
    CRU_ERROR_INVALID_FILE, "“x”", "byte size overflows" },
  { "size-mismatch", "{\"x\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 12]}}", 12,
    CRU_ERROR_INVALID_FILE,
    "tensor “x” has data_offsets [0, 12] but dtype F32 and shape [2,2] need 16 bytes", NULL },
  { "offsets-reversed", "{\"x\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 0]}}", 4,
    CRU_ERROR_INVALID_FILE, "“x”", "end before they begin" },
  { "offsets-not-pair", "{\"x\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4, 8]}}", 4,
    CRU_ERROR_INVALID_FILE, "“x”", "not a pair" },
  { "gap-between", "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
                   " \"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [6, 10]}}", 10,
    CRU_ERROR_INVALID_FILE, "gap of 2 bytes between tensor “a”", "“b”" },
  { "gap-before-first", "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [2, 6]}}", 6,
    CRU_ERROR_INVALID_FILE, "gap of 2 bytes before the first tensor “a”", NULL },
  { "overlap", "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
               " \"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [2, 6]}}", 6,
    CRU_ERROR_INVALID_FILE, "“a” and “b” overlap", NULL },
  { "trailing-bytes", "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 7,
    CRU_ERROR_INVALID_FILE, "3 bytes after the last tensor", NULL },
  { "data-past-eof", "{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]}}", 5,
    CRU_ERROR_INVALID_FILE, "need 8 bytes of data but the file holds only 5", "truncated" },
  { "duplicate-names", "{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
                       " \"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]}}", 8,
    CRU_ERROR_INVALID_FILE, "names “a” more than once", NULL },
  { "duplicate-field", "{\"a\": {\"dtype\": \"U8\", \"dtype\": \"U8\", \"shape\": [4], "
                       "\"data_offsets\": [0, 4]}}", 4,
    CRU_ERROR_INVALID_FILE, "names “dtype” more than once", NULL },
  { "metadata-not-string", "{\"__metadata__\": {\"format\": 1}}", 0,
    CRU_ERROR_INVALID_FILE, "“__metadata__” entry “format” is not a string", NULL },
  { "metadata-not-object", "{\"__metadata__\": \"pt\"}", 0,
    CRU_ERROR_INVALID_FILE, "“__metadata__” is not a JSON object", NULL },
  { "too-many-dims", "{\"x\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                     "\"data_offsets\": [0, 1]}}", 1, CRU_ERROR_UNSUPPORTED, "“x”", "9 dimensions" },
};

static void
test_bad_case (gconstpointer data)
{
  const BadCase *c = data;
  g_autofree char *dir = util_make_tmp (tmp_root);
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree guint8 *bytes = g_malloc0 (c->data_len + 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruSafetensors) st = NULL;
  g_autofree char *dir_name = g_path_get_basename (dir);
  g_autofree char *display = g_build_filename (dir_name, "model.safetensors", NULL);

  util_write_st (path, c->header, -1, bytes, c->data_len);
  st = cru_safetensors_open (path, &error);
  g_assert_null (st);
  util_assert_error (error, c->code, display, c->needle1, c->needle2, NULL);
  util_rm_rf (dir);
}

/* Cases that need raw bytes. */
static void
test_bad_raw (void)
{
  g_autofree char *dir = util_make_tmp (tmp_root);
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  g_autofree char *dir_name = g_path_get_basename (dir);
  g_autofree char *dn = g_build_filename (dir_name, "m.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  guint8 buf[64];
  guint64 len;

  /* empty file */
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "the file is empty", NULL);
  g_clear_error (&error);

  /* shorter than the length prefix */
  g_assert_true (g_file_set_contents (path, "\x10\0\0", 3, NULL));
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "too short", NULL);
  g_clear_error (&error);

  /* header length past the end of the file */
  len = GUINT64_TO_LE (1000);
  memcpy (buf, &len, 8);
  memcpy (buf + 8, "{}      ", 8);
  g_assert_true (g_file_set_contents (path, (char *) buf, 16, NULL));
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "claims 1000 bytes", "truncated", NULL);
  g_clear_error (&error);

  /* header over 100 MB (the file need not be that big to be refused) */
  len = GUINT64_TO_LE (100000001);
  memcpy (buf, &len, 8);
  g_assert_true (g_file_set_contents (path, (char *) buf, 16, NULL));
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "claims 100000001 bytes", "allowed", NULL);
  g_clear_error (&error);

  /* a huge length that would overflow 8 + length */
  len = GUINT64_TO_LE (G_MAXUINT64 - 3);
  memcpy (buf, &len, 8);
  g_assert_true (g_file_set_contents (path, (char *) buf, 16, NULL));
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "allowed", NULL);
  g_clear_error (&error);

  /* not UTF-8 */
  util_write_st (path, "{\"\xff\xfe\": 1}  ", -1, NULL, 0);
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "not valid UTF-8", NULL);
  g_clear_error (&error);

  /* a NUL byte inside the header */
  util_write_st (path, "{\"a\0\": 1}", 9, NULL, 0);
  g_assert_null (cru_safetensors_open (path, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, dn, "UTF-8", NULL);
  g_clear_error (&error);

  /* a missing file */
  g_assert_null (cru_safetensors_open ("/nonexistent/x.safetensors", &error));
  util_assert_error (error, CRU_ERROR_NOT_FOUND, "x.safetensors", "cannot open", NULL);
  g_clear_error (&error);

  /* the in-memory parser (the fuzz target) applies the same checks */
  g_assert_null (cru_safetensors_parse_header ("mem", (const guint8 *) "\x02\0\0\0\0\0\0\0{}", 10,
                                               9, &error));
  util_assert_error (error, CRU_ERROR_INVALID_FILE, "mem", "claims 2 bytes", NULL);
  g_clear_error (&error);
  util_rm_rf (dir);
}

static void
test_valid_minimal (void)
{
  g_autofree char *dir = util_make_tmp (tmp_root);
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruSafetensors) st = NULL;
  const float data[3] = { 1.5f, -2.0f, 3.25f };
  const guint16 h[2] = { 0x3c00, 0xc000 };
  guint8 bytes[16];
  float out[3];

  memcpy (bytes, h, 4);
  memcpy (bytes + 4, data, 12);
  /* A header with trailing spaces, unsorted names, empty tensors and metadata. */
  util_write_st (path, "{\"z\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [4, 16]},"
                       " \"__metadata__\": {\"format\": \"pt\"},"
                       " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [4, 4]},"
                       " \"a\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]},"
                       " \"scalar0\": {\"dtype\": \"U8\", \"shape\": [], \"data_offsets\": [16, 17]}}   ",
                 -1, NULL, 0);
  /* append the data after the header */
  {
    g_autofree char *contents = NULL;
    gsize len;
    g_autoptr(GByteArray) b = g_byte_array_new ();
    g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
    g_byte_array_append (b, (guint8 *) contents, (guint) len);
    g_byte_array_append (b, bytes, 16);
    g_byte_array_append (b, (const guint8 *) "\x07", 1);
    g_assert_true (g_file_set_contents (path, (char *) b->data, b->len, NULL));
  }
  st = cru_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cru_safetensors_get_n_tensors (st), ==, 4);
  g_assert_cmpstr (cru_safetensors_get_tensor (st, 0)->name, ==, "a");   /* sorted by name */
  g_assert_cmpstr (g_hash_table_lookup (cru_safetensors_get_metadata (st), "format"), ==, "pt");
  g_assert_true (cru_safetensors_read_f32 (st, cru_safetensors_lookup (st, "z"), 0, 3, out, &error));
  g_assert_cmpfloat (out[0], ==, 1.5f);
  g_assert_cmpfloat (out[2], ==, 3.25f);
  g_assert_true (cru_safetensors_read_f32 (st, cru_safetensors_lookup (st, "a"), 1, 1, out, &error));
  g_assert_cmpfloat (out[0], ==, -2.0f);
  g_assert_cmpuint (cru_safetensors_lookup (st, "scalar0")->numel, ==, 1);
  g_assert_cmpuint (cru_safetensors_lookup (st, "empty")->numel, ==, 0);
  /* reading past the tensor is an error, not a crash */
  g_assert_false (cru_safetensors_read_f32 (st, cru_safetensors_lookup (st, "z"), 2, 2, out, &error));
  util_assert_error (error, CRU_ERROR_FAILED, "“z”", NULL);
  util_rm_rf (dir);
}

/* ---- round trips through the writer ---------------------------------------------- */

static void
fill_random (GRand *rand, guint8 *p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    p[i] = (guint8) g_rand_int_range (rand, 0, 256);
}

/* Writes @n tensors of every dtype with random bytes, reads them back, compares bytes. */
static void
round_trip (guint64 max_shard, const char *base, gboolean expect_sharded)
{
  g_autofree char *dir = util_make_tmp (base);
  g_autoptr(CruLayout) layout = cru_layout_new (max_shard);
  g_autoptr(GPtrArray) blobs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruWriter) w = NULL;
  g_autoptr(CruModel) model = NULL;
  GRand *rand = g_rand_new_with_seed (42);
  guint n_added = 0;

  for (int d = 1; d < CRU_DTYPE_N; d++)
    for (int k = 0; k < 3; k++)
      {
        g_autofree char *name = g_strdup_printf ("model.layers.%d.t%d.%s", k, d,
                                                 cru_dtype_to_string ((CruDType) d));
        int64_t shape[2] = { g_rand_int_range (rand, 1, 40), g_rand_int_range (rand, 1, 300) };
        gsize bytes = (gsize) (shape[0] * shape[1]) * cru_dtype_size ((CruDType) d);
        guint8 *blob = g_malloc (bytes);
        fill_random (rand, blob, bytes);
        g_ptr_array_add (blobs, blob);
        g_assert_cmpuint (cru_layout_add (layout, name, (CruDType) d, 2, shape), ==, n_added++);
      }
  g_assert_true (cru_layout_finish (layout, &error));
  g_assert_cmpint (cru_layout_get_n_shards (layout) > 1, ==, expect_sharded);
  w = cru_writer_open (layout, dir, &error);
  g_assert_no_error (error);
  /* in reverse order, in two pieces each, to show order does not matter */
  for (guint i = n_added; i-- > 0;)
    {
      const CruTensorInfo *t = cru_layout_get_tensor (layout, i);
      gsize bytes = t->end - t->begin, half = bytes / 3;
      g_assert_true (cru_writer_write (w, i, half, (guint8 *) blobs->pdata[i] + half, bytes - half, &error));
      g_assert_true (cru_writer_write (w, i, 0, blobs->pdata[i], half, &error));
    }
  g_assert_true (cru_writer_close (w, &error));
  g_assert_no_error (error);

  util_write_text (dir, "config.json", "{\"model_type\": \"llama\", \"num_hidden_layers\": 3}");
  model = cru_model_open (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cru_model_get_n_tensors (model), ==, n_added);
  g_assert_cmpuint (cru_model_get_n_shards (model), ==, cru_layout_get_n_shards (layout));
  g_assert_cmpint (cru_model_get_n_layers (model), ==, 3);
  for (guint i = 0; i < n_added; i++)
    {
      const CruTensorInfo *t = cru_layout_get_tensor (layout, i);
      const CruModelTensor *mt = cru_model_lookup (model, t->name);
      gsize bytes = t->end - t->begin;
      g_autofree guint8 *back = g_malloc (bytes);

      g_assert_nonnull (mt);
      g_assert_cmpint (mt->info->dtype, ==, t->dtype);
      g_assert_cmpint (mt->info->shape[1], ==, t->shape[1]);
      g_assert_true (cru_safetensors_read_raw (mt->shard, mt->info, 0, back, bytes, &error));
      g_assert_cmpmem (back, bytes, blobs->pdata[i], bytes);
      /* every convertible dtype widens without error */
      {
        g_autofree float *f = g_new (float, t->numel);
        g_assert_true (cru_model_read_f32 (model, mt, 0, t->numel, f, &error));
      }
    }
  g_rand_free (rand);
  util_rm_rf (dir);
}

static void test_round_trip_single (void) { round_trip (0, tmp_root, FALSE); }
static void test_round_trip_sharded (void) { round_trip (20000, tmp_root, TRUE); }
static void test_round_trip_shm (void)
{
  if (!g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no /dev/shm");
      return;
    }
  round_trip (20000, "/dev/shm", TRUE);
}

static void
test_write_f32_rounds (void)
{
  g_autofree char *dir = util_make_tmp (tmp_root);
  g_autoptr(CruLayout) layout = cru_layout_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruWriter) w = NULL;
  g_autoptr(CruSafetensors) st = NULL;
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  const CruDType dts[] = { CRU_DTYPE_F32, CRU_DTYPE_F16, CRU_DTYPE_BF16, CRU_DTYPE_F64 };
  int64_t n = 10007;
  g_autofree float *src = g_new (float, n);
  g_autofree float *back = g_new (float, n);
  GRand *rand = g_rand_new_with_seed (3);

  for (int64_t i = 0; i < n; i++)
    src[i] = (float) g_rand_double_range (rand, -70000, 70000) * (i % 3 ? 1e-4f : 1.0f);
  src[5] = NAN;
  for (guint i = 0; i < G_N_ELEMENTS (dts); i++)
    cru_layout_add (layout, cru_dtype_to_string (dts[i]), dts[i], 1, &n);
  g_assert_true (cru_layout_finish (layout, &error));
  w = cru_writer_open (layout, dir, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (dts); i++)
    {
      g_assert_true (cru_writer_write_f32 (w, i, 5000, src + 5000, (guint64) n - 5000, &error));
      g_assert_true (cru_writer_write_f32 (w, i, 0, src, 5000, &error));
    }
  g_assert_true (cru_writer_close (w, &error));
  st = cru_safetensors_open (path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (dts); i++)
    {
      const CruTensorInfo *t = cru_safetensors_lookup (st, cru_dtype_to_string (dts[i]));
      g_assert_true (cru_safetensors_read_f32 (st, t, 0, (guint64) n, back, &error));
      for (int64_t k = 0; k < n; k++)
        {
          float want = dts[i] == CRU_DTYPE_F16 ? cru_f16_to_f32 (cru_f32_to_f16 (src[k]))
                     : dts[i] == CRU_DTYPE_BF16 ? cru_bf16_to_f32 (cru_f32_to_bf16 (src[k]))
                     : src[k];
          if (isnan (want))
            g_assert_true (isnan (back[k]));
          else
            g_assert_cmpfloat (back[k], ==, want);
        }
    }
  g_rand_free (rand);
  util_rm_rf (dir);
}

/* ---- writer details ---------------------------------------------------------------- */

static void
test_shard_boundaries (void)
{
  g_autoptr(CruLayout) layout = cru_layout_new (100);
  g_autoptr(GError) error = NULL;
  const int64_t s40 = 40, s20 = 20, s1 = 1, s250 = 250, s60 = 60;
  g_autofree char *name0 = NULL, *name2 = NULL;

  cru_layout_add (layout, "a", CRU_DTYPE_U8, 1, &s40);   /* shard 0: 40 */
  cru_layout_add (layout, "b", CRU_DTYPE_U8, 1, &s40);   /* shard 0: 80 */
  cru_layout_add (layout, "c", CRU_DTYPE_U8, 1, &s20);   /* shard 0: exactly 100 */
  cru_layout_add (layout, "d", CRU_DTYPE_U8, 1, &s1);    /* would be 101: shard 1 */
  cru_layout_add (layout, "e", CRU_DTYPE_U8, 1, &s250);  /* too big for any shard: alone */
  cru_layout_add (layout, "f", CRU_DTYPE_U8, 1, &s60);   /* shard 3 */
  g_assert_true (cru_layout_finish (layout, &error));
  g_assert_cmpuint (cru_layout_get_n_shards (layout), ==, 4);
  g_assert_cmpuint (cru_layout_get_shard (layout, 2), ==, 0);
  g_assert_cmpuint (cru_layout_get_shard (layout, 3), ==, 1);
  g_assert_cmpuint (cru_layout_get_shard (layout, 4), ==, 2);
  g_assert_cmpuint (cru_layout_get_shard (layout, 5), ==, 3);
  g_assert_cmpuint (cru_layout_get_tensor (layout, 2)->begin, ==, 80);
  g_assert_cmpuint (cru_layout_get_tensor (layout, 3)->begin, ==, 0);
  g_assert_cmpuint (cru_layout_get_total_data_size (layout), ==, 411);
  name0 = cru_layout_get_shard_name (layout, 0);
  name2 = cru_layout_get_shard_name (layout, 2);
  g_assert_cmpstr (name0, ==, "model-00001-of-00004.safetensors");
  g_assert_cmpstr (name2, ==, "model-00003-of-00004.safetensors");
  g_assert_cmpint (cru_layout_lookup (layout, "e"), ==, 4);
  g_assert_cmpint (cru_layout_lookup (layout, "zz"), ==, -1);
}

static void
test_layout_errors (void)
{
  g_autoptr(CruLayout) empty = cru_layout_new (0);
  g_autoptr(CruLayout) dup = cru_layout_new (0);
  g_autoptr(GError) error = NULL;
  const int64_t s = 4;

  g_assert_false (cru_layout_finish (empty, &error));
  util_assert_error (error, CRU_ERROR_FAILED, "no tensors", NULL);
  g_clear_error (&error);
  cru_layout_add (dup, "w", CRU_DTYPE_F32, 1, &s);
  cru_layout_add (dup, "w", CRU_DTYPE_F32, 1, &s);
  g_assert_false (cru_layout_finish (dup, &error));
  util_assert_error (error, CRU_ERROR_FAILED, "“w” twice", NULL);
}

static void
test_header_padding_and_index (void)
{
  g_autofree char *dir = util_make_tmp (tmp_root);
  g_autoptr(CruLayout) layout = cru_layout_new (64);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruWriter) w = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  const char *names[] = { "b.weight", "a.\"quoted\"\\name", "c.weight" };
  const int64_t shape[2] = { 3, 5 };
  guint8 zeros[60] = { 0 };
  JsonObject *root, *wm;

  cru_layout_set_metadata (layout, "merged_by", "crucible");
  for (guint i = 0; i < 3; i++)
    cru_layout_add (layout, names[i], CRU_DTYPE_F32, 2, shape);
  g_assert_true (cru_layout_finish (layout, &error));
  g_assert_cmpuint (cru_layout_get_n_shards (layout), ==, 3);
  w = cru_writer_open (layout, dir, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    g_assert_true (cru_writer_write (w, i, 0, zeros, 60, &error));
  g_assert_true (cru_writer_close (w, &error));

  for (guint s = 0; s < 3; s++)
    {
      g_autofree char *name = cru_layout_get_shard_name (layout, s);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      g_autoptr(CruSafetensors) st = NULL;
      gsize len;
      guint64 hlen;

      g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
      g_assert_cmpuint (len, ==, cru_layout_get_shard_size (layout, s));
      memcpy (&hlen, contents, 8);
      hlen = GUINT64_FROM_LE (hlen);
      g_assert_cmpuint (hlen % 8, ==, 0);
      g_assert_cmpuint (8 + hlen + 60, ==, len);
      g_assert_true (contents[8 + hlen - 1] == '}' || contents[8 + hlen - 1] == ' ');
      g_assert_true (g_str_has_prefix (contents + 8, "{\"__metadata__\":{\"format\":\"pt\""));
      st = cru_safetensors_open (path, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (g_hash_table_lookup (cru_safetensors_get_metadata (st), "format"), ==, "pt");
      g_assert_cmpstr (g_hash_table_lookup (cru_safetensors_get_metadata (st), "merged_by"), ==, "crucible");
      g_assert_nonnull (cru_safetensors_lookup (st, names[s]));
    }

  g_assert_true (json_parser_load_from_file (parser, index, &error));
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (root, "metadata"),
                                               "total_size"), ==, 180);
  wm = json_object_get_object_member (root, "weight_map");
  g_assert_cmpuint (json_object_get_size (wm), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (wm, "b.weight"), ==, "model-00001-of-00003.safetensors");
  g_assert_cmpstr (json_object_get_string_member (wm, names[1]), ==, "model-00002-of-00003.safetensors");
  g_assert_cmpstr (json_object_get_string_member (wm, "c.weight"), ==, "model-00003-of-00003.safetensors");
  util_rm_rf (dir);
}

static void
test_incomplete_tensor_refused (void)
{
  g_autofree char *dir = util_make_tmp (tmp_root);
  g_autoptr(CruLayout) layout = cru_layout_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruWriter) w = NULL;
  const int64_t s = 100;
  guint8 data[100] = { 0 };

  cru_layout_add (layout, "whole", CRU_DTYPE_U8, 1, &s);
  cru_layout_add (layout, "partial", CRU_DTYPE_U8, 1, &s);
  g_assert_true (cru_layout_finish (layout, &error));
  w = cru_writer_open (layout, dir, &error);
  g_assert_true (cru_writer_write (w, 0, 0, data, 100, &error));
  g_assert_true (cru_writer_write (w, 1, 0, data, 99, &error));
  g_assert_false (cru_writer_write (w, 1, 50, data, 51, &error));   /* past the end */
  util_assert_error (error, CRU_ERROR_FAILED, "“partial”", NULL);
  g_clear_error (&error);
  g_assert_false (cru_writer_close (w, &error));
  util_assert_error (error, CRU_ERROR_FAILED, "“partial”", "99 of 100", NULL);
  util_rm_rf (dir);
}

/* Many threads write chunks of many tensors in random order, through both I/O paths. */
typedef struct
{
  CruWriter  *w;
  CruLayout  *layout;
  GArray     *jobs;      /* (tensor, offset, length) triples */
  gint        next;
  guint8    **blobs;
} ConcurrentCtx;

static gpointer
concurrent_worker (gpointer data)
{
  ConcurrentCtx *ctx = data;
  GError *error = NULL;
  int j;

  while ((j = g_atomic_int_add (&ctx->next, 1)) < (int) (ctx->jobs->len / 3))
    {
      guint64 *job = &g_array_index (ctx->jobs, guint64, 3 * j);
      if (!cru_writer_write (ctx->w, (guint) job[0], job[1], ctx->blobs[job[0]] + job[1], job[2], &error))
        g_error ("%s (job %" G_GUINT64_FORMAT " +%" G_GUINT64_FORMAT ", tensor of %" G_GUINT64_FORMAT " bytes)",
                 error->message, job[1], job[2],
                 cru_layout_get_tensor (ctx->layout, (guint) job[0])->end
                 - cru_layout_get_tensor (ctx->layout, (guint) job[0])->begin);
    }
  return NULL;
}

static void
concurrent_writes (const char *base, int expect_direct)
{
  g_autofree char *dir = util_make_tmp (base);
  g_autoptr(CruLayout) layout = cru_layout_new (3000000);
  g_autoptr(GError) error = NULL;
  g_autoptr(CruModel) model = NULL;
  ConcurrentCtx ctx = { 0 };
  GRand *rand = g_rand_new_with_seed (99);
  const guint n_tensors = 48;
  GThread *threads[4];

  ctx.blobs = g_new0 (guint8 *, n_tensors);
  ctx.jobs = g_array_new (FALSE, FALSE, sizeof (guint64));
  for (guint i = 0; i < n_tensors; i++)
    {
      g_autofree char *name = g_strdup_printf ("model.layers.%u.w", i);
      int64_t n = g_rand_int_range (rand, 1, 300000);
      CruDType dt = i % 3 == 0 ? CRU_DTYPE_F32 : i % 3 == 1 ? CRU_DTYPE_BF16 : CRU_DTYPE_U8;
      gsize bytes = (gsize) n * cru_dtype_size (dt);
      ctx.blobs[i] = g_malloc (bytes);
      fill_random (rand, ctx.blobs[i], bytes);
      cru_layout_add (layout, name, dt, 1, &n);
      /* chunks of random lengths so that heads and tails are unaligned */
      for (guint64 off = 0; off < bytes;)
        {
          guint64 r = (guint64) g_rand_int_range (rand, 1, 70000);   /* MIN evaluates twice */
          guint64 len = MIN (r, bytes - off);
          guint64 job[3] = { i, off, len };
          g_array_append_vals (ctx.jobs, job, 3);
          off += len;
        }
    }
  g_assert_true (cru_layout_finish (layout, &error));
  g_assert_cmpuint (cru_layout_get_n_shards (layout), >, 1);
  /* shuffle the jobs */
  for (guint j = ctx.jobs->len / 3; j > 1; j--)
    {
      guint k = (guint) g_rand_int_range (rand, 0, (gint32) j);
      guint64 tmp[3];
      memcpy (tmp, &g_array_index (ctx.jobs, guint64, 3 * (j - 1)), sizeof tmp);
      memcpy (&g_array_index (ctx.jobs, guint64, 3 * (j - 1)), &g_array_index (ctx.jobs, guint64, 3 * k), sizeof tmp);
      memcpy (&g_array_index (ctx.jobs, guint64, 3 * k), tmp, sizeof tmp);
    }
  ctx.layout = layout;
  ctx.w = cru_writer_open (layout, dir, &error);
  g_assert_no_error (error);
  if (expect_direct >= 0)
    g_assert_cmpint (cru_writer_uses_direct_io (ctx.w), ==, expect_direct);
  g_test_message ("%s: O_DIRECT %s", base, cru_writer_uses_direct_io (ctx.w) ? "used" : "not used");
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
    threads[t] = g_thread_new ("writer", concurrent_worker, &ctx);
  for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
    g_thread_join (threads[t]);
  g_assert_true (cru_writer_close (ctx.w, &error));
  g_assert_no_error (error);
  cru_writer_free (ctx.w);

  util_write_text (dir, "config.json", "{}");
  model = cru_model_open (dir, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < n_tensors; i++)
    {
      const CruTensorInfo *t = cru_layout_get_tensor (layout, i);
      const CruModelTensor *mt = cru_model_lookup (model, t->name);
      gsize bytes = t->end - t->begin;
      g_autofree guint8 *back = g_malloc (bytes);
      g_assert_true (cru_safetensors_read_raw (mt->shard, mt->info, 0, back, bytes, &error));
      g_assert_cmpmem (back, bytes, ctx.blobs[i], bytes);
      g_free (ctx.blobs[i]);
    }
  g_free (ctx.blobs);
  g_array_unref (ctx.jobs);
  g_rand_free (rand);
  util_rm_rf (dir);
}

static gboolean
fs_accepts_direct_io (const char *dir)
{
  g_autofree char *probe = g_build_filename (dir, "cru-odirect-probe", NULL);
  int fd = open (probe, O_WRONLY | O_CREAT | O_DIRECT, 0644);

  if (fd < 0)
    return FALSE;
  close (fd);
  g_unlink (probe);
  return TRUE;
}

static void
test_concurrent_direct (void)
{
  /* The build folder is on a disk filesystem; O_DIRECT is used where it accepts it. */
  const char *base = g_getenv ("G_TEST_BUILDDIR");

  if (base == NULL)
    base = ".";
  if (!fs_accepts_direct_io (base))
    {
      g_test_skip ("the build folder's filesystem refuses O_DIRECT");
      return;
    }
  concurrent_writes (base, TRUE);
}

static void
test_concurrent_buffered_shm (void)
{
  if (!g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no /dev/shm");
      return;
    }
  if (!fs_accepts_direct_io ("/dev/shm"))
    {
      /* tmpfs before Linux 6.6 refuses O_DIRECT: the writer must fall back by itself. */
      concurrent_writes ("/dev/shm", FALSE);
      return;
    }
  g_test_message ("this kernel's tmpfs accepts O_DIRECT; forcing the buffered path");
  cru_writer_set_direct_io_enabled (FALSE);
  concurrent_writes ("/dev/shm", FALSE);
  cru_writer_set_direct_io_enabled (TRUE);
}

/* ---- output folders ---------------------------------------------------------------- */

static guint
count_entries (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d && g_dir_read_name (d))
    n++;
  return n;
}

static void
test_output_dir (void)
{
  g_autofree char *root = util_make_tmp (tmp_root);
  g_autofree char *target = g_build_filename (root, "out", NULL);
  g_autofree char *marker = g_build_filename (target, "old-file", NULL);
  g_autofree char *newfile = g_build_filename (target, "new-file", NULL);
  g_autoptr(GError) error = NULL;
  CruOutputDir *od;

  /* abort leaves nothing behind */
  od = cru_output_dir_begin (target, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_test (cru_output_dir_get_tmp_path (od), G_FILE_TEST_IS_DIR));
  g_assert_true (g_str_has_prefix (cru_output_dir_get_tmp_path (od), root));
  util_write_text (cru_output_dir_get_tmp_path (od), "x", "y");
  cru_output_dir_abort (od);
  cru_output_dir_free (od);
  g_assert_cmpuint (count_entries (root), ==, 0);

  /* freeing an uncommitted one also cleans up */
  od = cru_output_dir_begin (target, FALSE, &error);
  cru_output_dir_free (od);
  g_assert_cmpuint (count_entries (root), ==, 0);

  /* commit renames into place */
  od = cru_output_dir_begin (target, FALSE, &error);
  util_write_text (cru_output_dir_get_tmp_path (od), "old-file", "1");
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  g_assert_true (cru_output_dir_commit (od, &error));
  g_assert_no_error (error);
  cru_output_dir_free (od);
  g_assert_true (g_file_test (marker, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_entries (root), ==, 1);

  /* an existing target is refused */
  g_assert_null (cru_output_dir_begin (target, FALSE, &error));
  util_assert_error (error, CRU_ERROR_EXISTS, target, "already exists", NULL);
  g_clear_error (&error);

  /* ... unless overwriting is asked; the old one stays until commit */
  od = cru_output_dir_begin (target, TRUE, &error);
  g_assert_no_error (error);
  util_write_text (cru_output_dir_get_tmp_path (od), "new-file", "2");
  g_assert_true (g_file_test (marker, G_FILE_TEST_EXISTS));
  g_assert_true (cru_output_dir_commit (od, &error));
  cru_output_dir_free (od);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (newfile, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_entries (root), ==, 1);

  /* a target that appears during the run is not replaced */
  util_rm_rf (target);
  od = cru_output_dir_begin (target, FALSE, &error);
  g_assert_cmpint (g_mkdir (target, 0755), ==, 0);
  g_assert_false (cru_output_dir_commit (od, &error));
  util_assert_error (error, CRU_ERROR_EXISTS, target, NULL);
  g_clear_error (&error);
  cru_output_dir_free (od);
  g_assert_cmpuint (count_entries (root), ==, 1);

  /* leftovers of killed runs are found and removed */
  {
    g_autofree char *stale = g_build_filename (root, ".out.crucible-tmp-abcdef", NULL);
    g_autofree char *other = g_build_filename (root, ".other.crucible-tmp-abcdef", NULL);
    g_mkdir (stale, 0755);
    g_mkdir (other, 0755);
    util_write_text (stale, "f", "x");
    g_assert_cmpuint (cru_output_dir_clean_stale (target), ==, 1);
    g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  }
  util_rm_rf (root);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmp_root = util_make_tmp (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/io/safetensors/malformed/%s", bad_cases[i].test_name);
      g_test_add_data_func (path, &bad_cases[i], test_bad_case);
    }
  g_test_add_func ("/io/safetensors/malformed/raw-bytes", test_bad_raw);
  g_test_add_func ("/io/safetensors/valid-file-reads-back", test_valid_minimal);
  g_test_add_func ("/io/safetensors/round-trip/every-dtype-single-file", test_round_trip_single);
  g_test_add_func ("/io/safetensors/round-trip/every-dtype-sharded", test_round_trip_sharded);
  g_test_add_func ("/io/safetensors/round-trip/every-dtype-on-tmpfs", test_round_trip_shm);
  g_test_add_func ("/io/safetensors/round-trip/write-f32-rounds-like-scalar", test_write_f32_rounds);
  g_test_add_func ("/io/writer/shard-boundaries", test_shard_boundaries);
  g_test_add_func ("/io/writer/layout-errors", test_layout_errors);
  g_test_add_func ("/io/writer/header-padding-and-index-json", test_header_padding_and_index);
  g_test_add_func ("/io/writer/incomplete-tensor-refused", test_incomplete_tensor_refused);
  g_test_add_func ("/io/writer/concurrent-random-order-direct-io", test_concurrent_direct);
  g_test_add_func ("/io/writer/concurrent-random-order-buffered-tmpfs", test_concurrent_buffered_shm);
  g_test_add_func ("/io/output-dir/commit-abort-exists-overwrite", test_output_dir);
  ret = g_test_run ();
  util_rm_rf (tmp_root);
  g_free (tmp_root);
  return ret;
}
