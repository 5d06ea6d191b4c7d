/*
 * test-core.c - the core tier through C poll tasks on a fake clock:
 * futures, the ready queue and its fairness, task waits, cancellation,
 * groups, channels, semaphores, counters and error names.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* ------------------------------------------------------------ C tasks */

/* About probe: a C task plus what it should do and what it saw. The task
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

static probe *P(weft_task_t *t) { return (probe *)t; }

static void note(weft_task_t *t, int status) {
  probe *p = P(t);
  if (p->runs < 8) p->st[p->runs] = status;
  p->runs++;
}

static void logev(probe *p, long ev) {
  if (p->log) test_log_add(p->log, ev);
}

/* How every probe ends after a wait: a cancellation ends it cancelled, a
 * code ends it rejected, anything else fulfills it. */
static int finish(weft_task_t *t, int status) {
  probe *p = P(t);
  if (status == WEFT_ECANCELED) {
    assert_int_equal(weft_task_finish(t, WEFT_FUTURE_CANCELLED, status), 0);
    return WEFT_PENDING;
  }
  if (p->code) {
    assert_int_equal(weft_task_finish(t, WEFT_FUTURE_REJECTED, p->code), 0);
    return WEFT_PENDING;
  }
  return WEFT_READY;
}

static void start(weft_sched_t *s, probe *p, weft_task_fn fn, int prio,
                  probe *parent) {
  p->t.data = p;
  assert_int_equal(weft_task_start(s, &p->t, fn, prio,
                                   parent ? &parent->t : NULL), 0);
}

/* Logs its name, yields p->yields times, then ends. */
static int fn_yield(weft_task_t *t, int status) {
  probe *p = P(t);
  note(t, status);
  logev(p, p->name);
  if (status == WEFT_ECANCELED) return finish(t, status);
  if (p->yields > 0) {
    p->yields--;
    return weft_task_yield(t);
  }
  return finish(t, status);
}

/* Logs its priority level on each run and yields until *stop. */
static int fn_spin(weft_task_t *t, int status) {
  probe *p = P(t);
  note(t, status);
  logev(p, t->prio);
  if (*p->stop) return WEFT_READY;
  return weft_task_yield(t);
}

/* The one-wait probes: the first run starts the wait; if it completes at
 * once, res is its result; otherwise res is the wake-up status. Either way
 * the name is logged when the probe has its outcome. */
