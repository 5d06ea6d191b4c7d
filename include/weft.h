/*
 * weft.h - the public C API of weft: errors, allocator, scheduler, futures,
 * tasks, timers, channels, semaphores, groups (core tier) and the loop
 * (host tier, on libuv).
 * SPDX-License-Identifier: MIT
 *
 * About threads: every function is for the thread that owns the scheduler
 * (the loop thread) unless its comment says "Threads: any."
 *
 * About memory: core objects are caller-allocated and embeddable
 * (weft_timer_t t; weft_timer_init(s, &t);) so the embedded tier needs no
 * heap. What the core does allocate (the timer heap, channel buffers) goes
 * through the scheduler's allocator, which has lua_Alloc's contract.
 *
 * About the embedded tier (WEFT_EMBEDDED=1, see weft_conf.h): the same
 * core with no allocator at all. The timer heap is a fixed array, channel
 * buffers come from the application (weft_chan_init_buf), a capacity
 * spent is WEFT_EFULL, and it adds ISR-safe signals and a run loop over a
 * port (src/core/port.h). docs/embedded.md has the details.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>

#include "weft_conf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* About the version: WEFT_VERSION_MAJOR, _MINOR, _PATCH and
 * WEFT_VERSION_STRING ("0.1.0") are in weft_version.h, which CMake
 * generates from project(VERSION) in CMakeLists.txt. The embedded tier
 * builds src/core with no generated file (one compiler command per file,
 * docs/embedded.md), so it has neither the macros nor weft_version. */
#if !WEFT_EMBEDDED
#include "weft_version.h"

/* The version of the library linked in: WEFT_VERSION_STRING as weft was
 * built. Unlike the macros, it tells a program which libweft.so it runs
 * with. A static string. Threads: any. */
WEFT_API const char *weft_version(void);
#endif

/* ---------------------------------------------------------------- errors */

/* Synchronous calls return 0 on success or a negative code. Codes from
 * libuv (negated errno values, above -4096) pass through unchanged; weft's
 * own codes live in a separate range below -30000. */
#define WEFT_OK 0
#define WEFT_ENOMEM (-30001)    /* the allocator returned NULL */
#define WEFT_ECANCELED (-30002) /* the task or operation was cancelled */
#define WEFT_ETIMEDOUT (-30003) /* a deadline passed first */
#define WEFT_ECLOSED (-30004)   /* the channel or group is closed / empty */
#define WEFT_EINVAL (-30005)    /* bad argument or misuse of the API */
#define WEFT_EFULL (-30006)     /* no room: would block, or capacity spent */
#define WEFT_EEMPTY (-30007)    /* nothing to take: would block */
#define WEFT_ESTATE (-30008)    /* wrong state: already settled, done */
#define WEFT_EDEADLK (-30009)   /* nothing can ever wake the waiting task */
#define WEFT_ESCRIPT (-30010)   /* a script task raised an error */

/* The message for a code ("cancelled", or libuv's text for its codes is
 * given by the host tier through uv_strerror). Never NULL. Threads: any. */
WEFT_API const char *weft_strerror(int code);
/* The symbolic name ("WEFT_ECANCELED"). Never NULL. Threads: any. */
WEFT_API const char *weft_err_name(int code);

/* What a C task function returns: it has finished, or it waits (it parked
 * itself on a future, timer, channel, semaphore or group, or it yielded). */
#define WEFT_READY 0
#define WEFT_PENDING 1

/* ------------------------------------------------------------- allocator */

/* lua_Alloc's contract: nsize == 0 frees ptr (osize is its size) and returns
 * NULL; otherwise (re)allocate to nsize, returning NULL on failure and
 * leaving ptr untouched. When ptr is NULL, osize carries no size. A host may
 * give Lua and weft the same function. */
typedef void *(*weft_alloc_fn)(void *ud, void *ptr, size_t osize,
                               size_t nsize);

/* ----------------------------------------------------------- priorities */

/* Five levels, most urgent first. Within a level tasks run FIFO. */
enum {
  WEFT_PRIO_CRITICAL = 0,
  WEFT_PRIO_HIGH = 1,
  WEFT_PRIO_NORMAL = 2,
  WEFT_PRIO_LOW = 3,
  WEFT_PRIO_IDLE = 4,
  WEFT_NPRIO = 5
};

typedef struct weft_sched_s weft_sched_t;
typedef struct weft_task_s weft_task_t;
typedef struct weft_waiter_s weft_waiter_t;
typedef struct weft_future_s weft_future_t;
typedef struct weft_timer_s weft_timer_t;

/* --------------------------------------------------------------- waiters */

/* A waiter sits in the waiter list of a future, channel, semaphore or group.
 * It is intrusive: the waiting party owns the memory. When the waited-for
 * event happens the waiter is unlinked first, then cb runs with a status
 * (0, or a WEFT_E* code). About fields: next/prev are private; data and buf
 * belong to the owner (buf is where a channel or group hands an item). */
typedef void (*weft_waiter_cb)(weft_waiter_t *w, int status);
/* About weft_link_t: a link of a circular doubly linked waiter list; the
 * list's head (in a future, channel, semaphore, group or signal) is a bare
 * link, a waiter's is its first member. All private. */
typedef struct weft_link_s {
  struct weft_link_s *next, *prev;
} weft_link_t;
struct weft_waiter_s {
  weft_link_t link; /* private: first member */
  weft_waiter_cb cb;
  void *data;
  void *buf;
};

