/*
 * test-embed.c - the embedding API (weft_lua.h) and the host loop with a
 * real libuv loop: weft_lua_run results and errors, unhandled failure
 * reports, deadlocks, and C poll tasks on weft_loop_run.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "util.h"
#include "weft_lua.h"

/* ------------------------------------------------------------ helpers */

/* About reports: what the report function received. */
typedef struct reports {
  unsigned long n;
  char last[1024];
} reports;

static void on_report(void *ud, const char *text) {
  reports *r = ud;
  r->n++;
  snprintf(r->last, sizeof r->last, "%s", text);
}

static lua_State *open_state(test_alloc *a) {
  lua_State *L;
  test_alloc_init(a);
  L = lua_newstate(test_alloc_fn, a);
  assert_non_null(L);
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  return L;
}

static void load(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK)
    fail_msg("load: %s", lua_tostring(L, -1));
}

static size_t live_tasks(lua_State *L) {
  weft_stats_t st;
  weft_sched_stats(weft_loop_sched(weft_lua_loop(L)), &st);
  return st.live;
}

/* The end of every Lua test: no task live, and closing the state gives
 * back every byte. */
static void close_state(lua_State *L, test_alloc *a) {
  assert_int_equal(live_tasks(L), 0);
  lua_close(L);
  test_alloc_expect_empty(a);
}

static void expect_contains(const char *s, const char *part) {
  assert_non_null(s);
  if (strstr(s, part) == NULL) fail_msg("\"%s\" lacks \"%s\"", s, part);
}

/* ---------------------------------------------------------- weft_lua_run */

static void lua_run_pushes_the_results_of_a_sleeping_function(
    void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  lua_pushliteral(L, "below"); /* the stack under the call stays */
  load(L, "local x, y = ...\n"
          "weft.sleep(2)\n"
          "local t = weft.spawn(function() weft.sleep(1) return x * y end)\n"
          "return x + y, 'done', nil, t:await()\n");
  lua_pushinteger(L, 3);
  lua_pushinteger(L, 4);
  assert_int_equal(weft_lua_run(L, 2, 0), LUA_OK);
  assert_int_equal(lua_gettop(L), 5);
  assert_string_equal(lua_tostring(L, 1), "below");
  assert_int_equal(lua_tointeger(L, 2), 7);
  assert_string_equal(lua_tostring(L, 3), "done");
  assert_true(lua_isnil(L, 4));
  assert_int_equal(lua_tointeger(L, 5), 12);
  lua_settop(L, 0);
  close_state(L, &a);
}

static void lua_run_error_table_comes_back_with_its_identity(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  lua_newtable(L); /* index 1: the error value */
  load(L, "local e = ...\n"
          "weft.sleep(1)\n"
          "error(e)\n");
  lua_pushvalue(L, 1);
  assert_int_equal(weft_lua_run(L, 1, 0), LUA_ERRRUN);
  assert_int_equal(lua_gettop(L), 2);
  assert_true(lua_rawequal(L, 1, 2));
  lua_settop(L, 0);
  close_state(L, &a);
}

static void lua_run_with_traceback_gives_a_string_with_the_trace(
    void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  load(L, "local function inner() weft.sleep(1) error('boom here') end\n"
          "inner()\n");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_ERRRUN);
  assert_int_equal(lua_type(L, -1), LUA_TSTRING);
  expect_contains(lua_tostring(L, -1), "boom here");
  expect_contains(lua_tostring(L, -1), "stack traceback");
  expect_contains(lua_tostring(L, -1), "inner");
  lua_settop(L, 0);
  close_state(L, &a);
}

static void lua_run_twice_on_the_same_state_works(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  load(L, "weft.sleep(1) shared = 41 return 'first'");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  assert_string_equal(lua_tostring(L, -1), "first");
  lua_settop(L, 0);
  load(L, "weft.sleep(1) return shared + 1");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  assert_int_equal(lua_tointeger(L, -1), 42);
  lua_settop(L, 0);
  /* A failure in between leaves the state usable. */
  load(L, "error('second fails')");
  assert_int_equal(weft_lua_run(L, 0, 0), LUA_ERRRUN);
  lua_settop(L, 0);
  load(L, "return weft.stats().live");
  assert_int_equal(weft_lua_run(L, 0, 0), LUA_OK);
  assert_int_equal(lua_tointeger(L, -1), 1); /* the main task itself */
  lua_settop(L, 0);
  close_state(L, &a);
}