#define ONE_WAIT_FN(name_, call_)                                          \
  static int name_(weft_task_t *t, int status) {                           \
    probe *p = P(t);                                                       \
    int r;                                                                 \
    note(t, status);                                                       \
    if (!p->waiting && status == 0) {                                      \
      if (p->spawn) start(t->sched, p->spawn, p->spawn_fn,                 \
                          WEFT_PRIO_NORMAL, p);                            \
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
    logev(p, p->name);                                                     \
    return finish(t, r);                                                   \
  }

ONE_WAIT_FN(fn_await, weft_task_await(t, p->fut, p->ms))
ONE_WAIT_FN(fn_sleep, weft_task_sleep(t, p->ms))
ONE_WAIT_FN(fn_send, weft_chan_send(p->ch, t, &p->item))
ONE_WAIT_FN(fn_recv, weft_chan_recv(p->ch, t, &p->item))
ONE_WAIT_FN(fn_acquire, weft_sem_acquire(p->sem, t))

/* Joins its group until it is empty, logging 100 + the name of each
 * member it gets, -1 for WEFT_ECLOSED from join, -2 for a wake-up with
 * WEFT_ECLOSED (the group was cleared). */
static int fn_join(weft_task_t *t, int status) {
  probe *p = P(t);
  note(t, status);
  if (p->runs > 1) {
    if (status != 0) {
      logev(p, status == WEFT_ECLOSED ? -2 : -3);
      return WEFT_READY;
    }
    logev(p, 100 + P(p->joined)->name);
  }
  for (;;) {
    int r = weft_group_join(p->grp, t, &p->joined);
    if (r == WEFT_PENDING) return r;
    if (r != 0) {
      assert_int_equal(r, WEFT_ECLOSED);
      logev(p, -1);
      return WEFT_READY;
    }
    logev(p, 100 + P(p->joined)->name);
  }
}

/* ------------------------------------------------------------- futures */

typedef struct wrec {
  weft_waiter_t w;
  test_log *log;
  long name;
  int status;
  weft_waiter_t *remove;  /* unlinked by this callback */
  weft_future_t *readd;   /* weft_future_on tried by this callback */
  int readd_result;
} wrec;

static void wrec_cb(weft_waiter_t *w, int status) {
  wrec *r = w->data;
  assert_false(weft_waiter_linked(w)); /* unlinked before the callback */
  r->status = status;
  test_log_add(r->log, r->name);
  if (r->remove) weft_waiter_remove(r->remove);
  if (r->readd) r->readd_result = weft_future_on(r->readd, &r->w);
}

static void wrec_init(wrec *r, test_log *log, long name) {
  memset(r, 0, sizeof *r);
  r->log = log;
  r->name = name;
  r->status = -1;
  weft_waiter_init(&r->w, wrec_cb, r);
}

static void future_fulfill_wakes_waiters_in_order_once(void **state) {
  weft_future_t f;
  wrec w[3];
  test_log log;
  int i;
  (void)state;
  test_log_init(&log);
  weft_future_init(&f);
  for (i = 0; i < 3; i++) {
    wrec_init(&w[i], &log, i + 1);
    assert_int_equal(weft_future_on(&f, &w[i].w), 0);
    assert_true(weft_waiter_linked(&w[i].w));
  }
  assert_int_equal(weft_future_fulfill(&f), 0);
  assert_int_equal(f.state, WEFT_FUTURE_FULFILLED);
  assert_int_equal(f.code, 0);
  for (i = 0; i < 3; i++) assert_int_equal(w[i].status, WEFT_FUTURE_FULFILLED);
  /* Every later settle fails and changes nothing. */
  assert_int_equal(weft_future_fulfill(&f), WEFT_ESTATE);
  assert_int_equal(weft_future_reject(&f, WEFT_EINVAL), WEFT_ESTATE);
  assert_int_equal(weft_future_settle_cancelled(&f), WEFT_ESTATE);
  assert_int_equal(f.state, WEFT_FUTURE_FULFILLED);
  assert_int_equal(f.code, 0);
  TEST_LOG_EXPECT(&log, 1, 2, 3);
}

static void future_reject_keeps_its_code_against_later_settles(void **state) {
  weft_future_t f;
  wrec w;
  test_log log;
  (void)state;
  test_log_init(&log);
  weft_future_init(&f);
  wrec_init(&w, &log, 1);
  assert_int_equal(weft_future_on(&f, &w.w), 0);
  assert_int_equal(weft_future_reject(&f, WEFT_ETIMEDOUT), 0);
  assert_int_equal(w.status, WEFT_FUTURE_REJECTED);
  assert_int_equal(weft_future_fulfill(&f), WEFT_ESTATE);
  assert_int_equal(weft_future_settle_cancelled(&f), WEFT_ESTATE);
  assert_int_equal(weft_future_reject(&f, WEFT_EINVAL), WEFT_ESTATE);
  assert_int_equal(f.state, WEFT_FUTURE_REJECTED);
  assert_int_equal(f.code, WEFT_ETIMEDOUT);
  TEST_LOG_EXPECT(&log, 1);
}

static void future_cancel_settles_once_with_ecanceled(void **state) {
  weft_future_t f;
  wrec w;
  test_log log;
  (void)state;
  test_log_init(&log);
  weft_future_init(&f);
  wrec_init(&w, &log, 1);
  assert_int_equal(weft_future_on(&f, &w.w), 0);
  assert_int_equal(weft_future_settle_cancelled(&f), 0);
  assert_int_equal(w.status, WEFT_FUTURE_CANCELLED);
  assert_int_equal(f.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(f.code, WEFT_ECANCELED);
  assert_int_equal(weft_future_settle_cancelled(&f), WEFT_ESTATE);
  assert_int_equal(weft_future_fulfill(&f), WEFT_ESTATE);
  assert_int_equal(f.state, WEFT_FUTURE_CANCELLED);
  TEST_LOG_EXPECT(&log, 1);
}

static void future_on_settled_future_adds_nothing(void **state) {
  weft_future_t f;
  wrec w;
  test_log log;
  (void)state;
  test_log_init(&log);
  weft_future_init(&f);
  assert_int_equal(weft_future_fulfill(&f), 0);
  wrec_init(&w, &log, 1);
  assert_int_equal(weft_future_on(&f, &w.w), WEFT_ESTATE);
  assert_false(weft_waiter_linked(&w.w));
  assert_int_equal(log.n, 0);
}

static void future_removed_waiter_is_not_woken(void **state) {
  weft_future_t f;
  wrec w[3];
  test_log log;
  int i;
  (void)state;
  test_log_init(&log);
  weft_future_init(&f);
  for (i = 0; i < 3; i++) {
    wrec_init(&w[i], &log, i + 1);
    assert_int_equal(weft_future_on(&f, &w[i].w), 0);
  }
  weft_waiter_remove(&w[1].w);
  assert_false(weft_waiter_linked(&w[1].w));
  weft_waiter_remove(&w[1].w); /* harmless when unlinked */
  assert_int_equal(weft_future_fulfill(&f), 0);
  assert_int_equal(w[1].status, -1);
  TEST_LOG_EXPECT(&log, 1, 3);
}

static void future_waiter_callback_may_remove_a_later_waiter(void **state) {
  weft_future_t f;
  wrec w[3];
  test_log log;
  int i;
  (void)state;
  test_log_init(&log);
  weft_future_init(&f);
  for (i = 0; i < 3; i++) {
    wrec_init(&w[i], &log, i + 1);
    assert_int_equal(weft_future_on(&f, &w[i].w), 0);
  }
  w[0].remove = &w[1].w;  /* the first callback drops the second waiter */
  w[2].readd = &f;        /* the last tries to wait again: f is settled */
  assert_int_equal(weft_future_fulfill(&f), 0);
  TEST_LOG_EXPECT(&log, 1, 3);
  assert_int_equal(w[2].readd_result, WEFT_ESTATE);
  assert_false(weft_waiter_linked(&w[2].w));
}

/* --------------------------------------------------------- ready queue */

static void ready_queue_is_fifo_within_a_level(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  probe p[5];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(p, 0, sizeof p);
  for (i = 0; i < 5; i++) {
    p[i].name = i + 1;
    p[i].log = &log;
    start(&s, &p[i], fn_yield, WEFT_PRIO_NORMAL, NULL);
  }
  assert_int_equal(weft_sched_run(&s, SIZE_MAX), 5);
  TEST_LOG_EXPECT(&log, 1, 2, 3, 4, 5);
  test_sched_end(&s, &a);
}

static void ready_queue_serves_higher_priority_first(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  probe p[WEFT_NPRIO * 2];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(p, 0, sizeof p);
  /* Started least urgent first, two per level: name = 10 * prio + k. */
  for (i = 0; i < WEFT_NPRIO * 2; i++) {
    int prio = WEFT_PRIO_IDLE - i / 2;
    p[i].name = 10 * prio + i % 2;
    p[i].log = &log;
    start(&s, &p[i], fn_yield, prio, NULL);
  }
  /* Fewer dispatches than WEFT_FAIR_PERIOD: no fairness turn yet. */
  assert_true(WEFT_FAIR_PERIOD > 6);
  assert_int_equal(weft_sched_run(&s, 6), 6);
  TEST_LOG_EXPECT(&log, 0, 1, 10, 11, 20, 21);
  test_sched_settle(&s);
  test_sched_end(&s, &a);
}

static void ready_queue_fairness_runs_idle_under_critical_stream(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  probe crit[3], idle;
  int stop = 0, i;
  size_t pos;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(crit, 0, sizeof crit);
  memset(&idle, 0, sizeof idle);
  for (i = 0; i < 3; i++) {
    crit[i].log = &log;
    crit[i].stop = &stop;
    start(&s, &crit[i], fn_spin, WEFT_PRIO_CRITICAL, NULL);
  }
  idle.log = &log;
  idle.name = WEFT_PRIO_IDLE;
  start(&s, &idle, fn_yield, WEFT_PRIO_IDLE, NULL);
  /* The critical spinners requeue forever: the ready queue is never
   * without critical work, yet the idle task must get its turn. */
  assert_int_equal(weft_sched_run(&s, WEFT_FAIR_PERIOD * WEFT_NPRIO),
                   WEFT_FAIR_PERIOD * WEFT_NPRIO);
  assert_int_equal(idle.runs, 1);
  assert_int_equal(idle.t.done.state, WEFT_FUTURE_FULFILLED);
  for (pos = 0; pos < log.n && log.ev[pos] != WEFT_PRIO_IDLE; pos++) {
  }
  assert_true(pos < (size_t)WEFT_FAIR_PERIOD * WEFT_NPRIO);
  for (i = 0; i < (int)log.n; i++)
    if ((size_t)i != pos) assert_int_equal(log.ev[i], WEFT_PRIO_CRITICAL);
  stop = 1;
  test_sched_settle(&s);
  test_sched_end(&s, &a);
}

/* With every level saturated, each level runs in every window of
 * WEFT_FAIR_PERIOD * WEFT_NPRIO dispatches, and the critical level still
 * gets at least (WEFT_FAIR_PERIOD - 1) / WEFT_FAIR_PERIOD of them. */
static void ready_queue_fairness_serves_every_level_in_each_window(
    void **state) {
  enum { WIN = WEFT_FAIR_PERIOD * WEFT_NPRIO, TOTAL = 10 * WIN };
  weft_sched_t s;
  test_alloc a;
  test_log log;
  probe p[WEFT_NPRIO * 2];
  int stop = 0, i, lvl, crit = 0;
  size_t w;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(p, 0, sizeof p);
  for (i = 0; i < WEFT_NPRIO * 2; i++) {
    p[i].log = &log;
    p[i].stop = &stop;
    start(&s, &p[i], fn_spin, i % WEFT_NPRIO, NULL);
  }
  assert_int_equal(weft_sched_run(&s, TOTAL), TOTAL);
  assert_int_equal(log.n, TOTAL);
  for (w = 0; w + WIN <= log.n; w++) {
    for (lvl = 0; lvl < WEFT_NPRIO; lvl++) {
      size_t k;
      for (k = w; k < w + WIN && log.ev[k] != lvl; k++) {
      }
      if (k == w + WIN)
        fail_msg("level %d not served in dispatches %zu..%zu", lvl, w,
                 w + WIN - 1);
    }
  }
  for (i = 0; i < TOTAL; i++) crit += log.ev[i] == WEFT_PRIO_CRITICAL;
  assert_true(crit * WEFT_FAIR_PERIOD >= TOTAL * (WEFT_FAIR_PERIOD - 1));
  stop = 1;
  test_sched_settle(&s);
  test_sched_end(&s, &a);
}

static void sched_run_resumes_at_most_max_tasks(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p[3];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  memset(p, 0, sizeof p);
  for (i = 0; i < 3; i++) start(&s, &p[i], fn_yield, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_sched_run(&s, 2), 2);
  assert_true(weft_sched_has_ready(&s));
  assert_int_equal(p[2].runs, 0);
  assert_int_equal(weft_sched_run(&s, 0), 0);
  assert_int_equal(weft_sched_run(&s, 2), 1);
  assert_false(weft_sched_has_ready(&s));
  test_sched_end(&s, &a);
}

/* Stops the scheduler's run, then ends. */
static int fn_stop(weft_task_t *t, int status) {
  note(t, status);
  weft_sched_stop(t->sched);
  return WEFT_READY;
}

static void sched_stop_ends_the_run_after_the_current_task(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p[3];
  (void)state;
  test_sched_begin(&s, &a);
  memset(p, 0, sizeof p);
  weft_sched_stop(&s); /* outside a run: no effect on the next one */
  start(&s, &p[0], fn_yield, WEFT_PRIO_NORMAL, NULL);
  start(&s, &p[1], fn_stop, WEFT_PRIO_NORMAL, NULL);
  start(&s, &p[2], fn_yield, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_sched_run(&s, 10), 2); /* p[0], then p[1] stops */
  assert_int_equal(p[1].runs, 1);
  assert_int_equal(p[2].runs, 0);
  assert_true(weft_sched_has_ready(&s));
  assert_int_equal(weft_sched_run(&s, 10), 1); /* the next run starts anew */
  assert_int_equal(p[2].runs, 1);
  test_sched_end(&s, &a);
}

static int fn_check_current(weft_task_t *t, int status) {
  note(t, status);
  assert_ptr_equal(weft_sched_current(t->sched), t);
  return WEFT_READY;
}

static void sched_current_is_the_running_task_only(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  start(&s, &p, fn_check_current, WEFT_PRIO_NORMAL, NULL);
  assert_null(weft_sched_current(&s));
  assert_int_equal(weft_sched_run(&s, SIZE_MAX), 1);
  assert_int_equal(p.runs, 1);
  assert_null(weft_sched_current(&s));
  test_sched_end(&s, &a);
}

static void task_start_rejects_bad_arguments(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  assert_int_equal(weft_task_start(&s, &p.t, NULL, WEFT_PRIO_NORMAL, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_task_start(&s, &p.t, fn_yield, -1, NULL), WEFT_EINVAL);
  assert_int_equal(weft_task_start(&s, &p.t, fn_yield, WEFT_NPRIO, NULL),
                   WEFT_EINVAL);
  test_sched_end(&s, &a);
}

static void task_ids_are_unique_from_one_and_live_list_iterates(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p[3];
  weft_task_t *t;
  int i, n = 0;
  (void)state;
  test_sched_begin(&s, &a);
  memset(p, 0, sizeof p);
  weft_sched_set_time(&s, 7);
  for (i = 0; i < 3; i++) start(&s, &p[i], fn_yield, WEFT_PRIO_NORMAL, NULL);
  for (i = 0; i < 3; i++) {
    assert_int_equal(p[i].t.id, (uint64_t)i + 1);
    assert_int_equal(p[i].t.born, 7);
  }
  for (t = weft_sched_next_live(&s, NULL); t; t = weft_sched_next_live(&s, t))
    assert_ptr_equal(t, &p[n++].t);
  assert_int_equal(n, 3);
  test_sched_settle(&s);
  test_sched_end(&s, &a);
}

/* --------------------------------------------------------- task waits */

static void task_await_of_settled_future_returns_at_once(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  assert_int_equal(weft_future_reject(&f, WEFT_EINVAL), 0);
  memset(&p, 0, sizeof p);
  p.fut = &f;
  p.ms = WEFT_FOREVER;
  start(&s, &p, fn_await, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_sched_run(&s, SIZE_MAX), 1);
  assert_int_equal(p.runs, 1);
  assert_int_equal(p.res, 0);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_FULFILLED);
  test_sched_end(&s, &a);
}

static void task_await_wakes_with_zero_when_future_settles(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  memset(&p, 0, sizeof p);
  p.fut = &f;
  p.ms = WEFT_FOREVER;
  p.res = 99;
  start(&s, &p, fn_await, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(test_sched_settle(&s), 1);
  assert_true(p.t.flags & WEFT_TASK_PARKED);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.timers, 0); /* no deadline: no timer */
  assert_int_equal(st.live, 1);
  assert_int_equal(p.res, 99);
  assert_int_equal(weft_future_reject(&f, WEFT_EINVAL), 0);
  assert_true(p.t.flags & WEFT_TASK_QUEUED);
  assert_int_equal(test_sched_settle(&s), 1);
  assert_int_equal(p.runs, 2);
  assert_int_equal(p.st[1], 0); /* the future's state is the caller's to read */
  assert_int_equal(p.t.done.state, WEFT_FUTURE_FULFILLED);
  test_sched_end(&s, &a);
}

static void task_await_timeout_wakes_with_etimedout(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  memset(&p, 0, sizeof p);
  p.fut = &f;
  p.ms = 100;
  weft_sched_set_time(&s, 1000);
  start(&s, &p, fn_await, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 1099);
  assert_int_equal(p.runs, 1);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.timers, 1);
  test_sched_advance(&s, 1100);
  assert_int_equal(p.runs, 2);
  assert_int_equal(p.res, WEFT_ETIMEDOUT);
  /* The waiter left the future: settling it now wakes nobody. */
  assert_int_equal(weft_future_fulfill(&f), 0);
  assert_false(weft_sched_has_ready(&s));
  test_sched_end(&s, &a);
}

static void task_await_settled_before_deadline_stops_its_timer(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  memset(&p, 0, sizeof p);
  p.fut = &f;
  p.ms = 100;
  start(&s, &p, fn_await, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 50);
  assert_int_equal(weft_future_fulfill(&f), 0);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.timers, 0);
  test_sched_settle(&s);
  assert_int_equal(p.res, 0);
  assert_int_equal(weft_sched_now(&s), 50); /* no deadline was left */
  test_sched_end(&s, &a);
}

