/*
 * marshal.c - deep copies between Lua values and weft_value_t trees, for
 * arguments and results that cross to other threads (Lua binding).
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lweft.h"

/* About conversion: lw_args_to_value never raises while it holds a
 * partial tree of its own: the tree being built lives in a collectable
 * object that frees it (the call's userdata, whose __gc is call_gc in
 * host.c), so an error (bad value, cycle, out of memory) anywhere leaves
 * nothing behind. Tables on the current path are marked in a visiting
 * table to detect cycles; the path to the current value is kept in a
 * buffer for error messages ("args[2].items[3]"). */
typedef struct Conv {
  lua_State *L;
  int visiting; /* stack index of the visiting table */
  char path[256]; /* where in argument arg, for errors: ".items[3]" */
  size_t len;
  int arg;
  const char *fname;
} Conv;

#define MAX_DEPTH 200

static void path_add(Conv *c, int n, size_t room) {
  if (n > 0) c->len += (size_t)n < room ? (size_t)n : room - 1;
}

static void path_str(Conv *c, const char *fmt, const char *s,
                     size_t *saved) {
  size_t room = sizeof c->path - c->len;
  *saved = c->len;
  path_add(c, snprintf(c->path + c->len, room, fmt, s), room);
}

static void path_int(Conv *c, const char *fmt, long long i, size_t *saved) {
  size_t room = sizeof c->path - c->len;
  *saved = c->len;
  path_add(c, snprintf(c->path + c->len, room, fmt, i), room);
}

static int fail(Conv *c, const char *what) {
  return luaL_error(c->L, "%s: args[%d]%s: %s", c->fname, c->arg,
                    c->path, what);
}

static int ident(const char *s, size_t len) {
  size_t i;
  if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < len; i++)
    if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

static void convert(Conv *c, int idx, weft_value_t *out, int depth);

/* Whether the table at idx has exactly the keys 1..n (n = #t): it then
 * crosses as an array. Any other key makes it a map. #t alone does not
 * tell: {1, nil, 3, [-1] = 4} has 3 keys and a border at 3. */
static int is_sequence(lua_State *L, int idx, size_t *n) {
  size_t count = 0, len = lua_rawlen(L, idx);
  lua_Integer k;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1 ||
        (lua_Unsigned)k > len) {
      lua_pop(L, 1);
      return 0;
    }
  }
  *n = len;
  return count == len; /* distinct keys in 1..len, len of them */
}

static void key_path(Conv *c, int kidx, size_t *saved) {
  lua_State *L = c->L;
  if (lua_type(L, kidx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, kidx, &len);
    if (ident(s, len))
      path_str(c, ".%s", s, saved);
    else
      path_str(c, "[\"%s\"]", s, saved);
  } else if (lua_isinteger(L, kidx)) {
    path_int(c, "[%lld]", (long long)lua_tointeger(L, kidx), saved);
  } else {
    path_str(c, "[%s]", luaL_typename(L, kidx), saved);
  }
}

static void convert_table(Conv *c, int idx, weft_value_t *out, int depth) {
  lua_State *L = c->L;
  size_t n, i = 0, saved;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, c->visiting) != LUA_TNIL)
    fail(c, "cycle detected (a table contains itself)");
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, c->visiting);
  if (is_sequence(L, idx, &n)) {
    if (weft_value_array(out, n) != 0) fail(c, "not enough memory");
    for (i = 0; i < n; i++) {
      path_int(c, "[%lld]", (long long)i + 1, &saved);
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      convert(c, lua_gettop(L), &out->u.a.items[i], depth + 1);
      lua_pop(L, 1);
      c->len = saved;
      c->path[saved] = '\0';
    }
  } else {
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      n++;
    }
    if (weft_value_map(out, n) != 0) fail(c, "not enough memory");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int k = lua_gettop(L) - 1;
      key_path(c, k, &saved);
      convert(c, k, &out->u.m.keys[i], depth + 1);
      convert(c, k + 1, &out->u.m.vals[i], depth + 1);
      lua_pop(L, 1);
      c->len = saved;
      c->path[saved] = '\0';
      i++;
    }
  }
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, c->visiting);
}

