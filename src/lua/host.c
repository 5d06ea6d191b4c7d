/*
 * host.c - host functions in Lua: the three kinds of call (sync, pool,
 * loop), their waits, timeouts and cancellation; non-blocking evaluation
 * from C (Lua binding).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <uv.h>

#include "lweft.h"
#include "weft_io.h"

#define HOSTFN_MT "weft.HostFn"
#define CALL_MT "weft.Call"
#define WATCH_MT "weft.Watch"
/* Userdata tags: see About userdata tags in lweft.h. */
static const char HOSTFN_TAG[] = HOSTFN_MT, CALL_TAG[] = CALL_MT,
                  WATCH_TAG[] = WATCH_MT;

/* About HostFn: the upvalue of a registered function's closure. A call
 * copies what it needs (the name included), so it may outlive this. */
typedef struct HostFn {
  const char *tag; /* HOSTFN_TAG */
  weft_host_fn fn;
  weft_fn_opts opts;
  size_t len; /* of name */
  char name[1];
} HostFn;

/* About CallUd: the calling task's reference to its call, in a userdata on
 * the task's stack, so an abandoned wait still releases it (__gc). fname
 * names the call in its errors (NULL: the call's own name); its user
 * value, a string, if any, says where (lw_call_label). timeout_ms: the
 * wait's time limit, 0 for none. */
typedef struct CallUd {
  const char *tag; /* CALL_TAG */
  weft_call_t *c;
  weft_value_t args; /* the arguments, until the call takes them */
  const char *fname;
  uint64_t timeout_ms;
} CallUd;

/* __gc: a script can call it (debug.getmetatable) with anything, or on a
 * call in progress, which its continuation then finds gone (call_at). */
static int call_gc(lua_State *L) {
  CallUd *cu = lw_toudata(L, 1, sizeof *cu, CALL_TAG);
  if (cu == NULL) return 0;
  if (cu->c) weft_call_release(cu->c);
  cu->c = NULL;
  weft_value_free(&cu->args); /* a conversion that raised */
  return 0;
}

static weft_pool_t *get_pool(lua_State *L, State *S, const char *fname) {
  int r;
  if (S->pool == NULL) {
    if ((r = weft_pool_new(&S->pool, NULL)) != 0)
      luaL_error(L, "%s: cannot start the worker pool: %s", fname,
                 weft_strerror(r));
    S->owns_pool = 1;
  }
  weft_loop_set_pool(S->loop, S->pool); /* also one weft_lua_set_pool gave */
  return S->pool;
}

void lw_need_pool(lua_State *L, State *S, const char *fname) {
  get_pool(L, S, fname);
}

/* Pushes the outcome of a settled call and releases it; raises its error:
 * a weft error of kind "host" whose message names the function, or of
 * kind "io" with the libuv code name in err.code for internal jobs. */
