/*
 * w5_host_roundtrip.c - W5 worker round trip: a script awaits a host
 * function x -> x + 1 run on a worker thread, N times in sequence (W5),
 * then N times with 64 in flight (W5c). Prints one JSON line per run with
 * round trips per second and the median and p99 latency in microseconds.
 * usage: w5_host_roundtrip [N] [script] [seq|c|both]
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "weft.h"
#include "weft_lua.h"

static void inc(weft_call_t *call, void *ud) {
  const weft_value_t *a = weft_call_args(call);
  weft_value_t r;
  (void)ud;
  weft_value_int(&r, a->u.a.items[0].u.i + 1);
  weft_call_resolve(call, &r);
}

static void clock_us(weft_call_t *call, void *ud) {
  weft_value_t r;
  (void)ud;
  weft_value_num(&r, (double)uv_hrtime() / 1e3);
  weft_call_resolve(call, &r);
}

static void reg(lua_State *L, const char *name, weft_host_fn fn, int kind) {
  weft_fn_opts o;
  memset(&o, 0, sizeof o);
  o.kind = kind;
  o.priority = WEFT_PRIO_NORMAL;
  weft_lua_push_fn(L, name, fn, &o);
  lua_setglobal(L, name);
}

int main(int argc, char **argv) {
  const char *n = argc > 1 ? argv[1] : "100000";
  const char *script = argc > 2 ? argv[2] : "bench/w5_host_roundtrip.lua";
  const char *mode = argc > 3 ? argv[3] : "both";
  lua_State *L = luaL_newstate();
  int status;
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  reg(L, "inc", inc, WEFT_FN_POOL);
  reg(L, "clock_us", clock_us, WEFT_FN_SYNC);
  if (luaL_loadfile(L, script) != LUA_OK) {
    fprintf(stderr, "w5: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_pushstring(L, n);
  lua_pushstring(L, mode);
  status = weft_lua_run(L, 2, 1);
  if (status != LUA_OK) fprintf(stderr, "w5: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return status != LUA_OK;
}
