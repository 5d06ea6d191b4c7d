/*
 * weft_lua.h - embedding weft in a Lua 5.4 state.
 * SPDX-License-Identifier: MIT
 *
 * A host opens the module with luaL_requiref(L, "weft", luaopen_weft, 1)
 * (or lets scripts require "weft" from weft.so), then runs script
 * functions as tasks with weft_lua_run. One weft state (a loop, its
 * scheduler and its tasks) exists per Lua state; its memory comes from the
 * Lua state's allocator.
 *
 * Misuse: every function checks its arguments. With a NULL L those that
 * return a weft code return WEFT_EINVAL, the lua_pcall-like ones
 * (weft_lua_run, weft_lua_spawn, weft_lua_result) LUA_ERRERR with nothing
 * pushed; a bad nargs or idx gives LUA_ERRRUN with a message pushed.
 */
#ifndef WEFT_LUA_H
#define WEFT_LUA_H

#include <lua.h>

#include "weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the module: pushes the weft table. [-0, +1, m] */
WEFT_API int luaopen_weft(lua_State *L);
/* require "weft.ngx" (docs/libraries.md), for Lua's loader of submodules
 * from weft's library; a host that opened weft can require it. */
WEFT_API int luaopen_weft_ngx(lua_State *L);

/* Runs the function below nargs arguments on top of L as the main task,
 * as weft.run does, and drives the loop until the task and every task it
 * spawned have ended. Like lua_pcall: returns LUA_OK with the results
 * pushed (LUA_MULTRET), or an error status with one error value pushed.
 * With traceback set, a failure of the main task is pushed as a string
 * with the task's traceback appended; otherwise the error value itself
 * (tables keep their identity). Failed tasks that nobody awaited are
 * reported through the report function before this returns.
 * Must not be called from inside a task. [-(nargs+1), +(nres|1), -] */
WEFT_API int weft_lua_run(lua_State *L, int nargs, int traceback);

/* Called with the text of each unhandled task failure (message and
 * traceback). The default writes "weft: <text>" to stderr. */
typedef void (*weft_lua_report_fn)(void *ud, const char *text);
/* Sets the report function (NULL restores the default). Opens the module's
 * state if needed. [-0, +0, m] */
WEFT_API void weft_lua_set_report(lua_State *L, weft_lua_report_fn fn,
                                  void *ud);
/* How many unhandled failures were reported so far. [-0, +0, m] */
WEFT_API unsigned long weft_lua_unhandled(lua_State *L);
/* The loop that runs this state's tasks. [-0, +0, m] */
WEFT_API weft_loop_t *weft_lua_loop(lua_State *L);

/* ---------------------------------------------------- host functions */

/* Pushes a Lua function that calls the host function fn, run as opts says
 * (kind, priority, timeout, on_cancel, ud; see weft.h). name is used in
 * errors ("fetch: timed out after 100 ms") and weft_call_name. Put the
 * function where scripts find it (lua_setglobal, a module table). Calls
 * of pool and loop functions suspend only the calling task and must be
 * made inside a task; sync functions may be called anywhere. Arguments
 * are deep-copied into weft values (errors name the path of a value that
 * cannot cross: "args[2].items[3]: functions cannot cross threads"); the
 * result comes back as a Lua value; a rejection raises a weft error of
 * kind "host" with the message "<name>: <message>". A result nested
 * deeper than 200 levels raises "<name>: result nested too deeply".
 * Returns 0 (function pushed) or WEFT_EINVAL (nothing pushed; also for a
 * NULL name). [-0, +1, m] */
WEFT_API int weft_lua_push_fn(lua_State *L, const char *name, weft_host_fn fn,
                              const weft_fn_opts *opts);

/* Makes this state run its pool functions on pool, which the host owns
 * and may share between states on several threads (free it after the
 * states). Must come before the first pool call: WEFT_ESTATE otherwise.
 * Without it a state starts its own pool (one thread per CPU) on first
 * use. [-0, +0, m] */
WEFT_API int weft_lua_set_pool(lua_State *L, weft_pool_t *pool);

