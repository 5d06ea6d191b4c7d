/*
 * task.c - Lua tasks and futures: spawn, the resume function, await and
 * the other waits, cancellation, outcomes (Lua binding).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include <uv.h>

#include "lweft.h"

const char *const lw_prio_names[] = {"critical", "high", "normal", "low",
                                     "idle", NULL};

const char *lw_state_name(int state) {
  static const char *const names[] = {"pending", "fulfilled", "rejected",
                                      "cancelled"};
  return names[state & 3];
}

/* ---------------------------------------------------------------- errors */

/* A weft error is a table {kind=, message=} with the ERROR_MT metatable,
 * so tostring() shows the message and is_cancelled/is_timeout can tell it
 * from any other value. [-0, +1, m] */
void lw_new_error(lua_State *L, const char *kind, const char *msg) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, ERROR_MT);
}

int lw_is_error(lua_State *L, int idx, const char *kind) {
  int r = 0;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, ERROR_MT);
  if (lua_rawequal(L, -1, -2)) {
    lua_getfield(L, idx, "kind");
    r = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), kind) == 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return r;
}

/* __tostring of a weft error; raw, so that it runs no Lua code, and any
 * value a script gives it (debug.getmetatable) gets a string. */
static int error_tostring(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "message");
    lua_rawget(L, 1);
  }
  if (lua_type(L, -1) != LUA_TSTRING) lua_pushliteral(L, "weft error");
  return 1;
}

/* ------------------------------------------------------------- extras */

int lw_get_extra(lua_State *L, int idx, int k) {
  int t = lua_getiuservalue(L, idx, UV_EXTRA);
  if (t == LUA_TTABLE) {
    t = lua_rawgeti(L, -1, k);
    lua_remove(L, -2);
    return t;
  }
  if (t == LUA_TSTRING && k == EX_NAME) return t;
  lua_pop(L, 1);
  lua_pushnil(L);
  return LUA_TNIL;
}

void lw_set_extra(lua_State *L, int idx, int k) {
  int t;
  idx = lua_absindex(L, idx);
  t = lua_getiuservalue(L, idx, UV_EXTRA);
  if (t == LUA_TNIL && k == EX_NAME &&
      lua_type(L, -2) == LUA_TSTRING) { /* a name alone: no table */
    lua_pop(L, 1);
    lua_setiuservalue(L, idx, UV_EXTRA);
    return;
  }
  if (t != LUA_TTABLE) {
    lua_createtable(L, EX_COUNT, 0);
    if (t == LUA_TSTRING) {
      lua_insert(L, -2);
      lua_rawseti(L, -2, EX_NAME);
    } else {
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, idx, UV_EXTRA);
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, k);
  lua_pop(L, 1);
}

/* [fut] -> makes the future's plain cancellation error and keeps it. */
/* About internal functions: weft calls some C functions in protected
 * calls of its own (make_cancel_error, traceback, note_failed, report,
 * start_co), with trusted arguments; but a script's call hook
 * (debug.sethook) can capture one and call it again with anything, so
 * each checks what it is given: no light userdata, a task by its tag. */
static Task *internal_task(lua_State *L, int idx) {
  Fut *f = lw_tofut(L, NULL, idx);
  if (f == NULL || f->kind != KIND_TASK)
    luaL_error(L, "weft: an internal function called with a bad argument");
  return (Task *)f;
}

static int make_cancel_error(lua_State *L) {
  if (lw_tofut(L, NULL, 1) == NULL) internal_task(L, 1); /* raises */
  lw_new_error(L, "cancelled", "cancelled");
  lua_pushvalue(L, -1);
  lw_set_extra(L, 1, EX_CANCEL);
  return 1;
}

/* The cancellation error of a future is made on first need and kept, so
 * every waiter sees the same value. When memory is too short to make it,
 * the state's preallocated plain one stands in (not kept: a later need
 * may make the future's own), so a cancelled task still ends cancelled
 * rather than failing with a memory error. */
void lw_push_cancel_error(lua_State *L, int idx) {
  Fut *f;
  idx = lua_absindex(L, idx);
  if (lw_get_extra(L, idx, EX_CANCEL) != LUA_TNIL) return;
  lua_pop(L, 1);
  f = lua_touserdata(L, idx);
  lua_pushcfunction(L, make_cancel_error);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, f->S->cancel_ref);
  }
}

/* Raises the running task's cancellation in its own coroutine. */
void lw_raise_cancel(lua_State *L, Task *t) {
  lw_push_task(L, t);
  lw_push_cancel_error(L, -1);
  lua_error(L);
}

/* ------------------------------------------------------------- futures */

/* A future's tag is its state (see About userdata tags), its size that
 * of a promise or a task. */
_Static_assert(offsetof(Fut, S) == 0, "Fut.S is the tag");

Fut *lw_tofut(lua_State *L, State *S, int idx) {
  Fut *f = lua_touserdata(L, idx);
  size_t n;
  if (f == NULL) return NULL;
  if (S == NULL && (S = lw_find_state(L)) == NULL) return NULL;
  n = lua_rawlen(L, idx);
  if ((n != sizeof(Task) && n != sizeof(Promise)) || f->S != S) return NULL;
  return f;
}

Fut *lw_checkfut(lua_State *L, State *S, int idx, const char *fname) {
  Fut *f = lw_tofut(L, S, idx);
  if (f == NULL)
    luaL_error(L, "%s: expected a future or task, got %s", fname,
               luaL_typename(L, idx));
  return f;
}

void lw_push_task(lua_State *L, Task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
}

/* Pushes the stored results of the settled future at idx. [-0, +n, m] */
static int push_values(lua_State *L, int idx, Fut *f) {
  int n = f->nres, i;
  lua_State *co;
  switch (f->res) {
  case RES_NONE: return 0;
  case RES_ONE: lua_getiuservalue(L, idx, UV_RESULT); return 1;
  case RES_TABLE:
    luaL_checkstack(L, n + 1, "too many results");
    /* debug.setuservalue can replace the holder: checked, not trusted */
    if (lua_getiuservalue(L, idx, UV_RESULT) != LUA_TTABLE)
      luaL_error(L, "future:result: its results were replaced");
    for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    return n;
  default: /* RES_THREAD: the dead coroutine holds the values on top */
    luaL_checkstack(L, n + 1, "too many results");
    lua_getiuservalue(L, idx, UV_RESULT);
    co = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (co == NULL || lua_gettop(co) < n) /* see RES_TABLE */
      luaL_error(L, "future:result: its results were replaced");
    if (!lua_checkstack(co, n)) luaL_error(L, "not enough memory");
    for (i = 0; i < n; i++) lua_pushvalue(co, -n);
    lua_xmove(co, L, n);
    return n;
  }
}

/* A failed task's error about to be raised in the running task, by an
 * await or a result: the running task keeps the failed one as its cause,
 * so that if it fails with that same error, its traceback tells where
 * the error came from (see traceback). */
static void note_cause(lua_State *L, int idx, Fut *f) {
  Task *t = f->S->current;
  if (f->kind != KIND_TASK || t == NULL || t->co != L || &t->h == f) return;
  lw_push_task(L, t);
  lua_pushvalue(L, idx);
  lw_set_extra(L, -2, EX_CAUSE);
  lua_pop(L, 1);
}

/* The outcome of the settled future at idx: its values, or raises its
 * error. Marks it observed. */
int lw_push_outcome(lua_State *L, int idx) {
  Fut *f = lua_touserdata(L, idx);
  f->observed = 1;
  switch (lw_future(f)->state) {
  case WEFT_FUTURE_FULFILLED: return push_values(L, idx, f);
  case WEFT_FUTURE_REJECTED:
    note_cause(L, idx, f);
    lua_getiuservalue(L, idx, UV_RESULT);
    return lua_error(L);
  case WEFT_FUTURE_CANCELLED:
    lw_push_cancel_error(L, idx);
    return lua_error(L);
  default: return luaL_error(L, "future:result: the future is pending");
  }
}

/* ----------------------------------------------------------- the task */

#if LW_LUA51
static void need_frame(lua_State *L, struct Task *t);
#endif

#define NO_YIELD_MSG                                                    \
  "cannot wait inside a C callback such as string.gsub or table.sort "  \
  "(or a metamethod or finalizer)"

/* The running task, or an error naming fname if the caller is not a task's
 * own coroutine. The second form also honours a pending cancellation:
 * every wait of a cancelled task raises its cancellation error. */
Task *lw_in_task(lua_State *L, State *S, const char *fname) {
  Task *t = S->current;
  if (t == NULL)
    luaL_error(L, "%s: not inside a weft task (use weft.run or weft.spawn)",
               fname);
  /* Checked before the wait registers anywhere: a wait that registered
   * and then failed to yield would leave the task linked to what it
   * waited on. */
  if (L == t->co ? t->inner != NULL : L != t->inner)
    luaL_error(L, "%s: cannot wait inside a coroutine resumed other than "
               "by weft's coroutine.resume or coroutine.wrap", fname);
  if (!lua_isyieldable(L) || (L != t->co && !t->inner_ok))
    luaL_error(L, "%s: " NO_YIELD_MSG, fname);
  /* Only a script reaching weft's internals (the debug library) could
   * start a wait while the task waits already. */
  if (t->t.flags & (WEFT_TASK_PARKED | WEFT_TASK_QUEUED))
    luaL_error(L, "%s: the task is waiting already", fname);
#if LW_LUA51
  need_frame(L, t);
#endif
  return t;
}

#if LW_LUA51
/* ------------------------------------------------- waits on 5.1, LuaJIT */

/* See About waits in lweft.h. The driver resumes a coroutine that lw_yield
 * suspended with LW_CONT, a light userdata no script can make. A wrapped
 * function that returns puts LW_DONE before its results: anything else
 * the wrapper gets back means that the function waits and that something
 * other than the driver (the original coroutine.resume, reached through
 * the debug library) resumed its coroutine, which then yields again, as
 * the continuations on 5.3 and later do (lw_k_task). */
