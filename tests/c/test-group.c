/*
 * test-group.c - the core tier through C poll tasks on a fake clock:
 * task groups: join in finish order, fail-fast, the first
 * failure, cancel and clear.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* Joins its group until it is empty, logging 100 + the name of each
 * member it gets, -1 for WEFT_ECLOSED from join, -2 for a wake-up with
 * WEFT_ECLOSED (the group was cleared). */
static int fn_join(weft_task_t *t, int status) {
  probe *p = P(t);
  probe_note(t, status);
  if (p->runs > 1) {
    if (status != 0) {
      probe_log(p, status == WEFT_ECLOSED ? -2 : -3);
      return WEFT_READY;
    }
    probe_log(p, 100 + P(p->joined)->name);
  }
  for (;;) {
    int r = weft_group_join(p->grp, t, &p->joined);
    if (r == WEFT_PENDING) return r;
    if (r != 0) {
      assert_int_equal(r, WEFT_ECLOSED);
      probe_log(p, -1);
      return WEFT_READY;
    }
    probe_log(p, 100 + P(p->joined)->name);
  }
}

static void member(probe *p, test_log *log, long name, uint64_t ms,
                   int code) {
  memset(p, 0, sizeof *p);
  p->log = log;
  p->name = name;
  p->ms = ms;
  p->code = code;
}

static void start_member(weft_sched_t *s, weft_group_t *g, probe *p) {
  probe_start(s, p, probe_sleeps, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_group_add(g, &p->t), 0);
}

/* Starts members 1 and 3, which sleep 50 ms, and 2, which fails with
 * WEFT_EINVAL after 10 ms, and runs them all to their end. */
static void start_failing_trio(weft_sched_t *s, weft_group_t *g, probe *m,
                               test_log *log) {
  member(&m[0], log, 1, 50, 0);
  member(&m[1], log, 2, 10, WEFT_EINVAL);
  member(&m[2], log, 3, 50, 0);
  start_member(s, g, &m[0]);
  start_member(s, g, &m[1]);
  start_member(s, g, &m[2]);
  test_sched_settle(s);
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
  probe_start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, -1);
  assert_int_equal(weft_group_join(&g, &j.t, &out), WEFT_ECLOSED);
  assert_null(out);
  test_sched_end(&s, &a);
}

static void group_try_join_takes_finished_members_without_waiting(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[3];
  test_log log;
  weft_task_t *out = NULL;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, 0);
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_ECLOSED); /* empty */
  member(&m[0], &log, 1, 30, 0);
  member(&m[1], &log, 2, 10, 0);
  member(&m[2], &log, 3, 20, 0);
  start_member(&s, &g, &m[0]);
  start_member(&s, &g, &m[1]);
  start_member(&s, &g, &m[2]);
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_EEMPTY);
  assert_null(out);
  test_sched_advance(&s, 25); /* m[1] and m[2] end, m[0] sleeps on */
  assert_int_equal(weft_group_try_join(&g, &out), 0);
  assert_ptr_equal(out, &m[1].t);
  assert_int_equal(weft_group_size(&g), 2);
  assert_int_equal(weft_group_try_join(&g, &out), 0);
  assert_ptr_equal(out, &m[2].t);
  out = NULL;
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_EEMPTY);
  assert_null(out);
  assert_int_equal(weft_group_size(&g), 1);
  test_sched_settle(&s);
  assert_int_equal(weft_group_try_join(&g, &out), 0);
  assert_ptr_equal(out, &m[0].t);
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_ECLOSED);
  assert_int_equal(weft_group_size(&g), 0);
  TEST_LOG_EXPECT(&log, 2, 3, 1);
  test_sched_end(&s, &a);
}

static void group_try_join_hands_out_failed_and_cancelled_members(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m[3];
  test_log log;
  weft_task_t *out = NULL;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, WEFT_GROUP_FAIL_FAST);
  start_failing_trio(&s, &g, m, &log);
  assert_int_equal(weft_group_try_join(&g, &out), 0);
  assert_ptr_equal(out, &m[1].t); /* the failure first: it ended first */
  assert_int_equal(out->done.state, WEFT_FUTURE_REJECTED);
  assert_int_equal(weft_group_try_join(&g, &out), 0);
  assert_int_equal(out->done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_group_try_join(&g, &out), 0);
  assert_int_equal(out->done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_ECLOSED);
  assert_ptr_equal(weft_group_failed(&g), &m[1].t); /* kept once joined */
  test_sched_end(&s, &a);
}

/* A parked joiner is handed each member as it ends, so try_join, which
 * takes only members waiting in the group, never takes one from it. */
static void group_try_join_leaves_members_to_a_parked_joiner(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_group_t g;
  probe m, j;
  test_log log;
  weft_task_t *out = NULL;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  weft_group_init(&g, 0);
  member(&j, &log, 0, 0, 0);
  j.grp = &g;
  member(&m, &log, 1, 10, 0);
  start_member(&s, &g, &m);
  probe_start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 5); /* j parks in join */
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_EEMPTY);
  test_sched_advance(&s, 10); /* m ends: handed to j */
  assert_int_equal(weft_group_try_join(&g, &out), WEFT_ECLOSED);
  assert_null(out);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1, 101, -1);
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
  start_failing_trio(&s, &g, m, &log);
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
  probe_start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &j, fn_join, WEFT_PRIO_NORMAL, NULL);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(group_join_hands_out_members_in_finish_order),
      cmocka_unit_test(group_join_takes_already_finished_members_fifo),
      cmocka_unit_test(group_join_on_empty_group_returns_eclosed),
      cmocka_unit_test(
          group_try_join_takes_finished_members_without_waiting),
      cmocka_unit_test(group_try_join_hands_out_failed_and_cancelled_members),
      cmocka_unit_test(group_try_join_leaves_members_to_a_parked_joiner),
      cmocka_unit_test(group_fail_fast_cancels_the_siblings),
      cmocka_unit_test(group_records_the_first_failure_without_fail_fast),
      cmocka_unit_test(group_cancel_cancels_every_running_member),
      cmocka_unit_test(group_clear_unlinks_members_and_wakes_joiners),
      cmocka_unit_test(group_add_rejects_members_of_another_group),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