static void weft_run_inside_a_task_raises_a_clear_error(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  load(L, "local ok, err = pcall(weft.run, function() end)\n"
          "return ok, err\n");
  assert_int_equal(weft_lua_run(L, 0, 0), LUA_OK);
  assert_false(lua_toboolean(L, -2));
  expect_contains(lua_tostring(L, -1), "weft.run");
  expect_contains(lua_tostring(L, -1), "inside a task");
  lua_settop(L, 0);
  close_state(L, &a);
}

/* A C function a task calls: weft_lua_run from inside a task. */
static int nested_run(lua_State *L) {
  int st;
  load(L, "return 1");
  st = weft_lua_run(L, 0, 0);
  lua_pushinteger(L, st);
  lua_insert(L, -2);
  return 2;
}

static void weft_lua_run_inside_a_task_returns_an_error(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  lua_register(L, "nested_run", nested_run);
  load(L, "return nested_run()");
  assert_int_equal(weft_lua_run(L, 0, 0), LUA_OK);
  assert_int_equal(lua_tointeger(L, -2), LUA_ERRRUN);
  expect_contains(lua_tostring(L, -1), "inside a task");
  lua_settop(L, 0);
  close_state(L, &a);
}

static void deadlocked_main_task_gives_a_deadlock_error(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  load(L, "local f = weft.future()\n"
          "weft.spawn(function() weft.await(weft.future()) end)\n"
          "weft.await(f)\n"
          "return 'unreachable'\n");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_ERRRUN);
  expect_contains(lua_tostring(L, -1), "deadlock");
  assert_int_equal(live_tasks(L), 0);
  lua_settop(L, 0);
  /* The state stays usable after a deadlock. */
  load(L, "return 'after'");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  assert_string_equal(lua_tostring(L, -1), "after");
  lua_settop(L, 0);
  close_state(L, &a);
}

/* ------------------------------------------------------------ reports */

static void unawaited_failed_task_is_reported_exactly_once(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  reports r;
  (void)state;
  memset(&r, 0, sizeof r);
  weft_lua_set_report(L, on_report, &r);
  assert_int_equal(weft_lua_unhandled(L), 0);
  load(L, "weft.spawn({name = 'lost'}, function()\n"
          "  weft.sleep(1) error('nobody awaits me')\n"
          "end)\n"
          "return 'main ok'\n");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  assert_string_equal(lua_tostring(L, -1), "main ok");
  lua_settop(L, 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(weft_lua_unhandled(L), 1);
  expect_contains(r.last, "nobody awaits me");
  expect_contains(r.last, "lost");
  /* Neither a collection nor a later run reports it again. */
  lua_gc(L, LUA_GCCOLLECT, 0);
  load(L, "return true");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(weft_lua_unhandled(L), 1);
  close_state(L, &a);
  assert_int_equal(r.n, 1); /* nor does closing the state */
}

static void awaited_failed_task_is_not_reported(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  reports r;
  (void)state;
  memset(&r, 0, sizeof r);
  weft_lua_set_report(L, on_report, &r);
  load(L, "local t = weft.spawn(function() weft.sleep(1) error('seen') end)\n"
          "local ok, err = pcall(weft.await, t)\n"
          "return ok, err\n");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  assert_false(lua_toboolean(L, -2));
  expect_contains(lua_tostring(L, -1), "seen");
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  assert_int_equal(r.n, 0);
  assert_int_equal(weft_lua_unhandled(L), 0);
  close_state(L, &a);
  assert_int_equal(r.n, 0);
}

static void failed_main_task_is_not_reported_as_unhandled(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  reports r;
  (void)state;
  memset(&r, 0, sizeof r);
  weft_lua_set_report(L, on_report, &r);
  load(L, "error('main fails')");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_ERRRUN);
  lua_settop(L, 0);
  assert_int_equal(r.n, 0); /* the caller got it: it is handled */
  close_state(L, &a);
}

