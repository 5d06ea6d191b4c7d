/*
 * io-util.h - helpers shared by the C tests of the I/O (test-io.c,
 * test-io-proc.c): a loop with a pool and a scratch directory, and C
 * tasks written as steps that each start and await one call.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_TEST_IO_UTIL_H
#define WEFT_TEST_IO_UTIL_H

#include "host-util.h"
#include "weft_io.h"

/* About fixture: one loop on a counting allocator, one pool, a scratch
 * directory, and the values and calls counted by vcount. */
typedef struct fixture {
  test_alloc a;
  vcount v;
  weft_loop_t *loop;
  weft_pool_t *pool;
  char dir[64];
  gate g;
} fixture;

static inline void begin(fixture *f, unsigned threads, size_t queue_max) {
  weft_pool_opts o = {threads, queue_max};
  vcount_begin(&f->v);
  test_alloc_init(&f->a);
  assert_int_equal(weft_loop_new(&f->loop, test_alloc_fn, &f->a), 0);
  assert_int_equal(weft_pool_new(&f->pool, &o), 0);
  weft_loop_set_pool(f->loop, f->pool);
  assert_ptr_equal(weft_loop_pool(f->loop), f->pool);
  snprintf(f->dir, sizeof f->dir, "/tmp/weft-io-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  gate_init(&f->g);
}

static inline void end(fixture *f) {
  char cmd[96];
  assert_int_equal(weft_loop_free(f->loop), 0);
  weft_pool_free(f->pool);
  gate_destroy(&f->g);
  test_alloc_expect_empty(&f->a);
  vcount_end(&f->v);
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
}

static inline void path(fixture *f, char *buf, const char *name) {
  snprintf(buf, 256, "%s/%s", f->dir, name);
}

/* About step tasks: a C task written as a sequence of steps. Each step
 * starts at most one call; the task awaits it, and the next step reads
 * its outcome in x->c (released before the step after). */
typedef struct stepper {
  weft_task_t t; /* first member */
  fixture *f;
  int step, done;
  weft_call_t *c;
  int (*run)(struct stepper *x); /* 1: a call was started, 0: finished */
} stepper;

static inline int step_fn(weft_task_t *t, int status) {
  stepper *x = (stepper *)t;
  assert_int_equal(status, 0);
  for (;;) {
    if (x->c && weft_call_future(x->c)->state == WEFT_FUTURE_PENDING) {
      if (weft_task_await(t, weft_call_future(x->c), WEFT_FOREVER) != 0)
        return WEFT_PENDING;
      continue;
    }
    if (!x->run(x)) {
      weft_call_release(x->c);
      x->c = NULL;
      x->done = 1;
      weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
      return WEFT_READY;
    }
  }
}

/* Takes the call a step started into *pc (r, its start's status) as the
 * one to await, dropping the one before. */
static inline void next(stepper *x, int r, weft_call_t **pc) {
  weft_call_t *c = *pc;
  assert_int_equal(r, 0);
  assert_non_null(c);
  weft_call_release(x->c);
  x->c = c;
  x->step++;
}

static fixture *FX; /* the running test's, for the step functions */

/* Runs a step task on a fresh fixture, to its end. */
static inline void run_steps(int (*run)(stepper *x)) {
  fixture f;
  stepper x;
  begin(&f, 2, 0);
  FX = &f;
  memset(&x, 0, sizeof x);
  x.f = &f;
  x.run = run;
  assert_int_equal(weft_task_start(weft_loop_sched(f.loop), &x.t, step_fn,
                                   WEFT_PRIO_NORMAL, NULL),
                   0);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_true(x.done);
  end(&f);
}

/* The string a call fulfilled with. */
static inline void expect_str(weft_call_t *c, const char *s) {
  const weft_value_t *v = weft_call_result(c);
  assert_non_null(v);
  assert_int_equal(v->type, WEFT_VSTR);
  assert_int_equal(v->u.s.len, strlen(s));
  assert_memory_equal(v->u.s.ptr, s, strlen(s));
}

static inline void expect_type(weft_call_t *c, int type) {
  const weft_value_t *v = weft_call_result(c);
  assert_non_null(v);
  assert_int_equal(v->type, type);
}
/* Asserts that call (an I/O entry storing its call in c) refuses with
 * WEFT_EINVAL and sets c to NULL (it is set to something else first). */
#define REFUSED(call)                                                       \
  do {                                                                      \
    c = (weft_call_t *)&c;                                                  \
    assert_int_equal(call, WEFT_EINVAL);                                    \
    assert_null(c);                                                         \
  } while (0)

#endif