/* Pushes "<fname>: [<where>: ]<what>" for the holder at cidx. */
static const char *push_message(lua_State *L, int cidx, const char *what) {
  CallUd *cu = lua_touserdata(L, cidx);
  const char *name = cu->fname ? cu->fname : weft_call_name(cu->c);
  if (lua_getiuservalue(L, cidx, 1) == LUA_TSTRING)
    lua_pushfstring(L, "%s: %s: %s", name, lua_tostring(L, -1), what);
  else
    lua_pushfstring(L, "%s: %s", name, what);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

static int finish(lua_State *L, int cidx) {
  CallUd *cu = lua_touserdata(L, cidx);
  weft_call_t *c = cu->c;
  const char *name = cu->fname ? cu->fname : weft_call_name(c);
  char text[128];
  weft_error_t e;
  switch (weft_call_future(c)->state) {
  case WEFT_FUTURE_FULFILLED:
    lw_push_value(L, weft_call_result(c), name);
    weft_call_release(c);
    cu->c = NULL;
    return 1;
  case WEFT_FUTURE_REJECTED:
    weft_call_error(c, &e);
    if (e.code != WEFT_ESCRIPT && lua_getiuservalue(L, cidx, 1) ==
                                      LUA_TSTRING) { /* labelled by where */
      lua_pop(L, 1);
      weft_io_error_text(text, sizeof text, NULL, e.code);
      push_message(L, cidx, text);
    } else {
      lua_pop(L, 1);
      lua_pushfstring(L, "%s: %s", name, e.message);
    }
    lw_new_error(L, e.code != WEFT_ESCRIPT ? "io" : "host",
                 lua_tostring(L, -1));
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    if (e.code != WEFT_ESCRIPT) {
      lua_pushstring(L, uv_err_name(e.code));
      lua_setfield(L, -2, "code");
    }
    weft_call_release(c);
    cu->c = NULL;
    return lua_error(L);
  default:
    weft_call_release(c);
    cu->c = NULL;
    lw_new_error(L, "cancelled", "cancelled");
    return lua_error(L);
  }
}

static int wait_call(lua_State *L, Task *t, int cidx);

/* The call of the CallUd a continuation left at cidx: debug.setlocal can
 * replace it, and a script can finalize it (see call_gc). */
static CallUd *call_at(lua_State *L, int cidx) {
  CallUd *cu = lw_toudata(L, cidx, sizeof *cu, CALL_TAG);
  if (cu == NULL || cu->c == NULL)
    luaL_error(L, "weft: a host call's state was replaced or finalized");
  return cu;
}

static int call_k(lua_State *L, int st, lua_KContext cidx) {
  Task *t = lw_k_task(L);
  CallUd *cu = call_at(L, (int)cidx);
  weft_call_t *c = cu->c;
  if (t == NULL) return lw_yield(L, cidx, call_k);
  (void)st;
  if (t->status == WEFT_ETIMEDOUT || t->status == WEFT_ECANCELED) {
    if (weft_call_cancel(c) ||
        weft_call_future(c)->state == WEFT_FUTURE_CANCELLED) {
      int cancelled = t->status == WEFT_ECANCELED;
      if (cancelled) { /* nothing allocated first: memory may be short */
        weft_call_release(c);
        cu->c = NULL;
        lw_raise_cancel(L, t);
      }
      lua_pushfstring(L, "timed out after " LW_I " ms", LW_INT(cu->timeout_ms));
      push_message(L, (int)cidx, lua_tostring(L, -1));
      weft_call_release(c);
      cu->c = NULL;
      lw_new_error(L, "timeout", lua_tostring(L, -1));
      lua_pushliteral(L, "ETIMEDOUT");
      lua_setfield(L, -2, "code");
      return lua_error(L);
    }
    /* The completion won the race; its result is in the inbox. */
    if (weft_call_future(c)->state == WEFT_FUTURE_PENDING) {
      weft_task_await(&t->t, weft_call_future(c), WEFT_FOREVER);
      return lw_yield(L, cidx, call_k);
    }
  }
  return finish(L, (int)cidx);
}

static int start_call(lua_State *L, Task *t, int cidx);

/* Woken because the pool has room (or cancelled while waiting for it). */
static int room_k(lua_State *L, int st, lua_KContext cidx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, cidx, room_k);
  (void)st;
  if (t->status == WEFT_ECANCELED) {
    CallUd *cu = call_at(L, (int)cidx);
    weft_call_release(cu->c);
    cu->c = NULL;
    lw_raise_cancel(L, t);
  }
  call_at(L, (int)cidx);
  return start_call(L, t, (int)cidx);
}

/* Goes on with the call at cidx as its start left it: r is 0 (started)
 * or WEFT_EFULL (the pool is full: wait for room, then start it again,
 * never drop the call or block). */
static int started(lua_State *L, Task *t, int cidx, int r) {
  CallUd *cu = lua_touserdata(L, cidx);
  if (r == WEFT_EFULL) {
    weft_task_await(&t->t, weft_loop_room(upstate(L)->loop), WEFT_FOREVER);
    return lw_yield(L, cidx, room_k);
  }
  if (weft_call_future(cu->c)->state != WEFT_FUTURE_PENDING)
    return finish(L, cidx); /* a sync function, or a refusal */
  return wait_call(L, t, cidx);
}

static int start_call(lua_State *L, Task *t, int cidx) {
  CallUd *cu = lua_touserdata(L, cidx);
  return started(L, t, cidx, weft_call_start(cu->c));
}