/* Initializes an unlinked waiter. */
WEFT_API void weft_waiter_init(weft_waiter_t *w, weft_waiter_cb cb, void *data);
/* Unlinks w if it is linked; harmless otherwise. */
WEFT_API void weft_waiter_remove(weft_waiter_t *w);
/* Whether w is currently in some list. */
WEFT_API int weft_waiter_linked(const weft_waiter_t *w);

/* --------------------------------------------------------------- futures */

enum {
  WEFT_FUTURE_PENDING = 0,
  WEFT_FUTURE_FULFILLED = 1,
  WEFT_FUTURE_REJECTED = 2,
  WEFT_FUTURE_CANCELLED = 3
};

/* About weft_future_t: a one-shot settlement. It moves once from PENDING to
 * one of the three final states; every later settle returns WEFT_ESTATE and
 * changes nothing (a duplicate completion is harmless). The value itself
 * belongs to the user (data, or the Lua binding's userdata); the core keeps
 * the state and an error code. Settling wakes every waiter, in the order
 * they were added. Public read-only: state, code. */
struct weft_future_s {
  uint8_t state; /* read-only */
  int code;      /* read-only: the error code of a rejected future */
  weft_link_t waiters; /* private: list head */
  void *data;            /* user data */
};

WEFT_API void weft_future_init(weft_future_t *f);
/* Settles f; returns 0, or WEFT_ESTATE if f was settled already. Each
 * waiter's callback gets the new state as its status. */
WEFT_API int weft_future_fulfill(weft_future_t *f);
WEFT_API int weft_future_reject(weft_future_t *f, int code);
WEFT_API int weft_future_settle_cancelled(weft_future_t *f);
/* Adds a callback waiter. The waiter must stay valid until its callback
 * ran or it was removed with weft_waiter_remove. Returns WEFT_ESTATE if f
 * is settled already (the waiter is not added). */
WEFT_API int weft_future_on(weft_future_t *f, weft_waiter_t *w);

/* --------------------------------------------------------------- timers */

typedef void (*weft_timer_cb)(weft_timer_t *t);
/* About weft_timer_t: an intrusive node of the scheduler's binary min-heap,
 * ordered by (due, seq): equal deadlines fire in start order. Starting needs
 * no allocation unless the heap array must grow. Public: data. */
struct weft_timer_s {
  uint64_t due;   /* read-only: absolute ms on the scheduler clock */
  uint64_t seq;   /* private: start order, breaks ties */
  size_t slot;    /* private: heap index + 1, or 0 when stopped */
  weft_timer_cb cb;
  weft_sched_t *sched;
  void *data;
};

WEFT_API void weft_timer_init(weft_sched_t *s, weft_timer_t *t);
/* Arms t to fire once, delay_ms after the scheduler's current time.
 * Restarting an armed timer moves it. Returns 0 or WEFT_ENOMEM (embedded
 * tier: WEFT_EFULL when WEFT_CONF_TIMERS are armed); the timer then stays
 * stopped. */
WEFT_API int weft_timer_start(weft_timer_t *t, weft_timer_cb cb,
                              uint64_t delay_ms);
/* Disarms t; harmless when it is not armed. */
WEFT_API void weft_timer_stop(weft_timer_t *t);
WEFT_API int weft_timer_active(const weft_timer_t *t);

/* ----------------------------------------------------------------- tasks */

/* A task's resume function. status is 0 on the first run and after a normal
 * wake-up, or WEFT_ECANCELED, WEFT_ETIMEDOUT, WEFT_ECLOSED for why the wait
 * ended. Return WEFT_READY when the task has finished (the scheduler then
 * fulfills its future) or WEFT_PENDING when it waits or yielded. A function
 * that settled its task itself with weft_task_finish returns WEFT_PENDING
 * and must not let the scheduler touch the task again. */
typedef int (*weft_task_fn)(weft_task_t *t, int status);

/* About weft_task_t: a resumable unit. A task is a future (done is its
 * first member, so a weft_task_t* is a weft_future_t*) that settles when the
 * task ends. It waits on at most one thing at a time: its wait node sits in
 * one waiter list, or its timer is armed, or both (a wait with a deadline),
 * or it sits in the ready queue. Tasks form a tree: a task started by
 * another is its child; cancelling a task cancels its live descendants.
 * When a task ends its children are detached (they run on). Public: data,
 * item (scratch for a value handed by a channel); read-only: id, prio,
 * born, flags, wake. */
struct weft_task_s {
  weft_future_t done; /* first member */
  weft_sched_t *sched;
  weft_task_fn fn;
  void *data;
  uint64_t id;   /* read-only: unique per scheduler, from 1 */
  uint64_t born; /* read-only: scheduler time when it was started */
  uint8_t prio;  /* read-only */
  uint8_t flags; /* read-only: WEFT_TASK_* */
  int wake;      /* read-only: status of the last wake-up */
  weft_task_t *ready_next;      /* private: ready queue */
  weft_waiter_t wait;           /* private: its one wait */
  weft_timer_t timer;           /* private: its deadline or sleep */
  weft_task_t *live_next, *live_prev;  /* private: scheduler's live list */
  weft_task_t *parent, *child, *sib_next, *sib_prev; /* private: tree */
  struct weft_group_s *group;   /* private */
  weft_task_t *grp_next, *grp_prev;    /* private: group lists */
  uintptr_t item; /* public: scratch slot for channel hand-offs */
};

#define WEFT_TASK_QUEUED 0x01    /* in the ready queue */
#define WEFT_TASK_PARKED 0x02    /* waiting on something */
#define WEFT_TASK_CANCEL 0x04    /* cancellation was requested */
#define WEFT_TASK_STARTED 0x08   /* fn has run at least once */
#define WEFT_TASK_DONE 0x10      /* finished */