static void task_sleep_wakes_at_its_deadline(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p[2];
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(p, 0, sizeof p);
  weft_sched_set_time(&s, 10);
  p[0].ms = 50;
  p[0].name = 1;
  p[0].log = &log;
  p[1].ms = 20;
  p[1].name = 2;
  p[1].log = &log;
  start(&s, &p[0], fn_sleep, WEFT_PRIO_NORMAL, NULL);
  start(&s, &p[1], fn_sleep, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 29);
  assert_int_equal(log.n, 0);
  test_sched_advance(&s, 30);
  TEST_LOG_EXPECT(&log, 2);
  test_sched_advance(&s, 59);
  TEST_LOG_EXPECT(&log, 2);
  test_sched_advance(&s, 60);
  TEST_LOG_EXPECT(&log, 2, 1);
  assert_int_equal(p[0].res, 0);
  assert_int_equal(p[1].res, 0);
  test_sched_end(&s, &a);
}

static void task_sleep_forever_still_has_a_deadline(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  uint64_t due;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  p.ms = WEFT_FOREVER;
  weft_sched_set_time(&s, 5);
  start(&s, &p, fn_sleep, WEFT_PRIO_NORMAL, NULL);
  weft_sched_run(&s, SIZE_MAX);
  assert_int_equal(weft_sched_next_due(&s, &due), 0);
  assert_true(due > 5); /* saturated, not wrapped into the past */
  assert_int_equal(weft_task_cancel(&p.t), 0);
  test_sched_settle(&s);
  assert_int_equal(p.res, WEFT_ECANCELED);
  test_sched_end(&s, &a);
}