/* ------------------------------------------------- the loop with C tasks */

/* About ctask: a C task on a real loop. It sleeps ms (if nonzero) or
 * awaits fut, then logs its name. */
typedef struct ctask {
  weft_task_t t;
  long name;
  test_log *log;
  uint64_t ms;
  weft_future_t *fut;
  weft_loop_t *loop;
  int runs, status, waiting;
  int reentry_run, reentry_free;
} ctask;

static int ctask_fn(weft_task_t *t, int status) {
  ctask *c = (ctask *)t;
  c->runs++;
  if (c->loop) { /* misuse from inside the running loop */
    c->reentry_run = weft_loop_run(c->loop);
    c->reentry_free = weft_loop_free(c->loop);
  }
  if (!c->waiting) {
    int r = c->fut ? weft_task_await(t, c->fut, WEFT_FOREVER)
                   : weft_task_sleep(t, c->ms);
    assert_int_equal(r, WEFT_PENDING);
    c->waiting = 1;
    return r;
  }
  c->status = status;
  if (c->log) test_log_add(c->log, c->name);
  return WEFT_READY;
}

static void ctask_start(weft_loop_t *loop, ctask *c) {
  c->t.data = c;
  assert_int_equal(weft_task_start(weft_loop_sched(loop), &c->t, ctask_fn,
                                   WEFT_PRIO_NORMAL, NULL), 0);
}

static void loop_runs_c_tasks_on_real_timers_until_all_end(void **state) {
  test_alloc a;
  weft_loop_t *loop;
  ctask c[4];
  test_log log;
  weft_stats_t st;
  int i;
  (void)state;
  test_alloc_init(&a);
  test_log_init(&log);
  assert_int_equal(weft_loop_new(&loop, test_alloc_fn, &a), 0);
  memset(c, 0, sizeof c);
  for (i = 0; i < 4; i++) {
    c[i].name = i + 1;
    c[i].log = &log;
  }
  c[0].ms = 20;
  c[1].ms = 5;
  c[2].ms = 12;
  c[3].ms = 0;
  for (i = 0; i < 4; i++) ctask_start(loop, &c[i]);
  assert_int_equal(weft_loop_run(loop), 0);
  /* Deadlines differ, so the order is fixed whatever the real delays. */
  TEST_LOG_EXPECT(&log, 4, 2, 3, 1);
  for (i = 0; i < 4; i++) {
    assert_int_equal(c[i].status, 0);
    assert_int_equal(c[i].runs, 2);
    assert_int_equal(c[i].t.done.state, WEFT_FUTURE_FULFILLED);
  }
  weft_sched_stats(weft_loop_sched(loop), &st);
  assert_int_equal(st.live, 0);
  assert_int_equal(st.timers, 0);
  assert_int_equal(st.finished, 4);
  assert_non_null(weft_loop_uv(loop));
  assert_int_equal(weft_loop_free(loop), 0);
  test_alloc_expect_empty(&a);
}

static void loop_run_returns_the_number_of_stuck_tasks(void **state) {
  test_alloc a;
  weft_loop_t *loop;
  weft_future_t never;
  ctask c[3];
  int i;
  (void)state;
  test_alloc_init(&a);
  assert_int_equal(weft_loop_new(&loop, test_alloc_fn, &a), 0);
  weft_future_init(&never);
  memset(c, 0, sizeof c);
  c[0].fut = &never;
  c[1].fut = &never;
  c[2].ms = 1;
  for (i = 0; i < 3; i++) ctask_start(loop, &c[i]);
  assert_int_equal(weft_loop_run(loop), 2);
  assert_int_equal(c[2].runs, 2);
  assert_int_equal(weft_future_fulfill(&never), 0);
  assert_int_equal(weft_loop_run(loop), 0);
  for (i = 0; i < 3; i++) assert_int_equal(c[i].t.done.state,
                                           WEFT_FUTURE_FULFILLED);
  assert_int_equal(weft_loop_free(loop), 0);
  test_alloc_expect_empty(&a);
}

