/*
 * test-post.c - posting into a loop from other threads (host tier) and
 * the Lua references a host calls from any thread: order, batching,
 * settling, starting, channel sends, keep-alive holds, teardown with
 * posts queued, and out-of-memory.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host-util.h"

#define NTHREADS 4
#define PER_THREAD 2000

/* About poster: one host thread posting n posts of its own, p[i].data
 * pointing at the poster, in order. The loop thread records, per poster,
 * the next sequence number it expects (next) and the total run (ran in
 * the shared ctx). */
typedef struct pctx pctx;
typedef struct poster {
  pctx *c;
  uv_thread_t tid;
  weft_post_t p[PER_THREAD];
  int n, next, bad_order;
} poster;

/* About pctx: what a test's callbacks share (loop thread only, except
 * where a gate or atomic says). */
struct pctx {
  weft_loop_t *loop;
  poster ps[NTHREADS];
  int nposters, ran, total, cancelled;
  gate entered, posted; /* the batching test's hand-shake */
  weft_post_t last;
  uint64_t dispatched[PER_THREAD];
  int statuses[16], nstatus;
};

static void on_post(weft_post_t *p, int status) {
  poster *ps = p->data;
  pctx *c = ps->c;
  if (status == WEFT_ECANCELED) {
    c->cancelled++;
    return;
  }
  assert_int_equal(status, 0);
  if (p != &ps->p[ps->next]) ps->bad_order++;
  ps->next++;
  if (++c->ran == c->total) weft_loop_unref(c->loop);
}

static void poster_main(void *arg) {
  poster *ps = arg;
  int i;
  for (i = 0; i < ps->n; i++) {
    ps->p[i].data = ps;
    assert_int_equal(weft_loop_post(ps->c->loop, &ps->p[i], on_post), 0);
  }
}

static void pctx_begin(pctx *c, test_alloc *a) {
  memset(c, 0, sizeof *c);
  test_alloc_init(a);
  assert_int_equal(weft_loop_new(&c->loop, test_alloc_fn, a), 0);
}

static void pctx_end(pctx *c, test_alloc *a) {
  assert_int_equal(weft_loop_free(c->loop), 0);
  test_alloc_expect_empty(a);
}

/* ------------------------------------------------------------ C posts */

static void posts_from_threads_run_once_each_in_order(void **state) {
  pctx c;
  test_alloc a;
  int i;
  (void)state;
  pctx_begin(&c, &a);
  c.nposters = NTHREADS;
  c.total = NTHREADS * PER_THREAD;
  weft_loop_ref(c.loop); /* the last post drops it */
  for (i = 0; i < NTHREADS; i++) {
    c.ps[i].c = &c;
    c.ps[i].n = PER_THREAD;
    assert_int_equal(uv_thread_create(&c.ps[i].tid, poster_main, &c.ps[i]),
                     0);
  }
  assert_int_equal(weft_loop_run(c.loop), 0);
  for (i = 0; i < NTHREADS; i++) {
    uv_thread_join(&c.ps[i].tid);
    assert_int_equal(c.ps[i].next, PER_THREAD); /* none lost, none twice */
    assert_int_equal(c.ps[i].bad_order, 0);
  }
  assert_int_equal(c.ran, c.total);
  pctx_end(&c, &a);
}

/* A ticker task: yields until stop is set, so each scheduler step
 * dispatches it once. */
typedef struct ticker {
  weft_task_t t;
  int stop;
} ticker;

static int tick_fn(weft_task_t *t, int status) {
  ticker *tk = (ticker *)t;
  (void)status;
  if (tk->stop) return WEFT_READY;
  return weft_task_yield(t);
}

static void on_batch(weft_post_t *p, int status) {
  poster *ps = p->data;
  pctx *c = ps->c;
  weft_stats_t st;
  int i = (int)(p - ps->p);
  assert_int_equal(status, 0);
  weft_sched_stats(weft_loop_sched(c->loop), &st);
  c->dispatched[i] = st.dispatched;
  if (i == 0) { /* hold the loop until the rest are all queued */
    gate_open(&c->entered);
    gate_pass(&c->posted);
  }
  c->ran++;
}