static int wait_call(lua_State *L, Task *t, int cidx) {
  CallUd *cu = lua_touserdata(L, cidx);
  weft_call_t *c = cu->c;
  uint64_t tmo = cu->timeout_ms ? cu->timeout_ms : WEFT_FOREVER;
  int r;
  if (cu->timeout_ms) weft_loop_update_time(upstate(L)->loop); /* from now */
  r = weft_task_await(&t->t, weft_call_future(c), tmo);
  if (r == 0) return finish(L, cidx);
  if (r == WEFT_ENOMEM) {
    lua_pushfstring(L, "%s: not enough memory",
                    cu->fname ? cu->fname : weft_call_name(c));
    weft_call_release(c);
    cu->c = NULL;
    return lua_error(L);
  }
  return lw_yield(L, cidx, call_k);
}

weft_call_t **lw_call_slot(lua_State *L, const char *fname) {
  State *S = upstate(L);
  CallUd *cu = lua_newuserdatauv(L, sizeof *cu, 1);
  cu->tag = CALL_TAG;
  cu->c = NULL;
  cu->fname = fname;
  cu->timeout_ms = 0;
  weft_value_nil(&cu->args);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->mt_call_ref);
  lua_setmetatable(L, -2);
  return &cu->c;
}

void lw_call_label(lua_State *L, int where, uint64_t timeout_ms) {
  CallUd *cu = lua_touserdata(L, -1);
  cu->timeout_ms = timeout_ms;
  if (where == 0) return;
  lua_pushvalue(L, where);
  lua_setiuservalue(L, -2, 1);
}

int lw_call_wait(lua_State *L, Task *t, int r) {
  int cidx = lua_gettop(L);
  if (r != 0 && r != WEFT_EFULL)
    return luaL_error(L, "%s", push_message(L, lua_gettop(L),
                                            weft_strerror(r)));
  return started(L, t, cidx, r);
}

int lw_call(lua_State *L, Task *t, const char *name, weft_host_fn fn,
            const weft_fn_opts *opts, int first, int nargs) {
  State *S = upstate(L);
  weft_pool_t *pool = NULL;
  CallUd *cu;
  int cidx, r;
  if (opts->kind == WEFT_FN_POOL) pool = get_pool(L, S, name);
  lw_call_slot(L, NULL);
  cu = lua_touserdata(L, -1);
  cu->timeout_ms = opts->timeout_ms;
  cidx = lua_gettop(L);
  lw_args_to_value(L, first, nargs, name, &cu->args);
  r = weft_call_new(S->loop, name, fn, opts, pool, &cu->args, &cu->c);
  if (r != 0) return luaL_error(L, "%s: %s", name, weft_strerror(r));
  return start_call(L, t, cidx);
}

/* The HostFn of the running host function: upvalue 2, checked (a script
 * can replace it with debug.setupvalue). */
static HostFn *uphostfn(lua_State *L) {
  HostFn *h = lua_touserdata(L, lua_upvalueindex(2));
  size_t len = lua_rawlen(L, lua_upvalueindex(2));
  if (h == NULL || len < sizeof *h || h->tag != HOSTFN_TAG ||
      len != sizeof *h + h->len)
    luaL_error(L, "weft: corrupted upvalue 2 of a host function");
  return h;
}

/* The Lua function of a registered host function: f(...) -> result */
static int host_call(lua_State *L) {
  State *S = upstate(L);
  HostFn *h = uphostfn(L);
  Task *t = NULL;
  if (h->opts.kind != WEFT_FN_SYNC) t = lw_need_task(L, S, h->name);
  if (h->opts.kind == WEFT_FN_POOL) get_pool(L, S, h->name);
  return lw_call(L, t, h->name, h->fn, &h->opts, 1, lua_gettop(L));
}

int weft_lua_push_fn(lua_State *L, const char *name, weft_host_fn fn,
                     const weft_fn_opts *opts) {
  size_t len;
  HostFn *h;
  if (L == NULL || name == NULL || fn == NULL || opts == NULL ||
      opts->kind < WEFT_FN_SYNC ||
      opts->kind > WEFT_FN_LOOP || opts->priority < 0 ||
      opts->priority >= WEFT_NPRIO)
    return WEFT_EINVAL;
  len = strlen(name);
  lw_push_state(L, lw_open_state(L));
  h = lua_newuserdatauv(L, sizeof *h + len, 0);
  h->tag = HOSTFN_TAG;
  h->len = len;
  h->fn = fn;
  h->opts = *opts;
  memcpy(h->name, name, len + 1);
  lua_pushcclosure(L, host_call, 2);
  lw_wrap_wait(L);
  return 0;
}

