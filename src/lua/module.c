/*
 * module.c - the weft Lua module: its state, weft.run and the driver,
 * introspection, and the C embedding API of weft_lua.h (Lua binding).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <unistd.h>

#include "lweft.h"
/* Generated from the .lua files of the same names: */
#include "http.h"    /* http_lua[] */
#include "io.h"      /* io_lua[] */
#include "ngx.h"     /* ngx_lua[] */
#include "prelude.h" /* prelude_lua[] */
#include "socket.h"  /* socket_lua[] */
#include "tcp.h"     /* tcp_lua[] */

#define UVLOOP_KEY "weft.uvloop"

static int is_state(lua_State *L, int idx) {
  State *S = lua_touserdata(L, idx);
  return S && lua_rawlen(L, idx) == sizeof *S && S->self == S;
}

/* __gc of the state: closes it when lua_close collects it (the registry
 * holds it until then). A script can reach this function (through the
 * state, upvalue 1 of every weft function) and call it; closing the state
 * under running code would free the loop in use, so it acts only when
 * called as lua_close calls it: on the main thread, with no caller below
 * it. */
static int state_gc(lua_State *L) {
  State *S = lua_touserdata(L, 1);
  lua_Debug ar;
  int main_thread;
  if (!is_state(L, 1)) return 0;
  main_thread = lua_pushthread(L);
  lua_pop(L, 1);
  if (!main_thread || lua_getstack(L, 1, &ar)) return 0;
  lw_state_close(S);
  S->self = NULL;
  return 0;
}

/* Looks for the function at fn in the table at idx and the tables in it
 * (depth levels down); if found, pushes "prefix.key[.key]" and returns 1,
 * else returns 0 with the stack as it was. Only for error messages. */
static int find_fn(lua_State *L, int fn, int idx, const char *prefix,
                   int depth) {
  int top = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* [key, value] */
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (lua_rawequal(L, -1, fn)) {
        lua_pushfstring(L, "%s.%s", prefix, lua_tostring(L, -2));
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return 1;
      }
      if (depth > 0 && lua_type(L, -1) == LUA_TTABLE) {
        const char *sub = lua_pushfstring(L, "%s.%s", prefix,
                                          lua_tostring(L, -2));
        if (find_fn(L, fn, top + 2, sub, depth - 1)) {
          lua_replace(L, top + 1);
          lua_settop(L, top + 1);
          return 1;
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Pushes a name for the running C function, for an error message: the
 * one it was called by, or where it is in the weft table. */
static const char *push_fname(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar)) return lua_pushliteral(L, "?");
  lua_getinfo(L, "nf", &ar); /* pushes the function */
  if (ar.name) return lua_pushstring(L, ar.name);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "weft") == LUA_TTABLE &&
      find_fn(L, lua_gettop(L) - 2, lua_gettop(L), "weft", 1))
    return lua_tostring(L, -1);
  lua_pop(L, 2);
  /* A method: in the __index table of a metatable named "weft.*". */
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) { /* [fn, key, value] */
    int v = lua_gettop(L);
    if (lua_type(L, v - 1) == LUA_TSTRING && lua_type(L, v) == LUA_TTABLE &&
        strncmp(lua_tostring(L, v - 1), "weft.", 5) == 0 &&
        lua_getfield(L, v, "__index") == LUA_TTABLE &&
        find_fn(L, v - 2, v + 1, lua_tostring(L, v - 1), 0))
      return lua_tostring(L, -1);
    lua_settop(L, v - 1);
  }
  return lua_pushliteral(L, "a weft function");
}

void lw_bad_state(lua_State *L) {
  State *S = lua_touserdata(L, lua_upvalueindex(1));
  const char *name = push_fname(L);
  if (S && lua_rawlen(L, lua_upvalueindex(1)) == sizeof *S && S->self == NULL)
    luaL_error(L, "%s: the weft state is closed", name);
  luaL_error(L, "%s: corrupted upvalue 1 (expected the weft state, got %s)",
             name, luaL_typename(L, lua_upvalueindex(1)));
}

int lw_type_error(lua_State *L, int idx, const char *what,
                  const char *fname) {
  return luaL_error(L, "%s: expected a %s, got %s", fname, what,
                    luaL_typename(L, idx));
}