static void task_yield_requeues_behind_its_level(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p[3];
  test_log log;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(p, 0, sizeof p);
  for (i = 0; i < 3; i++) {
    p[i].name = i + 1;
    p[i].log = &log;
    p[i].yields = 2 - i;
  }
  for (i = 0; i < 3; i++) start(&s, &p[i], fn_yield, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 2, 3, 1, 2, 1);
  for (i = 0; i < 3; i++) assert_int_equal(p[i].st[1], 0);
  test_sched_end(&s, &a);
}

static int fn_finish_self(weft_task_t *t, int status) {
  note(t, status);
  assert_int_equal(weft_task_finish(t, WEFT_FUTURE_REJECTED, WEFT_EFULL), 0);
  assert_int_equal(weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0),
                   WEFT_ESTATE);
  return WEFT_PENDING;
}

static void task_finish_settles_its_future_once(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  start(&s, &p, fn_finish_self, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(p.runs, 1);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_REJECTED);
  assert_int_equal(p.t.done.code, WEFT_EFULL);
  assert_true(p.t.flags & WEFT_TASK_DONE);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.rejected, 1);
  assert_int_equal(st.fulfilled, 0);
  test_sched_end(&s, &a);
}

static void task_finish_of_a_queued_task_takes_it_off_the_queue(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p[3];
  test_log log;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(p, 0, sizeof p);
  for (i = 0; i < 3; i++) {
    p[i].name = i + 1;
    p[i].log = &log;
    start(&s, &p[i], fn_yield, WEFT_PRIO_NORMAL, NULL);
  }
  /* The middle one ends (from outside) while it waits in the queue. */
  assert_int_equal(weft_task_finish(&p[1].t, WEFT_FUTURE_CANCELLED, 0), 0);
  assert_int_equal(p[1].t.done.state, WEFT_FUTURE_CANCELLED);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 3);
  assert_int_equal(p[1].runs, 0);
  test_sched_end(&s, &a);
}

/* -------------------------------------------------------- cancellation */

static void cancel_wakes_a_parked_task_with_ecanceled(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  memset(&p, 0, sizeof p);
  p.fut = &f;
  p.ms = 1000; /* a deadline too: both must be dropped */
  start(&s, &p, fn_await, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 10);
  assert_int_equal(weft_task_cancel(&p.t), 0);
  assert_true(p.t.flags & WEFT_TASK_CANCEL);
  assert_false(p.t.flags & WEFT_TASK_PARKED);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.timers, 0);
  assert_int_equal(st.ready, 1);
  test_sched_settle(&s);
  assert_int_equal(p.runs, 2);
  assert_int_equal(p.res, WEFT_ECANCELED);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_sched_now(&s), 10);
  /* The future lost its waiter. */
  assert_int_equal(weft_future_fulfill(&f), 0);
  assert_false(weft_sched_has_ready(&s));
  weft_sched_stats(&s, &st);
  assert_int_equal(st.cancelled, 1);
  test_sched_end(&s, &a);
}

static void cancel_before_first_run_is_seen_on_first_run(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  start(&s, &p, fn_yield, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_task_cancel(&p.t), 0);
  test_sched_settle(&s);
  assert_int_equal(p.runs, 1);
  assert_int_equal(p.st[0], WEFT_ECANCELED);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_CANCELLED);
  test_sched_end(&s, &a);
}

static void cancel_of_a_queued_started_task_keeps_the_request(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  p.yields = 1;
  start(&s, &p, fn_yield, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_sched_run(&s, 1), 1); /* it yielded: queued */
  assert_true(p.t.flags & WEFT_TASK_QUEUED);
  assert_int_equal(weft_task_cancel(&p.t), 0);
  assert_int_equal(weft_task_cancel(&p.t), 0); /* twice is harmless */
  test_sched_settle(&s);
  /* Its yield completed normally; the request waits for its next wait. */
  assert_int_equal(p.runs, 2);
  assert_int_equal(p.st[1], 0);
  assert_true(p.t.flags & WEFT_TASK_CANCEL);
  test_sched_end(&s, &a);
}

static void cancel_of_a_finished_task_returns_estate(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  start(&s, &p, fn_yield, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&p.t), WEFT_ESTATE);
  assert_false(p.t.flags & WEFT_TASK_CANCEL);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_FULFILLED);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.cancelled, 0);
  test_sched_end(&s, &a);
}

/* A tree: root -> (a -> (a1, a2), b -> b1), and a root task "other"; all
 * wait on a future nobody settles. Cancelling a cancels a, a1, a2 only;
 * cancelling root then cancels the rest of its tree but not other. */
static void cancel_propagates_to_every_descendant_only(void **state) {
  enum { ROOT, A, A1, A2, B, B1, OTHER, N };
  static const int parent[N] = {-1, ROOT, A, A, ROOT, B, -1};
  weft_sched_t s;
  test_alloc a;
  weft_future_t never;
  probe p[N];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  memset(p, 0, sizeof p);
  for (i = 0; i < N; i++) {
    p[i].fut = &never;
    p[i].ms = WEFT_FOREVER;
    start(&s, &p[i], fn_await, WEFT_PRIO_NORMAL,
          parent[i] < 0 ? NULL : &p[parent[i]]);
  }
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&p[A].t), 0);
  test_sched_settle(&s);
  for (i = 0; i < N; i++) {
    int hit = i == A || i == A1 || i == A2;
    assert_int_equal(p[i].runs, hit ? 2 : 1);
    if (hit) assert_int_equal(p[i].res, WEFT_ECANCELED);
  }
  assert_int_equal(weft_task_cancel(&p[ROOT].t), 0);
  test_sched_settle(&s);
  for (i = 0; i < N; i++) {
    assert_int_equal(p[i].runs, i == OTHER ? 1 : 2);
    if (i != OTHER) assert_int_equal(p[i].res, WEFT_ECANCELED);
  }
  assert_int_equal(weft_task_cancel(&p[OTHER].t), 0);
  test_sched_settle(&s);
  test_sched_end(&s, &a);
}

static void cancel_reaches_the_end_of_a_deep_chain(void **state) {
  enum { N = 10000 };
  weft_sched_t s;
  test_alloc a;
  weft_future_t never;
  probe *p = calloc(N, sizeof *p);
  weft_stats_t st;
  int i;
  (void)state;
  assert_non_null(p);
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  for (i = 0; i < N; i++) {
    p[i].fut = &never;
    p[i].ms = WEFT_FOREVER;
    start(&s, &p[i], fn_await, WEFT_PRIO_NORMAL, i ? &p[i - 1] : NULL);
  }
  assert_int_equal(test_sched_settle(&s), N);
  assert_int_equal(weft_task_cancel(&p[0].t), 0);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.ready, N);
  assert_int_equal(test_sched_settle(&s), N);
  for (i = 0; i < N; i++) {
    assert_int_equal(p[i].runs, 2);
    assert_int_equal(p[i].res, WEFT_ECANCELED);
  }
  weft_sched_stats(&s, &st);
  assert_int_equal(st.cancelled, N);
  test_sched_end(&s, &a);
  free(p);
}