static void on_batch_done(weft_post_t *p, int status);

/* Posts p[0], waits until its callback holds the loop, posts the rest and
 * `last` behind them, then lets the loop go. */
static void batch_main(void *arg) {
  poster *ps = arg;
  int i;
  ps->p[0].data = ps;
  assert_int_equal(weft_loop_post(ps->c->loop, &ps->p[0], on_batch), 0);
  gate_pass(&ps->c->entered);
  for (i = 1; i < ps->n; i++) {
    ps->p[i].data = ps;
    assert_int_equal(weft_loop_post(ps->c->loop, &ps->p[i], on_batch), 0);
  }
  ps->c->last.data = ps->c;
  assert_int_equal(weft_loop_post(ps->c->loop, &ps->c->last, on_batch_done),
                   0);
  gate_open(&ps->c->posted);
}

static ticker *batch_ticker;

static void on_batch_done(weft_post_t *p, int status) {
  pctx *c = p->data;
  assert_int_equal(status, 0);
  batch_ticker->stop = 1;
  weft_loop_unref(c->loop);
}

/* Posts made while the loop is busy reach it in one wake-up: no task
 * runs between their callbacks. */
static void posts_made_while_busy_arrive_in_one_batch(void **state) {
  pctx c;
  test_alloc a;
  ticker tk;
  poster *ps;
  int i;
  (void)state;
  pctx_begin(&c, &a);
  gate_init(&c.entered);
  gate_init(&c.posted);
  ps = &c.ps[0];
  ps->c = &c;
  ps->n = 500;
  memset(&tk, 0, sizeof tk);
  batch_ticker = &tk;
  assert_int_equal(weft_task_start(weft_loop_sched(c.loop), &tk.t, tick_fn,
                                   WEFT_PRIO_NORMAL, NULL), 0);
  weft_loop_ref(c.loop);
  assert_int_equal(uv_thread_create(&ps->tid, batch_main, ps), 0);
  assert_int_equal(weft_loop_run(c.loop), 0);
  uv_thread_join(&ps->tid);
  assert_int_equal(c.ran, ps->n);
  for (i = 2; i < ps->n; i++)
    assert_int_equal(c.dispatched[i], c.dispatched[1]);
  gate_destroy(&c.entered);
  gate_destroy(&c.posted);
  pctx_end(&c, &a);
}

/* Settling, starting and sending, posted from a thread. */
typedef struct actx {
  weft_loop_t *loop;
  weft_future_t f;
  weft_chan_t ch;
  weft_task_t waiter, started, receiver;
  weft_post_t settle[2], start, send[4];
  int items[4], got[8], ngot, waiter_woke, started_ran;
  int st_settle[2], st_start, st_send[4], ncb;
} actx;

static actx *ax;

static int waiter_fn(weft_task_t *t, int status) {
  (void)status;
  if (ax->f.state == WEFT_FUTURE_PENDING)
    return weft_task_await(t, &ax->f, WEFT_FOREVER);
  ax->waiter_woke = ax->f.state;
  return WEFT_READY;
}

static int started_fn(weft_task_t *t, int status) {
  (void)t;
  (void)status;
  ax->started_ran++;
  return WEFT_READY;
}

/* Receives until the channel is closed and drained. */
static int receiver_fn(weft_task_t *t, int status) {
  int r;
  if (status == 0 && (t->flags & WEFT_TASK_STARTED) && t->item != 0)
    ax->got[ax->ngot++] = (int)t->item;
  if (status == WEFT_ECLOSED) return WEFT_READY;
  for (;;) {
    t->item = 0;
    r = weft_chan_recv(&ax->ch, t, &t->item);
    if (r == WEFT_PENDING) return r;
    if (r != 0) return WEFT_READY;
    ax->got[ax->ngot++] = (int)t->item;
  }
}

