/*
 * proc.c - weft.process and weft.dns (Lua binding): the arguments of
 * weft_process_exec and weft_dns_resolve (src/io) checked and filled in,
 * the call awaited by the task, its result pushed.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include "lweft.h"
#include "weft_io.h"

/* ------------------------------------------------------------- process */

/* Raises unless the string at idx holds no zero byte: the system would
 * cut it there. what names it in the error ("cmd", "args[2]"). */
static void check_plain(lua_State *L, int idx, const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len)
    luaL_error(L, "process.exec: %s must not contain \"\\0\"", what);
}

/* exec(cmd [, args [, opts]]): the types of the three arguments. */
static void check_exec_args(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "process.exec: cmd must be a string, got %s",
               luaL_typename(L, 1));
  check_plain(L, 1, "cmd");
  if (!lua_isnil(L, 2) && !lua_istable(L, 2))
    luaL_error(L, "process.exec: args must be a table or nil, got %s",
               luaL_typename(L, 2));
  if (!lua_isnil(L, 3) && !lua_istable(L, 3))
    luaL_error(L, "process.exec: opts must be a table or nil, got %s",
               luaL_typename(L, 3));
}

/* opts[key], a string or nil, left on the stack (so it stays alive until
 * the call has copied it); *len gets its length. plain: it must hold no
 * zero byte. */
static const char *opt_string(lua_State *L, const char *key, int plain,
                              size_t *len) {
  const char *s = NULL;
  *len = 0;
  if (lua_isnil(L, 3)) return NULL;
  lua_getfield(L, 3, key);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "process.exec: opts.%s must be a string, got %s", key,
                 luaL_typename(L, -1));
    s = lua_tolstring(L, -1, len);
    if (plain && strlen(s) != *len)
      luaL_error(L, "process.exec: opts.%s must not contain \"\\0\"", key);
  }
  return s;
}

/* opts.timeout_ms: a positive integer, or 0 for none. */
static lua_Integer opt_timeout(lua_State *L) {
  lua_Integer ms = 0;
  if (lua_isnil(L, 3)) return 0;
  lua_getfield(L, 3, "timeout_ms");
  if (!lua_isnil(L, -1) &&
      (!lua_isinteger(L, -1) || (ms = lua_tointeger(L, -1)) <= 0))
    luaL_error(L, "process.exec: opts.timeout_ms must be a positive "
                  "integer, got %s",
               lua_isinteger(L, -1) ? lua_tostring(L, -1)
                                    : luaL_typename(L, -1));
  lua_pop(L, 1);
  return ms;
}

/* The strings of the array args (at 2, or nil) in a NULL-terminated
 * vector, pushed as a userdata; the array keeps the strings alive. */
