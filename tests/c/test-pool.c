/*
 * test-pool.c - the worker pool (host tier) as scripts use it: queued
 * jobs cancelled before they start, backpressure, priorities, one pool
 * shared by several loops on several threads, and its counters.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host-util.h"

/* About pctx: what the host functions of one test share with it (their
 * ud). order records, in start order, the labels of the jobs that ran;
 * ticks counts the ticks of a ticker task, which jobs may wait for. */
typedef struct pctx {
  gate g;
  uv_mutex_t mu;
  uv_cond_t cond;
  long order[64];
  int norder;
  long ticks;
  atomic_int work_ran, cancels;
} pctx;

static void pctx_init(pctx *c) {
  memset(c, 0, sizeof *c);
  gate_init(&c->g);
  uv_mutex_init(&c->mu);
  uv_cond_init(&c->cond);
}

static void pctx_destroy(pctx *c) {
  gate_destroy(&c->g);
  uv_cond_destroy(&c->cond);
  uv_mutex_destroy(&c->mu);
}

/* The order log, read by the test once the jobs are done. */
static void expect_order(pctx *c, const long *want, int n) {
  int i;
  uv_mutex_lock(&c->mu);
  if (c->norder != n) fail_msg("%d jobs ran, expected %d", c->norder, n);
  for (i = 0; i < n; i++)
    if (c->order[i] != want[i])
      fail_msg("job %d was %ld, expected %ld", i, c->order[i], want[i]);
  uv_mutex_unlock(&c->mu);
}

/* block() -> 0: a pool job held at the gate until the test opens it. */
static void block(weft_call_t *call, void *ud) {
  gate_pass(&((pctx *)ud)->g);
  resolve_int(call, 0);
}

/* open_gate(), gate_waiting() -> n: sync, for the script. */
static void open_gate(weft_call_t *call, void *ud) {
  gate_open(&((pctx *)ud)->g);
  weft_call_resolve(call, NULL);
}

static void waiting(weft_call_t *call, void *ud) {
  resolve_int(call, gate_waiting(&((pctx *)ud)->g));
}

/* work(label) -> label * 2: a pool job that logs its label. */
static void work(weft_call_t *call, void *ud) {
  pctx *c = ud;
  int64_t label = arg_int(call, 0);
  atomic_fetch_add(&c->work_ran, 1);
  uv_mutex_lock(&c->mu);
  if (c->norder < 64) c->order[c->norder++] = (long)label;
  uv_mutex_unlock(&c->mu);
  resolve_int(call, label * 2);
}

static void count_cancel(weft_call_t *call, void *ud) {
  (void)call;
  atomic_fetch_add(&((pctx *)ud)->cancels, 1);
}

/* tick(): sync, called by a ticker task: one more tick. */
static void tick(weft_call_t *call, void *ud) {
  pctx *c = ud;
  uv_mutex_lock(&c->mu);
  c->ticks++;
  uv_cond_broadcast(&c->cond);
  uv_mutex_unlock(&c->mu);
  weft_call_resolve(call, NULL);
}

/* after_ticks(k) -> k * 10: a pool job that returns only once the ticker
 * has ticked k times, so it completes only if the loop thread keeps
 * running tasks while callers wait for room in the pool. */
static void after_ticks(weft_call_t *call, void *ud) {
  pctx *c = ud;
  int64_t k = arg_int(call, 0);
  uv_mutex_lock(&c->mu);
  while (c->ticks < k) uv_cond_wait(&c->cond, &c->mu);
  uv_mutex_unlock(&c->mu);
  resolve_int(call, k * 10);
}

/* square(x) -> x * x */
static void square(weft_call_t *call, void *ud) {
  int64_t x = arg_int(call, 0);
  (void)ud;
  resolve_int(call, x * x);
}

/* A state using pool p, with the functions above on context c. */
static lua_State *open_pool_state(hstate *h, weft_pool_t *p, pctx *c) {
  lua_State *L = hstate_open(h);
  if (p) assert_int_equal(weft_lua_set_pool(L, p), 0);
  hreg(L, "block", block, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "open_gate", open_gate, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "gate_waiting", waiting, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL,
       c);
  hreg(L, "work", work, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, count_cancel, c);
  hreg(L, "low", work, WEFT_FN_POOL, WEFT_PRIO_LOW, 0, count_cancel, c);
  hreg(L, "high", work, WEFT_FN_POOL, WEFT_PRIO_HIGH, 0, count_cancel, c);
  hreg(L, "tick", tick, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, c);
  hreg(L, "after_ticks", after_ticks, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0,
       NULL, c);
  hreg(L, "square", square, WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, c);
  return L;
}