int weft_lua_set_pool(lua_State *L, weft_pool_t *pool) {
  State *S;
  if (L == NULL) return WEFT_EINVAL;
  S = lw_open_state(L);
  if (S->pool || pool == NULL) return WEFT_ESTATE;
  S->pool = pool;
  S->owns_pool = 0;
  return 0;
}

void lw_closer_add(State *S, Closer *c) {
  c->next = S->closers.next;
  c->prev = &S->closers;
  c->next->prev = c;
  S->closers.next = c;
}

void lw_closer_remove(Closer *c) {
  if (c->next == NULL) return;
  c->prev->next = c->next;
  c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

/* Frees what the state owns on the host side: the I/O handles still open
 * first, then the loop (it cancels calls still queued in the pool and runs
 * until the handles' close callbacks ran), then its own pool. */
void lw_state_close(State *S) {
  lw_preempt_free(S);
  while (S->closers.next && S->closers.next != &S->closers) {
    Closer *c = S->closers.next;
    lw_closer_remove(c);
    c->close(c);
  }
  lw_post_close(S); /* before the loop goes: see post.c's Link */
  if (S->loop) weft_loop_free(S->loop);
  S->loop = NULL;
  if (S->pool && S->owns_pool) weft_pool_free(S->pool);
  S->pool = NULL;
}

/* Adds the pool counters to the stats table on top. */
void lw_host_stats(lua_State *L, State *S) {
  weft_pool_stats ps;
  uint64_t wait = 0, started = 0;
  int i;
  lw_setint(L, "calls_in_flight", S->loop ? weft_loop_calls(S->loop) : 0);
  if (S->pool == NULL) return;
  weft_pool_get_stats(S->pool, &ps);
  for (i = 0; i < WEFT_NPRIO; i++) {
    wait += ps.wait_ns[i];
    started += ps.started[i];
  }
  lw_setint(L, "pool_threads", ps.threads);
  lw_setint(L, "pool_queued", ps.queued);
  lw_setint(L, "pool_busy", ps.running);
  lw_setint(L, "pool_queue_max", ps.queue_max);
  lw_setint(L, "pool_done", ps.done);
  lw_setint(L, "pool_cancelled", ps.cancelled);
  lw_setint(L, "pool_rejected_full", ps.rejected_full);
  lw_setint(L, "pool_wait_us", started ? wait / started / 1000 : 0);
  lua_createtable(L, 0, WEFT_NPRIO); /* the mean queue wait per priority */
  for (i = 0; i < WEFT_NPRIO; i++)
    lw_setint(L, lw_prio_names[i],
           ps.started[i] ? ps.wait_ns[i] / ps.started[i] / 1000 : 0);
  lua_setfield(L, -2, "pool_wait_us_by_priority");
}

/* ------------------------------------------------ non-blocking evaluation */

/* About Watch: the done callback of a task started by weft_lua_spawn, in
 * a userdata (upvalue 2 of the watcher), never as a light userdata a
 * script could read or replace. done is cleared before it is called and
 * when weft_lua_spawn fails: it is called at most once, and only after
 * weft_lua_spawn returned LUA_OK. */
typedef struct Watch {
  const char *tag; /* WATCH_TAG */
  weft_lua_done_fn done;
  void *ud;
} Watch;

/* About SpawnReq: how weft_lua_spawn hands its callback to spawn_entry:
 * not on the Lua stack, as a script can capture spawn_entry with a call
 * hook (debug.sethook) and call it again. One per thread, as a Lua state
 * is used by one thread at a time; nested calls stack. spawn_entry takes
 * it once (taken); a second call raises. */
typedef struct SpawnReq {
  weft_lua_done_fn done;
  void *ud;
  Watch *watch; /* made by spawn_entry */
  int taken;
  struct SpawnReq *prev;
} SpawnReq;
static _Thread_local SpawnReq *spawn_req;

/* The body of the watcher task weft_lua_spawn starts beside a task with a
 * done callback: waits for it (its own cancellation does not stop the
 * wait) and calls the callback with the task at index 1. */
static int watch_k(lua_State *L, int st, lua_KContext ctx) {
  State *S = upstate(L);
  Fut *f = lw_checkfut(L, S, 1, "weft_lua_spawn");
  Watch *w = lw_toudata(L, lua_upvalueindex(2), sizeof *w, WATCH_TAG);
  weft_lua_done_fn done;
  (void)st;
  (void)ctx;
  if (w == NULL) return luaL_error(L, "weft_lua_spawn: corrupted upvalue 2");
  if (lw_future(f)->state == WEFT_FUTURE_PENDING) {
    Task *t = lw_k_task(L); /* NULL: resumed from outside, see lw_k_task */
    if (t == NULL) return lw_yield(L, 0, watch_k);
    weft_task_await(&t->t, lw_future(f), WEFT_FOREVER);
    return lw_yield(L, 0, watch_k);
  }
  if ((done = w->done) != NULL) {
    w->done = NULL;
    done(w->ud, L, 1);
  }
  return 0;
}

static int watch(lua_State *L) { return watch_k(L, 0, 0); }

/* [fn, args...] -> task; protected by weft_lua_spawn, which gives the
 * callback through spawn_req. */
static int spawn_entry(lua_State *L) {
  State *S = lw_open_state(L);
  SpawnReq *q = spawn_req;
  Watch *w;
  int top;
  if (q == NULL || q->taken)
    return luaL_error(L, "weft_lua_spawn: its entry was called again");
  q->taken = 1;
  lw_spawn_at(L, S, 1, WEFT_PRIO_NORMAL, 0);
  top = lua_gettop(L);
  if (q->done == NULL) return 1;
  lw_push_state(L, S);
  w = lua_newuserdatauv(L, sizeof *w, 0);
  w->tag = WATCH_TAG;
  w->done = NULL; /* armed by weft_lua_spawn once it succeeded */
  w->ud = q->ud;
  q->watch = w;
  lua_pushcclosure(L, watch, 2);
  lw_wrap_wait(L);
  lua_pushvalue(L, -2);
  lw_spawn_at(L, S, top + 1, WEFT_PRIO_NORMAL, 0);
  lua_settop(L, top);
  return 1;
}

/* Nothing before lua_pcall allocates (a light C function), so an
 * out-of-memory error cannot escape unprotected. */
int weft_lua_spawn(lua_State *L, int nargs, weft_lua_done_fn done, void *ud) {
  int base, r;
  SpawnReq q;
  if (L == NULL) return LUA_ERRERR;
  base = lua_gettop(L) - nargs;
  if (nargs < 0 || base < 1) return lw_misuse(L, LW_MISUSE_SPAWN);
  q.done = done;
  q.ud = ud;
  q.watch = NULL;
  q.taken = 0;
  q.prev = spawn_req;
  spawn_req = &q;
  lua_pushcfunction(L, spawn_entry);
  lua_insert(L, base);
  r = lua_pcall(L, nargs + 1, 1, 0);
  spawn_req = q.prev;
  if (r == LUA_OK && q.watch) q.watch->done = done;
  if (r == LUA_OK) weft_loop_wake(weft_lua_loop(L));
  return r;
}

static int result_entry(lua_State *L) {
  Fut *f = lw_checkfut(L, NULL, 1, "weft_lua_result");
  if (lw_future(f)->state == WEFT_FUTURE_PENDING)
    return luaL_error(L, "weft_lua_result: the task is still running");
  return lw_push_outcome(L, 1);
}

int weft_lua_result(lua_State *L, int idx, int *nres) {
  int top, r;
  if (nres) *nres = 0;
  if (L == NULL) return LUA_ERRERR;
  if (idx == 0 || idx > lua_gettop(L) || idx < -lua_gettop(L))
    return lw_misuse(L, LW_MISUSE_RESULT); /* pseudo-indices too */
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, result_entry);
  lua_pushvalue(L, idx);
  top = lua_gettop(L) - 2;
  r = lua_pcall(L, 1, LUA_MULTRET, 0);
  if (nres) *nres = r == LUA_OK ? lua_gettop(L) - top : 0;
  return r;
}

void lw_open_host(lua_State *L, State *S) {
  luaL_newmetatable(L, CALL_MT);
  lw_protect_mt(L, CALL_MT);
  lua_pushcfunction(L, call_gc);
  lua_setfield(L, -2, "__gc");
  S->mt_call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