static const char cont_key = 0, done_key = 0;
#define LW_CONT ((void *)&cont_key)
#define LW_DONE ((void *)&done_key)

/* The room for values a waiting function pushes between its lw_in_task
 * and its lw_yield: the saved frame then fits the table made before the
 * wait registered, and saving it cannot fail on memory. */
#define FRAME_SLACK 8

/* Before a wait registers: a frame table with room for the stack now and
 * FRAME_SLACK more. [-0, +0, m] */
static void need_frame(lua_State *L, Task *t) {
  int n = lua_gettop(L) + FRAME_SLACK;
  if (t->kframe != LUA_NOREF && t->kcap >= n) return;
  if (n < 16) n = 16;
  lua_createtable(L, n, 0);
  if (t->kframe == LUA_NOREF) {
    t->kframe = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_rawseti(L, LUA_REGISTRYINDEX, t->kframe);
  }
  t->kcap = n;
}

int lw_yield(lua_State *L, lua_KContext ctx, lua_KFunction k) {
  State *S = upstate(L);
  Task *t = S->current;
  int n = lua_gettop(L), i, r;
  if (t == NULL) return luaL_error(L, "weft: a wait outside its task");
  /* A continuation that waits again may hold more than its first wait
   * made room for, and a wait may not have come through lw_in_task (the
   * watcher of weft_lua_spawn): room now, on memory that is then short
   * only in a rare case. */
  if (t->kframe == LUA_NOREF || n > t->kcap) need_frame(L, t);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->kframe);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_pop(L, 1);
  t->kn = n;
  t->k = k;
  t->kctx = ctx;
  t->kco = L;
  r = lua_yield(L, 0); /* lw_in_task checked that it may */
  t->kwait = 1;
  return r;
}

/* The second call of a wrapped function, with LW_CONT: restores the frame
 * lw_yield saved and runs its continuation. Only as the driver's resume
 * left it: a script can reach LW_CONT (debug.getupvalue) and call the
 * function with it. */
static int cont(lua_State *L) {
  State *S = upstate(L);
  Task *t = S->current;
  lua_KFunction k;
  int i, n;
  if (t == NULL || t->k == NULL || t->kco != L)
    return luaL_error(L, "weft: a wait resumed out of turn");
  k = t->k;
  n = t->kn;
  t->k = NULL;
  lua_settop(L, 0);
  luaL_checkstack(L, n + 1, "weft: resuming a wait");
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->kframe);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_pushnil(L); /* the table keeps nothing alive */
    lua_rawseti(L, 1, i);
  }
  lua_remove(L, 1);
  return k(L, LUA_YIELD, t->kctx);
}

/* A wrapped function is a C closure with its own upvalues, then a Tramp
 * (tagged: see About userdata tags) holding the function itself. */
typedef struct Tramp {
  const char *tag;
  lua_CFunction f;
} Tramp;
static const char TRAMP_TAG[] = "weft.Wrapped";

static int tramp(lua_State *L, int nup) {
  Tramp *tr = lw_toudata(L, lua_upvalueindex(nup + 1), sizeof *tr,
                         TRAMP_TAG);
  int n;
  if (tr == NULL)
    return luaL_error(L, "weft: corrupted upvalue %d", nup + 1);
  if (lua_type(L, 1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, 1) == LW_CONT)
    n = cont(L);
  else
    n = tr->f(L);
  if (n < 0) return n; /* it yields: lw_yield */
  luaL_checkstack(L, 1, "weft: returning");
  lua_pushlightuserdata(L, LW_DONE);
  lua_insert(L, -(n + 1));
  return n + 1;
}
static int tramp1(lua_State *L) { return tramp(L, 1); }
static int yield_again(lua_State *L) { return lua_yield(L, 0); }
static int all_args(lua_State *L) { return lua_gettop(L); }
static int tramp2(lua_State *L) { return tramp(L, 2); }
static int tramp3(lua_State *L) { return tramp(L, 3); }
static int tramp4(lua_State *L) { return tramp(L, 4); }
static const lua_CFunction tramps[] = {tramp1, tramp2, tramp3, tramp4};

/* The wrapper: f(...) runs; if it waited, it returns LW_CONT once resumed,
 * and f(LW_CONT) finishes it, as often as it waits again; resumed with
 * anything else, it waits on. fin is made once per state. Each wrapper
 * calls fin through all (no tail call), so that a traceback from the continuation shows the
 * wrapper under the name the script called it by. */
static const char fin_src[] =
    "local CONT, DONE, yield = ...\n"
    "local function fin(f, x, ...)\n"
    "  if x == DONE then return ... end\n"
    "  if x == CONT then return fin(f, f(CONT)) end\n"
    "  return fin(f, yield())\n"
    "end\n"
    "return fin\n";

static const char wrapper_src[] =
    "local fin, all, f = ...\n"
    "return function(...) return all(fin(f, f(...))) end\n";

void lw_wrap_wait(lua_State *L) {
  State *S = lw_find_state(L);
  lua_CFunction f = lua_tocfunction(L, -1);
  int nup = 0;
  Tramp *tr;
  if (S == NULL || f == NULL) luaL_error(L, "weft: wrapping a wait");
  /* [closure] -> [closure, its upvalues..., tr] -> [tramp] */
  while (lua_getupvalue(L, -1 - nup, nup + 1) != NULL) nup++;
  if (nup < 1 || nup > 4) luaL_error(L, "weft: wrapping a wait");
  tr = lua_newuserdatauv(L, sizeof *tr, 0);
  tr->tag = TRAMP_TAG;
  tr->f = f;
  lua_pushcclosure(L, tramps[nup - 1], nup + 1);
  lua_remove(L, -2);
  if (S->wrap_ref == LUA_NOREF) {
    if (luaL_loadbuffer(L, fin_src, sizeof fin_src - 1, "=weft.wrap"))
      lua_error(L);
    lua_pushlightuserdata(L, LW_CONT);
    lua_pushlightuserdata(L, LW_DONE);
    lua_pushcfunction(L, yield_again);
    lua_call(L, 3, 1);
    S->wrap_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (luaL_loadbuffer(L, wrapper_src, sizeof wrapper_src - 1, "=weft.wrap"))
    lua_error(L);                                   /* [tramp, chunk] */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->wrap_ref);   /* fin */
  lua_pushcfunction(L, all_args);
  lua_pushvalue(L, -4);                             /* the tramp */
  lua_call(L, 3, 1);
  lua_remove(L, -2);
}


void lw_wrap_fields(lua_State *L, int idx, const char *const *names) {
  idx = lua_absindex(L, idx);
  for (; *names; names++) {
    lua_getfield(L, idx, *names);
    lw_wrap_wait(L);
    lua_setfield(L, idx, *names);
  }
}
#else
void lw_wrap_wait(lua_State *L) { (void)L; }

void lw_wrap_fields(lua_State *L, int idx, const char *const *names) {
  (void)L;
  (void)idx;
  (void)names;
}

#endif

Task *lw_k_task(lua_State *L) {
  Task *t = upstate(L)->current;
  if (t == NULL || (L == t->co ? t->inner != NULL : L != t->inner))
    return NULL;
  return t;
}

/* ------------------------------------------------- nested coroutines */

/* A coroutine a task resumes may wait: the prelude's coroutine.resume and
 * wrap bracket each resume with co_enter and co_leave, and when the
 * coroutine yields because of a weft wait (co_waiting), yield the same way
 * themselves, up to the task's coroutine and the driver; when the driver
 * resumes the task, they resume the coroutine, whose wait goes on. The
 * task records the innermost such coroutine (Task.inner): the one where a
 * wait may begin and its continuation may run. */

/* I.co_enter(co) -> prev, prev_ok before resuming co from a task; nothing
 * outside one. */
static int co_enter(lua_State *L) {
  State *S = upstate(L);
  Task *t = S->current;
  lua_State *co = lua_tothread(L, 1);
  int ok;
  if (t == NULL || co == NULL) return 0;
  ok = lua_isyieldable(L) &&
       (L == t->co ? t->inner == NULL : (L == t->inner && t->inner_ok));
  lua_pushlightuserdata(L, t->inner);
  lua_pushboolean(L, t->inner_ok);
  t->inner = co;
  t->inner_ok = (unsigned char)ok;
  if (S->pre) lw_preempt_retarget(S->pre, ok ? co : NULL);
  return 2;
}

/* I.co_leave(prev, prev_ok) once the coroutine returned, failed or
 * yielded a value of its own. */
static int co_leave(lua_State *L) {
  State *S = upstate(L);
  Task *t = S->current;
  if (t == NULL || lua_type(L, 1) != LUA_TLIGHTUSERDATA) return 0;
  t->inner = lua_touserdata(L, 1);
  t->inner_ok = (unsigned char)lua_toboolean(L, 2);
  if (S->pre) lw_preempt_retarget(S->pre, t->inner == NULL ? t->co
                                          : t->inner_ok ? t->inner : NULL);
  return 0;
}

/* Whether the coroutine a resumer of task t's chain just resumed
 * suspended for weft (a wait or a preemption, its own or one deeper in
 * the chain): t then waits (parked or queued while its code runs only
 * then) or was preempted. */
static int passes_up(State *S, Task *t) {
  return t->inner != NULL &&
         (S->preempted || (t->t.flags & (WEFT_TASK_PARKED | WEFT_TASK_QUEUED)));
}

#if !LW_LUA51
/* coroutine.resume and coroutine.wrap in C, where continuations exist
 * (5.3 and later): what the prelude does in Lua on 5.1, at the cost of a
 * plain resume when no wait passes through. The resumer's stack holds
 * [co, prev, prev_ok] (co_enter's) while co runs or waits. */
static int is_task_thread(lua_State *L, State *S, int idx) {
  int r;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->task_cos_ref);
  lua_pushvalue(L, idx);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

