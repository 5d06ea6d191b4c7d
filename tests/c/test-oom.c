/*
 * test-oom.c - out-of-memory sweeps: fail allocation n for n = 1, 2, ...
 * through the core's allocating paths, the host loop and a Lua state
 * running weft tasks; each failure is an ordinary error and leaks nothing.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "util.h"
#include "weft_lua.h"

/* A sweep stops at the first n that injects no failure; this bounds it in
 * case a run allocates without end. */
#define SWEEP_MAX 200000

/* Checks the result r of one allocating call made when the allocator had
 * failed `before` times: WEFT_ENOMEM exactly when it failed during the
 * call, ok otherwise. Returns whether the call succeeded. */
static int checked(const test_alloc *a, size_t before, int r, int ok) {
  if (a->failed > before) {
    assert_int_equal(r, WEFT_ENOMEM);
    return 0;
  }
  assert_int_equal(r, ok);
  return 1;
}

/* ------------------------------------------------------- core scenario */

/* About oomtask: a C task for the sweeps. mode says which wait its first
 * run makes; res is the outcome (the wait's wake-up status, or
 * WEFT_ENOMEM when the wait could not start). */
enum { M_SLEEP, M_AWAIT, M_SEND, M_RECV };
typedef struct oomtask {
  weft_task_t t;
  test_alloc *a;
  int mode, waiting, res, n, i;
  uint64_t ms;
  weft_future_t *fut;
  weft_chan_t *ch;
  int item;
  int got[64];
} oomtask;

static int oom_fn(weft_task_t *t, int status) {
  oomtask *p = (oomtask *)t;
  size_t before = p->a->failed;
  int r;
  assert_int_equal(status == WEFT_ECANCELED, 0);
  if (p->waiting) {
    p->waiting = 0;
    p->res = status;
    return WEFT_READY;
  }
  r = p->mode == M_SLEEP ? weft_task_sleep(t, p->ms)
                         : weft_task_await(t, p->fut, p->ms);
  if (!checked(p->a, before, r, WEFT_PENDING)) {
    assert_false(t->flags & WEFT_TASK_PARKED); /* it did not wait */
    p->res = WEFT_ENOMEM;
    return WEFT_READY;
  }
  p->waiting = 1;
  return WEFT_PENDING;
}

/* A producer sends 0..n-1 then closes; a consumer receives until closed.
 * They resume the loop after each completed operation. */
static int chan_fn(weft_task_t *t, int status) {
  oomtask *p = (oomtask *)t;
  int r;
  if (p->waiting) {
    p->waiting = 0;
    if (status != 0) {
      assert_int_equal(status, WEFT_ECLOSED);
      assert_int_equal(p->mode, M_RECV);
      return WEFT_READY;
    }
    if (p->mode == M_RECV) p->got[p->i++] = p->item;
    else p->i++;
  }
  for (;;) {
    if (p->mode == M_SEND) {
      if (p->i == p->n) {
        weft_chan_close(p->ch);
        return WEFT_READY;
      }
      p->item = p->i;
      r = weft_chan_send(p->ch, t, &p->item);
    } else {
      r = weft_chan_recv(p->ch, t, &p->item);
    }
    if (r == WEFT_PENDING) {
      p->waiting = 1;
      return r;
    }
    if (r == WEFT_ECLOSED && p->mode == M_RECV) return WEFT_READY;
    assert_int_equal(r, 0);
    if (p->mode == M_RECV) p->got[p->i++] = p->item;
    else p->i++;
  }
}

static size_t fired;
static void count_cb(weft_timer_t *t) {
  (void)t;
  fired++;
}

static void fulfill_cb(weft_timer_t *t) {
  assert_int_equal(weft_future_fulfill(t->data), 0);
}

static void start_task(weft_sched_t *s, oomtask *p, weft_task_fn fn) {
  p->t.data = p;
  assert_int_equal(weft_task_start(s, &p->t, fn, WEFT_PRIO_NORMAL, NULL), 0);
}

/* Phase 1: a channel buffer, plain timers past two heap growths, and a
 * producer and consumer over the channel when it exists. */
