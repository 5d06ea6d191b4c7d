/*
 * test-embedded.c - what the embedded profile adds to the core, on the
 * host port: fixed capacities and WEFT_EFULL at each pool, channels on the
 * application's buffer, ISR-safe signals and the run loop over the port.
 * Built with WEFT_CONF_TASKS 4, WEFT_CONF_TIMERS 3, WEFT_CONF_SIGNALS 2.
 * (The core tests, tests/c/test-<concept>.c, run on this profile too, as
 * c/test-embedded-<concept>.)
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"
#include "port.h"
#include "util.h"

#if !WEFT_EMBEDDED || WEFT_CONF_TASKS != 4 || WEFT_CONF_TIMERS != 3 ||   \
    WEFT_CONF_SIGNALS != 2
#error "build with -DWEFT_EMBEDDED=1 and the capacities above"
#endif

/* About tk: a C task and what it saw. The task is the first member. Its
 * function is chosen per test; name is logged, got is the bits of its
 * last signal wait, st[i] the status of run i + 1. */
typedef struct tk {
  weft_task_t t;
  test_log *log;
  long name;
  int runs;
  int st[8];
  int res;      /* result of its one wait */
  int waiting;
  uint32_t got;
  uint64_t ms;
  weft_signal_t *sig;
  weft_future_t *fut;
  int *stop;
} tk;

static tk *K(weft_task_t *t) { return (tk *)t; }

static void note(weft_task_t *t, int status) {
  tk *k = K(t);
  if (k->runs < 8) k->st[k->runs] = status;
  k->runs++;
  if (k->log) test_log_add(k->log, k->name);
}

static int start(weft_sched_t *s, tk *k, weft_task_fn fn, int prio) {
  k->t.data = k;
  return weft_task_start(s, &k->t, fn, prio, NULL);
}

/* Runs once and ends. */
static int fn_once(weft_task_t *t, int status) {
  note(t, status);
  return WEFT_READY;
}

/* Waits once on its signal (with k->ms as the timeout); res is 0 when the
 * bits came at once, else the wake-up status. */
static int fn_sigwait(weft_task_t *t, int status) {
  tk *k = K(t);
  int r;
  note(t, status);
  if (!k->waiting) {
    r = weft_signal_wait(k->sig, t, &k->got, k->ms);
    if (r == WEFT_PENDING) {
      k->waiting = 1;
      return r;
    }
  } else {
    r = status;
  }
  k->waiting = 0;
  k->res = r;
  if (r == WEFT_ECANCELED) {
    weft_task_finish(t, WEFT_FUTURE_CANCELLED, r);
    return WEFT_PENDING;
  }
  return WEFT_READY;
}

/* Sleeps k->ms once. */
static int fn_sleep(weft_task_t *t, int status) {
  tk *k = K(t);
  note(t, status);
  if (k->runs == 1) return weft_task_sleep(t, k->ms);
  return WEFT_READY;
}

/* Awaits k->fut forever. */
static int fn_await(weft_task_t *t, int status) {
  tk *k = K(t);
  note(t, status);
  if (k->runs == 1) return weft_task_await(t, k->fut, WEFT_FOREVER);
  return WEFT_READY;
}

static void timer_log(weft_timer_t *tm) { test_log_add(tm->data, (long)tm->due); }

/* ------------------------------------------------------------ capacities */

static void capacities_are_fixed_arrays_in_the_scheduler(void **state) {
  weft_sched_t s;
  (void)state;
  weft_sched_init(&s, NULL, NULL);
  assert_int_equal(sizeof s.heap / sizeof s.heap[0], WEFT_CONF_TIMERS);
  assert_int_equal(sizeof s.sigs / sizeof s.sigs[0], WEFT_CONF_SIGNALS);
  assert_int_equal(weft_sched_close(&s), 0);
}

static void task_start_past_capacity_is_efull_and_touches_nothing(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  tk k[WEFT_CONF_TASKS + 1], copy;
  weft_stats_t st;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  memset(k, 0, sizeof k);
  for (i = 0; i < WEFT_CONF_TASKS; i++)
    assert_int_equal(start(&s, &k[i], fn_once, WEFT_PRIO_NORMAL), 0);
  memset(&k[i], 0xab, sizeof k[i]);
  copy = k[i];
  assert_int_equal(weft_task_start(&s, &k[i].t, fn_once, WEFT_PRIO_NORMAL,
                                   NULL), WEFT_EFULL);
  assert_memory_equal(&k[i], &copy, sizeof copy);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.spawned, WEFT_CONF_TASKS);
  assert_int_equal(st.live, WEFT_CONF_TASKS);
  /* A finished task gives its slot back. */
  assert_int_equal(weft_sched_run(&s, 1), 1);
  memset(&k[i], 0, sizeof k[i]);
  assert_int_equal(start(&s, &k[i], fn_once, WEFT_PRIO_NORMAL), 0);
  assert_int_equal(start(&s, &copy, fn_once, WEFT_PRIO_NORMAL), WEFT_EFULL);
  test_sched_settle(&s);
  for (i = 0; i <= WEFT_CONF_TASKS; i++) assert_int_equal(k[i].runs, 1);
  test_sched_end(&s, &a);
}