static void loop_refuses_reentry_and_free_while_running(void **state) {
  test_alloc a;
  weft_loop_t *loop;
  ctask c;
  (void)state;
  test_alloc_init(&a);
  assert_int_equal(weft_loop_new(&loop, test_alloc_fn, &a), 0);
  memset(&c, 0, sizeof c);
  c.loop = loop;
  c.ms = 1;
  ctask_start(loop, &c);
  assert_int_equal(weft_loop_run(loop), 0);
  assert_int_equal(c.runs, 2);
  assert_int_equal(c.reentry_run, WEFT_ESTATE);
  assert_int_equal(c.reentry_free, WEFT_ESTATE);
  assert_int_equal(weft_loop_free(loop), 0);
  test_alloc_expect_empty(&a);
}

static void loop_new_without_allocator_uses_the_c_library(void **state) {
  weft_loop_t *loop = NULL;
  ctask c;
  (void)state;
  assert_int_equal(weft_loop_new(NULL, NULL, NULL), WEFT_EINVAL);
  assert_int_equal(weft_loop_new(&loop, NULL, NULL), 0);
  assert_non_null(loop);
  memset(&c, 0, sizeof c);
  c.ms = 1;
  ctask_start(loop, &c);
  assert_int_equal(weft_loop_run(loop), 0);
  assert_int_equal(c.t.done.state, WEFT_FUTURE_FULFILLED);
  assert_int_equal(weft_loop_free(loop), 0);
}

/* ----------------------------------------------------------- preemption */

static int set_preempt_inside(lua_State *L) {
  lua_pushinteger(L, weft_lua_set_preempt(L, 1));
  return 1;
}

/* A task that never waits is made to yield, so the main task's timer
 * fires and stops it: without preemption it would count to 1e9 first
 * (seconds) and return false. (It makes a table now and then: under
 * ThreadSanitizer a signal is delivered only inside an intercepted call,
 * such as malloc, and the Lua VM makes none otherwise.) A long callback
 * inside string.gsub (a C function: no yield is possible there) runs to
 * its end unharmed. */
static void preemption_lets_a_timer_fire_while_a_task_spins(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  assert_int_equal(weft_lua_set_preempt(L, 2), 0);
  lua_register(L, "set_preempt_inside", set_preempt_inside);
  load(L, "local stop = false\n"
          "local busy = weft.spawn(function()\n"
          "  local n = 0\n"
          "  while not stop and n < 1e9 do\n"
          "    n = n + 1\n"
          "    if n % 1000 == 0 then local t = {} end\n"
          "  end\n"
          "  return stop\n"
          "end)\n"
          "weft.sleep(5)\n"
          "stop = true\n"
          "local s = ('abc'):gsub('.', function(c)\n"
          "  local n = 0\n"
          "  for i = 1, 2e7 do n = n + 1 end\n"
          "  return c:upper()\n"
          "end)\n"
          "return busy:await(), weft.stats().preemptions, s,\n"
          "  set_preempt_inside()\n");
  assert_int_equal(weft_lua_run(L, 0, 0), LUA_OK);
  assert_true(lua_toboolean(L, -4));
  assert_true(lua_tointeger(L, -3) > 0);
  assert_string_equal(lua_tostring(L, -2), "ABC");
  assert_int_equal(lua_tointeger(L, -1), WEFT_ESTATE);
  lua_settop(L, 0);
  /* Off, on again; the state closes with the watchdog running. */
  assert_int_equal(weft_lua_set_preempt(L, 0), 0);
  assert_int_equal(weft_lua_set_preempt(L, 3), 0);
  close_state(L, &a);
}

/* -------------------------------------------------- values and C edges */

/* echo(v) -> a copy of v, made on the C side: what crosses and back. */
static void echo(weft_call_t *call, void *ud) {
  const weft_value_t *args = weft_call_args(call);
  weft_value_t v;
  (void)ud;
  weft_value_nil(&v);
  if (args->u.a.len > 0 && weft_value_copy(&v, &args->u.a.items[0]) != 0) {
    weft_call_reject(call, "no memory");
    return;
  }
  weft_call_resolve(call, &v);
}

