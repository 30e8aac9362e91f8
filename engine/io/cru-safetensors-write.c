/* cru-safetensors-write.c — output layouts and the sharded writer
 *
 * Every shard's header is known before any data is written, so tensors land at fixed offsets
 * in any order from any thread. Full aligned blocks go through an O_DIRECT descriptor (page
 * cache writes are the slow part of a merge); unaligned heads and tails, and filesystems that
 * refuse O_DIRECT (tmpfs), go through a buffered one.
 *
 * cru_writer_write_f32 converts into aligned buffers and hands them to writer threads
 * (write-behind): the caller goes on computing while the disk writes, which is what lets one
 * worker thread reach the disk's speed. A bounded pool of buffers limits the memory held and
 * throttles callers that produce faster than the disk takes. A failed write is reported by
 * the next call and by cru_writer_close.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cru-safetensors-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#define CRU_IO_ALIGN       4096u
#define CRU_IO_BUFFER_SIZE CRU_WRITER_BUFFER_SIZE
/* Buffers queued or being written at most (CRU_WRITER_BUFFER_BYTES in the header), and the
 * threads writing them: two writes in flight keep a disk busy between requests. */
#define CRU_WRITE_BUFFERS  CRU_WRITER_N_BUFFERS
#define CRU_WRITE_THREADS  2

typedef struct
{
  char   *header;       /* JSON, padded with spaces */
  gsize   header_len;
  guint64 data_size;
} LayoutShard;

struct _CruLayout
{
  guint64     max_shard_bytes;
  GPtrArray  *tensors;      /* CruTensorInfo* in the order added */
  GArray     *shard_of;     /* guint per tensor */
  GHashTable *by_name;      /* name → index + 1 */
  char       *duplicate;
  GPtrArray  *meta_keys;
  GPtrArray  *meta_values;
  GArray     *shards;       /* LayoutShard */
  gboolean    finished;
};

static void
tensor_info_free (gpointer p)
{
  CruTensorInfo *t = p;

  g_free (t->name);
  g_free (t);
}

static void
layout_shard_clear (gpointer p)
{
  g_free (((LayoutShard *) p)->header);
}

CruLayout *
cru_layout_new (guint64 max_shard_bytes)
{
  CruLayout *layout = g_new0 (CruLayout, 1);

  layout->max_shard_bytes = max_shard_bytes ? max_shard_bytes : CRU_DEFAULT_SHARD_SIZE;
  layout->tensors = g_ptr_array_new_with_free_func (tensor_info_free);
  layout->shard_of = g_array_new (FALSE, TRUE, sizeof (guint));
  layout->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  layout->meta_keys = g_ptr_array_new_with_free_func (g_free);
  layout->meta_values = g_ptr_array_new_with_free_func (g_free);
  layout->shards = g_array_new (FALSE, TRUE, sizeof (LayoutShard));
  g_array_set_clear_func (layout->shards, layout_shard_clear);
  cru_layout_set_metadata (layout, "format", "pt");
  return layout;
}

void
cru_layout_free (CruLayout *layout)
{
  if (layout == NULL)
    return;
  g_hash_table_unref (layout->by_name);
  g_ptr_array_unref (layout->tensors);
  g_array_unref (layout->shard_of);
  g_ptr_array_unref (layout->meta_keys);
  g_ptr_array_unref (layout->meta_values);
  g_array_unref (layout->shards);
  g_free (layout->duplicate);
  g_free (layout);
}

guint
cru_layout_add (CruLayout *layout, const char *name, CruDType dtype, int ndim,
                const int64_t *shape)
{
  CruTensorInfo *t;
  guint index = layout->tensors->len;

  g_return_val_if_fail (!layout->finished, 0);
  g_return_val_if_fail (ndim >= 0 && ndim <= CRU_MAX_DIMS, 0);
  g_return_val_if_fail (cru_dtype_size (dtype) > 0, 0);

  t = g_new0 (CruTensorInfo, 1);
  t->name = g_strdup (name);
  t->dtype = dtype;
  t->ndim = ndim;
  t->numel = 1;
  for (int i = 0; i < ndim; i++)
    {
      t->shape[i] = shape[i];
      t->numel *= (guint64) MAX (shape[i], 0);
    }
  g_ptr_array_add (layout->tensors, t);
  g_array_append_val (layout->shard_of, (guint) { 0 });
  if (g_hash_table_contains (layout->by_name, t->name))
    {
      if (layout->duplicate == NULL)
        layout->duplicate = g_strdup (name);
    }
  else
    g_hash_table_insert (layout->by_name, t->name, GUINT_TO_POINTER (index + 1));
  return index;
}

