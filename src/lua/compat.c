/*
 * compat.c - the shims of lcompat.h: what Lua 5.3 and 5.1 (and LuaJIT,
 * through its 5.1 API) lack of the 5.4 API the binding is written in.
 * SPDX-License-Identifier: MIT
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>

#include "lcompat.h"

#if LUA_VERSION_NUM < 504

/* ------------------------------------------------------------ uservalues */

#if LW_LUA51
static const char noslots_key = 0; /* registry: the shared empty table */

static void push_slots(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TUSERDATA) /* a function has one too */
    lua_getfenv(L, idx);
  else
    lua_pushnil(L);
}

/* The shared table has a metatable, which no slot table has: the
 * test costs no lookup. (A table a script set, debug.setfenv, with a
 * metatable of its own reads as none: then nothing is stored there.) */
static int is_noslots(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return 1;
  if (!lua_getmetatable(L, idx)) return 0;
  lua_pop(L, 1);
  return 1;
}

/* The slots are made with the userdata (a table of n), so that storing
 * into them never allocates, as in 5.4. */
void *lw_newuserdatauv(lua_State *L, size_t size, int n) {
  void *p = lua_newuserdata(L, size);
  if (n > 0) {
    lua_createtable(L, n, 0);
    lua_setfenv(L, -2);
    return p;
  }
  lua_pushlightuserdata(L, (void *)&noslots_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_isnil(L, -1)) { /* first use: made once, kept */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L); /* its mark: see is_noslots */
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, (void *)&noslots_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_setfenv(L, -2);
  return p;
}
#else
static void push_slots(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TUSERDATA) /* the API checks nothing */
    lua_getuservalue(L, idx);
  else
    lua_pushnil(L);
}

static int is_noslots(lua_State *L, int idx) {
  return lua_type(L, idx) != LUA_TTABLE;
}

void *lw_newuserdatauv(lua_State *L, size_t size, int n) {
  void *p = lua_newuserdata(L, size); /* its uservalue is nil: no slots */
  if (n > 0) {
    lua_createtable(L, n, 0);
    lua_setuservalue(L, -2);
  }
  return p;
}
#endif

/* No check for the shared table of a userdata without slots: it is
 * empty, so every slot reads nil there. (What a slot holds is checked by
 * its reader: debug.setfenv can give a userdata any table.) */
int lw_getiuservalue(lua_State *L, int idx, int n) {
  push_slots(L, idx); /* nil for what is not a userdata */
  if (lua_type(L, -1) != LUA_TTABLE) { /* 5.3: no table yet */
    lua_pop(L, 1);
    lua_pushnil(L);
    return lua_type(L, idx) == LUA_TUSERDATA ? LUA_TNIL : LUA_TNONE;
  }
  lua_rawgeti(L, -1, n);
  lua_replace(L, -2);
  return lua_type(L, -1);
}

/* [-1, +0, -]; returns 0, storing nothing, if the value at idx is not a
 * full userdata with slots, as 5.4 does for a slot it does not have. */
