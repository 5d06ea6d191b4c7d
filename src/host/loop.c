/*
 * loop.c - the host loop: a core scheduler driven by libuv, owned or
 * borrowed, and the hooks for a foreign event loop (host tier). Posts
 * from other threads: post.c.
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "host.h"

/* Ready tasks resumed per step before libuv gets to poll for I/O: large
 * enough to amortise the poll, small enough that I/O is not starved by a
 * storm of yields. */
#define STEP_BUDGET 4096
/* How long an idle loop with pool jobs in flight looks for a completion
 * before it sleeps in the poll (see spin_for_inbox). */
#define LOOP_SPIN_NS 50000

void *weft__std_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, nsize);
}

static void on_async(uv_async_t *h) {
  weft__loop_drain(h->data);
  weft_loop_wake(h->data); /* a borrowed loop must not end with tasks ready */
}

static void on_timer(uv_timer_t *h) {
  (void)h; /* waking up is all: the scheduler fires its own timers */
}

/* The wake-up of weft_loop_run's wait. libuv before 1.45 runs due timers
 * before it polls in UV_RUN_ONCE: a deadline that passed meanwhile (the
 * clock moved on since the timer was started) fires first and leaves the
 * poll blocking with no deadline, until some unrelated event. Stopping
 * the loop makes that poll return at once (later libuvs poll first, and
 * the stop only ends that uv_run). Not for a borrowed loop's prepare
 * timer: that would stop the host's uv_run. */
static void on_wait_timer(uv_timer_t *h) {
  uv_stop(h->loop);
}

static void on_idle(uv_idle_t *h) {
  (void)h; /* its being active keeps the poll from blocking */
}

/* A borrowed loop runs the scheduler before each poll; the idle handle
 * keeps the poll from blocking while tasks are ready, the timer wakes it
 * for the next deadline. */
static void on_prepare(uv_prepare_t *h) {
  weft_loop_t *loop = h->data;
  uint64_t due, now;
  weft_loop_update_time(loop);
  weft_sched_run(&loop->sched, STEP_BUDGET);
  if (weft_sched_has_ready(&loop->sched))
    uv_idle_start(&loop->idle, on_idle);
  else
    uv_idle_stop(&loop->idle);
  if (weft_sched_next_due(&loop->sched, &due) == 0) {
    now = weft_sched_now(&loop->sched);
    uv_timer_start(&loop->timer, on_timer, due > now ? due - now : 0, 0);
  } else {
    uv_timer_stop(&loop->timer);
  }
}

static int init(weft_loop_t *loop, uv_loop_t *uv) {
  int r;
  loop->uv = uv;
  if ((r = uv_async_init(uv, &loop->async, on_async)) != 0) return r;
  loop->async.data = loop;
  uv_unref((uv_handle_t *)&loop->async); /* referenced while calls fly */
  uv_mutex_init(&loop->inbox_mu);
  uv_timer_init(uv, &loop->timer);
  uv_prepare_init(uv, &loop->prepare);
  uv_idle_init(uv, &loop->idle);
  loop->prepare.data = loop;
  if (!loop->owns_uv) {
    uv_prepare_start(&loop->prepare, on_prepare);
    uv_unref((uv_handle_t *)&loop->prepare);
  }
  atomic_init(&loop->space_signal, 0);
  atomic_init(&loop->inbox_ready, 0);
  loop->spin_ok = uv_available_parallelism() > 1;
  weft_future_init(&loop->space);
  weft_loop_update_time(loop);
  return 0;
}

