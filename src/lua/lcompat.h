/*
 * lcompat.h - one binding source for Lua 5.4, 5.3, 5.1 and LuaJIT 2.1.
 * The binding is written against the 5.4 API; this header supplies what
 * an older API lacks, in the style of compat-5.3: each shim does what
 * the 5.4 call does, or as much of it as the version allows (said where
 * it differs). LW_LUA51 is the 5.1 API, which LuaJIT has too: the binding
 * uses only what PUC 5.1 has (shims for the rest, even where LuaJIT has
 * its own), so that one module serves both (lib/lua/5.1/weft.so); what
 * differs at run time is asked then (lw_isyieldable). LW_LUA53 is 5.3.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_LCOMPAT_H
#define WEFT_LCOMPAT_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if LUA_VERSION_NUM == 501
#define LW_LUA51 1
#elif LUA_VERSION_NUM == 503
#define LW_LUA53 1
#elif LUA_VERSION_NUM != 504
#error "weft builds against Lua 5.4, 5.3, 5.1 or LuaJIT 2.1"
#endif

/* ------------------------------------------------- 5.3 and 5.1 alike */
#if LUA_VERSION_NUM < 504

/* Uservalues: 5.4 gives a userdata n slots; before, a userdata has one
 * value (5.3) or an environment table (5.1). Slots live in a table there,
 * made on the first store (5.1: a shared empty table stands for none,
 * since a new userdata's environment is the running function's). */
void *lw_newuserdatauv(lua_State *L, size_t size, int n);
int lw_getiuservalue(lua_State *L, int idx, int n);
int lw_setiuservalue(lua_State *L, int idx, int n);
#define lua_newuserdatauv lw_newuserdatauv
#define lua_getiuservalue lw_getiuservalue
#define lua_setiuservalue lw_setiuservalue

/* lua_resume: nres is what the coroutine yielded or returned, which is
 * all its stack holds then. */
#define lua_resume(co, from, nargs, nres) lw_resume(co, from, nargs, nres)
int lw_resume(lua_State *co, lua_State *from, int nargs, int *nres);

/* A coroutine to reuse must have returned; one that failed is dropped
 * (5.4 resets it). */
#define LW_NO_RESET 1

#define lua_setwarnf(L, f, ud) ((void)(L), (void)(f), (void)(ud))
#endif

/* ------------------------------------------------------------ 5.1 only */
#if LW_LUA51

#define LUA_OK 0
typedef intptr_t lua_KContext;
typedef int (*lua_KFunction)(lua_State *L, int status, lua_KContext ctx);

/* Getters return the type of what they pushed, as from 5.3 on. */
#define lua_getfield(L, i, k) (lua_getfield(L, (i), (k)), lua_type(L, -1))
#define lua_rawget(L, i) (lua_rawget(L, (i)), lua_type(L, -1))
#define lua_rawgeti(L, i, n) (lua_rawgeti(L, (i), (n)), lua_type(L, -1))
#define lua_gettable(L, i) (lua_gettable(L, (i)), lua_type(L, -1))
#define luaL_getmetafield(L, i, k) \
  (luaL_getmetafield(L, (i), (k)) ? lua_type(L, -1) : LUA_TNIL)

/* Pushes return the string, as from 5.2 on. */
static inline const char *lw_pushstring(lua_State *L, const char *s) {
  lua_pushstring(L, s);
  return lua_tostring(L, -1);
}
static inline const char *lw_pushlstring(lua_State *L, const char *s,
                                         size_t n) {
  lua_pushlstring(L, s, n);
  return lua_tostring(L, -1);
}
#define lua_pushstring lw_pushstring
#define lua_pushlstring lw_pushlstring
#undef lua_pushliteral
#define lua_pushliteral(L, s) lw_pushlstring(L, "" s, sizeof(s) - 1)
#define LUA_LOADED_TABLE "_LOADED"
typedef size_t lua_Unsigned;
#define LUA_MAXINTEGER PTRDIFF_MAX
#define LUA_MININTEGER PTRDIFF_MIN

#define lua_rawlen(L, i) lua_objlen(L, (i))
#define lua_pushglobaltable(L) lua_pushvalue(L, LUA_GLOBALSINDEX)
#define lua_writestringerror(s, p) (fprintf(stderr, (s), (p)), fflush(stderr))

int lw_absindex(lua_State *L, int idx);
void lw_rotate(lua_State *L, int idx, int n);
int lw_isinteger(lua_State *L, int idx);
void lw_rawgetp(lua_State *L, int idx, const void *p);
void lw_rawsetp(lua_State *L, int idx, const void *p);
const char *lw_tolstring(lua_State *L, int idx, size_t *len);
int lw_getsubtable(lua_State *L, int idx, const char *fname);
void lw_requiref(lua_State *L, const char *name, lua_CFunction f, int glb);
#define lua_absindex lw_absindex
#define lua_rotate lw_rotate
#define lua_isinteger lw_isinteger
#define lua_rawgetp(L, i, p) (lw_rawgetp(L, (i), (p)), lua_type(L, -1))
#define lua_rawsetp lw_rawsetp
#define luaL_tolstring lw_tolstring
#define luaL_getsubtable lw_getsubtable
#define luaL_requiref lw_requiref

void lw_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *lw_testudata(lua_State *L, int idx, const char *tname);
void lw_setmetatable(lua_State *L, const char *tname);
void lw_traceback(lua_State *L, lua_State *L1, const char *msg, int level);
lua_Integer lw_tointegerx(lua_State *L, int idx, int *isnum);
int lw_isyieldable(lua_State *L);
int lw_is_luajit(void); /* whether the running VM is LuaJIT */
/* lua_pushcfunction allocates on 5.1 (a closure), where 5.2 on pushes a
 * light function: the binding pushes its entries before the protected
 * calls that run them, on memory that may be short. Each function is
 * made once, inside a protected call, and kept (in the registry); if it
 * cannot be made, nil is pushed, which the protected call then fails to
 * call: an error, not a panic. [-0, +1, -] */
void lw_pushcfunction(lua_State *L, lua_CFunction f);
#undef lua_pushcfunction
#define lua_pushcfunction lw_pushcfunction
#define luaL_setfuncs lw_setfuncs
#define luaL_testudata lw_testudata
#define luaL_setmetatable lw_setmetatable
#define luaL_traceback lw_traceback
#define lua_tointegerx lw_tointegerx
lua_Integer lw_checkinteger(lua_State *L, int arg);
lua_Integer lw_optinteger(lua_State *L, int arg, lua_Integer def);
#define luaL_checkinteger lw_checkinteger
#define luaL_optinteger lw_optinteger
#define lua_isyieldable lw_isyieldable

/* Errors name the script's line: the Lua wrapper through which a script
 * calls a function that may wait (About waits in lweft.h) is no level. */
void lw_where(lua_State *L, int level);
int lw_error(lua_State *L, const char *fmt, ...);
#define luaL_where lw_where
#define luaL_error lw_error
#undef lua_getglobal
#define lua_getglobal(L, k) lua_getfield(L, LUA_GLOBALSINDEX, (k))
#endif /* LW_LUA51 */

/* Integers in lua_pushfstring and luaL_error: "got " LW_I, LW_INT(n).
 * 5.1 has no integer format; its numbers print as integers when they
 * are. */
#if LW_LUA51
#define LW_I "%f"
#define LW_INT(x) ((lua_Number)(x))
#else
#define LW_I "%I"
#define LW_INT(x) ((lua_Integer)(x))
#endif

#endif
