/*
 * fs.c - weft.fs's C primitives (Lua binding): checks the arguments,
 * starts the operation of weft_io.h and suspends the task until it is
 * done. The script-facing wrappers (argument checks with the script's
 * names, buffered files, lines) are in io.lua.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "lweft.h"
#include "weft_io.h"

#define HANDLE_MT "weft.FileHandle"
static const char HANDLE_TAG[] = HANDLE_MT;

/* The script's handle of a file: the owner's reference until closed. */
typedef struct HandleUd {
  const char *tag; /* HANDLE_TAG: see About userdata tags */
  weft_file_t *f;
} HandleUd;

/* The primitives, by their key in the internal table; name is how their
 * errors start. args says what each takes after the handle of a handle
 * primitive: s a string, b a boolean, i an integer. */
enum {
  READ, WRITE, APPEND, STAT, EXISTS, LIST, MKDIR, REMOVE, RENAME,
  OPEN, LINES, HREAD, HLINES, HWRITE, HSEEK, NPRIMS
};
static const struct Prim {
  const char *key, *name, *args;
} prims[NPRIMS] = {
    {"fs_read", "fs.read", "s"},       {"fs_write", "fs.write", "ssb"},
    {"fs_append", "fs.append", "ssb"}, {"fs_stat", "fs.stat", "s"},
    {"fs_exists", "fs.exists", "s"},   {"fs_list", "fs.list", "s"},
    {"fs_mkdir", "fs.mkdir", "sb"},    {"fs_remove", "fs.remove", "sb"},
    {"fs_rename", "fs.rename", "ss"},  {"fs_open", "fs.open", "s"},
    {"fs_lines", "fs.lines", "s"},     {"fs_hread", "file:read", "i"},
    {"fs_hlines", "file:lines", "i"},  {"fs_hwrite", "file:write", "s"},
    {"fs_hseek", "file:seek", "ii"},
};

/* The primitive running: upvalue 2 is its number, checked (a script can
 * replace upvalues). */
static int upprim(lua_State *L) {
  int isint;
  lua_Integer i = lua_tointegerx(L, lua_upvalueindex(2), &isint);
  if (!isint || i < 0 || i >= NPRIMS)
    luaL_error(L, "weft.fs: corrupted upvalue 2 (expected a job number)");
  return (int)i;
}

/* Which argument of primitive p is data, which may hold "\0"; -1: none. */
static int data_arg(int p) {
  return p == WRITE || p == APPEND ? 1 : p == HWRITE ? 0 : -1;
}

/* Leaves exactly the arguments p's spec says from first, of those types;
 * a string that is not data must hold no "\0". */
static void check_args(lua_State *L, int first, int p) {
  static const char *const what[] = {"a string", "a boolean", "an integer"};
  const char *spec = prims[p].args, *fname = prims[p].name;
  int i;
  lua_settop(L, first + (int)strlen(spec) - 1);
  for (i = 0; spec[i]; i++) {
    int k = spec[i] == 's' ? 0 : spec[i] == 'b' ? 1 : 2, at = first + i;
    size_t len;
    int ok = k == 0   ? lua_type(L, at) == LUA_TSTRING
             : k == 1 ? lua_type(L, at) == LUA_TBOOLEAN
                      : lua_isinteger(L, at);
    if (!ok)
      luaL_error(L, "%s: argument %d must be %s, got %s", fname, at,
                 what[k], luaL_typename(L, at));
    if (k == 0 && i != data_arg(p) &&
        strlen(lua_tolstring(L, at, &len)) != len)
      luaL_error(L, "%s: argument %d must not contain \"\\0\"", fname, at);
  }
}

static HandleUd *check_handle(lua_State *L, const char *fname) {
  HandleUd *hu = lw_checkudata(L, 1, sizeof *hu, HANDLE_TAG, fname);
  if (hu->f == NULL) luaL_error(L, "%s: the file is closed", fname);
  return hu;
}

/* Starts primitive p's operation into *c, its arguments from a (after
 * the handle of a handle primitive, whose file is f). */
static int start(lua_State *L, weft_loop_t *loop, int p, int a,
                 weft_file_t *f, weft_call_t **c) {
  size_t len = 0;
  /* Only strings are read as strings (lua_tolstring would turn a number
   * on the stack into one). */
  const char *s = lua_type(L, a) == LUA_TSTRING ? lua_tostring(L, a) : NULL;
  const char *s2 = lua_type(L, a + 1) == LUA_TSTRING
                       ? lua_tolstring(L, a + 1, &len) : NULL;
  lua_Integer n;
  switch (p) {
  case READ: return weft_fs_read(loop, s, c);
  case WRITE:
  case APPEND: return weft_fs_write(loop, s, s2, len, p == APPEND, c);
  case STAT: return weft_fs_stat(loop, s, c);
  case EXISTS: return weft_fs_exists(loop, s, c);
  case LIST: return weft_fs_list(loop, s, c);
  case MKDIR: return weft_fs_mkdir(loop, s, lua_toboolean(L, a + 1), c);
  case REMOVE: return weft_fs_remove(loop, s, lua_toboolean(L, a + 1), c);
  case RENAME: return weft_fs_rename(loop, s, s2, c);
  case OPEN:
  case LINES: return weft_file_open(loop, f, s, c);
  case HREAD:
  case HLINES:
    n = lua_tointeger(L, a);
    return weft_file_read(loop, f, n < 1 ? 0 : (size_t)n, c);
  case HWRITE:
    s = lua_tolstring(L, a, &len);
    return weft_file_write(loop, f, s, len, c);
  default:
    return weft_file_seek(loop, f, (int)lua_tointeger(L, a),
                          (int64_t)lua_tointeger(L, a + 1), c);
  }
}