static int create(weft_loop_t **out, uv_loop_t *borrowed, weft_alloc_fn alloc,
                  void *ud) {
  weft_loop_t *loop;
  int r;
  if (out == NULL) return WEFT_EINVAL;
  *out = NULL;
  if (alloc == NULL) alloc = weft__std_alloc;
  loop = alloc(ud, NULL, 0, sizeof *loop);
  if (loop == NULL) return WEFT_ENOMEM;
  memset(loop, 0, sizeof *loop);
  weft_sched_init(&loop->sched, alloc, ud);
  loop->owns_uv = borrowed == NULL;
  if (loop->owns_uv && (r = uv_loop_init(&loop->own_uv)) != 0) {
    alloc(ud, loop, sizeof *loop, 0);
    return r;
  }
  if ((r = init(loop, borrowed ? borrowed : &loop->own_uv)) != 0) {
    if (loop->owns_uv) uv_loop_close(&loop->own_uv);
    alloc(ud, loop, sizeof *loop, 0);
    return r;
  }
  *out = loop;
  return 0;
}

int weft_loop_new(weft_loop_t **out, weft_alloc_fn alloc, void *ud) {
  return create(out, NULL, alloc, ud);
}

int weft_loop_new_borrowed(weft_loop_t **out, void *uv_loop,
                           weft_alloc_fn alloc, void *ud) {
  if (uv_loop == NULL) return WEFT_EINVAL;
  return create(out, uv_loop, alloc, ud);
}

static void on_closed(uv_handle_t *h) {
  (*(int *)h->data)++;
}

/* Calls in flight are cancelled; those already completed by another
 * thread are waited for (their completion is on its way to the inbox),
 * so no thread touches the loop once it is freed. */
static void cancel_calls(weft_loop_t *loop) {
  weft_call_t *c, *next;
  loop->closing = 1;
  for (c = loop->calls; c; c = next) { /* a completed one stays listed */
    next = c->loop_next;
    weft__call_cancel(c);
  }
  if (loop->wait_pool) weft__pool_forget_loop(loop->wait_pool, loop);
  weft__loop_room_done(loop); /* no room signal will come now */
  while (loop->inflight > 0) {
    uv_run(loop->uv, UV_RUN_ONCE);
    weft__loop_drain(loop);
  }
}

int weft_loop_free(weft_loop_t *loop) {
  weft_alloc_fn alloc;
  void *ud;
  int closed;
  if (loop == NULL) return WEFT_EINVAL;
  if (loop->running) return WEFT_ESTATE;
  weft__loop_close_tracked(loop); /* open sockets and servers */
  weft__posts_close(loop); /* first: a cancelled post may release a call */
  cancel_calls(loop);
  weft__loop_drain(loop);
  closed = 0;
  loop->async.data = loop->timer.data = &closed;
  loop->prepare.data = loop->idle.data = &closed;
  uv_close((uv_handle_t *)&loop->async, on_closed);
  uv_close((uv_handle_t *)&loop->timer, on_closed);
  uv_close((uv_handle_t *)&loop->prepare, on_closed);
  uv_close((uv_handle_t *)&loop->idle, on_closed);
  /* libuv touches a closing handle until its close callback has run, and
   * the handles live in *loop: run the uv loop (ours or the host's) until
   * all four callbacks ran. */
  while (closed < 4) uv_run(loop->uv, UV_RUN_NOWAIT);
  if (loop->owns_uv) {
    /* Requests still in libuv's hands (a lookup, a closing socket of an
     * I/O module) end before their memory and the loop go. */
    uv_run(loop->uv, UV_RUN_DEFAULT);
    uv_loop_close(loop->uv);
  }
  uv_mutex_destroy(&loop->inbox_mu);
  weft_sched_close(&loop->sched);
  alloc = loop->sched.alloc;
  ud = loop->sched.alloc_ud;
  alloc(ud, loop, sizeof *loop, 0);
  return 0;
}

weft_sched_t *weft_loop_sched(weft_loop_t *loop) { return &loop->sched; }

void *weft_loop_uv(weft_loop_t *loop) { return loop->uv; }

void weft_loop_update_time(weft_loop_t *loop) {
  uv_update_time(loop->uv);
  weft_sched_set_time(&loop->sched, uv_now(loop->uv));
}

/* With pool jobs in flight and nothing else to do, a completion often
 * comes within microseconds (a short job): look for it a little while
 * before sleeping in the poll, which costs a wake-up and a context switch.
 * With a single CPU the worker needs the CPU the spin would hold: no
 * spinning. Returns whether the inbox has something. */
