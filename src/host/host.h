/*
 * host.h - internal declarations of the host tier (libuv): the loop, host
 * calls and their cross-thread completion, the worker pool.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_HOST_H
#define WEFT_HOST_H

#include <stdatomic.h>
#include <uv.h>

#include "weft.h"

/* Brief spinning before sleeping, shared by an idle worker and an idle
 * loop (docs/architecture.md, "The data path of a pool call"): look at a
 * flag for up to a few tens of microseconds instead of paying for a
 * thread wake-up. About weft__spin: the back-off of one spinner. A hit
 * ends it; the second miss in a row and each later one skip the next 2,
 * 4, ... 64 looks, so where waits are long at most one look in 64 is
 * wasted. */
typedef struct weft__spin {
  unsigned misses, skip;
} weft__spin;

/* Whether to look this time (or skip it, counting the back-off down). */
static inline int weft__spin_due(weft__spin *sp) {
  if (sp->skip == 0) return 1;
  sp->skip--;
  return 0;
}

/* Records what a look found. */
static inline void weft__spin_note(weft__spin *sp, int hit) {
  if (hit) {
    sp->misses = 0;
    return;
  }
  if (sp->misses < 7) sp->misses++;
  sp->skip = (sp->misses > 1) << (sp->misses - 1);
}

/* Watches flag for up to ns nanoseconds, telling the CPU (and a
 * hyperthread sibling) that this thread only waits; reads the clock once
 * in 32 looks. Returns whether flag became non-zero. */
static inline int weft__spin_wait(atomic_int *flag, uint64_t ns) {
  uint64_t until = uv_hrtime() + ns;
  unsigned i;
  do {
    for (i = 0; i < 32; i++) {
      if (atomic_load_explicit(flag, memory_order_relaxed)) return 1;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
      __asm__ __volatile__("yield");
#endif
    }
  } while (uv_hrtime() < until);
  return 0;
}

/* About weft__closer: an I/O object of the loop (a socket, a server of
 * src/io) that the loop closes when it is freed, before anything else,
 * so that no handle outlives it. Listed by weft__loop_track until it
 * closes by itself (weft__loop_untrack; harmless twice). */
typedef struct weft__closer {
  struct weft__closer *next, **pprev;
  void (*close)(struct weft__closer *c);
} weft__closer;

/* About weft_loop_t: the scheduler plus the libuv loop that drives it.
 * - timer is armed for the scheduler's earliest deadline while the loop
 *   waits; running guards against re-entry.
 * - async is the one wake-up for everything other threads send: completed
 *   calls in the inbox (guarded by inbox_mu) and pool room (space_signal).
 *   It is referenced only while calls are in flight (inflight > 0), so a
 *   loop with nothing in flight can end.
 * - calls lists the calls started and not yet delivered (loop thread only),
 *   so freeing the loop can cancel them.
 * - space is settled when a pool that refused a submission has room again;
 *   tasks waiting to submit await it. pool_next links the loop into the
 *   pool's list of loops waiting for room (guarded by that pool's mu).
 *   While tasks wait for room, room_ref holds one count of inflight, so
 *   the loop stays alive even when none of its own calls is in the pool
 *   (the pool may be full of another loop's jobs).
 * - post_head/tail is the FIFO of posts from any thread (weft_loop_post),
 *   guarded by inbox_mu like the inbox and woken by the same async; the
 *   first post into an empty queue sends it (later ones ride on that
 *   wake-up), and inbox_ready is set for both queues. posts_closed
 *   (guarded by inbox_mu) refuses posts once weft_loop_free has begun.
 *   parked lists the channel sends waiting for room (loop thread only),
 *   so freeing the loop can cancel them.
 * - keep counts the holds of weft_loop_ref (loop thread only): async is
 *   referenced while inflight + keep > 0.
 * - A borrowed loop (owns_uv == 0) is run by the host; prepare and idle
 *   then run the scheduler from inside the host's uv_run. */
struct weft_loop_s {
  weft_sched_t sched;
  uv_loop_t own_uv;
  uv_loop_t *uv;
  uv_timer_t timer;
  uv_async_t async;
  uv_prepare_t prepare;
  uv_idle_t idle;
  int owns_uv, running, closing;
  uv_mutex_t inbox_mu;
  weft_call_t *inbox_head, *inbox_tail; /* guarded by inbox_mu */
  weft_post_t *post_head, *post_tail;   /* guarded by inbox_mu */
  int posts_closed;                     /* guarded by inbox_mu */
  weft_post_t *parked;                  /* loop thread only */
  size_t keep;                          /* loop thread only */
  atomic_int space_signal;
  atomic_int inbox_ready; /* the inbox is not empty: the loop may spin */
  size_t inflight;
  size_t pool_inflight; /* of which pool jobs: only those are spun for */
  int spin_ok;          /* more than one CPU: spinning can pay */
  weft__spin spin;      /* spin_for_inbox's back-off */
  weft_call_t *calls; /* started, undelivered; via call->loop_next/prev */
  weft_future_t space;
  weft_loop_t *pool_next;
  int space_waiting;     /* guarded by the pool's mu */
  int room_ref;          /* loop thread only */
  weft_pool_t *wait_pool; /* the pool it may be waiting on (loop thread) */
  weft_pool_t *pool;      /* weft_loop_set_pool's, borrowed (loop thread) */
  weft__closer *tracked;  /* open I/O objects (loop thread) */
  struct weft__http *http; /* src/io/http.c's curl multi, once made */
};

