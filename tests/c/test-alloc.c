/*
 * test-alloc.c - the weft command's slab allocator (src/cli/alloc.c):
 * lua_Alloc's contract, contents kept across moves, reuse, a whole Lua
 * state on it.
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "../../src/cli/alloc.h"

static void fill(unsigned char *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (unsigned char)(seed * 31 + i);
}

static int intact(const unsigned char *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed * 31 + i)) return 0;
  return 1;
}

/* Every size from 1 to 3 KiB, through every kind of move: small to
 * small (same class, other class), small to large, large to small,
 * large to large. Contents survive, blocks are aligned and do not
 * overlap (each keeps its pattern while all are live). */
static void realloc_keeps_contents(void **state) {
  enum { N = 3072 };
  static unsigned char *blk[N + 1];
  static size_t len[N + 1];
  slab s;
  size_t n;
  (void)state;
  slab_init(&s);
  for (n = 1; n <= N; n++) {
    blk[n] = slab_alloc(&s, NULL, LUA_TSTRING, n);
    assert_non_null(blk[n]);
    assert_int_equal((uintptr_t)blk[n] % 16, 0);
    fill(blk[n], n, (unsigned)n);
    len[n] = n;
  }
  for (n = 1; n <= N; n++) assert_true(intact(blk[n], len[n], (unsigned)n));
  for (n = 1; n <= N; n++) { /* grow by a third, then shrink to a half */
    size_t grown = n + n / 3 + 1, half = n / 2 + 1;
    blk[n] = slab_alloc(&s, blk[n], len[n], grown);
    assert_non_null(blk[n]);
    assert_true(intact(blk[n], len[n], (unsigned)n));
    fill(blk[n], grown, (unsigned)n);
    blk[n] = slab_alloc(&s, blk[n], grown, half);
    assert_non_null(blk[n]);
    assert_true(intact(blk[n], half, (unsigned)n));
    len[n] = half;
  }
  for (n = 1; n <= N; n++) assert_true(intact(blk[n], len[n], (unsigned)n));
  for (n = 1; n <= N; n++) assert_null(slab_alloc(&s, blk[n], len[n], 0));
  slab_free(&s);
  assert_int_equal(s.mapped, 0);
}

/* A freed block is the next one of its class; a move within a class
 * keeps the block; freeing NULL does nothing. */
static void freed_blocks_are_reused(void **state) {
  slab s;
  void *a, *b, *c;
  (void)state;
  slab_init(&s);
  assert_null(slab_alloc(&s, NULL, 0, 0));
  a = slab_alloc(&s, NULL, 0, 100);
  b = slab_alloc(&s, NULL, 0, 100);
  assert_ptr_not_equal(a, b);
  assert_ptr_equal(slab_alloc(&s, a, 100, 110), a); /* both class 112 */
  slab_alloc(&s, a, 110, 0);
  c = slab_alloc(&s, NULL, 0, 97);
  assert_ptr_equal(c, a);
  slab_alloc(&s, b, 100, 0);
  slab_alloc(&s, c, 97, 0);
  slab_free(&s);
}

/* Regions grow from 256 KiB to 2 MiB; 64 MiB of small blocks map about
 * that much. */
static void regions_grow_to_huge_pages(void **state) {
  slab s;
  size_t i, n = (64u << 20) / 1024;
  void *last = NULL;
  (void)state;
  slab_init(&s);
  for (i = 0; i < n; i++) {
    void *p = slab_alloc(&s, NULL, 0, 1024);
    assert_non_null(p);
    memcpy(p, &last, sizeof last); /* a chain, to free them all */
    last = p;
  }
  assert_true(s.mapped >= (64u << 20));
  assert_true(s.mapped <= (64u << 20) + (4u << 20));
  while (last != NULL) {
    void *next;
    memcpy(&next, last, sizeof next);
    slab_alloc(&s, last, 1024, 0);
    last = next;
  }
  slab_free(&s);
}

/* A Lua state lives and dies on it: tables, strings, closures,
 * coroutines, a full collection, then lua_close frees every large block
 * (the sanitizer build would report a leak). */
static void a_lua_state_runs_on_it(void **state) {
  slab s;
  lua_State *L;
  (void)state;
  slab_init(&s);
  L = lua_newstate(slab_alloc, &s);
  assert_non_null(L);
  luaL_openlibs(L);
  assert_int_equal(
      luaL_dostring(L,
                    "local t, cos = {}, {}\n"
                    "for i = 1, 20000 do t[i] = ('x'):rep(i % 3000) end\n"
                    "for i = 1, 2000 do\n"
                    "  cos[i] = coroutine.wrap(function(a)\n"
                    "    local b = coroutine.yield(a + 1) return a + b end)\n"
                    "  assert(cos[i](i) == i + 1)\n"
                    "end\n"
                    "for i = 1, 2000 do assert(cos[i](1) == i + 1) end\n"
                    "t, cos = nil, nil collectgarbage()\n"
                    "local s = {} for i = 1, 1000 do s[#s + 1] = i end\n"
                    "return #table.concat(s, ',')"),
      LUA_OK);
  assert_int_equal(lua_tointeger(L, -1), 3892);
  lua_close(L);
  slab_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(realloc_keeps_contents),
      cmocka_unit_test(freed_blocks_are_reused),
      cmocka_unit_test(regions_grow_to_huge_pages),
      cmocka_unit_test(a_lua_state_runs_on_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