static void phase_timers_and_channel(test_alloc *a) {
  enum { NT = 150, NI = 40 };
  weft_sched_t s;
  weft_chan_t ch;
  weft_timer_t tm[NT];
  oomtask prod, cons;
  size_t started = 0, before;
  int i, chan_ok;
  weft_sched_init(&s, test_alloc_fn, a);
  before = a->failed;
  chan_ok = checked(a, before, weft_chan_init(&s, &ch, 8, sizeof(int)), 0);
  fired = 0;
  for (i = 0; i < NT; i++) {
    weft_timer_init(&s, &tm[i]);
    before = a->failed;
    if (checked(a, before, weft_timer_start(&tm[i], count_cb, i % 50 + 1), 0))
      started++;
    else
      assert_false(weft_timer_active(&tm[i])); /* stays stopped */
  }
  if (chan_ok) {
    memset(&prod, 0, sizeof prod);
    memset(&cons, 0, sizeof cons);
    prod.a = cons.a = a;
    prod.ch = cons.ch = &ch;
    prod.mode = M_SEND;
    prod.n = NI;
    cons.mode = M_RECV;
    start_task(&s, &prod, chan_fn);
    start_task(&s, &cons, chan_fn);
  }
  test_sched_settle(&s);
  assert_int_equal(fired, started);
  if (chan_ok) {
    assert_int_equal(cons.i, NI);
    for (i = 0; i < NI; i++) assert_int_equal(cons.got[i], i);
    weft_chan_free(&ch);
  }
  assert_int_equal(weft_sched_close(&s), 0);
}

/* Phase 2: tasks whose sleeps grow the heap. */
static void phase_sleeping_tasks(test_alloc *a) {
  enum { N = 150 };
  weft_sched_t s;
  oomtask *p = calloc(N, sizeof *p);
  int i;
  assert_non_null(p);
  weft_sched_init(&s, test_alloc_fn, a);
  for (i = 0; i < N; i++) {
    p[i].a = a;
    p[i].mode = M_SLEEP;
    p[i].ms = (uint64_t)(i % 20);
    p[i].res = 1;
    start_task(&s, &p[i], oom_fn);
  }
  test_sched_settle(&s);
  for (i = 0; i < N; i++)
    if (p[i].res != WEFT_ENOMEM) assert_int_equal(p[i].res, 0);
  assert_int_equal(weft_sched_close(&s), 0);
  free(p);
}

/* Phase 3: tasks awaiting a future with deadlines; a timer settles the
 * future at 50, so the 30 ms deadlines pass first and the 100 ms ones
 * do not. */
static void phase_deadlines(test_alloc *a) {
  enum { N = 150 };
  weft_sched_t s;
  weft_future_t f;
  weft_timer_t settle;
  oomtask *p = calloc(N, sizeof *p);
  size_t before;
  int i, settles;
  assert_non_null(p);
  weft_sched_init(&s, test_alloc_fn, a);
  weft_future_init(&f);
  weft_timer_init(&s, &settle);
  settle.data = &f;
  before = a->failed;
  settles = checked(a, before, weft_timer_start(&settle, fulfill_cb, 50), 0);
  for (i = 0; i < N; i++) {
    p[i].a = a;
    p[i].mode = M_AWAIT;
    p[i].fut = &f;
    p[i].ms = i % 2 ? 30 : 100;
    p[i].res = 1;
    start_task(&s, &p[i], oom_fn);
  }
  test_sched_settle(&s);
  for (i = 0; i < N; i++) {
    if (p[i].res == WEFT_ENOMEM) continue;
    assert_int_equal(p[i].res,
                     i % 2 || !settles ? WEFT_ETIMEDOUT : 0);
  }
  assert_int_equal(weft_sched_close(&s), 0);
  free(p);
}

/* Phase 4: the host loop, with a task that sleeps on a real timer. */
static void phase_loop(test_alloc *a) {
  weft_loop_t *loop = (weft_loop_t *)&loop;
  oomtask p;
  size_t before = a->failed;
  if (!checked(a, before, weft_loop_new(&loop, test_alloc_fn, a), 0)) {
    assert_null(loop);
    return;
  }
  memset(&p, 0, sizeof p);
  p.a = a;
  p.mode = M_SLEEP;
  p.ms = 1;
  p.res = 1;
  start_task(weft_loop_sched(loop), &p, oom_fn);
  assert_int_equal(weft_loop_run(loop), 0);
  assert_true(p.res == 0 || p.res == WEFT_ENOMEM);
  assert_int_equal(p.t.done.state, WEFT_FUTURE_FULFILLED);
  assert_int_equal(weft_loop_free(loop), 0);
}

static void core_scenario(test_alloc *a) {
  phase_timers_and_channel(a);
  phase_sleeping_tasks(a);
  phase_deadlines(a);
  phase_loop(a);
}

