/*
 * test-timer.c - the timer heap of the core tier on a fake clock: order,
 * ties, stop and restart anywhere in the heap, callbacks that change the
 * heap, a million timers, and weft_sched_next_due.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* About rec: a timer that logs its name when it fires. The timer is the
 * first member, so a weft_timer_t * of a rec is the rec. */
typedef struct rec {
  weft_timer_t t;
  long name;
  test_log *log;
  int fired;
  uint64_t fired_at;
} rec;

static void rec_cb(weft_timer_t *t) {
  rec *r = (rec *)t;
  assert_false(weft_timer_active(t)); /* disarmed before its callback */
  assert_true(weft_sched_now(t->sched) >= t->due);
  r->fired++;
  r->fired_at = weft_sched_now(t->sched);
  test_log_add(r->log, r->name);
}

static void rec_init(weft_sched_t *s, rec *r, test_log *log, long name) {
  memset(r, 0, sizeof *r);
  weft_timer_init(s, &r->t);
  r->t.data = r;
  r->log = log;
  r->name = name;
}

static void rec_start(rec *r, uint64_t delay) {
  assert_int_equal(weft_timer_start(&r->t, rec_cb, delay), 0);
  assert_true(weft_timer_active(&r->t));
}

static size_t armed(weft_sched_t *s) {
  weft_stats_t st;
  weft_sched_stats(s, &st);
  return st.timers;
}

static void timer_heap_fires_in_deadline_order(void **state) {
  static const uint64_t delay[] = {50, 10, 40, 20, 30, 5, 45, 15, 35, 25};
  enum { N = sizeof delay / sizeof delay[0] };
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[N];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_sched_set_time(&s, 100);
  for (i = 0; i < N; i++) {
    rec_init(&s, &r[i], &log, (long)delay[i]);
    rec_start(&r[i], delay[i]);
    assert_int_equal(r[i].t.due, 100 + delay[i]);
  }
  assert_int_equal(armed(&s), N);
  /* Nothing is due before the earliest deadline. */
  weft_sched_set_time(&s, 104);
  weft_sched_run(&s, SIZE_MAX);
  assert_int_equal(log.n, 0);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50);
  for (i = 0; i < N; i++) {
    assert_int_equal(r[i].fired, 1);
    assert_int_equal(r[i].fired_at, 100 + delay[i]);
  }
  test_sched_end(&s, &a);
}

static void timer_all_due_fire_in_one_run_in_order(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[4];
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  rec_init(&s, &r[0], &log, 3);
  rec_init(&s, &r[1], &log, 1);
  rec_init(&s, &r[2], &log, 2);
  rec_init(&s, &r[3], &log, 4);
  rec_start(&r[0], 30);
  rec_start(&r[1], 10);
  rec_start(&r[2], 20);
  rec_start(&r[3], 31);
  /* The clock jumps past three deadlines at once. */
  weft_sched_set_time(&s, 30);
  assert_int_equal(weft_sched_run(&s, SIZE_MAX), 0);
  TEST_LOG_EXPECT(&log, 1, 2, 3);
  assert_int_equal(armed(&s), 1);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 2, 3, 4);
  test_sched_end(&s, &a);
}

static void timer_equal_deadlines_fire_in_start_order(void **state) {
  enum { N = 300 }; /* several heap levels, and past a heap growth */
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec *r = calloc(N, sizeof *r);
  int i, tied = 0;
  (void)state;
  assert_non_null(r);
  test_sched_begin(&s, &a);
  test_log_init(&log);
  /* Every third timer is due at 10 (named 0, 1, 2, ... in start order);
   * the others, due at 3 or 17, are mixed in between. Half of the tied
   * ones start at time 4 with a shorter delay: same deadline. */
  for (i = 0; i < N; i++) {
    if (i == N / 2) weft_sched_set_time(&s, 4);
    if (i % 3 == 0) {
      rec_init(&s, &r[i], &log, tied++);
      rec_start(&r[i], i < N / 2 ? 10 : 6);
      assert_int_equal(r[i].t.due, 10);
    } else {
      rec_init(&s, &r[i], &log, i % 3 == 1 ? 1000 : 2000);
      rec_start(&r[i], i < N / 2 ? (i % 3 == 1 ? 3 : 17) : 13);
    }
  }
  test_sched_settle(&s);
  assert_int_equal(log.n, N);
  /* At 3: the first half's early fillers; then the tied ones in start
   * order; then every filler due at 17. */
  for (i = 0; i < N; i++) {
    long want;
    if (i < N / 6)
      want = 1000;
    else if (i < N / 6 + tied)
      want = i - N / 6;
    else
      want = -1; /* 1000 or 2000: due at 17 */
    if (want >= 0)
      assert_int_equal(log.ev[i], want);
    else
      assert_true(log.ev[i] >= 1000);
  }
  test_sched_end(&s, &a);
  free(r);
}