static const char *const *args_vector(lua_State *L) {
  lua_Integer n = lua_istable(L, 2) ? (lua_Integer)lua_rawlen(L, 2) : 0, i;
  const char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
  char what[32];
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
      luaL_error(L, "process.exec: args[%d] must be a string, got %s",
                 (int)i, luaL_typename(L, -1));
    snprintf(what, sizeof what, "args[%d]", (int)i);
    check_plain(L, -1, what);
    v[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
  return v;
}

/* Raises unless the pair on top (name, value) of opts.env is a name
 * without "=" or a zero byte, mapped to such a string or to false. */
static void check_env_pair(lua_State *L) {
  size_t len;
  int vt = lua_type(L, -1);
  if (lua_type(L, -2) != LUA_TSTRING ||
      (vt != LUA_TSTRING && !(vt == LUA_TBOOLEAN && !lua_toboolean(L, -1))))
    luaL_error(L, "process.exec: opts.env must map names to strings (or "
                  "false to remove), got %s = %s",
               luaL_typename(L, -2), luaL_typename(L, -1));
  lua_tolstring(L, -2, &len);
  if (len == 0 || strchr(lua_tostring(L, -2), '=') ||
      strlen(lua_tostring(L, -2)) != len)
    luaL_error(L, "process.exec: opts.env names must not be empty or "
                  "contain \"=\" or \"\\0\"");
  if (vt == LUA_TSTRING) check_plain(L, -1, "opts.env values");
}

/* The changes opts.env makes to the inherited environment, in a
 * NULL-terminated vector as weft_process_opts wants them: "NAME=value"
 * for a string, "NAME" for false; NULL without opts.env. Pushes the
 * vector (a userdata) above a table holding the strings. */
static const char *const *env_vector(lua_State *L) {
  size_t n = 0;
  const char **v;
  int env;
  if (lua_isnil(L, 3) || lua_getfield(L, 3, "env") == LUA_TNIL) return NULL;
  if (!lua_istable(L, -1))
    luaL_error(L, "process.exec: opts.env must be a table, got %s",
               luaL_typename(L, -1));
  env = lua_gettop(L);
  for (lua_pushnil(L); lua_next(L, env); lua_pop(L, 1), n++)
    check_env_pair(L);
  lua_createtable(L, (int)n, 0);
  v = lua_newuserdatauv(L, (n + 1) * sizeof *v, 0);
  n = 0;
  for (lua_pushnil(L); lua_next(L, env); lua_pop(L, 1)) {
    if (lua_type(L, -1) == LUA_TSTRING)
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    else
      lua_pushvalue(L, -2);
    v[n++] = lua_tostring(L, -1);
    lua_rawseti(L, env + 1, (lua_Integer)n);
  }
  v[n] = NULL;
  return v;
}

/* weft.process.exec(cmd [, args [, opts]]) -> {code, signal, stdout,
 * stderr} (weft_process_exec); opts.timeout_ms is the wait's limit. */
static int l_exec(lua_State *L) {
  State *S = upstate(L);
  weft_process_opts o;
  lua_Integer ms;
  weft_call_t **c;
  size_t len;
  Task *t;
  lua_settop(L, 3); /* absent arguments are nils */
  check_exec_args(L);
  t = lw_need_task(L, S, "process.exec");
  memset(&o, 0, sizeof o);
  o.cmd = lua_tostring(L, 1);
  o.cwd = opt_string(L, "cwd", 1, &len);
  o.stdin_data = opt_string(L, "stdin", 0, &o.stdin_len);
  ms = opt_timeout(L);
  o.env = env_vector(L);
  o.args = args_vector(L);
  c = lw_call_slot(L, "process.exec");
  lw_call_label(L, 1, (uint64_t)ms);
  return lw_call_wait(L, t, weft_process_exec(S->loop, &o, c));
}

/* ----------------------------------------------------------------- dns */

/* weft.dns.resolve(host) -> {"127.0.0.1", "::1", ...} (weft_dns_resolve) */
static int l_resolve(lua_State *L) {
  State *S = upstate(L);
  const char *host;
  weft_call_t **c;
  size_t len;
  Task *t;
  lua_settop(L, 1);
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "dns.resolve: host must be a string, got %s",
                      luaL_typename(L, 1));
  host = lua_tolstring(L, 1, &len);
  if (len == 0) return luaL_error(L, "dns.resolve: host must not be empty");
  if (strlen(host) != len)
    return luaL_error(L, "dns.resolve: host must not contain \"\\0\"");
  t = lw_need_task(L, S, "dns.resolve");
  c = lw_call_slot(L, "dns.resolve");
  return lw_call_wait(L, t, weft_dns_resolve(S->loop, host, c));
}

void lw_open_proc(lua_State *L, State *S) {
  lw_push_state(L, S);
  lua_pushcclosure(L, l_exec, 1);
  lw_wrap_wait(L);
  lua_setfield(L, -2, "process_exec");
  lw_push_state(L, S);
  lua_pushcclosure(L, l_resolve, 1);
  lw_wrap_wait(L);
  lua_setfield(L, -2, "dns_resolve");
}
