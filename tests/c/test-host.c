/*
 * test-host.c - host functions called from scripts (host tier and Lua
 * binding): the three kinds, rejections, completion from many threads,
 * duplicate and late completion, cancellation, timeouts, non-blocking
 * evaluation and its cancellation from C, a foreign-loop driver and a
 * borrowed uv loop.
 * SPDX-License-Identifier: MIT
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host-util.h"

/* ------------------------------------------------- host threads */

/* About hq: the host's own completer threads for loop functions. A loop
 * function takes a reference to its call and queues it here; a thread
 * completes it by the call's name: "dup" completes three times (the
 * return codes go to dup_rc), a negative argument rejects, anything else
 * resolves with twice the argument. */
#define HQ_CAP 4096
typedef struct hq {
  uv_mutex_t mu;
  uv_cond_t cond;
  weft_call_t *items[HQ_CAP];
  size_t head, count;
  int stop;
  uv_thread_t th[8];
  int nth;
  atomic_int completed;
  int dup_rc[3];
} hq;

static void complete_one(hq *q, weft_call_t *call) {
  int64_t x = arg_int(call, 0);
  if (strcmp(weft_call_name(call), "dup") == 0) {
    q->dup_rc[0] = resolve_int(call, x);
    q->dup_rc[1] = resolve_int(call, x + 1);
    q->dup_rc[2] = weft_call_reject(call, "late");
  } else if (x < 0) {
    weft_call_reject(call, "negative");
  } else {
    resolve_int(call, 2 * x);
  }
  atomic_fetch_add(&q->completed, 1);
  weft_call_unref(call);
}

static void hq_thread(void *arg) {
  hq *q = arg;
  weft_call_t *call;
  uv_mutex_lock(&q->mu);
  for (;;) {
    while (!q->stop && q->count == 0) uv_cond_wait(&q->cond, &q->mu);
    if (q->count == 0) break;
    call = q->items[q->head];
    q->head = (q->head + 1) % HQ_CAP;
    q->count--;
    uv_mutex_unlock(&q->mu);
    complete_one(q, call);
    uv_mutex_lock(&q->mu);
  }
  uv_mutex_unlock(&q->mu);
}

static void hq_start(hq *q, int nthreads) {
  int i;
  memset(q, 0, sizeof *q);
  uv_mutex_init(&q->mu);
  uv_cond_init(&q->cond);
  q->nth = nthreads;
  for (i = 0; i < nthreads; i++)
    assert_int_equal(uv_thread_create(&q->th[i], hq_thread, q), 0);
}

static void hq_stop(hq *q) {
  int i;
  uv_mutex_lock(&q->mu);
  q->stop = 1;
  uv_cond_broadcast(&q->cond);
  uv_mutex_unlock(&q->mu);
  for (i = 0; i < q->nth; i++) uv_thread_join(&q->th[i]);
  uv_cond_destroy(&q->cond);
  uv_mutex_destroy(&q->mu);
}

/* Waits until the threads have finished n completions: a thread counts
 * one after it is done with the call, so a script may see the result
 * first. */
static void hq_wait(hq *q, int n) {
  while (atomic_load(&q->completed) < n) uv_sleep(1);
  assert_int_equal(atomic_load(&q->completed), n);
}

/* ask(x) -> 2x: a loop function completed by a host thread. */
static void ask(weft_call_t *call, void *ud) {
  hq *q = ud;
  weft_call_ref(call);
  uv_mutex_lock(&q->mu);
  if (q->count == HQ_CAP) {
    uv_mutex_unlock(&q->mu);
    weft_call_reject(call, "queue full");
    weft_call_unref(call);
    return;
  }
  q->items[(q->head + q->count) % HQ_CAP] = call;
  q->count++;
  uv_cond_signal(&q->cond);
  uv_mutex_unlock(&q->mu);
}

/* ------------------------------------------------- the other functions */

/* About hctx: what the other host functions of a test share (their ud).
 * held keeps calls a loop function did not complete, with a reference,
 * for the test to complete late. The atomics are set by pool jobs. */
typedef struct hctx {
  gate g;
  uv_thread_t loop_thread;
  weft_call_t *held[16];
  int nheld;
  atomic_int cancels, spinning, saw_cancelled, on_worker;
} hctx;

static void hctx_init(hctx *c) {
  memset(c, 0, sizeof *c);
  gate_init(&c->g);
  c->loop_thread = uv_thread_self();
}

/* add(a, b) -> a + b, sync */
static void add(weft_call_t *call, void *ud) {
  (void)ud;
  resolve_int(call, arg_int(call, 0) + arg_int(call, 1));
}

/* double(x) -> 2x, pool; notes whether it ran off the loop thread. */
static void dbl(weft_call_t *call, void *ud) {
  hctx *c = ud;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &c->loop_thread))
    atomic_fetch_add(&c->on_worker, 1);
  resolve_int(call, 2 * arg_int(call, 0));
}

/* boom() rejects with "boom"; forget() returns without completing. */
static void boom(weft_call_t *call, void *ud) {
  (void)ud;
  weft_call_reject(call, "boom");
}