/* lcorolib's auxresume: the values co gave, or -1 with an error on top. */
static int resume_co(lua_State *L, lua_State *co, int narg) {
  int status, nres;
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pushliteral(L, "cannot resume dead coroutine");
    return -1;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  status = lua_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

static int passed_k(lua_State *L, int st, lua_KContext ctx);

/* The end of a resume that failed, the error on top: false and the error
 * (resume, ctx 0), or the error raised (wrap, ctx 1). */
static int failed(lua_State *L, lua_KContext ctx) {
  if (ctx == 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  if (lua_type(L, -1) == LUA_TSTRING) { /* as lcorolib's wrap */
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* The end of a resume that gave r values (on top). */
static int gave(lua_State *L, int r, lua_KContext ctx) {
  if (ctx == 1) return r;
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

/* After a resume of co (at 1, [prev, prev_ok] at 2 and 3) that gave r:
 * passes a wait's yield up, or ends: pushes true and the values, or false
 * and the error, as coroutine.resume returns them; wrap (ctx 1) raises
 * the error instead. */
static int passed(lua_State *L, State *S, int r, lua_KContext ctx) {
  Task *t = S->current;
  if (r >= 0 && t && passes_up(S, t)) {
    lua_settop(L, 3);
    return lua_yieldk(L, 0, ctx, passed_k);
  }
  if (t) {
    t->inner = lua_touserdata(L, 2);
    t->inner_ok = (unsigned char)lua_toboolean(L, 3);
    if (S->pre)
      lw_preempt_retarget(S->pre, t->inner == NULL ? t->co
                                  : t->inner_ok ? t->inner : NULL);
  }
  return r < 0 ? failed(L, ctx) : gave(L, r, ctx);
}

/* The resumer, resumed: co goes on with its wait. Not inside a task: a
 * resume from outside weft (see lw_k_task), which must not run co's
 * wait: yield again. */
static int passed_k(lua_State *L, int st, lua_KContext ctx) {
  State *S = upstate(L);
  (void)st;
  if (S->current == NULL) return lua_yieldk(L, 0, ctx, passed_k);
  lua_settop(L, 3);
  return passed(L, S, resume_co(L, lua_tothread(L, 1), 0), ctx);
}

/* [co, args...] from index 1: resumes co through the task's chain.
 * wrap: ctx 1. */
static int pass_resume(lua_State *L, State *S, lua_KContext ctx) {
  lua_State *co = lua_tothread(L, 1);
  Task *t = S->current;
  int narg = lua_gettop(L) - 1, ok;
  if (t == NULL) { /* plain */
    int r = resume_co(L, co, narg);
    return r < 0 ? failed(L, ctx) : gave(L, r, ctx);
  }
  ok = lua_isyieldable(L) &&
       (L == t->co ? t->inner == NULL : (L == t->inner && t->inner_ok));
  lua_pushlightuserdata(L, t->inner);
  lua_pushboolean(L, t->inner_ok);
  lua_rotate(L, 2, 2); /* [co, prev, prev_ok, args...] */
  t->inner = co;
  t->inner_ok = (unsigned char)ok;
  if (S->pre) lw_preempt_retarget(S->pre, ok ? co : NULL);
  return passed(L, S, resume_co(L, co, narg), ctx);
}

/* I.co_resume(original) -> weft's coroutine.resume. The original is kept
 * as its upvalue 2, unused: reachable through the debug library, as the
 * Lua version's upvalue is on 5.1, so hostile scripts meet the same
 * guards (tests/regress/12-foreign-resume). */
static int co_resume_c(lua_State *L);
static int co_resume_make(lua_State *L) {
  State *S = upstate(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lw_push_state(L, S);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, co_resume_c, 2);
  return 1;
}

static int co_resume_c(lua_State *L) {
  State *S = upstate(L);
  luaL_argcheck(L, lua_type(L, 1) == LUA_TTHREAD, 1, "coroutine expected");
  if (is_task_thread(L, S, 1)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume the coroutine of a weft task");
    return 2;
  }
  return pass_resume(L, S, 0);
}

/* The function coroutine.wrap returns: co is its upvalue 2. */
static int co_wrapped(lua_State *L) {
  State *S = upstate(L);
  if (lua_type(L, lua_upvalueindex(2)) != LUA_TTHREAD ||
      is_task_thread(L, S, lua_upvalueindex(2))) /* debug.setupvalue */
    return luaL_error(L, "coroutine.wrap: corrupted upvalue 2");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  return pass_resume(L, S, 1);
}

static int co_wrap_c(lua_State *L) {
  State *S = upstate(L);
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lw_push_state(L, S);
  co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_wrapped, 2);
  return 1;
}
#endif

/* I.co_waiting() -> passes_up for the running task. */
static int co_waiting(lua_State *L) {
  State *S = upstate(L);
  Task *t = S->current;
  lua_pushboolean(L, t && passes_up(S, t));
  return 1;
}

Task *lw_need_task(lua_State *L, State *S, const char *fname) {
  Task *t = lw_in_task(L, S, fname);
  if (t->t.flags & WEFT_TASK_CANCEL) lw_raise_cancel(L, t);
  return t;
}

/* [co, task] -> records the traceback of the failed coroutine co (its
 * error on top) as task's EX_TRACE, with the task's story. Run protected
 * (it allocates). */
/* Pushes "#<id>" or "#<id> '<name>'" for the task whose userdata is at
 * idx. [-0, +1, m] */
static void push_label(lua_State *L, int idx) {
  Task *t = lua_touserdata(L, idx);
  if (lw_get_extra(L, idx, EX_NAME) == LUA_TSTRING)
    lua_pushfstring(L, "#" LW_I " '%s'", LW_INT(t->t.id), lua_tostring(L, -1));
  else
    lua_pushfstring(L, "#" LW_I, LW_INT(t->t.id));
  lua_remove(L, -2);
}

static int traceback(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  Task *t = internal_task(L, 2), *p = t->t.parent ? t->t.parent->data : 0;
  int n;
  if (co == NULL || lua_gettop(co) < 1)
    return luaL_error(L, "weft: an internal function called with a bad "
                         "argument");
  lua_settop(L, 2);
  if (lua_checkstack(co, 1)) { /* the error, a copy at 3 */
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
  } else {
    lua_pushnil(L);
  }
  luaL_traceback(L, co, NULL, 0);
  /* The story: the task that spawned this one (children of a Lua task
   * are Lua tasks: data is their Task)... */
  if (p) {
    lua_pushliteral(L, "\nspawned by task ");
    lw_push_task(L, p);
    push_label(L, -1);
    lua_remove(L, -2);
  }
  /* ...and the task that failed first, if this one raised again the
   * error it awaited from it (see note_cause), with its own story. */
  n = lua_gettop(L);
  if (lw_get_extra(L, 2, EX_CAUSE) == LUA_TUSERDATA &&
      lw_get_extra(L, -1, EX_TRACE) == LUA_TSTRING &&
      lua_getiuservalue(L, -2, UV_RESULT) != LUA_TNONE &&
      lua_rawequal(L, -1, 3)) {
    lua_pop(L, 1); /* [.., cause, trace] */
    lua_pushliteral(L, "\nthe error came from task ");
    push_label(L, -3);
    lua_pushliteral(L, ", awaited there, which failed:\n");
    lua_rotate(L, -5, -2); /* [.., here, label, which, cause, trace] */
    lua_remove(L, -2);
  } else {
    lua_settop(L, n);
  }
  lua_concat(L, lua_gettop(L) - 3);
  lw_set_extra(L, 2, EX_TRACE);
  return 0;
}

/* About Reaper: how a failure nobody observes is reported soon after it
 * happens, not when weft.run ends. A failed task gets a sentinel: a
 * userdata with a finalizer that only the task holds (EX_SENTINEL), and
 * that holds the task (its uservalue). Tasks and futures themselves have
 * no finalizer, so they are freed in one collection; and giving a new
 * object a finalizer is cheap, where giving one to an old object makes
 * Lua search its list of objects. A one-shot timer asks for a full
 * collection in the next loop iteration: a failed task that nobody holds
 * is then collected with its sentinel, whose finalizer reports it. One
 * that is held is reported when it is collected later, or when weft.run
 * ends. A full collection
 * costs time in proportion to the heap, so the next one waits at least
 * ten times as long as the last took (at most a tenth of the time goes
 * to them, however many tasks fail). The timer is unreferenced: it does
 * not keep the loop alive. */
typedef struct Reaper {
  Closer c;
  uv_timer_t timer;
  State *S;
  uint64_t next_ns; /* no collection before this uv_hrtime() */
} Reaper;

static void reaper_freed(uv_handle_t *h) {
  Reaper *r = h->data;
  void *ud;
  lua_Alloc a = lua_getallocf(r->S->home, &ud);
  r->S->reaper = NULL;
  a(ud, r, sizeof *r, 0);
}

static void reaper_close(Closer *c) {
  Reaper *r = lw_container(c, Reaper, c);
  uv_close((uv_handle_t *)&r->timer, reaper_freed);
}

static void reap(uv_timer_t *tm) {
  Reaper *r = tm->data;
  uint64_t t0 = uv_hrtime();
  lua_gc(r->S->L, LUA_GCCOLLECT, 0); /* finalizers report what it frees */
  r->next_ns = uv_hrtime() + 10 * (uv_hrtime() - t0);
}

/* Between two tasks of one scheduler run (which may run thousands): the
 * armed reaper's collection, if it is due, at once rather than at the
 * next loop iteration. A failure then frees its memory while the others
 * run, which matters when memory is short and every allocation that
 * fails costs Lua a full collection. */
static void reap_if_due(State *S) {
  Reaper *r = S->reaper;
  if (uv_is_active((uv_handle_t *)&r->timer) && uv_hrtime() >= r->next_ns) {
    uv_timer_stop(&r->timer);
    reap(&r->timer);
  }
}

/* Arms the reaper (made on first use; without memory for it, failures
 * are reported as before: when collected or when weft.run ends). */
static void reaper_arm(lua_State *L, State *S) {
  Reaper *r = S->reaper;
  uint64_t now = uv_hrtime();
  void *ud;
  if (r == NULL) {
    lua_Alloc a = lua_getallocf(L, &ud);
    if ((r = a(ud, NULL, 0, sizeof *r)) == NULL) return;
    memset(r, 0, sizeof *r);
    r->S = S;
    r->c.close = reaper_close;
    uv_timer_init(weft_loop_uv(S->loop), &r->timer);
    uv_unref((uv_handle_t *)&r->timer);
    r->timer.data = r;
    lw_closer_add(S, &r->c);
    S->reaper = r;
  }
  if (uv_is_active((uv_handle_t *)&r->timer)) return;
  uv_timer_start(&r->timer, reap,
                 r->next_ns > now ? (r->next_ns - now) / 1000000 + 1 : 0, 0);
}

/* Records t (its userdata at 1) in the table of failed tasks, so that
 * weft.run can report it if nobody observes it, and gives it the
 * metatable with a finalizer (see Reaper). */
static int note_failed(lua_State *L) {
  State *S = lw_find_state(L); /* not its light userdata: see above */
  internal_task(L, 1);
  if (S == NULL) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->failed_ref);
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_newuserdatauv(L, 0, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->mt_sentinel_ref);
  lua_setmetatable(L, -2); /* at once: see Reaper */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lw_set_extra(L, 1, EX_SENTINEL);
  reaper_arm(L, S);
  return 0;
}

/* The key of an LwOwned in a metatable: its address. */
static const char owned_key = 0;

void lw_set_owned_close(lua_State *L, const LwOwned *o) {
  State *S = lw_find_state(L);
  int i;
  if (S == NULL) return;
  for (i = 0; i < S->nowned && S->owned[i] != o; i++) continue;
  if (i == S->nowned) {
    if (i == LW_OWNED_MAX) return; /* a weft bug: LW_OWNED_MAX is short */
    S->owned[S->nowned++] = o;
  }
  lua_pushlightuserdata(L, (void *)o);
  lua_rawsetp(L, -2, &owned_key);
}

/* The LwOwned at idx if it is one the state listed, else NULL. */
static const LwOwned *known_owned(lua_State *L, State *S, int idx) {
  const void *p = lua_touserdata(L, idx);
  int i;
  for (i = 0; S && i < S->nowned; i++)
    if (S->owned[i] == p) return S->owned[i];
  return NULL;
}

/* [owned] -> closes each resource still there (popped). No Lua call, so
 * nothing to allocate: a task that ends while memory is short still lets
 * go of its connections and files. */
static void close_owned(lua_State *L) {
  int t = lua_gettop(L);
  State *S = lw_find_state(L); /* allocates nothing */
  const LwOwned *o;
  void *ud;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_getmetatable(L, -1)) {
      if (lua_rawgetp(L, -1, &owned_key) == LUA_TLIGHTUSERDATA &&
          (o = known_owned(L, S, -1)) != NULL &&
          (ud = lw_toudata(L, -3, o->size, o->tag)) != NULL)
        o->close(L, ud);
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
}

void lw_task_own(lua_State *L, Task *t, int idx) {
  idx = lua_absindex(L, idx);
  lw_push_task(L, t);
  if (lw_get_extra(L, -1, EX_OWNED) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lw_set_extra(L, -3, EX_OWNED);
  }
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

/* The end of a task: closes what it owned, frees its coroutine and
 * anchor, settles it as state. The userdata is on top of S->L; popped. */
static void end_task(State *S, Task *t, int state) {
  lua_State *L = S->L;
  int grouped;
  if (lw_get_extra(L, -1, EX_OWNED) == LUA_TTABLE)
    close_owned(L);
  else
    lua_pop(L, 1);
  if (t->h.res != RES_THREAD) {
    lua_pushnil(L);
    lua_setiuservalue(L, -2, UV_CO);
  }
  t->co = NULL;
  lua_pop(L, 1);
  grouped = t->t.group != NULL;
  weft_task_finish(&t->t, state, state == WEFT_FUTURE_REJECTED ? WEFT_ESCRIPT : 0);
  if (grouped) /* its group, or the joiner it went to, hands it out */
    t->gref = t->ref;
  else
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
#if LW_LUA51
  luaL_unref(L, LUA_REGISTRYINDEX, t->kframe);
  t->kframe = LUA_NOREF;
  t->k = NULL;
#endif
  t->ref = LUA_NOREF;
}

/* Keeps the coroutine of a task that returned for a later task: its stack
 * is empty and its status LUA_OK, as a new one's. The pool table was sized
 * for CO_POOL_MAX, so this never allocates. The coroutine is on top of L;
 * popped. */
static void pool_co(State *S, lua_State *L, Task *t) {
  lua_State *co = t->co;
  if (S->co_pool_n < CO_POOL_MAX && !t->exposed && lua_status(co) == LUA_OK &&
      lua_gettop(co) == 0) {
    lua_sethook(co, NULL, 0, 0); /* a hook the task set must not stay */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->co_pool_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, ++S->co_pool_n);
  }
  lua_pop(L, 1);
}

static void done_ok(State *S, Task *t, int nres) {
  lua_State *L = S->L;
  lw_push_task(L, t);
  t->h.nres = nres;
  if (nres <= 1) {
    if (nres == 1) {
      lua_xmove(t->co, L, 1);
      lua_setiuservalue(L, -2, UV_RESULT);
      t->h.res = RES_ONE;
    }
    lua_getiuservalue(L, -1, UV_CO);
    pool_co(S, L, t);
  } else {
    lua_getiuservalue(L, -1, UV_CO); /* keep the dead thread as holder */
    lua_setiuservalue(L, -2, UV_RESULT);
    t->h.res = RES_THREAD;
  }
  end_task(S, t, WEFT_FUTURE_FULFILLED);
}

/* Closes the pending to-be-closed variables of a coroutine that failed:
 * lua_resume leaves them open on error. A __close error replaces the
 * error on top, as it would in Lua itself. */
static void close_thread(lua_State *co, lua_State *from) {
#if LW_NO_RESET
  (void)co;
  (void)from;
#elif LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(co, from);
#else
  (void)from;
  lua_resetthread(co);
#endif
}

static void done_err(State *S, Task *t) {
  lua_State *L = S->L;
  int cancelled, top;
  lw_push_task(L, t);
  top = lua_gettop(L);
  lua_xmove(t->co, L, 1); /* look at the error without growing co */
  /* A task that ends by a cancellation error ends cancelled, its own or
   * one it met awaiting a cancelled future and did not catch (as in
   * asyncio): never reported as a failure. */
  cancelled = lw_is_error(L, -1, "cancelled");
  lua_xmove(L, t->co, 1);
  /* The traceback needs the frames, so take it before closing. */
  if (!cancelled) {
    lua_pushcfunction(L, traceback);
    lua_getiuservalue(L, top, UV_CO);
    lua_pushvalue(L, top);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1); /* no memory */
  }
  S->current = t; /* __close handlers run as part of the task */
  /* Not a coroutine that was dead before this resume (closed from
   * outside weft: see lw_k_task): resetting it would drop the error. */
  if (lua_status(t->co) != LUA_OK) close_thread(t->co, L);
  S->current = NULL;
  lua_xmove(t->co, L, 1);
  lua_setiuservalue(L, top, UV_RESULT);
  t->h.res = RES_ONE;
  t->h.nres = 1;
  if (!cancelled) {
    lua_pushcfunction(L, note_failed);
    lua_pushvalue(L, top);
    lua_pushlightuserdata(L, S);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  end_task(S, t, cancelled ? WEFT_FUTURE_CANCELLED : WEFT_FUTURE_REJECTED);
}

/* Moves the task's function and arguments onto co and makes co its
 * coroutine: the function is in UV_CO, a single argument in UV_RESULT
 * (unused until the task ends), several in a table {fn, args...} in
 * UV_CO. The task is at index ti of L, co on top (popped). Needs
 * nargs + 2 free slots on L and nargs + 1 on co; allocates nothing. */
static void give_co(lua_State *L, Task *t, int ti, lua_State *co) {
  int i;
  lua_getiuservalue(L, ti, UV_CO);
  if (t->nargs == 1) {
    lua_getiuservalue(L, ti, UV_RESULT);
    lua_pushnil(L);
    lua_setiuservalue(L, ti, UV_RESULT);
  } else if (t->nargs > 1) {
    for (i = 1; i <= t->nargs + 1; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(t->nargs + 2));
  }
  lua_xmove(L, co, t->nargs + 1);
  lua_setiuservalue(L, ti, UV_CO);
  t->co = co;
}

/* Pushes the last pooled coroutine and takes it out of the pool; nothing
 * allocates (the slot is in the table's array part). */
static lua_State *unpool_co(State *S, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->co_pool_ref);
  lua_rawgeti(L, -1, S->co_pool_n);
  lua_pushnil(L);
  lua_rawseti(L, -3, S->co_pool_n--);
  lua_remove(L, -2);
  return lua_tothread(L, -1);
}

/* [task] -> gives the task a new coroutine with its function and
 * arguments on it. Run protected: it allocates. */
static int start_co(lua_State *L) {
  Task *t = internal_task(L, 1);
  lua_State *co;
  if (t->nargs < 0 || t->co != NULL) /* not at its first run */
    return luaL_error(L, "weft: start_co called again");
  lw_push_task(L, t);
  co = lua_newthread(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->h.S->task_cos_ref);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_checkstack(co, t->nargs + 1 + LUA_MINSTACK, "weft.spawn");
  luaL_checkstack(L, t->nargs + 2, "weft.spawn");
  give_co(L, t, 2, co);
  return 0;
}

/* Gives a task at its first run its coroutine: a pooled one when there is
 * one (no allocation, no protected call), else a new one. 0 or an error
 * status with the error on top of S->L. */
static int first_co(State *S, Task *t) {
  lua_State *L = S->L, *co;
  if (S->co_pool_n > 0 && lua_checkstack(L, t->nargs + 4)) {
    lw_push_task(L, t);
    co = unpool_co(S, L);
    if (lua_checkstack(co, t->nargs + 1)) {
      give_co(L, t, lua_gettop(L) - 1, co);
      lua_pop(L, 1);
      return LUA_OK;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->co_pool_ref); /* put it back */
    lua_insert(L, -2);
    lua_rawseti(L, -2, ++S->co_pool_n);
    lua_pop(L, 2);
  }
  lua_pushcfunction(L, start_co);
  lw_push_task(L, t); /* anchored: a running task is in the registry */
  return lua_pcall(L, 1, 0, 0);
}

/* The first run of a task cancelled before it ever ran: it ends cancelled
 * without a coroutine, and drops its argument. */
static void end_unstarted(State *S, Task *t) {
  t->nargs = -1;
  lw_push_task(S->L, t);
  lua_pushnil(S->L); /* the argument, if one waited there */
  lua_setiuservalue(S->L, -2, UV_RESULT);
  end_task(S, t, WEFT_FUTURE_CANCELLED);
}

/* Gives a task at its first run its coroutine. Out of memory, ends it
 * rejected with that error and returns 0. */
static int begin(State *S, Task *t) {
  int r = first_co(S, t);
  t->nargs = -1;
  if (r == LUA_OK) return 1;
  lw_push_task(S->L, t);
  lua_insert(S->L, -2);
  lua_setiuservalue(S->L, -2, UV_RESULT);
  t->h.res = RES_ONE;
  t->h.nres = 1;
  end_task(S, t, WEFT_FUTURE_REJECTED);
  return 0;
}

/* Pushes the task and its coroutine; returns the coroutine's index, or 0
 * when the task ended instead. The coroutine is anchored by the task's
 * UV_CO, which a script can replace (debug.setuservalue): t->co is
 * resumed only if UV_CO still holds it (otherwise it may be freed
 * already, and the task ends cancelled), and it stays on S->L while it
 * runs and its end is dealt with, reachable whatever the task does to
 * UV_CO. */
static int push_co(State *S, Task *t) {
  lw_push_task(S->L, t);
  if (lua_getiuservalue(S->L, -1, UV_CO) != LUA_TTHREAD ||
      lua_tothread(S->L, -1) != t->co) {
    lua_pop(S->L, 1); /* the task is on top, for end_task */
    t->co = NULL;
    end_task(S, t, WEFT_FUTURE_CANCELLED);
    return 0;
  }
  return lua_gettop(S->L);
}

/* Resumes the task's coroutine (at index coi of S->L, the task below it)
 * as the current task, under preemption when it is on. A coroutine that
 * ended is put back in UV_CO, which done_ok and done_err read. Returns
 * lua_resume's status. */
static int resume(State *S, Task *t, int coi, int nargs, int *nres) {
  int r;
  S->current = t;
#if LW_LUA51
  if (t->kwait && lua_checkstack(t->co, 1)) {
    t->kwait = 0;
    lua_pushlightuserdata(t->co, LW_CONT);
    nargs++;
  }
#endif
  if (S->pre)
    lw_preempt_begin(S->pre, t->inner == NULL ? t->co
                             : t->inner_ok ? t->inner : NULL);
  r = lua_resume(t->co, S->L, nargs, nres);
  if (S->pre) lw_preempt_end(S->pre, t->co);
  S->current = NULL;
  if (r != LUA_YIELD) {
    lua_pushvalue(S->L, coi);
    lua_setiuservalue(S->L, coi - 1, UV_CO);
  }
  return r;
}

/* A task whose coroutine yielded nres values: it waits, or is put back in
 * the ready queue. */
static void yielded(State *S, Task *t, int nres) {
  weft_task_t *ct = &t->t;
  if (S->preempted) {
    /* Preempted (preempt.c) in its Lua code, so neither parked nor
     * queued: a 0 ms sleep from the current time puts it behind the tasks
     * whose timers came due while it ran, and weft_sched_stop ends this
     * run so that the loop fires them at once. */
    S->preempted = 0;
    weft_loop_update_time(S->loop);
    if (weft_task_sleep(ct, 0) != WEFT_PENDING) weft_task_yield(ct);
    weft_sched_stop(S->sched);
  } else if (!(ct->flags & (WEFT_TASK_PARKED | WEFT_TASK_QUEUED))) {
    /* A weft wait parks or queues the task. A bare coroutine.yield()
     * from the task body did neither: treat it as weft.yield(). */
    lua_pop(t->co, nres);
    weft_task_yield(ct);
  }
}

/* The resume function of every Lua task: its first run, one resume, and
 * what the resume's outcome means. It never raises: lua_resume catches
 * the task's errors, and what it does itself after the resume either
 * cannot fail or runs protected. */
static int task_fn(weft_task_t *ct, int status) {
  Task *t = lw_container(ct, Task, t);
  State *S = t->h.S;
  int nargs = 0, nres = 0, r, coi;
  /* S->L is the driver's stack (or the main thread's when a host's own
   * uv loop runs us); this function pushes at most a few values. A failed
   * check cannot raise here; it only means the pushes below may fail. */
  (void)lua_checkstack(S->L, 8);
  if (t->nargs >= 0) { /* first run */
    nargs = t->nargs;
    if (status == WEFT_ECANCELED) { /* cancelled before it ever ran */
      end_unstarted(S, t);
      return WEFT_PENDING;
    }
    if (!begin(S, t)) return WEFT_PENDING;
  }
  t->status = status;
  if ((coi = push_co(S, t)) == 0) return WEFT_PENDING;
  r = resume(S, t, coi, nargs, &nres);
  if (r == LUA_YIELD)
    yielded(S, t, nres);
  else if (r == LUA_OK)
    done_ok(S, t, nres);
  else
    done_err(S, t);
  lua_settop(S->L, coi - 2);
  if (S->reaper) reap_if_due(S);
  return WEFT_PENDING;
}

/* Makes a task running the function at index fi with the arguments above
 * it, anchored in the registry but not started; pushes it. name_idx is 0
 * or the index of its name (a string). [-0, +1, m] */
static Task *new_task(lua_State *L, State *S, int fi, int name_idx) {
  int top = lua_gettop(L), nargs = top - fi, i;
  Task *t = lua_newuserdatauv(L, sizeof *t, UV_TASK_COUNT);
  memset(t, 0, sizeof *t);
  t->ref = t->gref = LUA_NOREF;
#if LW_LUA51
  t->kframe = LUA_NOREF;
#endif
  t->nargs = -1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->mt_future_ref);
  lua_setmetatable(L, -2);
  t->h.S = S;
  t->h.kind = KIND_TASK;
  weft_future_init(&t->t.done); /* valid even if what follows fails */
  t->t.flags = WEFT_TASK_DONE;
  if (name_idx) { /* a string (checked): alone in UV_EXTRA */
    lua_pushvalue(L, name_idx);
    lua_setiuservalue(L, -2, UV_EXTRA);
  }
  t->co = NULL; /* made at the first run: see start_co */
  if (nargs <= 1) { /* no table: see give_co */
    if (nargs == 1) {
      lua_pushvalue(L, fi + 1);
      lua_setiuservalue(L, -2, UV_RESULT);
    }
    lua_pushvalue(L, fi);
  } else {
    lua_createtable(L, nargs + 1, 0);
    for (i = fi; i <= top; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, i - fi + 1);
    }
  }
  lua_setiuservalue(L, -2, UV_CO);
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Nothing below can fail: the task is fully owned by Lua objects. */
  t->nargs = nargs;
  t->t.data = t;
  return t;
}

