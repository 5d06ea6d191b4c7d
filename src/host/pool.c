/*
 * pool.c - weft's worker pool: bounded priority queues, worker threads,
 * cancellation of queued jobs, room notification (host tier).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "host.h"

/* How long an idle worker looks for the next job before it sleeps. */
#define POOL_SPIN_NS 50000

/* About weft_pool_t: everything below mu is guarded by mu. Jobs are calls
 * (call->job_next links a queue); a queued call holds a reference owned by
 * the pool, dropped when its job has run or was removed. waiters lists the
 * loops that were refused for a full queue; the first job taken off the
 * queue tells them all (through their async handles) that there is room.
 * The dispatch policy is the scheduler's: the most urgent level, with a
 * fairness turn every WEFT_FAIR_PERIOD-th job (see src/core/sched.c). */
struct weft_pool_s {
  uv_mutex_t mu;
  uv_cond_t cond;
  uv_thread_t *threads;
  unsigned nthreads;
  weft_call_t *head[WEFT_NPRIO], *tail[WEFT_NPRIO];
  unsigned mask, fair_count, fair_cursor;
  size_t queued, running, queue_max;
  atomic_int ready; /* queued > 0 or stopping, readable without mu */
  int stopping, spinning; /* spinning: one idle worker is looking (0/1) */
  int spin_ok;            /* more than one CPU: spinning can pay */
  weft__spin spin;        /* the spinner's back-off */
  weft_pool_stats st;
  weft_loop_t *waiters;
};

static void notify_room_locked(weft_pool_t *p) {
  weft_loop_t *loop, *next;
  for (loop = p->waiters; loop; loop = next) {
    next = loop->pool_next;
    loop->pool_next = NULL;
    loop->space_waiting = 0;
    atomic_store(&loop->space_signal, 1);
    uv_async_send(&loop->async);
  }
  p->waiters = NULL;
}

static unsigned pick_level_locked(weft_pool_t *p) {
  unsigned i;
  if (++p->fair_count >= WEFT_FAIR_PERIOD) {
    p->fair_count = 0;
    for (i = 1; i <= WEFT_NPRIO; i++) {
      unsigned lvl = (p->fair_cursor + i) % WEFT_NPRIO;
      if (p->mask & (1u << lvl)) return p->fair_cursor = lvl;
    }
  }
  for (i = 0; !(p->mask & (1u << i)); i++) {
  }
  return i;
}

static weft_call_t *pop_locked(weft_pool_t *p) {
  unsigned lvl = pick_level_locked(p);
  weft_call_t *c = p->head[lvl];
  p->head[lvl] = c->job_next;
  if (p->head[lvl] == NULL) {
    p->tail[lvl] = NULL;
    p->mask &= ~(1u << lvl);
  }
  c->job_next = NULL;
  c->queued = 0;
  p->queued--;
  atomic_store_explicit(&p->ready, p->queued > 0, memory_order_relaxed);
  p->st.started[lvl]++;
  p->st.wait_ns[lvl] += uv_hrtime() - c->enq_ns;
  return c;
}

/* A job often follows at once (a script awaiting calls in a row): one
 * idle worker looks for it a little while before sleeping, since waking
 * a sleeping worker costs a futex call and a context switch per job
 * (weft__pool_submit does not signal for the job the spinner takes).
 * Called and returns with mu held. */
static void spin_locked(weft_pool_t *p) {
  p->spinning = 1;
  uv_mutex_unlock(&p->mu);
  weft__spin_wait(&p->ready, POOL_SPIN_NS);
  uv_mutex_lock(&p->mu);
  p->spinning = 0;
  weft__spin_note(&p->spin, p->queued > 0);
}

static void worker(void *arg) {
  weft_pool_t *p = arg;
  weft_call_t *c;
  uv_mutex_lock(&p->mu);
  for (;;) {
    if (!p->stopping && p->queued == 0 && !p->spinning && p->spin_ok &&
        weft__spin_due(&p->spin))
      spin_locked(p);
    while (!p->stopping && p->queued == 0) uv_cond_wait(&p->cond, &p->mu);
    if (p->queued == 0) break; /* stopping and drained */
    c = pop_locked(p);
    p->running++;
    if (p->waiters) notify_room_locked(p);
    uv_mutex_unlock(&p->mu);
    if (!weft_call_cancelled(c)) c->fn(c, c->ud);
    if (atomic_load(&c->state) == CALL_PENDING)
      weft_call_reject(c, "returned without completing the call");
    weft_call_unref(c);
    uv_mutex_lock(&p->mu);
    p->running--;
    p->st.done++;
  }
  uv_mutex_unlock(&p->mu);
}