/* deep() -> arrays nested DEEP levels deep, the last holding 42. */
#define DEEP 300000
static void deep(weft_call_t *call, void *ud) {
  weft_value_t v, *cur = &v;
  int i;
  (void)ud;
  for (i = 0; i < DEEP; i++) {
    assert_int_equal(weft_value_array(cur, 1), 0);
    cur = &cur->u.a.items[0];
  }
  weft_value_int(cur, 42);
  weft_call_resolve(call, &v);
}

static void push_sync_fn(lua_State *L, const char *name, weft_host_fn fn) {
  weft_fn_opts o = {WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, NULL};
  assert_int_equal(weft_lua_push_fn(L, name, fn, &o), 0);
  lua_setglobal(L, name);
}

/* A table crosses as an array only when its keys are exactly 1..#t: a
 * hole with a key elsewhere used to cross as an array, that key lost. */
static void tables_with_holes_cross_with_every_key(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  push_sync_fn(L, "echo", echo);
  load(L, "local function same(a, b)\n"
          "  if type(a) ~= 'table' then return a == b end\n"
          "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
          "  for k in pairs(b) do if a[k] == nil then return false end end\n"
          "  return true\n"
          "end\n"
          "local cases = {\n"
          "  {1, nil, 3, [-1] = 4}, {[1] = 1, [2] = 2, [-1] = 3},\n"
          "  {1, 2, nil, [0] = 0}, {nil, 2, [3.5] = 1}, {1, nil, 3, x = 'y'},\n"
          "  {[2] = 'b', [3] = 'c', [7] = 'g'}, {1, 2, 3}, {},\n"
          "  {a = {1, nil, 3, [-1] = {[0] = true}}}}\n"
          "for i, t in ipairs(cases) do\n"
          "  assert(same(t, echo(t)), 'case ' .. i)\n"
          "end\n"
          "local t = echo({1, nil, 3, [-1] = 4})\n"
          "return t[-1], t[1], t[2], t[3]\n");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  assert_int_equal(lua_tointeger(L, -4), 4);
  assert_int_equal(lua_tointeger(L, -3), 1);
  assert_true(lua_isnil(L, -2));
  assert_int_equal(lua_tointeger(L, -1), 3);
  lua_settop(L, 0);
  close_state(L, &a);
}

/* A host value nested 300,000 deep overflowed the C stack on its way to
 * Lua: past 200 levels it raises, as a script's value going the other
 * way does, and the value is freed. */
static void deeply_nested_host_result_raises(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  (void)state;
  push_sync_fn(L, "deep", deep);
  load(L, "local ok, err = pcall(deep)\n"
          "assert(not ok)\n"
          "return tostring(err)\n");
  assert_int_equal(weft_lua_run(L, 0, 1), LUA_OK);
  expect_contains(lua_tostring(L, -1),
                  "deep: result nested too deeply (more than 200 levels)");
  lua_settop(L, 0);
  close_state(L, &a);
}

/* Every C entry of weft_lua.h checks its arguments: weft_lua_push_fn with
 * a NULL name called strlen(NULL). */