/* Initializes and schedules t with resume function fn at priority prio
 * (WEFT_PRIO_*) as a child of parent (NULL for a root task). If parent is
 * being cancelled the new task starts cancelled. Returns 0 or WEFT_EINVAL
 * (embedded tier: or WEFT_EFULL when WEFT_CONF_TASKS are live; t is then
 * untouched). */
WEFT_API int weft_task_start(weft_sched_t *s, weft_task_t *t, weft_task_fn fn,
                             int prio, weft_task_t *parent);
/* Requests cancellation of t and its live descendants. A parked task is
 * unparked at once and resumed with WEFT_ECANCELED; a queued or running one
 * keeps the request (WEFT_TASK_CANCEL) for its next wait. Returns 0, or
 * WEFT_ESTATE if t has finished. */
WEFT_API int weft_task_cancel(weft_task_t *t);
/* Ends t with a final state (WEFT_FUTURE_FULFILLED, _REJECTED with code,
 * _CANCELLED): settles its future, detaches its children, tells its group.
 * Returns WEFT_ESTATE if t has finished already. */
WEFT_API int weft_task_finish(weft_task_t *t, int state, int code);

/* The waits. Each parks t (which must be the running task) and returns
 * WEFT_PENDING; t's fn runs again with the wake-up status. A timeout of
 * WEFT_FOREVER means none; when it passes first the status is
 * WEFT_ETIMEDOUT. If the wait is satisfied at once they return 0 and do not
 * park. None of them checks WEFT_TASK_CANCEL: that policy is the caller's.
 * A wait with a deadline (a sleep included) needs a timer slot: if none
 * can be had it returns weft_timer_start's error and does not park. */
#define WEFT_FOREVER UINT64_MAX
/* Waits until f settles (status 0). Returns 0 at once if it has. */
WEFT_API int weft_task_await(weft_task_t *t, weft_future_t *f,
                             uint64_t timeout_ms);
/* Waits ms milliseconds; wakes with status 0. */
WEFT_API int weft_task_sleep(weft_task_t *t, uint64_t ms);
/* Requeues t at the back of its level; wakes with status 0. */
WEFT_API int weft_task_yield(weft_task_t *t);

/* ------------------------------------------------------------- scheduler */

/* About weft_sched_t: the core of a loop. It owns the ready queue (one FIFO
 * per priority plus a bitmask of non-empty levels), the timer heap, the
 * list of live tasks and the clock, which the host advances. All fields are
 * private; read them through the functions below. */
typedef struct weft_stats_s {
  uint64_t spawned, finished, fulfilled, rejected, cancelled;
  uint64_t dispatched; /* resumes of task functions */
  size_t live;         /* tasks started and not finished */
  size_t ready;        /* tasks in the ready queue */
  size_t timers;       /* armed timers */
} weft_stats_t;

struct weft_sched_s {
#if !WEFT_EMBEDDED
  weft_alloc_fn alloc;
  void *alloc_ud;
#endif
  uint64_t now;
  weft_task_t *ready_head[WEFT_NPRIO], *ready_tail[WEFT_NPRIO];
  unsigned ready_mask;
  unsigned fair_count, fair_cursor;
  int stop; /* weft_sched_stop was called during this run */
#if WEFT_EMBEDDED
  weft_timer_t *heap[WEFT_CONF_TIMERS];
#else
  weft_timer_t **heap;
#endif
  size_t heap_len, heap_cap;
  uint64_t timer_seq;
  weft_task_t live; /* list head of live tasks (only the links are used) */
  uint64_t next_id;
  weft_task_t *current;
  weft_stats_t stats;
#if WEFT_EMBEDDED
  uint32_t sig_pending; /* atomic: bit i set when sigs[i] was raised */
  struct weft_signal_s *sigs[WEFT_CONF_SIGNALS];
#endif
};

/* Initializes s with an allocator (lua_Alloc contract). Allocates nothing.
 * The embedded tier has no allocator and ignores alloc and ud (pass NULL),
 * so the same call builds for both tiers. */
WEFT_API void weft_sched_init(weft_sched_t *s, weft_alloc_fn alloc, void *ud);
/* Frees the timer heap (embedded tier: empties it). Live tasks must have finished or been abandoned by
 * their owner; returns WEFT_ESTATE (and frees anyway) if some are live. */
WEFT_API int weft_sched_close(weft_sched_t *s);
/* Sets the clock (ms, monotonic; never moves backwards). */
WEFT_API void weft_sched_set_time(weft_sched_t *s, uint64_t now_ms);
WEFT_API uint64_t weft_sched_now(const weft_sched_t *s);
/* Fires every timer due at the current time, then resumes at most max
 * ready tasks (those that became ready meanwhile included). Returns the
 * number of task resumes. */
WEFT_API size_t weft_sched_run(weft_sched_t *s, size_t max);
/* Makes the weft_sched_run in progress return once the current task
 * function has returned, even with tasks still ready; harmless outside a
 * run. For a task that has run long and wants the host to fire timers and
 * poll I/O before the next resume (the Lua binding's preemption). */
WEFT_API void weft_sched_stop(weft_sched_t *s);
/* Whether a task is ready to run. */
WEFT_API int weft_sched_has_ready(const weft_sched_t *s);
/* Stores the earliest timer deadline in *due (OUT) and returns 0, or
 * returns WEFT_EEMPTY if no timer is armed. */