void
cru_layout_set_metadata (CruLayout *layout, const char *key, const char *value)
{
  g_return_if_fail (!layout->finished);
  for (guint i = 0; i < layout->meta_keys->len; i++)
    if (strcmp (layout->meta_keys->pdata[i], key) == 0)
      {
        g_free (layout->meta_values->pdata[i]);
        layout->meta_values->pdata[i] = g_strdup (value);
        return;
      }
  g_ptr_array_add (layout->meta_keys, g_strdup (key));
  g_ptr_array_add (layout->meta_values, g_strdup (value));
}

static void
append_json_string (GString *s, const char *str)
{
  g_string_append_c (s, '"');
  for (const guchar *p = (const guchar *) str; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        {
          g_string_append_c (s, '\\');
          g_string_append_c (s, (char) *p);
        }
      else if (*p < 0x20)
        g_string_append_printf (s, "\\u%04x", *p);
      else
        g_string_append_c (s, (char) *p);
    }
  g_string_append_c (s, '"');
}

static void
build_shard_header (CruLayout *layout, LayoutShard *shard, guint first, guint last)
{
  GString *s = g_string_new ("{\"__metadata__\":{");

  for (guint i = 0; i < layout->meta_keys->len; i++)
    {
      if (i)
        g_string_append_c (s, ',');
      append_json_string (s, layout->meta_keys->pdata[i]);
      g_string_append_c (s, ':');
      append_json_string (s, layout->meta_values->pdata[i]);
    }
  g_string_append_c (s, '}');
  for (guint i = first; i < last; i++)
    {
      const CruTensorInfo *t = layout->tensors->pdata[i];
      g_string_append_c (s, ',');
      append_json_string (s, t->name);
      g_string_append_printf (s, ":{\"dtype\":\"%s\",\"shape\":[", cru_dtype_to_string (t->dtype));
      for (int d = 0; d < t->ndim; d++)
        g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
      g_string_append_printf (s, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
                              t->begin, t->end);
    }
  g_string_append_c (s, '}');
  /* Pad with spaces so that the data section starts at a multiple of 8. */
  while (s->len % 8 != 0)
    g_string_append_c (s, ' ');
  shard->header_len = s->len;
  shard->header = g_string_free (s, FALSE);
}

gboolean
cru_layout_finish (CruLayout *layout, GError **error)
{
  guint first = 0;
  guint64 offset = 0;

  g_return_val_if_fail (!layout->finished, FALSE);
  if (layout->tensors->len == 0)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED, _("The output model has no tensors"));
      return FALSE;
    }
  if (layout->duplicate)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("The output model would hold tensor “%s” twice"), layout->duplicate);
      return FALSE;
    }
  for (guint i = 0; i < layout->tensors->len; i++)
    {
      CruTensorInfo *t = layout->tensors->pdata[i];
      if (!g_utf8_validate (t->name, -1, NULL) || t->name[0] == '\0')
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                       _("The output tensor name “%s” is empty or not valid UTF-8"), t->name);
          return FALSE;
        }
    }

  for (guint i = 0; i <= layout->tensors->len; i++)
    {
      CruTensorInfo *t = i < layout->tensors->len ? layout->tensors->pdata[i] : NULL;
      guint64 bytes = t ? t->numel * cru_dtype_size (t->dtype) : 0;

      /* Like transformers: a new shard when this tensor would overflow a non-empty one. */
      if (t == NULL || (i > first && offset + bytes > layout->max_shard_bytes))
        {
          LayoutShard shard = { NULL, 0, offset };
          build_shard_header (layout, &shard, first, i);
          g_array_append_val (layout->shards, shard);
          first = i;
          offset = 0;
          if (t == NULL)
            break;
        }
      t->begin = offset;
      t->end = offset + bytes;
      offset = t->end;
      g_array_index (layout->shard_of, guint, i) = layout->shards->len;
    }
  layout->finished = TRUE;
  return TRUE;
}

guint cru_layout_get_n_tensors (CruLayout *layout) { return layout->tensors->len; }
guint cru_layout_get_n_shards (CruLayout *layout) { return layout->shards->len; }

