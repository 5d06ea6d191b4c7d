/*
 * test-value.c - weft_value_t trees (host tier): every type, deep copies,
 * lookups, freeing, out of memory; and their conversion from and to Lua
 * through a registered function that echoes its arguments.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host-util.h"

/* --------------------------------------------------------- builders */

static void str(weft_value_t *v, const char *s) {
  assert_int_equal(weft_value_str(v, s, strlen(s)), 0);
}

/* A tree with every type, two levels of nesting and embedded zeros:
 * { name = "a\0b", list = { 1, 2.5, true, nil, { deep = "x" } },
 *   [7] = "seven" } */
static void build_tree(weft_value_t *v) {
  weft_value_t *list, *inner;
  assert_int_equal(weft_value_map(v, 3), 0);
  str(&v->u.m.keys[0], "name");
  assert_int_equal(weft_value_str(&v->u.m.vals[0], "a\0b", 3), 0);
  str(&v->u.m.keys[1], "list");
  list = &v->u.m.vals[1];
  assert_int_equal(weft_value_array(list, 5), 0);
  weft_value_int(&list->u.a.items[0], 1);
  weft_value_num(&list->u.a.items[1], 2.5);
  weft_value_bool(&list->u.a.items[2], 1);
  weft_value_nil(&list->u.a.items[3]);
  inner = &list->u.a.items[4];
  assert_int_equal(weft_value_map(inner, 1), 0);
  str(&inner->u.m.keys[0], "deep");
  str(&inner->u.m.vals[0], "x");
  weft_value_int(&v->u.m.keys[2], 7);
  str(&v->u.m.vals[2], "seven");
}

/* Structural equality; strings and containers must not share memory. */
static void expect_same_tree(const weft_value_t *a, const weft_value_t *b) {
  size_t i;
  assert_int_equal(a->type, b->type);
  switch (a->type) {
  case WEFT_VBOOL: assert_int_equal(a->u.b, b->u.b); break;
  case WEFT_VINT: assert_int_equal(a->u.i, b->u.i); break;
  case WEFT_VNUM: assert_memory_equal(&a->u.n, &b->u.n, sizeof a->u.n); break;
  case WEFT_VSTR:
    assert_int_equal(a->u.s.len, b->u.s.len);
    assert_memory_equal(a->u.s.ptr, b->u.s.ptr, a->u.s.len + 1);
    assert_ptr_not_equal(a->u.s.ptr, b->u.s.ptr);
    break;
  case WEFT_VARRAY:
    assert_int_equal(a->u.a.len, b->u.a.len);
    if (a->u.a.len) assert_ptr_not_equal(a->u.a.items, b->u.a.items);
    for (i = 0; i < a->u.a.len; i++)
      expect_same_tree(&a->u.a.items[i], &b->u.a.items[i]);
    break;
  case WEFT_VMAP:
    assert_int_equal(a->u.m.len, b->u.m.len);
    if (a->u.m.len) assert_ptr_not_equal(a->u.m.keys, b->u.m.keys);
    for (i = 0; i < a->u.m.len; i++) {
      expect_same_tree(&a->u.m.keys[i], &b->u.m.keys[i]);
      expect_same_tree(&a->u.m.vals[i], &b->u.m.vals[i]);
    }
    break;
  default: break;
  }
}

/* ------------------------------------------------------ the C API */

static void scalars_keep_their_type_and_payload(void **state) {
  weft_value_t v;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  weft_value_nil(&v);
  assert_int_equal(v.type, WEFT_VNIL);
  weft_value_bool(&v, 42);
  assert_int_equal(v.type, WEFT_VBOOL);
  assert_int_equal(v.u.b, 1); /* normalised */
  weft_value_bool(&v, 0);
  assert_int_equal(v.u.b, 0);
  weft_value_int(&v, INT64_MIN);
  assert_int_equal(v.type, WEFT_VINT);
  assert_true(v.u.i == INT64_MIN);
  weft_value_int(&v, INT64_MAX);
  assert_true(v.u.i == INT64_MAX);
  weft_value_num(&v, -0.0);
  assert_int_equal(v.type, WEFT_VNUM);
  assert_true(v.u.n == 0.0 && signbit(v.u.n));
  weft_value_num(&v, NAN);
  assert_true(isnan(v.u.n));
  weft_value_free(&v); /* a scalar owns nothing */
  assert_int_equal(v.type, WEFT_VNIL);
  assert_int_equal(vcount_blocks(&vc), 0);
  vcount_end(&vc);
}