WEFT_API int weft_sched_next_due(const weft_sched_t *s, uint64_t *due);
/* The task whose fn is running, or NULL. */
WEFT_API weft_task_t *weft_sched_current(const weft_sched_t *s);
/* Iterates live tasks: pass NULL for the first; returns NULL at the end. */
WEFT_API weft_task_t *weft_sched_next_live(const weft_sched_t *s,
                                           weft_task_t *t);
WEFT_API void weft_sched_stats(const weft_sched_t *s, weft_stats_t *out);

/* -------------------------------------------------------------- channels */

/* About weft_chan_t: a FIFO of fixed-size items with a bound. Capacity 0 is
 * a rendezvous (a send completes only when a receiver takes the item). Items
 * are handed over directly when the other side waits, so a woken waiter
 * always has its operation done: cancelling it afterwards loses nothing.
 * Senders and receivers are each served FIFO. All fields private. */
typedef struct weft_chan_s {
  weft_sched_t *sched;
  unsigned char *buf;
  size_t cap, item_size, head, count;
  weft_link_t senders, receivers;
  uint8_t closed;
  uint8_t owned; /* buf came from the allocator */
} weft_chan_t;

#if !WEFT_EMBEDDED
/* Allocates room for cap items of item_size bytes. WEFT_ENOMEM, or
 * WEFT_EINVAL when item_size is 0. Host tier only. */
WEFT_API int weft_chan_init(weft_sched_t *s, weft_chan_t *ch, size_t cap,
                            size_t item_size);
#endif
/* As weft_chan_init, but the cap * item_size bytes at buf are the buffer:
 * borrowed until weft_chan_free. Allocates nothing; both tiers. WEFT_EINVAL
 * when item_size is 0, or buf is NULL and cap is not. */
WEFT_API int weft_chan_init_buf(weft_sched_t *s, weft_chan_t *ch, void *buf,
                                size_t cap, size_t item_size);
/* Frees the buffer if weft_chan_init allocated it. Tasks still waiting are dropped from its lists without
 * a wake-up (for teardown, when their owner is going away too). */
WEFT_API void weft_chan_free(weft_chan_t *ch);
/* Closes ch: later sends fail with WEFT_ECLOSED; waiting senders wake with
 * WEFT_ECLOSED (their items were not taken); waiting receivers wake with
 * WEFT_ECLOSED; buffered items stay receivable. Idempotent. */
WEFT_API void weft_chan_close(weft_chan_t *ch);
/* 0 (item copied in), WEFT_EFULL or WEFT_ECLOSED. */
WEFT_API int weft_chan_try_send(weft_chan_t *ch, const void *item);
/* 0 (item copied to out), WEFT_EEMPTY, or WEFT_ECLOSED (closed, drained). */
WEFT_API int weft_chan_try_recv(weft_chan_t *ch, void *out);
/* As try_send, but when full parks t (WEFT_PENDING); item must stay valid
 * until t wakes: status 0 (taken) or WEFT_ECLOSED (not taken). */
WEFT_API int weft_chan_send(weft_chan_t *ch, weft_task_t *t, const void *item);
/* As try_send, but when full links w (initialized by weft_waiter_init) as
 * a waiting sender that is no task, and returns WEFT_PENDING; item must
 * stay valid until w's callback runs with 0 (taken) or WEFT_ECLOSED (not
 * taken). Senders are served FIFO, tasks and waiters alike.
 * weft_waiter_remove(w) withdraws the item; weft_chan_free drops w without
 * a call. */
WEFT_API int weft_chan_send_waiter(weft_chan_t *ch, weft_waiter_t *w,
                                   const void *item);
/* As try_recv, but when empty parks t (WEFT_PENDING); out must stay valid
 * until t wakes: status 0 (item in out) or WEFT_ECLOSED. */
WEFT_API int weft_chan_recv(weft_chan_t *ch, weft_task_t *t, void *out);
WEFT_API size_t weft_chan_count(const weft_chan_t *ch);

/* ------------------------------------------------------------ semaphores */

/* About weft_sem_t: a counting semaphore. Permits are handed to waiters in
 * FIFO order on release, so a woken waiter holds its permit. */
typedef struct weft_sem_s {
  size_t count;
  weft_link_t waiters;
} weft_sem_t;

WEFT_API void weft_sem_init(weft_sem_t *s, size_t permits);
/* 0 (acquired) or WEFT_EEMPTY. */
WEFT_API int weft_sem_try_acquire(weft_sem_t *s);
/* 0 (acquired) or parks t (WEFT_PENDING) until a permit is handed over. */
WEFT_API int weft_sem_acquire(weft_sem_t *s, weft_task_t *t);
WEFT_API void weft_sem_release(weft_sem_t *s);
/* Number of tasks waiting. */
WEFT_API size_t weft_sem_waiting(const weft_sem_t *s);

/* ---------------------------------------------------------------- groups */

/* About weft_group_t: a join set of tasks. Members that finish move to the
 * finished list until joined. The first member to be rejected is recorded
 * and, with WEFT_GROUP_FAIL_FAST, cancels its siblings. All fields private;
 * members hold pointers back (task->group). */
typedef struct weft_group_s {
  weft_task_t *running;            /* doubly linked via grp_next/prev */
  weft_task_t *fin_head, *fin_tail; /* FIFO of finished, unjoined */
  size_t nrunning, nfinished;
  weft_link_t joiners;
  weft_task_t *failed; /* first rejected member, or NULL */
  int flags;
} weft_group_t;

#define WEFT_GROUP_FAIL_FAST 0x01

