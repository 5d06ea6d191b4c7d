/*
 * 12-group-spawn-oom.c - g:spawn under memory pressure: it used to raise
 * "not enough memory" while the child it had started ran on outside the
 * group (made the task, then failed to record it as a member). Now
 * either the child is a member, or g:spawn raises and the child's
 * function never runs. Every allocation from the n-th on fails during
 * the g:spawn call, for n = 1, 2, ... until the call no longer fails.
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

/* try_spawn(n, g, fn) -> pcall(g.spawn, g, fn), with every allocation
 * from the n-th on failing during the call (and only then: the call is
 * made from C, with its stack space taken first). The test_alloc is
 * upvalue 1. */
static int l_try_spawn(lua_State *L) {
  test_alloc *a = lua_touserdata(L, lua_upvalueindex(1));
  lua_Integer n = luaL_checkinteger(L, 1);
  int r;
  luaL_checkstack(L, 8, NULL);
  lua_getfield(L, 2, "spawn");
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  a->sticky = 1;
  a->fail_at = a->allocs + (size_t)n;
  r = lua_pcall(L, 2, 1, 0);
  a->fail_at = 0;
  lua_pushboolean(L, r == LUA_OK);
  lua_insert(L, -2);
  return 2;
}

/* failed() -> how many allocations failed so far. */
static int l_failed(lua_State *L) {
  test_alloc *a = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushinteger(L, (lua_Integer)a->failed);
  return 1;
}

/* m members first, so that the member table grows at some sweeps. */
static const char script[] =
    "local try_spawn, failed = ...\n"
    "local raised, sweeps = 0, 0\n"
    "for m = 0, 9 do\n"
    "  for n = 1, 10000 do\n"
    "    local ran, spawned, err = false\n"
    "    local before = failed()\n"
    "    weft.group(function(g)\n"
    "      for _ = 1, m do g:spawn(function() end) end\n"
    "      spawned, err = try_spawn(n, g, function() ran = true end)\n"
    "      if spawned then assert(g:size() == m + 1, 'not a member') end\n"
    "    end)\n"
    "    weft.sleep(0) -- a child outside the group would run by now\n"
    "    if spawned then\n"
    "      assert(ran, 'a member that never ran')\n"
    "    else\n"
    "      assert(not ran, 'g:spawn raised (' .. tostring(err) ..\n"
    "        ') and its child ran')\n"
    "      raised = raised + 1\n"
    "    end\n"
    "    sweeps = sweeps + 1\n"
    "    if failed() == before then break end\n"
    "  end\n"
    "end\n"
    "return sweeps, raised\n";

static void group_spawn_is_all_or_nothing_under_oom(void **state) {
  test_alloc a;
  lua_State *L;
  (void)state;
  test_alloc_init(&a);
  L = lua_newstate(test_alloc_fn, &a);
  assert_non_null(L);
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  assert_int_equal(luaL_loadstring(L, script), LUA_OK);
  lua_pushlightuserdata(L, &a);
  lua_pushcclosure(L, l_try_spawn, 1);
  lua_pushlightuserdata(L, &a);
  lua_pushcclosure(L, l_failed, 1);
  if (weft_lua_run(L, 2, 1) != LUA_OK) fail_msg("%s", lua_tostring(L, -1));
  assert_true(lua_tointeger(L, -1) > 0); /* some spawns did fail */
  printf("%d sweeps, %d raised\n", (int)lua_tointeger(L, -2),
         (int)lua_tointeger(L, -1));
  lua_close(L);
  test_alloc_expect_empty(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(group_spawn_is_all_or_nothing_under_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
