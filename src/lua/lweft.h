/*
 * lweft.h - internal declarations of the Lua binding.
 * The binding uses only the public headers (weft.h, weft_lua.h) and Lua's.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_LWEFT_H
#define WEFT_LWEFT_H

#include <lauxlib.h>
#include <lua.h>

#include "lcompat.h"
#include "weft.h"
#include "weft_lua.h"

#define lw_container(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

/* Uservalue slots of a future (the first two) or task userdata. What
 * most never need lives in UV_EXTRA, made on first use: nil, a task's
 * name alone (a string), or a table with the fields EX_NAME (its name),
 * EX_CANCEL (the cancellation error), EX_TRACE (the traceback string of
 * a task's failure), EX_OWNED (the weak-keyed set of resources closed
 * at a task's end), EX_SENTINEL (a failed task's: see Reaper in
 * task.c) and EX_CAUSE (the failed task whose error the task met last in
 * an await: see note_cause). See lw_get_extra. */
enum {
  UV_RESULT = 1, /* the single value, a packed table, or the dead thread
                    holding several results; or the error value */
  UV_EXTRA,      /* see above */
  UV_CO,         /* task: its coroutine while it runs */
  UV_FUTURE_COUNT = UV_EXTRA,
  UV_TASK_COUNT = UV_CO
};
/* Integer keys: reading them never allocates (a string key may have to
 * be made), and task_fn reads EX_OWNED where nothing may raise. */
enum { EX_NAME = 1, EX_CANCEL, EX_TRACE, EX_OWNED, EX_SENTINEL, EX_CAUSE,
       EX_COUNT = EX_CAUSE };

enum { KIND_PROMISE = 1, KIND_TASK = 2 };
enum { RES_NONE, RES_ONE, RES_TABLE, RES_THREAD };

/* About State: one per lua_State (main thread), kept in the registry under
 * STATE_KEY and passed as upvalue 1 to every binding function. L is the
 * stack the driver works on while weft.run is on the C stack (the thread
 * that called it), NULL otherwise. current is the task whose coroutine is
 * being resumed. failed_ref is a weak-keyed table of tasks that failed and
 * have not yet been reported or observed. */
/* About Closer: an I/O module's handle or request that must end before
 * the loop is freed. Each registers while open; closing the state calls
 * close on every one still listed, which must unlink it (lw_closer_remove)
 * and start closing the libuv handle; the loop then runs until the close
 * callbacks have freed their memory. */
typedef struct Closer Closer;
struct Closer {
  Closer *next, *prev;
  void (*close)(Closer *c);
};

/* How many types of resource a task can own (see LwOwned). */
#define LW_OWNED_MAX 8

typedef struct State {
  struct State *self; /* S itself while open, NULL once closed: upstate */
  weft_loop_t *loop;
  weft_sched_t *sched;
  lua_State *L;
  struct Task *current;
  int running;
  int failed_ref;
  int co_pool_ref;    /* coroutines of tasks that returned, for reuse */
  int co_pool_n;
  int task_cos_ref;   /* weak set of every task coroutine alive */
  int cancel_ref;     /* a plain cancellation error made up front: see
                         lw_push_cancel_error */
  unsigned long unhandled;
  weft_lua_report_fn report;
  void *report_ud;
  lua_State *home;    /* the main thread: S->L while nothing drives */
  weft_pool_t *pool;  /* for pool functions; created on first use */
  int owns_pool;
  Closer closers;     /* list head */
  const struct LwOwned *owned[LW_OWNED_MAX]; /* see LwOwned */
  int nowned;
  /* The metatables of tasks and promises: registry references, to set
   * them without a lookup by name. */
  int mt_future_ref;
  int mt_promise_ref; /* the same, with a finalizer: see promise_gc */
  int mt_sentinel_ref; /* task.c: see Reaper */
  struct Reaper *reaper; /* task.c: reports failures soon */
  int mt_call_ref; /* host.c: a call's metatable */
  struct Preempt *pre; /* preempt.c: while preemption is on */
  struct Link *link;  /* post.c: shared with the host's references */
  unsigned long preemptions;
  int preempted; /* the task just resumed was preempted */
#if LW_LUA51
  int wrap_ref; /* task.c: makes the wrappers of lw_wrap_wait */
#endif
} State;

