/*
 * test-io-proc.c - child processes from C with no Lua state
 * (weft_process_exec): output, input, environment, failures, a child
 * killed by a cancel, a deadline, weft_loop_free, the close of a Lua
 * state or a lack of memory.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io-util.h"

/* Runs sh -c script. */
static int sh(weft_loop_t *loop, const char *script, weft_call_t **c) {
  const char *args[] = {"-c", script, NULL};
  weft_process_opts o;
  memset(&o, 0, sizeof o);
  o.cmd = "sh";
  o.args = args;
  return weft_process_exec(loop, &o, c);
}

/* The integer and string fields of a fulfilled exec's result. */
static int64_t ifield(weft_call_t *c, const char *k) {
  const weft_value_t *v = weft_value_get(weft_call_result(c), k);
  assert_non_null(v);
  assert_int_equal(v->type, WEFT_VINT);
  return v->u.i;
}

static void sfield(weft_call_t *c, const char *k, const char *s, size_t n) {
  const weft_value_t *v = weft_value_get(weft_call_result(c), k);
  assert_non_null(v);
  assert_int_equal(v->type, WEFT_VSTR);
  assert_int_equal(v->u.s.len, n);
  assert_memory_equal(v->u.s.ptr, s, n);
  assert_int_equal(v->u.s.ptr[n], '\0');
}

static int exec_steps(stepper *x) {
  static const char *env[] = {"WEFT_T1=one", "HOME", NULL};
  static const char *cat_args[] = {NULL};
  static char big[1 << 20];
  weft_process_opts o;
  weft_call_t *c = NULL;
  weft_error_t e;
  memset(&o, 0, sizeof o);
  switch (x->step) {
  case 0:
    next(x, sh(FX->loop, "echo out; echo err >&2; exit 3", &c), &c);
    return 1;
  case 1: /* exit status and both outputs; a non-zero exit is no failure */
    assert_int_equal(ifield(x->c, "code"), 3);
    assert_int_equal(ifield(x->c, "signal"), 0);
    sfield(x->c, "stdout", "out\n", 4);
    sfield(x->c, "stderr", "err\n", 4);
    o.cmd = "cat";
    o.args = cat_args;
    o.stdin_data = "in\0put";
    o.stdin_len = 6;
    next(x, weft_process_exec(FX->loop, &o, &c), &c);
    return 1;
  case 2: /* input, any bytes, through cat */
    sfield(x->c, "stdout", "in\0put", 6);
    sfield(x->c, "stderr", "", 0);
    next(x, sh(FX->loop, "kill -TERM $$", &c), &c);
    return 1;
  case 3:
    assert_int_equal(ifield(x->c, "signal"), SIGTERM);
    o.cmd = "sh";
    o.args = (const char *[]){"-c", "pwd; echo $WEFT_T1; echo ${HOME:-unset}",
                              NULL};
    o.env = env;
    o.cwd = "/";
    next(x, weft_process_exec(FX->loop, &o, &c), &c);
    return 1;
  case 4: /* env sets and removes; the rest is inherited */
    sfield(x->c, "stdout", "/\none\nunset\n", 12);
    o.cmd = "true"; /* does not read its input: no SIGPIPE ends the test */
    o.stdin_data = big;
    o.stdin_len = sizeof big;
    next(x, weft_process_exec(FX->loop, &o, &c), &c);
    return 1;
  case 5:
    assert_int_equal(ifield(x->c, "code"), 0);
    o.cmd = "weft-no-such-program";
    next(x, weft_process_exec(FX->loop, &o, &c), &c);
    return 1;
  case 6: /* the error record names the program */
    assert_int_equal(weft_call_future(x->c)->state, WEFT_FUTURE_REJECTED);
    assert_int_equal(weft_call_error(x->c, &e), UV_ENOENT);
    assert_string_equal(e.where, "process.exec");
    assert_string_equal(e.message,
                        "weft-no-such-program: No such file or directory");
    return 0;
  }
  fail();
  return 0;
}

/* Processes run from a C task: status, signal, output, input, env, cwd,
 * a child that does not read its input, a program that does not exist. */
static void processes_from_a_c_task(void **state) {
  (void)state;
  run_steps(exec_steps);
}

/* Starts sh -c "echo $$ > fifo; exec <cmd>" and returns the child's pid,
 * read from the fifo: the child is running when this returns (the spawn
 * happens in weft_process_exec, the loop need not run). */