static void timer_restarted_with_same_deadline_goes_behind_its_peers(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[3];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  for (i = 0; i < 3; i++) {
    rec_init(&s, &r[i], &log, i + 1);
    rec_start(&r[i], 10);
  }
  rec_start(&r[0], 10); /* same deadline, newer start */
  assert_int_equal(armed(&s), 3);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 2, 3, 1);
  test_sched_end(&s, &a);
}

/* 64 timers with distinct deadlines; stopping a scattered third of them
 * (neither the root nor the last slot) leaves the rest in order. */
static void timer_stop_in_the_middle_of_the_heap_keeps_order(void **state) {
  enum { N = 64 };
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[N];
  int i, k;
  size_t stopped = 0;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  for (i = 0; i < N; i++) {
    /* Deadlines are a permutation of 1..N: i*37 mod 64 + 1. */
    rec_init(&s, &r[i], &log, (i * 37) % N + 1);
    rec_start(&r[i], (uint64_t)r[i].name);
  }
  for (i = 0; i < N; i += 3) {
    if (i == 0) continue; /* r[0] is due at 1: the root */
    weft_timer_stop(&r[i].t);
    assert_false(weft_timer_active(&r[i].t));
    weft_timer_stop(&r[i].t); /* harmless when stopped */
    stopped++;
  }
  assert_int_equal(armed(&s), N - stopped);
  test_sched_settle(&s);
  for (i = 0; i < N; i++)
    assert_int_equal(r[i].fired, (i == 0 || i % 3 != 0) ? 1 : 0);
  for (k = 1; k < (int)log.n; k++) assert_true(log.ev[k - 1] < log.ev[k]);
  test_sched_end(&s, &a);
}

/* Stop every timer, one at a time from pseudo-random heap positions,
 * checking after each stop that what remains fires in order. */
static void timer_stop_at_any_slot_then_rest_fire_in_order(void **state) {
  enum { N = 100 };
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[N];
  int victim, i;
  (void)state;
  for (victim = 0; victim < N; victim++) {
    test_sched_begin(&s, &a);
    test_log_init(&log);
    for (i = 0; i < N; i++) {
      rec_init(&s, &r[i], &log, (i * 53) % N);
      rec_start(&r[i], (uint64_t)r[i].name);
    }
    weft_timer_stop(&r[victim].t);
    test_sched_settle(&s);
    assert_int_equal(log.n, N - 1);
    assert_int_equal(r[victim].fired, 0);
    for (i = 1; i < (int)log.n; i++) assert_true(log.ev[i - 1] < log.ev[i]);
    test_sched_end(&s, &a);
  }
}

/* A stop that moves the last leaf into another subtree below a later
 * parent must sift it up: heap [1, 100, 2, 101, 102, 3, 4], stop 101. */
static void timer_stop_sifts_the_moved_leaf_up(void **state) {
  static const long due[] = {1, 100, 2, 101, 102, 3, 4};
  enum { N = sizeof due / sizeof due[0] };
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[N];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  for (i = 0; i < N; i++) {
    rec_init(&s, &r[i], &log, due[i]);
    rec_start(&r[i], (uint64_t)due[i]);
  }
  weft_timer_stop(&r[3].t);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 2, 3, 4, 100, 102);
  test_sched_end(&s, &a);
}

/* Pseudo-random deadlines, and half the timers stopped in a pseudo-random
 * order: what remains fires in deadline order, the stopped never. */
static void timer_random_stops_keep_the_heap_ordered(void **state) {
  enum { N = 2000 };
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec *r = calloc(N, sizeof *r);
  uint64_t x = 42;
  int i, stopped = 0;
  (void)state;
  assert_non_null(r);
  test_sched_begin(&s, &a);
  test_log_init(&log);
  for (i = 0; i < N; i++) {
    x = x * 16807 % 2147483647;
    rec_init(&s, &r[i], &log, (long)(x % 500));
    rec_start(&r[i], x % 500);
  }
  for (i = 0; i < N / 2; i++) {
    x = x * 16807 % 2147483647;
    if (weft_timer_active(&r[x % N].t)) stopped++;
    weft_timer_stop(&r[x % N].t);
  }
  assert_int_equal(armed(&s), N - stopped);
  test_sched_settle(&s);
  assert_int_equal(log.n, N - stopped);
  for (i = 1; i < (int)log.n; i++) assert_true(log.ev[i - 1] <= log.ev[i]);
  for (i = 0; i < N; i++) assert_true(r[i].fired <= 1);
  test_sched_end(&s, &a);
  free(r);
}

