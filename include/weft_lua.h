/*
 * weft_lua.h - embedding weft in a Lua 5.4 state.
 * SPDX-License-Identifier: MIT
 *
 * A host opens the module with luaL_requiref(L, "weft", luaopen_weft, 1)
 * (or lets scripts require "weft" from weft.so), then runs script
 * functions as tasks with weft_lua_run. One weft state (a loop, its
 * scheduler and its tasks) exists per Lua state; its memory comes from the
 * Lua state's allocator.
 */
#ifndef WEFT_LUA_H
#define WEFT_LUA_H

#include <lua.h>

#include "weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the module: pushes the weft table. [-0, +1, m] */
int luaopen_weft(lua_State *L);

/* Runs the function below nargs arguments on top of L as the main task,
 * as weft.run does, and drives the loop until the task and every task it
 * spawned have ended. Like lua_pcall: returns LUA_OK with the results
 * pushed (LUA_MULTRET), or an error status with one error value pushed.
 * With traceback set, a failure of the main task is pushed as a string
 * with the task's traceback appended; otherwise the error value itself
 * (tables keep their identity). Failed tasks that nobody awaited are
 * reported through the report function before this returns.
 * Must not be called from inside a task. [-(nargs+1), +(nres|1), -] */
int weft_lua_run(lua_State *L, int nargs, int traceback);

/* Called with the text of each unhandled task failure (message and
 * traceback). The default writes "weft: <text>" to stderr. */
typedef void (*weft_lua_report_fn)(void *ud, const char *text);
/* Sets the report function (NULL restores the default). Opens the module's
 * state if needed. [-0, +0, m] */
void weft_lua_set_report(lua_State *L, weft_lua_report_fn fn, void *ud);
/* How many unhandled failures were reported so far. [-0, +0, m] */
unsigned long weft_lua_unhandled(lua_State *L);
/* The loop that runs this state's tasks. [-0, +0, m] */
weft_loop_t *weft_lua_loop(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_LUA_H */