static void forget(weft_call_t *call, void *ud) {
  (void)call;
  (void)ud;
}

/* now(x) -> 2x: a loop function that completes before returning. */
static void now(weft_call_t *call, void *ud) {
  (void)ud;
  resolve_int(call, 2 * arg_int(call, 0));
}

/* hold(x): a loop function that keeps its call for the test. */
static void hold(weft_call_t *call, void *ud) {
  hctx *c = ud;
  if (c->nheld == 16) {
    weft_call_reject(call, "too many");
    return;
  }
  weft_call_ref(call);
  c->held[c->nheld++] = call;
}

static void count_cancel(weft_call_t *call, void *ud) {
  hctx *c = ud;
  assert_true(weft_call_cancelled(call)); /* runs on the loop thread */
  atomic_fetch_add(&c->cancels, 1);
}

/* spin(): a pool job that runs until its caller gives up and the gate is
 * open, then returns without completing. */
static void spin(weft_call_t *call, void *ud) {
  hctx *c = ud;
  atomic_store(&c->spinning, 1);
  while (!weft_call_cancelled(call)) uv_sleep(1);
  atomic_store(&c->saw_cancelled, 1);
  gate_pass(&c->g);
}

/* spinning() -> boolean, open_gate(): sync */
static void spinning(weft_call_t *call, void *ud) {
  weft_value_t v;
  weft_value_bool(&v, atomic_load(&((hctx *)ud)->spinning));
  weft_call_resolve(call, &v);
}

static void open_gate(weft_call_t *call, void *ud) {
  gate_open(&((hctx *)ud)->g);
  weft_call_resolve(call, NULL);
}

/* A state with every function above registered; p may be NULL. */
static lua_State *open_host(hstate *h, hctx *c, hq *q, weft_pool_t *p) {
  lua_State *L = hstate_open(h);
  if (p) assert_int_equal(weft_lua_set_pool(L, p), 0);
  hreg(L, "add", add, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "double", dbl, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "ask", ask, WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 0, NULL, q);
  hreg(L, "dup", ask, WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 0, NULL, q);
  hreg(L, "fail_sync", boom, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "fail_pool", boom, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "forget_sync", forget, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "forget_pool", forget, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "now", now, WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 0, count_cancel, c);
  hreg(L, "hold", hold, WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 0, count_cancel, c);
  hreg(L, "hold_10ms", hold, WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 10,
       count_cancel, c);
  hreg(L, "spin", spin, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, count_cancel, c);
  hreg(L, "spin_10ms", spin, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 10,
       count_cancel, c);
  hreg(L, "spinning", spinning, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "open_gate", open_gate, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL,
       c);
  return L;
}

/* About fixture: every test's state, host threads and counters. */
typedef struct fixture {
  vcount vc;
  hstate h;
  hctx c;
  hq q;
  lua_State *L;
} fixture;

static fixture *begin(int completers) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  vcount_begin(&f->vc);
  hctx_init(&f->c);
  hq_start(&f->q, completers);
  f->L = open_host(&f->h, &f->c, &f->q, NULL);
  return f;
}

/* Drops the held calls (completing them late must be harmless), closes
 * the state and checks that nothing leaked. */
static void end(fixture *f) {
  int i;
  if (f->L) hstate_close(&f->h);
  hq_stop(&f->q);
  for (i = 0; i < f->c.nheld; i++) weft_call_unref(f->c.held[i]);
  gate_destroy(&f->c.g);
  vcount_end(&f->vc);
  free(f);
}

/* ------------------------------------------- the kinds of function */

static void sync_function_returns_its_result(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "assert(add(2, 3) == 5)\n"
                "assert(" LUA_IS_INT("add(2, 3)") ")\n");
  end(f);
}

static void sync_function_works_outside_any_task(void **state) {
  fixture *f = begin(1);
  (void)state;
  assert_int_equal(luaL_loadstring(f->L, "return add(40, 2)"), LUA_OK);
  assert_int_equal(lua_pcall(f->L, 0, 1, 0), LUA_OK);
  assert_int_equal(lua_tointeger(f->L, -1), 42);
  lua_pop(f->L, 1);
  end(f);
}

static void pool_and_loop_functions_need_a_task(void **state) {
  fixture *f = begin(1);
  (void)state;
  assert_int_equal(luaL_loadstring(f->L, "return double(1)"), LUA_OK);
  assert_int_not_equal(lua_pcall(f->L, 0, 1, 0), LUA_OK);
  assert_non_null(strstr(lua_tostring(f->L, -1),
                         "double: not inside a weft task (use weft.run or "
                         "weft.spawn)"));
  lua_pop(f->L, 1);
  assert_int_equal(luaL_loadstring(f->L, "return ask(1)"), LUA_OK);
  assert_int_not_equal(lua_pcall(f->L, 0, 1, 0), LUA_OK);
  lua_pop(f->L, 1);
  end(f);
}

