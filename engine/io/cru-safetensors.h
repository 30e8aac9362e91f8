/* cru-safetensors.h — validated safetensors reading (headers only; data by pread) and
 * sharded writing at precomputed offsets.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>
#include "cru-dtype.h"

G_BEGIN_DECLS

#define CRU_MAX_DIMS 8
#define CRU_SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)
#define CRU_DEFAULT_SHARD_SIZE     (5000000000ull) /* transformers' "5GB" */

typedef struct {
  char    *name;
  CruDType dtype;
  int      ndim;
  int64_t  shape[CRU_MAX_DIMS];
  guint64  numel;
  guint64  begin;   /* byte offsets relative to the start of the data section */
  guint64  end;
} CruTensorInfo;

/* ---- reading ---------------------------------------------------------------------- */

typedef struct _CruSafetensors CruSafetensors;

/* Opens and fully validates the header (see issue 2). Errors name the file and the problem. */
CruSafetensors      *cru_safetensors_open          (const char *path, GError **error);
/* Validates a header held in memory; @file_size is the size the file would have.
 * @display_name is used in error messages. (The fuzz target calls this.) */
CruSafetensors      *cru_safetensors_parse_header  (const char *display_name,
                                                    const guint8 *bytes, gsize n_bytes,
                                                    guint64 file_size, GError **error);
void                 cru_safetensors_free          (CruSafetensors *st);
const char          *cru_safetensors_get_path      (CruSafetensors *st);
guint64              cru_safetensors_get_file_size (CruSafetensors *st);
guint64              cru_safetensors_get_data_offset (CruSafetensors *st); /* 8 + header length */
guint                cru_safetensors_get_n_tensors (CruSafetensors *st);
const CruTensorInfo *cru_safetensors_get_tensor    (CruSafetensors *st, guint index);
const CruTensorInfo *cru_safetensors_lookup        (CruSafetensors *st, const char *name);
/* __metadata__ (string → string), never NULL. */
GHashTable          *cru_safetensors_get_metadata  (CruSafetensors *st);

/* pread @n_bytes of raw tensor data starting @byte_offset bytes into the tensor.
 * Thread-safe. A short read (file changed on disk) is an error naming file and tensor. */
gboolean cru_safetensors_read_raw (CruSafetensors *st, const CruTensorInfo *t,
                                   guint64 byte_offset, void *dst, gsize n_bytes,
                                   GError **error);
/* Reads elements [elem_offset, elem_offset + n) converted to f32 into @dst (n floats),
 * with no scratch buffer (narrow types are read into the tail of @dst and widened in place).
 * Thread-safe. */
gboolean cru_safetensors_read_f32 (CruSafetensors *st, const CruTensorInfo *t,
                                   guint64 elem_offset, guint64 n, float *dst,
                                   GError **error);
/* Hint the kernel that the tensor will be read soon (posix_fadvise WILLNEED). */
void     cru_safetensors_prefetch (CruSafetensors *st, const CruTensorInfo *t);
/* Fails when the file was modified, truncated, replaced or removed since it was opened (a
 * run checks its inputs before it publishes a result computed from them). */
gboolean cru_safetensors_check_unchanged (CruSafetensors *st, GError **error);

/* ---- writing ---------------------------------------------------------------------- */

/* The layout of an output model, computed before any data is written: every tensor's
 * shard and offset. Tensors are placed in the order added (callers sort by name), a new
 * shard starts when the next tensor would make the current one exceed @max_shard_bytes. */
typedef struct _CruLayout CruLayout;

CruLayout   *cru_layout_new            (guint64 max_shard_bytes);
void         cru_layout_free           (CruLayout *layout);
/* Returns the index of the added tensor. */
guint        cru_layout_add            (CruLayout *layout, const char *name, CruDType dtype,
                                        int ndim, const int64_t *shape);
/* Metadata for every shard's __metadata__ ("format": "pt" is always set). */
void         cru_layout_set_metadata   (CruLayout *layout, const char *key, const char *value);
/* Assigns shards and offsets; fails on duplicate names or empty layouts. */
gboolean     cru_layout_finish         (CruLayout *layout, GError **error);
guint        cru_layout_get_n_tensors  (CruLayout *layout);
const CruTensorInfo *cru_layout_get_tensor (CruLayout *layout, guint index);
guint        cru_layout_get_shard      (CruLayout *layout, guint index);
guint        cru_layout_get_n_shards   (CruLayout *layout);
/* "model.safetensors" when there is one shard, else "model-00001-of-00003.safetensors". */
char        *cru_layout_get_shard_name (CruLayout *layout, guint shard);
guint64      cru_layout_get_shard_size (CruLayout *layout, guint shard); /* whole file bytes */
guint64      cru_layout_get_total_data_size (CruLayout *layout);        /* index total_size */
/* The JSON header of shard @shard exactly as the writer writes it after the 8-byte length
 * (padded to a multiple of 8): @length bytes, not NUL-terminated. */