static void timer_start_past_capacity_is_efull_and_stop_frees_a_slot(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  weft_timer_t tm[WEFT_CONF_TIMERS + 1];
  weft_stats_t st;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  for (i = 0; i <= WEFT_CONF_TIMERS; i++) {
    weft_timer_init(&s, &tm[i]);
    tm[i].data = &log;
  }
  for (i = 0; i < WEFT_CONF_TIMERS; i++)
    assert_int_equal(weft_timer_start(&tm[i], timer_log, 10 * (i + 1)), 0);
  assert_int_equal(weft_timer_start(&tm[i], timer_log, 5), WEFT_EFULL);
  assert_false(weft_timer_active(&tm[i]));
  weft_sched_stats(&s, &st);
  assert_int_equal(st.timers, WEFT_CONF_TIMERS);
  /* Restarting an armed timer needs no new slot. */
  assert_int_equal(weft_timer_start(&tm[0], timer_log, 15), 0);
  weft_timer_stop(&tm[1]);
  assert_int_equal(weft_timer_start(&tm[i], timer_log, 5), 0);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 5, 15, 30);
  test_sched_end(&s, &a);
}

static void wait_with_deadline_past_timer_capacity_is_efull(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_timer_t tm[WEFT_CONF_TIMERS];
  weft_future_t f;
  tk k;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  for (i = 0; i < WEFT_CONF_TIMERS; i++) {
    weft_timer_init(&s, &tm[i]);
    assert_int_equal(weft_timer_start(&tm[i], timer_log, 100), 0);
  }
  memset(&k, 0, sizeof k);
  assert_int_equal(start(&s, &k, fn_once, WEFT_PRIO_NORMAL), 0);
  /* The task is not running here, but the waits check only its state. */
  assert_int_equal(weft_task_sleep(&k.t, 10), WEFT_EFULL);
  assert_int_equal(weft_task_await(&k.t, &f, 10), WEFT_EFULL);
  assert_false(k.t.flags & WEFT_TASK_PARKED);
  assert_false(weft_waiter_linked(&k.t.wait));
  for (i = 0; i < WEFT_CONF_TIMERS; i++) weft_timer_stop(&tm[i]);
  test_sched_settle(&s);
  assert_int_equal(k.runs, 1);
  test_sched_end(&s, &a);
}

static void signal_init_past_capacity_is_efull_and_close_frees_a_slot(
    void **state) {
  weft_sched_t s;
  weft_signal_t sig[WEFT_CONF_SIGNALS + 1];
  int i;
  (void)state;
  weft_sched_init(&s, NULL, NULL);
  for (i = 0; i < WEFT_CONF_SIGNALS; i++)
    assert_int_equal(weft_signal_init(&s, &sig[i]), 0);
  assert_int_equal(weft_signal_init(&s, &sig[i]), WEFT_EFULL);
  weft_signal_close(&sig[0]);
  assert_int_equal(weft_signal_init(&s, &sig[i]), 0);
  weft_signal_raise(&sig[i], 8);
  assert_int_equal(weft_signal_take(&sig[i]), 8);
  for (i = 1; i <= WEFT_CONF_SIGNALS; i++) weft_signal_close(&sig[i]);
  assert_int_equal(weft_sched_close(&s), 0);
}

/* ------------------------------------------------------------- channels */