static void timer_restart_moves_an_armed_timer(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[3];
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  rec_init(&s, &r[0], &log, 1);
  rec_init(&s, &r[1], &log, 2);
  rec_init(&s, &r[2], &log, 3);
  rec_start(&r[0], 10);
  rec_start(&r[1], 20);
  rec_start(&r[2], 30);
  rec_start(&r[0], 40); /* later: from the root to the back */
  rec_start(&r[2], 5);  /* earlier: from a leaf to the root */
  assert_int_equal(armed(&s), 3); /* moved, not duplicated */
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 3, 2, 1);
  assert_int_equal(r[0].fired, 1);
  assert_int_equal(r[0].fired_at, 40);
  assert_int_equal(r[2].fired_at, 5);
  test_sched_end(&s, &a);
}

static void timer_restart_after_firing_arms_from_now(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  rec_init(&s, &r, &log, 1);
  rec_start(&r, 10);
  test_sched_settle(&s);
  rec_start(&r, 10);
  assert_int_equal(r.t.due, 20);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 1);
  assert_int_equal(r.fired_at, 20);
  test_sched_end(&s, &a);
}

/* About juggler: a timer whose callback changes the heap. At 10, A stops
 * B (due 20) and C (due 10 as well, started after A), starts D for 0 ms
 * (it fires in the same pass), restarts E (due 15) to 25 and re-arms
 * itself for 7 ms, once. */
typedef struct juggler {
  rec a, b, c, d, e;
  int rearmed;
} juggler;

static void juggle_cb(weft_timer_t *t) {
  juggler *j = t->data;
  rec_cb(t);
  weft_timer_stop(&j->b.t);
  weft_timer_stop(&j->c.t);
  assert_int_equal(weft_timer_start(&j->d.t, rec_cb, 0), 0);
  assert_int_equal(weft_timer_start(&j->e.t, rec_cb, 15), 0);
  if (!j->rearmed++)
    assert_int_equal(weft_timer_start(t, juggle_cb, 7), 0);
}

static void timer_callback_may_start_and_stop_other_timers(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  juggler j;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  memset(&j, 0, sizeof j);
  rec_init(&s, &j.a, &log, 1);
  rec_init(&s, &j.b, &log, 2);
  rec_init(&s, &j.c, &log, 3);
  rec_init(&s, &j.d, &log, 4);
  rec_init(&s, &j.e, &log, 5);
  j.a.t.data = &j;
  assert_int_equal(weft_timer_start(&j.a.t, juggle_cb, 10), 0);
  rec_start(&j.c, 10);
  rec_start(&j.b, 20);
  rec_start(&j.e, 15);
  weft_sched_set_time(&s, 10);
  weft_sched_run(&s, SIZE_MAX);
  /* A fired; C (due now) was stopped before its turn; D fired at once. */
  TEST_LOG_EXPECT(&log, 1, 4);
  assert_int_equal(armed(&s), 2); /* A again at 17, E at 25 */
  test_sched_settle(&s);
  /* At 17 A runs once more: D fires again, E moves to 32. */
  TEST_LOG_EXPECT(&log, 1, 4, 1, 4, 5);
  assert_int_equal(j.a.fired_at, 17);
  assert_int_equal(j.e.fired_at, 32);
  assert_int_equal(j.b.fired + j.c.fired, 0);
  test_sched_end(&s, &a);
}

static void timer_huge_delay_saturates_instead_of_wrapping(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r;
  uint64_t due;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_sched_set_time(&s, 1000);
  rec_init(&s, &r, &log, 1);
  rec_start(&r, UINT64_MAX - 10);
  assert_int_equal(r.t.due, UINT64_MAX);
  weft_sched_run(&s, SIZE_MAX);
  assert_int_equal(r.fired, 0);
  assert_int_equal(weft_sched_next_due(&s, &due), 0);
  assert_int_equal(due, UINT64_MAX);
  weft_timer_stop(&r.t);
  test_sched_end(&s, &a);
}

static void sched_clock_never_moves_backwards(void **state) {
  weft_sched_t s;
  test_alloc a;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_sched_now(&s), 0);
  weft_sched_set_time(&s, 50);
  weft_sched_set_time(&s, 20);
  assert_int_equal(weft_sched_now(&s), 50);
  weft_sched_set_time(&s, 51);
  assert_int_equal(weft_sched_now(&s), 51);
  test_sched_end(&s, &a);
}

