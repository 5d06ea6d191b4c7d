/*
 * test-task.c - the core tier through C poll tasks on a fake clock:
 * C tasks: start and ids, their waits (a future, a timeout,
 * sleep, yield) and finishing by hand.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static void task_start_rejects_bad_arguments(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  assert_int_equal(weft_task_start(&s, &p.t, NULL, WEFT_PRIO_NORMAL, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_task_start(&s, &p.t, probe_yields, -1, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_task_start(&s, &p.t, probe_yields, WEFT_NPRIO, NULL),
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
  for (i = 0; i < 3; i++)
    probe_start(&s, &p[i], probe_yields, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p, probe_awaits, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p, probe_awaits, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p, probe_awaits, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p, probe_awaits, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p[0], probe_sleeps, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &p[1], probe_sleeps, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p, probe_sleeps, WEFT_PRIO_NORMAL, NULL);
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
  for (i = 0; i < 3; i++)
    probe_start(&s, &p[i], probe_yields, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 2, 3, 1, 2, 1);
  for (i = 0; i < 3; i++) assert_int_equal(p[i].st[1], 0);
  test_sched_end(&s, &a);
}

static int fn_finish_self(weft_task_t *t, int status) {
  probe_note(t, status);
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
  probe_start(&s, &p, fn_finish_self, WEFT_PRIO_NORMAL, NULL);
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
    probe_start(&s, &p[i], probe_yields, WEFT_PRIO_NORMAL, NULL);
  }
  /* The middle one ends (from outside) while it waits in the queue. */
  assert_int_equal(weft_task_finish(&p[1].t, WEFT_FUTURE_CANCELLED, 0), 0);
  assert_int_equal(p[1].t.done.state, WEFT_FUTURE_CANCELLED);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 3);
  assert_int_equal(p[1].runs, 0);
  test_sched_end(&s, &a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