static weft_pool_t *new_pool(unsigned threads, size_t queue_max) {
  weft_pool_t *p;
  weft_pool_opts o;
  o.threads = threads;
  o.queue_max = queue_max;
  assert_int_equal(weft_pool_new(&p, &o), 0);
  return p;
}

/* Waits until the workers are idle: a worker counts a job done only after
 * the job has completed its call, so the script may see the result first. */
static void pool_settle(weft_pool_t *p, weft_pool_stats *st) {
  for (;;) {
    weft_pool_get_stats(p, st);
    if (st->running == 0 && st->queued == 0 && st->done + st->cancelled ==
                                                   st->submitted)
      return;
    uv_sleep(1);
  }
}

/* ------------------------------------------------------------- tests */

static void pool_new_applies_defaults_and_options(void **state) {
  weft_pool_t *p;
  weft_pool_opts o = {3, 5};
  weft_pool_stats st;
  unsigned cpus = uv_available_parallelism();
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  assert_int_equal(weft_pool_new(&p, NULL), 0);
  weft_pool_get_stats(p, &st);
  assert_int_equal(st.threads, cpus ? cpus : 1);
  assert_int_equal(st.queue_max, 64 * st.threads);
  assert_int_equal(st.submitted + st.done + st.cancelled + st.rejected_full,
                   0);
  weft_pool_free(p);
  assert_int_equal(weft_pool_new(&p, &o), 0);
  weft_pool_get_stats(p, &st);
  assert_int_equal(st.threads, 3);
  assert_int_equal(st.queue_max, 5);
  assert_int_equal(st.queued + st.running, 0);
  weft_pool_free(p);
  weft_pool_free(NULL); /* harmless */
  vcount_end(&vc);
}

static void pool_new_out_of_memory_fails_cleanly(void **state) {
  weft_pool_t *p;
  weft_pool_opts o = {2, 0};
  long n;
  int r;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  for (n = 1;; n++) {
    atomic_store(&vc.allocs, 0);
    vc.fail_at = n;
    p = (weft_pool_t *)&n;
    r = weft_pool_new(&p, &o);
    if (r == 0) break;
    assert_int_equal(r, WEFT_ENOMEM);
    assert_null(p);
    assert_int_equal(vcount_blocks(&vc), 0);
  }
  assert_int_equal(n, 3); /* the pool and its thread array */
  vc.fail_at = 0;
  weft_pool_free(p);
  vcount_end(&vc);
}

/* With the single worker held at the gate, a second job stays queued;
 * cancelling its caller takes it off the queue: it never runs, the host
 * is not told (it never started), the pool counts it cancelled. */