/* About weft_call_t: see weft.h. Fields by owner:
 * - refs, state: atomics. state moves once from CALL_PENDING to CALL_DONE
 *   (a completer won) or CALL_CANCELLED (the caller won); the CAS is the
 *   exactly-once guarantee. The completer writes result/error/status after
 *   winning and before pushing the call into the inbox, whose mutex
 *   publishes them to the loop thread.
 * - immutable after start: loop, pool, fn, ud, on_cancel, fini, kind,
 *   prio, timeout_ms, name, args.
 * - fini (internal calls, such as weft.fs's) releases ud when the last
 *   reference goes, on whichever thread drops it; err is the libuv code an
 *   internal job sets beside its rejection (written before completing).
 * - loop thread only: fut (settled when delivered), loop_next/prev,
 *   delivered.
 * - guarded by pool->mu: job_next, queued, enq_ns. */
enum { CALL_PENDING = 0, CALL_DONE = 1, CALL_CANCELLED = 2 };

struct weft_call_s {
  atomic_int refs;
  atomic_int state;
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_host_fn fn;
  weft_cancel_cb on_cancel;
  void (*fini)(void *ud);
  void *ud;
  int kind, prio, err;
  uint64_t timeout_ms;
  const char *name; /* stored after the struct */
  weft_value_t args;
  weft_value_t result;
  char *error; /* the rejection message */
  int status;  /* 0, or WEFT_ESCRIPT when rejected */
  weft_future_t fut;
  weft_call_t *inbox_next;
  weft_call_t *loop_next, *loop_prev;
  int delivered, started;
  weft_call_t *job_next;
  int queued;
  uint64_t enq_ns;
};

/* The C library's realloc/free with lua_Alloc's contract. */
void *weft__std_alloc(void *ud, void *p, size_t osize, size_t nsize);
/* The process-wide value allocator (thread-safe). */
void *weft__valloc(void *p, size_t osize, size_t nsize);

/* Creates a call with the caller's reference; args are moved in (left
 * nil). NULL on out of memory (args are then freed). */
weft_call_t *weft__call_new(weft_loop_t *loop, const char *name,
                            weft_host_fn fn, const weft_fn_opts *opts,
                            weft_pool_t *pool, weft_value_t *args);
/* Starts a call (loop thread): runs a sync or loop function now, or
 * submits a pool job. 0, or WEFT_EFULL when the pool's queue is full (the
 * loop's space future will settle when there is room; nothing started). */
int weft__call_start(weft_call_t *call);
/* The caller gives up (loop thread): returns 1 if it won over completion;
 * then a queued job is dropped, a started one is told (on_cancel). */
int weft__call_cancel(weft_call_t *call);
/* Drops the caller's reference and forgets the call (loop thread). */
void weft__call_release(weft_call_t *call);
/* Delivers the completed calls of the inbox (loop thread). */
void weft__loop_drain(weft_loop_t *loop);
void weft__loop_call_started(weft_loop_t *loop, weft_call_t *call);
void weft__loop_call_done(weft_loop_t *loop, weft_call_t *call);
/* The loop's open I/O objects (see weft__closer; loop thread). */
void weft__loop_track(weft_loop_t *loop, weft__closer *c);
void weft__loop_untrack(weft__closer *c);
/* Closes every tracked object (weft_loop_free does, first). */
void weft__loop_close_tracked(weft_loop_t *loop);
/* Runs the posts of a list taken from the queue, in order (loop thread;
 * post.c). */
void weft__posts_run(weft_post_t *p);
/* Refuses further posts and cancels the queued and parked ones (loop
 * thread, weft_loop_free). */
void weft__posts_close(weft_loop_t *loop);
/* Drops one count of inflight; unreferences async at the last one unless
 * weft_loop_ref holds it (loop thread). */
static inline void weft__loop_inflight_done(weft_loop_t *loop) {
  if (--loop->inflight == 0 && loop->keep == 0)
    uv_unref((uv_handle_t *)&loop->async);
}
/* Drops the room_ref count, if held (loop thread). */
void weft__loop_room_done(weft_loop_t *loop);

/* Pool internals. submit: 0 or WEFT_EFULL (then loop is registered to be
 * told when there is room). remove: 1 if the call was still queued. */
int weft__pool_submit(weft_pool_t *pool, weft_call_t *call);
int weft__pool_remove(weft_pool_t *pool, weft_call_t *call);
void weft__pool_forget_loop(weft_pool_t *pool, weft_loop_t *loop);

#endif /* WEFT_HOST_H */