/* Creates a task running the function at index fi with the arguments above
 * it; pushes the task. name_idx is 0 or the index of its name (a string).
 * [-0, +1, m] */
int lw_spawn_at(lua_State *L, State *S, int fi, int prio, int name_idx) {
  Task *t = new_task(L, S, fi, name_idx);
  weft_task_start(S->sched, &t->t, task_fn, prio,
                  S->current ? &S->current->t : NULL);
  return 1;
}

/* Parses [opts,] fn, ... from index first and spawns; pushes the task. */
int lw_spawn(lua_State *L, State *S, int first, const char *fname) {
  int fi = first, prio = WEFT_PRIO_NORMAL, name_idx = 0;
  if (lua_istable(L, first)) {
    fi = first + 1;
    lua_getfield(L, first, "priority");
    if (!lua_isnil(L, -1)) {
      const char *name = lua_tostring(L, -1);
      for (prio = 0; name && lw_prio_names[prio]; prio++)
        if (strcmp(name, lw_prio_names[prio]) == 0) break;
      if (name == NULL || lua_type(L, -1) != LUA_TSTRING ||
          lw_prio_names[prio] == NULL)
        return luaL_error(L, "%s: opts.priority must be one of critical, "
                             "high, normal, low, idle (got %s)", fname,
                          luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
    lua_getfield(L, first, "name");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "%s: opts.name must be a string", fname);
    lua_replace(L, first); /* the name takes the place of the opts table */
    if (!lua_isnil(L, first)) name_idx = first;
  }
  if (lua_type(L, fi) != LUA_TFUNCTION)
    return luaL_error(L, "%s: expected a function, got %s", fname,
                      luaL_typename(L, fi));
  return lw_spawn_at(L, S, fi, prio, name_idx);
}

static uint64_t check_ms(lua_State *L, int idx, const char *fname);

/* The resume function of a weft.after task (task_fn wrapped): its first
 * dispatch parks it, still without a coroutine, on its timer for what is
 * left of its delay (u.due is 0 from then on), and the wake-up, or that
 * dispatch when no time is left, is fn's first run. A cancel before then
 * wakes it with WEFT_ECANCELED, which task_fn's first run takes: the task
 * ends without running fn, and the timer was disarmed by the wake-up.
 *
 * The timer is armed lazily, at the first dispatch, rather than in
 * weft.after, and this is measured: a task cancelled before its first
 * dispatch never touches the timer heap (W4a), nor does one whose deadline
 * passed before it (a burst of weft.after calls that outlasts their
 * delays, W4b). A timer armed in weft.after that starts the task when it
 * fires (a core weft_task_start_after, the task parked on its own timer
 * from the start) was tried and is slower: at 100,000 timers under
 * callgrind, 603 and 728 million instructions for W4a and W4b against 580
 * and 677; at 1,000,000, natively, 1.0 s and 2.4 s of CPU against 0.64 s
 * and 1.6 s, and 8 MB more memory (a heap slot per pending timer). */
static int after_fn(weft_task_t *ct, int status) {
  Task *t = lw_container(ct, Task, t);
  State *S = t->h.S;
  uint64_t now;
  if (t->nargs < 0 || status != 0 || t->u.due == 0) /* 0: slept */
    return task_fn(ct, status);
  weft_loop_update_time(S->loop);
  now = weft_sched_now(S->sched);
  if (t->u.due <= now) return task_fn(ct, 0);
  if (weft_task_sleep(ct, t->u.due - now) == WEFT_PENDING)
    t->u.due = 0;
  else
    weft_task_yield(ct); /* no memory for the timer: try again later */
  return WEFT_PENDING;
}

/* I.spawn_after(ms, fn, ...) -> Task named "after" that runs fn(...)
 * once ms have passed since this call (checked by the prelude), through
 * after_fn. Upvalue 2 is the name, made once. */
static int l_spawn_after(lua_State *L) {
  State *S = upstate(L);
  uint64_t ms = check_ms(L, 1, "weft.after");
  Task *t;
  if (lua_type(L, lua_upvalueindex(2)) != LUA_TSTRING) /* debug.setupvalue */
    return luaL_error(L, "weft.after: corrupted upvalue 2 (its name)");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_replace(L, 1);
  t = new_task(L, S, 2, 1);
  weft_loop_update_time(S->loop);
  t->u.due = weft_sched_now(S->sched) + ms;
  if (t->u.due < ms) t->u.due = WEFT_FOREVER - 1; /* overflow: never */
  weft_task_start(S->sched, &t->t, after_fn, WEFT_PRIO_NORMAL,
                  S->current ? &S->current->t : NULL);
  return 1;
}

/* weft.spawn([opts,] fn, ...) -> Task */
static int l_spawn(lua_State *L) {
  return lw_spawn(L, upstate(L), 1, "weft.spawn");
}

/* ------------------------------------------------------------ the waits */

static int await_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, await_k);
  (void)st;
  (void)ctx;
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  lw_checkfut(L, upstate(L), 1, "await"); /* debug.setlocal reaches it */
  return lw_push_outcome(L, 1);
}

