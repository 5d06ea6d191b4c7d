/*
 * driver.c - libFuzzer entry points of the fuzz targets whose checks are
 * written in Lua (tests/fuzz/<target>.lua): one Lua state with weft for
 * the whole run, and for each input a weft main task that calls the
 * target's check function with the input's bytes.
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fuzz.h"
#include "weft_lua.h"

#include "common_lua.h" /* fuzz_common_lua[]: common.lua */
#include "target_lua.h" /* fuzz_target_lua[]: the target's script */

static lua_State *L;
static int check_ref; /* the target's check function, in the registry */
static int stats_ref; /* weft.stats */
static unsigned long unhandled;

/* An unobserved task failure is a defect of the check script or of weft:
 * the run stops with it. */
static void report(void *ud, const char *text) {
  (void)ud;
  fprintf(stderr, "fuzz: unhandled task failure: %s\n", text);
  unhandled++;
}

void fuzz_die(const char *what, const char *msg) {
  fprintf(stderr, "fuzz: %s: %s\n", what, msg ? msg : "(no message)");
  abort();
}

/* Runs the chunk code with the nargs values on top as its arguments,
 * leaving its one result. */
static void run_chunk(const char *name, const char *code, size_t len,
                      int nargs) {
  if (luaL_loadbuffer(L, code, len, name) != LUA_OK)
    fuzz_die(name, lua_tostring(L, -1));
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) fuzz_die(name, lua_tostring(L, -1));
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  if (L == NULL) fuzz_die("init", "cannot create a Lua state");
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  weft_lua_set_report(L, report, NULL);
  lua_getfield(L, -1, "stats");
  stats_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  run_chunk("=common.lua", fuzz_common_lua, sizeof fuzz_common_lua - 1, 1);
  fuzz_setup(L); /* the target's host functions, or nil */
  run_chunk("=" FUZZ_TARGET ".lua", fuzz_target_lua,
            sizeof fuzz_target_lua - 1, 3);
  if (!lua_isfunction(L, -1))
    fuzz_die(FUZZ_TARGET ".lua", "does not return a check function");
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  return 0;
}

/* The count field of weft.stats(). */
static lua_Integer stat(const char *field) {
  lua_Integer n;
  lua_rawgeti(L, LUA_REGISTRYINDEX, stats_ref);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, field);
  n = lua_tointeger(L, -1);
  lua_pop(L, 2);
  return n;
}

/* Every input must leave the state as it found it: the check returned,
 * no task failed unobserved, none is left. A full collection at the end
 * frees what the input made, so libFuzzer's leak check (run when an input
 * allocated more blocks than it freed) looks only at real leaks. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (weft_lua_run(L, 1, 1) != LUA_OK)
    fuzz_die(FUZZ_TARGET, lua_tostring(L, -1));
  lua_settop(L, 0);
  if (unhandled > 0) fuzz_die(FUZZ_TARGET, "a task failed unobserved");
  if (stat("live") != 0 || stat("timers") != 0)
    fuzz_die(FUZZ_TARGET, "tasks or timers left after the input");
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
