/*
 * util.h - helpers for the C tests: a counting allocator that can fail
 * the n-th allocation, an ordered event log, and a fake-clock driver.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_TEST_UTIL_H
#define WEFT_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* About test_alloc: counts live blocks and bytes; when fail_at is n > 0,
 * the n-th allocation from now on (counting new blocks and growths) returns
 * NULL, once; with sticky set, that one and every later one fail. Frees
 * and shrinks never fail. */
typedef struct test_alloc {
  size_t live_blocks, live_bytes, allocs;
  size_t fail_at, failed;
  int sticky;
} test_alloc;

void *test_alloc_fn(void *ud, void *p, size_t osize, size_t nsize);
void test_alloc_init(test_alloc *a);

/* About test_log: an ordered list of events (small integers the test
 * chooses), compared as a whole at the end of a test. */
/* A Lua expression (a string literal) saying whether the expression x is
 * an integer; on 5.1 and LuaJIT, whose numbers are all floats, whether it
 * has an integral value. */
#define LUA_IS_INT(x)                                                      \
  "(math.type and math.type(" x ") == 'integer' or "                       \
  "(not math.type and (" x ") % 1 == 0))"

/* The out-of-memory sweeps of a Lua state do not apply to LuaJIT, whose
 * API raises out-of-memory errors from plain pushes (its stack grows on
 * demand, and its lua_newstate crashes when an allocation of its own
 * fails): a host call outside a protected call cannot be made safe
 * there. */
#if WEFT_TEST_LUAJIT
#define SKIP_LUA_OOM_ON_LUAJIT() skip()
#else
#define SKIP_LUA_OOM_ON_LUAJIT() ((void)0)
#endif

#define TEST_LOG_MAX 4096
typedef struct test_log {
  long ev[TEST_LOG_MAX];
  size_t n;
} test_log;

void test_log_init(test_log *l);
void test_log_add(test_log *l, long ev);
/* Fails the running test unless l holds exactly exp[0..n-1]. */
void test_log_expect(const test_log *l, const long *exp, size_t n);
#define TEST_LOG_EXPECT(l, ...)                                             \
  do {                                                                      \
    static const long exp_[] = {__VA_ARGS__};                               \
    test_log_expect((l), exp_, sizeof exp_ / sizeof exp_[0]);               \
  } while (0)

/* Starts a test's scheduler on a fresh counting allocator. */
void test_sched_begin(weft_sched_t *s, test_alloc *a);
/* The fake clock: runs ready tasks, then moves the clock to the next
 * deadline and repeats, until no task is ready and no timer is armed.
 * Returns the number of task resumes. */
size_t test_sched_settle(weft_sched_t *s);
/* Like test_sched_settle, but stops the clock at to: timers due later stay
 * armed. The clock ends at to. */
size_t test_sched_advance(weft_sched_t *s, uint64_t to);
/* The end of every test: no task live or ready, the scheduler closes
 * cleanly and the allocator balance is zero. */
void test_sched_end(weft_sched_t *s, test_alloc *a);
/* The allocator balance alone is zero. */
void test_alloc_expect_empty(const test_alloc *a);

/* ------------------------------------------------------------ C tasks */

/* About probe: a C task plus what it should do and what it saw, shared by
 * the core tests (test-future.c, test-sched.c, test-task.c, …). The task
 * is the first member, so a weft_task_t * of a probe is the probe. st[i]
 * is the wake-up status of run i+1. res is the outcome of its one wait. */
typedef struct probe {
  weft_task_t t;
  long name;
  test_log *log;
  int runs;
  int st[8];
  int res;
  int waiting;      /* a one-wait probe is parked */
  int yields;       /* yields left before finishing */
  int code;         /* nonzero: end rejected with this code */
  const int *stop;  /* spinners run until *stop */
  weft_future_t *fut;
  uint64_t ms;
  weft_chan_t *ch;
  int item;
  weft_sem_t *sem;
  weft_group_t *grp;
  weft_task_t *joined;
  struct probe *spawn; /* a child to start on the first run */
  weft_task_fn spawn_fn;
} probe;

static inline probe *P(weft_task_t *t) { return (probe *)t; }

/* Counts a run of t and records its wake-up status. */
void probe_note(weft_task_t *t, int status);
/* Adds ev to p's log, if it has one. */
void probe_log(probe *p, long ev);
/* How every probe ends after a wait: a cancellation ends it cancelled, a
 * code ends it rejected, anything else fulfills it. */
int probe_finish(weft_task_t *t, int status);
/* Starts p as a task running fn at prio, a child of parent (or none). */
void probe_start(weft_sched_t *s, probe *p, weft_task_fn fn, int prio,
                 probe *parent);

/* The task functions shared by the core tests are probe_<verb>s; a test
 * file's own are static fn_<verb>. */

/* Logs its name, yields p->yields times, then ends. */
int probe_yields(weft_task_t *t, int status);

/* The one-wait probes: the first run starts the wait; if it completes at
 * once, res is its result; otherwise res is the wake-up status. Either way
 * the name is logged when the probe has its outcome. A test file makes the
 * ones only it needs with `static ONE_WAIT_FN(fn_send, call)`. */
#define ONE_WAIT_FN(name_, call_)                                          \
  int name_(weft_task_t *t, int status) {                                  \
    probe *p = P(t);                                                       \
    int r;                                                                 \
    probe_note(t, status);                                                 \
    if (!p->waiting && status == 0) {                                      \
      if (p->spawn)                                                        \
        probe_start(t->sched, p->spawn, p->spawn_fn, WEFT_PRIO_NORMAL, p); \
      r = (call_);                                                         \
      if (r == WEFT_PENDING) {                                             \
        p->waiting = 1;                                                    \
        return r;                                                          \
      }                                                                    \
    } else {                                                               \
      r = status;                                                          \
    }                                                                      \
    p->waiting = 0;                                                        \
    p->res = r;                                                            \
    probe_log(p, p->name);                                                 \
    return probe_finish(t, r);                                             \
  }

/* The shared one-wait probes: p->fut for p->ms, and a sleep of p->ms. */
int probe_awaits(weft_task_t *t, int status);
int probe_sleeps(weft_task_t *t, int status);

#endif
