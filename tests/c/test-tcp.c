/*
 * test-tcp.c - weft.tcp at the edges of a Lua state: closing a state while
 * sockets wait to read, write, connect and accept, and serving from a uv
 * loop that the host runs itself (handler tasks spawned inside its uv_run).
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

static lua_State *open_state(test_alloc *a, uv_loop_t *borrow) {
  lua_State *L;
  test_alloc_init(a);
  L = lua_newstate(test_alloc_fn, a);
  assert_non_null(L);
  luaL_openlibs(L);
  if (borrow) assert_int_equal(weft_lua_use_uv_loop(L, borrow), 0);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  return L;
}

static void spawn(lua_State *L, const char *code, weft_lua_done_fn done,
                  void *ud) {
  if (luaL_loadstring(L, code) != LUA_OK)
    fail_msg("load: %s", lua_tostring(L, -1));
  if (weft_lua_spawn(L, 0, done, ud) != LUA_OK)
    fail_msg("spawn: %s", lua_tostring(L, -1));
  lua_pop(L, 1);
}

static lua_Integer global_int(lua_State *L, const char *name) {
  lua_Integer v;
  lua_getglobal(L, name);
  v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A server whose handlers never read or write, a client stuck writing
 * 64 MB, one stuck reading, a main task in server:wait() and a name
 * lookup in flight: lua_close must close every socket and free every
 * byte (the sanitizer build checks the memory outside Lua's allocator). */
static void closing_a_state_closes_every_socket(void **state) {
  test_alloc a;
  lua_State *L = open_state(&a, NULL);
  int i;
  (void)state;
  spawn(L,
        "phase = 0\n"
        "local srv = weft.tcp.listen('127.0.0.1', 0, function(conn)\n"
        "  phase = phase + 1\n"
        "  weft.sleep(1e9)\n"
        "end)\n"
        "weft.spawn(function()\n"
        "  local c = weft.tcp.connect('127.0.0.1', srv.port)\n"
        "  writing = true\n"
        "  c:write(string.rep('x', 64 * 1024 * 1024))\n"
        "end)\n"
        "weft.spawn(function()\n"
        "  local c = weft.tcp.connect('127.0.0.1', srv.port)\n"
        "  c:read()\n"
        "end)\n"
        "srv:wait()\n",
        NULL, NULL);
  for (i = 0; i < 100000 && (global_int(L, "phase") < 2 ||
                             !global_int(L, "writing"));
       i++)
    weft_lua_poll(L);
  assert_int_equal(global_int(L, "phase"), 2);
  for (i = 0; i < 100; i++) weft_lua_poll(L); /* the writer fills up */
  spawn(L, "weft.tcp.connect('localhost', 9)", NULL, NULL);
  weft_lua_poll(L);
  assert_true(weft_lua_poll(L) >= 5);
  lua_close(L);
  test_alloc_expect_empty(&a);
}

static void count_done(void *ud, lua_State *L, int idx) {
  int *got = ud, n;
  if (weft_lua_result(L, idx, &n) != LUA_OK)
    fail_msg("task failed: %s", lua_tostring(L, -1));
  *got = (int)lua_tointeger(L, -1);
  lua_pop(L, n);
}

/* The host runs the uv loop: each accepted connection spawns its handler
 * from inside the host's uv_run, and uv_run returns once the server and
 * every connection closed. */
static void borrowed_loop_serves_and_ends(void **state) {
  uv_loop_t uv;
  test_alloc a;
  lua_State *L;
  int got = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&uv), 0);
  L = open_state(&a, &uv);
  spawn(L,
        "local srv = weft.tcp.listen('127.0.0.1', 0, function(conn)\n"
        "  for line in conn:lines() do conn:write(line, '\\n') end\n"
        "end)\n"
        "local fns = {}\n"
        "for i = 1, 20 do fns[i] = function()\n"
        "  local c = weft.tcp.connect('127.0.0.1', srv.port)\n"
        "  c:write('hello ', i, '\\n')\n"
        "  assert(c:read() == 'hello ' .. i)\n"
        "  c:close()\n"
        "end end\n"
        "weft.all(fns)\n"
        "srv:close()\n"
        "return #fns\n",
        count_done, &got);
  uv_run(&uv, UV_RUN_DEFAULT);
  assert_int_equal(got, 20);
  lua_close(L);
  uv_run(&uv, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&uv), 0);
  test_alloc_expect_empty(&a);
}