static int spin_for_inbox(weft_loop_t *loop) {
  int hit;
  if (atomic_load_explicit(&loop->inbox_ready, memory_order_relaxed))
    return 1; /* arrived meanwhile: not a sign that spinning pays */
  if (!loop->spin_ok || loop->pool_inflight == 0 ||
      !weft__spin_due(&loop->spin))
    return 0;
  hit = weft__spin_wait(&loop->inbox_ready, LOOP_SPIN_NS);
  weft__spin_note(&loop->spin, hit);
  return hit;
}

/* One wait for I/O, a completion or the next deadline. Returns 0 when
 * nothing at all can happen any more. */
static int wait_step(weft_loop_t *loop) {
  uint64_t due, now;
  if (weft_sched_has_ready(&loop->sched)) {
    uv_run(loop->uv, UV_RUN_NOWAIT);
    return 1;
  }
  if (weft_sched_next_due(&loop->sched, &due) == 0) {
    weft_loop_update_time(loop);
    now = weft_sched_now(&loop->sched);
    uv_timer_start(&loop->timer, on_wait_timer, due > now ? due - now : 0,
                   0);
    uv_run(loop->uv, UV_RUN_ONCE);
    uv_timer_stop(&loop->timer);
    return 1;
  }
  if (!uv_loop_alive(loop->uv)) {
    /* An unreferenced async is not polled: posts that came since the
     * last wake-up still run before the loop ends. */
    if (!atomic_load_explicit(&loop->inbox_ready, memory_order_relaxed))
      return 0;
    weft__loop_drain(loop);
    return 1;
  }
  if (loop->inflight > 0 && spin_for_inbox(loop)) {
    weft__loop_drain(loop); /* the async wake-up still comes: harmless */
    uv_run(loop->uv, UV_RUN_NOWAIT);
    return 1;
  }
  uv_run(loop->uv, UV_RUN_ONCE);
  return 1;
}

int weft_loop_run(weft_loop_t *loop) {
  weft_stats_t st;
  if (loop == NULL) return WEFT_EINVAL;
  if (loop->running) return WEFT_ESTATE;
  loop->running = 1;
  do {
    weft_loop_update_time(loop);
    weft_sched_run(&loop->sched, STEP_BUDGET);
  } while (wait_step(loop));
  loop->running = 0;
  weft_sched_stats(&loop->sched, &st);
  return (int)st.live;
}

void weft_loop_wake(weft_loop_t *loop) {
  if (!loop->owns_uv && weft_sched_has_ready(&loop->sched))
    uv_idle_start(&loop->idle, on_idle);
}

int weft_loop_backend_fd(weft_loop_t *loop) {
  return uv_backend_fd(loop->uv);
}

int weft_loop_timeout(weft_loop_t *loop) {
  uint64_t due, now;
  int t;
  if (weft_sched_has_ready(&loop->sched)) return 0;
  /* uv_backend_timeout is 0 when libuv has no active, referenced handle
   * (say, a task only sleeps): that means nothing of libuv's bounds the
   * wait, not that work is ready. */
  t = uv_loop_alive(loop->uv) ? uv_backend_timeout(loop->uv) : -1;
  if (weft_sched_next_due(&loop->sched, &due) == 0) {
    weft_loop_update_time(loop);
    now = weft_sched_now(&loop->sched);
    due = due > now ? due - now : 0;
    if (due > 0x7fffffff) due = 0x7fffffff;
    if (t < 0 || (uint64_t)t > due) t = (int)due;
  }
  return t;
}

int weft_loop_run_nowait(weft_loop_t *loop) {
  weft_stats_t st;
  if (loop->running) return WEFT_ESTATE;
  loop->running = 1;
  uv_run(loop->uv, UV_RUN_NOWAIT);
  weft_loop_update_time(loop);
  weft_sched_run(&loop->sched, STEP_BUDGET);
  loop->running = 0;
  weft_sched_stats(&loop->sched, &st);
  return (int)st.live;
}