const CruTensorInfo *
cru_layout_get_tensor (CruLayout *layout, guint index)
{
  g_return_val_if_fail (index < layout->tensors->len, NULL);
  return layout->tensors->pdata[index];
}

guint
cru_layout_get_shard (CruLayout *layout, guint index)
{
  g_return_val_if_fail (index < layout->tensors->len, 0);
  return g_array_index (layout->shard_of, guint, index);
}

char *
cru_layout_get_shard_name (CruLayout *layout, guint shard)
{
  guint n = layout->shards->len;

  if (n <= 1)
    return g_strdup ("model.safetensors");
  return g_strdup_printf ("model-%05u-of-%05u.safetensors", shard + 1, n);
}

guint64
cru_layout_get_shard_size (CruLayout *layout, guint shard)
{
  LayoutShard *s;

  g_return_val_if_fail (shard < layout->shards->len, 0);
  s = &g_array_index (layout->shards, LayoutShard, shard);
  return 8 + s->header_len + s->data_size;
}

guint64
cru_layout_get_total_data_size (CruLayout *layout)
{
  guint64 total = 0;

  for (guint i = 0; i < layout->tensors->len; i++)
    {
      const CruTensorInfo *t = layout->tensors->pdata[i];
      total += t->end - t->begin;
    }
  return total;
}

int
cru_layout_lookup (CruLayout *layout, const char *name)
{
  return (int) GPOINTER_TO_UINT (g_hash_table_lookup (layout->by_name, name)) - 1;
}

const char *
cru_layout_get_shard_header (CruLayout *layout, guint shard, gsize *length)
{
  const LayoutShard *s;

  g_return_val_if_fail (layout->finished && shard < layout->shards->len, NULL);
  s = &g_array_index (layout->shards, LayoutShard, shard);
  *length = s->header_len;
  return s->header;
}

/* Header of shard @shard (for the writer). */
static const LayoutShard *
layout_get_shard (CruLayout *layout, guint shard)
{
  return &g_array_index (layout->shards, LayoutShard, shard);
}

/* ---- writer ----------------------------------------------------------------------- */

typedef struct
{
  char   *path;
  char   *display_name;
  int     fd;          /* buffered */
  int     fd_direct;   /* O_DIRECT, or -1 */
  guint64 data_offset;
} WriterShard;

/* A converted span waiting for a writer thread. */
typedef struct
{
  guint8 *buf;        /* pool buffer; the data starts at buf + pre */
  gsize   pre;
  gsize   len;
  guint64 offset;     /* in the shard file */
  guint   shard;
  guint   index;      /* tensor */
} WriteJob;

struct _CruWriter
{
  CruLayout    *layout;
  char         *dir;
  WriterShard  *shards;
  guint         n_shards;
  guint64      *written;     /* bytes written per tensor (atomic) */
  gint          direct;      /* atomic: O_DIRECT still in use */

  GMutex        pool_lock;   /* everything below */
  GCond         pool_cond;   /* a buffer came back, or a job finished */
  GPtrArray    *pool;        /* free aligned buffers */
  guint         n_buffers;   /* allocated, free or in use */
  guint         in_flight;   /* jobs queued or being written */
  GError       *async_error; /* the first failed write-behind */
  GAsyncQueue  *jobs;        /* WriteJob*; a job with buf == NULL stops a thread */
  GThread      *threads[CRU_WRITE_THREADS];
};

static void writer_stop_threads (CruWriter *w);

void
cru_writer_free (CruWriter *w)
{
  if (w == NULL)
    return;
  writer_stop_threads (w);
  for (guint i = 0; i < w->n_shards; i++)
    {
      if (w->shards[i].fd >= 0)
        close (w->shards[i].fd);
      if (w->shards[i].fd_direct >= 0)
        close (w->shards[i].fd_direct);
      g_free (w->shards[i].path);
      g_free (w->shards[i].display_name);
    }
  g_free (w->shards);
  g_free (w->written);
  g_ptr_array_unref (w->pool);
  g_mutex_clear (&w->pool_lock);
  g_cond_clear (&w->pool_cond);
  g_clear_error (&w->async_error);
  g_free (w->dir);
  g_free (w);
}

gboolean
cru_writer_uses_direct_io (CruWriter *w)
{
  return g_atomic_int_get (&w->direct);
}

