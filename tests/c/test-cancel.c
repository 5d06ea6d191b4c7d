/*
 * test-cancel.c - the core tier through C poll tasks on a fake clock:
 * cancellation: waking a parked task, before the first run,
 * of a finished task, down a tree and a deep chain; children of a
 * finished parent.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static void cancel_wakes_a_parked_task_with_ecanceled(void **state) {
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
  p.ms = 1000; /* a deadline too: both must be dropped */
  probe_start(&s, &p, probe_awaits, WEFT_PRIO_NORMAL, NULL);
  test_sched_advance(&s, 10);
  assert_int_equal(weft_task_cancel(&p.t), 0);
  assert_true(p.t.flags & WEFT_TASK_CANCEL);
  assert_false(p.t.flags & WEFT_TASK_PARKED);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.timers, 0);
  assert_int_equal(st.ready, 1);
  test_sched_settle(&s);
  assert_int_equal(p.runs, 2);
  assert_int_equal(p.res, WEFT_ECANCELED);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_sched_now(&s), 10);
  /* The future lost its waiter. */
  assert_int_equal(weft_future_fulfill(&f), 0);
  assert_false(weft_sched_has_ready(&s));
  weft_sched_stats(&s, &st);
  assert_int_equal(st.cancelled, 1);
  test_sched_end(&s, &a);
}

static void cancel_before_first_run_is_seen_on_first_run(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  probe_start(&s, &p, probe_yields, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_task_cancel(&p.t), 0);
  test_sched_settle(&s);
  assert_int_equal(p.runs, 1);
  assert_int_equal(p.st[0], WEFT_ECANCELED);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_CANCELLED);
  test_sched_end(&s, &a);
}

static void cancel_of_a_queued_started_task_keeps_the_request(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  p.yields = 1;
  probe_start(&s, &p, probe_yields, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(weft_sched_run(&s, 1), 1); /* it yielded: queued */
  assert_true(p.t.flags & WEFT_TASK_QUEUED);
  assert_int_equal(weft_task_cancel(&p.t), 0);
  assert_int_equal(weft_task_cancel(&p.t), 0); /* twice is harmless */
  test_sched_settle(&s);
  /* Its yield completed normally; the request waits for its next wait. */
  assert_int_equal(p.runs, 2);
  assert_int_equal(p.st[1], 0);
  assert_true(p.t.flags & WEFT_TASK_CANCEL);
  test_sched_end(&s, &a);
}

static void cancel_of_a_finished_task_returns_estate(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe p;
  weft_stats_t st;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&p, 0, sizeof p);
  probe_start(&s, &p, probe_yields, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&p.t), WEFT_ESTATE);
  assert_false(p.t.flags & WEFT_TASK_CANCEL);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_FULFILLED);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.cancelled, 0);
  test_sched_end(&s, &a);
}

/* A tree: root -> (a -> (a1, a2), b -> b1), and a root task "other"; all
 * wait on a future nobody settles. Cancelling a cancels a, a1, a2 only;
 * cancelling root then cancels the rest of its tree but not other. */
static void cancel_propagates_to_every_descendant_only(void **state) {
  enum { ROOT, A, A1, A2, B, B1, OTHER, N };
  static const int parent[N] = {-1, ROOT, A, A, ROOT, B, -1};
  weft_sched_t s;
  test_alloc a;
  weft_future_t never;
  probe p[N];
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  memset(p, 0, sizeof p);
  for (i = 0; i < N; i++) {
    p[i].fut = &never;
    p[i].ms = WEFT_FOREVER;
    probe_start(&s, &p[i], probe_awaits, WEFT_PRIO_NORMAL,
                parent[i] < 0 ? NULL : &p[parent[i]]);
  }
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&p[A].t), 0);
  test_sched_settle(&s);
  for (i = 0; i < N; i++) {
    int hit = i == A || i == A1 || i == A2;
    assert_int_equal(p[i].runs, hit ? 2 : 1);
    if (hit) assert_int_equal(p[i].res, WEFT_ECANCELED);
  }
  assert_int_equal(weft_task_cancel(&p[ROOT].t), 0);
  test_sched_settle(&s);
  for (i = 0; i < N; i++) {
    assert_int_equal(p[i].runs, i == OTHER ? 1 : 2);
    if (i != OTHER) assert_int_equal(p[i].res, WEFT_ECANCELED);
  }
  assert_int_equal(weft_task_cancel(&p[OTHER].t), 0);
  test_sched_settle(&s);
  test_sched_end(&s, &a);
}