/* Turns preemption on (slice_ms > 0) or off (0). With it on, a task
 * whose Lua code has run slice_ms without waiting is made to yield, as by
 * weft.yield(), at a point where Lua can yield (not inside a C function
 * that calls Lua, such as a string.gsub callback, nor inside a nested
 * coroutine: there, when it returns to the task), and the loop fires
 * timers and polls I/O before the next resume. A timer is then about two
 * slices late at most with one task computing, about one slice per task
 * computing at once with several. Every instruction boundary may be a
 * yield point: tasks that share tables must not rely on running
 * uninterrupted. A coroutine with a debug hook of its own keeps it and
 * is not preempted. A task cancelled while it computes gets its
 * cancellation error when it resumes after its next preemption; one that
 * catches it and computes on is not stopped. A watchdog thread, which
 * wakes once a slice, and the SIGURG signal do it (a handler with
 * SA_RESTART is installed for the process, once): call this on the
 * thread that runs the loop, before running it, and not from inside a
 * task (WEFT_ESTATE). WEFT_ENOMEM if
 * the thread or its memory cannot be had; WEFT_EINVAL if the handler
 * cannot be installed. No hook is set, so Lua runs at full speed, until
 * a task overruns its slice. [-0, +0, m] */
WEFT_API int weft_lua_set_preempt(lua_State *L, unsigned slice_ms);

/* ------------------------------------- calls from other threads */

/* About weft_lua_ref_t: the host's reference to a script function (or
 * channel), for calling it later from any thread: progress callbacks,
 * event handlers, a stream of events fed to a script. Each
 * weft_lua_call_later runs the function as a new task on the loop
 * thread, with the arguments converted as host function results are;
 * calls through one reference from one thread start in the order they
 * were made (tasks of one priority start FIFO). A reference keeps the
 * loop waiting for calls (a weft_loop_ref hold: weft_lua_run does not
 * return, nor a borrowed loop's uv_run) until weft_lua_unref; drop it
 * once nothing will call any more. It stays valid after the state closed
 * (calls then return WEFT_ECLOSED), until weft_lua_unref, which every
 * reference needs. Its memory comes from the value allocator. */
typedef struct weft_lua_ref_s weft_lua_ref_t;

/* Makes *out (OUT) a reference to the function at idx, typically in a
 * lua_CFunction the host registered for scripts (host functions made by
 * weft_lua_push_fn get weft values, which hold no functions). 0;
 * WEFT_EINVAL (not a function; *out NULL); WEFT_ENOMEM. [-0, +0, m] */
WEFT_API int weft_lua_ref_fn(lua_State *L, int idx, weft_lua_ref_t **out);
/* Makes *out (OUT) a reference that sends on the channel at idx (made by
 * weft.channel): each call sends its first argument as ch:send would, so
 * values posted from one thread arrive in order; while the channel is
 * full they wait, each in its task, and none is dropped. A value sent
 * after the channel was closed fails its task with ch:send's "channel is
 * closed" error, which is reported as an unhandled failure (see
 * weft_lua_set_report). 0; WEFT_EINVAL (not a channel); WEFT_ENOMEM.
 * [-0, +0, m] */
WEFT_API int weft_lua_ref_chan(lua_State *L, int idx, weft_lua_ref_t **out);
/* Calls the referenced function later, on the loop thread, as a new task
 * with the items of args (an array value, or NULL or nil for none) as
 * arguments. *args is taken whatever the outcome (left nil). 0;
 * WEFT_EINVAL (NULL ref, args neither array nor nil); WEFT_ENOMEM;
 * WEFT_ECLOSED (the state closed). A call that cannot start on the loop
 * thread (no memory there, a value nested too deeply) and a task that
 * fails are reported through the report function and counted by
 * weft_lua_unhandled; calls still queued when the state closes are
 * dropped with their arguments. Threads: any. */
WEFT_API int weft_lua_call_later(weft_lua_ref_t *ref, weft_value_t *args);
/* weft_lua_call_later with the one argument v (not nil), taken whatever
 * the outcome: for a channel reference, sends v. Threads: any. */