const char  *cru_layout_get_shard_header (CruLayout *layout, guint shard, gsize *length);
int          cru_layout_lookup         (CruLayout *layout, const char *name); /* -1 if absent */

/* Writes the files of a layout into @dir (an existing, empty folder — normally the temporary
 * folder of a CruOutputDir). All headers are written on open, data lands at its offsets in any
 * order, from any thread. O_DIRECT where the filesystem allows, buffered otherwise. */
typedef struct _CruWriter CruWriter;

/* The most converted output a writer holds waiting for the disk (its whole buffer pool):
 * CRU_WRITER_N_BUFFERS aligned buffers of CRU_WRITER_BUFFER_SIZE, allocated as needed and
 * reused. A buffer's pages are touched only as far as the pieces written through it. */
#define CRU_WRITER_BUFFER_SIZE  (4u << 20)
#define CRU_WRITER_N_BUFFERS    8u
#define CRU_WRITER_BUFFER_BYTES (CRU_WRITER_N_BUFFERS * CRU_WRITER_BUFFER_SIZE)

CruWriter *cru_writer_open   (CruLayout *layout, const char *dir, GError **error);
/* Writes @n_bytes of tensor @index's data at @byte_offset into the tensor. Thread-safe. */
gboolean   cru_writer_write  (CruWriter *w, guint index, guint64 byte_offset,
                              const void *data, gsize n_bytes, GError **error);
/* Converts @n f32 values to the tensor's dtype and queues them for writing at element
 * @elem_offset (write-behind: the writer's threads write while the caller goes on). Blocks
 * while CRU_WRITER_BUFFER_BYTES of converted data wait for the disk. A failed write makes
 * the next call and cru_writer_close fail. Thread-safe. */
gboolean   cru_writer_write_f32 (CruWriter *w, guint index, guint64 elem_offset,
                                 const float *src, guint64 n, GError **error);
/* Flushes, fsyncs, writes model.safetensors.index.json when there are several shards,
 * checks every byte of every tensor was written. Closes the files but does not free @w:
 * call cru_writer_free afterwards (g_autoptr does). @layout must outlive @w. */
gboolean   cru_writer_close  (CruWriter *w, GError **error);
/* Closes without checks (after an error or a cancel). */
void       cru_writer_free   (CruWriter *w);
gboolean   cru_writer_uses_direct_io (CruWriter *w);
/* Allows or forbids O_DIRECT for writers opened afterwards (default: allowed; the environment
 * variable CRU_NO_DIRECT_IO=1 forbids it). Tests use it to exercise the buffered path where
 * the filesystem (tmpfs on Linux ≥ 6.6) accepts O_DIRECT. */
void       cru_writer_set_direct_io_enabled (gboolean enabled);

/* ---- output folders --------------------------------------------------------------- */

/* An output folder that appears only when complete: work happens in a temporary folder
 * beside @target (".<name>.crucible-tmp-XXXXXX"), renamed into place by commit.
 * An existing @target is refused unless @overwrite; then it is replaced only at commit. */
typedef struct _CruOutputDir CruOutputDir;

CruOutputDir *cru_output_dir_begin   (const char *target, gboolean overwrite, GError **error);
const char   *cru_output_dir_get_tmp_path (CruOutputDir *od);
const char   *cru_output_dir_get_target   (CruOutputDir *od);
gboolean      cru_output_dir_commit  (CruOutputDir *od, GError **error);
/* Removes the temporary folder; the target is untouched. Also what freeing an uncommitted
 * one does. */
void          cru_output_dir_abort   (CruOutputDir *od);
void          cru_output_dir_free    (CruOutputDir *od);
/* Like abort, but returns at once: the temporary folder is renamed out of the way and deleted
 * by a background thread (freeing the blocks of a large partial model can take seconds).
 * Cancelling uses it so that a run stops within 200 ms. */
void          cru_output_dir_discard (CruOutputDir *od);
/* Waits until every discarded folder is deleted (before the process exits). */
void          cru_output_dir_wait_discarded (void);
/* Leftovers of killed runs beside @target (paths): temporary folders no live run holds, and
 * old models an interrupted overwrite moved aside. */
GPtrArray    *cru_output_dir_find_stale  (const char *target);
/* Removes those leftovers — except that an old model moved aside when the target is missing
 * is put back as the target — and returns how many it handled. cru_output_dir_begin calls it. */
guint         cru_output_dir_clean_stale (const char *target);
/* When @error says the disk is full, replaces it with a message naming the folder that
 * receives @target, the @bytes_needed and the space free there; returns whether it did. */
gboolean      cru_output_dir_explain_no_space (const char *target, guint64 bytes_needed,
                                               GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruSafetensors, cru_safetensors_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruLayout, cru_layout_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruWriter, cru_writer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CruOutputDir, cru_output_dir_free)

G_END_DECLS