static void on_action(weft_post_t *p, int status) {
  *(int *)p->data = status;
  if (++ax->ncb == 7) weft_loop_unref(ax->loop);
}

static void actions_main(void *arg) {
  actx *x = arg;
  int i;
  assert_int_equal(weft_loop_post_settle(x->loop, &x->settle[0], &x->f,
                                         WEFT_FUTURE_FULFILLED, 0,
                                         on_action), 0);
  assert_int_equal(weft_loop_post_settle(x->loop, &x->settle[1], &x->f,
                                         WEFT_FUTURE_REJECTED, -1,
                                         on_action), 0);
  assert_int_equal(weft_loop_post_start(x->loop, &x->start, &x->started,
                                        started_fn, WEFT_PRIO_HIGH,
                                        on_action), 0);
  for (i = 0; i < 4; i++) {
    x->items[i] = i + 1;
    assert_int_equal(weft_loop_post_send(x->loop, &x->send[i], &x->ch,
                                         &x->items[i], on_action), 0);
  }
}

static void settle_start_and_send_run_on_the_loop_thread(void **state) {
  actx x;
  test_alloc a;
  uv_thread_t tid;
  weft_sched_t *s;
  int i;
  (void)state;
  memset(&x, 0, sizeof x);
  ax = &x;
  test_alloc_init(&a);
  assert_int_equal(weft_loop_new(&x.loop, test_alloc_fn, &a), 0);
  s = weft_loop_sched(x.loop);
  weft_future_init(&x.f);
  assert_int_equal(weft_chan_init(s, &x.ch, 1, sizeof(uintptr_t)), 0);
  for (i = 0; i < 2; i++) x.settle[i].data = &x.st_settle[i];
  x.start.data = &x.st_start;
  for (i = 0; i < 4; i++) x.send[i].data = &x.st_send[i];
  assert_int_equal(weft_task_start(s, &x.waiter, waiter_fn,
                                   WEFT_PRIO_NORMAL, NULL), 0);
  weft_loop_ref(x.loop);
  /* The channel holds one item: the later sends wait for room as posts,
   * since nothing receives until the sender thread is done. */
  assert_int_equal(uv_thread_create(&tid, actions_main, &x), 0);
  uv_thread_join(&tid);
  assert_int_equal(weft_loop_run_nowait(x.loop), 0); /* one batch */
  assert_int_equal(x.ncb, 4); /* two settles, the start, one send */
  assert_int_equal(x.st_settle[0], 0);
  assert_int_equal(x.st_settle[1], WEFT_ESTATE); /* settled already */
  assert_int_equal(x.st_start, 0);
  assert_int_equal(x.started_ran, 1);
  assert_int_equal(x.waiter_woke, WEFT_FUTURE_FULFILLED);
  assert_int_equal(weft_chan_count(&x.ch), 1);
  assert_int_equal(weft_task_start(s, &x.receiver, receiver_fn,
                                   WEFT_PRIO_NORMAL, NULL), 0);
  /* The receiver takes all four, in order, then waits; closing ends it. */
  while (x.ngot < 4) weft_loop_run_nowait(x.loop);
  weft_chan_close(&x.ch);
  assert_int_equal(weft_loop_run(x.loop), 0);
  assert_int_equal(x.ncb, 7);
  for (i = 0; i < 4; i++) {
    assert_int_equal(x.got[i], i + 1);
    assert_int_equal(x.st_send[i], 0);
  }
  weft_chan_free(&x.ch);
  assert_int_equal(weft_loop_free(x.loop), 0);
  test_alloc_expect_empty(&a);
}

static void on_status(weft_post_t *p, int status) {
  pctx *c = p->data;
  c->statuses[c->nstatus++] = status;
}

/* A send to a closed channel, and one waiting when the channel closes,
 * come back WEFT_ECLOSED: the item was not taken. */