#define STATE_KEY "weft.state"
#define FUTURE_MT "weft.Future"
#define PROMISE_MT "weft.Promise" /* its __name stays weft.Future */
#define SENTINEL_MT "weft.Sentinel"
#define ERROR_MT "weft.Error"
#define CHAN_MT "weft.Channel"
#define SEM_MT "weft.Semaphore"
#define GROUP_MT "weft.Group"
#define COMBO_MT "weft.Combo"

/* About Fut: the common head of a promise and a task userdata, followed
 * at once by the future (lw_future). nres counts the stored results; res
 * says how they are stored in UV_RESULT. observed is set once some code
 * retrieved the outcome (await, result, a combinator, a group). */
typedef struct Fut {
  State *S;
  int nres;
  unsigned char kind, res, observed, reported;
} Fut;

typedef struct Promise {
  Fut h;
  weft_future_t fut;
} Promise;

/* About Task: a Lua task. It is anchored in the registry (ref) from spawn
 * until it ends, so a running task is never collected; a group's member
 * stays anchored (gref) from its end until the group hands it out (see
 * About Group). Until its first run
 * (nargs >= 0) it has no coroutine: UV_CO holds its function (with a
 * single argument in UV_RESULT), or a table {fn, args...} when it has
 * several. From then on co is its coroutine
 * (also in UV_CO) until it ends; one that returned goes back to the
 * state's pool for a later task. status is the wake-up status the
 * continuation of the pending await reads. */
typedef struct Task {
  Fut h;
  weft_task_t t;
  lua_State *co;
  int ref;
  int gref; /* LUA_NOREF, or the anchor of an ended group member */
  int nargs;
  int status;
  unsigned char exposed; /* coroutine.running() was called: keep co */
#if LW_LUA51
  unsigned char kwait;   /* suspended by lw_yield: resume with LW_CONT */
  int kn, kcap;          /* the saved frame's size, its table's room */
  int kframe;            /* registry ref of that table, or LUA_NOREF */
  lua_KFunction k;       /* the continuation lw_yield left, and its */
  lua_KContext kctx;     /* context */
  lua_State *kco;        /* the coroutine that yielded */
#endif
  struct Task *unwinding; /* the task it waits for in unwind, if any */
  /* The innermost coroutine the task's code resumed through weft's
   * coroutine.resume (NULL: none; compared, never followed), and whether
   * a wait may suspend it: every coroutine from the task's down to it
   * can yield. See co_enter in task.c. */
  lua_State *inner;
  unsigned char inner_ok;
  union {
    uint64_t due;         /* weft.after, until fn's first run: after_fn */
    weft_task_t *joined;  /* group:join's hand-off slot, while it waits */
  } u;
} Task;

/* The future of the promise or task whose Fut is h: a Promise's fut and
 * a Task's t (whose first member is its future done) both follow the
 * Fut directly. */
#define lw_future(h) ((weft_future_t *)((Fut *)(h) + 1))
_Static_assert(offsetof(Promise, fut) == sizeof(Fut), "lw_future");
_Static_assert(offsetof(Task, t) == sizeof(Fut), "lw_future");
_Static_assert(offsetof(weft_task_t, done) == 0, "lw_future");

/* About the state upvalue: every binding function is a C closure whose
 * upvalue 1 is the State's full userdata. A script can replace any
 * upvalue of a C closure (debug.setupvalue), so upstate checks it on
 * every call: a full userdata of State's size that points at itself
 * (self is cleared when the state closes). Two API calls and a compare,
 * no registry lookup. lw_bad_state raises "<function>: corrupted
 * upvalue 1 (...)", or "<function>: the weft state is closed". */
