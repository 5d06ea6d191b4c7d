/*
 * util.h - helpers for the C tests: a counting allocator that can fail
 * the n-th allocation, and a fake clock.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_TEST_UTIL_H
#define WEFT_TEST_UTIL_H

#include <stddef.h>

#include "weft.h"

/* About test_alloc: counts live blocks and bytes; when fail_at is n > 0,
 * the n-th allocation from now on (counting new blocks and growths) returns
 * NULL, once. */
typedef struct test_alloc {
  size_t live_blocks, live_bytes, allocs;
  size_t fail_at, failed;
} test_alloc;

void *test_alloc_fn(void *ud, void *p, size_t osize, size_t nsize);
void test_alloc_init(test_alloc *a);

#endif