static void pool_function_runs_on_a_worker_thread(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "for i = 1, 5 do assert(double(i) == 2 * i) end\n");
  assert_int_equal(atomic_load(&f->c.on_worker), 5);
  end(f);
}

static void loop_function_is_completed_from_a_host_thread(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "assert(ask(21) == 42)\n"
                "assert(now(4) == 8) -- completed before it returned\n");
  hq_wait(&f->q, 1);
  assert_int_equal(atomic_load(&f->c.cancels), 0);
  end(f);
}

static void push_fn_refuses_bad_options(void **state) {
  fixture *f = begin(1);
  weft_fn_opts o;
  int top = lua_gettop(f->L);
  (void)state;
  memset(&o, 0, sizeof o);
  o.kind = 3;
  assert_int_equal(weft_lua_push_fn(f->L, "x", add, &o), WEFT_EINVAL);
  o.kind = WEFT_FN_SYNC;
  o.priority = WEFT_NPRIO;
  assert_int_equal(weft_lua_push_fn(f->L, "x", add, &o), WEFT_EINVAL);
  o.priority = -1;
  assert_int_equal(weft_lua_push_fn(f->L, "x", add, &o), WEFT_EINVAL);
  o.priority = WEFT_PRIO_NORMAL;
  assert_int_equal(weft_lua_push_fn(f->L, "x", NULL, &o), WEFT_EINVAL);
  assert_int_equal(weft_lua_push_fn(f->L, "x", add, NULL), WEFT_EINVAL);
  assert_int_equal(lua_gettop(f->L), top); /* nothing pushed */
  end(f);
}

/* ----------------------------------------------------- rejections */

#define EXPECT_HOST_ERROR                                                  \
  "local function expect(name, msg, f, ...)\n"                             \
  "  local ok, e = pcall(f, ...)\n"                                        \
  "  assert(not ok, name .. ' did not fail')\n"                            \
  "  assert(type(e) == 'table' and e.kind == 'host', tostring(e))\n"       \
  "  assert(tostring(e) == name .. ': ' .. msg, tostring(e))\n"            \
  "  assert(e.message == name .. ': ' .. msg and e.name == name)\n"        \
  "  assert(not weft.is_timeout(e) and not weft.is_cancelled(e))\n"        \
  "end\n"

static void rejected_call_raises_name_colon_message(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, EXPECT_HOST_ERROR
          "expect('fail_sync', 'boom', fail_sync)\n"
          "expect('fail_pool', 'boom', fail_pool)\n"
          "expect('ask', 'negative', ask, -1)\n");
  end(f);
}

static void function_returning_without_completing_is_rejected(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, EXPECT_HOST_ERROR
          "expect('forget_sync', 'returned without completing the call',\n"
          "       forget_sync)\n"
          "expect('forget_pool', 'returned without completing the call',\n"
          "       forget_pool)\n");
  end(f);
}

/* ------------------------------------------------------ concurrency */

static void many_calls_of_every_kind_run_concurrently_in_all(void **state) {
  fixture *f = begin(4);
  (void)state;
  hrun_ok(f->L, "local fs = {}\n"
                "for i = 1, 90 do\n"
                "  local k = i % 3\n"
                "  fs[i] = function()\n"
                "    if k == 0 then return add(i, i)\n"
                "    elseif k == 1 then return double(i)\n"
                "    else return ask(i) end\n"
                "  end\n"
                "end\n"
                "local r = weft.all(fs)\n"
                "assert(r.n == 90)\n"
                "for i = 1, 90 do assert(r[i] == 2 * i, i) end\n"
                "fs[45] = function() return fail_pool() end\n"
                "local ok, e = pcall(weft.all, fs)\n"
                "assert(not ok and tostring(e) == 'fail_pool: boom')\n");
  end(f);
}

static void thousand_loop_calls_completed_by_eight_threads(void **state) {
  fixture *f = begin(8);
  (void)state;
  hrun_ok(f->L, "local fs = {}\n"
                "for i = 1, 1000 do fs[i] = function() return ask(i) end end\n"
                "local r = weft.all(fs)\n"
                "for i = 1, 1000 do assert(r[i] == 2 * i, i) end\n"
                "assert(weft.stats().calls_in_flight == 0)\n");
  hq_wait(&f->q, 1000);
  end(f);
}

static void duplicate_completion_returns_estate_first_wins(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "assert(dup(7) == 7)\n");
  hq_wait(&f->q, 1);
  assert_int_equal(f->q.dup_rc[0], 0);
  assert_int_equal(f->q.dup_rc[1], WEFT_ESTATE);
  assert_int_equal(f->q.dup_rc[2], WEFT_ESTATE);
  end(f);
}

/* A sync function that completes twice: the second is refused. */
static int sync_dup_rc;
static void sync_dup(weft_call_t *call, void *ud) {
  (void)ud;
  resolve_int(call, 1);
  sync_dup_rc = weft_call_reject(call, "again");
}