static void str_keeps_embedded_zeros_and_a_terminator(void **state) {
  weft_value_t v, empty;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  assert_int_equal(weft_value_str(&v, "a\0b\0c", 5), 0);
  assert_int_equal(v.type, WEFT_VSTR);
  assert_int_equal(v.u.s.len, 5);
  assert_memory_equal(v.u.s.ptr, "a\0b\0c", 6); /* NUL after the length */
  assert_int_equal(weft_value_str(&empty, NULL, 0), 0);
  assert_int_equal(empty.type, WEFT_VSTR);
  assert_int_equal(empty.u.s.len, 0);
  assert_string_equal(empty.u.s.ptr, "");
  weft_value_free(&v);
  weft_value_free(&empty);
  vcount_end(&vc);
}

static void array_and_map_start_filled_with_nil(void **state) {
  weft_value_t a, m, e;
  size_t i;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  assert_int_equal(weft_value_array(&a, 4), 0);
  assert_int_equal(a.type, WEFT_VARRAY);
  assert_int_equal(a.u.a.len, 4);
  for (i = 0; i < 4; i++) assert_int_equal(a.u.a.items[i].type, WEFT_VNIL);
  assert_int_equal(weft_value_map(&m, 3), 0);
  assert_int_equal(m.type, WEFT_VMAP);
  assert_int_equal(m.u.m.len, 3);
  for (i = 0; i < 3; i++) {
    assert_int_equal(m.u.m.keys[i].type, WEFT_VNIL);
    assert_int_equal(m.u.m.vals[i].type, WEFT_VNIL);
  }
  assert_int_equal(weft_value_array(&e, 0), 0); /* empty: no allocation */
  assert_int_equal(e.type, WEFT_VARRAY);
  assert_int_equal(e.u.a.len, 0);
  weft_value_free(&a);
  weft_value_free(&m);
  weft_value_free(&e);
  vcount_end(&vc);
}

static void copy_of_a_nested_tree_is_deep(void **state) {
  weft_value_t src, dst, again;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  build_tree(&src);
  assert_int_equal(weft_value_copy(&dst, &src), 0);
  expect_same_tree(&src, &dst);
  weft_value_free(&src); /* the copy does not depend on the source */
  assert_int_equal(weft_value_copy(&again, &dst), 0);
  assert_int_equal(weft_value_get(&dst, "name")->u.s.len, 3);
  assert_memory_equal(weft_value_get(&dst, "name")->u.s.ptr, "a\0b", 4);
  assert_string_equal(
      weft_value_get(&weft_value_get(&dst, "list")->u.a.items[4], "deep")
          ->u.s.ptr,
      "x");
  expect_same_tree(&again, &dst);
  weft_value_free(&dst);
  weft_value_free(&again);
  vcount_end(&vc);
}

static void get_finds_string_keys_only(void **state) {
  weft_value_t m, arr;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  assert_int_equal(weft_value_map(&m, 4), 0);
  str(&m.u.m.keys[0], "a");
  weft_value_int(&m.u.m.vals[0], 1);
  assert_int_equal(weft_value_str(&m.u.m.keys[1], "b\0c", 3), 0);
  weft_value_int(&m.u.m.vals[1], 2);
  weft_value_int(&m.u.m.keys[2], 3); /* not a string key */
  weft_value_int(&m.u.m.vals[2], 3);
  str(&m.u.m.keys[3], "a"); /* a duplicate: the first one wins */
  weft_value_int(&m.u.m.vals[3], 4);
  assert_int_equal(weft_value_get(&m, "a")->u.i, 1);
  assert_null(weft_value_get(&m, "b")); /* "b\0c" is longer */
  assert_null(weft_value_get(&m, "3"));
  assert_null(weft_value_get(&m, "missing"));
  assert_null(weft_value_get(&m, ""));
  assert_int_equal(weft_value_array(&arr, 1), 0);
  assert_null(weft_value_get(&arr, "a")); /* not a map */
  weft_value_free(&m);
  weft_value_free(&arr);
  vcount_end(&vc);
}

static void free_releases_a_whole_tree_and_leaves_nil(void **state) {
  weft_value_t v;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  build_tree(&v);
  assert_true(vcount_blocks(&vc) >= 9);
  weft_value_free(&v);
  assert_int_equal(v.type, WEFT_VNIL);
  assert_int_equal(vcount_blocks(&vc), 0);
  weft_value_free(&v); /* freeing nil is harmless */
  vcount_end(&vc);
}