/* The write system call; tests replace it to inject faults (a disk that fills up in the middle
 * of a tensor) and exercise the real error path above it. */
static CruPwriteFunc writer_pwrite = pwrite;

void
_cru_writer_set_pwrite_func (CruPwriteFunc func)
{
  writer_pwrite = func ? func : pwrite;
}

static gboolean
pwrite_all (int fd, const void *buf, gsize n, guint64 offset, int *errsv)
{
  gsize done = 0;

  while (done < n)
    {
      ssize_t r = writer_pwrite (fd, (const char *) buf + done, n - done, (off_t) (offset + done));
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          *errsv = r < 0 ? errno : EIO;
          return FALSE;
        }
      done += (gsize) r;
    }
  return TRUE;
}

static void
set_write_error (CruWriter *w, WriterShard *shard, int errsv, GError **error)
{
  _cru_set_errno_error (error, errsv, _("writing"), shard->display_name, w->dir);
}

/* A free buffer; with @wait, blocks while CRU_WRITE_BUFFERS are in use (the writer threads
 * give them back). The bounce buffer of write_span does not wait: a writer thread must never
 * block on its own pool. */
static void *
pool_get (CruWriter *w, gboolean wait)
{
  void *buf = NULL;

  g_mutex_lock (&w->pool_lock);
  while (wait && w->pool->len == 0 && w->n_buffers >= CRU_WRITE_BUFFERS)
    g_cond_wait (&w->pool_cond, &w->pool_lock);
  if (w->pool->len > 0)
    buf = g_ptr_array_steal_index_fast (w->pool, w->pool->len - 1);
  else
    w->n_buffers++;
  g_mutex_unlock (&w->pool_lock);
  if (buf == NULL)
    buf = g_aligned_alloc (CRU_IO_BUFFER_SIZE, 1, CRU_IO_ALIGN);
  return buf;
}

static void
pool_put (CruWriter *w, void *buf)
{
  g_mutex_lock (&w->pool_lock);
  g_ptr_array_add (w->pool, buf);
  g_cond_broadcast (&w->pool_cond);
  g_mutex_unlock (&w->pool_lock);
}

static gboolean
write_buffered (CruWriter *w, WriterShard *shard, const guint8 *src, gsize n, guint64 off,
                GError **error)
{
  int errsv = 0;

  if (n > 0 && !pwrite_all (shard->fd, src, n, off, &errsv))
    {
      set_write_error (w, shard, errsv, error);
      return FALSE;
    }
  return TRUE;
}

/* Writes a span of one tensor at file offset @off: aligned blocks direct, the rest buffered. */
static gboolean
write_span (CruWriter *w, WriterShard *shard, const guint8 *src, gsize n, guint64 off,
            GError **error)
{
  guint64 a0 = (off + CRU_IO_ALIGN - 1) / CRU_IO_ALIGN * CRU_IO_ALIGN;
  guint64 a1 = (off + n) / CRU_IO_ALIGN * CRU_IO_ALIGN;
  const guint8 *mid;
  int errsv = 0;

  if (!g_atomic_int_get (&w->direct) || shard->fd_direct < 0 || a1 <= a0)
    return write_buffered (w, shard, src, n, off, error);

  if (!write_buffered (w, shard, src, a0 - off, off, error)
      || !write_buffered (w, shard, src + (a1 - off), off + n - a1, a1, error))
    return FALSE;

  mid = src + (a0 - off);
  if (((guintptr) mid % CRU_IO_ALIGN) == 0)
    {
      if (pwrite_all (shard->fd_direct, mid, a1 - a0, a0, &errsv))
        return TRUE;
    }
  else
    {
      void *bounce = pool_get (w, FALSE);
      for (guint64 pos = a0; pos < a1;)
        {
          gsize m = (gsize) MIN (a1 - pos, CRU_IO_BUFFER_SIZE);
          memcpy (bounce, src + (pos - off), m);
          if (!pwrite_all (shard->fd_direct, bounce, m, pos, &errsv))
            break;
          pos += m;
        }
      pool_put (w, bounce);
      if (errsv == 0)
        return TRUE;
    }
  if (errsv != EINVAL)
    {
      set_write_error (w, shard, errsv, error);
      return FALSE;
    }
  /* The filesystem accepted O_DIRECT at open but not for this write: go buffered for good. */
  g_atomic_int_set (&w->direct, FALSE);
  return write_buffered (w, shard, mid, a1 - a0, a0, error);
}