/* A chain too deep for recursion that starts itself: each task starts
 * its child and waits; the cancel of the root must reach the leaf. */
static void cancel_reaches_a_deep_chain_of_nested_spawns(void **state) {
  enum { N = 10000 };
  weft_sched_t s;
  test_alloc a;
  weft_future_t never;
  probe *p = calloc(N, sizeof *p);
  int i;
  (void)state;
  assert_non_null(p);
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  for (i = 0; i < N; i++) {
    p[i].fut = &never;
    p[i].ms = WEFT_FOREVER;
    if (i + 1 < N) {
      p[i].spawn = &p[i + 1];
      p[i].spawn_fn = fn_await;
    }
  }
  start(&s, &p[0], fn_await, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(test_sched_settle(&s), N);
  assert_int_equal(weft_task_cancel(&p[0].t), 0);
  assert_int_equal(test_sched_settle(&s), N);
  assert_int_equal(p[N - 1].res, WEFT_ECANCELED);
  for (i = 0; i < N; i++) assert_int_equal(p[i].res, WEFT_ECANCELED);
  test_sched_end(&s, &a);
  free(p);
}

static void child_of_a_cancelled_parent_starts_cancelled(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe parent, child;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&parent, 0, sizeof parent);
  memset(&child, 0, sizeof child);
  parent.yields = 1;
  start(&s, &parent, fn_yield, WEFT_PRIO_NORMAL, NULL);
  weft_sched_run(&s, 1);
  assert_int_equal(weft_task_cancel(&parent.t), 0); /* queued: request kept */
  start(&s, &child, fn_yield, WEFT_PRIO_NORMAL, &parent);
  assert_true(child.t.flags & WEFT_TASK_CANCEL);
  test_sched_settle(&s);
  assert_int_equal(child.st[0], WEFT_ECANCELED);
  assert_int_equal(child.t.done.state, WEFT_FUTURE_CANCELLED);
  test_sched_end(&s, &a);
}

/* grand waits; parent starts child and finishes at once; child waits.
 * The child is detached: cancelling grand or parent does not reach it,
 * and it runs on until its own wait ends. */
static void children_are_detached_when_their_parent_finishes(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t never, f;
  probe grand, parent, child;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  weft_future_init(&f);
  memset(&grand, 0, sizeof grand);
  memset(&parent, 0, sizeof parent);
  memset(&child, 0, sizeof child);
  grand.fut = &never;
  grand.ms = WEFT_FOREVER;
  child.fut = &f;
  child.ms = WEFT_FOREVER;
  parent.spawn = &child;
  parent.spawn_fn = fn_await;
  parent.ms = 0;
  start(&s, &grand, fn_await, WEFT_PRIO_NORMAL, NULL);
  start(&s, &parent, fn_sleep, WEFT_PRIO_NORMAL, &grand);
  test_sched_settle(&s);
  assert_int_equal(parent.t.done.state, WEFT_FUTURE_FULFILLED);
  assert_true(child.t.flags & WEFT_TASK_PARKED);
  assert_int_equal(weft_task_cancel(&parent.t), WEFT_ESTATE);
  assert_int_equal(weft_task_cancel(&grand.t), 0);
  test_sched_settle(&s);
  assert_int_equal(grand.res, WEFT_ECANCELED);
  assert_false(child.t.flags & WEFT_TASK_CANCEL);
  assert_true(child.t.flags & WEFT_TASK_PARKED);
  assert_int_equal(weft_future_fulfill(&f), 0);
  test_sched_settle(&s);
  assert_int_equal(child.res, 0);
  assert_int_equal(child.t.done.state, WEFT_FUTURE_FULFILLED);
  test_sched_end(&s, &a);
}

/* The memory of a finished task is its owner's again (a binding frees
 * it): the scheduler must not write to it when a child it had ends. */
static void finished_task_memory_is_not_touched_by_its_children(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe parent, child, scribbled;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  memset(&parent, 0, sizeof parent);
  memset(&child, 0, sizeof child);
  child.fut = &f;
  child.ms = WEFT_FOREVER;
  parent.spawn = &child;
  parent.spawn_fn = fn_await;
  parent.ms = 0;
  start(&s, &parent, fn_sleep, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_true(parent.t.flags & WEFT_TASK_DONE);
  memset(&parent, 0xA5, sizeof parent); /* reused by its owner */
  memcpy(&scribbled, &parent, sizeof parent);
  assert_int_equal(weft_task_cancel(&child.t), 0);
  test_sched_settle(&s);
  assert_int_equal(child.res, WEFT_ECANCELED);
  assert_memory_equal(&parent, &scribbled, sizeof parent);
  test_sched_end(&s, &a);
}

/* -------------------------------------------------------------- groups */

static void member(probe *p, test_log *log, long name, uint64_t ms,
                   int code) {
  memset(p, 0, sizeof *p);
  p->log = log;
  p->name = name;
  p->ms = ms;
  p->code = code;
}

static void start_member(weft_sched_t *s, weft_group_t *g, probe *p) {
  start(s, p, fn_sleep, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_group_add(g, &p->t), 0);
}

static void group_join_hands_out_members_in_finish_order(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[3], j;
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, 0);
  member(&j, &log, 0, 0, 0);
  j.grp = &g;
  member(&m[0], &log, 1, 30, 0);
  member(&m[1], &log, 2, 10, 0);
  member(&m[2], &log, 3, 20, 0);
  start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  start_member(&s, &g, &m[2]);
  assert_int_equal(weft_group_size(&g), 3);
  test_sched_settle(&s);
  /* Member ends, then the parked joiner gets it; -1: empty afterwards. */
  TEST_LOG_EXPECT(&log, 2, 102, 3, 103, 1, 101, -1);
  assert_int_equal(weft_group_size(&g), 0);
  test_sched_end(&s, &a);
}

static void group_join_takes_already_finished_members_fifo(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[3], j;
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, 0);
  member(&m[0], &log, 1, 30, 0);
  member(&m[1], &log, 2, 10, 0);
  member(&m[2], &log, 3, 20, 0);
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  start_member(&s, &g, &m[2]);
  test_sched_settle(&s);
  assert_int_equal(weft_group_size(&g), 3); /* finished, not yet joined */
  member(&j, &log, 0, 0, 0);
  j.grp = &g;
  start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 2, 3, 1, 102, 103, 101, -1);
  assert_int_equal(j.runs, 1); /* it never had to wait */
  test_sched_end(&s, &a);
}

static void group_join_on_empty_group_returns_eclosed(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe j;
  test_log log;
  weft_task_t *out = NULL;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, WEFT_GROUP_FAIL_FAST);
  assert_int_equal(weft_group_size(&g), 0);
  assert_null(weft_group_failed(&g));
  member(&j, &log, 0, 0, 0);
  j.grp = &g;
  start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, -1);
  assert_int_equal(weft_group_join(&g, &j.t, &out), WEFT_ECLOSED);
  assert_null(out);
  test_sched_end(&s, &a);
}