WEFT_API int weft_lua_chan_send(weft_lua_ref_t *ref, weft_value_t *v);
/* Drops the reference: calls made before it still run; on the loop
 * thread the function is released and the loop's hold dropped. ref must
 * not be used afterwards. NULL is harmless. Threads: any. */
WEFT_API void weft_lua_unref(weft_lua_ref_t *ref);

/* -------------------------------------------- non-blocking evaluation */

/* Called on the loop thread when a task started by weft_lua_spawn ends;
 * the task is at index idx of L (read it with weft_lua_result). */
typedef void (*weft_lua_done_fn)(void *ud, lua_State *L, int idx);

/* Starts the function below nargs arguments on top of L as a task and
 * returns at once; the task runs when the loop runs (weft_lua_run,
 * weft_lua_poll, or the host's uv loop for a borrowed loop). Like
 * lua_pcall: LUA_OK with the task pushed, or an error status with the
 * error pushed. done may be NULL. Many evaluations may run at once.
 * [-(nargs+1), +1, -] */
WEFT_API int weft_lua_spawn(lua_State *L, int nargs, weft_lua_done_fn done,
                            void *ud);

/* Pushes the outcome of the ended task at idx: LUA_OK with its *nres
 * values, or an error status with its error (the same value the task
 * raised). Marks the failure handled. [-0, +(nres|1), -] */
WEFT_API int weft_lua_result(lua_State *L, int idx, int *nres);

/* About weft_lua_eval_t: names an evaluation for weft_lua_cancel. A plain
 * value that holds nothing: copy it, keep it or drop it freely; it stays
 * harmless once the evaluation ended (weft_lua_cancel then returns
 * WEFT_ESTATE) and never names another one. Public read-only: id (the
 * task's id, as weft.tasks() shows it); ref is private. */
typedef struct weft_lua_eval_s {
  uint64_t id;
  int ref;
} weft_lua_eval_t;

/* weft_lua_spawn, which also fills *eval (OUT; may be NULL) with the
 * handle of the new task; on failure *eval is a handle of nothing (id 0).
 * [-(nargs+1), +1, -] */
WEFT_API int weft_lua_spawn_eval(lua_State *L, int nargs,
                                 weft_lua_done_fn done, void *ud,
                                 weft_lua_eval_t *eval);

/* Cancels the evaluation eval names, as t:cancel() would: its pending
 * wait raises the cancellation error, its to-be-closed variables close,
 * and its done callback then sees it "cancelled" (weft_lua_task_state;
 * weft_lua_result gives the cancellation error), unless its function
 * caught the error and returned. Returns 0 when this call requested the
 * cancellation, WEFT_ECANCELED when one was requested already (an earlier
 * call, or a cancelled parent task) and the task has not ended yet,
 * WEFT_ESTATE when it has ended (or L's weft state is gone), WEFT_EINVAL
 * when L or eval is NULL or eval names nothing (id 0). Any later call is
 * harmless. [-0, +0, -] */
WEFT_API int weft_lua_cancel(lua_State *L, const weft_lua_eval_t *eval);

/* The state of the task or future at idx: WEFT_FUTURE_PENDING,
 * _FULFILLED, _REJECTED or _CANCELLED; WEFT_EINVAL when idx is not a weft
 * task or future (or not a valid stack index, or L is NULL). For a done
 * callback that must tell a cancellation from a failure. [-0, +0, -] */
WEFT_API int weft_lua_task_state(lua_State *L, int idx);

/* Makes the weft state of L borrow uv_loop (a uv_loop_t *) that the host
 * runs itself, instead of owning a loop: tasks then run from inside the
 * host's uv_run. Must come before luaopen_weft (WEFT_ESTATE otherwise).
 * weft_lua_run must not be called from inside that uv_run. [-0, +0, m] */
WEFT_API int weft_lua_use_uv_loop(lua_State *L, void *uv_loop);

/* Runs ready tasks, due timers and arrived completions without blocking;
 * returns the number of live tasks (0: all done; failed tasks nobody
 * observed are then reported). For hosts that drive weft from their own
 * loop with weft_loop_backend_fd / weft_loop_timeout. [-0, +0, -] */
WEFT_API int weft_lua_poll(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_LUA_H */