void lw_bad_state(lua_State *L);
/* The state in upvalue 1, or NULL if that is not an open state (for
 * finalizers, which must not raise). [-0, +0, -] */
static inline State *lw_upstate_or_null(lua_State *L) {
  State *S = (State *)lua_touserdata(L, lua_upvalueindex(1));
  if (S == NULL || lua_rawlen(L, lua_upvalueindex(1)) != sizeof(State) ||
      S->self != S)
    return NULL;
  return S;
}
/* The checked state of the running binding function. [-0, +0, e] */
static inline State *upstate(lua_State *L) {
  State *S = lw_upstate_or_null(L);
  if (S == NULL) lw_bad_state(L);
  return S;
}
/* Pushes the State's userdata, the upvalue 1 of binding functions (see
 * above): lua_pushlightuserdata's replacement before luaL_setfuncs and
 * lua_pushcclosure. [-0, +1, -] */
void lw_push_state(lua_State *L, State *S);

/* About userdata tags: each userdata weft gives to scripts begins with a
 * tag: the address of a string naming its type (each file's *_TAG), or,
 * for futures and tasks, their state (Fut.S). With the userdata's size,
 * the tag tells weft's userdata of one type from any other: from a
 * foreign one given a weft metatable with debug.setmetatable, and from
 * weft's of another type. No Lua code can write a userdata's bytes, so
 * the tag cannot be forged. The metatable is not what is checked: a
 * script can change it, and it says nothing of the memory. */
static inline void *lw_toudata(lua_State *L, int idx, size_t size,
                               const char *tag) {
  void *p = lua_touserdata(L, idx); /* NULL unless a userdata */
  if (p == NULL || lua_rawlen(L, idx) != size || /* 0 if light */
      *(const char *const *)p != tag)
    return NULL;
  return p;
}
/* The same, or raises "<fname>: expected a <tag>, got <type>". */
void *lw_checkudata(lua_State *L, int idx, size_t size, const char *tag,
                    const char *fname);
/* Raises "<fname>: expected a <what>, got <type>". */
int lw_type_error(lua_State *L, int idx, const char *what, const char *fname);
/* Sets the __metatable field of the metatable on top to its name, so that
 * getmetatable(v) gives the name and plain Lua cannot reach the
 * metamethods (the debug library still can: each checks its argument). */
void lw_protect_mt(lua_State *L, const char *name);

/* How many idle coroutines a state keeps for reuse. */
#define CO_POOL_MAX 256

/* task.c */
Fut *lw_checkfut(lua_State *L, State *S, int idx, const char *fname);
/* The future or task of state S at idx, or NULL; by its tag (see About
 * userdata tags), whatever its metatable. S NULL: the state of L (a
 * registry lookup). Never raises. */
Fut *lw_tofut(lua_State *L, State *S, int idx);
Task *lw_need_task(lua_State *L, State *S, const char *fname);
/* About waits: a binding function that waits registers the task with
 * what it waits for, then returns lw_yield(L, ctx, k): the task's
 * coroutine yields, and once the driver resumes it, k(L, LUA_YIELD, ctx)
 * runs on the same stack and returns the function's results. On 5.2 and
 * later that is lua_yieldk. 5.1 and LuaJIT have no continuations: there
 * lw_yield saves the stack in the task and yields; the driver resumes the
 * coroutine with the value LW_CONT, which the function returns to a Lua
 * wrapper around it (lw_wrap_wait); seeing it, the wrapper calls the
 * function again with LW_CONT alone, which restores the stack and runs k
 * (see task.c). So on 5.1 every function that may wait must be wrapped:
 * the fields named to lw_wrap_fields, and any closure passed to
 * lw_wrap_wait. */
#if LW_LUA51
int lw_yield(lua_State *L, lua_KContext ctx, lua_KFunction k);
#else
#define lw_yield(L, ctx, k) lua_yieldk(L, 0, ctx, k)
#endif
/* Makes the C closure on top usable as a function that may wait: on 5.1,
 * replaces it by its wrapper (see About waits). [-1, +1, m] */