/* ---- write-behind ---- */

static gpointer
writer_thread (gpointer data)
{
  CruWriter *w = data;
  WriteJob *job;

  while ((job = g_async_queue_pop (w->jobs))->buf != NULL)
    {
      GError *error = NULL;
      gboolean failed_before;

      g_mutex_lock (&w->pool_lock);
      failed_before = w->async_error != NULL;
      g_mutex_unlock (&w->pool_lock);
      /* After a failure the rest is dropped: the output is abandoned anyway. */
      if (!failed_before)
        {
          if (write_span (w, &w->shards[job->shard], job->buf + job->pre, job->len, job->offset,
                          &error))
            __atomic_fetch_add (&w->written[job->index], (guint64) job->len, __ATOMIC_RELAXED);
        }
      g_mutex_lock (&w->pool_lock);
      if (error && w->async_error == NULL)
        w->async_error = g_steal_pointer (&error);
      g_ptr_array_add (w->pool, job->buf);
      w->in_flight--;
      g_cond_broadcast (&w->pool_cond);
      g_mutex_unlock (&w->pool_lock);
      g_clear_error (&error);
      g_free (job);
    }
  g_free (job);
  return NULL;
}

static void
writer_start_threads (CruWriter *w)
{
  w->jobs = g_async_queue_new ();
  for (guint i = 0; i < CRU_WRITE_THREADS; i++)
    w->threads[i] = g_thread_new ("crucible-writer", writer_thread, w);
}

/* Waits until every queued write is done; returns the first failure (a copy). */
static gboolean
writer_drain (CruWriter *w, GError **error)
{
  gboolean ok;

  g_mutex_lock (&w->pool_lock);
  while (w->in_flight > 0)
    g_cond_wait (&w->pool_cond, &w->pool_lock);
  ok = w->async_error == NULL;
  if (!ok)
    g_propagate_error (error, g_error_copy (w->async_error));
  g_mutex_unlock (&w->pool_lock);
  return ok;
}

static void
writer_stop_threads (CruWriter *w)
{
  if (w->jobs == NULL)
    return;
  writer_drain (w, NULL);
  for (guint i = 0; i < CRU_WRITE_THREADS; i++)
    if (w->threads[i])
      g_async_queue_push (w->jobs, g_new0 (WriteJob, 1));
  for (guint i = 0; i < CRU_WRITE_THREADS; i++)
    if (w->threads[i])
      g_thread_join (g_steal_pointer (&w->threads[i]));
  g_clear_pointer (&w->jobs, g_async_queue_unref);
}

/* The failure of an earlier write-behind, if any (a copy). */
static gboolean
writer_check_async (CruWriter *w, GError **error)
{
  gboolean ok;

  g_mutex_lock (&w->pool_lock);
  ok = w->async_error == NULL;
  if (!ok)
    g_propagate_error (error, g_error_copy (w->async_error));
  g_mutex_unlock (&w->pool_lock);
  return ok;
}

static void
writer_enqueue (CruWriter *w, guint8 *buf, gsize pre, gsize len, guint64 offset, guint shard,
                guint index)
{
  WriteJob *job = g_new (WriteJob, 1);

  *job = (WriteJob) { buf, pre, len, offset, shard, index };
  g_mutex_lock (&w->pool_lock);
  w->in_flight++;
  g_mutex_unlock (&w->pool_lock);
  g_async_queue_push (w->jobs, job);
}

static gboolean
preallocate (int fd, guint64 size, int *errsv)
{
  int r = posix_fallocate (fd, 0, (off_t) size);

  if (r == 0)
    return TRUE;
  if (r == ENOSPC || r == EDQUOT || r == EFBIG)
    {
      *errsv = r;
      return FALSE;
    }
  /* Not supported here: just set the size. */
  if (ftruncate (fd, (off_t) size) != 0)
    {
      *errsv = errno;
      return FALSE;
    }
  return TRUE;
}

static gint direct_io_enabled = -1;

void
cru_writer_set_direct_io_enabled (gboolean enabled)
{
  g_atomic_int_set (&direct_io_enabled, enabled ? 1 : 0);
}