static void send_to_closed_channel_is_refused(void **state) {
  pctx c;
  test_alloc a;
  weft_chan_t ch;
  weft_post_t p[2];
  uintptr_t item = 7;
  (void)state;
  pctx_begin(&c, &a);
  assert_int_equal(weft_chan_init(weft_loop_sched(c.loop), &ch, 0,
                                  sizeof item), 0);
  p[0].data = p[1].data = &c;
  assert_int_equal(weft_loop_post_send(c.loop, &p[0], &ch, &item,
                                       on_status), 0);
  assert_int_equal(weft_loop_run(c.loop), 0); /* runs it: it waits */
  assert_int_equal(c.nstatus, 0);
  weft_chan_close(&ch);
  assert_int_equal(c.nstatus, 1);
  assert_int_equal(c.statuses[0], WEFT_ECLOSED);
  assert_int_equal(weft_loop_post_send(c.loop, &p[1], &ch, &item,
                                       on_status), 0);
  assert_int_equal(weft_loop_run(c.loop), 0);
  assert_int_equal(c.nstatus, 2);
  assert_int_equal(c.statuses[1], WEFT_ECLOSED);
  weft_chan_free(&ch);
  pctx_end(&c, &a);
}

static void on_cancelled(weft_post_t *p, int status) {
  pctx *c = p->data;
  weft_post_t again;
  c->statuses[c->nstatus++] = status;
  /* Inside weft_loop_free the loop refuses new posts. */
  assert_int_equal(weft_loop_post(c->loop, &again, on_status),
                   WEFT_ECLOSED);
}

/* weft_loop_free calls every post still queued, and every send still
 * waiting for room, with WEFT_ECANCELED; later posts are refused. */
static void free_cancels_queued_and_waiting_posts(void **state) {
  pctx c;
  test_alloc a;
  weft_chan_t ch;
  weft_future_t f;
  weft_post_t p[4];
  uintptr_t item = 1;
  int i;
  (void)state;
  pctx_begin(&c, &a);
  for (i = 0; i < 4; i++) p[i].data = &c;
  assert_int_equal(weft_chan_init(weft_loop_sched(c.loop), &ch, 0,
                                  sizeof item), 0);
  weft_future_init(&f);
  assert_int_equal(weft_loop_post_send(c.loop, &p[0], &ch, &item,
                                       on_cancelled), 0);
  assert_int_equal(weft_loop_run_nowait(c.loop), 0); /* p[0] waits */
  assert_int_equal(weft_loop_post(c.loop, &p[1], on_cancelled), 0);
  assert_int_equal(weft_loop_post_settle(c.loop, &p[2], &f,
                                         WEFT_FUTURE_FULFILLED, 0,
                                         on_cancelled), 0);
  assert_int_equal(weft_loop_post(c.loop, &p[3], on_cancelled), 0);
  assert_int_equal(weft_loop_free(c.loop), 0);
  assert_int_equal(c.nstatus, 4);
  for (i = 0; i < 4; i++) assert_int_equal(c.statuses[i], WEFT_ECANCELED);
  assert_int_equal(f.state, WEFT_FUTURE_PENDING); /* never settled */
  weft_chan_free(&ch);
  test_alloc_expect_empty(&a);
}

/* Without a hold the loop does not wait for posts; one queued before the
 * run still runs. With one, it waits until the post drops it. */
static void on_unref(weft_post_t *p, int status) {
  pctx *c = p->data;
  assert_int_equal(status, 0);
  c->ran++;
  weft_loop_unref(c->loop);
}

static void post_from_thread(void *arg) {
  pctx *c = arg;
  static weft_post_t p;
  p.data = c;
  assert_int_equal(weft_loop_post(c->loop, &p, on_unref), 0);
}