/* weft.await(f), f:await() -> the values of f, or raises its error */
static int f_await(lua_State *L) {
  State *S = upstate(L);
  Fut *f = lw_checkfut(L, S, 1, "await");
  Task *t = lw_need_task(L, S, "await");
  lua_settop(L, 1);
  if (lw_future(f)->state == WEFT_FUTURE_PENDING) {
    if (f == &t->h) return luaL_error(L, "await: a task cannot await itself");
    if (weft_task_await(&t->t, lw_future(f), WEFT_FOREVER) == WEFT_ENOMEM)
      return luaL_error(L, "await: not enough memory");
    return lw_yield(L, 0, await_k);
  }
  return lw_push_outcome(L, 1);
}

static uint64_t check_ms(lua_State *L, int idx, const char *fname) {
  lua_Number ms = luaL_checknumber(L, idx);
  if (!(ms >= 0)) /* also rejects NaN */
    luaL_error(L, "%s: ms must be a non-negative number", fname);
  if (ms >= 1.8e19) return WEFT_FOREVER - 1;
  return (uint64_t)ceil(ms);
}

int lw_wake_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, lw_wake_k);
  (void)st;
  (void)ctx;
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  return 0;
}

/* weft.sleep(ms) */
static int l_sleep(lua_State *L) {
  State *S = upstate(L);
  uint64_t ms = check_ms(L, 1, "weft.sleep");
  Task *t = lw_need_task(L, S, "weft.sleep");
  weft_loop_update_time(S->loop); /* at least ms from now, not from the
                                     start of this loop step */
  if (weft_task_sleep(&t->t, ms) == WEFT_ENOMEM)
    return luaL_error(L, "weft.sleep: not enough memory");
  return lw_yield(L, 0, lw_wake_k);
}