void *lw_checkudata(lua_State *L, int idx, size_t size, const char *tag,
                    const char *fname) {
  void *p = lw_toudata(L, idx, size, tag);
  if (p == NULL) lw_type_error(L, idx, tag, fname);
  return p;
}

void lw_protect_mt(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__metatable");
}

State *lw_find_state(lua_State *L) {
  State *S = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) == LUA_TUSERDATA &&
      is_state(L, -1))
    S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return S;
}

void lw_push_state(lua_State *L, State *S) {
  /* The registry holds it from get_state on: see there. */
  if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) != LUA_TUSERDATA ||
      lua_touserdata(L, -1) != (void *)S) {
    lua_pop(L, 1);
    lua_pushnil(L); /* calls then raise (upstate) */
  }
}

/* The state of L, created on first use with L's allocator.
 * [-0, +0, m] */
static State *get_state(lua_State *L) {
  State *S;
  void *ud;
  lua_Alloc alloc;
  int r;
  if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) != LUA_TNIL) {
    /* Only a script writing to the registry could put something else
     * there (debug.getregistry): refused, not trusted. */
    if (!is_state(L, -1))
      luaL_error(L, "weft: the registry's " STATE_KEY " is not the weft "
                    "state (replaced, or the state is closed)");
    S = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return S;
  }
  lua_pop(L, 1);
  S = lua_newuserdatauv(L, sizeof *S, 0);
  memset(S, 0, sizeof *S);
  S->self = S;
  S->failed_ref = S->co_pool_ref = S->task_cos_ref = S->cancel_ref =
      LUA_NOREF;
#if LW_LUA51
  S->wrap_ref = LUA_NOREF;
#endif
  S->closers.next = S->closers.prev = &S->closers;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  alloc = lua_getallocf(L, &ud);
  lua_getfield(L, LUA_REGISTRYINDEX, UVLOOP_KEY);
  if (lua_islightuserdata(L, -1))
    r = weft_loop_new_borrowed(&S->loop, lua_touserdata(L, -1),
                               (weft_alloc_fn)alloc, ud);
  else
    r = weft_loop_new(&S->loop, (weft_alloc_fn)alloc, ud);
  lua_pop(L, 1);
  if (r != 0)
    luaL_error(L, "weft: cannot create the loop: %s", weft_strerror(r));
  S->sched = weft_loop_sched(S->loop);
#if LW_LUA51
  /* 5.1 cannot name its main thread: if weft is loaded from another, the
   * state gets a thread of its own, anchored with it. */
  if (!lua_pushthread(L)) {
    lua_pop(L, 1);
    lua_newthread(L);
    lua_pushvalue(L, -1);
    luaL_ref(L, LUA_REGISTRYINDEX);
  }
#else
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#endif
  S->home = S->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_newtable(L); /* failed tasks, weak keys: see lw_report_failed */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  S->failed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Sized up front: pooling a coroutine must never allocate. */
  lua_createtable(L, CO_POOL_MAX, 0);
  S->co_pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L); /* task coroutines, weak keys: see is_task_co */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  S->task_cos_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
  return S;
}

/* Cancels every live task. Returns how many there were. */
static int cancel_live(State *S) {
  weft_task_t *t;
  int n = 0;
  for (t = weft_sched_next_live(S->sched, NULL); t;
       t = weft_sched_next_live(S->sched, t), n++)
    weft_task_cancel(t);
  return n;
}

/* Runs the loop until nothing can progress. Tasks left waiting then wait
 * on something nobody can settle: they are cancelled, so they unwind
 * (their finally code and to-be-closed variables run), and the loop runs
 * again. Stops when a pass frees none of them (a task that swallows its
 * cancellation and waits again is abandoned). Returns whether the main
 * task was among the stuck ones (a deadlock). */
static int drive(lua_State *L, State *S, Task *main) {
  int deadlock = 0, stuck, prev = -1;
  luaL_checkstack(L, 16, "weft.run");
  S->L = L;
  S->running = 1;
  while ((stuck = weft_loop_run(S->loop)) > 0) {
    if (prev >= 0 && stuck >= prev) break;
    if (main->t.done.state == WEFT_FUTURE_PENDING) deadlock = 1;
    cancel_live(S);
    prev = stuck;
  }
  S->running = 0;
  S->L = S->home;
  return deadlock;
}