WEFT_API void weft_group_init(weft_group_t *g, int flags);
/* Adds a started, unfinished task t. WEFT_EINVAL if it is in a group. */
WEFT_API int weft_group_add(weft_group_t *g, weft_task_t *t);
/* Takes the next finished member into *out (OUT): 0, or WEFT_ECLOSED when
 * no member is left; otherwise parks t (WEFT_PENDING) and on wake-up
 * (status 0) *out holds the member. */
WEFT_API int weft_group_join(weft_group_t *g, weft_task_t *t,
                             weft_task_t **out);
/* Takes the next finished member into *out (OUT) without waiting, as
 * weft_group_join does: 0, WEFT_EEMPTY when members run but none has
 * finished, or WEFT_ECLOSED when no member is left. Needs no task. */
WEFT_API int weft_group_try_join(weft_group_t *g, weft_task_t **out);
/* Cancels every running member. */
WEFT_API void weft_group_cancel(weft_group_t *g);
/* Unlinks every member (finished or not) from g; for teardown. */
WEFT_API void weft_group_clear(weft_group_t *g);
WEFT_API size_t weft_group_size(const weft_group_t *g);
WEFT_API weft_task_t *weft_group_failed(const weft_group_t *g);

/* ------------------------------------------ signals, port (embedded tier) */

#if WEFT_EMBEDDED
/* About weft_signal_t: how an interrupt handler wakes a task. The handler
 * raises bits; that only ORs them into the signal and the signal's bit
 * into the scheduler's pending word, each with one atomic operation (or
 * inside the port's critical section, see WEFT_CONF_ATOMIC), never
 * touching a list. Before each dispatch the scheduler takes the pending
 * word and hands each raised signal's bits, all at once, to the first task
 * waiting on it; bits raised while no task waits stay until the next wait
 * takes them. Bits raised twice before they are taken merge: a signal
 * counts kinds of events, not occurrences. Each signal holds one of the
 * scheduler's WEFT_CONF_SIGNALS slots. All fields private; bits is
 * accessed atomically, the rest is set by init before any raise. */
typedef struct weft_signal_s {
  uint32_t bits; /* atomic: raised, not yet taken */
  weft_sched_t *sched;
  weft_link_t waiters;
  unsigned slot;
} weft_signal_t;

/* Registers sig with s. 0, or WEFT_EFULL when WEFT_CONF_SIGNALS are
 * registered. Call it before enabling the interrupt that raises sig. */
WEFT_API int weft_signal_init(weft_sched_t *s, weft_signal_t *sig);
/* Frees sig's slot; waiting tasks wake with WEFT_ECLOSED. Disable the
 * interrupt that raises sig first: raising it afterwards is undefined. */
WEFT_API void weft_signal_close(weft_signal_t *sig);
/* ORs bits (nonzero) into sig and marks it pending; the scheduler wakes
 * the waiting task before its next dispatch, and weft_sched_loop's idle
 * wait ends. Never blocks, never allocates, touches no list. Threads: any;
 * ISR-safe. */
WEFT_API void weft_signal_raise(weft_signal_t *sig, uint32_t bits);
/* Takes the raised bits into *out (OUT) and returns 0, or parks t
 * (WEFT_PENDING) until some are raised: on wake-up status 0, *out holds
 * them (out must stay valid until then), or WEFT_ETIMEDOUT, WEFT_ECANCELED,
 * WEFT_ECLOSED, and *out is untouched. */
WEFT_API int weft_signal_wait(weft_signal_t *sig, weft_task_t *t,
                              uint32_t *out, uint64_t timeout_ms);
/* Takes the raised bits without waiting: 0 if none were raised. */
WEFT_API uint32_t weft_signal_take(weft_signal_t *sig);

/* Runs s on the port until no task is live: it reads the port's clock
 * into the scheduler, fires timers, hands signals over and resumes tasks
 * (at most WEFT_CONF_LOOP_BUDGET between clock readings); when nothing is
 * ready it waits in weft_port_idle until the next deadline or an
 * interrupt. Tasks that wait on something nothing will ever settle keep
 * it waiting for interrupts forever, as firmware does. */
WEFT_API void weft_sched_loop(weft_sched_t *s);
#endif /* WEFT_EMBEDDED */

/* ------------------------------------------------------- loop (host tier) */

/* About weft_loop_t: a scheduler driven by a libuv loop on one thread. The
 * loop owns its uv_loop_t, or borrows one the host runs. libuv's own
 * allocations follow libuv's process-wide hook (uv_replace_allocator), not
 * weft's allocator. */
typedef struct weft_loop_s weft_loop_t;

/* Creates a loop whose memory comes from alloc (NULL: the C library's
 * realloc/free). *out (OUT) is the loop. WEFT_ENOMEM or a libuv code. */
WEFT_API int weft_loop_new(weft_loop_t **out, weft_alloc_fn alloc, void *ud);
/* Creates a loop on a uv_loop_t the host owns and runs (a uv_loop_t *,
 * void * here to keep uv.h out of this header). weft adds a few handles
 * to it and runs its tasks from them whenever the host runs that loop;
 * weft_loop_run must not then be called from inside the host's uv_run. */
WEFT_API int weft_loop_new_borrowed(weft_loop_t **out, void *uv_loop,
                                    weft_alloc_fn alloc, void *ud);
/* Closes the loop and frees it. Host calls still in flight are cancelled
 * first (their late completions are no-ops). WEFT_ESTATE if it is
 * running. A borrowed uv loop is run (without blocking) until weft's
 * handles are closed, so do not call this from inside its uv_run. */