static void constructors_fail_with_enomem_and_leave_nil(void **state) {
  weft_value_t v;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  vc.fail_at = 1;
  assert_int_equal(weft_value_str(&v, "abc", 3), WEFT_ENOMEM);
  assert_int_equal(v.type, WEFT_VNIL);
  atomic_store(&vc.allocs, 0);
  assert_int_equal(weft_value_array(&v, 3), WEFT_ENOMEM);
  assert_int_equal(v.type, WEFT_VNIL);
  atomic_store(&vc.allocs, 0);
  assert_int_equal(weft_value_map(&v, 3), WEFT_ENOMEM); /* keys fail */
  assert_int_equal(v.type, WEFT_VNIL);
  atomic_store(&vc.allocs, 0);
  vc.fail_at = 2;
  assert_int_equal(weft_value_map(&v, 3), WEFT_ENOMEM); /* values fail */
  assert_int_equal(v.type, WEFT_VNIL);
  assert_int_equal(vcount_blocks(&vc), 0);
  vcount_end(&vc);
}

static void sizes_that_overflow_fail_without_allocating(void **state) {
  weft_value_t v;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  assert_int_equal(weft_value_str(&v, "", (size_t)-1), WEFT_ENOMEM);
  assert_int_equal(weft_value_array(&v, (size_t)-1), WEFT_ENOMEM);
  assert_int_equal(weft_value_map(&v, (size_t)-1 / 2), WEFT_ENOMEM);
  assert_int_equal(v.type, WEFT_VNIL);
  assert_int_equal(atomic_load(&vc.allocs), 0);
  vcount_end(&vc);
}

/* Fails allocation N of a deep copy for N = 1, 2, ... until it succeeds:
 * each failure returns WEFT_ENOMEM, leaves nil and leaks nothing. */
static void copy_oom_sweep_fails_cleanly_at_every_allocation(void **state) {
  weft_value_t src, dst;
  long base, n;
  int r;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  build_tree(&src);
  base = vcount_blocks(&vc);
  for (n = 1;; n++) {
    atomic_store(&vc.allocs, 0);
    vc.fail_at = n;
    r = weft_value_copy(&dst, &src);
    if (r == 0) break;
    assert_int_equal(r, WEFT_ENOMEM);
    assert_int_equal(dst.type, WEFT_VNIL);
    assert_int_equal(vcount_blocks(&vc), base);
  }
  assert_int_equal(n, base + 1); /* one more allocation than the source */
  vc.fail_at = 0;
  expect_same_tree(&src, &dst);
  weft_value_free(&dst);
  weft_value_free(&src);
  vcount_end(&vc);
}

/* A chain depth levels deep that a host may build: arrays {child, i}
 * and maps {k = child} in turn, ending in the string "end". */
static void build_chain(weft_value_t *v, int depth) {
  int i;
  for (i = 0; i < depth; i++) {
    if (i % 2 == 0) {
      assert_int_equal(weft_value_array(v, 2), 0);
      weft_value_int(&v->u.a.items[1], i);
      v = &v->u.a.items[0];
    } else {
      assert_int_equal(weft_value_map(v, 1), 0);
      str(&v->u.m.keys[0], "k");
      v = &v->u.m.vals[0];
    }
  }
  str(v, "end");
}

/* Walks two chains of build_chain together (no recursion either). */
static void expect_same_chain(const weft_value_t *a, const weft_value_t *b,
                              int depth) {
  int i;
  for (i = 0; i < depth; i++) {
    assert_int_equal(a->type, b->type);
    if (a->type == WEFT_VARRAY) {
      assert_ptr_not_equal(a->u.a.items, b->u.a.items);
      assert_true(b->u.a.items[1].u.i == i);
      a = &a->u.a.items[0], b = &b->u.a.items[0];
    } else {
      assert_string_equal(b->u.m.keys[0].u.s.ptr, "k");
      a = &a->u.m.vals[0], b = &b->u.m.vals[0];
    }
  }
  assert_string_equal(b->u.s.ptr, "end");
}

/* A host's tree 300,000 levels deep overflowed the C stack in copy and
 * free, which walked it by recursion. */