static void group_fail_fast_cancels_the_siblings(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[3];
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, WEFT_GROUP_FAIL_FAST);
  member(&m[0], &log, 1, 50, 0);
  member(&m[1], &log, 2, 10, WEFT_EINVAL);
  member(&m[2], &log, 3, 50, 0);
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  start_member(&s, &g, &m[2]);
  test_sched_settle(&s);
  assert_ptr_equal(weft_group_failed(&g), &m[1].t);
  assert_int_equal(m[1].t.done.state, WEFT_FUTURE_REJECTED);
  assert_int_equal(m[1].t.done.code, WEFT_EINVAL);
  assert_int_equal(m[0].res, WEFT_ECANCELED);
  assert_int_equal(m[2].res, WEFT_ECANCELED);
  assert_int_equal(m[0].t.done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(m[2].t.done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_sched_now(&s), 10); /* nobody slept on to 50 */
  assert_int_equal(weft_group_size(&g), 3);
  weft_group_clear(&g);
  assert_int_equal(weft_group_size(&g), 0);
  test_sched_end(&s, &a);
}

static void group_records_the_first_failure_without_fail_fast(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[3], j;
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, 0);
  member(&m[0], &log, 1, 50, 0);
  member(&m[1], &log, 2, 10, WEFT_EINVAL);
  member(&m[2], &log, 3, 20, WEFT_EFULL);
  member(&j, &log, 0, 0, 0);
  j.grp = &g;
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  start_member(&s, &g, &m[2]);
  start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_ptr_equal(weft_group_failed(&g), &m[1].t);
  assert_int_equal(m[0].res, 0); /* the sibling ran to its end */
  assert_int_equal(m[0].t.done.state, WEFT_FUTURE_FULFILLED);
  assert_int_equal(m[2].t.done.state, WEFT_FUTURE_REJECTED);
  TEST_LOG_EXPECT(&log, 2, 102, 3, 103, 1, 101, -1);
  test_sched_end(&s, &a);
}

static void group_cancel_cancels_every_running_member(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[2], done;
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, 0);
  member(&done, &log, 9, 0, 0);
  member(&m[0], &log, 1, 50, 0);
  member(&m[1], &log, 2, 60, 0);
  start_member(&s, &g, &done);
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  test_sched_advance(&s, 5);
  assert_int_equal(done.t.done.state, WEFT_FUTURE_FULFILLED);
  weft_group_cancel(&g);
  test_sched_settle(&s);
  assert_int_equal(m[0].res, WEFT_ECANCELED);
  assert_int_equal(m[1].res, WEFT_ECANCELED);
  assert_null(weft_group_failed(&g)); /* cancelled is not failed */
  assert_int_equal(weft_sched_now(&s), 5);
  weft_group_clear(&g);
  test_sched_end(&s, &a);
}

static void group_clear_unlinks_members_and_wakes_joiners(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g, g2;
  probe m[2], j;
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, WEFT_GROUP_FAIL_FAST);
  member(&m[0], &log, 1, 10, 0);
  member(&m[1], &log, 2, 50, WEFT_EINVAL);
  member(&j, &log, 0, 0, 0);
  j.grp = &g;
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  test_sched_advance(&s, 10); /* m[0] finished and waits to be joined */
  assert_int_equal(weft_group_size(&g), 2);
  start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 20); /* j took m[0] and now waits */
  weft_group_clear(&g);
  assert_int_equal(weft_group_size(&g), 0);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 101, -2, 2);
  /* The failure after the clear reached the group no more. */
  assert_null(weft_group_failed(&g));
  assert_int_equal(weft_group_size(&g), 0);
  /* A finished member cannot join a group again. */
  weft_group_init(&g2, 0);
  assert_int_equal(weft_group_add(&g2, &m[1].t), WEFT_EINVAL);
  test_sched_end(&s, &a);
}

static void group_add_rejects_members_of_another_group(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g1, g2;
  probe m;
  test_log log;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g1, 0);
  weft_group_init(&g2, 0);
  member(&m, &log, 1, 10, 0);
  start_member(&s, &g1, &m);
  assert_int_equal(weft_group_add(&g2, &m.t), WEFT_EINVAL);
  assert_int_equal(weft_group_add(&g1, &m.t), WEFT_EINVAL);
  assert_int_equal(weft_group_size(&g2), 0);
  weft_group_clear(&g1);
  assert_int_equal(weft_group_add(&g2, &m.t), 0); /* free again */
  test_sched_settle(&s);
  assert_int_equal(weft_group_size(&g2), 1);
  weft_group_clear(&g2);
  test_sched_end(&s, &a);
}

/* ------------------------------------------------------------ channels */