WEFT_API int weft_loop_free(weft_loop_t *loop);
WEFT_API weft_sched_t *weft_loop_sched(weft_loop_t *loop);
/* The libuv loop, for hosts that add their own handles. */
WEFT_API void *weft_loop_uv(weft_loop_t *loop);
/* Runs until nothing can make progress: no task is ready, no timer is
 * armed, no host call is in flight and libuv has no active handle or
 * request of its own. Tasks still live then wait on something that nobody
 * can settle. Returns the number of such tasks (0 on a clean finish) or a
 * negative code. WEFT_ESTATE if called while running. */
WEFT_API int weft_loop_run(weft_loop_t *loop);
/* Refreshes the scheduler clock from libuv's monotonic clock. */
WEFT_API void weft_loop_update_time(weft_loop_t *loop);

/* Tells a borrowed loop that tasks were started from outside its own
 * callbacks (the host's code between uv_run calls), so the host's next
 * uv_run runs them instead of blocking or returning. No-op otherwise. */
WEFT_API void weft_loop_wake(weft_loop_t *loop);

/* Driving weft from a foreign event loop (Qt, GTK, a game loop): watch
 * weft_loop_backend_fd for readability, wake up after at most
 * weft_loop_timeout milliseconds (-1: no deadline, 0: work is ready), and
 * call weft_loop_run_nowait then. run_nowait never blocks; it returns the
 * number of live tasks. The fd is libuv's backend fd (epoll on Linux). */
WEFT_API int weft_loop_backend_fd(weft_loop_t *loop);
WEFT_API int weft_loop_timeout(weft_loop_t *loop);
WEFT_API int weft_loop_run_nowait(weft_loop_t *loop);

/* Keeping a loop alive for other threads. weft_loop_run ends, and a
 * borrowed loop lets the host's uv_run end, when nothing in the loop can
 * make progress; a post from another thread is not something the loop
 * can foresee. A host whose threads may still post says so: each
 * weft_loop_ref is one hold, each weft_loop_unref drops one, and while
 * any is held the loop waits for posts (as a referenced libuv handle
 * does). Unref without a hold does nothing. weft_loop_free does not wait
 * for holds. */
WEFT_API void weft_loop_ref(weft_loop_t *loop);
WEFT_API void weft_loop_unref(weft_loop_t *loop);

/* -------------------------------------------- posting into a loop (host) */

/* About weft_post_t: one request from any thread to a loop, as libuv's
 * requests are: the caller owns the memory (embed it in its own event),
 * weft links it into the loop's post queue and calls its callback once
 * on the loop thread; from then on the memory is the caller's again
 * (the callback may free or repost it). So posting never allocates and
 * cannot run out of memory. Every post made between two wake-ups of the
 * loop is delivered by one wake-up (the first post into an empty queue
 * sends it), in the order the posts took the queue's lock: one thread's
 * posts run in the order it made them. A post must not be posted again
 * before its callback ran. Public: data; read-only: loop; the rest
 * private. */
typedef struct weft_post_s weft_post_t;
/* status: 0 when the post ran; WEFT_ECANCELED when the loop was freed
 * before it ran (the callback then runs inside weft_loop_free: release
 * what the post carries, start nothing); the entries below that act on
 * an object pass their action's status instead of 0. */
typedef void (*weft_post_cb)(weft_post_t *p, int status);
struct weft_post_s {
  void *data;                  /* public */
  weft_loop_t *loop;           /* read-only */
  weft_post_cb cb;             /* private */
  void (*run)(weft_post_t *p); /* private: the action on the loop thread */
  weft_post_t *next, *prev;    /* private: the queue, or parked sends */
  weft_waiter_t wait;          /* private: a send waiting for room */
  union {
    struct { weft_future_t *f; int state, code; } settle;
    struct { weft_task_t *t; weft_task_fn fn; int prio; } start;
    struct { weft_chan_t *ch; const void *item; } send;
  } u; /* private */
};

/* Runs cb(p, 0) on the loop thread soon: from the loop's next wake-up,
 * after the calls completed before it and before tasks run again.
 * 0; WEFT_EINVAL (NULL loop, p or cb); WEFT_ECLOSED once weft_loop_free
 * has begun (cb is then never called). A post made after weft_loop_free
 * returned is a use after free, as any use of a freed loop: stop the
 * posting threads first. A post still queued when the run ends (it came
 * after the loop found nothing to do) runs at the next run, or is
 * cancelled by weft_loop_free. Threads: any. */
WEFT_API int weft_loop_post(weft_loop_t *loop, weft_post_t *p,
                            weft_post_cb cb);
/* Settles f on the loop thread as weft_future_fulfill (state
 * WEFT_FUTURE_FULFILLED), weft_future_reject (WEFT_FUTURE_REJECTED, code)
 * or weft_future_settle_cancelled (WEFT_FUTURE_CANCELLED) would, then
 * calls cb (may be NULL) with their result: 0, or WEFT_ESTATE if f was
 * settled already. f must stay valid until then. Returns as
 * weft_loop_post, and WEFT_EINVAL for another state. Threads: any. */
WEFT_API int weft_loop_post_settle(weft_loop_t *loop, weft_post_t *p,
                                   weft_future_t *f, int state, int code,
                                   weft_post_cb cb);
/* Starts t as a root task on the loop thread (weft_task_start(sched, t,
 * fn, prio, NULL)), then calls cb (may be NULL) with its result. t is the
 * caller's, as for weft_task_start. Returns as weft_loop_post, and
 * WEFT_EINVAL for a bad prio. Threads: any. */