static void cancel_reaches_the_end_of_a_deep_chain(void **state) {
  enum { N = 10000 };
  weft_sched_t s;
  test_alloc a;
  weft_future_t never;
  probe *p = calloc(N, sizeof *p);
  weft_stats_t st;
  int i;
  (void)state;
  assert_non_null(p);
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  for (i = 0; i < N; i++) {
    p[i].fut = &never;
    p[i].ms = WEFT_FOREVER;
    probe_start(&s, &p[i], probe_awaits, WEFT_PRIO_NORMAL,
                i ? &p[i - 1] : NULL);
  }
  assert_int_equal(test_sched_settle(&s), N);
  assert_int_equal(weft_task_cancel(&p[0].t), 0);
  weft_sched_stats(&s, &st);
  assert_int_equal(st.ready, N);
  assert_int_equal(test_sched_settle(&s), N);
  for (i = 0; i < N; i++) {
    assert_int_equal(p[i].runs, 2);
    assert_int_equal(p[i].res, WEFT_ECANCELED);
  }
  weft_sched_stats(&s, &st);
  assert_int_equal(st.cancelled, N);
  test_sched_end(&s, &a);
  free(p);
}

/* A chain too deep for recursion that starts itself: each task starts
 * its child and waits; the cancel of the root must reach the leaf. */
static void cancel_reaches_a_deep_chain_of_nested_spawns(void **state) {
  enum { N = 10000 };
  weft_sched_t s;
  test_alloc a;
  weft_future_t never;
  probe *p = calloc(N, sizeof *p);
  int i;
  (void)state;
  assert_non_null(p);
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  for (i = 0; i < N; i++) {
    p[i].fut = &never;
    p[i].ms = WEFT_FOREVER;
    if (i + 1 < N) {
      p[i].spawn = &p[i + 1];
      p[i].spawn_fn = probe_awaits;
    }
  }
  probe_start(&s, &p[0], probe_awaits, WEFT_PRIO_NORMAL, NULL);
  assert_int_equal(test_sched_settle(&s), N);
  assert_int_equal(weft_task_cancel(&p[0].t), 0);
  assert_int_equal(test_sched_settle(&s), N);
  assert_int_equal(p[N - 1].res, WEFT_ECANCELED);
  for (i = 0; i < N; i++) assert_int_equal(p[i].res, WEFT_ECANCELED);
  test_sched_end(&s, &a);
  free(p);
}

static void child_of_a_cancelled_parent_starts_cancelled(void **state) {
  weft_sched_t s;
  test_alloc a;
  probe parent, child;
  (void)state;
  test_sched_begin(&s, &a);
  memset(&parent, 0, sizeof parent);
  memset(&child, 0, sizeof child);
  parent.yields = 1;
  probe_start(&s, &parent, probe_yields, WEFT_PRIO_NORMAL, NULL);
  weft_sched_run(&s, 1);
  assert_int_equal(weft_task_cancel(&parent.t), 0); /* queued: request kept */
  probe_start(&s, &child, probe_yields, WEFT_PRIO_NORMAL, &parent);
  assert_true(child.t.flags & WEFT_TASK_CANCEL);
  test_sched_settle(&s);
  assert_int_equal(child.st[0], WEFT_ECANCELED);
  assert_int_equal(child.t.done.state, WEFT_FUTURE_CANCELLED);
  test_sched_end(&s, &a);
}