static void c_entries_refuse_misuse(void **state) {
  weft_fn_opts o = {WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, NULL};
  test_alloc a;
  lua_State *L = open_state(&a);
  int x = 0, n = -1;
  (void)state;
  assert_int_equal(weft_lua_push_fn(L, NULL, echo, &o), WEFT_EINVAL);
  assert_int_equal(weft_lua_push_fn(NULL, "echo", echo, &o), WEFT_EINVAL);
  assert_int_equal(lua_gettop(L), 0);
  /* The pcall-like entries: LUA_ERRERR without a state, else an error
   * pushed, as lua_pcall gives. */
  assert_int_equal(weft_lua_run(NULL, 0, 0), LUA_ERRERR);
  assert_int_equal(weft_lua_run(L, 0, 0), LUA_ERRRUN); /* no function */
  expect_contains(lua_tostring(L, -1), "weft_lua_run: nargs must be");
  lua_settop(L, 0);
  lua_pushnil(L);
  assert_int_equal(weft_lua_run(L, 1, 0), LUA_ERRRUN);
  assert_int_equal(weft_lua_run(L, -1, 0), LUA_ERRRUN);
  lua_settop(L, 0);
  assert_int_equal(weft_lua_spawn(NULL, 0, NULL, NULL), LUA_ERRERR);
  assert_int_equal(weft_lua_spawn(L, 2, NULL, NULL), LUA_ERRRUN);
  expect_contains(lua_tostring(L, -1), "weft_lua_spawn: nargs must be");
  lua_settop(L, 0);
  {
    weft_lua_eval_t h = {99, 3}, none = {0, 0};
    assert_int_equal(weft_lua_spawn_eval(L, 2, NULL, NULL, &h), LUA_ERRRUN);
    assert_int_equal(h.id, 0); /* a handle of nothing */
    lua_settop(L, 0);
    assert_int_equal(weft_lua_cancel(NULL, &h), WEFT_EINVAL);
    assert_int_equal(weft_lua_cancel(L, NULL), WEFT_EINVAL);
    assert_int_equal(weft_lua_cancel(L, &h), WEFT_EINVAL);
    assert_int_equal(weft_lua_cancel(L, &none), WEFT_EINVAL);
    h.id = 5; /* never given: no task lives there */
    assert_int_equal(weft_lua_cancel(L, &h), WEFT_ESTATE);
    lua_pushliteral(L, "not a task");
    assert_int_equal(weft_lua_task_state(L, 1), WEFT_EINVAL);
    assert_int_equal(weft_lua_task_state(L, 2), WEFT_EINVAL);
    assert_int_equal(weft_lua_task_state(L, LUA_REGISTRYINDEX), WEFT_EINVAL);
    assert_int_equal(weft_lua_task_state(NULL, 1), WEFT_EINVAL);
    lua_settop(L, 0);
  }
  assert_int_equal(weft_lua_result(NULL, 1, &n), LUA_ERRERR);
  assert_int_equal(n, 0);
  assert_int_equal(weft_lua_result(L, 3, &n), LUA_ERRRUN);
  expect_contains(lua_tostring(L, -1), "weft_lua_result: idx must be");
  assert_int_equal(weft_lua_result(L, LUA_REGISTRYINDEX, &n), LUA_ERRRUN);
  assert_int_equal(weft_lua_result(L, 1, &n), LUA_ERRRUN); /* a string */
  expect_contains(lua_tostring(L, -1), "expected a future or task");
  lua_settop(L, 0);
  assert_int_equal(weft_lua_poll(NULL), WEFT_EINVAL);
  assert_null(weft_lua_loop(NULL));
  assert_int_equal(weft_lua_unhandled(NULL), 0);
  weft_lua_set_report(NULL, on_report, NULL);
  assert_int_equal(weft_lua_set_pool(NULL, NULL), WEFT_EINVAL);
  assert_int_equal(weft_lua_use_uv_loop(NULL, &x), WEFT_EINVAL);
  assert_int_equal(weft_lua_set_preempt(NULL, 5), WEFT_EINVAL);
  close_state(L, &a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lua_run_pushes_the_results_of_a_sleeping_function),
      cmocka_unit_test(lua_run_error_table_comes_back_with_its_identity),
      cmocka_unit_test(lua_run_with_traceback_gives_a_string_with_the_trace),
      cmocka_unit_test(lua_run_twice_on_the_same_state_works),
      cmocka_unit_test(weft_run_inside_a_task_raises_a_clear_error),
      cmocka_unit_test(weft_lua_run_inside_a_task_returns_an_error),
      cmocka_unit_test(deadlocked_main_task_gives_a_deadlock_error),
      cmocka_unit_test(unawaited_failed_task_is_reported_exactly_once),
      cmocka_unit_test(awaited_failed_task_is_not_reported),
      cmocka_unit_test(failed_main_task_is_not_reported_as_unhandled),
      cmocka_unit_test(loop_runs_c_tasks_on_real_timers_until_all_end),
      cmocka_unit_test(loop_run_returns_the_number_of_stuck_tasks),
      cmocka_unit_test(loop_refuses_reentry_and_free_while_running),
      cmocka_unit_test(loop_new_without_allocator_uses_the_c_library),
      cmocka_unit_test(preemption_lets_a_timer_fire_while_a_task_spins),
      cmocka_unit_test(tables_with_holes_cross_with_every_key),
      cmocka_unit_test(deeply_nested_host_result_raises),
      cmocka_unit_test(c_entries_refuse_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