WEFT_API int weft_loop_post_start(weft_loop_t *loop, weft_post_t *p,
                                  weft_task_t *t, weft_task_fn fn, int prio,
                                  weft_post_cb cb);
/* Sends the item at item (ch's item_size bytes, borrowed until cb runs)
 * on ch from the loop thread. A full channel keeps the post as a waiting
 * sender, served FIFO among the senders, until a receiver takes the item:
 * nothing is dropped, and no thread blocks. cb (may be NULL) then gets 0
 * (taken), WEFT_ECLOSED (ch was or became closed: not taken) or
 * WEFT_ECANCELED (the loop was freed first: not taken). ch must stay
 * valid until cb runs (close it rather than free it: weft_chan_free drops
 * a waiting post, which weft_loop_free then cancels). Returns as
 * weft_loop_post. Threads: any. */
WEFT_API int weft_loop_post_send(weft_loop_t *loop, weft_post_t *p,
                                 weft_chan_t *ch, const void *item,
                                 weft_post_cb cb);

/* ------------------------------------------------- values (host tier) */

/* About weft_value_t: a tree of plain data that can cross threads: nil,
 * boolean, integer, number, string (length-counted, may hold zeros, always
 * NUL-terminated after its length), array and map. A value owns its
 * children and strings; weft_value_free frees the whole tree. Value
 * memory comes from the process-wide value allocator (default: the C
 * library's, which is thread-safe, as any replacement must be, since values
 * are built on one thread and freed on another). */
enum {
  WEFT_VNIL = 0,
  WEFT_VBOOL,
  WEFT_VINT,
  WEFT_VNUM,
  WEFT_VSTR,
  WEFT_VARRAY,
  WEFT_VMAP
};

typedef struct weft_value_s weft_value_t;
struct weft_value_s {
  int type;
  union {
    int b;
    int64_t i;
    double n;
    struct { char *ptr; size_t len; } s;
    struct { weft_value_t *items; size_t len; } a;
    struct { weft_value_t *keys, *vals; size_t len; } m;
  } u;
};

/* Replaces the value allocator; call before any value exists. A NULL fn
 * restores the C library's. Threads: any (but not concurrently with
 * value use). */
WEFT_API void weft_value_set_allocator(weft_alloc_fn fn, void *ud);
/* Scalars need no allocation and cannot fail. Threads: any (all below). */
WEFT_API void weft_value_nil(weft_value_t *v);
WEFT_API void weft_value_bool(weft_value_t *v, int b);
WEFT_API void weft_value_int(weft_value_t *v, int64_t i);
WEFT_API void weft_value_num(weft_value_t *v, double n);
/* Copies len bytes of s. 0 or WEFT_ENOMEM (v is then nil). */
WEFT_API int weft_value_str(weft_value_t *v, const char *s, size_t len);
/* An array of len nils / a map of len nil -> nil pairs to fill in.
 * 0 or WEFT_ENOMEM (v is then nil). */
WEFT_API int weft_value_array(weft_value_t *v, size_t len);
WEFT_API int weft_value_map(weft_value_t *v, size_t len);
/* Frees what v owns and makes it nil. */
WEFT_API void weft_value_free(weft_value_t *v);
/* A deep copy. 0 or WEFT_ENOMEM (dst is then nil). */
WEFT_API int weft_value_copy(weft_value_t *dst, const weft_value_t *src);
/* In a map, the value under the string key k, or NULL. */
WEFT_API const weft_value_t *weft_value_get(const weft_value_t *map,
                                            const char *k);

/* ------------------------------------------ host calls (host tier) */

/* About weft_call_t: one call of a host function by a script. It carries
 * the arguments, is completed exactly once (resolve or reject, from any
 * thread), and may be cancelled by the caller (the task was cancelled or
 * the function's timeout passed). Whatever comes first wins; a later
 * completion does nothing and returns WEFT_ESTATE. The memory is reference
 * counted: the function gets a borrowed handle valid until it returns;
 * to complete later, take a reference with weft_call_ref and drop it with
 * weft_call_unref once done with the handle (completed or not). */
typedef struct weft_call_s weft_call_t;
typedef struct weft_pool_s weft_pool_t; /* see the worker pool below */

/* How a host function is run. */
enum {
  WEFT_FN_SYNC = 0, /* on the loop thread; completes before it returns */
  WEFT_FN_POOL = 1, /* on a worker thread; completes before it returns */
  WEFT_FN_LOOP = 2  /* on the loop thread; completes later, any thread */
};

typedef void (*weft_host_fn)(weft_call_t *call, void *ud);
/* Told on the loop thread, once, that a started call was cancelled. */
typedef void (*weft_cancel_cb)(weft_call_t *call, void *ud);

typedef struct weft_fn_opts {
  int kind;               /* WEFT_FN_* */
  int priority;           /* WEFT_PRIO_*, for the pool's queue */
  uint64_t timeout_ms;    /* 0: none; else the call fails with a timeout */
  weft_cancel_cb on_cancel; /* optional */
  void *ud;               /* passed to fn and on_cancel */
} weft_fn_opts;

/* The arguments: an array value, borrowed until the call is completed.
 * Threads: any. */
WEFT_API const weft_value_t *weft_call_args(const weft_call_t *call);
/* The name the function was registered under. Threads: any. */
WEFT_API const char *weft_call_name(const weft_call_t *call);
/* Completes the call with a result, moved out of *result (left nil), or
 * with an error message (copied). 0, or WEFT_ESTATE if the call was
 * completed or cancelled already (then the result is freed), or
 * WEFT_ENOMEM. Threads: any. */