static void queued_job_cancelled_before_start_never_runs(void **state) {
  weft_pool_t *p;
  weft_pool_stats st;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(1, 8);
  L = open_pool_state(&h, p, &c);
  hrun_ok(L, "local a = weft.spawn(block)\n"
             "local b = weft.spawn(work, 7)\n"
             "while gate_waiting() < 1 or weft.stats().pool_queued < 1 do\n"
             "  weft.sleep(1)\n"
             "end\n"
             "assert(b:cancel())\n"
             "local ok, e = pcall(b.await, b)\n"
             "assert(not ok and weft.is_cancelled(e), tostring(e))\n"
             "local st = weft.stats()\n"
             "assert(st.pool_queued == 0, 'still queued')\n"
             "assert(st.pool_cancelled == 1, 'not counted')\n"
             "assert(st.calls_in_flight == 1, 'b still in flight')\n"
             "open_gate()\n"
             "assert(a:await() == 0)\n");
  assert_int_equal(atomic_load(&c.work_ran), 0);
  assert_int_equal(atomic_load(&c.cancels), 0);
  pool_settle(p, &st);
  assert_int_equal(st.submitted, 2);
  assert_int_equal(st.cancelled, 1);
  assert_int_equal(st.done, 1);
  hstate_close(&h);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

/* One worker, room for two queued jobs, twenty callers: the refused ones
 * wait for room (none is dropped) while a ticker task keeps running on the
 * loop thread; each job needs the ticker to move on before it returns. */
static void backpressure_suspends_callers_and_drops_none(void **state) {
  weft_pool_t *p;
  weft_pool_stats st;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(1, 2);
  L = open_pool_state(&h, p, &c);
  assert_int_equal(
      hrun(L, "local ticks = 0\n"
              "local ticker = weft.every(1, function()\n"
              "  ticks = ticks + 1\n"
              "  tick()\n"
              "end)\n"
              "local fs = {}\n"
              "for i = 1, 20 do fs[i] = function() return after_ticks(i) end "
              "end\n"
              "local r = weft.all(fs)\n"
              "for i = 1, 20 do assert(r[i] == i * 10, 'result ' .. i) end\n"
              "local st = weft.stats()\n"
              "assert(st.pool_rejected_full > 0, 'nothing was refused')\n"
              "assert(st.pool_queue_max == 2)\n"
              "assert(ticks >= 20)\n"
              "ticker:cancel()\n"
              "return st.pool_rejected_full\n"),
      LUA_OK);
  assert_true(lua_tointeger(h.L, -1) > 0);
  lua_settop(h.L, 0);
  pool_settle(p, &st);
  assert_int_equal(st.submitted, 20);
  assert_int_equal(st.done, 20);
  assert_int_equal(st.cancelled, 0);
  assert_true(st.rejected_full > 0);
  assert_true(c.ticks >= 20);
  hstate_close(&h);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

/* Low and high jobs queued behind a held worker: once it is free, the
 * high ones start first, each level in FIFO order. */
static void high_priority_jobs_start_before_low_ones(void **state) {
  static const long want[] = {201, 202, 203, 101, 102, 103};
  weft_pool_t *p;
  weft_pool_stats st;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(1, 16);
  L = open_pool_state(&h, p, &c);
  hrun_ok(L, "local a = weft.spawn(block)\n"
             "while gate_waiting() < 1 do weft.sleep(1) end\n"
             "local ts = {}\n"
             "for i = 1, 3 do\n"
             "  ts[#ts + 1] = weft.spawn(low, 100 + i)\n"
             "  ts[#ts + 1] = weft.spawn(high, 200 + i)\n"
             "end\n"
             "while weft.stats().pool_queued < 6 do weft.sleep(1) end\n"
             "open_gate()\n"
             "a:await()\n"
             "for _, t in ipairs(ts) do t:await() end\n");
  expect_order(&c, want, 6);
  pool_settle(p, &st);
  assert_int_equal(st.started[WEFT_PRIO_HIGH], 3);
  assert_int_equal(st.started[WEFT_PRIO_LOW], 3);
  assert_int_equal(st.started[WEFT_PRIO_NORMAL], 1);
  hstate_close(&h);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

/* The pool's fairness turn: a low job queued before twenty high ones
 * starts before the last of them. */
static void low_priority_job_is_not_starved(void **state) {
  weft_pool_t *p;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  int i, low_at = -1;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(1, 32);
  L = open_pool_state(&h, p, &c);
  hrun_ok(L, "local a = weft.spawn(block)\n"
             "while gate_waiting() < 1 do weft.sleep(1) end\n"
             "local ts = { weft.spawn(low, 1) }\n"
             "for i = 1, 20 do ts[#ts + 1] = weft.spawn(high, 100 + i) end\n"
             "while weft.stats().pool_queued < 21 do weft.sleep(1) end\n"
             "open_gate()\n"
             "a:await()\n"
             "for _, t in ipairs(ts) do t:await() end\n");
  uv_mutex_lock(&c.mu);
  assert_int_equal(c.norder, 21);
  for (i = 0; i < c.norder; i++)
    if (c.order[i] == 1) low_at = i;
  for (i = 0; i < 20; i++) /* the high ones keep their FIFO order */
    assert_int_equal(c.order[i + (i >= low_at)], 101 + i);
  uv_mutex_unlock(&c.mu);
  assert_true(low_at >= 0 && low_at < 20);
  hstate_close(&h);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

/* ----------------------------------------- one pool, several loops */

/* About loop_thread: one thread running its own Lua state on the shared
 * pool. Only the main thread asserts: a thread records what it saw. */
typedef struct loop_thread {
  uv_thread_t tid;
  hstate h;
  weft_pool_t *pool;
  pctx *c;
  const char *src;
  long base;
  int status;
  long long result;
  char err[256];
} loop_thread;

static void loop_thread_main(void *arg) {
  loop_thread *t = arg;
  lua_State *L = t->h.L;
  lua_pushinteger(L, t->base);
  lua_setglobal(L, "base");
  t->status = luaL_loadstring(L, t->src);
  if (t->status == LUA_OK) t->status = weft_lua_run(L, 0, 1);
  if (t->status == LUA_OK)
    t->result = (long long)lua_tointeger(L, -1);
  else
    snprintf(t->err, sizeof t->err, "%s", lua_tostring(L, -1));
  lua_settop(L, 0);
}

/* Starts n states (opened here, on the main thread, which owns the
 * counting allocators), each running src on its own thread, and joins. */
static void run_loops(loop_thread *ts, int n, weft_pool_t *p, pctx *c,
                      const char *src) {
  int i;
  for (i = 0; i < n; i++) {
    memset(&ts[i], 0, sizeof ts[i]);
    ts[i].pool = p;
    ts[i].c = c;
    ts[i].src = src;
    ts[i].base = 1000 * (i + 1);
    open_pool_state(&ts[i].h, p, c);
  }
  for (i = 0; i < n; i++)
    assert_int_equal(uv_thread_create(&ts[i].tid, loop_thread_main, &ts[i]),
                     0);
  for (i = 0; i < n; i++) uv_thread_join(&ts[i].tid);
}

static void pool_serves_several_loops_on_several_threads(void **state) {
  enum { NLOOPS = 4, ROUNDS = 10, WIDTH = 25 };
  loop_thread ts[NLOOPS];
  weft_pool_t *p;
  weft_pool_stats st;
  pctx c;
  vcount vc;
  int i;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(3, 0);
  run_loops(ts, NLOOPS, p, &c,
            "local sum = 0\n"
            "for round = 1, 10 do\n"
            "  local fs = {}\n"
            "  for i = 1, 25 do\n"
            "    local x = base + round * 100 + i\n"
            "    fs[i] = function() return square(x), x end\n"
            "  end\n"
            "  local r = weft.all(fs)\n"
            "  for i = 1, 25 do\n"
            "    local x = base + round * 100 + i\n"
            "    assert(r[i] == x * x, 'wrong square of ' .. x)\n"
            "    sum = sum + r[i]\n"
            "  end\n"
            "end\n"
            "return sum\n");
  for (i = 0; i < NLOOPS; i++) {
    long long want = 0, x;
    int round, k;
    if (ts[i].status != LUA_OK) fail_msg("loop %d: %s", i, ts[i].err);
    for (round = 1; round <= ROUNDS; round++)
      for (k = 1; k <= WIDTH; k++) {
        x = ts[i].base + round * 100 + k;
        want += x * x;
      }
    assert_true(ts[i].result == want);
    hstate_close(&ts[i].h);
  }
  pool_settle(p, &st);
  assert_int_equal(st.done, NLOOPS * ROUNDS * WIDTH);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

/* The pool's queue is full of another loop's jobs and this loop has no
 * call of its own in flight: its task must wait for room, not be taken
 * for deadlocked. */
static void loop_refused_by_a_pool_full_of_others_waits_for_room(void **state) {
  loop_thread ts[2];
  weft_pool_t *p;
  weft_pool_stats st;
  pctx c;
  vcount vc;
  int i;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(1, 1);
  for (i = 0; i < 2; i++) {
    memset(&ts[i], 0, sizeof ts[i]);
    open_pool_state(&ts[i].h, p, &c);
    ts[i].base = i;
  }
  /* Loop 0 fills the pool (one job held, one queued), waits until loop 1
   * has been refused, then lets its jobs go. */
  ts[0].src = "local a = weft.spawn(block)\n"
              "while gate_waiting() < 1 do weft.sleep(1) end\n"
              "local b = weft.spawn(work, 5)\n"
              "while weft.stats().pool_queued < 1 do weft.sleep(1) end\n"
              "tick()\n"
              "while weft.stats().pool_rejected_full < 1 do\n"
              "  weft.sleep(1)\n"
              "end\n"
              "open_gate()\n"
              "return a:await() + b:await()\n";
  /* Loop 1 starts once the pool is full (after the tick). */
  ts[1].src = "return square(12)\n";
  assert_int_equal(uv_thread_create(&ts[0].tid, loop_thread_main, &ts[0]), 0);
  uv_mutex_lock(&c.mu);
  while (c.ticks < 1) uv_cond_wait(&c.cond, &c.mu);
  uv_mutex_unlock(&c.mu);
  assert_int_equal(uv_thread_create(&ts[1].tid, loop_thread_main, &ts[1]), 0);
  for (i = 0; i < 2; i++) uv_thread_join(&ts[i].tid);
  for (i = 0; i < 2; i++)
    if (ts[i].status != LUA_OK) fail_msg("loop %d: %s", i, ts[i].err);
  assert_int_equal(ts[0].result, 10);
  assert_int_equal(ts[1].result, 144);
  for (i = 0; i < 2; i++) hstate_close(&ts[i].h);
  pool_settle(p, &st);
  assert_true(st.rejected_full >= 1);
  assert_int_equal(st.done, 3);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

/* ---------------------------------------------------------- counters */

static void pool_stats_count_jobs_by_outcome_and_priority(void **state) {
  weft_pool_t *p;
  weft_pool_stats st;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(2, 8);
  L = open_pool_state(&h, p, &c);
  hrun_ok(L, "for i = 1, 10 do assert(work(i) == 2 * i) end\n"
             "for i = 1, 4 do assert(high(i) == 2 * i) end\n"
             "assert(low(1) == 2)\n");
  pool_settle(p, &st);
  assert_int_equal(st.threads, 2);
  assert_int_equal(st.queue_max, 8);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.running, 0);
  assert_int_equal(st.submitted, 15);
  assert_int_equal(st.done, 15);
  assert_int_equal(st.cancelled, 0);
  assert_int_equal(st.rejected_full, 0);
  assert_int_equal(st.started[WEFT_PRIO_NORMAL], 10);
  assert_int_equal(st.started[WEFT_PRIO_HIGH], 4);
  assert_int_equal(st.started[WEFT_PRIO_LOW], 1);
  assert_int_equal(st.started[WEFT_PRIO_CRITICAL], 0);
  assert_int_equal(st.started[WEFT_PRIO_IDLE], 0);
  hstate_close(&h);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

static void lua_stats_show_the_pool_counters(void **state) {
  weft_pool_t *p;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(2, 6);
  L = open_pool_state(&h, p, &c);
  hrun_ok(L, "local st = weft.stats()\n"
             "assert(st.pool_threads == 2 and st.pool_queue_max == 6)\n"
             "assert(st.pool_done == 0 and st.calls_in_flight == 0)\n"
             "local a = weft.spawn(block)\n"
             "while gate_waiting() < 1 do weft.sleep(1) end\n"
             "st = weft.stats()\n"
             "assert(st.pool_busy == 1, 'busy ' .. st.pool_busy)\n"
             "assert(st.calls_in_flight == 1)\n"
             "assert(st.pool_queued == 0)\n"
             "open_gate()\n"
             "a:await()\n"
             "for i = 1, 5 do work(i) end\n"
             "while weft.stats().pool_busy > 0 do weft.sleep(1) end\n"
             "st = weft.stats()\n"
             "assert(st.pool_done == 6, 'done ' .. st.pool_done)\n"
             "assert(st.pool_cancelled == 0 and st.pool_rejected_full == 0)\n"
             "assert(st.calls_in_flight == 0)\n"
             "assert(" LUA_IS_INT("st.pool_wait_us") ")\n"
             "assert(st.pool_wait_us >= 0)\n"
             "local by = st.pool_wait_us_by_priority\n"
             "for _, k in ipairs{'critical','high','normal','low','idle'} do\n"
             "  assert(" LUA_IS_INT("by[k]") " and by[k] >= 0, k)\n"
             "end\n");
  hstate_close(&h);
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

static void set_pool_is_refused_after_the_first_pool_call(void **state) {
  weft_pool_t *p;
  hstate h;
  pctx c;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  pctx_init(&c);
  p = new_pool(1, 0);
  L = open_pool_state(&h, NULL, &c);
  assert_int_equal(weft_lua_set_pool(L, NULL), WEFT_ESTATE);
  hrun_ok(L, "assert(square(3) == 9)\n"
             "assert(weft.stats().pool_threads >= 1) -- a pool of its own\n");
  assert_int_equal(weft_lua_set_pool(L, p), WEFT_ESTATE);
  hstate_close(&h); /* frees its own pool */
  weft_pool_free(p);
  pctx_destroy(&c);
  vcount_end(&vc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pool_new_applies_defaults_and_options),
      cmocka_unit_test(pool_new_out_of_memory_fails_cleanly),
      cmocka_unit_test(queued_job_cancelled_before_start_never_runs),
      cmocka_unit_test(backpressure_suspends_callers_and_drops_none),
      cmocka_unit_test(high_priority_jobs_start_before_low_ones),
      cmocka_unit_test(low_priority_job_is_not_starved),
      cmocka_unit_test(pool_serves_several_loops_on_several_threads),
      cmocka_unit_test(loop_refused_by_a_pool_full_of_others_waits_for_room),
      cmocka_unit_test(pool_stats_count_jobs_by_outcome_and_priority),
      cmocka_unit_test(lua_stats_show_the_pool_counters),
      cmocka_unit_test(set_pool_is_refused_after_the_first_pool_call),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