static void chan_init_buf_keeps_items_in_the_application_buffer(
    void **state) {
  weft_sched_t s;
  weft_chan_t ch;
  int buf[3] = {0, 0, 0}, v;
  (void)state;
  weft_sched_init(&s, NULL, NULL);
  assert_int_equal(weft_chan_init_buf(&s, &ch, NULL, 3, sizeof(int)),
                   WEFT_EINVAL);
  assert_int_equal(weft_chan_init_buf(&s, &ch, buf, 3, 0), WEFT_EINVAL);
  assert_int_equal(weft_chan_init_buf(&s, &ch, buf, 3, sizeof(int)), 0);
  for (v = 7; v < 10; v++) assert_int_equal(weft_chan_try_send(&ch, &v), 0);
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_EFULL);
  assert_int_equal(buf[0], 7);
  assert_int_equal(buf[2], 9);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 7);
  weft_chan_free(&ch); /* the buffer stays the application's */
  assert_int_equal(buf[1], 8);
  /* A rendezvous channel needs no buffer. */
  assert_int_equal(weft_chan_init_buf(&s, &ch, NULL, 0, sizeof(int)), 0);
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_EFULL);
  weft_chan_free(&ch);
  assert_int_equal(weft_sched_close(&s), 0);
}

/* -------------------------------------------------------------- signals */

typedef struct sigtest {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  weft_signal_t sig;
} sigtest;

static void sig_begin(sigtest *x) {
  test_sched_begin(&x->s, &x->a);
  test_log_init(&x->log);
  assert_int_equal(weft_signal_init(&x->s, &x->sig), 0);
}

static void sig_end(sigtest *x) {
  weft_signal_close(&x->sig);
  test_sched_end(&x->s, &x->a);
}

static void sig_task(sigtest *x, tk *k, long name, int prio, uint64_t ms) {
  memset(k, 0, sizeof *k);
  k->name = name;
  k->log = &x->log;
  k->sig = &x->sig;
  k->ms = ms;
  assert_int_equal(start(&x->s, k, fn_sigwait, prio), 0);
}