static void convert(Conv *c, int idx, weft_value_t *out, int depth) {
  lua_State *L = c->L;
  size_t len;
  const char *s;
  if (depth > MAX_DEPTH) fail(c, "nested too deeply");
  luaL_checkstack(L, 8, "nested too deeply");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: weft_value_nil(out); break;
  case LUA_TBOOLEAN: weft_value_bool(out, lua_toboolean(L, idx)); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      weft_value_int(out, (int64_t)lua_tointeger(L, idx));
    else
      weft_value_num(out, (double)lua_tonumber(L, idx));
    break;
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    if (weft_value_str(out, s, len) != 0) fail(c, "not enough memory");
    break;
  case LUA_TTABLE: convert_table(c, idx, out, depth); break;
  default: {
    char what[64];
    snprintf(what, sizeof what, "%ss cannot cross threads",
             luaL_typename(L, idx));
    fail(c, what);
  }
  }
}

void lw_args_to_value(lua_State *L, int first, int nargs, const char *fname,
                      weft_value_t *out) {
  Conv c;
  int i, tables = 0;
  for (i = 0; i < nargs; i++) tables |= lua_type(L, first + i) == LUA_TTABLE;
  if (tables)
    lua_newtable(L); /* visiting: only tables can form cycles */
  else
    lua_pushnil(L);
  c.L = L;
  c.visiting = lua_gettop(L);
  c.fname = fname;
  if (weft_value_array(out, (size_t)nargs) != 0)
    luaL_error(L, "%s: not enough memory", fname);
  for (i = 0; i < nargs; i++) { /* the path is made inside tables only */
    c.arg = i + 1;
    c.len = 0;
    c.path[0] = '\0';
    convert(&c, first + i, &out->u.a.items[i], 0);
  }
  lua_pop(L, 1);
}

/* Pushes a Lua copy of v, depth levels below the top. A container makes
 * room for itself and one key and value at a time; a leaf needs only the
 * slot its container (or lw_push_value) made room for. */
static void push_value(lua_State *L, const weft_value_t *v, int depth,
                       const char *fname) {
  size_t i;
  if (depth > MAX_DEPTH)
    luaL_error(L, "%s: result nested too deeply (more than %d levels)",
               fname, MAX_DEPTH);
  if (v->type == WEFT_VARRAY || v->type == WEFT_VMAP)
    luaL_checkstack(L, 4, "value nested too deeply");
  switch (v->type) {
  case WEFT_VBOOL: lua_pushboolean(L, v->u.b); break;
  case WEFT_VINT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
  case WEFT_VNUM: lua_pushnumber(L, (lua_Number)v->u.n); break;
  case WEFT_VSTR: lua_pushlstring(L, v->u.s.ptr, v->u.s.len); break;
  case WEFT_VARRAY:
    lua_createtable(L, v->u.a.len > INT_MAX ? INT_MAX : (int)v->u.a.len, 0);
    for (i = 0; i < v->u.a.len; i++) {
      push_value(L, &v->u.a.items[i], depth + 1, fname);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  case WEFT_VMAP:
    lua_createtable(L, 0, v->u.m.len > INT_MAX ? INT_MAX : (int)v->u.m.len);
    for (i = 0; i < v->u.m.len; i++) {
      if (v->u.m.keys[i].type == WEFT_VNIL) continue;
      if (v->u.m.keys[i].type == WEFT_VNUM &&
          v->u.m.keys[i].u.n != v->u.m.keys[i].u.n)
        continue; /* NaN cannot be a key */
      push_value(L, &v->u.m.keys[i], depth + 1, fname);
      push_value(L, &v->u.m.vals[i], depth + 1, fname);
      lua_rawset(L, -3);
    }
    break;
  default: lua_pushnil(L); break;
  }
}

void lw_push_value(lua_State *L, const weft_value_t *v, const char *fname) {
  luaL_checkstack(L, 1, "no room for a result");
  push_value(L, v, 0, fname);
}