static gboolean
direct_io_allowed (void)
{
  gint v = g_atomic_int_get (&direct_io_enabled);

  if (v < 0)
    {
      const char *env = g_getenv ("CRU_NO_DIRECT_IO");
      v = env && *env && strcmp (env, "0") != 0 ? 0 : 1;
      g_atomic_int_set (&direct_io_enabled, v);
    }
  return v;
}

CruWriter *
cru_writer_open (CruLayout *layout, const char *dir, GError **error)
{
  g_autoptr(CruWriter) w = NULL;
  gboolean direct = direct_io_allowed ();

  g_return_val_if_fail (layout->finished, NULL);

  w = g_new0 (CruWriter, 1);
  w->layout = layout;
  w->dir = g_strdup (dir);
  w->n_shards = layout->shards->len;
  w->shards = g_new0 (WriterShard, w->n_shards);
  w->written = g_new0 (guint64, layout->tensors->len);
  w->pool = g_ptr_array_new_with_free_func (g_aligned_free);
  g_mutex_init (&w->pool_lock);
  g_cond_init (&w->pool_cond);
  for (guint i = 0; i < w->n_shards; i++)
    w->shards[i].fd = w->shards[i].fd_direct = -1;

  for (guint i = 0; i < w->n_shards; i++)
    {
      WriterShard *shard = &w->shards[i];
      const LayoutShard *ls = layout_get_shard (layout, i);
      g_autofree char *name = cru_layout_get_shard_name (layout, i);
      guint8 prefix[8];
      guint64 len_le = GUINT64_TO_LE ((guint64) ls->header_len);
      int errsv = 0;

      shard->path = g_build_filename (dir, name, NULL);
      shard->display_name = _cru_display_name (shard->path);
      shard->data_offset = 8 + ls->header_len;
      shard->fd = g_open (shard->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (shard->fd < 0)
        {
          errsv = errno;
          if (errsv == EEXIST)
            g_set_error (error, CRU_ERROR, CRU_ERROR_EXISTS,
                         _("%s already exists; the output folder must be empty"),
                         shard->display_name);
          else
            _cru_set_errno_error (error, errsv, _("creating"), shard->display_name, dir);
          return NULL;
        }
      if (!preallocate (shard->fd, cru_layout_get_shard_size (layout, i), &errsv))
        {
          _cru_set_errno_error (error, errsv, _("reserving space for"), shard->display_name, dir);
          return NULL;
        }
      memcpy (prefix, &len_le, 8);
      if (!write_buffered (w, shard, prefix, 8, 0, error)
          || !write_buffered (w, shard, (const guint8 *) ls->header, ls->header_len, 8, error))
        return NULL;
      if (direct)
        {
          shard->fd_direct = g_open (shard->path, O_WRONLY | O_DIRECT | O_CLOEXEC, 0);
          if (shard->fd_direct < 0)
            direct = FALSE;   /* tmpfs and some network filesystems: EINVAL */
        }
    }
  w->direct = direct;
  writer_start_threads (w);
  return g_steal_pointer (&w);
}

static gboolean
check_range (CruWriter *w, guint index, guint64 byte_offset, guint64 n_bytes,
             const CruTensorInfo **t_out, GError **error)
{
  const CruTensorInfo *t;

  if (index >= w->layout->tensors->len)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED, _("No output tensor number %u"), index);
      return FALSE;
    }
  t = w->layout->tensors->pdata[index];
  if (byte_offset > t->end - t->begin || n_bytes > t->end - t->begin - byte_offset)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                   _("Write past the end of output tensor “%s”"), t->name);
      return FALSE;
    }
  *t_out = t;
  return TRUE;
}

gboolean
cru_writer_write (CruWriter *w, guint index, guint64 byte_offset, const void *data,
                  gsize n_bytes, GError **error)
{
  const CruTensorInfo *t;
  WriterShard *shard;

  if (!check_range (w, index, byte_offset, n_bytes, &t, error))
    return FALSE;
  shard = &w->shards[g_array_index (w->layout->shard_of, guint, index)];
  if (!write_span (w, shard, data, n_bytes, shard->data_offset + t->begin + byte_offset, error))
    return FALSE;
  __atomic_fetch_add (&w->written[index], (guint64) n_bytes, __ATOMIC_RELAXED);
  return TRUE;
}

