/*
 * util.c - helpers for the C tests (see util.h).
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

void test_alloc_init(test_alloc *a) { memset(a, 0, sizeof *a); }

void *test_alloc_fn(void *ud, void *p, size_t osize, size_t nsize) {
  test_alloc *a = ud;
  void *q;
  if (nsize == 0) {
    if (p) {
      a->live_blocks--;
      a->live_bytes -= osize;
      free(p);
    }
    return NULL;
  }
  if (p == NULL) osize = 0; /* lua_Alloc: osize is a type tag then */
  a->allocs++;
  if (a->fail_at && a->allocs == a->fail_at) {
    a->failed++;
    return NULL;
  }
  q = realloc(p, nsize);
  if (q == NULL) return NULL;
  if (p == NULL) a->live_blocks++;
  a->live_bytes += nsize - osize;
  return q;
}