static void chan_buffered_is_fifo_across_the_ring_wrap(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  int i, v, next_in = 0, next_out = 0;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 4, sizeof(int)), 0);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_EEMPTY);
  for (i = 0; i < 4; i++) {
    v = next_in++;
    assert_int_equal(weft_chan_try_send(&ch, &v), 0);
  }
  assert_int_equal(weft_chan_count(&ch), 4);
  v = 99;
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_EFULL);
  /* Take 3, put 3, many times: the ring head wraps around. */
  for (i = 0; i < 10; i++) {
    int k;
    for (k = 0; k < 3; k++) {
      assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
      assert_int_equal(v, next_out++);
    }
    for (k = 0; k < 3; k++) {
      v = next_in++;
      assert_int_equal(weft_chan_try_send(&ch, &v), 0);
    }
  }
  while (weft_chan_try_recv(&ch, &v) == 0) assert_int_equal(v, next_out++);
  assert_int_equal(next_out, next_in);
  assert_int_equal(weft_chan_count(&ch), 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_init_rejects_zero_item_size_and_overflow(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 4, 0), WEFT_EINVAL);
  assert_int_equal(weft_chan_init(&s, &ch, (size_t)-1 / 2, 4), WEFT_ENOMEM);
  assert_int_equal(a.live_blocks, 0);
  assert_int_equal(weft_chan_init(&s, &ch, 0, 4), 0); /* no buffer needed */
  assert_int_equal(a.live_blocks, 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_rendezvous_send_waits_for_a_receiver(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd;
  test_log log;
  int v = 0;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  assert_int_equal(weft_chan_init(&s, &ch, 0, sizeof(int)), 0);
  v = 1;
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_EFULL);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_EEMPTY);
  memset(&snd, 0, sizeof snd);
  snd.ch = &ch;
  snd.item = 42;
  snd.name = 1;
  snd.log = &log;
  start(&s, &snd, fn_send, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_true(snd.t.flags & WEFT_TASK_PARKED); /* nobody took it yet */
  assert_int_equal(weft_chan_count(&ch), 0);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 42);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1);
  assert_int_equal(snd.res, 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_rendezvous_send_hands_to_a_waiting_receiver(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  int v = 7;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 0, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_chan_try_send(&ch, &v), 0);
  v = 8; /* copied at the hand-off: later changes do not matter */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, 0);
  assert_int_equal(rcv.item, 7);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_full_senders_park_and_are_served_fifo(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd[4], rcv[4];
  test_log log;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(snd, 0, sizeof snd);
  memset(rcv, 0, sizeof rcv);
  for (i = 0; i < 4; i++) {
    snd[i].ch = &ch;
    snd[i].item = 10 + i;
    snd[i].name = 1 + i;
    snd[i].log = &log;
    start(&s, &snd[i], fn_send, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1); /* the first filled the buffer; 3 wait */
  assert_int_equal(weft_chan_count(&ch), 1);
  for (i = 0; i < 4; i++) {
    rcv[i].ch = &ch;
    rcv[i].name = 11 + i;
    rcv[i].log = &log;
    start(&s, &rcv[i], fn_recv, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  for (i = 0; i < 4; i++) {
    assert_int_equal(rcv[i].res, 0);
    assert_int_equal(rcv[i].item, 10 + i);
    assert_int_equal(snd[i].res, 0);
  }
  /* Each receive moved the oldest waiting sender's item into the buffer
   * and woke that sender. */
  TEST_LOG_EXPECT(&log, 1, 11, 12, 13, 14, 2, 3, 4);
  assert_int_equal(weft_chan_count(&ch), 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_close_wakes_receivers_with_eclosed(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv[2];
  int i, v = 1;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 2, sizeof(int)), 0);
  memset(rcv, 0, sizeof rcv);
  for (i = 0; i < 2; i++) {
    rcv[i].ch = &ch;
    rcv[i].item = -5;
    start(&s, &rcv[i], fn_recv, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  weft_chan_close(&ch);
  test_sched_settle(&s);
  for (i = 0; i < 2; i++) {
    assert_int_equal(rcv[i].res, WEFT_ECLOSED);
    assert_int_equal(rcv[i].item, -5);
  }
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_ECLOSED);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_ECLOSED);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_close_wakes_senders_and_keeps_buffered_items(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd[3], late;
  int i, v;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(snd, 0, sizeof snd);
  for (i = 0; i < 3; i++) {
    snd[i].ch = &ch;
    snd[i].item = 1 + i;
    start(&s, &snd[i], fn_send, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  weft_chan_close(&ch);
  weft_chan_close(&ch); /* idempotent */
  test_sched_settle(&s);
  assert_int_equal(snd[0].res, 0);
  assert_int_equal(snd[1].res, WEFT_ECLOSED);
  assert_int_equal(snd[2].res, WEFT_ECLOSED);
  /* The buffered item is still there, then the channel reads closed. */
  assert_int_equal(weft_chan_count(&ch), 1);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_ECLOSED);
  /* A task sending or receiving now gets WEFT_ECLOSED without waiting. */
  memset(&late, 0, sizeof late);
  late.ch = &ch;
  start(&s, &late, fn_send, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(late.runs, 1);
  assert_int_equal(late.res, WEFT_ECLOSED);
  memset(&late, 0, sizeof late);
  late.ch = &ch;
  start(&s, &late, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(late.runs, 1);
  assert_int_equal(late.res, WEFT_ECLOSED);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_receiver_woken_then_cancelled_keeps_its_item(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  int v = 31;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_chan_try_send(&ch, &v), 0); /* handed over */
  assert_int_equal(weft_task_cancel(&rcv.t), 0);    /* before it runs */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, 0);
  assert_int_equal(rcv.item, 31);
  assert_true(rcv.t.flags & WEFT_TASK_CANCEL);
  assert_int_equal(weft_chan_count(&ch), 0); /* not duplicated either */
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_sender_woken_then_cancelled_was_taken(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd;
  int v = 0;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 0, sizeof(int)), 0);
  memset(&snd, 0, sizeof snd);
  snd.ch = &ch;
  snd.item = 5;
  start(&s, &snd, fn_send, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(weft_task_cancel(&snd.t), 0);
  test_sched_settle(&s);
  assert_int_equal(v, 5);
  assert_int_equal(snd.res, 0); /* its send completed */
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_cancelled_waiting_receiver_takes_nothing(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  int v = 3;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  rcv.item = -1;
  start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&rcv.t), 0);
  assert_int_equal(weft_chan_try_send(&ch, &v), 0); /* buffered, not lost */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, WEFT_ECANCELED);
  assert_int_equal(rcv.item, -1);
  assert_int_equal(weft_chan_count(&ch), 1);
  v = 0;
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 3);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_free_drops_waiting_tasks_without_waking(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 3, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  weft_chan_free(&ch);
  assert_false(weft_sched_has_ready(&s));
  assert_int_equal(a.live_blocks, 0);
  assert_true(rcv.t.flags & WEFT_TASK_PARKED);
  assert_int_equal(weft_task_cancel(&rcv.t), 0); /* its owner ends it */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, WEFT_ECANCELED);
  test_sched_end(&s, &a);
}

/* ---------------------------------------------------------- semaphores */

static void sem_hands_released_permits_to_waiters_fifo(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_sem_t sem;
  probe p[3];
  test_log log;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_sem_init(&sem, 1);
  memset(p, 0, sizeof p);
  for (i = 0; i < 3; i++) {
    p[i].sem = &sem;
    p[i].name = i + 1;
    p[i].log = &log;
    start(&s, &p[i], fn_acquire, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1);
  assert_int_equal(weft_sem_waiting(&sem), 2);
  assert_int_equal(sem.count, 0);
  weft_sem_release(&sem);
  /* The permit went straight to the oldest waiter: none is free. */
  assert_int_equal(weft_sem_waiting(&sem), 1);
  assert_int_equal(sem.count, 0);
  assert_int_equal(weft_sem_try_acquire(&sem), WEFT_EEMPTY);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 2);
  weft_sem_release(&sem);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 2, 3);
  assert_int_equal(weft_sem_waiting(&sem), 0);
  weft_sem_release(&sem);
  assert_int_equal(sem.count, 1);
  for (i = 0; i < 3; i++) assert_int_equal(p[i].res, 0);
  test_sched_end(&s, &a);
}

static void sem_try_acquire_takes_permits_until_none_left(void **state) {
  weft_sem_t sem;
  (void)state;
  weft_sem_init(&sem, 2);
  assert_int_equal(weft_sem_try_acquire(&sem), 0);
  assert_int_equal(weft_sem_try_acquire(&sem), 0);
  assert_int_equal(weft_sem_try_acquire(&sem), WEFT_EEMPTY);
  assert_int_equal(sem.count, 0);
  weft_sem_release(&sem);
  assert_int_equal(weft_sem_try_acquire(&sem), 0);
  assert_int_equal(weft_sem_waiting(&sem), 0);
}

static void sem_cancelled_waiter_loses_its_place(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_sem_t sem;
  probe p[2];
  (void)state;
  test_sched_begin(&s, &a);
  weft_sem_init(&sem, 0);
  memset(p, 0, sizeof p);
  p[0].sem = p[1].sem = &sem;
  start(&s, &p[0], fn_acquire, WEFT_PRIO_NORMAL, NULL);
  start(&s, &p[1], fn_acquire, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&p[0].t), 0);
  assert_int_equal(weft_sem_waiting(&sem), 1);
  weft_sem_release(&sem);
  test_sched_settle(&s);
  assert_int_equal(p[0].res, WEFT_ECANCELED);
  assert_int_equal(p[1].res, 0);
  assert_int_equal(sem.count, 0); /* the permit went to p[1], not lost */
  test_sched_end(&s, &a);
}

/* -------------------------------------------------------------- stats */

static void stats_count_tasks_by_outcome_and_dispatch(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe ok, bad, cancelled, yielder, sleeper;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&ok, 0, sizeof ok);
  memset(&bad, 0, sizeof bad);
  memset(&cancelled, 0, sizeof cancelled);
  memset(&yielder, 0, sizeof yielder);
  memset(&sleeper, 0, sizeof sleeper);
  bad.code = WEFT_EINVAL;
  yielder.yields = 2;
  sleeper.ms = 10;
  weft_sched_stats(&s, &st);
  assert_int_equal(st.spawned + st.finished + st.dispatched + st.live +
                       st.ready + st.timers,
                   0);
  start(&s, &ok, fn_yield, WEFT_PRIO_NORMAL, NULL);
  start(&s, &bad, fn_yield, WEFT_PRIO_NORMAL, NULL);
  start(&s, &cancelled, fn_yield, WEFT_PRIO_NORMAL, NULL);
  start(&s, &yielder, fn_yield, WEFT_PRIO_NORMAL, NULL);
  start(&s, &sleeper, fn_sleep, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_task_cancel(&cancelled.t), 0);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.spawned, 5);
  assert_int_equal(st.live, 5);
  assert_int_equal(st.ready, 5);
  assert_int_equal(st.dispatched, 0);
  assert_int_equal(weft_sched_run(&s, 5), 5);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.dispatched, 5);
  assert_int_equal(st.finished, 3);
  assert_int_equal(st.live, 2);
  assert_int_equal(st.ready, 1); /* the yielder */
  assert_int_equal(st.timers, 1); /* the sleeper */
  test_sched_settle(&s);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.spawned, 5);
  assert_int_equal(st.finished, 5);
  assert_int_equal(st.fulfilled, 3);
  assert_int_equal(st.rejected, 1);
  assert_int_equal(st.cancelled, 1);
  assert_int_equal(st.dispatched, 5 + 2 + 1);
  assert_int_equal(st.live, 0);
  assert_int_equal(st.ready, 0);
  assert_int_equal(st.timers, 0);
  test_sched_end(&s, &a);
}

