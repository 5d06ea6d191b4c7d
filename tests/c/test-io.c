/*
 * test-io.c - weft's I/O from C with no Lua state (weft_io.h): files from
 * C tasks, calls of C functions on the pool (weft_call_new), cancellation
 * in flight, backpressure of a full pool, argument checks, out of memory;
 * names (weft_dns_resolve) and the text of I/O failures.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "io-util.h"

/* block() -> nil: a pool job held at the fixture's gate. */
static void block(weft_call_t *call, void *ud) {
  gate_pass(&((fixture *)ud)->g);
  weft_call_resolve(call, NULL);
}

static int files_steps(stepper *x) {
  char p[256], q[256];
  weft_call_t *c = NULL;
  const weft_value_t *v;
  weft_error_t e;
  switch (x->step) {
  case 0:
    path(FX, p, "d/a/b");
    next(x, weft_fs_mkdir(FX->loop, p, 1, &c), &c);
    return 1;
  case 1:
    expect_type(x->c, WEFT_VNIL);
    path(FX, p, "d/a/f.txt");
    next(x, weft_fs_write(FX->loop, p, "hello", 5, 0, &c), &c);
    return 1;
  case 2:
    path(FX, p, "d/a/f.txt");
    next(x, weft_fs_write(FX->loop, p, " w\0rld", 6, 1, &c), &c);
    return 1;
  case 3:
    path(FX, p, "d/a/f.txt");
    next(x, weft_fs_read(FX->loop, p, &c), &c);
    return 1;
  case 4:
    v = weft_call_result(x->c);
    assert_non_null(v);
    assert_int_equal(v->u.s.len, 11);
    assert_memory_equal(v->u.s.ptr, "hello w\0rld", 11);
    path(FX, p, "d/a/f.txt");
    next(x, weft_fs_stat(FX->loop, p, &c), &c);
    return 1;
  case 5:
    v = weft_call_result(x->c);
    assert_non_null(v);
    assert_int_equal(weft_value_get(v, "size")->u.i, 11);
    assert_string_equal(weft_value_get(v, "type")->u.s.ptr, "file");
    path(FX, p, "d/a");
    next(x, weft_fs_list(FX->loop, p, &c), &c);
    return 1;
  case 6:
    v = weft_call_result(x->c);
    assert_non_null(v);
    assert_int_equal(v->type, WEFT_VARRAY);
    assert_int_equal(v->u.a.len, 2);
    assert_string_equal(v->u.a.items[0].u.s.ptr, "b");
    assert_string_equal(v->u.a.items[1].u.s.ptr, "f.txt");
    path(FX, p, "d/a/f.txt");
    path(FX, q, "d/a/g.txt");
    next(x, weft_fs_rename(FX->loop, p, q, &c), &c);
    return 1;
  case 7:
    path(FX, p, "d/a/f.txt");
    next(x, weft_fs_read(FX->loop, p, &c), &c);
    return 1;
  case 8: /* the error record: code, where, message naming the path */
    assert_int_equal(weft_call_future(x->c)->state, WEFT_FUTURE_REJECTED);
    assert_null(weft_call_result(x->c));
    assert_int_equal(weft_call_error(x->c, &e), UV_ENOENT);
    assert_int_equal(e.code, UV_ENOENT);
    assert_string_equal(e.where, "fs.read");
    path(FX, p, "d/a/f.txt: No such file or directory");
    assert_string_equal(e.message, p);
    path(FX, p, "d/a/g.txt");
    next(x, weft_fs_exists(FX->loop, p, &c), &c);
    return 1;
  case 9:
    assert_int_equal(weft_call_error(x->c, &e), 0);
    assert_true(weft_call_result(x->c)->u.b);
    path(FX, p, "d");
    next(x, weft_fs_remove(FX->loop, p, 1, &c), &c);
    return 1;
  case 10:
    path(FX, p, "d");
    next(x, weft_fs_exists(FX->loop, p, &c), &c);
    return 1;
  case 11:
    assert_int_equal(weft_call_result(x->c)->type, WEFT_VBOOL);
    assert_false(weft_call_result(x->c)->u.b);
    return 0;
  }
  fail();
  return 0;
}

/* Whole-file operations, each awaited from a C task, with no Lua state. */
static void files_from_a_c_task(void **state) {
  (void)state;
  run_steps(files_steps);
}

static weft_file_t *FILE_;