WEFT_API int weft_call_resolve(weft_call_t *call, weft_value_t *result);
WEFT_API int weft_call_reject(weft_call_t *call, const char *message);
/* Whether the caller has cancelled: a long job may poll it and stop.
 * Threads: any. */
WEFT_API int weft_call_cancelled(const weft_call_t *call);
WEFT_API void weft_call_ref(weft_call_t *call);   /* Threads: any. */
WEFT_API void weft_call_unref(weft_call_t *call); /* Threads: any. */

/* Calls from C. A C task (or any loop-thread code) runs a function the way
 * a script's call of a registered function runs: on the loop thread, or as
 * a job of a worker pool with its priority and backpressure, completed
 * exactly once and cancellable at any point.
 *
 * weft_call_new makes the call: args (an array value, or nil for none)
 * are moved in and left nil, even on failure; pool is where a
 * WEFT_FN_POOL call runs (NULL: the loop's pool, see weft_loop_set_pool).
 * *out (OUT) is the caller's reference, dropped with weft_call_release.
 * opts->timeout_ms is not applied to calls from C: the caller awaits the
 * call's future with its own deadline. WEFT_EINVAL (bad kind or priority,
 * no pool for a pool call), WEFT_ENOMEM. */
WEFT_API int weft_call_new(weft_loop_t *loop, const char *name,
                           weft_host_fn fn, const weft_fn_opts *opts,
                           weft_pool_t *pool, weft_value_t *args,
                           weft_call_t **out);
/* Starts it: a sync or loop function runs now, a pool job is queued. 0;
 * WEFT_EFULL when the pool's queue is full: nothing started, await
 * weft_loop_room and start again (never drop the call, never block);
 * WEFT_ESTATE if it was started or cancelled already. */
WEFT_API int weft_call_start(weft_call_t *call);
/* Settled on the loop thread once the call is complete: fulfilled,
 * rejected (weft_call_error) or cancelled. Borrowed until released. */
WEFT_API weft_future_t *weft_call_future(weft_call_t *call);
/* The result of a fulfilled call, borrowed until released; else NULL. */
WEFT_API const weft_value_t *weft_call_result(const weft_call_t *call);

/* About weft_error_t: why an operation failed. code is a libuv code
 * (UV_ENOENT...) for a failure of the system, or a WEFT_E* code
 * (WEFT_ESCRIPT for a host function's rejection); where names the
 * operation ("fs.read", or a host function's name); message is the whole
 * text, without where ("x.txt: No such file or directory"). The strings
 * are borrowed from the object that failed. */
typedef struct weft_error_t {
  int code;
  const char *where;
  const char *message;
} weft_error_t;

/* Fills *out (OUT) with why a rejected call failed and returns its code;
 * 0 (and *out zeroed) if it did not fail. A rejection whose message was
 * lost to out of memory reads "failed (message lost: no memory)". */
WEFT_API int weft_call_error(const weft_call_t *call, weft_error_t *out);
/* Gives up on the call: 1 if this won over its completion (a queued job
 * is dropped, a started one is told through on_cancel, the future is
 * cancelled), 0 if it had completed already. */
WEFT_API int weft_call_cancel(weft_call_t *call);
/* Cancels the call if it is still pending and drops the caller's
 * reference. A job still running on a worker keeps its own reference. */
WEFT_API void weft_call_release(weft_call_t *call);

/* Fulfilled when a pool that refused a call of this loop (WEFT_EFULL) has
 * room again; then re-armed. Await it and start the call again. */
WEFT_API weft_future_t *weft_loop_room(weft_loop_t *loop);
/* The pool the loop's pool calls run on when none is given (borrowed: it
 * must outlive the loop's use of it), and the I/O of weft_io.h. NULL
 * clears it. */
WEFT_API void weft_loop_set_pool(weft_loop_t *loop, weft_pool_t *pool);
WEFT_API weft_pool_t *weft_loop_pool(const weft_loop_t *loop);
/* The number of calls of the loop in flight (started, not delivered). */
WEFT_API size_t weft_loop_calls(const weft_loop_t *loop);

/* ------------------------------------------ worker pool (host tier) */

/* About weft_pool_t: weft's own worker threads. Jobs wait in five FIFO
 * queues, one per priority, served most urgent first with the scheduler's
 * fairness turn, so low priorities never starve. The queue is bounded: a
 * submission that finds it full is refused with WEFT_EFULL, and the script
 * layer then suspends the calling task until there is room. One pool may
 * serve several loops on several threads. */
typedef struct weft_pool_s weft_pool_t;

typedef struct weft_pool_opts {
  unsigned threads; /* 0: the number of CPUs */
  size_t queue_max; /* 0: 64 x threads */
} weft_pool_opts;

typedef struct weft_pool_stats {
  size_t threads, queued, running, queue_max;
  uint64_t submitted, done, cancelled, rejected_full;
  uint64_t wait_ns[WEFT_NPRIO]; /* total queue wait of started jobs */
  uint64_t started[WEFT_NPRIO]; /* jobs started, per priority */
} weft_pool_stats;

/* Starts the workers. opts may be NULL. WEFT_ENOMEM or a libuv code.
 * Threads: any. */
WEFT_API int weft_pool_new(weft_pool_t **out, const weft_pool_opts *opts);
/* Cancels queued jobs, waits for running ones, joins the threads. No loop
 * may still use the pool. Threads: any but a worker. */
WEFT_API void weft_pool_free(weft_pool_t *pool);
/* Threads: any. */
WEFT_API void weft_pool_get_stats(weft_pool_t *pool, weft_pool_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
