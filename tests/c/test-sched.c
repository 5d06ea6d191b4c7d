/*
 * test-sched.c - the core tier through C poll tasks on a fake clock:
 * the scheduler: the ready queue, its priority levels and
 * fairness, a bounded run, stop, the current task, and its counters.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* Logs its priority level on each run and yields until *stop. */
static int fn_spin(weft_task_t *t, int status) {
  probe *p = P(t);
  probe_note(t, status);
  probe_log(p, t->prio);
  if (*p->stop) return WEFT_READY;
  return weft_task_yield(t);
}

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
    probe_start(&s, &p[i], probe_yields, WEFT_PRIO_NORMAL, NULL);
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
    probe_start(&s, &p[i], probe_yields, prio, NULL);
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
    probe_start(&s, &crit[i], fn_spin, WEFT_PRIO_CRITICAL, NULL);
  }
  idle.log = &log;
  idle.name = WEFT_PRIO_IDLE;
  probe_start(&s, &idle, probe_yields, WEFT_PRIO_IDLE, NULL);
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
    probe_start(&s, &p[i], fn_spin, i % WEFT_NPRIO, NULL);
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
  for (i = 0; i < 3; i++)
    probe_start(&s, &p[i], probe_yields, WEFT_PRIO_NORMAL, NULL);
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
  probe_note(t, status);
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
  probe_start(&s, &p[0], probe_yields, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &p[1], fn_stop, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &p[2], probe_yields, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_sched_run(&s, 10), 2); /* p[0], then p[1] stops */
  assert_int_equal(p[1].runs, 1);
  assert_int_equal(p[2].runs, 0);
  assert_true(weft_sched_has_ready(&s));
  assert_int_equal(weft_sched_run(&s, 10), 1); /* the next run starts anew */
  assert_int_equal(p[2].runs, 1);
  test_sched_end(&s, &a);
}

static int fn_check_current(weft_task_t *t, int status) {
  probe_note(t, status);
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
  probe_start(&s, &p, fn_check_current, WEFT_PRIO_NORMAL, NULL);
  assert_null(weft_sched_current(&s));
  assert_int_equal(weft_sched_run(&s, SIZE_MAX), 1);
  assert_int_equal(p.runs, 1);
  assert_null(weft_sched_current(&s));
  test_sched_end(&s, &a);
}

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
  probe_start(&s, &ok, probe_yields, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &bad, probe_yields, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &cancelled, probe_yields, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &yielder, probe_yields, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &sleeper, probe_sleeps, WEFT_PRIO_NORMAL, NULL);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ready_queue_is_fifo_within_a_level),
      cmocka_unit_test(ready_queue_serves_higher_priority_first),
      cmocka_unit_test(ready_queue_fairness_runs_idle_under_critical_stream),
      cmocka_unit_test(ready_queue_fairness_serves_every_level_in_each_window),
      cmocka_unit_test(sched_run_resumes_at_most_max_tasks),
      cmocka_unit_test(sched_stop_ends_the_run_after_the_current_task),
      cmocka_unit_test(sched_current_is_the_running_task_only),
      cmocka_unit_test(stats_count_tasks_by_outcome_and_dispatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