/* grand waits; parent starts child and finishes at once; child waits.
 * The child is detached: cancelling grand or parent does not reach it,
 * and it runs on until its own wait ends. */
static void children_are_detached_when_their_parent_finishes(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t never, f;
  probe grand, parent, child;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&never);
  weft_future_init(&f);
  memset(&grand, 0, sizeof grand);
  memset(&parent, 0, sizeof parent);
  memset(&child, 0, sizeof child);
  grand.fut = &never;
  grand.ms = WEFT_FOREVER;
  child.fut = &f;
  child.ms = WEFT_FOREVER;
  parent.spawn = &child;
  parent.spawn_fn = probe_awaits;
  parent.ms = 0;
  probe_start(&s, &grand, probe_awaits, WEFT_PRIO_NORMAL, NULL);
  probe_start(&s, &parent, probe_sleeps, WEFT_PRIO_NORMAL, &grand);
  test_sched_settle(&s);
  assert_int_equal(parent.t.done.state, WEFT_FUTURE_FULFILLED);
  assert_true(child.t.flags & WEFT_TASK_PARKED);
  assert_int_equal(weft_task_cancel(&parent.t), WEFT_ESTATE);
  assert_int_equal(weft_task_cancel(&grand.t), 0);
  test_sched_settle(&s);
  assert_int_equal(grand.res, WEFT_ECANCELED);
  assert_false(child.t.flags & WEFT_TASK_CANCEL);
  assert_true(child.t.flags & WEFT_TASK_PARKED);
  assert_int_equal(weft_future_fulfill(&f), 0);
  test_sched_settle(&s);
  assert_int_equal(child.res, 0);
  assert_int_equal(child.t.done.state, WEFT_FUTURE_FULFILLED);
  test_sched_end(&s, &a);
}

/* The memory of a finished task is its owner's again (a binding frees
 * it): the scheduler must not write to it when a child it had ends. */
static void finished_task_memory_is_not_touched_by_its_children(
    void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_future_t f;
  probe parent, child, scribbled;
  (void)state;
  test_sched_begin(&s, &a);
  weft_future_init(&f);
  memset(&parent, 0, sizeof parent);
  memset(&child, 0, sizeof child);
  child.fut = &f;
  child.ms = WEFT_FOREVER;
  parent.spawn = &child;
  parent.spawn_fn = probe_awaits;
  parent.ms = 0;
  probe_start(&s, &parent, probe_sleeps, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_true(parent.t.flags & WEFT_TASK_DONE);
  memset(&parent, 0xA5, sizeof parent); /* reused by its owner */
  memcpy(&scribbled, &parent, sizeof parent);
  assert_int_equal(weft_task_cancel(&child.t), 0);
  test_sched_settle(&s);
  assert_int_equal(child.res, WEFT_ECANCELED);
  assert_memory_equal(&parent, &scribbled, sizeof parent);
  test_sched_end(&s, &a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancel_wakes_a_parked_task_with_ecanceled),
      cmocka_unit_test(cancel_before_first_run_is_seen_on_first_run),
      cmocka_unit_test(cancel_of_a_queued_started_task_keeps_the_request),
      cmocka_unit_test(cancel_of_a_finished_task_returns_estate),
      cmocka_unit_test(cancel_propagates_to_every_descendant_only),
      cmocka_unit_test(cancel_reaches_the_end_of_a_deep_chain),
      cmocka_unit_test(cancel_reaches_a_deep_chain_of_nested_spawns),
      cmocka_unit_test(child_of_a_cancelled_parent_starts_cancelled),
      cmocka_unit_test(children_are_detached_when_their_parent_finishes),
      cmocka_unit_test(finished_task_memory_is_not_touched_by_its_children),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