static pid_t exec_pid(fixture *f, const char *cmd, weft_call_t **c) {
  char fifo[256], script[512], buf[32] = {0};
  int fd;
  path(f, fifo, "pid");
  unlink(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  snprintf(script, sizeof script, "echo $$ > %s; exec %s", fifo, cmd);
  assert_int_equal(sh(f->loop, script, c), 0);
  assert_true((fd = open(fifo, O_RDONLY)) >= 0); /* until the child opens */
  assert_true(read(fd, buf, sizeof buf - 1) > 0);
  close(fd);
  return (pid_t)atoi(buf);
}

static int alive(pid_t pid) { return kill(pid, 0) == 0; }

/* Cancelled mid-flight: the call is cancelled at once, the child killed
 * (the loop run ends, which it would not while the child ran) and
 * reaped; a call released unawaited does the same. */
static void a_cancelled_exec_kills_the_child(void **state) {
  fixture f;
  weft_call_t *c;
  pid_t pid;
  (void)state;
  begin(&f, 1, 0);
  pid = exec_pid(&f, "sleep 1000", &c);
  assert_true(alive(pid));
  assert_int_equal(weft_call_cancel(c), 1);
  assert_int_equal(weft_call_future(c)->state, WEFT_FUTURE_CANCELLED);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_false(alive(pid));
  assert_int_equal(errno, ESRCH); /* reaped, not a zombie */
  assert_int_equal(weft_call_future(c)->state, WEFT_FUTURE_CANCELLED);
  weft_call_release(c);
  pid = exec_pid(&f, "sleep 1001", &c);
  weft_call_release(c);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_false(alive(pid));
  end(&f);
}

/* About deadline_task: awaits an exec with a deadline and cancels it when
 * the deadline passes, as a C caller imposes a time limit. */
typedef struct deadline_task {
  weft_task_t t; /* first member */
  weft_call_t *c;
  int status;
} deadline_task;

static int deadline_fn(weft_task_t *t, int status) {
  deadline_task *d = (deadline_task *)t;
  if (status == 0 && weft_task_await(t, weft_call_future(d->c), 20) != 0)
    return WEFT_PENDING;
  d->status = status;
  if (status == WEFT_ETIMEDOUT) assert_int_equal(weft_call_cancel(d->c), 1);
  return WEFT_READY;
}

static void a_deadline_cancels_the_exec(void **state) {
  fixture f;
  deadline_task d;
  pid_t pid;
  (void)state;
  begin(&f, 1, 0);
  memset(&d, 0, sizeof d);
  pid = exec_pid(&f, "sleep 1002", &d.c);
  assert_int_equal(weft_task_start(weft_loop_sched(f.loop), &d.t,
                                   deadline_fn, WEFT_PRIO_NORMAL, NULL),
                   0);
  assert_int_equal(weft_loop_run(f.loop), 0);
  assert_int_equal(d.status, WEFT_ETIMEDOUT);
  assert_false(alive(pid));
  weft_call_release(d.c);
  end(&f);
}

/* weft_loop_free with a child running kills it and frees everything
 * (the counting allocators balance; ASan sees no leak). */
static void freeing_the_loop_kills_a_running_child(void **state) {
  fixture f;
  weft_call_t *c;
  pid_t pid;
  (void)state;
  begin(&f, 1, 0);
  pid = exec_pid(&f, "sleep 1003", &c);
  assert_int_equal(weft_loop_free(f.loop), 0);
  assert_false(alive(pid));
  assert_int_equal(weft_call_future(c)->state, WEFT_FUTURE_CANCELLED);
  weft_call_release(c); /* the call outlives its loop */
  assert_int_equal(weft_loop_new(&f.loop, test_alloc_fn, &f.a), 0);
  end(&f);
}

/* A Lua state closed while a task waits in weft.process.exec: the wait's
 * call is released, which kills the child, and the loop is freed once it
 * is reaped; every allocation comes back. */
static void closing_a_lua_state_kills_its_child(void **state) {
  char fifo[64] = "/tmp/weft-proc-XXXXXX", src[256], buf[32] = {0};
  lua_State *L;
  hstate h;
  vcount v;
  pid_t pid;
  int fd;
  ssize_t n;
  (void)state;
  vcount_begin(&v);
  assert_non_null(mkdtemp(fifo));
  strcat(fifo, "/pid");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  L = hstate_open(&h);
  snprintf(src, sizeof src,
           "weft.process.exec('sh', {'-c', 'echo $$ > %s; exec sleep 1004'})",
           fifo);
  assert_int_equal(luaL_loadstring(L, src), LUA_OK);
  assert_int_equal(weft_lua_spawn(L, 0, NULL, NULL), LUA_OK);
  lua_pop(L, 1);
  /* Opened without waiting for a writer; the task starts the child. */
  assert_true((fd = open(fifo, O_RDONLY | O_NONBLOCK)) >= 0);
  while ((n = read(fd, buf, sizeof buf - 1)) <= 0) weft_lua_poll(L);
  close(fd);
  pid = (pid_t)atoi(buf);
  assert_true(alive(pid));
  lua_close(L);
  assert_false(alive(pid));
  test_alloc_expect_empty(&h.a);
  vcount_end(&v);
  unlink(fifo);
  *strrchr(fifo, '/') = '\0';
  rmdir(fifo);
}

/* Output that does not fit in memory fails the call with UV_ENOMEM and
 * kills the child (cat /dev/zero would never end by itself). */
static void output_out_of_memory_kills_the_child(void **state) {
  fixture f;
  weft_call_t *c;
  weft_error_t e;
  pid_t pid;
  (void)state;
  begin(&f, 1, 0);
  pid = exec_pid(&f, "cat /dev/zero", &c);
  f.v.fail_at = (long)atomic_load(&f.v.allocs) + 1; /* the first growth */
  assert_int_equal(weft_loop_run(f.loop), 0);
  f.v.fail_at = 0;
  assert_false(alive(pid));
  assert_int_equal(weft_call_error(c, &e), UV_ENOMEM);
  assert_string_equal(e.message, "sh: Not enough memory");
  weft_call_release(c);
  end(&f);
}

/* weft_process_exec checks what it is given: WEFT_EINVAL, *out NULL. */
static void exec_refuses_bad_arguments(void **state) {
  fixture f;
  weft_call_t *c;
  weft_process_opts o;
  const char *empty[] = {"", NULL}, *eq[] = {"=x", NULL};
  (void)state;
  begin(&f, 1, 0);
  memset(&o, 0, sizeof o);
  o.cmd = "true";
  REFUSED(weft_process_exec(NULL, &o, &c));
  REFUSED(weft_process_exec(f.loop, NULL, &c));
  assert_int_equal(weft_process_exec(f.loop, &o, NULL), WEFT_EINVAL);
  o.cmd = NULL;
  REFUSED(weft_process_exec(f.loop, &o, &c));
  o.cmd = "true";
  o.stdin_len = 1; /* and no data */
  REFUSED(weft_process_exec(f.loop, &o, &c));
  o.stdin_len = 0;
  o.env = empty;
  REFUSED(weft_process_exec(f.loop, &o, &c));
  o.env = eq;
  REFUSED(weft_process_exec(f.loop, &o, &c));
  end(&f);
}

/* Out of memory while an exec is made: for each allocation it makes,
 * failing that one gives WEFT_ENOMEM, starts nothing and leaves nothing
 * behind; then it runs. */
static void exec_survives_out_of_memory(void **state) {
  const char *args[] = {"-c", "cat; echo $WEFT_T2", NULL};
  const char *env[] = {"WEFT_T2=two", NULL};
  weft_process_opts o;
  fixture f;
  weft_call_t *c;
  long base, n;
  int r;
  (void)state;
  begin(&f, 1, 0);
  memset(&o, 0, sizeof o);
  o.cmd = "sh";
  o.args = args;
  o.env = env;
  o.stdin_data = "x\n";
  o.stdin_len = 2;
  base = vcount_blocks(&f.v);
  for (n = 1;; n++) {
    f.v.fail_at = (long)atomic_load(&f.v.allocs) + n;
    r = weft_process_exec(f.loop, &o, &c);
    f.v.fail_at = 0;
    if (r == 0) break;
    assert_int_equal(r, WEFT_ENOMEM);
    assert_null(c);
    assert_int_equal(vcount_blocks(&f.v), base);
  }
  assert_true(n > 4); /* the block, the result map and its keys, the call */
  assert_int_equal(weft_loop_run(f.loop), 0);
  sfield(c, "stdout", "x\ntwo\n", 6);
  weft_call_release(c);
  end(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(processes_from_a_c_task),
      cmocka_unit_test(a_cancelled_exec_kills_the_child),
      cmocka_unit_test(a_deadline_cancels_the_exec),
      cmocka_unit_test(freeing_the_loop_kills_a_running_child),
      cmocka_unit_test(closing_a_lua_state_kills_its_child),
      cmocka_unit_test(output_out_of_memory_kills_the_child),
      cmocka_unit_test(exec_refuses_bad_arguments),
      cmocka_unit_test(exec_survives_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