/* Runs the scenario with allocation n failing (once, or from n on when
 * sticky) for n = 1, 2, ... until a run injects no failure. */
static void sweep_core(int sticky) {
  test_alloc a;
  size_t n, injected = 0;
  for (n = 1; n < SWEEP_MAX; n++) {
    test_alloc_init(&a);
    a.fail_at = n;
    a.sticky = sticky;
    core_scenario(&a);
    test_alloc_expect_empty(&a);
    if (a.failed == 0) break;
    injected++;
  }
  assert_true(n < SWEEP_MAX);
  /* Every path above allocates: the sweep must have hit at least the
   * channel, three heaps and their growths, and the loop. */
  assert_true(injected >= 10);
}

static void oom_core_paths_fail_with_enomem_and_leak_nothing(void **state) {
  (void)state;
  sweep_core(0);
}

static void oom_core_paths_survive_a_persistent_shortage(void **state) {
  (void)state;
  sweep_core(1);
}

static void oom_loop_new_fails_cleanly(void **state) {
  test_alloc a;
  weft_loop_t *loop = (weft_loop_t *)&loop;
  (void)state;
  test_alloc_init(&a);
  a.fail_at = 1;
  assert_int_equal(weft_loop_new(&loop, test_alloc_fn, &a), WEFT_ENOMEM);
  assert_null(loop);
  assert_int_equal(a.failed, 1);
  test_alloc_expect_empty(&a);
  assert_int_equal(weft_loop_new(&loop, test_alloc_fn, &a), 0);
  assert_non_null(loop);
  assert_int_equal(weft_loop_run(loop), 0);
  assert_int_equal(weft_loop_free(loop), 0);
  test_alloc_expect_empty(&a);
}

/* ---------------------------------------------------------- Lua state */

static const char script[] =
    "local n = ...\n"
    "local ch = weft.channel(2)\n"
    "local sum = 0\n"
    "local producer = weft.spawn(function()\n"
    "  for i = 1, n do ch:send(i) end\n"
    "  ch:close()\n"
    "end)\n"
    "local consumer = weft.spawn(function()\n"
    "  for v in ch:iter() do sum = sum + v; weft.sleep(0) end\n"
    "  return sum\n"
    "end)\n"
    "local r = weft.all({producer, consumer,\n"
    "  function() weft.sleep(0); return 'slept' end})\n"
    "weft.yield()\n"
    "return r[2], r[3]\n";

/* The second scenario: named tasks, cancellation with and without a
 * reason (a running task, one that never ran, a plain future), failing
 * tasks that own open files, weft.after, and a failure nobody observes.
 * The waits nothing settles end by cancellation, or by weft.run's
 * deadlock pass when the script stopped early. */
static const char script_tasks[] =
    "local n = ...\n"
    "local fs = weft.fs\n"
    "local function stuck() weft.future():await() end\n"
    "local t = weft.spawn({name = 'w'}, stuck)\n"
    "weft.yield()\n"
    "t:cancel()\n"
    "pcall(t.await, t)\n"
    "local u = weft.spawn({name = 'x'}, stuck)\n"
    "weft.yield()\n"
    "u:cancel('why')\n"
    "pcall(u.await, u)\n"
    "local v = weft.spawn(stuck)\n"
    "v:cancel()\n"
    "pcall(v.await, v)\n"
    "local b = weft.spawn({name = 'bad'}, function()\n"
    "  local h = fs.open('/dev/null') error('boom') end)\n"
    "pcall(b.await, b)\n"
    "local c = weft.spawn({name = 'c'}, function()\n"
    "  local h = fs.open('/dev/null') stuck() end)\n"
    "weft.yield()\n"
    "c:cancel('r')\n"
    "pcall(c.await, c)\n"
    "local a = weft.after(0, function() return 1 end)\n"
    "a:await()\n"
    "local f = weft.future() f:cancel() pcall(f.await, f)\n"
    "local g = weft.future() g:cancel('z') pcall(g.await, g)\n"
    "weft.spawn({name = 'lost'}, function() error('lost') end)\n"
    "weft.yield()\n"
    "return n * 5 + 5, 'slept'\n";

static unsigned long reports;
static void count_report(void *ud, const char *text) {
  (void)ud;
  assert_non_null(text);
  reports++;
}

/* Opens the libraries and weft, loads the script (a light userdata):
 * the part that may raise, run protected. Pushes the script function. */