int weft_pool_new(weft_pool_t **out, const weft_pool_opts *opts) {
  weft_pool_t *p;
  unsigned i, n = opts && opts->threads ? opts->threads : 0;
  int r;
  *out = NULL;
  if (n == 0) n = uv_available_parallelism();
  if (n == 0) n = 1;
  p = weft__valloc(NULL, 0, sizeof *p);
  if (p == NULL) return WEFT_ENOMEM;
  memset(p, 0, sizeof *p);
  atomic_init(&p->ready, 0);
  p->spin_ok = uv_available_parallelism() > 1;
  p->queue_max = opts && opts->queue_max ? opts->queue_max : 64 * (size_t)n;
  p->threads = weft__valloc(NULL, 0, n * sizeof *p->threads);
  if (p->threads == NULL) {
    weft__valloc(p, sizeof *p, 0);
    return WEFT_ENOMEM;
  }
  uv_mutex_init(&p->mu);
  uv_cond_init(&p->cond);
  for (i = 0; i < n; i++) {
    if ((r = uv_thread_create(&p->threads[i], worker, p)) != 0) {
      p->nthreads = i;
      weft_pool_free(p);
      return r;
    }
  }
  p->nthreads = n;
  *out = p;
  return 0;
}

/* Queued jobs are rejected, not silently dropped: their callers hear of
 * it through the normal completion path. */
void weft_pool_free(weft_pool_t *p) {
  unsigned i, lvl;
  weft_call_t *c, *next;
  if (p == NULL) return;
  uv_mutex_lock(&p->mu);
  p->stopping = 1;
  atomic_store_explicit(&p->ready, 1, memory_order_relaxed); /* wake spin */
  for (lvl = 0; lvl < WEFT_NPRIO; lvl++) {
    for (c = p->head[lvl]; c; c = next) {
      next = c->job_next;
      c->queued = 0;
      p->st.cancelled++;
      weft_call_reject(c, "the worker pool was shut down");
      weft_call_unref(c);
    }
    p->head[lvl] = p->tail[lvl] = NULL;
  }
  p->mask = 0;
  p->queued = 0;
  uv_cond_broadcast(&p->cond);
  uv_mutex_unlock(&p->mu);
  for (i = 0; i < p->nthreads; i++) uv_thread_join(&p->threads[i]);
  uv_cond_destroy(&p->cond);
  uv_mutex_destroy(&p->mu);
  weft__valloc(p->threads, (p->nthreads ? p->nthreads : 1) *
                               sizeof *p->threads, 0);
  weft__valloc(p, sizeof *p, 0);
}

int weft__pool_submit(weft_pool_t *p, weft_call_t *c) {
  unsigned lvl = (unsigned)c->prio < WEFT_NPRIO ? (unsigned)c->prio
                                                 : WEFT_PRIO_NORMAL;
  weft_loop_t *loop = c->loop;
  uv_mutex_lock(&p->mu);
  if (p->queued >= p->queue_max || p->stopping) {
    p->st.rejected_full++;
    loop->wait_pool = p;
    if (!loop->space_waiting) {
      loop->space_waiting = 1;
      loop->pool_next = p->waiters;
      p->waiters = loop;
    }
    uv_mutex_unlock(&p->mu);
    return WEFT_EFULL;
  }
  weft_call_ref(c); /* the pool's reference */
  c->queued = 1;
  c->job_next = NULL;
  c->enq_ns = uv_hrtime();
  if (p->tail[lvl])
    p->tail[lvl]->job_next = c;
  else
    p->head[lvl] = c;
  p->tail[lvl] = c;
  p->mask |= 1u << lvl;
  p->queued++;
  atomic_store_explicit(&p->ready, p->queued > 0, memory_order_relaxed);
  p->st.submitted++;
  if (!(p->spinning && p->queued == 1)) uv_cond_signal(&p->cond);
  uv_mutex_unlock(&p->mu);
  return 0;
}

int weft__pool_remove(weft_pool_t *p, weft_call_t *c) {
  weft_call_t **pp, *prev = NULL;
  unsigned lvl = (unsigned)c->prio < WEFT_NPRIO ? (unsigned)c->prio
                                                 : WEFT_PRIO_NORMAL;
  uv_mutex_lock(&p->mu);
  if (!c->queued) {
    uv_mutex_unlock(&p->mu);
    return 0;
  }
  for (pp = &p->head[lvl]; *pp != c; pp = &(*pp)->job_next) prev = *pp;
  *pp = c->job_next;
  if (p->tail[lvl] == c) p->tail[lvl] = prev;
  if (p->head[lvl] == NULL) p->mask &= ~(1u << lvl);
  c->queued = 0;
  c->job_next = NULL;
  p->queued--;
  atomic_store_explicit(&p->ready, p->queued > 0, memory_order_relaxed);
  p->st.cancelled++;
  if (p->waiters) notify_room_locked(p);
  uv_mutex_unlock(&p->mu);
  weft_call_unref(c); /* the pool's reference */
  return 1;
}

void weft__pool_forget_loop(weft_pool_t *p, weft_loop_t *loop) {
  weft_loop_t **pp;
  uv_mutex_lock(&p->mu);
  for (pp = &p->waiters; *pp; pp = &(*pp)->pool_next)
    if (*pp == loop) {
      *pp = loop->pool_next;
      break;
    }
  loop->pool_next = NULL;
  loop->space_waiting = 0;
  uv_mutex_unlock(&p->mu);
}

void weft_pool_get_stats(weft_pool_t *p, weft_pool_stats *out) {
  uv_mutex_lock(&p->mu);
  *out = p->st;
  out->threads = p->nthreads;
  out->queued = p->queued;
  out->running = p->running;
  out->queue_max = p->queue_max;
  uv_mutex_unlock(&p->mu);
}
