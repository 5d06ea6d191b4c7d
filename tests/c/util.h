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

#endif
