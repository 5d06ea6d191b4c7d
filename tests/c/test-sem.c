/*
 * test-sem.c - the core tier through C poll tasks on a fake clock:
 * semaphores: permits handed to waiters in order, try_acquire,
 * and a cancelled waiter.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static ONE_WAIT_FN(fn_acquire, weft_sem_acquire(p->sem, t))

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
    probe_start(&s, &p[i], fn_acquire, WEFT_PRIO_NORMAL, NULL);
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
  probe_start(&s, &p[0], fn_acquire, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &p[1], fn_acquire, WEFT_PRIO_NORMAL, NULL);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sem_hands_released_permits_to_waiters_fifo),
      cmocka_unit_test(sem_try_acquire_takes_permits_until_none_left),
      cmocka_unit_test(sem_cancelled_waiter_loses_its_place),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
