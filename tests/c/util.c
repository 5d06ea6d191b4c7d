/*
 * util.c - helpers for the C tests (see util.h).
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
  /* Only new blocks and growths count and may fail: Lua assumes that a
   * shrink always succeeds. */
  if (nsize > osize) {
    a->allocs++;
    if (a->fail_at && (a->allocs == a->fail_at ||
                       (a->sticky && a->allocs > a->fail_at))) {
      a->failed++;
      return NULL;
    }
  }
  q = realloc(p, nsize);
  if (q == NULL) return NULL;
  if (p == NULL) a->live_blocks++;
  a->live_bytes += nsize - osize;
  return q;
}

void test_alloc_expect_empty(const test_alloc *a) {
  assert_int_equal(a->live_blocks, 0);
  assert_int_equal(a->live_bytes, 0);
}

void test_log_init(test_log *l) { l->n = 0; }

void test_log_add(test_log *l, long ev) {
  assert_true(l->n < TEST_LOG_MAX);
  l->ev[l->n++] = ev;
}

static void print_log(const char *what, const long *ev, size_t n) {
  size_t i;
  print_error("%s (%zu):", what, n);
  for (i = 0; i < n; i++) print_error(" %ld", ev[i]);
  print_error("\n");
}

void test_log_expect(const test_log *l, const long *exp, size_t n) {
  if (l->n == n && memcmp(l->ev, exp, n * sizeof *exp) == 0) return;
  print_log("expected", exp, n);
  print_log("got     ", l->ev, l->n);
  fail_msg("event log differs");
}

void test_sched_begin(weft_sched_t *s, test_alloc *a) {
  test_alloc_init(a);
  weft_sched_init(s, test_alloc_fn, a);
}

size_t test_sched_advance(weft_sched_t *s, uint64_t to) {
  size_t n = 0;
  uint64_t due;
  for (;;) {
    n += weft_sched_run(s, SIZE_MAX);
    if (weft_sched_has_ready(s)) continue;
    if (weft_sched_next_due(s, &due) != 0 || due > to) break;
    weft_sched_set_time(s, due);
  }
  weft_sched_set_time(s, to);
  return n + weft_sched_run(s, SIZE_MAX);
}

size_t test_sched_settle(weft_sched_t *s) {
  size_t n = 0;
  uint64_t due;
  for (;;) {
    n += weft_sched_run(s, SIZE_MAX);
    if (weft_sched_has_ready(s)) continue;
    if (weft_sched_next_due(s, &due) != 0) break;
    weft_sched_set_time(s, due);
  }
  return n;
}

void test_sched_end(weft_sched_t *s, test_alloc *a) {
  weft_stats_t st;
  weft_sched_stats(s, &st);
  assert_int_equal(st.live, 0);
  assert_int_equal(st.ready, 0);
  assert_false(weft_sched_has_ready(s));
  assert_null(weft_sched_next_live(s, NULL));
  assert_int_equal(weft_sched_close(s), 0);
  test_alloc_expect_empty(a);
}

/* ------------------------------------------------------------ C tasks */

void probe_note(weft_task_t *t, int status) {
  probe *p = P(t);
  if (p->runs < 8) p->st[p->runs] = status;
  p->runs++;
}

void probe_log(probe *p, long ev) {
  if (p->log) test_log_add(p->log, ev);
}

int probe_finish(weft_task_t *t, int status) {
  probe *p = P(t);
  if (status == WEFT_ECANCELED) {
    assert_int_equal(weft_task_finish(t, WEFT_FUTURE_CANCELLED, status), 0);
    return WEFT_PENDING;
  }
  if (p->code) {
    assert_int_equal(weft_task_finish(t, WEFT_FUTURE_REJECTED, p->code), 0);
    return WEFT_PENDING;
  }
  return WEFT_READY;
}

void probe_start(weft_sched_t *s, probe *p, weft_task_fn fn, int prio,
                 probe *parent) {
  p->t.data = p;
  assert_int_equal(weft_task_start(s, &p->t, fn, prio,
                                   parent ? &parent->t : NULL), 0);
}

int probe_yields(weft_task_t *t, int status) {
  probe *p = P(t);
  probe_note(t, status);
  probe_log(p, p->name);
  if (status == WEFT_ECANCELED) return probe_finish(t, status);
  if (p->yields > 0) {
    p->yields--;
    return weft_task_yield(t);
  }
  return probe_finish(t, status);
}

ONE_WAIT_FN(probe_awaits, weft_task_await(t, p->fut, p->ms))
ONE_WAIT_FN(probe_sleeps, weft_task_sleep(t, p->ms))