/* ------------------------------------------------------------- errors */

static void error_names_and_messages_cover_every_code(void **state) {
  static const struct {
    int code;
    const char *name;
  } codes[] = {
      {WEFT_OK, "WEFT_OK"},           {WEFT_ENOMEM, "WEFT_ENOMEM"},
      {WEFT_ECANCELED, "WEFT_ECANCELED"}, {WEFT_ETIMEDOUT, "WEFT_ETIMEDOUT"},
      {WEFT_ECLOSED, "WEFT_ECLOSED"}, {WEFT_EINVAL, "WEFT_EINVAL"},
      {WEFT_EFULL, "WEFT_EFULL"},     {WEFT_EEMPTY, "WEFT_EEMPTY"},
      {WEFT_ESTATE, "WEFT_ESTATE"},   {WEFT_EDEADLK, "WEFT_EDEADLK"},
      {WEFT_ESCRIPT, "WEFT_ESCRIPT"},
  };
  const size_t n = sizeof codes / sizeof codes[0];
  const char *unknown = weft_strerror(-29999);
  size_t i, j;
  (void)state;
  assert_non_null(unknown);
  assert_non_null(weft_err_name(-29999));
  assert_non_null(weft_err_name(12345));
  for (i = 0; i < n; i++) {
    const char *msg = weft_strerror(codes[i].code);
    assert_string_equal(weft_err_name(codes[i].code), codes[i].name);
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    assert_string_not_equal(msg, unknown);
    for (j = 0; j < i; j++)
      assert_string_not_equal(msg, weft_strerror(codes[j].code));
    if (codes[i].code != WEFT_OK) assert_true(codes[i].code < -30000);
  }
  assert_string_equal(weft_strerror(WEFT_ECANCELED), "cancelled");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(future_fulfill_wakes_waiters_in_order_once),
      cmocka_unit_test(future_reject_keeps_its_code_against_later_settles),
      cmocka_unit_test(future_cancel_settles_once_with_ecanceled),
      cmocka_unit_test(future_on_settled_future_adds_nothing),
      cmocka_unit_test(future_removed_waiter_is_not_woken),
      cmocka_unit_test(future_waiter_callback_may_remove_a_later_waiter),
      cmocka_unit_test(ready_queue_is_fifo_within_a_level),
      cmocka_unit_test(ready_queue_serves_higher_priority_first),
      cmocka_unit_test(ready_queue_fairness_runs_idle_under_critical_stream),
      cmocka_unit_test(
          ready_queue_fairness_serves_every_level_in_each_window),
      cmocka_unit_test(sched_run_resumes_at_most_max_tasks),
      cmocka_unit_test(sched_stop_ends_the_run_after_the_current_task),
      cmocka_unit_test(sched_current_is_the_running_task_only),
      cmocka_unit_test(task_start_rejects_bad_arguments),
      cmocka_unit_test(task_ids_are_unique_from_one_and_live_list_iterates),
      cmocka_unit_test(task_await_of_settled_future_returns_at_once),
      cmocka_unit_test(task_await_wakes_with_zero_when_future_settles),
      cmocka_unit_test(task_await_timeout_wakes_with_etimedout),
      cmocka_unit_test(task_await_settled_before_deadline_stops_its_timer),
      cmocka_unit_test(task_sleep_wakes_at_its_deadline),
      cmocka_unit_test(task_sleep_forever_still_has_a_deadline),
      cmocka_unit_test(task_yield_requeues_behind_its_level),
      cmocka_unit_test(task_finish_settles_its_future_once),
      cmocka_unit_test(task_finish_of_a_queued_task_takes_it_off_the_queue),
      cmocka_unit_test(cancel_wakes_a_parked_task_with_ecanceled),
      cmocka_unit_test(cancel_before_first_run_is_seen_on_first_run),
      cmocka_unit_test(cancel_of_a_queued_started_task_keeps_the_request),
      cmocka_unit_test(cancel_of_a_finished_task_returns_estate),
      cmocka_unit_test(cancel_propagates_to_every_descendant_only),
      cmocka_unit_test(cancel_reaches_the_end_of_a_deep_chain),
      cmocka_unit_test(cancel_reaches_a_deep_chain_of_nested_spawns),
      cmocka_unit_test(child_of_a_cancelled_parent_starts_cancelled),
      cmocka_unit_test(children_are_detached_when_their_parent_finishes),
      cmocka_unit_test(finished_task_memory_is_not_touched_by_its_children),
      cmocka_unit_test(group_join_hands_out_members_in_finish_order),
      cmocka_unit_test(group_join_takes_already_finished_members_fifo),
      cmocka_unit_test(group_join_on_empty_group_returns_eclosed),
      cmocka_unit_test(group_fail_fast_cancels_the_siblings),
      cmocka_unit_test(group_records_the_first_failure_without_fail_fast),
      cmocka_unit_test(group_cancel_cancels_every_running_member),
      cmocka_unit_test(group_clear_unlinks_members_and_wakes_joiners),
      cmocka_unit_test(group_add_rejects_members_of_another_group),
      cmocka_unit_test(chan_buffered_is_fifo_across_the_ring_wrap),
      cmocka_unit_test(chan_init_rejects_zero_item_size_and_overflow),
      cmocka_unit_test(chan_rendezvous_send_waits_for_a_receiver),
      cmocka_unit_test(chan_rendezvous_send_hands_to_a_waiting_receiver),
      cmocka_unit_test(chan_full_senders_park_and_are_served_fifo),
      cmocka_unit_test(chan_close_wakes_receivers_with_eclosed),
      cmocka_unit_test(chan_close_wakes_senders_and_keeps_buffered_items),
      cmocka_unit_test(chan_receiver_woken_then_cancelled_keeps_its_item),
      cmocka_unit_test(chan_sender_woken_then_cancelled_was_taken),
      cmocka_unit_test(chan_cancelled_waiting_receiver_takes_nothing),
      cmocka_unit_test(chan_free_drops_waiting_tasks_without_waking),
      cmocka_unit_test(sem_hands_released_permits_to_waiters_fifo),
      cmocka_unit_test(sem_try_acquire_takes_permits_until_none_left),
      cmocka_unit_test(sem_cancelled_waiter_loses_its_place),
      cmocka_unit_test(stats_count_tasks_by_outcome_and_dispatch),
      cmocka_unit_test(error_names_and_messages_cover_every_code),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