/* ------------------------------------------------------ out of memory */

#define SWEEP_MAX 100000

/* Under ThreadSanitizer a run is some fifty times slower and the sweep
 * (about 3,000 runs) would take most of an hour: there it tries every
 * 25th allocation. The normal and AddressSanitizer builds try them all. */
#if defined(__SANITIZE_THREAD__)
#define SWEEP_STEP 25
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SWEEP_STEP 25
#endif
#endif
#ifndef SWEEP_STEP
#define SWEEP_STEP 1
#endif

static const char oom_script[] =
    "local srv = weft.tcp.listen('127.0.0.1', 0, function(conn)\n"
    "  for line in conn:lines() do conn:write(line, '\\n') end\n"
    "end)\n"
    "local fns = {}\n"
    "for i = 1, 3 do fns[i] = function()\n"
    "  local c = weft.tcp.connect('localhost', srv.port)\n"
    "  c:write('hello ', i, '\\n')\n"
    "  local line = c:read()\n"
    "  c:close()\n"
    "  return line\n"
    "end end\n"
    "local r = weft.all(fns)\n"
    "srv:close()\n"
    "return r[1] .. r[2] .. r[3]\n";

static void ignore_report(void *ud, const char *text) {
  (void)ud;
  assert_non_null(text);
}

static int oom_setup(lua_State *L) {
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  weft_lua_set_report(L, ignore_report, NULL);
  if (luaL_loadstring(L, oom_script) != LUA_OK) return lua_error(L);
  return 1;
}

/* One run: 1 if it completed with the right result; otherwise the error
 * must carry a message. */
static int oom_scenario(test_alloc *a) {
  lua_State *L = lua_newstate(test_alloc_fn, a);
  int ok = 0;
  if (L == NULL) return 0;
  lua_pushcfunction(L, oom_setup);
  if (lua_pcall(L, 0, 1, 0) == LUA_OK) {
    if (weft_lua_run(L, 0, 0) == LUA_OK) {
      assert_string_equal(lua_tostring(L, -1), "hello 1hello 2hello 3");
      ok = 1;
    } else if (lua_type(L, -1) == LUA_TTABLE) {
      assert_int_equal(lua_getfield(L, -1, "message"), LUA_TSTRING);
    } else {
      assert_int_equal(lua_type(L, -1), LUA_TSTRING);
    }
  }
  lua_close(L);
  return ok;
}

/* Fails allocation n (once) for n = 1, 2, ... until a run injects no
 * failure, which must succeed. No run may hang, crash or leak. (A
 * persistent shortage is not swept: the end of a task then cannot call
 * the __close of what it owns, so a connection it made stays open until
 * a full collection, and a peer task reading from it waits until then.) */
static void oom_tcp_never_crashes_hangs_or_leaks(void **state) {
  test_alloc a;
  size_t n;
  int ok = 0;
  (void)state;
  SKIP_LUA_OOM_ON_LUAJIT();
  for (n = 1; n < SWEEP_MAX; n += SWEEP_STEP) {
    test_alloc_init(&a);
    a.fail_at = n;
    ok = oom_scenario(&a);
    test_alloc_expect_empty(&a);
    if (a.failed == 0) break;
  }
  assert_true(n < SWEEP_MAX);
  assert_true(ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(closing_a_state_closes_every_socket),
      cmocka_unit_test(borrowed_loop_serves_and_ends),
      cmocka_unit_test(oom_tcp_never_crashes_hangs_or_leaks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