/* weft.run(fn, ...) with fn at index 1. */
static int run_main(lua_State *L, State *S, int with_traceback) {
  Task *m;
  int deadlock, ref;
  if (S->current)
    return luaL_error(L, "weft.run: already inside a task (use weft.spawn "
                         "or await the work instead)");
  if (S->running)
    return luaL_error(L, "weft.run: the loop is already running");
  if (lua_type(L, 1) != LUA_TFUNCTION)
    return luaL_error(L, "weft.run: expected a function, got %s",
                      luaL_typename(L, 1));
  /* Slot 1 holds the main task, but a script can replace it there
   * (debug.setlocal on this thread's frame): a registry reference, taken
   * before the task starts, anchors it until it is put back at 1. */
  lua_pushboolean(L, 0);
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "main");
  lua_insert(L, 1); /* [name, fn, args...] */
  lw_spawn_at(L, S, 2, WEFT_PRIO_NORMAL, 1);
  lua_replace(L, 1);
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  lua_rawseti(L, LUA_REGISTRYINDEX, ref); /* the slot exists: no memory */
  m = lua_touserdata(L, 1);
  deadlock = drive(L, S, m);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_replace(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  m->h.observed = 1;
  lw_report_failed(L, S);
  if (deadlock)
    return luaL_error(L, "weft.run: deadlock: the main task waits for "
                         "something that nothing can settle");
  if (with_traceback && m->t.done.state != WEFT_FUTURE_FULFILLED) {
    /* A string, whatever the error value: a table's fields, a
     * cancellation's message, a note if its __tostring raised. */
    if (m->t.done.state == WEFT_FUTURE_REJECTED)
      lua_getiuservalue(L, 1, UV_RESULT);
    else
      lw_push_cancel_error(L, 1);
    lw_push_error_text(L, -1);
    lua_remove(L, -2);
    if (lw_get_extra(L, 1, EX_TRACE) == LUA_TSTRING) {
      lua_pushliteral(L, "\n");
      lua_insert(L, -2);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
    }
    return lua_error(L);
  }
  return lw_push_outcome(L, 1);
}

static int l_run(lua_State *L) { return run_main(L, upstate(L), 0); }

State *lw_open_state(lua_State *L) {
  luaL_requiref(L, "weft", luaopen_weft, 0); /* metatables, prelude */
  lua_pop(L, 1);
  return get_state(L);
}

/* The entries of weft_lua_run, one per traceback setting: light C
 * functions, so pushing one allocates nothing and cannot raise. */
static int run_entry(lua_State *L) {
  return run_main(L, lw_open_state(L), 0);
}

static int run_entry_tb(lua_State *L) {
  return run_main(L, lw_open_state(L), 1);
}

/* weft.now() -> monotonic milliseconds (integer) */
static int l_now(lua_State *L) {
  State *S = upstate(L);
  weft_loop_update_time(S->loop);
  lua_pushinteger(L, (lua_Integer)weft_sched_now(S->sched));
  return 1;
}