static void sched_next_due_reports_the_earliest_deadline(void **state) {
  weft_sched_t s;
  test_alloc a;
  test_log log;
  rec r[3];
  uint64_t due = 12345;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  assert_int_equal(weft_sched_next_due(&s, &due), WEFT_EEMPTY);
  assert_int_equal(due, 12345); /* untouched */
  rec_init(&s, &r[0], &log, 1);
  rec_init(&s, &r[1], &log, 2);
  rec_init(&s, &r[2], &log, 3);
  rec_start(&r[0], 30);
  assert_int_equal(weft_sched_next_due(&s, &due), 0);
  assert_int_equal(due, 30);
  rec_start(&r[1], 20);
  rec_start(&r[2], 40);
  assert_int_equal(weft_sched_next_due(&s, &due), 0);
  assert_int_equal(due, 20);
  weft_timer_stop(&r[1].t);
  assert_int_equal(weft_sched_next_due(&s, &due), 0);
  assert_int_equal(due, 30);
  weft_sched_set_time(&s, 30);
  weft_sched_run(&s, SIZE_MAX);
  assert_int_equal(weft_sched_next_due(&s, &due), 0);
  assert_int_equal(due, 40);
  weft_timer_stop(&r[2].t);
  assert_int_equal(weft_sched_next_due(&s, &due), WEFT_EEMPTY);
  TEST_LOG_EXPECT(&log, 1);
  test_sched_end(&s, &a);
}

/* ------------------------------------------------------ a million timers */

/* About million: each timer fired checks that deadlines never go down
 * and that equal deadlines keep their start order (seq rises). */
typedef struct million {
  uint64_t last_due, last_seq;
  size_t fired;
} million;

static million M;

static void million_cb(weft_timer_t *t) {
  if (t->due < M.last_due ||
      (M.fired > 0 && t->due == M.last_due && t->seq <= M.last_seq))
    fail_msg("timer %zu out of order: due %llu after %llu", M.fired,
             (unsigned long long)t->due, (unsigned long long)M.last_due);
  if (weft_sched_now(t->sched) < t->due) fail_msg("timer fired early");
  if (t->due != *(uint64_t *)t->data) fail_msg("timer due moved");
  M.last_due = t->due;
  M.last_seq = t->seq;
  M.fired++;
}

static void timer_million_fire_in_nondecreasing_deadline_order(
    void **state) {
  enum { N = 1000000 };
  weft_sched_t s;
  test_alloc a;
  weft_timer_t *t = malloc(N * sizeof *t);
  uint64_t *due = malloc(N * sizeof *due);
  uint64_t x = 42, next, steps = 0;
  size_t i;
  (void)state;
  assert_non_null(t);
  assert_non_null(due);
  test_sched_begin(&s, &a);
  memset(&M, 0, sizeof M);
  for (i = 0; i < N; i++) {
    x = x * 16807 % 2147483647; /* Park-Miller minstd */
    due[i] = x % 1000;
    weft_timer_init(&s, &t[i]);
    t[i].data = &due[i];
    if (weft_timer_start(&t[i], million_cb, due[i]) != 0)
      fail_msg("timer_start %zu failed", i);
  }
  assert_int_equal(armed(&s), N);
  /* Step the clock from deadline to deadline. */
  while (weft_sched_next_due(&s, &next) == 0) {
    assert_true(next >= weft_sched_now(&s));
    weft_sched_set_time(&s, next);
    weft_sched_run(&s, SIZE_MAX);
    steps++;
  }
  assert_int_equal(M.fired, N);
  assert_true(steps <= 1000);
  assert_int_equal(armed(&s), 0);
  test_sched_end(&s, &a);
  free(t);
  free(due);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timer_heap_fires_in_deadline_order),
      cmocka_unit_test(timer_all_due_fire_in_one_run_in_order),
      cmocka_unit_test(timer_equal_deadlines_fire_in_start_order),
      cmocka_unit_test(
          timer_restarted_with_same_deadline_goes_behind_its_peers),
      cmocka_unit_test(timer_stop_in_the_middle_of_the_heap_keeps_order),
      cmocka_unit_test(timer_stop_at_any_slot_then_rest_fire_in_order),
      cmocka_unit_test(timer_stop_sifts_the_moved_leaf_up),
      cmocka_unit_test(timer_random_stops_keep_the_heap_ordered),
      cmocka_unit_test(timer_restart_moves_an_armed_timer),
      cmocka_unit_test(timer_restart_after_firing_arms_from_now),
      cmocka_unit_test(timer_callback_may_start_and_stop_other_timers),
      cmocka_unit_test(timer_huge_delay_saturates_instead_of_wrapping),
      cmocka_unit_test(sched_clock_never_moves_backwards),
      cmocka_unit_test(sched_next_due_reports_the_earliest_deadline),
      cmocka_unit_test(timer_million_fire_in_nondecreasing_deadline_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