int lw_setiuservalue(lua_State *L, int idx, int n) {
  push_slots(L, idx); /* nil for what is not a userdata */
  if (is_noslots(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- resume */

int lw_resume(lua_State *co, lua_State *from, int nargs, int *nres) {
  int r;
#undef lua_resume
#if LW_LUA51
  (void)from;
  r = lua_resume(co, nargs);
#else
  r = lua_resume(co, from, nargs);
#endif
  *nres = lua_gettop(co);
  return r;
}

#endif /* < 5.4 */

#if LW_LUA51

/* -------------------------------------------------------- the 5.2+ calls */

int lw_absindex(lua_State *L, int idx) {
  return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

void lw_rotate(lua_State *L, int idx, int n) {
  int top = lua_gettop(L), i;
  idx = lw_absindex(L, idx);
  if (n > 0) {
    for (i = 0; i < n; i++) lua_insert(L, idx);
  } else {
    for (i = 0; i < -n; i++) {
      lua_pushvalue(L, idx);
      lua_remove(L, idx);
      lua_insert(L, top);
    }
  }
}

/* 5.1 has only floats: an integer is a float with an integral value in
 * lua_Integer's range. */
int lw_isinteger(lua_State *L, int idx) {
  lua_Number x;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  x = lua_tonumber(L, idx);
  return x >= -9223372036854775808.0 && x < 9223372036854775808.0 &&
         x == (lua_Number)(lua_Integer)x;
}

lua_Integer lw_tointegerx(lua_State *L, int idx, int *isnum) {
  int ok = lua_isnumber(L, idx);
  lua_Number x = ok ? lua_tonumber(L, idx) : 0;
  ok = ok && x >= -9223372036854775808.0 && x < 9223372036854775808.0 &&
       x == (lua_Number)(lua_Integer)x;
  if (isnum) *isnum = ok;
  return ok ? (lua_Integer)x : 0;
}

/* 5.1's truncates a number with a fraction; 5.3's refuses it. */
lua_Integer lw_checkinteger(lua_State *L, int arg) {
  int isnum;
  lua_Integer n = lw_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg))
      luaL_argerror(L, arg, "number has no integer representation");
    else
      luaL_typerror(L, arg, "number");
  }
  return n;
}

lua_Integer lw_optinteger(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : lw_checkinteger(L, arg);
}

void lw_rawgetp(lua_State *L, int idx, const void *p) {
  idx = lw_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, idx);
}

void lw_rawsetp(lua_State *L, int idx, const void *p) {
  idx = lw_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, idx);
}

const char *lw_tolstring(lua_State *L, int idx, size_t *len) {
  idx = lw_absindex(L, idx);
  if (luaL_callmeta(L, idx, "__tostring")) {
    if (!lua_isstring(L, -1)) luaL_error(L, "'__tostring' must return a string");
  } else {
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
    case LUA_TSTRING: lua_pushvalue(L, idx); break;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
      break;
    case LUA_TNIL: lua_pushliteral(L, "nil"); break;
    default:
      lua_pushfstring(L, "%s: %p", luaL_typename(L, idx),
                      lua_topointer(L, idx));
    }
  }
  return lua_tolstring(L, -1, len);
}

int lw_getsubtable(lua_State *L, int idx, const char *fname) {
  idx = lw_absindex(L, idx);
  lua_getfield(L, idx, fname);
  if (lua_type(L, -1) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, idx, fname);
  return 0;
}

void lw_requiref(lua_State *L, const char *name, lua_CFunction f, int glb) {
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "_LOADED");
  }
  lua_getfield(L, -1, name);
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushcfunction(L, f);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
  }
  lua_remove(L, -2);
  if (glb) {
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_GLOBALSINDEX, name);
  }
}

void lw_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  int i;
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

void *lw_testudata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

void lw_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

/* debug.traceback(L1, msg, level) when the debug library is there; the
 * message alone otherwise. Without a message, 5.1's debug.traceback
 * starts with the newline that would end one: dropped, as 5.4 has none. */
void lw_traceback(lua_State *L, lua_State *L1, const char *msg, int level) {
  lua_getfield(L, LUA_GLOBALSINDEX, "debug");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
    if (lua_type(L, -1) == LUA_TFUNCTION) {
      int n = 0;
      if (L1 != L) {
        lua_pushthread(L1);
        lua_xmove(L1, L, 1);
        n = 1;
      }
      lua_pushstring(L, msg ? msg : "");
      lua_pushinteger(L, level);
      if (lua_pcall(L, n + 2, 1, 0) == 0 && lua_type(L, -1) == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (msg == NULL && s[0] == '\n') {
          lua_pushstring(L, s + 1);
          lua_remove(L, -2);
        }
        return;
      }
    }
  }
  lua_pop(L, 1);
  lua_pushstring(L, msg ? msg : "");
}

/* ------------------------------------------------------ light functions */

static const char light_key = 0; /* registry: {[f as light userdata] = f} */