void lw_wrap_wait(lua_State *L);
/* Wraps the named fields (NULL-terminated) of the table at idx so. */
void lw_wrap_fields(lua_State *L, int idx, const char *const *names);

/* For the continuation of a wait: the task whose coroutine L is, if weft's
 * driver resumed it; NULL if something else did (the original
 * coroutine.resume, saved before weft was loaded or reached through the
 * debug library). The continuation must then yield again at once with
 * itself as continuation, so the task stays in its wait untouched:
 *   if ((t = lw_k_task(L)) == NULL) return lua_yieldk(L, 0, ctx, k); */
Task *lw_k_task(lua_State *L);
Task *lw_in_task(lua_State *L, State *S, const char *fname);
int lw_spawn(lua_State *L, State *S, int first, const char *fname);
int lw_spawn_at(lua_State *L, State *S, int fi, int prio, int name_idx);
int lw_push_outcome(lua_State *L, int idx);
/* Pushes field k (EX_*) of the extras of the future or task at idx, nil
 * if unset; returns its type. Allocates nothing. [-0, +1, -] */
int lw_get_extra(lua_State *L, int idx, int k);
/* Sets field k (EX_*) of those extras to the value on top, popped.
 * [-1, +0, m] */
void lw_set_extra(lua_State *L, int idx, int k);
/* Continuation of a wait with no result: raises if the wake-up was a
 * cancellation. */
int lw_wake_k(lua_State *L, int st, lua_KContext ctx);
void lw_push_task(lua_State *L, Task *t);
/* Pushes the cancellation error of the cancelled future at idx: the one
 * given to cancel(), or the plain one, made and kept on first use so that
 * every await raises the same value. [-0, +1, m] */
void lw_push_cancel_error(lua_State *L, int idx);
/* Raises the cancellation error of t, the running task. Never returns. */
void lw_raise_cancel(lua_State *L, Task *t);
void lw_new_error(lua_State *L, const char *kind, const char *msg);
int lw_is_error(lua_State *L, int idx, const char *kind);
const char *lw_state_name(int state);
extern const char *const lw_prio_names[];
void lw_open_futures(lua_State *L, State *S);
int lw_report_failed(lua_State *L, State *S);
/* Pushes the text of the error value at idx: a string or number as is,
 * a value with __tostring through it, a table without one as its first
 * fields ("{code = 42, msg = \"x\"}"), a __tostring that raises as a
 * note saying so. Never raises but for memory. [-0, +1, m] */
void lw_push_error_text(lua_State *L, int idx);

/* marshal.c */
/* Converts the nargs values from first into an array value in *out (nil
 * on entry). out must belong to a collectable object that frees it, since
 * a conversion that raises leaves a part built: the path of a value that
 * cannot cross threads, or no memory. [-0, +0, e] */
void lw_args_to_value(lua_State *L, int first, int nargs, const char *fname,
                      weft_value_t *out);
/* Pushes a Lua copy of v; raises "<fname>: result nested too deeply"
 * past the depth lw_args_to_value allows (200 levels), so a host's
 * value cannot exhaust the C stack. [-0, +1, e] */
void lw_push_value(lua_State *L, const weft_value_t *v, const char *fname);

/* Makes the object at idx a resource of task t: when t ends, its
 * __close metamethod runs (unless it was collected first). [-0, +0, m] */
void lw_task_own(lua_State *L, Task *t, int idx);

/* About LwOwned: how a resource a task owns is closed when the task ends:
 * close gets the resource's userdata and must not raise or allocate
 * (memory may be short). Each owned type puts one in its metatable with
 * lw_set_owned_close (metatable on top), which also lists it in the state:
 * a script can put any light userdata in a metatable (debug), so the task
 * calls only a listed LwOwned, and only on a userdata of its size and tag
 * (see About userdata tags). */
typedef struct LwOwned {
  void (*close)(lua_State *L, void *ud);
  size_t size;     /* of the userdata */
  const char *tag; /* its tag */
} LwOwned;
void lw_set_owned_close(lua_State *L, const LwOwned *o);