static void deep_trees_copy_and_free_without_recursion(void **state) {
  weft_value_t src, dst;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  build_chain(&src, 300000);
  assert_int_equal(weft_value_copy(&dst, &src), 0);
  expect_same_chain(&src, &dst, 300000);
  weft_value_free(&src);
  assert_int_equal(src.type, WEFT_VNIL);
  weft_value_free(&dst);
  vcount_end(&vc);
}

/* Past the depth it keeps on the C stack, copy allocates its path: each
 * failure returns WEFT_ENOMEM and leaks nothing. */
static void deep_copy_oom_sweep_fails_cleanly(void **state) {
  weft_value_t src, dst;
  long base, n;
  int r;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  build_chain(&src, 100);
  base = vcount_blocks(&vc);
  for (n = 1;; n++) {
    atomic_store(&vc.allocs, 0);
    vc.fail_at = n;
    r = weft_value_copy(&dst, &src);
    if (r == 0) break;
    assert_int_equal(r, WEFT_ENOMEM);
    assert_int_equal(dst.type, WEFT_VNIL);
    assert_int_equal(vcount_blocks(&vc), base);
  }
  assert_true(n > base); /* the path's allocations came on top */
  vc.fail_at = 0;
  expect_same_chain(&src, &dst, 100);
  weft_value_free(&dst);
  weft_value_free(&src);
  vcount_end(&vc);
}

/* Misuse gets WEFT_EINVAL or nothing done, not a crash. */
static void null_arguments_are_refused(void **state) {
  weft_value_t v;
  (void)state;
  assert_int_equal(weft_value_str(NULL, "x", 1), WEFT_EINVAL);
  assert_int_equal(weft_value_str(&v, NULL, 3), WEFT_EINVAL);
  assert_int_equal(v.type, WEFT_VNIL);
  assert_int_equal(weft_value_array(NULL, 1), WEFT_EINVAL);
  assert_int_equal(weft_value_map(NULL, 1), WEFT_EINVAL);
  assert_int_equal(weft_value_copy(NULL, &v), WEFT_EINVAL);
  assert_int_equal(weft_value_copy(&v, NULL), WEFT_EINVAL);
  assert_null(weft_value_get(NULL, "k"));
  assert_null(weft_value_get(&v, NULL));
  weft_value_nil(NULL);
  weft_value_bool(NULL, 1);
  weft_value_int(NULL, 1);
  weft_value_num(NULL, 1);
  weft_value_free(NULL);
}

static void set_allocator_null_restores_the_c_library(void **state) {
  weft_value_t v;
  vcount vc;
  (void)state;
  vcount_begin(&vc);
  weft_value_set_allocator(NULL, NULL);
  assert_int_equal(weft_value_str(&v, "x", 1), 0);
  weft_value_free(&v);
  assert_int_equal(atomic_load(&vc.allocs), 0);
  vcount_end(&vc);
}

/* ------------------------------------------------------- from Lua */

/* echo(...) -> { ... }: resolves with a deep copy of its arguments. */
static void echo(weft_call_t *call, void *ud) {
  weft_value_t r;
  (void)ud;
  if (weft_value_copy(&r, weft_call_args(call)) != 0) {
    weft_call_reject(call, "out of memory");
    return;
  }
  weft_call_resolve(call, &r);
}

/* inspect(42, 42.0, "a\0b", {1, 2}, {k = "v"}) checks what C receives. */
static void inspect(weft_call_t *call, void *ud) {
  const weft_value_t *a = weft_call_args(call), *it = a->u.a.items;
  weft_value_t r;
  int ok = a->type == WEFT_VARRAY && a->u.a.len == 6;
  ok = ok && it[0].type == WEFT_VINT && it[0].u.i == 42;
#if LUA_VERSION_NUM >= 503
  ok = ok && it[1].type == WEFT_VNUM && it[1].u.n == 42.0;
#else /* every number is a float: an integral one crosses as an integer */
  ok = ok && it[1].type == WEFT_VINT && it[1].u.i == 42;
#endif
  ok = ok && it[2].type == WEFT_VSTR && it[2].u.s.len == 3 &&
       memcmp(it[2].u.s.ptr, "a\0b", 4) == 0;
  ok = ok && it[3].type == WEFT_VARRAY && it[3].u.a.len == 2 &&
       it[3].u.a.items[1].type == WEFT_VINT && it[3].u.a.items[1].u.i == 2;
  ok = ok && it[4].type == WEFT_VMAP && weft_value_get(&it[4], "k") &&
       weft_value_get(&it[4], "k")->type == WEFT_VSTR;
  ok = ok && it[5].type == WEFT_VARRAY && it[5].u.a.len == 0;
  (void)ud;
  weft_value_bool(&r, ok);
  weft_call_resolve(call, &r);
}

