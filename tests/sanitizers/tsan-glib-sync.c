/* tsan-glib-sync.c — GMutex and GCond on top of pthreads, for ThreadSanitizer builds only.
 *
 * GLib implements GMutex and GCond with raw futex system calls on Linux, which
 * ThreadSanitizer cannot see: every buffer handed from one worker to another under a
 * GMutex looks like a data race. Linked into the test programs of a -Db_sanitize=thread
 * build (tests/meson.build), these definitions take the place of GLib's for our own code,
 * so the locking it does is visible and only real races are reported. GLib's internal locks
 * keep GLib's implementation; their data is not instrumented anyway. GAsyncQueue locks
 * inside GLib, so it is replaced too.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t *
mutex_impl (GMutex *mutex)
{
  pthread_mutex_t *impl = g_atomic_pointer_get (&mutex->p);

  if (impl == NULL)
    {
      impl = malloc (sizeof (pthread_mutex_t));
      pthread_mutex_init (impl, NULL);
      if (!g_atomic_pointer_compare_and_exchange (&mutex->p, NULL, impl))
        {
          pthread_mutex_destroy (impl);
          free (impl);
          impl = g_atomic_pointer_get (&mutex->p);
        }
    }
  return impl;
}

void
g_mutex_init (GMutex *mutex)
{
  mutex->p = NULL;
  mutex_impl (mutex);
}

void
g_mutex_clear (GMutex *mutex)
{
  pthread_mutex_t *impl = mutex->p;

  if (impl)
    {
      pthread_mutex_destroy (impl);
      free (impl);
    }
  mutex->p = NULL;
}

void
g_mutex_lock (GMutex *mutex)
{
  pthread_mutex_lock (mutex_impl (mutex));
}

void
g_mutex_unlock (GMutex *mutex)
{
  pthread_mutex_unlock (mutex_impl (mutex));
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  return pthread_mutex_trylock (mutex_impl (mutex)) == 0;
}

static pthread_cond_t *
cond_impl (GCond *cond)
{
  pthread_cond_t *impl = g_atomic_pointer_get (&cond->p);

  if (impl == NULL)
    {
      pthread_condattr_t attr;

      impl = malloc (sizeof (pthread_cond_t));
      pthread_condattr_init (&attr);
      pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
      pthread_cond_init (impl, &attr);
      pthread_condattr_destroy (&attr);
      if (!g_atomic_pointer_compare_and_exchange (&cond->p, NULL, impl))
        {
          pthread_cond_destroy (impl);
          free (impl);
          impl = g_atomic_pointer_get (&cond->p);
        }
    }
  return impl;
}

void
g_cond_init (GCond *cond)
{
  cond->p = NULL;
  cond_impl (cond);
}

void
g_cond_clear (GCond *cond)
{
  pthread_cond_t *impl = cond->p;

  if (impl)
    {
      pthread_cond_destroy (impl);
      free (impl);
    }
  cond->p = NULL;
}

void
g_cond_wait (GCond *cond, GMutex *mutex)
{
  pthread_cond_wait (cond_impl (cond), mutex_impl (mutex));
}

gboolean
g_cond_wait_until (GCond *cond, GMutex *mutex, gint64 end_time)
{
  struct timespec ts = { end_time / G_USEC_PER_SEC, (end_time % G_USEC_PER_SEC) * 1000 };

  return pthread_cond_timedwait (cond_impl (cond), mutex_impl (mutex), &ts) == 0;
}

void
g_cond_signal (GCond *cond)
{
  pthread_cond_signal (cond_impl (cond));
}

void
g_cond_broadcast (GCond *cond)
{
  pthread_cond_broadcast (cond_impl (cond));
}

/* ---- GAsyncQueue: a pthread-based one, since GLib's locks its own queue internally ----
 * Only what Crucible uses: new, new_full, ref, unref, push, push_front, pop, try_pop,
 * timeout_pop, length. */

struct _GAsyncQueue
{
  pthread_mutex_t lock;
  pthread_cond_t  cond;
  GQueue          items;
  GDestroyNotify  free_func;
  gint            ref_count;
};

GAsyncQueue *
g_async_queue_new_full (GDestroyNotify item_free_func)
{
  GAsyncQueue *q = g_new0 (GAsyncQueue, 1);
  pthread_condattr_t attr;

  pthread_mutex_init (&q->lock, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&q->cond, &attr);
  pthread_condattr_destroy (&attr);
  g_queue_init (&q->items);
  q->free_func = item_free_func;
  q->ref_count = 1;
  return q;
}

GAsyncQueue *
g_async_queue_new (void)
{
  return g_async_queue_new_full (NULL);
}

GAsyncQueue *
g_async_queue_ref (GAsyncQueue *queue)
{
  g_atomic_int_inc (&queue->ref_count);
  return queue;
}

void
g_async_queue_unref (GAsyncQueue *queue)
{
  if (!g_atomic_int_dec_and_test (&queue->ref_count))
    return;
  if (queue->free_func)
    g_queue_foreach (&queue->items, (GFunc) (void (*) (void)) queue->free_func, NULL);
  g_queue_clear (&queue->items);
  pthread_cond_destroy (&queue->cond);
  pthread_mutex_destroy (&queue->lock);
  g_free (queue);
}

static void
push (GAsyncQueue *queue, gpointer data, gboolean front)
{
  g_return_if_fail (data != NULL);
  pthread_mutex_lock (&queue->lock);
  if (front)
    g_queue_push_tail (&queue->items, data);
  else
    g_queue_push_head (&queue->items, data);
  pthread_cond_signal (&queue->cond);
  pthread_mutex_unlock (&queue->lock);
}

void
g_async_queue_push (GAsyncQueue *queue, gpointer data)
{
  push (queue, data, FALSE);
}

void
g_async_queue_push_front (GAsyncQueue *queue, gpointer data)
{
  push (queue, data, TRUE);
}

/* @end_time: monotonic microseconds, -1 to wait for ever, 0 not to wait. */
static gpointer
pop (GAsyncQueue *queue, gint64 end_time)
{
  gpointer data = NULL;

  pthread_mutex_lock (&queue->lock);
  while (g_queue_is_empty (&queue->items) && end_time != 0)
    {
      if (end_time < 0)
        pthread_cond_wait (&queue->cond, &queue->lock);
      else
        {
          struct timespec ts = { end_time / G_USEC_PER_SEC, (end_time % G_USEC_PER_SEC) * 1000 };
          if (pthread_cond_timedwait (&queue->cond, &queue->lock, &ts) != 0)
            break;
        }
    }
  if (!g_queue_is_empty (&queue->items))
    data = g_queue_pop_tail (&queue->items);
  pthread_mutex_unlock (&queue->lock);
  return data;
}

gpointer
g_async_queue_pop (GAsyncQueue *queue)
{
  return pop (queue, -1);
}

gpointer
g_async_queue_try_pop (GAsyncQueue *queue)
{
  return pop (queue, 0);
}

gpointer
g_async_queue_timeout_pop (GAsyncQueue *queue, guint64 timeout)
{
  return pop (queue, g_get_monotonic_time () + (gint64) timeout);
}

gint
g_async_queue_length (GAsyncQueue *queue)
{
  gint n;

  pthread_mutex_lock (&queue->lock);
  n = (gint) g_queue_get_length (&queue->items);
  pthread_mutex_unlock (&queue->lock);
  return n;
}