/* A yielding task waits in the ready queue, not parked, so a cancel that
 * arrives meanwhile does not change its wake-up status: test the flag,
 * so that the yield itself raises, as any other wait would. */
static int yield_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, yield_k);
  (void)st;
  (void)ctx;
  if (t->t.flags & WEFT_TASK_CANCEL) lw_raise_cancel(L, t);
  return 0;
}

/* weft.yield() */
static int l_yield(lua_State *L) {
  State *S = upstate(L);
  Task *t = lw_need_task(L, S, "weft.yield");
  weft_task_yield(&t->t);
  return lw_yield(L, 0, yield_k);
}

/* A deadline that fired in the loop step in which f settled loses: f's
 * outcome is there to be taken. */
static int wait_for_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, wait_for_k);
  (void)st;
  (void)ctx;
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  lua_pushboolean(L, t->status != WEFT_ETIMEDOUT ||
                         lw_future(lw_checkfut(L, upstate(L), 1,
                                               "weft.timeout"))->state !=
                             WEFT_FUTURE_PENDING);
  return 1;
}

/* Whether u waits for t through a chain of unwinds: u is t, or waits in
 * unwind for a task that does. A task is followed only while its wait is
 * linked: the task it waits for has not ended, and is anchored. The
 * chain has no cycle (unwind_k never closes one); the bound only guards
 * against a stale link. */
static int unwinds_into(Task *u, Task *t) {
  int n;
  for (n = 0; u != NULL && n < 1 << 16; n++) {
    if (u == t) return 1;
    u = weft_waiter_linked(&u->t.wait) ? u->unwinding : NULL;
  }
  return 0;
}

/* Waits for the first task from index i of the list at 1 that has not
 * ended; returns once every one has. The caller's own cancellation does
 * not end this wait (it wakes it, and it waits again): see l_unwind. A
 * task that itself waits, through unwinds, for the caller is skipped:
 * two tasks timing each other out would otherwise wait for each other
 * forever. */
static int unwind_k(lua_State *L, int st, lua_KContext i) {
  State *S = upstate(L);
  Task *t = lw_k_task(L);
  /* A list replaced by debug.setlocal ends the wait. */
  lua_Integer n = lua_istable(L, 1) ? (lua_Integer)lua_rawlen(L, 1) : 0;
  Fut *f;
  (void)st;
  if (t == NULL) return lw_yield(L, i, unwind_k);
  t->unwinding = NULL;
  for (; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    f = lw_tofut(L, S, -1);
    lua_pop(L, 1);
    if (f == NULL || f->kind != KIND_TASK ||
        lw_future(f)->state != WEFT_FUTURE_PENDING ||
        unwinds_into((Task *)f, t))
      continue;
    weft_task_await(&t->t, lw_future(f), WEFT_FOREVER); /* no alloc */
    t->unwinding = (Task *)f;
    return lw_yield(L, i, unwind_k);
  }
  return 0;
}

/* internal.unwind(list): waits until every task in list has ended, as a
 * combinator or weft.timeout does after cancelling the tasks it gave up
 * on, so that their cleanup (pcall handlers, to-be-closed variables) has
 * run when it returns or raises. It waits even if the caller is
 * cancelled meanwhile; that cancellation is raised by the caller's next
 * wait. Other items are skipped. */
static int l_unwind(lua_State *L) {
  lw_in_task(L, upstate(L), "weft.unwind");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  return unwind_k(L, LUA_OK, 1);
}

/* internal.wait_for(f, ms) -> true if f settled within ms, else false */
static int l_wait_for(lua_State *L) {
  State *S = upstate(L);
  Fut *f = lw_checkfut(L, S, 1, "weft.timeout");
  uint64_t ms = check_ms(L, 2, "weft.timeout");
  Task *t = lw_need_task(L, S, "weft.timeout");
  int r;
  if (f == &t->h)
    return luaL_error(L, "weft.timeout: a task cannot await itself");
  weft_loop_update_time(S->loop);
  r = weft_task_await(&t->t, lw_future(f), ms);
  if (r == WEFT_ENOMEM) return luaL_error(L, "weft.timeout: not enough memory");
  if (r == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return lw_yield(L, 0, wait_for_k);
}

/* ----------------------------------------------------------- combinators */

enum { C_ALL = 1, C_SETTLED, C_RACE, C_ANY };

/* About Combo: the waiters a combinator hangs on its items. It lives in a
 * userdata on the stack of the waiting task (with the item list as its
 * uservalue, so the items outlive it); the item callbacks only count and
 * record the deciding index, then settle done, which wakes the task. */
typedef struct Combo {
  const char *tag; /* COMBO_TAG: see About userdata tags */
  weft_future_t done;
  int kind, n, left, decisive;
  weft_waiter_t w[1];
} Combo;

static void combo_detach(Combo *c) {
  int i;
  for (i = 0; i < c->n; i++) weft_waiter_remove(&c->w[i]);
}

static void combo_item(Combo *c, int i, int state) {
  int ok = state == WEFT_FUTURE_FULFILLED;
  if (c->done.state != WEFT_FUTURE_PENDING) return;
  switch (c->kind) {
  case C_ALL:
    if (!ok) c->decisive = i + 1;
    break;
  case C_RACE: c->decisive = i + 1; break;
  case C_ANY:
    if (ok) c->decisive = i + 1;
    break;
  default: break;
  }
  if (c->decisive || --c->left == 0) {
    combo_detach(c);
    weft_future_fulfill(&c->done);
  }
}

static void combo_cb(weft_waiter_t *w, int state) {
  Combo *c = w->data;
  combo_item(c, (int)(w - c->w), state);
}

static const char COMBO_TAG[] = COMBO_MT;

static size_t combo_size(int n) {
  return sizeof(Combo) + (size_t)(n > 1 ? n - 1 : 0) * sizeof(weft_waiter_t);
}

/* The combo at idx, or NULL: a tag, and the size for its n waiters. */
static Combo *tocombo(lua_State *L, int idx) {
  Combo *c = lua_touserdata(L, idx);
  size_t len = lua_rawlen(L, idx);
  if (c == NULL || len < sizeof *c || c->tag != COMBO_TAG ||
      len != combo_size(c->n))
    return NULL;
  return c;
}

/* __gc: the waiting task's stack holds the combo, but debug.setlocal can
 * replace it there, so the task, parked on c->done, is woken before the
 * memory goes (wait_k then finds the combo gone and raises). */
static int combo_gc(lua_State *L) {
  Combo *c = tocombo(L, 1);
  if (c == NULL) return 0;
  combo_detach(c);
  if (c->done.state == WEFT_FUTURE_PENDING) weft_future_fulfill(&c->done);
  return 0;
}

static int wait_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, wait_k);
  Combo *c = tocombo(L, 3); /* debug.setlocal could have replaced it */
  (void)st;
  (void)ctx;
  if (c == NULL) return luaL_error(L, "weft.wait: its state was replaced");
  combo_detach(c);
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  lua_pushinteger(L, c->decisive);
  return 1;
}