/* A primitive: the arguments checked against its spec (io.lua checks
 * them for the script with its own names; these are private, so a bad
 * one here is named by its position). A handle primitive (h, ...) runs
 * on an open file; the operation holds a reference to it. */
static int l_prim(lua_State *L) {
  State *S = upstate(L);
  int p = upprim(L), a = p >= OPEN ? 2 : 1, r;
  const char *fname = prims[p].name;
  weft_file_t *f = p >= OPEN ? check_handle(L, fname)->f : NULL;
  weft_call_t **c;
  Task *t;
  check_args(L, a, p);
  if ((p == OPEN || p == LINES) && !weft_file_valid_mode(lua_tostring(L, a)))
    return luaL_error(L, "%s: invalid mode", fname);
  t = lw_need_task(L, S, fname);
  lw_need_pool(L, S, fname);
  c = lw_call_slot(L, fname);
  r = start(L, S->loop, p, a, f, c);
  if (r == WEFT_EINVAL) /* what io.lua let through: a size or a whence */
    return luaL_error(L, "%s: invalid argument", fname);
  return lw_call_wait(L, t, r);
}

/* I.fs_handle(path) -> a handle for path, not yet open, owned by the
 * running task. */
static int l_handle(lua_State *L) {
  State *S = upstate(L);
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  HandleUd *hu;
  if (strlen(path) != len)
    return luaL_error(L, "fs.open: path must not contain \"\\0\"");
  hu = lua_newuserdatauv(L, sizeof *hu, 0);
  hu->tag = HANDLE_TAG;
  hu->f = NULL;
  luaL_setmetatable(L, HANDLE_MT);
  if (weft_file_new(path, &hu->f) != 0)
    return luaL_error(L, "fs.open: not enough memory");
  if (S->current) lw_task_own(L, S->current, -1);
  return 1;
}

/* Drops the handle's reference; the descriptor closes once no job uses
 * it. Closing twice is harmless. Also how its owning task closes it (see
 * LwOwned). */
static void hclose(lua_State *L, void *ud) {
  HandleUd *hu = ud;
  (void)L;
  weft_file_close(hu->f);
  hu->f = NULL;
}
static const LwOwned handle_owned = {hclose, sizeof(HandleUd), HANDLE_TAG};

/* __gc and __close: on anything a script gives them, nothing happens. */
static int l_hclose_mm(lua_State *L) {
  HandleUd *hu = lw_toudata(L, 1, sizeof *hu, HANDLE_TAG);
  if (hu) hclose(L, hu);
  return 0;
}

/* I.fs_hclose(h) */
static int l_hclose(lua_State *L) {
  hclose(L, lw_checkudata(L, 1, sizeof(HandleUd), HANDLE_TAG, "file:close"));
  return 0;
}

/* I.fs_hclosed(h) -> boolean */
static int l_hclosed(lua_State *L) {
  HandleUd *hu = lw_checkudata(L, 1, sizeof *hu, HANDLE_TAG, "file:closed");
  lua_pushboolean(L, hu->f == NULL);
  return 1;
}

/* I.fs_valid_mode(mode) -> whether mode is a valid open mode */
static int l_valid_mode(lua_State *L) {
  lua_pushboolean(L, weft_file_valid_mode(luaL_checkstring(L, 1)));
  return 1;
}

/* Adds the primitives to the internal table on top (io.lua builds
 * weft.fs from them). */
void lw_open_fs(lua_State *L, State *S) {
  int i;
  for (i = 0; i < NPRIMS; i++) {
    lw_push_state(L, S);
    lua_pushinteger(L, i);
    lua_pushcclosure(L, l_prim, 2);
    lw_wrap_wait(L);
    lua_setfield(L, -2, prims[i].key);
  }
  lw_push_state(L, S);
  lua_pushcclosure(L, l_handle, 1);
  lua_setfield(L, -2, "fs_handle");
  lua_pushcfunction(L, l_hclose);
  lua_setfield(L, -2, "fs_hclose");
  lua_pushcfunction(L, l_hclosed);
  lua_setfield(L, -2, "fs_hclosed");
  luaL_newmetatable(L, HANDLE_MT);
  lw_protect_mt(L, HANDLE_MT);
  lua_pushcfunction(L, l_hclose_mm);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_hclose_mm);
  lua_setfield(L, -2, "__close");
  lw_set_owned_close(L, &handle_owned);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_valid_mode);
  lua_setfield(L, -2, "fs_valid_mode");
}