static int make_light(lua_State *L) {
  lua_CFunction f = (lua_CFunction)lua_touserdata(L, 1);
  lua_pushlightuserdata(L, (void *)&light_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, (void *)&light_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pushlightuserdata(L, (void *)f);
  lua_pushcclosure(L, f, 0);
  lua_rawset(L, -3);
  return 0;
}

void lw_pushcfunction(lua_State *L, lua_CFunction f) {
  int i;
  for (i = 0; i < 2; i++) {
    lua_pushlightuserdata(L, (void *)&light_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushlightuserdata(L, (void *)f);
      lua_rawget(L, -2);
      lua_remove(L, -2);
      if (lua_type(L, -1) == LUA_TFUNCTION || i == 1) return;
    }
    lua_pop(L, 1);
    if (lua_cpcall(L, make_light, (void *)f) != 0) {
      lua_pop(L, 1); /* the error */
      lua_pushnil(L);
      return;
    }
  }
}

/* ---------------------------------------------------------------- errors */

void lw_where(lua_State *L, int level) {
  lua_Debug ar;
  int i, wrapped = 0;
  for (i = 1; lua_getstack(L, i, &ar); i++) {
    lua_getinfo(L, "Sl", &ar);
    /* The wrapper, or the call it made a tail call of (PUC 5.1 keeps a
     * frame for a tail call). */
    if (strcmp(ar.source, "=weft.wrap") == 0 ||
        (wrapped && strcmp(ar.what, "tail") == 0)) {
      wrapped = 1;
      continue;
    }
    wrapped = 0;
    if (--level > 0) continue;
    if (ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
    break;
  }
  lua_pushliteral(L, "");
}

int lw_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  lw_where(L, 1);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

/* ------------------------------------------------------- yieldability */

/* Whether a C function running in L may yield. LuaJIT has the call
 * (found at run time, with LuaJIT itself: this module, built on the 5.1
 * headers, serves both). PUC 5.1 has none: it refuses a yield when a C call lies between
 * the coroutine's resume and the yielding function (pcall, a metamethod,
 * an iterator of a for loop, table.sort's comparator...), which it
 * counts in two fields of lua_State. 5.1.5 is the last 5.1 and its
 * lua_State layout is fixed; what is read below is that layout's head,
 * checked once against the stack the API reports before it is trusted.
 * Without it, only the main thread is known not to yield. */
struct lua51_head { /* lstate.h, Lua 5.1.5 */
  void *next;
  unsigned char tt, marked, status;
  char *top, *base;
  void *l_G, *ci;
  const void *savedpc;
  char *stack_last, *stack;
  void *end_ci, *base_ci;
  int stacksize, size_ci;
  unsigned short nCcalls, baseCcalls;
};

static int (*jit_isyieldable)(lua_State *L);

int lw_is_luajit(void) { return dlsym(RTLD_DEFAULT, "luaJIT_setmode") != NULL; }
static int layout_known = -1; /* -1: not checked yet */

static int check_layout(lua_State *L) {
  const struct lua51_head *h = (const void *)L;
  lua_pushnil(L); /* at least one value */
  layout_known = h->tt == LUA_TTHREAD &&
                 h->top - h->base == (long)(lua_gettop(L) * 16) &&
                 h->stack <= h->base && h->top <= h->stack_last;
  lua_pop(L, 1);
  return layout_known;
}

int lw_isyieldable(lua_State *L) {
  const struct lua51_head *h = (const void *)L;
  int main;
  if (jit_isyieldable) return jit_isyieldable(L);
  main = lua_pushthread(L);
  lua_pop(L, 1);
  if (main) return 0;
  if (layout_known < 0) {
    if (dlsym(RTLD_DEFAULT, "luaJIT_setmode"))
      jit_isyieldable = (int (*)(lua_State *))dlsym(RTLD_DEFAULT,
                                                     "lua_isyieldable");
    if (jit_isyieldable == NULL) check_layout(L);
    else layout_known = 0;
  }
  if (jit_isyieldable) return jit_isyieldable(L);
  if (layout_known) return h->nCcalls <= h->baseCcalls;
  return 1;
}

#endif /* LW_LUA51 */
