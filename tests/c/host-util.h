/*
 * host-util.h - helpers shared by the host-tier tests (test-value.c,
 * test-pool.c, test-host.c): a thread-safe counting value allocator, Lua
 * states on a counting allocator, host function registration, gates.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_TEST_HOST_UTIL_H
#define WEFT_TEST_HOST_UTIL_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "util.h"
#include "weft.h"
#include "weft_lua.h"

/* ------------------------------------------------- the value allocator */

/* About vcount: a counting allocator for weft values and calls, which are
 * built on one thread and freed on another, so every counter is atomic.
 * When fail_at is n > 0 the n-th allocation from now on fails, once. Only
 * the single-threaded value tests set fail_at. */
typedef struct vcount {
  atomic_long blocks, bytes, allocs;
  long fail_at;
} vcount;

static inline void *vcount_fn(void *ud, void *p, size_t osize,
                              size_t nsize) {
  vcount *c = ud;
  void *q;
  if (nsize == 0) {
    if (p) {
      atomic_fetch_sub(&c->blocks, 1);
      atomic_fetch_sub(&c->bytes, (long)osize);
      free(p);
    }
    return NULL;
  }
  if (p == NULL) osize = 0;
  if (atomic_fetch_add(&c->allocs, 1) + 1 == c->fail_at && nsize > osize)
    return NULL;
  if ((q = realloc(p, nsize)) == NULL) return NULL;
  if (p == NULL) atomic_fetch_add(&c->blocks, 1);
  atomic_fetch_add(&c->bytes, (long)nsize - (long)osize);
  return q;
}

/* Installs a fresh counter as the value allocator (no value exists between
 * tests, as weft_value_set_allocator requires). */
static inline void vcount_begin(vcount *c) {
  atomic_init(&c->blocks, 0);
  atomic_init(&c->bytes, 0);
  atomic_init(&c->allocs, 0);
  c->fail_at = 0;
  weft_value_set_allocator(vcount_fn, c);
}

static inline long vcount_blocks(vcount *c) {
  return atomic_load(&c->blocks);
}

/* The end of a test: every value and call was freed; the C library's
 * allocator is restored. */
static inline void vcount_end(vcount *c) {
  weft_value_set_allocator(NULL, NULL);
  assert_int_equal(atomic_load(&c->blocks), 0);
  assert_int_equal(atomic_load(&c->bytes), 0);
}

/* --------------------------------------------------------- Lua states */

/* About hstate: one Lua state with weft opened, on a counting allocator
 * of its own (used on its loop thread only), counting the unhandled
 * failures weft reports. */
typedef struct hstate {
  lua_State *L;
  test_alloc a;
  int reports;
  char last_report[512];
} hstate;

static inline void hstate_report(void *ud, const char *text) {
  hstate *h = ud;
  h->reports++;
  snprintf(h->last_report, sizeof h->last_report, "%s", text);
}

static inline lua_State *hstate_open(hstate *h) {
  memset(h, 0, sizeof *h);
  test_alloc_init(&h->a);
  h->L = lua_newstate(test_alloc_fn, &h->a);
  assert_non_null(h->L);
  luaL_openlibs(h->L);
  luaL_requiref(h->L, "weft", luaopen_weft, 1);
  lua_pop(h->L, 1);
  weft_lua_set_report(h->L, hstate_report, h);
  return h->L;
}

/* The number of live tasks of the state. */
static inline size_t hstate_live(lua_State *L) {
  weft_stats_t st;
  weft_sched_stats(weft_loop_sched(weft_lua_loop(L)), &st);
  return st.live;
}

/* The end of a test: no task live, nothing reported unhandled, and once
 * the state is closed its allocator balance is zero. */
static inline void hstate_close(hstate *h) {
  assert_int_equal(hstate_live(h->L), 0);
  if (h->reports) print_error("unhandled: %s\n", h->last_report);
  assert_int_equal(h->reports, 0);
  lua_close(h->L);
  h->L = NULL;
  test_alloc_expect_empty(&h->a);
}

/* Registers fn as the global name. */
static inline void hreg(lua_State *L, const char *name, weft_host_fn fn,
                        int kind, int prio, uint64_t timeout_ms,
                        weft_cancel_cb on_cancel, void *ud) {
  weft_fn_opts o;
  memset(&o, 0, sizeof o);
  o.kind = kind;
  o.priority = prio;
  o.timeout_ms = timeout_ms;
  o.on_cancel = on_cancel;
  o.ud = ud;
  assert_int_equal(weft_lua_push_fn(L, name, fn, &o), 0);
  lua_setglobal(L, name);
}

/* Runs src as the main task; returns its status with its results (or the
 * error, printed) left on the stack. */
static inline int hrun(lua_State *L, const char *src) {
  int r = luaL_loadstring(L, src);
  if (r == LUA_OK) r = weft_lua_run(L, 0, 1);
  if (r != LUA_OK) print_error("script failed: %s\n", lua_tostring(L, -1));
  return r;
}

/* Runs src, which must succeed, and drops its results. */
static inline void hrun_ok(lua_State *L, const char *src) {
  int top = lua_gettop(L);
  assert_int_equal(hrun(L, src), LUA_OK);
  lua_settop(L, top);
}

/* ----------------------------------------------------------- gates */

/* About gate: a flag other threads wait on (a job held until the test
 * lets it go), with a count of the threads waiting. */
typedef struct gate {
  uv_mutex_t mu;
  uv_cond_t cond;
  int open;
  int waiting;
} gate;

static inline void gate_init(gate *g) {
  uv_mutex_init(&g->mu);
  uv_cond_init(&g->cond);
  g->open = 0;
  g->waiting = 0;
}

static inline void gate_destroy(gate *g) {
  uv_cond_destroy(&g->cond);
  uv_mutex_destroy(&g->mu);
}

static inline void gate_open(gate *g) {
  uv_mutex_lock(&g->mu);
  g->open = 1;
  uv_cond_broadcast(&g->cond);
  uv_mutex_unlock(&g->mu);
}

static inline void gate_pass(gate *g) {
  uv_mutex_lock(&g->mu);
  g->waiting++;
  uv_cond_broadcast(&g->cond);
  while (!g->open) uv_cond_wait(&g->cond, &g->mu);
  g->waiting--;
  uv_mutex_unlock(&g->mu);
}

static inline int gate_waiting(gate *g) {
  int n;
  uv_mutex_lock(&g->mu);
  n = g->waiting;
  uv_mutex_unlock(&g->mu);
  return n;
}

/* Builds an integer result and resolves call with it. */
static inline int resolve_int(weft_call_t *call, int64_t i) {
  weft_value_t v;
  weft_value_int(&v, i);
  return weft_call_resolve(call, &v);
}

/* The integer argument i (0-based) of call, or -1. */
static inline int64_t arg_int(weft_call_t *call, size_t i) {
  const weft_value_t *a = weft_call_args(call);
  if (i >= a->u.a.len || a->u.a.items[i].type != WEFT_VINT) return -1;
  return a->u.a.items[i].u.i;
}

#endif
