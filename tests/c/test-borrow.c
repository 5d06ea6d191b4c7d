/*
 * test-borrow.c - a Lua state whose weft loop borrows the host's uv loop:
 * tasks started with weft_lua_spawn run from inside the host's uv_run.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "util.h"
#include "weft_lua.h"

static void inc(weft_call_t *call, void *ud) {
  const weft_value_t *a = weft_call_args(call);
  weft_value_t r;
  (void)ud;
  weft_value_int(&r, a->u.a.items[0].u.i + 1);
  weft_call_resolve(call, &r);
}

typedef struct log {
  int ok, failed;
  char last_error[128];
} log_t;

static void done(void *ud, lua_State *L, int idx) {
  log_t *log = ud;
  int n;
  if (weft_lua_result(L, idx, &n) == LUA_OK) {
    assert_int_equal(n, 1);
    assert_true(lua_tointeger(L, -1) >= 1);
    log->ok++;
    lua_pop(L, n);
  } else {
    snprintf(log->last_error, sizeof log->last_error, "%s",
             lua_tostring(L, -1));
    log->failed++;
    lua_pop(L, 1);
  }
}

static const char chunk[] =
    "local i = ... weft.sleep(5 * i) local x = inc(i) "
    "if i == 3 then error('three') end return x";

/* The host runs its own uv loop; weft's tasks (sleeps, pool calls, a
 * failure) all complete inside it, and uv_run returns once they have. */
static void borrowed_loop_runs_spawned_tasks(void **state) {
  uv_loop_t uv;
  lua_State *L;
  log_t log;
  weft_fn_opts o;
  test_alloc a;
  int i;
  (void)state;
  memset(&log, 0, sizeof log);
  test_alloc_init(&a);
  assert_int_equal(uv_loop_init(&uv), 0);
  L = lua_newstate(test_alloc_fn, &a);
  luaL_openlibs(L);
  assert_int_equal(weft_lua_use_uv_loop(L, &uv), 0);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  assert_int_equal(weft_lua_use_uv_loop(L, &uv), WEFT_ESTATE);
  memset(&o, 0, sizeof o);
  o.kind = WEFT_FN_POOL;
  o.priority = WEFT_PRIO_NORMAL;
  assert_int_equal(weft_lua_push_fn(L, "inc", inc, &o), 0);
  lua_setglobal(L, "inc");
  for (i = 1; i <= 4; i++) {
    assert_int_equal(luaL_loadstring(L, chunk), LUA_OK);
    lua_pushinteger(L, i);
    assert_int_equal(weft_lua_spawn(L, 1, done, &log), LUA_OK);
    lua_pop(L, 1);
  }
  uv_run(&uv, UV_RUN_DEFAULT);
  assert_int_equal(log.ok, 3);
  assert_int_equal(log.failed, 1);
  assert_non_null(strstr(log.last_error, "three"));
  lua_close(L);
  uv_run(&uv, UV_RUN_DEFAULT); /* nothing of weft's is left in it */
  assert_int_equal(uv_loop_close(&uv), 0);
  assert_int_equal(a.live_blocks, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(borrowed_loop_runs_spawned_tasks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