/* host.c */
void lw_open_host(lua_State *L, State *S);
/* Starts a call of fn (weft_call_t semantics) with the nargs values from
 * first as its arguments (converted by lw_args_to_value, raising as it
 * does) from task t (NULL only for WEFT_FN_SYNC), waits for it and returns
 * its result as a host function would; use as `return lw_call(...)`.
 * A rejection whose code is not WEFT_ESCRIPT (an I/O job's) raises an
 * error of kind "io" whose code field is libuv's name for it ("ENOENT"). */
int lw_call(lua_State *L, Task *t, const char *name, weft_host_fn fn,
            const weft_fn_opts *opts, int first, int nargs);
/* For a call made by the I/O layer (weft_io.h): pushes its holder and
 * returns where the call goes; fname names it in errors (static). Make
 * the holder first, then the call, so that nothing can leak it.
 * [-0, +1, m] */
weft_call_t **lw_call_slot(lua_State *L, const char *fname);
/* Labels the call in the holder on top: its errors read "<fname>:
 * <where>: <Message>" (where: the stack index of a string, 0 for none),
 * and its wait ends after timeout_ms (0: none) with a timeout error. */
void lw_call_label(lua_State *L, int where, uint64_t timeout_ms);
/* Waits, in task t, for the call in the holder on top, as its start left
 * it (r: 0, or WEFT_EFULL; another code raises "<fname>: <message>"), and
 * returns its result; use as `return lw_call_wait(...)`. */
int lw_call_wait(lua_State *L, Task *t, int r);
/* Makes sure the state has a worker pool, the loop's (raises if it
 * cannot start one). */
void lw_need_pool(lua_State *L, State *S, const char *fname);
void lw_closer_add(State *S, Closer *c);
void lw_closer_remove(Closer *c);

/* The I/O modules. Each adds its primitives to the internal table on top
 * (the module's Lua part builds the weft.<name> table from them). */
void lw_open_fs(lua_State *L, State *S);   /* fs.c */
void lw_open_proc(lua_State *L, State *S); /* proc.c: process, dns */
void lw_open_tcp(lua_State *L, State *S);  /* tcp.c */
void lw_open_http(lua_State *L, State *S); /* http.c */
void lw_host_stats(lua_State *L, State *S);
void lw_http_stats(lua_State *L, State *S); /* http.c */
/* Sets field k of the table on top to the integer v. [-0, +0, e] */
void lw_setint(lua_State *L, const char *k, uint64_t v);
void lw_state_close(State *S);
/* Misuse of a C entry of weft_lua.h by the host: returns LUA_ERRRUN with
 * the message of which pushed (or LUA_ERRMEM), as a failed lua_pcall
 * would. [-0, +1, -] */
enum { LW_MISUSE_RUN, LW_MISUSE_SPAWN, LW_MISUSE_RESULT };
int lw_misuse(lua_State *L, int which);
/* The open state of L, or NULL (none yet, or closed); never raises. For
 * code with no state upvalue. [-0, +0, -] */
State *lw_find_state(lua_State *L);
/* The state of L, with the module opened first if needed (metatables,
 * prelude). [-0, +0, m] */
State *lw_open_state(lua_State *L);

/* preempt.c: the driver brackets each resume of a task's coroutine with
 * these while S->pre is set. */
typedef struct Preempt Preempt;
void lw_preempt_begin(Preempt *p, lua_State *co);
void lw_preempt_end(Preempt *p, lua_State *co);
void lw_preempt_retarget(Preempt *p, lua_State *co);
void lw_preempt_free(State *S);
int lw_l_preempt(lua_State *L); /* weft.preempt */

/* sync.c */
void lw_open_sync(lua_State *L, State *S);

/* post.c: stops the host's references from posting into the loop, which
 * is about to be freed (it then cancels what they posted). */
void lw_post_close(State *S);

#endif /* WEFT_LWEFT_H */