/* A state with echo and inspect registered as sync functions. */
static lua_State *open_echo(hstate *h) {
  lua_State *L = hstate_open(h);
  hreg(L, "echo", echo, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, NULL);
  hreg(L, "inspect", inspect, WEFT_FN_SYNC, WEFT_PRIO_NORMAL, 0, NULL, NULL);
  return L;
}

/* Runs src, which returns a string, and compares it with want. */
static void expect_script_string(lua_State *L, const char *src,
                                 const char *want) {
  int top = lua_gettop(L);
  assert_int_equal(hrun(L, src), LUA_OK);
  assert_string_equal(lua_tostring(L, -1), want);
  lua_settop(L, top);
}

/* deep(a, b): structural equality that tells integers from floats. */
#define DEEP_EQ                                                            \
  "local function deep(a, b, path)\n"                                      \
  "  path = path or 'r'\n"                                                 \
  "  if type(a) ~= type(b) then error(path .. ': type ' .. type(a) ..\n"   \
  "    ' vs ' .. type(b)) end\n"                                           \
  "  if type(a) == 'number' then\n"                                        \
  "    assert(math.type(a) == math.type(b), path .. ': ' ..\n"             \
  "      math.type(a) .. ' vs ' .. math.type(b))\n"                        \
  "    assert(a == b or (a ~= a and b ~= b), path .. ': value')\n"         \
  "    if a == 0 then assert(1/a == 1/b, path .. ': sign of zero') end\n"  \
  "  elseif type(a) == 'table' then\n"                                     \
  "    for k, v in pairs(a) do deep(v, b[k], path .. '.' ..\n"             \
  "      tostring(k)) end\n"                                               \
  "    for k in pairs(b) do assert(a[k] ~= nil, path .. ': extra ' ..\n"   \
  "      tostring(k)) end\n"                                               \
  "  else assert(a == b, path .. ': value') end\n"                         \
  "end\n"