static void duplicate_completion_of_a_sync_call_is_refused(void **state) {
  fixture *f = begin(1);
  (void)state;
  hreg(f->L, "sync_dup", sync_dup, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL,
       NULL);
  sync_dup_rc = 0;
  hrun_ok(f->L, "assert(sync_dup() == 1)\n");
  assert_int_equal(sync_dup_rc, WEFT_ESTATE);
  end(f);
}

/* About late: a host thread completing held calls after their caller
 * gave up; it records each return code. */
typedef struct late {
  hctx *c;
  int rc[16];
} late;

static void late_thread(void *arg) {
  late *l = arg;
  int i;
  for (i = 0; i < l->c->nheld; i++) {
    weft_value_t v;
    if (i % 2) {
      l->rc[i] = weft_call_reject(l->c->held[i], "too late");
    } else {
      weft_value_str(&v, "too late", 8); /* freed by the refusal */
      l->rc[i] = weft_call_resolve(l->c->held[i], &v);
    }
  }
}

static void complete_held_late(hctx *c) {
  late l;
  uv_thread_t t;
  int i;
  memset(&l, 0, sizeof l);
  l.c = c;
  assert_int_equal(uv_thread_create(&t, late_thread, &l), 0);
  uv_thread_join(&t);
  for (i = 0; i < c->nheld; i++) {
    assert_true(weft_call_cancelled(c->held[i]));
    assert_int_equal(l.rc[i], WEFT_ESTATE);
  }
}

static void late_completion_after_cancel_returns_estate(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "local t1 = weft.spawn(hold, 1)\n"
                "local t2 = weft.spawn(hold, 2)\n"
                "weft.yield()\n"
                "assert(weft.stats().calls_in_flight == 2)\n"
                "t1:cancel(); t2:cancel()\n"
                "for _, t in ipairs{t1, t2} do\n"
                "  local ok, e = pcall(t.await, t)\n"
                "  assert(not ok and weft.is_cancelled(e))\n"
                "end\n"
                "assert(weft.stats().calls_in_flight == 0)\n");
  assert_int_equal(f->c.nheld, 2);
  assert_int_equal(atomic_load(&f->c.cancels), 2);
  complete_held_late(&f->c);
  end(f);
}

static void late_completion_after_timeout_returns_estate(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "local ok, e = pcall(hold_10ms, 1)\n"
                "assert(not ok and weft.is_timeout(e), tostring(e))\n"
                "assert(tostring(e) == 'hold_10ms: timed out after 10 ms')\n");
  assert_int_equal(f->c.nheld, 1);
  assert_int_equal(atomic_load(&f->c.cancels), 1);
  complete_held_late(&f->c);
  end(f);
}

/* The state is closed while a call is in flight: closing cancels it (the
 * host hears of it), and a completion after that is refused. */
static void late_completion_after_the_state_closed_returns_estate(
    void **state) {
  fixture *f = begin(1);
  int live = 1;
  (void)state;
  assert_int_equal(luaL_loadstring(f->L, "hold(1)"), LUA_OK);
  assert_int_equal(weft_lua_spawn(f->L, 0, NULL, NULL), LUA_OK);
  lua_pop(f->L, 1);
  while (f->c.nheld == 0 && live > 0) live = weft_lua_poll(f->L);
  assert_int_equal(f->c.nheld, 1);
  assert_int_equal(hstate_live(f->L), 1); /* on purpose: it never ends */
  lua_close(f->L);
  f->L = NULL;
  test_alloc_expect_empty(&f->h.a);
  assert_int_equal(atomic_load(&f->c.cancels), 1);
  complete_held_late(&f->c);
  end(f);
}

/* Closing a state while one call is completed but not yet delivered (its
 * completion sits in the inbox) and another is pending: the completed one
 * is delivered, the other cancelled, and the close returns. */
static void close_with_a_completed_undelivered_call_returns(void **state) {
  fixture *f = begin(1);
  weft_value_t v;
  int live = 1;
  (void)state;
  assert_int_equal(luaL_loadstring(f->L, "hold(1)"), LUA_OK);
  assert_int_equal(weft_lua_spawn(f->L, 0, NULL, NULL), LUA_OK);
  assert_int_equal(luaL_loadstring(f->L, "hold(2)"), LUA_OK);
  assert_int_equal(weft_lua_spawn(f->L, 0, NULL, NULL), LUA_OK);
  lua_pop(f->L, 2);
  while (f->c.nheld < 2 && live > 0) live = weft_lua_poll(f->L);
  assert_int_equal(f->c.nheld, 2);
  /* The later call heads the loop's list: complete it, deliver nothing. */
  weft_value_int(&v, 2);
  assert_int_equal(weft_call_resolve(f->c.held[1], &v), 0);
  lua_close(f->L);
  f->L = NULL;
  test_alloc_expect_empty(&f->h.a);
  assert_int_equal(atomic_load(&f->c.cancels), 1);
  assert_true(weft_call_cancelled(f->c.held[0]));
  assert_false(weft_call_cancelled(f->c.held[1]));
  end(f);
}

/* ---------------------------------------------------- cancellation */

/* A pool job in progress: cancelling its caller sets weft_call_cancelled,
 * tells the host once, and releases the task at once, while the job is
 * still running (it waits at the gate until the script has seen that). */
