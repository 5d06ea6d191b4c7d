/*
 * 12-preempt-watchdog.c - preemption from C (weft_lua_set_preempt): a
 * task that computes without waiting is stopped when it is cancelled or
 * timed out (it used to compute on, so weft_lua_run never returned), and
 * the watchdog thread starts and stops cleanly; run under ThreadSanitizer
 * too.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "util.h"
#include "weft_lua.h"

static lua_State *open_state(test_alloc *a) {
  lua_State *L;
  test_alloc_init(a);
  L = lua_newstate(test_alloc_fn, a);
  assert_non_null(L);
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  return L;
}

static void close_state(lua_State *L, test_alloc *a) {
  lua_close(L);
  test_alloc_expect_empty(a);
}

/* The spinning loops make a table now and then: under ThreadSanitizer a
 * signal is delivered only inside an intercepted call, such as malloc. */
static const char spin[] =
    "local function spin()\n"
    "  local n = 0\n"
    "  while true do\n"
    "    n = n + 1\n"
    "    if n % 1000 == 0 then local t = {} end\n"
    "  end\n"
    "end\n";

static void run(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK)
    fail_msg("load: %s", lua_tostring(L, -1));
  if (weft_lua_run(L, 0, 0) != LUA_OK)
    fail_msg("run: %s", lua_tostring(L, -1));
}

static void cancelled_computing_task_ends_cancelled(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  char code[1024];
  (void)state;
  assert_int_equal(weft_lua_set_preempt(L, 1), 0);
  snprintf(code, sizeof code,
           "%s"
           "local t = weft.spawn(spin)\n"
           "weft.sleep(5)\n"
           "t:cancel()\n"
           "local ok, err = pcall(t.await, t)\n"
           "return t:state(), weft.is_cancelled(err)\n",
           spin);
  run(L, code);
  assert_string_equal(lua_tostring(L, -2), "cancelled");
  assert_true(lua_toboolean(L, -1));
  lua_settop(L, 0);
  close_state(L, &a);
}

static void timed_out_computation_ends(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a);
  char code[1024];
  (void)state;
  assert_int_equal(weft_lua_set_preempt(L, 1), 0);
  snprintf(code, sizeof code,
           "%s"
           "local ok, err = pcall(weft.timeout, 5, spin)\n"
           "return ok, weft.is_timeout(err)\n",
           spin);
  run(L, code);
  /* weft_lua_run returns once every task has ended: the spin too. */
  assert_false(lua_toboolean(L, -2));
  assert_true(lua_toboolean(L, -1));
  lua_settop(L, 0);
  /* Off and on again between runs; the state closes with the watchdog
   * running. */
  assert_int_equal(weft_lua_set_preempt(L, 0), 0);
  assert_int_equal(weft_lua_set_preempt(L, 2), 0);
  run(L, "return weft.stats().preemptions\n");
  assert_true(lua_tointeger(L, -1) > 0);
  lua_settop(L, 0);
  close_state(L, &a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancelled_computing_task_ends_cancelled),
      cmocka_unit_test(timed_out_computation_ends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