/* internal.wait(kind, list) -> index of the deciding item, or 0 when all
 * items settled without one. Marks every item observed. */
static int l_wait(lua_State *L) {
  State *S = upstate(L);
  lua_Integer kind = luaL_checkinteger(L, 1);
  Task *t = lw_need_task(L, S, "weft.wait");
  Combo *c;
  size_t len;
  int n, i;
  if (kind < C_ALL || kind > C_ANY)
    return luaL_error(L, "weft.wait: kind must be an integer from %d to %d, "
                         "got " LW_I, C_ALL, C_ANY, LW_INT(kind));
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  if ((len = lua_rawlen(L, 2)) > 0x7fffffff / sizeof(weft_waiter_t))
    return luaL_error(L, "weft.wait: too many items");
  n = (int)len;
  c = lua_newuserdatauv(L, combo_size(n), 1);
  memset(c, 0, sizeof *c);
  c->tag = COMBO_TAG;
  weft_future_init(&c->done);
  c->kind = (int)kind;
  c->left = n;
  luaL_setmetatable(L, COMBO_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 1);
  for (i = 0; i < n; i++) {
    Fut *f;
    lua_rawgeti(L, 2, i + 1);
    f = lw_checkfut(L, S, -1, "weft.wait");
    lua_pop(L, 1);
    f->observed = 1;
    weft_waiter_init(&c->w[i], combo_cb, c);
  }
  c->n = n;
  for (i = 0; i < n && c->done.state == WEFT_FUTURE_PENDING; i++) {
    Fut *f;
    lua_rawgeti(L, 2, i + 1);
    f = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (lw_future(f)->state != WEFT_FUTURE_PENDING)
      combo_item(c, i, lw_future(f)->state);
    else
      weft_future_on(lw_future(f), &c->w[i]);
  }
  if (n == 0 || c->done.state != WEFT_FUTURE_PENDING) {
    combo_detach(c);
    lua_pushinteger(L, c->decisive);
    return 1;
  }
  weft_task_await(&t->t, &c->done, WEFT_FOREVER); /* no deadline: no alloc */
  return lw_yield(L, 0, wait_k);
}

/* ------------------------------------------------------------ promises */

/* The promise of resolve or reject: upvalue 2 (1 is the state), checked
 * (debug.setupvalue can replace it). */
static Promise *uppromise(lua_State *L, const char *fname) {
  Fut *f = lw_tofut(L, upstate(L), lua_upvalueindex(2));
  if (f == NULL || f->kind != KIND_PROMISE)
    lw_type_error(L, lua_upvalueindex(2), "weft.Future (upvalue 2)", fname);
  return (Promise *)f;
}

/* resolve(...) -> true if this call settled the future, false if it was
 * settled already (a late or duplicate completion does nothing). */
static int promise_resolve(lua_State *L) {
  Promise *p = uppromise(L, "resolve");
  int n = lua_gettop(L), i;
  if (p->fut.state != WEFT_FUTURE_PENDING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (n == 1) {
    p->h.res = RES_ONE;
  } else if (n > 1) {
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, i);
    }
    p->h.res = RES_TABLE;
  }
  if (n > 0) lua_setiuservalue(L, lua_upvalueindex(2), UV_RESULT);
  p->h.nres = n;
  weft_future_fulfill(&p->fut);
  lua_pushboolean(L, 1);
  return 1;
}

/* reject(err) -> true if this call settled the future, else false */
static int promise_reject(lua_State *L) {
  Promise *p = uppromise(L, "reject");
  if (p->fut.state != WEFT_FUTURE_PENDING) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 1);
  lua_setiuservalue(L, lua_upvalueindex(2), UV_RESULT);
  p->h.res = RES_ONE;
  p->h.nres = 1;
  weft_future_reject(&p->fut, WEFT_ESCRIPT);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc of a promise (tasks have none: a running one is anchored). A task
 * awaiting a promise holds it on its stack, but debug.setlocal can
 * replace it there: a pending promise collected is settled cancelled, so
 * its waiters wake before its memory goes. */
static int promise_gc(lua_State *L) {
  Fut *f = lw_tofut(L, lw_upstate_or_null(L), 1);
  if (f && f->kind == KIND_PROMISE &&
      lw_future(f)->state == WEFT_FUTURE_PENDING)
    weft_future_settle_cancelled(lw_future(f));
  return 0;
}

/* weft.future() -> future, resolve, reject */
static int l_future(lua_State *L) {
  Promise *p = lua_newuserdatauv(L, sizeof *p, UV_FUTURE_COUNT);
  memset(p, 0, sizeof *p);
  weft_future_init(&p->fut);
  p->h.S = upstate(L);
  p->h.kind = KIND_PROMISE;
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->h.S->mt_promise_ref);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, promise_resolve, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, promise_reject, 2);
  return 3;
}

/* --------------------------------------------------------- future methods */

/* f:state() -> "pending" | "fulfilled" | "rejected" | "cancelled" */
static int f_state(lua_State *L) {
  Fut *f = lw_checkfut(L, upstate(L), 1, "future:state");
  lua_pushstring(L, lw_state_name(lw_future(f)->state));
  return 1;
}

/* f:done() -> whether f is settled */
static int f_done(lua_State *L) {
  Fut *f = lw_checkfut(L, upstate(L), 1, "future:done");
  lua_pushboolean(L, lw_future(f)->state != WEFT_FUTURE_PENDING);
  return 1;
}

/* f:result() -> the values now, or raises its error, or raises if pending */
static int f_result(lua_State *L) {
  lw_checkfut(L, upstate(L), 1, "future:result");
  lua_settop(L, 1);
  return lw_push_outcome(L, 1);
}

/* f:cancel([reason]) -> true if it was pending. A task is cancelled at its
 * current or next wait (and its descendants with it); a plain future is
 * settled as cancelled. */
static int f_cancel(lua_State *L) {
  Fut *f = lw_checkfut(L, upstate(L), 1, "future:cancel");
  const char *reason;
  if (lw_future(f)->state != WEFT_FUTURE_PENDING ||
      (f->kind == KIND_TASK &&
       (((Task *)f)->t.flags & (WEFT_TASK_DONE | WEFT_TASK_CANCEL)))) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* Without a reason the error is made when first needed (most
   * cancelled timers are never awaited). */
  reason = luaL_optstring(L, 2, NULL);
  if (reason) {
    lw_new_error(L, "cancelled", lua_pushfstring(L, "cancelled: %s", reason));
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "reason");
    lw_set_extra(L, 1, EX_CANCEL);
  }
  if (f->kind == KIND_TASK)
    weft_task_cancel(&((Task *)f)->t);
  else
    weft_future_settle_cancelled(lw_future(f));
  lua_pushboolean(L, 1);
  return 1;
}

static Task *checktask(lua_State *L, const char *fname) {
  Fut *f = lw_checkfut(L, upstate(L), 1, fname);
  if (f->kind != KIND_TASK) luaL_error(L, "%s: not a task", fname);
  return (Task *)f;
}

/* t:id() -> integer */
static int f_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checktask(L, "task:id")->t.id);
  return 1;
}

/* t:name() -> string or nil */
static int f_name(lua_State *L) {
  checktask(L, "task:name");
  lw_get_extra(L, 1, EX_NAME);
  return 1;
}

/* __tostring, with the state as upvalue (a script can call it with
 * anything: debug.getmetatable). */
static int f_tostring(lua_State *L) {
  Fut *f = lw_tofut(L, upstate(L), 1);
  if (f == NULL) return lua_pushfstring(L, "%s: %p", luaL_typename(L, 1),
                           lua_topointer(L, 1)), 1; /* not a future */
  if (f->kind == KIND_TASK) {
    Task *t = (Task *)f;
    lw_get_extra(L, 1, EX_NAME);
    lua_pushfstring(L, "weft.Task #" LW_I " %s%s%s(%s)", LW_INT(t->t.id),
                    lua_isstring(L, -1) ? "'" : "",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "",
                    lua_isstring(L, -1) ? "' " : "",
                    lw_state_name(lw_future(f)->state));
  } else {
    lua_pushfstring(L, "weft.Future (%s)", lw_state_name(lw_future(f)->state));
  }
  return 1;
}

/* Appends to the string on top a short rendering of the value at idx,
 * a field of a table error: strings quoted and cut, tables and functions
 * by type only (no recursion, no metamethod). */
static void add_field_value(lua_State *L, int idx) {
  size_t n;
  const char *s;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &n);
    lua_pushfstring(L, n > 60 ? "\"%.60s...\"" : "\"%s\"", s);
    break;
  case LUA_TNUMBER:
    lua_pushvalue(L, idx);
    lua_tolstring(L, -1, NULL); /* converts the copy */
    break;
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    break;
  default: lua_pushstring(L, luaL_typename(L, idx)); break;
  }
  lua_concat(L, 2);
}

/* [t] -> "{k = v, ...}": the first fields of the table error t, raw (a
 * table error without __tostring would print as "table: 0x..."). */