static void cancel_while_running_tells_the_job_and_frees_the_task(
    void **state) {
  fixture *f = begin(1);
  weft_pool_t *p;
  weft_pool_opts o = {1, 0};
  (void)state;
  assert_int_equal(weft_pool_new(&p, &o), 0);
  assert_int_equal(weft_lua_set_pool(f->L, p), 0);
  hrun_ok(f->L, "local t = weft.spawn(spin)\n"
                "while not spinning() do weft.sleep(1) end\n"
                "assert(t:cancel())\n"
                "local ok, e = pcall(t.await, t)\n"
                "assert(not ok and weft.is_cancelled(e), tostring(e))\n"
                "assert(weft.stats().calls_in_flight == 0)\n"
                "assert(weft.stats().pool_busy == 1, 'job ended early')\n"
                "open_gate()\n");
  assert_int_equal(atomic_load(&f->c.cancels), 1);
  hstate_close(&f->h);
  f->L = NULL;
  weft_pool_free(p); /* waits for the job */
  assert_int_equal(atomic_load(&f->c.saw_cancelled), 1);
  end(f);
}

static void cancel_of_a_waiting_loop_call_tells_the_host_once(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "local t = weft.spawn(hold, 1)\n"
                "weft.yield()\n"
                "assert(t:cancel())\n"
                "assert(not t:cancel()) -- once\n"
                "assert(not pcall(t.await, t))\n"
                "assert(t:state() == 'cancelled')\n");
  assert_int_equal(atomic_load(&f->c.cancels), 1);
  assert_true(weft_call_cancelled(f->c.held[0]));
  end(f);
}

static void cancel_after_completion_leaves_the_result(void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "local t = weft.spawn(ask, 21)\n"
                "assert(t:await() == 42)\n"
                "assert(not t:cancel())\n"
                "assert(t:state() == 'fulfilled' and t:await() == 42)\n");
  assert_int_equal(atomic_load(&f->c.cancels), 0);
  end(f);
}

/* The host completed the call, the result is on its way to the loop, and
 * then the caller is cancelled: the completion won, the task gets it. */
static void cancel_after_completion_in_flight_keeps_the_result(
    void **state) {
  fixture *f = begin(1);
  (void)state;
  hrun_ok(f->L, "local t = weft.spawn(now, 5)\n"
                "weft.yield() -- t completed its call and waits for it\n"
                "assert(t:cancel())\n"
                "local ok, v = pcall(t.await, t)\n"
                "assert(ok and v == 10, tostring(v))\n");
  assert_int_equal(atomic_load(&f->c.cancels), 0);
  end(f);
}

static void timeout_of_a_pool_call_raises_timeout_and_tells_the_host(
    void **state) {
  fixture *f = begin(1);
  weft_pool_stats st;
  weft_pool_t *p;
  weft_pool_opts o = {1, 0};
  (void)state;
  assert_int_equal(weft_pool_new(&p, &o), 0);
  assert_int_equal(weft_lua_set_pool(f->L, p), 0);
  hrun_ok(f->L, "local ok, e = pcall(spin_10ms)\n"
                "assert(not ok and weft.is_timeout(e), tostring(e))\n"
                "assert(not weft.is_cancelled(e))\n"
                "assert(tostring(e) == 'spin_10ms: timed out after 10 ms')\n"
                "open_gate()\n");
  hstate_close(&f->h);
  f->L = NULL;
  weft_pool_get_stats(p, &st);
  weft_pool_free(p);
  /* Usually the job was running and was told; on a loaded machine it may
   * still have been queued at the deadline, and then it never ran. */
  if (atomic_load(&f->c.spinning)) {
    assert_int_equal(atomic_load(&f->c.cancels), 1);
    assert_int_equal(atomic_load(&f->c.saw_cancelled), 1);
  } else {
    assert_int_equal(atomic_load(&f->c.cancels), 0);
    assert_int_equal(st.cancelled, 1);
  }
  end(f);
}

/* ------------------------------------------- non-blocking evaluation */

/* About evald: what the done callback of one evaluation saw. */
typedef struct evald {
  int calls, state, status, nres;
  long long ints[4];
  char text[256];
} evald;

static void on_done(void *ud, lua_State *L, int idx) {
  evald *e = ud;
  int top = lua_gettop(L), i, nres = 0;
  e->calls++;
  e->state = weft_lua_task_state(L, idx);
  e->status = weft_lua_result(L, idx, &nres);
  e->nres = nres;
  if (e->status != LUA_OK) { /* a cancellation error is a table */
    snprintf(e->text, sizeof e->text, "%s", luaL_tolstring(L, -1, NULL));
  } else {
    for (i = 0; i < nres && i < 4; i++)
      e->ints[i] = (long long)lua_tointeger(L, top + 1 + i);
    if (nres > 1 && lua_type(L, top + 2) == LUA_TSTRING)
      snprintf(e->text, sizeof e->text, "%s", lua_tostring(L, top + 2));
  }
  lua_settop(L, top);
}