void lw_setint(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* weft.stats() -> table of counters */
static int l_stats(lua_State *L) {
  State *S = upstate(L);
  weft_stats_t st;
  weft_sched_stats(S->sched, &st);
  lua_createtable(L, 0, 10);
  lw_setint(L, "spawned", st.spawned);
  lw_setint(L, "done", st.finished);
  lw_setint(L, "fulfilled", st.fulfilled);
  lw_setint(L, "failed", st.rejected);
  lw_setint(L, "cancelled", st.cancelled);
  lw_setint(L, "live", st.live);
  lw_setint(L, "ready", st.ready);
  lw_setint(L, "timers", st.timers);
  lw_setint(L, "dispatched", st.dispatched);
  lw_setint(L, "unhandled", S->unhandled);
  lw_setint(L, "preemptions", S->preemptions);
  lw_host_stats(L, S);
  lw_http_stats(L, S);
  return 1;
}

static const char *task_status(const weft_task_t *t, const State *S) {
  if (S->current && &S->current->t == t) return "running";
  if (t->flags & WEFT_TASK_QUEUED) return "ready";
  return "waiting";
}

/* weft.tasks() -> list of {id, name, state, status, priority, age} */
static int l_tasks(lua_State *L) {
  State *S = upstate(L);
  weft_task_t *t;
  uint64_t now;
  int i = 0;
  weft_loop_update_time(S->loop);
  now = weft_sched_now(S->sched);
  lua_newtable(L);
  for (t = weft_sched_next_live(S->sched, NULL); t;
       t = weft_sched_next_live(S->sched, t)) {
    Task *lt = t->data;
    lua_createtable(L, 0, 6);
    lw_setint(L, "id", t->id);
    lw_push_task(L, lt);
    lw_get_extra(L, -1, EX_NAME);
    lua_setfield(L, -3, "name");
    lua_setfield(L, -2, "task");
    lua_pushstring(L, lw_state_name(t->done.state));
    lua_setfield(L, -2, "state");
    lua_pushstring(L, task_status(t, S));
    lua_setfield(L, -2, "status");
    lua_pushstring(L, lw_prio_names[t->prio]);
    lua_setfield(L, -2, "priority");
    lw_setint(L, "age", now - t->born);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* weft.is_cancelled(err), weft.is_timeout(err) -> boolean */
static int l_is_cancelled(lua_State *L) {
  lua_pushboolean(L, lw_is_error(L, 1, "cancelled"));
  return 1;
}

static int l_is_timeout(lua_State *L) {
  lua_pushboolean(L, lw_is_error(L, 1, "timeout"));
  return 1;
}

static const luaL_Reg module_funcs[] = {
    {"run", l_run}, {"now", l_now}, {"stats", l_stats},
    {"tasks", l_tasks}, {"is_cancelled", l_is_cancelled},
    {"is_timeout", l_is_timeout}, {"preempt", lw_l_preempt},
    {NULL, NULL}};

/* The Lua parts of the module, run in this order with (weft, internal). */
static const struct {
  const char *name, *code;
  size_t size;
} parts[] = {
    {"=weft", prelude_lua, sizeof prelude_lua},
    {"=weft.io", io_lua, sizeof io_lua},
    {"=weft.tcp", tcp_lua, sizeof tcp_lua},
    {"=weft.socket", socket_lua, sizeof socket_lua},
    {"=weft.http", http_lua, sizeof http_lua},
};

/* The submodules: Lua parts run on require, with (weft, internal,
 * compat) as the parts above, returning the module. */
static const struct {
  const char *name, *chunk, *code;
  size_t size;
} subs[] = {
    {"weft.ngx", "=weft.ngx", ngx_lua, sizeof ngx_lua},
};

/* package.preload's loader of submodule upvalue 4 (an index into subs);
 * upvalues 1-3: weft, internal, compat. */
static int load_sub(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(4));
  if (i < 0 || (size_t)i >= sizeof subs / sizeof subs[0])
    return luaL_error(L, "weft: corrupted upvalue 4");
  if (luaL_loadbuffer(L, subs[i].code, subs[i].size - 1, subs[i].chunk))
    return lua_error(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_call(L, 3, 1);
  return 1;
}

/* Sets package.preload[name] for each submodule. Stack: weft, internal,
 * compat. */
static void preload_subs(lua_State *L) {
  size_t i;
  lua_getglobal(L, "package");
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return; /* no package library: no require either */
  }
  lua_getfield(L, -1, "preload");
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 2);
    return;
  }
  for (i = 0; i < sizeof subs / sizeof subs[0]; i++) {
    lua_pushvalue(L, -5);
    lua_pushvalue(L, -5);
    lua_pushvalue(L, -5);
    lua_pushinteger(L, (lua_Integer)i);
    lua_pushcclosure(L, load_sub, 4);
    lua_setfield(L, -2, subs[i].name);
  }
  lua_pop(L, 2);
}

/* require "weft.ngx" before require "weft": Lua's all-in-one loader
 * finds this in weft's library; weft, once open, preloads it. */
static int open_sub(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "weft");
  lua_call(L, 1, 0);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_getfield(L, -1, name);
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "weft: package.preload[\"%s\"] is missing", name);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  return 1;
}

int luaopen_weft_ngx(lua_State *L) { return open_sub(L, "weft.ngx"); }

static int l_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