static int describe_table(lua_State *L) {
  int n = 0;
  lua_pushliteral(L, "{");
  lua_pushnil(L);
  while (lua_next(L, 1)) { /* [t, acc, k, v] */
    if (n++ == 8) {
      lua_pop(L, 2);
      lua_pushliteral(L, ", ...");
      lua_concat(L, 2);
      break;
    }
    lua_pushvalue(L, 2);
    lua_pushstring(L, n > 1 ? ", " : "");
    if (lua_type(L, 3) == LUA_TSTRING) {
      lua_pushvalue(L, 3);
      lua_pushliteral(L, " = ");
      lua_concat(L, 4);
    } else {
      lua_pushliteral(L, "[");
      lua_concat(L, 3);
      add_field_value(L, 3);
      lua_pushliteral(L, "] = ");
      lua_concat(L, 2);
    }
    add_field_value(L, 4);
    lua_replace(L, 2);
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "}");
  lua_concat(L, 2);
  return 1;
}

/* [v] -> the text of the error value v. Run protected: __tostring may
 * raise. */
static int describe(lua_State *L) {
  lua_settop(L, 1);
  if (lua_type(L, 1) == LUA_TTABLE && !luaL_getmetafield(L, 1, "__tostring"))
    return describe_table(L);
  lua_settop(L, 1);
  luaL_tolstring(L, 1, NULL);
  return 1;
}

void lw_push_error_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, describe);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(a %s error value whose __tostring failed)",
                    luaL_typename(L, idx));
  }
}

/* Reports the failed task at index 1 unless observed or reported already.
 * Runs protected: it allocates. */
static int report(lua_State *L) {
  State *S = lw_find_state(L); /* see About internal functions */
  Task *t = internal_task(L, 1);
  lua_settop(L, 1);
  if (S == NULL) return 0;
  if (t->h.observed || t->h.reported) return 0;
  t->h.reported = 1;
  S->unhandled++;
  lua_pushfstring(L, "unhandled error in task #" LW_I,
                  LW_INT(t->t.id));
  if (lw_get_extra(L, 1, EX_NAME) == LUA_TSTRING)
    lua_pushfstring(L, " '%s': ", lua_tostring(L, -1));
  else
    lua_pushliteral(L, ": ");
  lua_remove(L, -2);
  lua_getiuservalue(L, 1, UV_RESULT);
  lw_push_error_text(L, -1);
  lua_remove(L, -2);
  if (lw_get_extra(L, 1, EX_TRACE) == LUA_TSTRING) {
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
  } else {
    lua_pop(L, 1);
  }
  lua_concat(L, lua_gettop(L) - 1);
  if (S->report)
    S->report(S->report_ud, lua_tostring(L, -1));
  else
    lua_writestringerror("weft: %s\n", lua_tostring(L, -1));
  return 0;
}

static void report_task(lua_State *L, State *S, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, report);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, S);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
}

/* Reports every failed task nobody observed, and forgets them all. */
int lw_report_failed(lua_State *L, State *S) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->failed_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    report_task(L, S, -1);
  }
  lua_pop(L, 1);
  lua_newtable(L); /* a fresh table: clearing while iterating is unsafe */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawseti(L, LUA_REGISTRYINDEX, S->failed_ref);
  return 0;
}

/* A failed task that becomes garbage unobserved is reported then: its
 * sentinel's finalizer (see Reaper). */
static int sentinel_gc(lua_State *L) {
  Fut *f;
  if (lua_type(L, 1) != LUA_TUSERDATA) return 0;
  lua_getiuservalue(L, 1, 1);
  f = lw_tofut(L, NULL, -1);
  if (f && f->kind == KIND_TASK &&
      lw_future(f)->state == WEFT_FUTURE_REJECTED && !f->observed &&
      !f->reported)
    report_task(L, f->S, -1);
  return 0;
}

/* ----------------------------------------------------------- the rest */

/* weft.current() -> the running task, or nil */
/* I.is_task_co(co) -> whether co is (or was, or will be reused as) the
 * coroutine of a task: the prelude's coroutine.resume and .close refuse
 * those. */
static int l_is_task_co(lua_State *L) {
  State *S = upstate(L);
  if (!lua_isthread(L, 1)) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->task_cos_ref);
  lua_pushvalue(L, 1);
  lua_pushboolean(L, lua_rawget(L, -2) != LUA_TNIL);
  return 1;
}

/* I.co_running() -> coroutine.running()'s values. A task whose coroutine
 * was seen this way keeps it to itself: it is not reused by a later task,
 * so the thread stays a sound identity (a key of a weak table, say). */
static int l_co_running(lua_State *L) {
  State *S = upstate(L);
  if (S->current && S->current->co == L) S->current->exposed = 1;
#if LW_LUA51
  if (lua_pushthread(L)) lua_pushnil(L); /* 5.1: nil on the main thread */
  return 1;
#else
  lua_pushboolean(L, lua_pushthread(L));
  return 2;
#endif
}

static int l_current(lua_State *L) {
  State *S = upstate(L);
  if (S->current == NULL) return 0;
  lw_push_task(L, S->current);
  return 1;
}

/* internal.check_task(fname): raises the outside-a-task error for fname
 * at the caller's caller (level 2), so prelude functions report it at the
 * user's line before they start anything. */
static int l_check_task(lua_State *L) {
  State *S = upstate(L);
  const char *fname = luaL_checkstring(L, 1);
  Task *t = S->current;
  const char *why = NULL;
  if (t == NULL)
    why = "not inside a weft task (use weft.run or weft.spawn)";
  else if (L == t->co ? t->inner != NULL : L != t->inner)
    why = "cannot wait inside a coroutine resumed other than by weft's "
          "coroutine.resume or coroutine.wrap";
  else if (!lua_isyieldable(L) || (L != t->co && !t->inner_ok))
    why = NO_YIELD_MSG;
  if (why == NULL) return 0;
  luaL_where(L, 2);
  lua_pushfstring(L, "%s: %s", fname, why);
  lua_concat(L, 2);
  return lua_error(L);
}

static int l_is_future(lua_State *L) {
  lua_pushboolean(L, lw_tofut(L, upstate(L), 1) != NULL);
  return 1;
}

static int l_is_task(lua_State *L) {
  Fut *f = lw_tofut(L, upstate(L), 1);
  lua_pushboolean(L, f != NULL && f->kind == KIND_TASK);
  return 1;
}

/* internal.error(kind, message) -> a weft error table */
static int l_error(lua_State *L) {
  lw_new_error(L, luaL_checkstring(L, 1), luaL_checkstring(L, 2));
  return 1;
}

/* internal.is_error(v, kind) -> boolean */
static int l_is_error(lua_State *L) {
  lua_pushboolean(L, lw_is_error(L, 1, luaL_checkstring(L, 2)));
  return 1;
}

static const luaL_Reg future_methods[] = {
    {"await", f_await}, {"state", f_state}, {"done", f_done},
    {"result", f_result}, {"cancel", f_cancel}, {"id", f_id},
    {"name", f_name}, {NULL, NULL}};

static const luaL_Reg weft_funcs[] = {
    {"spawn", l_spawn}, {"await", f_await}, {"sleep", l_sleep},
    {"yield", l_yield}, {"future", l_future}, {"current", l_current},
    {NULL, NULL}};

static const luaL_Reg internal_funcs[] = {
    {"wait", l_wait}, {"wait_for", l_wait_for}, {"unwind", l_unwind},
    {"is_future", l_is_future},
    {"is_task_co", l_is_task_co},
    {"co_enter", co_enter},
    {"co_leave", co_leave},
    {"co_waiting", co_waiting},
#if !LW_LUA51
    {"co_resume", co_resume_make},
    {"co_wrap", co_wrap_c},
#endif
    {"co_running", l_co_running},
    {"check_task", l_check_task},
    {"is_task", l_is_task}, {"error", l_error}, {"is_error", l_is_error},
    {NULL, NULL}};

/* Expects [weft, internal] on top; fills both and leaves the future
 * methods table in internal.future_methods. */
void lw_open_futures(lua_State *L, State *S) {
  luaL_newmetatable(L, FUTURE_MT);
  lw_protect_mt(L, FUTURE_MT);
  lua_pushvalue(L, -1);
  S->mt_future_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lw_push_state(L, S);
  luaL_setfuncs(L, future_methods, 1);
  lw_wrap_fields(L, -1, (const char *const[]){"await", NULL});
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "future_methods");
  lua_setfield(L, -2, "__index");
  lw_push_state(L, S);
  lua_pushcclosure(L, f_tostring, 1);
  lua_setfield(L, -2, "__tostring");
  /* A promise's: the same fields (its name too), and promise_gc. */
  luaL_newmetatable(L, PROMISE_MT);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lw_push_state(L, S);
  lua_pushcclosure(L, promise_gc, 1);
  lua_setfield(L, -2, "__gc");
  S->mt_promise_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  /* The sentinels of failed tasks: see Reaper. */
  luaL_newmetatable(L, SENTINEL_MT);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  S->mt_sentinel_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  luaL_newmetatable(L, ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  if (S->cancel_ref == LUA_NOREF) {
    lw_new_error(L, "cancelled", "cancelled");
    S->cancel_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }

  luaL_newmetatable(L, COMBO_MT);
  lw_protect_mt(L, COMBO_MT);
  lua_pushcfunction(L, combo_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lw_push_state(L, S);
  luaL_setfuncs(L, internal_funcs, 1);
  lw_wrap_fields(L, -1, (const char *const[]){"wait", "wait_for", "unwind",
                                                 NULL});
  lw_push_state(L, S);
  lua_pushliteral(L, "after");
  lua_pushcclosure(L, l_spawn_after, 2);
  lua_setfield(L, -2, "spawn_after");
  lw_push_state(L, S);
  lua_pushvalue(L, -3);
  lua_insert(L, -2); /* [weft, internal, weft, state] */
  luaL_setfuncs(L, weft_funcs, 1);
  lw_wrap_fields(L, -1, (const char *const[]){"await", "sleep", "yield",
                                                 NULL});
  lua_pop(L, 1);
}