/* Spawns src with nargs integer arguments; leaves nothing on the stack. */
static void spawn_chunk(lua_State *L, const char *src, evald *e, int nargs,
                        ...) {
  va_list ap;
  int i;
  memset(e, 0, sizeof *e);
  assert_int_equal(luaL_loadstring(L, src), LUA_OK);
  va_start(ap, nargs);
  for (i = 0; i < nargs; i++) lua_pushinteger(L, va_arg(ap, int));
  va_end(ap);
  assert_int_equal(weft_lua_spawn(L, nargs, on_done, e), LUA_OK);
  lua_pop(L, 1);
}

/* The foreign loop: waits on the backend fd for at most the timeout weft
 * asks for, and polls until no task is live. Returns the number of
 * polls. */
static long drive_with_poll(lua_State *L) {
  weft_loop_t *loop = weft_lua_loop(L);
  struct pollfd pfd;
  long n = 0;
  int live;
  while ((live = weft_lua_poll(L)) > 0) {
    n++;
    pfd.fd = weft_loop_backend_fd(loop);
    pfd.events = POLLIN;
    pfd.revents = 0;
    assert_true(poll(&pfd, 1, weft_loop_timeout(loop)) >= 0);
  }
  assert_int_equal(live, 0);
  return n;
}

static void spawned_chunks_call_back_once_each_with_results(void **state) {
  fixture *f = begin(2);
  evald e[4];
  int i;
  (void)state;
  spawn_chunk(f->L, "return 1, 'two'", &e[0], 0);
  spawn_chunk(f->L, "weft.sleep(2)\nreturn double(21), ask(4)", &e[1], 0);
  spawn_chunk(f->L, "weft.sleep(1)\nerror('chunk failed')", &e[2], 0);
  spawn_chunk(f->L, "local a, b = ...\nweft.yield()\nreturn a + b", &e[3], 2,
              30, 12);
  for (i = 0; i < 4; i++) assert_int_equal(e[i].calls, 0); /* not yet */
  drive_with_poll(f->L);
  for (i = 0; i < 4; i++) assert_int_equal(e[i].calls, 1);
  assert_int_equal(e[0].status, LUA_OK);
  assert_int_equal(e[0].nres, 2);
  assert_int_equal(e[0].ints[0], 1);
  assert_string_equal(e[0].text, "two");
  assert_int_equal(e[1].status, LUA_OK);
  assert_int_equal(e[1].nres, 2);
  assert_int_equal(e[1].ints[0], 42);
  assert_int_equal(e[1].ints[1], 8);
  assert_int_not_equal(e[2].status, LUA_OK);
  assert_non_null(strstr(e[2].text, "chunk failed"));
  assert_int_equal(e[3].status, LUA_OK);
  assert_int_equal(e[3].ints[0], 42);
  end(f); /* the failure was handled: nothing reported */
}

/* Chunks spawned first run while weft_lua_run drives a final chunk, which
 * gets their tasks as arguments and awaits them. */
static void spawned_chunks_run_under_a_final_weft_lua_run(void **state) {
  fixture *f = begin(1);
  evald e[3];
  int i;
  (void)state;
  for (i = 0; i < 3; i++) {
    memset(&e[i], 0, sizeof e[i]);
    assert_int_equal(luaL_loadstring(f->L, "local x = ...\n"
                                           "weft.sleep(x)\n"
                                           "return double(x)"),
                     LUA_OK);
    lua_pushinteger(f->L, i + 1);
    assert_int_equal(weft_lua_spawn(f->L, 1, on_done, &e[i]), LUA_OK);
  }
  assert_int_equal(luaL_loadstring(f->L, "local s = 0\n"
                                         "for _, t in ipairs{...} do\n"
                                         "  s = s + t:await()\n"
                                         "end\n"
                                         "return s"),
                   LUA_OK);
  lua_insert(f->L, 1); /* the function below the three tasks */
  assert_int_equal(weft_lua_run(f->L, 3, 1), LUA_OK);
  assert_int_equal(lua_tointeger(f->L, -1), 12);
  lua_settop(f->L, 0);
  for (i = 0; i < 3; i++) {
    assert_int_equal(e[i].calls, 1);
    assert_int_equal(e[i].ints[0], 2 * (i + 1));
  }
  end(f);
}

/* Spawns src with a handle; leaves nothing on the stack. */
static void spawn_eval(lua_State *L, const char *src, evald *e,
                       weft_lua_eval_t *h) {
  memset(e, 0, sizeof *e);
  assert_int_equal(luaL_loadstring(L, src), LUA_OK);
  assert_int_equal(weft_lua_spawn_eval(L, 0, e ? on_done : NULL, e, h),
                   LUA_OK);
  assert_true(h->id > 0);
  lua_pop(L, 1);
}