static void lua_round_trip_keeps_types_zeros_and_nesting(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
#if LUA_VERSION_NUM < 503 /* the test is about 5.3's integers and floats */
  skip();
#endif
  vcount_begin(&vc);
  L = open_echo(&h);
  hrun_ok(L, DEEP_EQ
          "local args = {\n"
          "  1, 2.0, -0.0, 1/0, math.maxinteger, math.mininteger, 0.1,\n"
          "  'a\\0b\\0', '', true, false,\n"
          "  { 1, 2, { 3, { 4.5, 'x\\0y' } } },\n"
          "  { name = 'n', [10] = 'ten', [1.5] = 'float key',\n"
          "    [true] = 'bool key', ['k\\0z'] = { deep = { deeper = {} } },\n"
          "    list = { 1, 2, 3 } },\n"
          "  {},\n"
          "}\n"
          "local r = echo(table.unpack(args))\n"
          "deep(args, r)\n"
          "assert(#r[8] == 4 and r[8]:byte(2) == 0)\n"
          "local nan = echo(0/0)[1]\n"
          "assert(nan ~= nan and math.type(nan) == 'float')\n"
          "local holes = echo(1, nil, 3)\n"
          "assert(holes[1] == 1 and holes[2] == nil and holes[3] == 3)\n"
          "assert(#echo() == 0)\n");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_arguments_arrive_as_typed_values(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  hrun_ok(L, "assert(inspect(42, 42.0, 'a\\0b', {1, 2}, {k = 'v'}, {}))");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_shared_subtable_is_copied_not_a_cycle(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  hrun_ok(L, "local s = {1, 2}\n"
             "local r = echo({a = s, b = s, list = {s, s}})[1]\n"
             "assert(r.a[2] == 2 and r.b[1] == 1 and r.list[2][2] == 2)\n"
             "assert(r.a ~= r.b) -- two copies now\n");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_function_argument_error_names_its_path(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  expect_script_string(
      L,
      "local ok, e = pcall(echo, 1, {items = {1, 2, function() end}})\n"
      "assert(not ok)\n"
      "return e",
      "echo: args[2].items[3]: functions cannot cross threads");
  expect_script_string(L,
                       "local ok, e = pcall(echo, print)\n"
                       "return e",
                       "echo: args[1]: functions cannot cross threads");
  expect_script_string(
      L,
      "local ok, e = pcall(echo, {['not an ident'] = {f = print}})\n"
      "return e",
      "echo: args[1][\"not an ident\"].f: functions cannot cross threads");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_coroutine_argument_error_names_its_path(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  expect_script_string(
      L,
      "local co = coroutine.create(function() end)\n"
      "local ok, e = pcall(echo, 'x', {1, {co = co}})\n"
      "assert(not ok)\n"
      "return e",
      "echo: args[2][2].co: threads cannot cross threads");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_userdata_argument_error_names_its_path(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  expect_script_string(L,
                       "local ok, e = pcall(echo, {out = {io.stdout}})\n"
                       "assert(not ok)\n"
                       "return e",
                       "echo: args[1].out[1]: userdatas cannot cross threads");
  expect_script_string(L,
                       "local ok, e = pcall(echo, {[io.stdout] = 1})\n"
                       "return e",
                       "echo: args[1][userdata]: userdatas cannot cross "
                       "threads");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_cyclic_table_gives_a_cycle_error(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  expect_script_string(
      L,
      "local t = {name = 'loop'}\n"
      "t.self = t\n"
      "local ok, e = pcall(echo, 1, t)\n"
      "assert(not ok)\n"
      "return e",
      "echo: args[2].self: cycle detected (a table contains itself)");
  expect_script_string(
      L,
      "local a, b = {}, {}\n"
      "a[1], b[1] = b, a\n"
      "local ok, e = pcall(echo, a)\n"
      "return e",
      "echo: args[1][1][1]: cycle detected (a table contains itself)");
  hstate_close(&h);
  vcount_end(&vc);
}

static void lua_too_deep_nesting_is_an_error(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  hrun_ok(L, "local t = {}\n"
             "for i = 1, 1000 do t = {t} end\n"
             "local ok, e = pcall(echo, t)\n"
             "assert(not ok and e:find('nested too deeply', 1, true), e)\n"
             "local u = {}\n"
             "for i = 1, 150 do u = {u} end\n"
             "assert(echo(u))\n");
  hstate_close(&h);
  vcount_end(&vc);
}

/* Conversion errors leave no partial tree behind, even in a loop. */
static void lua_failed_conversions_leak_nothing(void **state) {
  hstate h;
  vcount vc;
  lua_State *L;
  (void)state;
  vcount_begin(&vc);
  L = open_echo(&h);
  hrun_ok(L, "local t = {}\n"
             "t.self = t\n"
             "for i = 1, 200 do\n"
             "  local big = {}\n"
             "  for j = 1, 50 do big[j] = ('s'):rep(j) end\n"
             "  big[51] = (i % 2 == 0) and print or t\n"
             "  assert(not pcall(echo, big))\n"
             "end\n"
             "collectgarbage()\n");
  hstate_close(&h);
  vcount_end(&vc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scalars_keep_their_type_and_payload),
      cmocka_unit_test(str_keeps_embedded_zeros_and_a_terminator),
      cmocka_unit_test(array_and_map_start_filled_with_nil),
      cmocka_unit_test(copy_of_a_nested_tree_is_deep),
      cmocka_unit_test(get_finds_string_keys_only),
      cmocka_unit_test(free_releases_a_whole_tree_and_leaves_nil),
      cmocka_unit_test(constructors_fail_with_enomem_and_leave_nil),
      cmocka_unit_test(sizes_that_overflow_fail_without_allocating),
      cmocka_unit_test(copy_oom_sweep_fails_cleanly_at_every_allocation),
      cmocka_unit_test(deep_trees_copy_and_free_without_recursion),
      cmocka_unit_test(deep_copy_oom_sweep_fails_cleanly),
      cmocka_unit_test(null_arguments_are_refused),
      cmocka_unit_test(set_allocator_null_restores_the_c_library),
      cmocka_unit_test(lua_round_trip_keeps_types_zeros_and_nesting),
      cmocka_unit_test(lua_arguments_arrive_as_typed_values),
      cmocka_unit_test(lua_shared_subtable_is_copied_not_a_cycle),
      cmocka_unit_test(lua_function_argument_error_names_its_path),
      cmocka_unit_test(lua_coroutine_argument_error_names_its_path),
      cmocka_unit_test(lua_userdata_argument_error_names_its_path),
      cmocka_unit_test(lua_cyclic_table_gives_a_cycle_error),
      cmocka_unit_test(lua_too_deep_nesting_is_an_error),
      cmocka_unit_test(lua_failed_conversions_leak_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