static void hold_keeps_the_loop_waiting_for_posts(void **state) {
  pctx c;
  test_alloc a;
  weft_post_t p;
  uv_thread_t tid;
  (void)state;
  pctx_begin(&c, &a);
  assert_int_equal(weft_loop_run(c.loop), 0); /* nothing: returns */
  p.data = &c;
  weft_loop_ref(c.loop);
  weft_loop_unref(c.loop);
  assert_int_equal(weft_loop_post(c.loop, &p, on_unref), 0);
  /* Unheld, the loop does not wait, but the queued post runs (its
   * weft_loop_unref, without a hold, does nothing). */
  assert_int_equal(weft_loop_run(c.loop), 0);
  assert_int_equal(c.ran, 1);
  weft_loop_ref(c.loop);
  assert_int_equal(uv_thread_create(&tid, post_from_thread, &c), 0);
  assert_int_equal(weft_loop_run(c.loop), 0); /* waits for the thread's */
  uv_thread_join(&tid);
  assert_int_equal(c.ran, 2);
  pctx_end(&c, &a);
}

static void post_checks_its_arguments(void **state) {
  pctx c;
  test_alloc a;
  weft_post_t p;
  weft_future_t f;
  weft_task_t t;
  weft_chan_t ch;
  int item = 0;
  (void)state;
  pctx_begin(&c, &a);
  weft_future_init(&f);
  assert_int_equal(weft_loop_post(NULL, &p, on_status), WEFT_EINVAL);
  assert_int_equal(weft_loop_post(c.loop, NULL, on_status), WEFT_EINVAL);
  assert_int_equal(weft_loop_post(c.loop, &p, NULL), WEFT_EINVAL);
  assert_int_equal(weft_loop_post_settle(c.loop, &p, &f, 0, 0, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_loop_post_settle(c.loop, &p, NULL,
                                         WEFT_FUTURE_FULFILLED, 0, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_loop_post_start(c.loop, &p, &t, tick_fn, 9, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_loop_post_start(c.loop, &p, &t, NULL, 0, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_loop_post_send(c.loop, &p, NULL, &item, NULL),
                   WEFT_EINVAL);
  assert_int_equal(weft_loop_post_send(c.loop, &p, &ch, NULL, NULL),
                   WEFT_EINVAL);
  pctx_end(&c, &a);
}

/* ---------------------------------------------------- Lua references */

/* About lctx: the references a script hands over through the host's
 * take_fn(f) and take_chan(ch), and the thread it starts with
 * start_thread(n). */
typedef struct lctx {
  weft_lua_ref_t *fn, *ch;
  int n;
  void (*thread)(void *);
  uv_thread_t tid;
} lctx;

static lctx *lx;

/* A test's state, on a fresh value allocator count, with c as lx. */
static lua_State *lua_begin(hstate *h, lctx *c, vcount *vc) {
  vcount_begin(vc);
  memset(c, 0, sizeof *c);
  lx = c;
  return hstate_open(h);
}

static int take_fn(lua_State *L) {
  assert_int_equal(weft_lua_ref_fn(L, 1, &lx->fn), 0);
  return 0;
}

static int take_chan(lua_State *L) {
  assert_int_equal(weft_lua_ref_chan(L, 1, &lx->ch), 0);
  return 0;
}

/* Feeds 1..n into the channel, calls the function with (i, "x") every
 * 100, then drops both references. */
static void feeder(void *arg) {
  lctx *c = arg;
  weft_value_t v, a;
  int i;
  for (i = 1; i <= c->n; i++) {
    weft_value_int(&v, i);
    assert_int_equal(weft_lua_chan_send(c->ch, &v), 0);
    if (i % 100) continue;
    assert_int_equal(weft_value_array(&a, 2), 0);
    weft_value_int(&a.u.a.items[0], i);
    assert_int_equal(weft_value_str(&a.u.a.items[1], "x", 1), 0);
    assert_int_equal(weft_lua_call_later(c->fn, &a), 0);
  }
  weft_lua_unref(c->fn);
  weft_value_nil(&v); /* the end of the stream */
  weft_value_bool(&v, 0);
  assert_int_equal(weft_lua_chan_send(c->ch, &v), 0);
  weft_lua_unref(c->ch);
}

/* start_thread(n): starts lx->thread with lx->n = n. */
static int start_thread(lua_State *L) {
  lx->n = (int)luaL_optinteger(L, 1, 0);
  assert_int_equal(uv_thread_create(&lx->tid, lx->thread, lx), 0);
  return 0;
}

/* Runs src, which may hand over references with take_fn and take_chan
 * and start thread with start_thread(n), in a fresh state; then joins
 * the thread and checks that the state closes clean. */
static void run_threaded(void (*thread)(void *), const char *src) {
  hstate h;
  lctx c;
  vcount vc;
  lua_State *L = lua_begin(&h, &c, &vc);
  c.thread = thread;
  lua_register(L, "take_fn", take_fn);
  lua_register(L, "take_chan", take_chan);
  lua_register(L, "start_thread", start_thread);
  hrun_ok(L, src);
  uv_thread_join(&c.tid);
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_refs_receive_a_thread_stream_in_order(void **state) {
  (void)state;
  run_threaded(feeder,
               "local ch = weft.channel(4)\n"
               "local calls = {}\n"
               "take_fn(function(i, s) calls[#calls + 1] = i .. s end)\n"
               "take_chan(ch)\n"
               "local ticks, done = 0, false\n"
               "weft.spawn(function()\n"
               "  while not done do ticks = ticks + 1; weft.sleep(1) end\n"
               "end)\n"
               "start_thread(3000)\n"
               "local want = 1\n"
               "while true do\n"
               "  local v = ch:recv()\n"
               "  if v == false then break end\n"
               "  assert(v == want, 'got ' .. tostring(v) .. ', want ' .. "
               "want)\n"
               "  want = want + 1\n"
               "end\n"
               "done = true\n"
               "assert(want == 3001, want)\n"
               "weft.sleep(0)\n"
               "assert(#calls == 30, #calls)\n"
               "for k = 1, 30 do assert(calls[k] == (k * 100) .. 'x') end\n");
}

/* Resolves the referenced function (a promise's resolve) with 42. */
static void resolver(void *arg) {
  lctx *c = arg;
  weft_value_t v;
  weft_value_int(&v, 42);
  assert_int_equal(weft_lua_chan_send(c->fn, &v), 0);
  weft_lua_unref(c->fn);
}

/* A host thread settles a script's future, with a value, through the
 * promise's resolve function. */
static void lua_thread_resolves_a_script_future(void **state) {
  (void)state;
  run_threaded(resolver, "local f, resolve = weft.future()\n"
                         "take_fn(resolve)\n"
                         "start_thread()\n"
                         "assert(f:await() == 42)\n");
}

static int stash_refs(lua_State *L) {
  weft_lua_ref_t *bad = (weft_lua_ref_t *)L;
  assert_int_equal(weft_lua_ref_fn(L, 1, &lx->fn), 0);
  assert_int_equal(weft_lua_ref_chan(L, 2, &lx->ch), 0);
  assert_int_equal(weft_lua_ref_chan(L, 1, &bad), WEFT_EINVAL);
  assert_null(bad);
  assert_int_equal(weft_lua_ref_fn(L, 2, &bad), WEFT_EINVAL);
  assert_int_equal(weft_lua_ref_chan(L, 3, &bad), WEFT_EINVAL); /* none */
  assert_int_equal(weft_lua_ref_fn(NULL, 1, &bad), WEFT_EINVAL);
  return 0;
}

/* Runs src as plain Lua, outside any task: weft_lua_run would wait for
 * the references it makes, which hold the loop. */
static void plain_ok(lua_State *L, const char *src) {
  if (luaL_dostring(L, src) != LUA_OK)
    fail_msg("%s", lua_tostring(L, -1));
}

/* References outlive their state: calls then return WEFT_ECLOSED, calls
 * still queued at the close are dropped with their arguments, and unref
 * frees what is left. Arguments are taken on every outcome. */
static void lua_refs_outlive_their_state(void **state) {
  hstate h;
  lctx c;
  vcount vc;
  lua_State *L;
  weft_value_t v, a;
  (void)state;
  L = lua_begin(&h, &c, &vc);
  lua_register(L, "stash", stash_refs);
  plain_ok(L, "stash(function() end, weft.channel(1))");
  /* Queued, never run: the state closes first. */
  weft_value_int(&v, 1);
  assert_int_equal(weft_lua_chan_send(c.ch, &v), 0);
  assert_int_equal(weft_value_array(&a, 1), 0);
  assert_int_equal(weft_value_str(&a.u.a.items[0], "s", 1), 0);
  assert_int_equal(weft_lua_call_later(c.fn, &a), 0);
  weft_value_int(&v, 2);
  assert_int_equal(weft_lua_call_later(c.fn, &v), WEFT_EINVAL);
  assert_int_equal(v.type, WEFT_VNIL);
  weft_value_nil(&v);
  assert_int_equal(weft_lua_chan_send(c.ch, &v), WEFT_EINVAL);
  weft_lua_unref(c.ch); /* its release is queued: cancelled at close */
  hstate_close(&h);
  assert_int_equal(weft_value_str(&v, "late", 4), 0);
  assert_int_equal(weft_lua_chan_send(c.fn, &v), WEFT_ECLOSED);
  assert_int_equal(v.type, WEFT_VNIL);
  assert_int_equal(weft_lua_call_later(c.fn, NULL), WEFT_ECLOSED);
  weft_lua_unref(c.fn);
  weft_lua_unref(NULL);
  vcount_end(&vc);
}

static int stash_fn(lua_State *L) {
  assert_int_equal(weft_lua_ref_fn(L, 1, &lx->fn), 0);
  return 0;
}

/* A failing allocation in weft_lua_chan_send returns WEFT_ENOMEM and
 * frees the value; the sweep ends when the send succeeds. */
static void lua_call_later_out_of_memory_fails_cleanly(void **state) {
  hstate h;
  lctx c;
  vcount vc;
  lua_State *L;
  weft_value_t v;
  long n, before;
  int r;
  (void)state;
  L = lua_begin(&h, &c, &vc);
  lua_register(L, "stash", stash_fn);
  plain_ok(L, "stash(function(s) got = s end)");
  for (n = 1;; n++) {
    before = vcount_blocks(&vc);
    assert_int_equal(weft_value_str(&v, "hello", 5), 0);
    atomic_store(&vc.allocs, 0);
    vc.fail_at = n;
    r = weft_lua_chan_send(c.fn, &v);
    vc.fail_at = 0;
    assert_int_equal(v.type, WEFT_VNIL);
    if (r == 0) break;
    assert_int_equal(r, WEFT_ENOMEM);
    assert_int_equal(vcount_blocks(&vc), before);
  }
  assert_int_equal(n, 3); /* the array, the call's node */
  weft_lua_unref(c.fn);
  hrun_ok(L, "for i = 1, 10 do if got then break end weft.sleep(0) end\n"
             "assert(got == 'hello', tostring(got))");
  hstate_close(&h);
  vcount_end(&vc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(posts_from_threads_run_once_each_in_order),
      cmocka_unit_test(posts_made_while_busy_arrive_in_one_batch),
      cmocka_unit_test(settle_start_and_send_run_on_the_loop_thread),
      cmocka_unit_test(send_to_closed_channel_is_refused),
      cmocka_unit_test(free_cancels_queued_and_waiting_posts),
      cmocka_unit_test(hold_keeps_the_loop_waiting_for_posts),
      cmocka_unit_test(post_checks_its_arguments),
      cmocka_unit_test(lua_refs_receive_a_thread_stream_in_order),
      cmocka_unit_test(lua_thread_resolves_a_script_future),
      cmocka_unit_test(lua_refs_outlive_their_state),
      cmocka_unit_test(lua_call_later_out_of_memory_fails_cleanly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