static int global_is_true(lua_State *L, const char *name) {
  int r = lua_getglobal(L, name) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static void cancel_unwinds_a_waiting_evaluation_and_reports_it(
    void **state) {
  fixture *f = begin(1);
  weft_lua_eval_t h;
  evald e;
  (void)state;
  spawn_eval(f->L,
             "local ok, e = pcall(weft.sleep, 1e6)\n"
             "closed = true\n"
             "error(e, 0)",
             &e, &h);
  assert_true(weft_lua_poll(f->L) > 0); /* it now sleeps */
  assert_int_equal(weft_lua_cancel(f->L, &h), 0);
  assert_int_equal(weft_lua_cancel(f->L, &h), WEFT_ECANCELED); /* again */
  assert_int_equal(e.calls, 0); /* it ends when the loop runs */
  drive_with_poll(f->L);
  assert_int_equal(e.calls, 1);
  assert_int_equal(e.state, WEFT_FUTURE_CANCELLED);
  assert_int_not_equal(e.status, LUA_OK);
  assert_non_null(strstr(e.text, "cancelled"));
  assert_true(global_is_true(f->L, "closed"));
  /* Late cancels change nothing. */
  assert_int_equal(weft_lua_cancel(f->L, &h), WEFT_ESTATE);
  assert_int_equal(weft_lua_cancel(f->L, &h), WEFT_ESTATE);
  assert_int_equal(e.calls, 1);
  end(f);
}

static void cancel_before_an_evaluation_ran_skips_its_function(
    void **state) {
  fixture *f = begin(1);
  weft_lua_eval_t h;
  evald e;
  (void)state;
  spawn_eval(f->L, "ran = true", &e, &h);
  assert_int_equal(weft_lua_cancel(f->L, &h), 0);
  drive_with_poll(f->L);
  assert_int_equal(e.calls, 1);
  assert_int_equal(e.state, WEFT_FUTURE_CANCELLED);
  assert_false(global_is_true(f->L, "ran"));
  end(f);
}

/* A handle outlives its task's registry anchor, which Lua gives to the
 * next task: the handle still names only its own, ended, task. */
static void cancel_after_an_evaluation_ended_touches_nothing(void **state) {
  fixture *f = begin(1);
  weft_lua_eval_t h1, h2;
  evald e;
  (void)state;
  assert_int_equal(luaL_loadstring(f->L, "return 7"), LUA_OK);
  assert_int_equal(weft_lua_spawn_eval(f->L, 0, NULL, NULL, &h1), LUA_OK);
  lua_pop(f->L, 1);
  drive_with_poll(f->L);
  assert_int_equal(weft_lua_cancel(f->L, &h1), WEFT_ESTATE);
  spawn_eval(f->L, "weft.yield()\nreturn 8", &e, &h2);
  assert_int_equal(h2.ref, h1.ref); /* the anchor was reused */
  assert_true(h2.id > h1.id);
  assert_int_equal(weft_lua_cancel(f->L, &h1), WEFT_ESTATE);
  drive_with_poll(f->L);
  assert_int_equal(e.calls, 1);
  assert_int_equal(e.state, WEFT_FUTURE_FULFILLED);
  assert_int_equal(e.ints[0], 8);
  assert_int_equal(weft_lua_cancel(f->L, &h2), WEFT_ESTATE);
  end(f);
}

/* ---------------------------------------------------- foreign loops */

static void foreign_poll_loop_drives_sleeps_and_pool_calls(void **state) {
  fixture *f = begin(1);
  evald e;
  (void)state;
  spawn_chunk(f->L,
              "local s = 0\n"
              "for i = 1, 5 do\n"
              "  weft.sleep(1)\n"
              "  local r = weft.all{function() return double(i) end,\n"
              "                     function() return ask(i) end}\n"
              "  s = s + r[1] + r[2]\n"
              "end\n"
              "return s",
              &e, 0);
  drive_with_poll(f->L);
  assert_int_equal(e.calls, 1);
  assert_int_equal(e.status, LUA_OK);
  assert_int_equal(e.ints[0], 60);
  end(f);
}

/* While the only task sleeps and nothing else is pending, the timeout is
 * the time to its deadline, not 0 (which would make the host spin). */
static void loop_timeout_waits_for_a_sleeping_task(void **state) {
  fixture *f = begin(1);
  weft_loop_t *loop = weft_lua_loop(f->L);
  evald e;
  int t;
  (void)state;
  assert_int_equal(luaL_loadstring(f->L, "weft.sleep(60000)"), LUA_OK);
  assert_int_equal(weft_lua_spawn(f->L, 0, NULL, NULL), LUA_OK);
  lua_pop(f->L, 1);
  assert_int_equal(weft_lua_poll(f->L), 1); /* it now sleeps */
  t = weft_loop_timeout(loop);
  assert_true(t > 0 && t <= 60000);
  /* Cancel it: weft.tasks() lists it. */
  spawn_chunk(f->L, "for _, t in ipairs(weft.tasks()) do\n"
                    "  if t.task ~= weft.current() then t.task:cancel() end\n"
                    "end",
              &e, 0);
  drive_with_poll(f->L);
  end(f);
}

/* About ctask: a C task on a borrowed loop. With wait set it waits for
 * that future, then logs its name; otherwise it sleeps 1 ms sleeps times,
 * logging name + n at its n-th wake-up, then fulfils fulfil. */
typedef struct ctask {
  weft_task_t t;
  test_log *log;
  long name;
  int sleeps, runs;
  weft_future_t *fulfil, *wait;
} ctask;

static int ctask_fn(weft_task_t *t, int status) {
  ctask *c = (ctask *)t;
  assert_int_equal(status, 0);
  if (c->wait) {
    if (weft_task_await(t, c->wait, WEFT_FOREVER) == WEFT_PENDING)
      return WEFT_PENDING;
    test_log_add(c->log, c->name);
    return WEFT_READY;
  }
  if (c->runs > 0) test_log_add(c->log, c->name + c->runs);
  if (c->runs++ < c->sleeps) return weft_task_sleep(t, 1);
  weft_future_fulfill(c->fulfil);
  return WEFT_READY;
}

/* A loop on a uv loop the host owns and runs: C tasks with sleeps and a
 * future run from inside the host's uv_run, which returns when they are
 * done; freeing the loop leaves the host's loop with no handle of weft. */
static void borrowed_uv_loop_runs_c_tasks_and_timers(void **state) {
  uv_loop_t uv;
  weft_loop_t *loop;
  weft_sched_t *s;
  weft_future_t fut;
  weft_stats_t st;
  ctask a, b;
  test_alloc ta;
  test_log log;
  (void)state;
  test_alloc_init(&ta);
  test_log_init(&log);
  assert_int_equal(uv_loop_init(&uv), 0);
  assert_int_equal(weft_loop_new_borrowed(&loop, &uv, test_alloc_fn, &ta), 0);
  assert_ptr_equal(weft_loop_uv(loop), &uv);
  s = weft_loop_sched(loop);
  weft_future_init(&fut);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.log = b.log = &log;
  a.name = 10;
  a.sleeps = 3;
  a.fulfil = &fut;
  b.name = 20;
  b.wait = &fut;
  assert_int_equal(weft_task_start(s, &b.t, ctask_fn, WEFT_PRIO_NORMAL, NULL),
                   0);
  assert_int_equal(weft_task_start(s, &a.t, ctask_fn, WEFT_PRIO_NORMAL, NULL),
                   0);
  weft_loop_wake(loop); /* tasks were started from outside uv_run */
  uv_run(&uv, UV_RUN_DEFAULT);
  TEST_LOG_EXPECT(&log, 11, 12, 13, 20);
  weft_sched_stats(s, &st);
  assert_int_equal(st.live, 0);
  assert_int_equal(st.finished, 2);
  assert_int_equal(weft_loop_free(loop), 0);
  uv_run(&uv, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&uv), 0); /* no handle of weft is left */
  test_alloc_expect_empty(&ta);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sync_function_returns_its_result),
      cmocka_unit_test(sync_function_works_outside_any_task),
      cmocka_unit_test(pool_and_loop_functions_need_a_task),
      cmocka_unit_test(pool_function_runs_on_a_worker_thread),
      cmocka_unit_test(loop_function_is_completed_from_a_host_thread),
      cmocka_unit_test(push_fn_refuses_bad_options),
      cmocka_unit_test(rejected_call_raises_name_colon_message),
      cmocka_unit_test(function_returning_without_completing_is_rejected),
      cmocka_unit_test(many_calls_of_every_kind_run_concurrently_in_all),
      cmocka_unit_test(thousand_loop_calls_completed_by_eight_threads),
      cmocka_unit_test(duplicate_completion_returns_estate_first_wins),
      cmocka_unit_test(duplicate_completion_of_a_sync_call_is_refused),
      cmocka_unit_test(late_completion_after_cancel_returns_estate),
      cmocka_unit_test(late_completion_after_timeout_returns_estate),
      cmocka_unit_test(late_completion_after_the_state_closed_returns_estate),
      cmocka_unit_test(close_with_a_completed_undelivered_call_returns),
      cmocka_unit_test(cancel_while_running_tells_the_job_and_frees_the_task),
      cmocka_unit_test(cancel_of_a_waiting_loop_call_tells_the_host_once),
      cmocka_unit_test(cancel_after_completion_leaves_the_result),
      cmocka_unit_test(cancel_after_completion_in_flight_keeps_the_result),
      cmocka_unit_test(timeout_of_a_pool_call_raises_timeout_and_tells_the_host),
      cmocka_unit_test(spawned_chunks_call_back_once_each_with_results),
      cmocka_unit_test(spawned_chunks_run_under_a_final_weft_lua_run),
      cmocka_unit_test(cancel_unwinds_a_waiting_evaluation_and_reports_it),
      cmocka_unit_test(cancel_before_an_evaluation_ran_skips_its_function),
      cmocka_unit_test(cancel_after_an_evaluation_ended_touches_nothing),
      cmocka_unit_test(foreign_poll_loop_drives_sleeps_and_pool_calls),
      cmocka_unit_test(loop_timeout_waits_for_a_sleeping_task),
      cmocka_unit_test(borrowed_uv_loop_runs_c_tasks_and_timers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
