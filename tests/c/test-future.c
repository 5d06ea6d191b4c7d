/*
 * test-future.c - the core tier through C poll tasks on a fake clock:
 * futures: settling once, waking waiters in order, removing
 * waiters, callbacks that change the waiter list.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(future_fulfill_wakes_waiters_in_order_once),
      cmocka_unit_test(future_reject_keeps_its_code_against_later_settles),
      cmocka_unit_test(future_cancel_settles_once_with_ecanceled),
      cmocka_unit_test(future_on_settled_future_adds_nothing),
      cmocka_unit_test(future_removed_waiter_is_not_woken),
      cmocka_unit_test(future_waiter_callback_may_remove_a_later_waiter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