int luaopen_weft(lua_State *L) {
  State *S = get_state(L);
  size_t i;
  lua_newtable(L); /* weft */
  lua_newtable(L); /* internal: what the prelude needs, not exported */
#if LW_LUA51
  lua_pushboolean(L, lw_is_luajit()); /* PUC 5.1's pcall cannot yield */
#else
  lua_pushboolean(L, 1);
#endif
  lua_setfield(L, -2, "yieldable_pcall");
  lua_pushlightuserdata(L, NULL); /* ngx.null, cjson.null */
  lua_setfield(L, -2, "null");
  lua_pushcfunction(L, l_pid);
  lua_setfield(L, -2, "pid");
  lw_open_futures(L, S);
  lw_open_sync(L, S);
  lw_open_host(L, S);
  lw_open_fs(L, S);
  lw_open_proc(L, S);
  lw_open_tcp(L, S);
  lw_open_http(L, S);
  lua_pushvalue(L, -2);
  lw_push_state(L, S);
  luaL_setfuncs(L, module_funcs, 1);
  lua_pushliteral(L, WEFT_VERSION_STRING);
  lua_setfield(L, -2, "_VERSION");
  lua_pop(L, 1); /* [weft, internal] */
  /* The prelude returns the library shims of older Luas (a table kept
   * out of internal, which scripts can reach), given to the other parts
   * as a third argument. */
  lua_pushnil(L);
  for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (luaL_loadbuffer(L, parts[i].code, parts[i].size - 1, parts[i].name))
      return lua_error(L);
    lua_pushvalue(L, -4);
    lua_pushvalue(L, -4);
    lua_pushvalue(L, -4);
    lua_call(L, 3, i == 0 ? 1 : 0);
    if (i == 0) lua_replace(L, -2);
  }
  preload_subs(L);
  lua_pop(L, 2);
  return 1;
}

/* Misuse of the C API (see weft_lua.h): the messages of lw_misuse, by
 * number, so that its entry takes no pointer a script could give it (a
 * call hook can capture the entry and call it). */
static const char *const misuse_msgs[] = {
    "weft_lua_run: nargs must be from 0 to the number of values above "
    "the function",
    "weft_lua_spawn: nargs must be from 0 to the number of values above "
    "the function",
    "weft_lua_result: idx must be a valid stack index",
};

static int misuse_entry(lua_State *L) {
  lua_Integer i = lua_tointeger(L, 1);
  if (i < 0 || (size_t)i >= sizeof misuse_msgs / sizeof misuse_msgs[0])
    return luaL_error(L, "weft: misuse");
  return luaL_error(L, "%s", misuse_msgs[i]);
}

int lw_misuse(lua_State *L, int which) {
  lua_pushcfunction(L, misuse_entry); /* allocates nothing */
  lua_pushinteger(L, which);
  return lua_pcall(L, 1, 0, 0);
}

int weft_lua_run(lua_State *L, int nargs, int traceback) {
  int base;
  if (L == NULL) return LUA_ERRERR;
  base = lua_gettop(L) - nargs;
  if (nargs < 0 || base < 1) return lw_misuse(L, LW_MISUSE_RUN);
  /* Nothing before lua_pcall may allocate: a memory error raised here
   * would be unprotected (a closure with an upvalue did that). */
  lua_pushcfunction(L, traceback ? run_entry_tb : run_entry);
  lua_insert(L, base);
  return lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
}

void weft_lua_set_report(lua_State *L, weft_lua_report_fn fn, void *ud) {
  State *S;
  if (L == NULL) return;
  S = get_state(L);
  S->report = fn;
  S->report_ud = ud;
}

unsigned long weft_lua_unhandled(lua_State *L) {
  return L ? get_state(L)->unhandled : 0;
}

weft_loop_t *weft_lua_loop(lua_State *L) {
  return L ? get_state(L)->loop : NULL;
}

int weft_lua_poll(lua_State *L) {
  State *S;
  int live;
  if (L == NULL) return WEFT_EINVAL;
  S = get_state(L);
  if (S->running || S->current) return WEFT_ESTATE;
  luaL_checkstack(L, 16, "weft_lua_poll");
  S->L = L;
  live = weft_loop_run_nowait(S->loop);
  S->L = S->home;
  if (live == 0) lw_report_failed(L, S);
  return live;
}

int weft_lua_use_uv_loop(lua_State *L, void *uv_loop) {
  int exists;
  if (L == NULL || uv_loop == NULL) return WEFT_EINVAL;
  exists = lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) != LUA_TNIL;
  lua_pop(L, 1);
  if (exists) return WEFT_ESTATE;
  lua_pushlightuserdata(L, uv_loop);
  lua_setfield(L, LUA_REGISTRYINDEX, UVLOOP_KEY);
  return 0;
}