static int setup(lua_State *L) {
  const char *src = (const char *)lua_touserdata(L, 1);
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  weft_lua_set_report(L, count_report, NULL);
  if (luaL_loadstring(L, src) != LUA_OK) return lua_error(L);
  return 1;
}

/* The error value of a failed run carries a message: a string, or a
 * weft error table with one (no conversion: memory may be short). */
static void expect_message(lua_State *L) {
  if (lua_type(L, -1) == LUA_TTABLE) {
    assert_int_equal(lua_getfield(L, -1, "message"), LUA_TSTRING);
    lua_remove(L, -2);
  }
  assert_int_equal(lua_type(L, -1), LUA_TSTRING);
  assert_true(lua_rawlen(L, -1) > 0);
  lua_pop(L, 1);
}

/* One run: returns 1 if it completed and gave the right results. */
static int lua_scenario(test_alloc *a, const char *src) {
  lua_State *L = lua_newstate(test_alloc_fn, a);
  int ok = 0, st;
  if (L == NULL) return 0;
  lua_pushcfunction(L, setup);
  lua_pushlightuserdata(L, (void *)src);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    expect_message(L);
  } else {
    int base = lua_gettop(L) - 1;
    lua_pushinteger(L, 10);
    /* weft_lua_run never raises: it is called unprotected, as a host
     * would. */
    st = weft_lua_run(L, 1, 1);
    if (st == LUA_OK) {
      assert_int_equal(lua_gettop(L), base + 2);
      assert_int_equal(lua_tointeger(L, -2), 55);
      assert_string_equal(lua_tostring(L, -1), "slept");
      ok = 1;
    } else {
      assert_int_equal(lua_gettop(L), base + 1);
      expect_message(L);
    }
  }
  lua_close(L);
  return ok;
}

/* Runs the Lua scenario with allocation n failing (once, or from n on
 * when sticky) for n = 1, 2, ... until a run injects no failure; that run
 * must succeed. Returns how many runs failed. */
static size_t sweep_lua(const char *src, int sticky) {
  test_alloc a;
  size_t n, failures = 0;
  int ok = 0;
  for (n = 1; n < SWEEP_MAX; n++) {
    test_alloc_init(&a);
    a.fail_at = n;
    a.sticky = sticky;
    ok = lua_scenario(&a, src);
    failures += !ok;
    test_alloc_expect_empty(&a);
    if (a.failed == 0) break;
  }
  assert_true(n < SWEEP_MAX);
  assert_true(ok);
  return failures;
}

static void oom_lua_state_running_tasks_never_crashes_or_leaks(
    void **state) {
  (void)state;
  SKIP_LUA_OOM_ON_LUAJIT();
  /* Lua retries once after a failed allocation, but weft's own
   * allocations (loop, heap, channel buffer) do not: some runs fail. */
  assert_true(sweep_lua(script, 0) > 0);
  assert_true(sweep_lua(script_tasks, 0) > 0);
}

/* With every allocation from n on failing, even the calls a host makes
 * outside any protected call (weft_lua_run) must not raise. */
static void oom_lua_state_survives_a_persistent_shortage(void **state) {
  (void)state;
  SKIP_LUA_OOM_ON_LUAJIT();
  assert_true(sweep_lua(script, 1) > 0);
  assert_true(sweep_lua(script_tasks, 1) > 0);
}

/* oom(true) makes every allocation from now on fail; oom(false) ends
 * that. The test_alloc is upvalue 1. */
static int l_oom(lua_State *L) {
  test_alloc *a = lua_touserdata(L, lua_upvalueindex(1));
  a->sticky = 1;
  a->fail_at = lua_toboolean(L, 1) ? a->allocs + 1 : 0;
  return 0;
}

/* A loop host function that never completes: the test cancels it. */
static void never_completes(weft_call_t *call, void *ud) {
  (void)call;
  (void)ud;
}

/* Pushes never(): a host function whose call waits until cancelled. */
static void push_never(lua_State *L) {
  weft_fn_opts o;
  memset(&o, 0, sizeof o);
  o.kind = WEFT_FN_LOOP;
  o.priority = WEFT_PRIO_NORMAL;
  assert_int_equal(weft_lua_push_fn(L, "never", never_completes, &o), 0);
}

/* A parked task cancelled while no memory can be had still ends
 * cancelled (its cancellation error is the state's preallocated one),
 * not failed with a memory error and reported as unhandled: waiting on
 * a future, inside a host function call, and inside an HTTP request. */