static void signal_raised_before_the_wait_is_taken_at_once(void **state) {
  sigtest x;
  tk k;
  (void)state;
  sig_begin(&x);
  weft_signal_raise(&x.sig, 0); /* no bits: nothing happens */
  weft_signal_raise(&x.sig, 6);
  sig_task(&x, &k, 1, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  assert_int_equal(k.runs, 1);
  assert_int_equal(k.res, 0);
  assert_int_equal(k.got, 6);
  assert_int_equal(weft_signal_take(&x.sig), 0);
  sig_end(&x);
}

static void signal_wakes_its_waiting_task_with_the_merged_bits(
    void **state) {
  sigtest x;
  tk k;
  (void)state;
  sig_begin(&x);
  sig_task(&x, &k, 1, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  assert_true(k.waiting);
  weft_signal_raise(&x.sig, 1);
  weft_signal_raise(&x.sig, 4);
  weft_signal_raise(&x.sig, 1);
  assert_true(k.waiting); /* a raise only sets bits */
  test_sched_settle(&x.s);
  assert_int_equal(k.runs, 2);
  assert_int_equal(k.st[1], 0);
  assert_int_equal(k.got, 5);
  sig_end(&x);
}

static void signal_bits_without_a_waiter_wait_for_the_next_wait(
    void **state) {
  sigtest x;
  tk k;
  (void)state;
  sig_begin(&x);
  weft_signal_raise(&x.sig, 2);
  test_sched_settle(&x.s); /* delivers to nobody: the bits stay */
  sig_task(&x, &k, 1, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  assert_int_equal(k.runs, 1);
  assert_int_equal(k.got, 2);
  sig_end(&x);
}

static void signal_goes_to_the_first_waiter_only(void **state) {
  sigtest x;
  tk k[2];
  (void)state;
  sig_begin(&x);
  sig_task(&x, &k[0], 1, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  sig_task(&x, &k[1], 2, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  weft_signal_raise(&x.sig, 1);
  test_sched_settle(&x.s);
  assert_int_equal(k[0].got, 1);
  assert_true(k[1].waiting);
  weft_signal_raise(&x.sig, 2);
  test_sched_settle(&x.s);
  assert_int_equal(k[1].got, 2);
  TEST_LOG_EXPECT(&x.log, 1, 2, 1, 2);
  sig_end(&x);
}

static void signal_wait_timeout_wakes_etimedout_and_keeps_later_bits(
    void **state) {
  sigtest x;
  tk k;
  (void)state;
  sig_begin(&x);
  sig_task(&x, &k, 1, WEFT_PRIO_NORMAL, 50);
  test_sched_advance(&x.s, 49);
  assert_true(k.waiting);
  test_sched_advance(&x.s, 50);
  assert_int_equal(k.res, WEFT_ETIMEDOUT);
  assert_int_equal(k.got, 0);
  weft_signal_raise(&x.sig, 3);
  test_sched_settle(&x.s);
  assert_int_equal(weft_signal_take(&x.sig), 3);
  sig_end(&x);
}

static void signal_cancelled_waiter_takes_no_bits(void **state) {
  sigtest x;
  tk k;
  (void)state;
  sig_begin(&x);
  sig_task(&x, &k, 1, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  assert_int_equal(weft_task_cancel(&k.t), 0);
  weft_signal_raise(&x.sig, 9);
  test_sched_settle(&x.s);
  assert_int_equal(k.res, WEFT_ECANCELED);
  assert_int_equal(k.t.done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(k.got, 0);
  assert_int_equal(weft_signal_take(&x.sig), 9);
  sig_end(&x);
}

static void signal_close_wakes_waiters_with_eclosed(void **state) {
  sigtest x;
  tk k;
  (void)state;
  sig_begin(&x);
  sig_task(&x, &k, 1, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  weft_signal_close(&x.sig);
  test_sched_settle(&x.s);
  assert_int_equal(k.res, WEFT_ECLOSED);
  assert_int_equal(weft_signal_init(&x.s, &x.sig), 0); /* for sig_end */
  sig_end(&x);
}

/* An interrupt during a dispatch (here the handler runs inside task 1)
 * wakes a critical task, which runs at the very next dispatch, before
 * the normal task queued long before. */
static sigtest *irq_x;
static void irq_raise(void *arg) { weft_signal_raise(arg, 1); }

static int fn_interrupted(weft_task_t *t, int status) {
  note(t, status);
  weft_port_host_irq(irq_raise, &irq_x->sig);
  return WEFT_READY;
}

static void signal_woken_critical_task_runs_at_the_next_dispatch(
    void **state) {
  sigtest x;
  tk c, n[2];
  (void)state;
  sig_begin(&x);
  irq_x = &x;
  sig_task(&x, &c, 100, WEFT_PRIO_CRITICAL, WEFT_FOREVER);
  test_sched_settle(&x.s);
  memset(n, 0, sizeof n);
  n[0].name = 1;
  n[1].name = 2;
  n[0].log = n[1].log = &x.log;
  assert_int_equal(start(&x.s, &n[0], fn_interrupted, WEFT_PRIO_NORMAL), 0);
  assert_int_equal(start(&x.s, &n[1], fn_once, WEFT_PRIO_NORMAL), 0);
  test_sched_settle(&x.s);
  TEST_LOG_EXPECT(&x.log, 100, 1, 100, 2);
  assert_int_equal(c.got, 1);
  sig_end(&x);
}

/* ------------------------------------------------------------ the loop */

static void loop_runs_on_the_port_clock_until_no_task_is_live(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  tk k[3];
  (void)state;
  weft_port_host_reset();
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(k, 0, sizeof k);
  k[0].name = 250;
  k[0].ms = 250;
  k[1].name = 100;
  k[1].ms = 100;
  k[2].name = 1;
  k[0].log = k[1].log = k[2].log = &log;
  assert_int_equal(start(&s, &k[0], fn_sleep, WEFT_PRIO_NORMAL), 0);
  assert_int_equal(start(&s, &k[1], fn_sleep, WEFT_PRIO_NORMAL), 0);
  assert_int_equal(start(&s, &k[2], fn_once, WEFT_PRIO_NORMAL), 0);
  weft_sched_loop(&s);
  TEST_LOG_EXPECT(&log, 250, 100, 1, 100, 250);
  assert_int_equal(weft_sched_now(&s), 250);
  assert_int_equal(weft_port_now(), 250);
  test_sched_end(&s, &a);
}

/* Task 1 sleeps, then an interrupt raises the signal task 2 waits on
 * with no deadline: the loop idles with no timer until then. */
static int fn_sleep_then_irq(weft_task_t *t, int status) {
  tk *k = K(t);
  note(t, status);
  if (k->runs == 1) return weft_task_sleep(t, k->ms);
  weft_port_host_irq(irq_raise, k->sig);
  return WEFT_READY;
}

static void loop_wakes_a_task_on_a_signal_from_an_interrupt(void **state) {
  sigtest x;
  tk k[2];
  (void)state;
  weft_port_host_reset();
  sig_begin(&x);
  sig_task(&x, &k[1], 2, WEFT_PRIO_NORMAL, WEFT_FOREVER);
  memset(&k[0], 0, sizeof k[0]);
  k[0].name = 1;
  k[0].log = &x.log;
  k[0].ms = 40;
  k[0].sig = &x.sig;
  assert_int_equal(start(&x.s, &k[0], fn_sleep_then_irq, WEFT_PRIO_LOW), 0);
  weft_sched_loop(&x.s);
  TEST_LOG_EXPECT(&x.log, 2, 1, 1, 2);
  assert_int_equal(k[1].got, 1);
  assert_int_equal(weft_port_now(), 40);
  sig_end(&x);
}

/* A task that yields forever while time passes (it advances the clock
 * itself, as work would): the loop reads the clock between budgets, so
 * the sleeper still wakes, and then stops the spinner. */
static int fn_spin_clock(weft_task_t *t, int status) {
  tk *k = K(t);
  note(t, status);
  if (*k->stop) return WEFT_READY;
  weft_port_host_advance(1);
  return weft_task_yield(t);
}

static int fn_sleep_then_stop(weft_task_t *t, int status) {
  tk *k = K(t);
  note(t, status);
  if (k->runs == 1) return weft_task_sleep(t, k->ms);
  *k->stop = 1;
  return WEFT_READY;
}

static void loop_fires_timers_under_a_storm_of_yields(void **state) {
  weft_sched_t s;
  test_alloc a;
  tk spin, sleeper;
  int stop = 0;
  (void)state;
  weft_port_host_reset();
  test_sched_begin(&s, &a);
  memset(&spin, 0, sizeof spin);
  memset(&sleeper, 0, sizeof sleeper);
  spin.stop = sleeper.stop = &stop;
  sleeper.ms = 3 * WEFT_CONF_LOOP_BUDGET;
  assert_int_equal(start(&s, &sleeper, fn_sleep_then_stop, WEFT_PRIO_LOW),
                   0);
  assert_int_equal(start(&s, &spin, fn_spin_clock, WEFT_PRIO_CRITICAL), 0);
  weft_sched_loop(&s);
  assert_int_equal(sleeper.runs, 2);
  assert_true(spin.runs > 3 * WEFT_CONF_LOOP_BUDGET);
  assert_int_equal(weft_port_host_sleeps(), 0);
  test_sched_end(&s, &a);
}

/* A task awaiting a future that an interrupt-woken task settles. */
static void loop_future_settled_by_a_signalled_task(void **state) {
  sigtest x;
  tk w, a;
  weft_future_t f;
  (void)state;
  weft_port_host_reset();
  sig_begin(&x);
  weft_future_init(&f);
  memset(&a, 0, sizeof a);
  a.name = 10;
  a.log = &x.log;
  a.fut = &f;
  assert_int_equal(start(&x.s, &a, fn_await, WEFT_PRIO_HIGH), 0);
  sig_task(&x, &w, 20, WEFT_PRIO_NORMAL, 1000);
  weft_sched_run(&x.s, SIZE_MAX);
  weft_port_host_irq(irq_raise, &x.sig);
  weft_sched_run(&x.s, SIZE_MAX); /* w runs: got its bits */
  assert_int_equal(w.got, 1);
  weft_future_fulfill(&f);
  weft_sched_loop(&x.s);
  TEST_LOG_EXPECT(&x.log, 10, 20, 20, 10);
  assert_int_equal(weft_port_host_sleeps(), 0);
  sig_end(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(capacities_are_fixed_arrays_in_the_scheduler),
      cmocka_unit_test(task_start_past_capacity_is_efull_and_touches_nothing),
      cmocka_unit_test(
          timer_start_past_capacity_is_efull_and_stop_frees_a_slot),
      cmocka_unit_test(wait_with_deadline_past_timer_capacity_is_efull),
      cmocka_unit_test(
          signal_init_past_capacity_is_efull_and_close_frees_a_slot),
      cmocka_unit_test(chan_init_buf_keeps_items_in_the_application_buffer),
      cmocka_unit_test(signal_raised_before_the_wait_is_taken_at_once),
      cmocka_unit_test(signal_wakes_its_waiting_task_with_the_merged_bits),
      cmocka_unit_test(signal_bits_without_a_waiter_wait_for_the_next_wait),
      cmocka_unit_test(signal_goes_to_the_first_waiter_only),
      cmocka_unit_test(
          signal_wait_timeout_wakes_etimedout_and_keeps_later_bits),
      cmocka_unit_test(signal_cancelled_waiter_takes_no_bits),
      cmocka_unit_test(signal_close_wakes_waiters_with_eclosed),
      cmocka_unit_test(signal_woken_critical_task_runs_at_the_next_dispatch),
      cmocka_unit_test(loop_runs_on_the_port_clock_until_no_task_is_live),
      cmocka_unit_test(loop_wakes_a_task_on_a_signal_from_an_interrupt),
      cmocka_unit_test(loop_fires_timers_under_a_storm_of_yields),
      cmocka_unit_test(loop_future_settled_by_a_signalled_task),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