static int handle_steps(stepper *x) {
  char p[256];
  weft_call_t *c = NULL;
  switch (x->step) {
  case 0:
    path(FX, p, "h.txt");
    assert_int_equal(weft_file_new(p, &FILE_), 0);
    next(x, weft_file_open(FX->loop, FILE_, "w+", &c), &c);
    return 1;
  case 1:
    next(x, weft_file_write(FX->loop, FILE_, "abc", 3, &c), &c);
    return 1;
  case 2:
    next(x, weft_file_seek(FX->loop, FILE_, WEFT_SEEK_SET, 1, &c), &c);
    return 1;
  case 3:
    assert_int_equal(weft_call_result(x->c)->u.i, 1);
    next(x, weft_file_read(FX->loop, FILE_, 10, &c), &c);
    return 1;
  case 4:
    expect_str(x->c, "bc");
    next(x, weft_file_read(FX->loop, FILE_, 10, &c), &c);
    return 1;
  case 5: /* the end: nil */
    expect_type(x->c, WEFT_VNIL);
    next(x, weft_file_open(FX->loop, FILE_, "r", &c), &c);
    return 1;
  case 6: { /* opened once only */
    weft_error_t e;
    assert_int_equal(weft_call_error(x->c, &e), UV_EBUSY);
    assert_string_equal(e.where, "fs.open");
    /* The owner lets go while a read is in flight: the read still has
     * its descriptor, which closes after it. */
    next(x, weft_file_seek(FX->loop, FILE_, WEFT_SEEK_SET, 0, &c), &c);
    weft_file_close(FILE_);
    FILE_ = NULL;
    return 1;
  }
  case 7:
    assert_int_equal(weft_call_result(x->c)->u.i, 0);
    return 0;
  }
  fail();
  return 0;
}

/* An open file: open, write, seek, read to the end, a second open
 * refused; closed by its owner while an operation is in flight. */
static void a_file_from_a_c_task(void **state) {
  (void)state;
  run_steps(handle_steps);
}


/* Starts a call of block and returns once the worker runs it. */
static weft_call_t *hold_worker(fixture *f) {
  weft_fn_opts o = {WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, NULL};
  weft_call_t *c;
  o.ud = f;
  assert_int_equal(weft_call_new(f->loop, "block", block, &o, NULL, NULL, &c),
                   0);
  assert_int_equal(weft_call_start(c), 0);
  while (gate_waiting(&f->g) == 0) uv_sleep(1); /* a worker holds it */
  return c;
}

/* add1(x) -> x + 1, or a rejection for anything but an integer. */
static void add1(weft_call_t *call, void *ud) {
  int64_t x = arg_int(call, 0);
  (void)ud;
  if (x < 0) {
    weft_call_reject(call, "add1 wants a non-negative integer");
    return;
  }
  resolve_int(call, x + 1);
}

/* A call the caller cancels while it waits in the pool's queue never
 * runs: the write it would have made is not there. */
static void a_queued_operation_cancelled_never_runs(void **state) {
  fixture f;
  weft_call_t *blocker, *w;
  char p[256];
  (void)state;
  begin(&f, 1, 0);
  blocker = hold_worker(&f);
  assert_int_equal(weft_call_start(blocker), WEFT_ESTATE);
  path(&f, p, "never.txt");
  assert_int_equal(weft_fs_write(f.loop, p, "x", 1, 0, &w), 0);
  assert_int_equal(weft_call_cancel(w), 1);
  assert_int_equal(weft_call_cancel(w), 0);
  assert_int_equal(weft_call_future(w)->state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_call_start(w), WEFT_ESTATE);
  weft_call_release(w);
  gate_open(&f.g);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_int_equal(weft_call_future(blocker)->state, WEFT_FUTURE_FULFILLED);
  weft_call_release(blocker);
  assert_int_equal(access(p, F_OK), -1);
  end(&f);
}

/* About room_task: reads a file while the pool's queue is full: the read
 * is refused (WEFT_EFULL), waits for room, starts again and completes. */
typedef struct room_task {
  weft_task_t t;
  fixture *f;
  weft_call_t *c;
  int refused, step;
} room_task;