gboolean
cru_writer_write_f32 (CruWriter *w, guint index, guint64 elem_offset, const float *src,
                      guint64 n, GError **error)
{
  const CruTensorInfo *t;
  WriterShard *shard;
  guint shard_index;
  gsize size;

  if (index >= w->layout->tensors->len)
    return check_range (w, index, 0, 0, &t, error);
  t = w->layout->tensors->pdata[index];
  size = cru_dtype_size (t->dtype);
  if (t->dtype != CRU_DTYPE_F32 && t->dtype != CRU_DTYPE_F16 && t->dtype != CRU_DTYPE_BF16
      && t->dtype != CRU_DTYPE_F64)
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_UNSUPPORTED,
                   _("Output tensor “%s” has dtype %s; only F32, F16, BF16 and F64 can be "
                     "written from f32"), t->name, cru_dtype_to_string (t->dtype));
      return FALSE;
    }
  if (elem_offset > t->numel || n > t->numel - elem_offset)
    return check_range (w, index, G_MAXUINT64, 0, &t, error);

  if (!writer_check_async (w, error))
    return FALSE;
  shard_index = g_array_index (w->layout->shard_of, guint, index);
  shard = &w->shards[shard_index];
  for (guint64 done = 0; done < n;)
    {
      guint64 off = shard->data_offset + t->begin + (elem_offset + done) * size;
      gsize pre = (gsize) (off % CRU_IO_ALIGN);  /* keeps file blocks on buffer blocks */
      gsize m = (gsize) MIN (n - done, (CRU_IO_BUFFER_SIZE - pre) / size);
      guint8 *buf = pool_get (w, TRUE);

      cru_convert_from_f32 (t->dtype, src + done, buf + pre, m);
      writer_enqueue (w, buf, pre, m * size, off, shard_index, index);
      done += m;
    }
  return TRUE;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static gboolean
write_index (CruWriter *w, GError **error)
{
  CruLayout *layout = w->layout;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autofree char *text = NULL;
  g_autofree char *path = g_build_filename (w->dir, "model.safetensors.index.json", NULL);
  g_autoptr(GError) local_error = NULL;

  for (guint i = 0; i < layout->tensors->len; i++)
    g_ptr_array_add (names, ((CruTensorInfo *) layout->tensors->pdata[i])->name);
  g_ptr_array_sort (names, compare_strings);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "total_size");
  json_builder_add_int_value (b, (gint64) cru_layout_get_total_data_size (layout));
  json_builder_end_object (b);
  json_builder_set_member_name (b, "weight_map");
  json_builder_begin_object (b);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *shard = cru_layout_get_shard_name (
          layout, cru_layout_get_shard (layout, (guint) cru_layout_lookup (layout, names->pdata[i])));
      json_builder_set_member_name (b, names->pdata[i]);
      json_builder_add_string_value (b, shard);
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  text = json_generator_to_data (gen, NULL);
  if (!g_file_set_contents (path, text, -1, &local_error))
    {
      g_set_error (error, CRU_ERROR, CRU_ERROR_IO, "%s", local_error->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
cru_writer_close (CruWriter *w, GError **error)
{
  gboolean ok = writer_drain (w, error);

  writer_stop_threads (w);
  for (guint i = 0; i < w->layout->tensors->len && ok; i++)
    {
      const CruTensorInfo *t = w->layout->tensors->pdata[i];
      guint64 written = __atomic_load_n (&w->written[i], __ATOMIC_RELAXED);
      if (written < t->end - t->begin)
        {
          g_set_error (error, CRU_ERROR, CRU_ERROR_FAILED,
                       _("Output tensor “%s” was not completely written (%" PRIu64
                         " of %" PRIu64 " bytes)"), t->name, written, t->end - t->begin);
          ok = FALSE;
        }
    }
  for (guint i = 0; i < w->n_shards && ok; i++)
    {
      WriterShard *shard = &w->shards[i];
      if (fdatasync (shard->fd) != 0)
        {
          set_write_error (w, shard, errno, error);
          ok = FALSE;
        }
    }
  for (guint i = 0; i < w->n_shards; i++)
    {
      WriterShard *shard = &w->shards[i];
      if (shard->fd_direct >= 0)
        close (shard->fd_direct);
      shard->fd_direct = -1;
      if (shard->fd >= 0 && close (shard->fd) != 0 && ok)
        {
          set_write_error (w, shard, errno, error);
          ok = FALSE;
        }
      shard->fd = -1;
    }
  if (ok && w->n_shards > 1)
    ok = write_index (w, error);
  return ok;
}