static void cancel_under_oom(const char *wait) {
  static const char src[] =
      "local oom, never, wait = ...\n"
      "local url\n"
      "if wait == 'http' then -- a server that never answers\n"
      "  local srv = weft.tcp.listen('127.0.0.1', 0, function()\n"
      "    weft.future():await()\n"
      "  end)\n"
      "  url = 'http://127.0.0.1:' .. srv.port .. '/'\n"
      "end\n"
      "local t = weft.spawn(function()\n"
      "  if wait == 'call' then never()\n"
      "  elseif wait == 'http' then weft.http.get(url)\n"
      "  else weft.future():await() end\n"
      "end)\n"
      "weft.yield()\n"
      "oom(true)\n"
      "t:cancel()\n"
      "weft.yield()\n"
      "oom(false)\n"
      "local ok, err = pcall(t.await, t)\n"
      "return t:state(), ok, weft.is_cancelled(err)\n";
  test_alloc a;
  lua_State *L;
  test_alloc_init(&a);
  L = lua_newstate(test_alloc_fn, &a);
  assert_non_null(L);
  reports = 0;
  lua_pushcfunction(L, setup);
  lua_pushlightuserdata(L, (void *)src);
  assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
  lua_pushlightuserdata(L, &a);
  lua_pushcclosure(L, l_oom, 1);
  push_never(L);
  lua_pushstring(L, wait);
  assert_int_equal(weft_lua_run(L, 3, 1), LUA_OK);
  assert_true(a.failed > 0); /* memory did run out */
  assert_string_equal(lua_tostring(L, -3), "cancelled");
  assert_false(lua_toboolean(L, -2));
  assert_true(lua_toboolean(L, -1));
  assert_int_equal(reports, 0);
  lua_close(L);
  test_alloc_expect_empty(&a);
}

/* A task that ends while no memory can be had still closes what it owns
 * (a connection, a file, a server): closing them makes no Lua call. */
static void oom_ending_task_closes_what_it_owns(void **state) {
  static const char src[] =
      "local oom = ...\n"
      "local srv = weft.tcp.listen('127.0.0.1', 0, function() end)\n"
      "local c, h, s\n"
      "local t = weft.spawn(function()\n"
      "  c = weft.tcp.connect('127.0.0.1', srv.port)\n"
      "  h = weft.fs.open('/dev/null')\n"
      "  s = weft.tcp.listen('127.0.0.1', 0, function() end)\n"
      "  oom(true)\n"
      "  -- Collections give back the driver's spare call frames, so that\n"
      "  -- any Lua call made for the task's end would need memory.\n"
      "  for _ = 1, 10 do collectgarbage() end\n"
      "end)\n"
      "pcall(t.await, t)\n"
      "oom(false)\n"
      "return c:closed(), h:closed(), s:closed()\n";
  test_alloc a;
  lua_State *L;
  (void)state;
  SKIP_LUA_OOM_ON_LUAJIT();
  test_alloc_init(&a);
  L = lua_newstate(test_alloc_fn, &a);
  assert_non_null(L);
  lua_pushcfunction(L, setup);
  lua_pushlightuserdata(L, (void *)src);
  assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
  lua_pushlightuserdata(L, &a);
  lua_pushcclosure(L, l_oom, 1);
  assert_int_equal(weft_lua_run(L, 1, 1), LUA_OK);
  assert_true(lua_toboolean(L, -3));
  assert_true(lua_toboolean(L, -2));
  assert_true(lua_toboolean(L, -1));
  lua_close(L);
  test_alloc_expect_empty(&a);
}

static void oom_cancelled_task_ends_cancelled(void **state) {
  (void)state;
  SKIP_LUA_OOM_ON_LUAJIT();
  cancel_under_oom("future");
  cancel_under_oom("call");
  cancel_under_oom("http");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(oom_core_paths_fail_with_enomem_and_leak_nothing),
      cmocka_unit_test(oom_core_paths_survive_a_persistent_shortage),
      cmocka_unit_test(oom_loop_new_fails_cleanly),
      cmocka_unit_test(oom_lua_state_running_tasks_never_crashes_or_leaks),
      cmocka_unit_test(oom_lua_state_survives_a_persistent_shortage),
      cmocka_unit_test(oom_cancelled_task_ends_cancelled),
      cmocka_unit_test(oom_ending_task_closes_what_it_owns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