static int room_fn(weft_task_t *t, int status) {
  room_task *x = (room_task *)t;
  char p[256];
  int r;
  assert_int_equal(status, 0);
  if (x->step == 0) {
    path(x->f, p, "r.txt");
    r = weft_fs_read(x->f->loop, p, &x->c);
    x->step = 1;
  } else if (x->step == 1) {
    r = weft_call_start(x->c);
  } else {
    expect_str(x->c, "room");
    weft_call_release(x->c);
    weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
    return WEFT_READY;
  }
  if (r == WEFT_EFULL) {
    assert_non_null(x->c);
    x->refused++;
    if (weft_task_await(t, weft_loop_room(x->f->loop), WEFT_FOREVER) != 0)
      return WEFT_PENDING;
    return room_fn(t, 0);
  }
  assert_int_equal(r, 0);
  x->step = 2;
  if (weft_task_await(t, weft_call_future(x->c), WEFT_FOREVER) != 0)
    return WEFT_PENDING;
  return room_fn(t, 0);
}

/* Opens the gate once the reader has been refused. */
static int opener_fn(weft_task_t *t, int status) {
  room_task *x = t->data;
  (void)status;
  assert_int_equal(x->refused, 1);
  gate_open(&x->f->g);
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

/* A full pool queue refuses an operation without dropping it or
 * blocking: the task awaits the loop's room future and starts it again. */
static void a_full_pool_queue_waits_for_room(void **state) {
  fixture f;
  weft_fn_opts o = {WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, NULL};
  weft_call_t *running, *queued;
  room_task x;
  weft_task_t opener;
  char p[256];
  FILE *fp;
  (void)state;
  begin(&f, 1, 1);
  path(&f, p, "r.txt");
  assert_non_null(fp = fopen(p, "w"));
  fputs("room", fp);
  fclose(fp);
  o.ud = &f;
  running = hold_worker(&f);
  assert_int_equal(
      weft_call_new(f.loop, "block", block, &o, NULL, NULL, &queued), 0);
  assert_int_equal(weft_call_start(queued), 0); /* the queue is full */
  memset(&x, 0, sizeof x);
  x.f = &f;
  assert_int_equal(weft_task_start(weft_loop_sched(f.loop), &x.t, room_fn,
                                   WEFT_PRIO_HIGH, NULL),
                   0);
  memset(&opener, 0, sizeof opener);
  opener.data = &x;
  assert_int_equal(weft_task_start(weft_loop_sched(f.loop), &opener,
                                   opener_fn, WEFT_PRIO_LOW, NULL),
                   0);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_int_equal(x.refused, 1);
  assert_int_equal(x.step, 2);
  weft_call_release(running);
  weft_call_release(queued);
  end(&f);
}

/* A C function on the pool, called from C: its result, its rejection
 * (WEFT_ESCRIPT, its name, its message), a sync function completing at
 * once, and weft_call_new's checks. */
static void calls_of_c_functions_from_c(void **state) {
  fixture f;
  weft_fn_opts o = {WEFT_FN_POOL, WEFT_PRIO_HIGH, 0, NULL, NULL};
  weft_value_t args;
  weft_call_t *ok, *bad, *now;
  weft_error_t e;
  (void)state;
  begin(&f, 2, 0);
  assert_int_equal(weft_value_array(&args, 1), 0);
  weft_value_int(&args.u.a.items[0], 41);
  assert_int_equal(weft_call_new(f.loop, "add1", add1, &o, NULL, &args, &ok),
                   0);
  assert_int_equal(args.type, WEFT_VNIL); /* moved in */
  assert_int_equal(weft_call_start(ok), 0);
  assert_int_equal(weft_call_new(f.loop, "add1", add1, &o, f.pool, NULL,
                                 &bad),
                   0);
  assert_int_equal(weft_call_start(bad), 0);
  o.kind = WEFT_FN_SYNC;
  assert_int_equal(weft_value_array(&args, 1), 0);
  weft_value_int(&args.u.a.items[0], 1);
  assert_int_equal(weft_call_new(f.loop, "add1", add1, &o, NULL, &args,
                                 &now),
                   0);
  assert_int_equal(weft_call_start(now), 0);
  assert_int_equal(weft_call_result(now)->u.i, 2); /* at once */
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_int_equal(weft_call_result(ok)->u.i, 42);
  assert_int_equal(weft_call_error(ok, &e), 0);
  assert_null(e.message);
  assert_null(weft_call_result(bad));
  assert_int_equal(weft_call_error(bad, &e), WEFT_ESCRIPT);
  assert_string_equal(e.where, "add1");
  assert_string_equal(e.message, "add1 wants a non-negative integer");
  weft_call_release(ok);
  weft_call_release(bad);
  weft_call_release(now);
  weft_call_release(NULL);
  /* Refused: each leaves *out NULL and frees the arguments. */
  o.kind = 7;
  assert_int_equal(weft_value_array(&args, 1), 0);
  assert_int_equal(weft_call_new(f.loop, "x", add1, &o, NULL, &args, &ok),
                   WEFT_EINVAL);
  assert_null(ok);
  assert_int_equal(args.type, WEFT_VNIL);
  o.kind = WEFT_FN_POOL;
  weft_loop_set_pool(f.loop, NULL);
  assert_int_equal(weft_call_new(f.loop, "x", add1, &o, NULL, NULL, &ok),
                   WEFT_EINVAL); /* no pool */
  weft_value_int(&args, 3);
  assert_int_equal(weft_call_new(f.loop, "x", add1, &o, f.pool, &args, &ok),
                   WEFT_EINVAL); /* arguments are an array */
  assert_int_equal(weft_call_new(NULL, "x", add1, &o, f.pool, NULL, &ok),
                   WEFT_EINVAL);
  assert_int_equal(weft_call_new(f.loop, NULL, add1, &o, f.pool, NULL, &ok),
                   WEFT_EINVAL);
  assert_int_equal(weft_call_new(f.loop, "x", NULL, &o, f.pool, NULL, &ok),
                   WEFT_EINVAL);
  assert_int_equal(weft_call_start(NULL), WEFT_EINVAL);
  end(&f);
}

/* Every I/O entry checks what it is given: WEFT_EINVAL, *out NULL. */
static void io_entries_refuse_bad_arguments(void **state) {
  fixture f;
  weft_call_t *c;
  weft_file_t *h;
  (void)state;
  begin(&f, 1, 0);
  assert_int_equal(weft_file_new("x", &h), 0);
  REFUSED(weft_fs_read(NULL, "x", &c));
  REFUSED(weft_fs_read(f.loop, NULL, &c));
  assert_int_equal(weft_fs_read(f.loop, "x", NULL), WEFT_EINVAL);
  REFUSED(weft_fs_write(f.loop, "x", NULL, 3, 0, &c));
  REFUSED(weft_fs_rename(f.loop, "x", NULL, &c));
  REFUSED(weft_file_open(f.loop, h, "rw", &c));
  REFUSED(weft_file_open(f.loop, h, NULL, &c));
  REFUSED(weft_file_open(f.loop, NULL, "r", &c));
  REFUSED(weft_file_read(f.loop, h, 0, &c));
  REFUSED(weft_file_seek(f.loop, h, 3, 0, &c));
  REFUSED(weft_file_seek(f.loop, h, -1, 0, &c));
  REFUSED(weft_file_write(f.loop, h, NULL, 1, &c));
  weft_file_close(h);
  assert_int_equal(weft_file_new(NULL, &h), WEFT_EINVAL);
  assert_null(h);
  assert_true(weft_file_valid_mode("r+b"));
  assert_false(weft_file_valid_mode("rx"));
  assert_false(weft_file_valid_mode(""));
  weft_file_close(NULL);
  assert_int_equal(weft_file_new("x", &h), 0);
  weft_file_close(h);
  end(&f);
}

/* Out of memory while an operation is made: for each allocation it makes,
 * failing that one gives WEFT_ENOMEM and leaves nothing behind. */
static void io_entries_survive_out_of_memory(void **state) {
  fixture f;
  weft_call_t *c, *blocker;
  weft_file_t *h;
  long base, n;
  int r;
  (void)state;
  begin(&f, 1, 0);
  /* The one worker is held meanwhile: no job allocates while the test
   * sets which allocation fails (vcount's fail_at is not atomic). */
  blocker = hold_worker(&f);
  base = vcount_blocks(&f.v);
  for (n = 1;; n++) {
    f.v.fail_at = (long)atomic_load(&f.v.allocs) + n;
    r = weft_fs_write(f.loop, "/nonexistent-dir/x", "data", 4, 0, &c);
    f.v.fail_at = 0;
    if (r == 0) break;
    assert_int_equal(r, WEFT_ENOMEM);
    assert_null(c);
    assert_int_equal(vcount_blocks(&f.v), base);
  }
  assert_true(n > 2); /* the call, its arguments, their strings */
  f.v.fail_at = (long)atomic_load(&f.v.allocs) + 1;
  assert_int_equal(weft_file_new("x", &h), WEFT_ENOMEM);
  f.v.fail_at = 0;
  gate_open(&f.g);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_int_equal(weft_call_future(c)->state, WEFT_FUTURE_REJECTED);
  weft_call_release(c);
  weft_call_release(blocker);
  end(&f);
}

static int dns_steps(stepper *x) {
  weft_call_t *c = NULL;
  const weft_value_t *v;
  weft_error_t e;
  size_t i;
  int local = 0;
  switch (x->step) {
  case 0:
    next(x, weft_dns_resolve(FX->loop, "127.0.0.1", &c), &c);
    return 1;
  case 1: /* a numeric host is its own result */
    v = weft_call_result(x->c);
    assert_non_null(v);
    assert_int_equal(v->u.a.len, 1);
    assert_string_equal(v->u.a.items[0].u.s.ptr, "127.0.0.1");
    next(x, weft_dns_resolve(FX->loop, "localhost", &c), &c);
    return 1;
  case 2:
    v = weft_call_result(x->c);
    assert_non_null(v);
    assert_true(v->u.a.len >= 1);
    for (i = 0; i < v->u.a.len; i++)
      local |= strcmp(v->u.a.items[i].u.s.ptr, "127.0.0.1") == 0 ||
               strcmp(v->u.a.items[i].u.s.ptr, "::1") == 0;
    assert_true(local);
    next(x, weft_dns_resolve(FX->loop, "no-such-host.invalid", &c), &c);
    return 1;
  case 3:
    assert_true(weft_call_error(x->c, &e) < 0);
    assert_string_equal(e.where, "dns.resolve");
    assert_non_null(strstr(e.message, "no-such-host.invalid: "));
    return 0;
  }
  fail();
  return 0;
}

/* Names resolved from a C task: a numeric host at once, localhost, a
 * name that does not exist (its error names it). */
static void names_from_a_c_task(void **state) {
  (void)state;
  run_steps(dns_steps);
}

/* A lookup cancelled at once, and one released unawaited, leave nothing
 * behind: libuv's callback still comes and frees what it held; a
 * cancelled call completes no more. */
static void a_lookup_cancelled_or_abandoned_leaks_nothing(void **state) {
  fixture f;
  weft_call_t *a, *b;
  (void)state;
  begin(&f, 1, 0);
  assert_int_equal(weft_dns_resolve(f.loop, "localhost", &a), 0);
  assert_int_equal(weft_dns_resolve(f.loop, "localhost", &b), 0);
  assert_int_equal(weft_call_cancel(a), 1);
  assert_int_equal(weft_call_future(a)->state, WEFT_FUTURE_CANCELLED);
  weft_call_release(b);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_int_equal(weft_call_future(a)->state, WEFT_FUTURE_CANCELLED);
  weft_call_release(a);
  assert_int_equal(weft_dns_resolve(f.loop, "", &a), WEFT_EINVAL);
  assert_null(a);
  assert_int_equal(weft_dns_resolve(f.loop, NULL, &a), WEFT_EINVAL);
  /* A loop freed with a lookup in flight. */
  assert_int_equal(weft_dns_resolve(f.loop, "localhost", &a), 0);
  weft_call_release(a);
  end(&f);
}

/* The one formatter of I/O failures: "<what>: <Message>", a long what cut
 * so that the message is whole. */
static void io_error_text(void **state) {
  char buf[40];
  (void)state;
  weft_io_error_text(buf, sizeof buf, "x.txt", UV_ENOENT);
  assert_string_equal(buf, "x.txt: No such file or directory");
  weft_io_error_text(buf, sizeof buf, NULL, UV_ECONNREFUSED);
  assert_string_equal(buf, "Connection refused");
  weft_io_error_text(buf, sizeof buf, "a-very-long-path-name", UV_ENOENT);
  assert_string_equal(buf, "a-very-lo...: No such file or directory");
  weft_io_error_text(buf, sizeof buf, "w", WEFT_ECANCELED);
  assert_string_equal(buf, "w: Cancelled");
  assert_string_equal(weft_io_err_name(UV_EAI_NONAME), "EAI_NONAME");
  assert_string_equal(weft_io_err_name(WEFT_ENOMEM), "WEFT_ENOMEM");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(files_from_a_c_task),
      cmocka_unit_test(a_file_from_a_c_task),
      cmocka_unit_test(a_queued_operation_cancelled_never_runs),
      cmocka_unit_test(a_full_pool_queue_waits_for_room),
      cmocka_unit_test(calls_of_c_functions_from_c),
      cmocka_unit_test(io_entries_refuse_bad_arguments),
      cmocka_unit_test(io_entries_survive_out_of_memory),
      cmocka_unit_test(names_from_a_c_task),
      cmocka_unit_test(a_lookup_cancelled_or_abandoned_leaks_nothing),
      cmocka_unit_test(io_error_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
