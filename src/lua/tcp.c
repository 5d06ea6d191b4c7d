/*
 * tcp.c - weft.tcp's C primitives (Lua binding): connections and servers
 * of weft_io.h as userdata, their waits as continuations, their errors as
 * Lua errors. Argument checks and the weft.tcp table are in tcp.lua.
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "lweft.h"
#include "weft_io.h"

#define CONN_MT "weft.tcp.Conn"
#define SERVER_MT "weft.tcp.Server"
#define WHERE_MAX 320 /* "host:port" of a server, for messages */

/* Userdata tags: see About userdata tags in lweft.h. */
static const char CONN_TAG[] = CONN_MT, SERVER_TAG[] = SERVER_MT;

/* What a reader waits for (tcp.lua and socket.lua pass these numbers). */
enum { R_SOME = 1, R_EXACT, R_LINE, R_LINE_KEEP, R_ALL, R_UNTIL };

static const char *const read_names[] = {
    "", "conn:read", "conn:read_exactly", "conn:read", "conn:read",
    "conn:read", "sock:receiveuntil"};

/* ---------------------------------------------------------------- errors */

/* Raises "<fname>: <where>: <libuv's message>" as an "io" error whose
 * code is libuv's name ("ECONNREFUSED"), as fs.c's errors. */
static int raise_io(lua_State *L, const char *fname, const char *where,
                    int code) {
  char text[128];
  weft_io_error_text(text, sizeof text, NULL, code);
  lua_pushfstring(L, "%s: %s: %s", fname, where, text);
  lw_new_error(L, "io", lua_tostring(L, -1));
  lua_pushstring(L, weft_io_err_name(code));
  lua_setfield(L, -2, "code");
  return lua_error(L);
}

static int raise_timeout(lua_State *L, const char *fname, const char *where,
                         lua_Integer ms) {
  lua_pushfstring(L, "%s: %s: timed out after " LW_I " ms", fname, where,
                  LW_INT(ms));
  lw_new_error(L, "timeout", lua_tostring(L, -1));
  lua_pushliteral(L, "ETIMEDOUT");
  lua_setfield(L, -2, "code");
  return lua_error(L);
}

/* About soft calls: the cosocket primitives (socket.lua) return nil and
 * an error string instead of raising, in the words OpenResty's cosockets
 * use, since libraries compare them: "timeout", "closed", and otherwise
 * the system's message in lower case ("connection refused"), as
 * lua-nginx-module gives it. A cancellation still raises. */
static int push_soft_error(lua_State *L, int code) {
  char text[128], *p;
  lua_pushnil(L);
  switch (code) {
  case UV_EOF:
  case WEFT_ECLOSED: lua_pushliteral(L, "closed"); return 2;
  case WEFT_ETIMEDOUT: lua_pushliteral(L, "timeout"); return 2;
  case WEFT_ESTATE: lua_pushliteral(L, "socket busy"); return 2;
  case WEFT_ENOMEM:
  case UV_ENOMEM: lua_pushliteral(L, "no memory"); return 2;
  case UV_EMSGSIZE: lua_pushliteral(L, "line too long"); return 2;
  default: break;
  }
  if (code < 0 && code > -4096) /* -errno: the C library's words */
    snprintf(text, sizeof text, "%s", strerror(-code));
  else
    weft_io_error_text(text, sizeof text, NULL, code);
  for (p = text; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  lua_pushstring(L, text);
  return 2;
}

/* The wake-up status of a wait: a continuation that is called directly
 * (the future was settled already) must not read a stale status. */
static int woke(Task *t, int st) { return st == LUA_YIELD ? t->status : 0; }

/* A numeric address into ss; 0 or UV_EINVAL. */
static int parse_addr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

/* ------------------------------------------------------------ lookups */

/* I.tcp_resolve(host, fname, where, ms) -> list of numeric addresses, in
 * the resolver's order (weft_dns_resolve); a numeric host is its own
 * list, at once. Errors read "<fname>: <where>: ...". ms 0: no time
 * limit. */
static int l_resolve(lua_State *L) {
  static const char *const fnames[] = {"tcp.connect", "tcp.listen",
                                       "sock:connect", NULL};
  State *S = upstate(L);
  const char *host = luaL_checkstring(L, 1);
  /* A static name: the call keeps it while it waits. */
  const char *fname = fnames[luaL_checkoption(L, 2, NULL, fnames)];
  lua_Integer ms = luaL_optinteger(L, 4, 0);
  struct sockaddr_storage ss;
  weft_call_t **c;
  Task *t = lw_need_task(L, S, fname);
  luaL_checkstring(L, 3);
  lua_settop(L, 4);
  if (parse_addr(host, 0, &ss) == 0) {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    return 1;
  }
  c = lw_call_slot(L, fname);
  lw_call_label(L, 3, ms > 0 ? (uint64_t)ms : 0);
  return lw_call_wait(L, t, weft_dns_resolve(S->loop, host, c));
}

/* -------------------------------------------------------- connections */

/* About ConnUd: a script's connection, pointing at its weft_tcp_t, which
 * it owns (weft_tcp_free when collected). Closing it (conn:close, the
 * owning task's end) keeps the pointer, so that a waiting task's
 * continuation finds the connection closed; c is NULL only in a userdata
 * that never got one. */
typedef struct ConnUd {
  const char *tag; /* CONN_TAG */
  weft_tcp_t *c;
  int rref, wref; /* registry slots: see About waits on a connection */
} ConnUd;

/* The connection userdata at idx, or NULL. */
static ConnUd *toconn(lua_State *L, int idx) {
  return lw_toudata(L, idx, sizeof(ConnUd), CONN_TAG);
}

/* The connection of the userdata a continuation left at idx: debug.setlocal
 * can replace it there, so it is checked. */
static weft_tcp_t *conn_at(lua_State *L, int idx, const char *fname) {
  ConnUd *u = toconn(L, idx);
  if (u == NULL || u->c == NULL)
    luaL_error(L, "%s: the connection was replaced", fname);
  return u->c;
}

/* The open connection of the userdata at 1, or raises. */
static weft_tcp_t *check_conn(lua_State *L, const char *fname) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, fname);
  if (u->c == NULL || weft_tcp_closed(u->c))
    luaL_error(L, "%s: the connection is closed", fname);
  return u->c;
}

/* Pushes a new connection userdata, with no connection yet. [-0, +1, m] */
static ConnUd *push_conn(lua_State *L) {
  ConnUd *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->tag = CONN_TAG;
  u->c = NULL;
  u->rref = u->wref = LUA_NOREF;
  luaL_setmetatable(L, CONN_MT);
  lua_pushboolean(L, 0);
  u->rref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  u->wref = luaL_ref(L, LUA_REGISTRYINDEX);
  return u;
}

/* Raises for a failed call on c: r is WEFT_ECLOSED, WEFT_ESTATE (another
 * task has the turn: what names it) or libuv's code. */
static int raise_conn(lua_State *L, weft_tcp_t *c, const char *fname,
                      int r, const char *what) {
  if (r == WEFT_ECLOSED)
    return luaL_error(L, "%s: the connection is closed", fname);
  if (r == WEFT_ESTATE)
    return luaL_error(L, "%s: another task is %s this connection", fname,
                      what);
  return raise_io(L, fname, weft_tcp_name(c), r);
}

/* ------------------------------------------------------------- reading */

/* About waits on a connection: a task waiting to read or write holds the
 * connection's turn. Its continuation must give the turn back on every
 * way out, or the connection would keep a task that ended (and whose
 * memory may be gone) as its reader or writer. A script can replace the
 * stack slots of a suspended continuation (debug.setlocal), so the
 * connection is found through a registry slot instead: each connection
 * has two (rref, wref), made with it, so that parking allocates nothing
 * (storing into a slot that exists cannot fail). While a task waits, its
 * slot holds the connection, which cannot be collected meanwhile; a
 * write's slot holds {conn, bytes}, as libuv sends the bytes from there.
 * The continuation gets the slot's number as its context. A slot is
 * emptied (false) by the task that filled it, and only while that task
 * still holds the turn or nobody does: a task that took the turn over
 * after a cancellation has filled it anew. */

/* The connection of slot ref, or NULL; slot 1 gets it back. */
static weft_tcp_t *slot_conn(lua_State *L, lua_KContext ref) {
  ConnUd *u;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, (int)ref) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  u = toconn(L, -1);
  if (u == NULL) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_replace(L, 1);
  return u->c;
}

static void slot_clear(lua_State *L, lua_KContext ref) {
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, (int)ref);
}

/* Gives slot *ref back to the registry when the connection goes. The
 * collector finds a connection only with its slots empty (a filled slot
 * holds it), but a script can call __gc by hand while a task waits: that
 * slot is kept, as the task's continuation will read it, and goes with
 * the state; were it given back, the registry would hand the number out
 * again and the continuation would read, and empty, another's value. */
static void slot_release(lua_State *L, int *ref) {
  if (*ref == LUA_NOREF) return;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, *ref) == LUA_TBOOLEAN)
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  lua_pop(L, 1);
  *ref = LUA_NOREF;
}

static int read_k(lua_State *L, int st, lua_KContext ctx);

/* A soft read's failure (see About soft calls): nil, the error, and what
 * came (partial); the connection is closed unless the read timed out, as
 * a cosocket's is. */
static int soft_read_error(lua_State *L, weft_tcp_t *c, int code,
                           weft_span_t partial) {
  push_soft_error(L, code);
  lua_pushlstring(L, partial.ptr ? partial.ptr : "", partial.len);
  if (code != WEFT_ETIMEDOUT) weft_tcp_close(c);
  return 3;
}

/* Reads for t and pushes the result, or waits. Stack: 1 conn, 2 mode, 3
 * count, and for a soft read (see About soft calls) 4 its time limit in
 * ms (0: none), 5 the pattern and 6 whether it is handed out (R_UNTIL). */
static int do_read(lua_State *L, Task *t, weft_tcp_t *c, int mode) {
  const char *fname = read_names[mode];
  size_t need = (size_t)lua_tointeger(L, 3), plen;
  int soft = lua_type(L, 4) == LUA_TNUMBER, found = 0, r;
  weft_future_t *wait;
  weft_span_t sp;
  if (mode == R_UNTIL) {
    const char *pat = lua_tolstring(L, 5, &plen);
    r = pat == NULL ? WEFT_EINVAL
                    : weft_tcp_read_until(c, &t->t, pat, plen, need,
                                          lua_toboolean(L, 6), &sp, &found,
                                          &wait);
  } else {
    r = weft_tcp_read(c, &t->t, mode, need, &sp, &wait);
  }
  switch (r) {
  case 0:
    lua_pushlstring(L, sp.ptr, sp.len);
    if (mode != R_UNTIL) return 1;
    lua_pushboolean(L, found);
    return 2;
  case WEFT_PENDING: {
    ConnUd *u = toconn(L, 1); /* checked by the caller */
    lua_Integer ms = soft ? lua_tointeger(L, 4) : 0;
    lua_pushvalue(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, u->rref);
    /* no deadline, no allocation; one that cannot be had fails the read */
    if (ms > 0) weft_loop_update_time(upstate(L)->loop);
    r = weft_task_await(&t->t, wait, ms > 0 ? (uint64_t)ms : WEFT_FOREVER);
    if (r < 0) {
      slot_clear(L, u->rref);
      weft_tcp_read_abandon(c, &t->t);
      sp.ptr = NULL;
      sp.len = 0;
      return soft_read_error(L, c, WEFT_ENOMEM, sp);
    }
    return lw_yield(L, u->rref, read_k);
  }
  case UV_EOF:
    if (soft) return soft_read_error(L, c, r, sp);
    if (mode != R_EXACT) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushfstring(L, "%s: %s: the connection ended after " LW_I " of " LW_I
                    " bytes", fname, weft_tcp_name(c), LW_INT(sp.len),
                    LW_INT(need));
    lw_new_error(L, "io", lua_tostring(L, -1));
    lua_pushliteral(L, "EOF");
    lua_setfield(L, -2, "code");
    return lua_error(L);
  case UV_EMSGSIZE: /* a line longer than max_line: the bytes stay */
    if (soft) return soft_read_error(L, c, r, sp);
    lua_pushfstring(L, "%s: %s: line longer than " LW_I " bytes", fname,
                    weft_tcp_name(c), LW_INT(weft_tcp_max_line(c)));
    lw_new_error(L, "io", lua_tostring(L, -1));
    lua_pushliteral(L, "EMSGSIZE");
    lua_setfield(L, -2, "code");
    return lua_error(L);
  default:
    if (soft) return soft_read_error(L, c, r, sp);
    return raise_conn(L, c, fname, r, "reading from");
  }
}

/* A soft read's time ran out: what came is handed out as partial. */
static int read_timed_out(lua_State *L, Task *t, weft_tcp_t *c) {
  weft_future_t *wait;
  weft_span_t sp;
  int r;
  weft_tcp_read_abandon(c, &t->t);
  r = weft_tcp_read(c, &t->t, R_SOME, SIZE_MAX, &sp, &wait);
  if (r == WEFT_PENDING) weft_tcp_read_abandon(c, &t->t); /* nothing came */
  if (r != 0) sp.ptr = NULL, sp.len = 0;
  return soft_read_error(L, c, WEFT_ETIMEDOUT, sp);
}

/* Stack while waiting: as do_read's; ctx: the connection's read slot
 * (see About waits on a connection). */
static int read_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  weft_tcp_t *c;
  int mode, why;
  if (t == NULL) return lw_yield(L, ctx, read_k);
  if ((c = slot_conn(L, ctx)) == NULL)
    return luaL_error(L, "conn:read: the connection is gone");
  if (weft_tcp_reader(c) == &t->t || weft_tcp_reader(c) == NULL)
    slot_clear(L, ctx);
  mode = (int)lua_tointeger(L, 2);
  why = woke(t, st);
  if (why == WEFT_ECANCELED || mode < R_SOME || mode > R_UNTIL ||
      lua_type(L, 3) != LUA_TNUMBER) {
    weft_tcp_read_abandon(c, &t->t); /* what came stays */
    if (why == WEFT_ECANCELED) lw_raise_cancel(L, t);
    return luaL_error(L, "conn:read: its arguments were replaced");
  }
  if (weft_tcp_closed(c)) {
    if (lua_type(L, 4) == LUA_TNUMBER) return push_soft_error(L, WEFT_ECLOSED);
    return luaL_error(L, "%s: the connection is closed", read_names[mode]);
  }
  if (weft_tcp_reader(c) != &t->t) /* taken over after a cancel */
    lw_raise_cancel(L, t);
  if (why == WEFT_ETIMEDOUT) return read_timed_out(L, t, c);
  return do_read(L, t, c, mode);
}

/* I.tcp_read(conn, mode, count) -> string, or nil at the end */
static int l_read(lua_State *L) {
  State *S = upstate(L);
  lua_Integer mode = luaL_checkinteger(L, 2);
  const char *fname = read_names[mode >= R_SOME && mode <= R_ALL ? mode : 1];
  weft_tcp_t *c = check_conn(L, fname);
  Task *t;
  if (mode < R_SOME || mode > R_ALL)
    return luaL_error(L, "conn:read: mode must be an integer from %d to %d, "
                         "got " LW_I, R_SOME, R_ALL, LW_INT(mode));
  if (luaL_optinteger(L, 3, 0) < 0)
    return luaL_error(L, "conn:read: count must be >= 0");
  t = lw_need_task(L, S, fname);
  lua_settop(L, 3);
  if (mode == R_LINE || mode == R_LINE_KEEP || lua_isnil(L, 3)) {
    lua_pushinteger(L, 0); /* lines: the connection's limit */
    lua_replace(L, 3);
  }
  return do_read(L, t, c, (int)mode);
}

/* I.sock_read(conn, mode, count, ms [, pattern, inclusive]) -> string (and
 * whether the pattern ended it, R_UNTIL), or nil, error, partial: a soft
 * read (see About soft calls). count 0: a line's limit is the
 * connection's; ms 0: no time limit. */
static int l_sock_read(lua_State *L) {
  State *S = upstate(L);
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, "sock:receive");
  lua_Integer mode = luaL_checkinteger(L, 2);
  lua_Integer count = luaL_checkinteger(L, 3);
  lua_Integer ms = luaL_checkinteger(L, 4);
  Task *t = lw_need_task(L, S, "sock:receive");
  if (mode < R_SOME || mode > R_UNTIL || count < 0 || ms < 0)
    return luaL_error(L, "sock:receive: bad mode, count or time limit");
  if (mode == R_UNTIL) luaL_checkstring(L, 5);
  lua_settop(L, 6);
  if (u->c == NULL || weft_tcp_closed(u->c))
    return push_soft_error(L, WEFT_ECLOSED);
  return do_read(L, t, u->c, (int)mode);
}

/* I.tcp_idle_check(conn) -> true when another owner may reuse it (see
 * weft_tcp_idle_check). */
static int l_idle_check(lua_State *L) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, "sock:setkeepalive");
  lua_pushboolean(L, u->c != NULL && weft_tcp_idle_check(u->c) == 0);
  return 1;
}

/* ------------------------------------------------------------- writing */

/* Stack while waiting: 1 conn; ctx: the connection's write slot (see
 * About waits on a connection), holding {conn, bytes} for a write
 * ({conn, bytes, true} for a soft one: see About soft calls), the
 * connection alone for a shutdown. */
static int write_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  const char *fname = "conn:shutdown";
  weft_future_t *wait = NULL;
  weft_tcp_t *c;
  size_t len = 0;
  int why, r, soft = 0;
  if (t == NULL) return lw_yield(L, ctx, write_k);
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, (int)ctx) == LUA_TTABLE) {
    fname = "conn:write";
    lua_rawgeti(L, -1, 2);
    lua_tolstring(L, -1, &len);
    lua_rawgeti(L, -2, 3);
    soft = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  if ((c = slot_conn(L, ctx)) == NULL)
    return luaL_error(L, "%s: the connection is gone", fname);
  why = woke(t, st);
  if (why == WEFT_ECANCELED || why == WEFT_ETIMEDOUT)
    weft_tcp_write_abandon(c, &t->t); /* half-written: closes c */
  r = why == WEFT_ECANCELED || why == WEFT_ETIMEDOUT
          ? why : weft_tcp_poll_write(c, &t->t, &wait);
  if (r == WEFT_PENDING) { /* woken early: the write goes on */
    weft_task_await(&t->t, wait, WEFT_FOREVER);
    return lw_yield(L, ctx, write_k);
  }
  /* libuv is done with the bytes (written, failed, or the connection
   * closed), unless another task has the turn and the slot now. */
  if (weft_tcp_writer(c) == NULL) slot_clear(L, ctx);
  if (r == WEFT_ECANCELED || r == WEFT_ESTATE) lw_raise_cancel(L, t);
  if (soft) {
    if (r != 0) {
      weft_tcp_close(c);
      return push_soft_error(L, r);
    }
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
  }
  if (r != 0) return raise_conn(L, c, fname, r, "writing to");
  return 0;
}

/* I.tcp_write(conn, data): returns once the kernel has all of data.
 * I.sock_write(conn, data, ms) -> #data, or nil, error: a soft write (see
 * About soft calls) with a time limit (ms 0: none); a failed one closes
 * the connection, as a cosocket's does. */
static int do_write(lua_State *L, int soft) {
  State *S = upstate(L);
  const char *fname = soft ? "sock:send" : "conn:write";
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, fname);
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  lua_Integer ms = soft ? luaL_checkinteger(L, 3) : 0;
  Task *t = lw_need_task(L, S, fname);
  weft_tcp_t *c = u->c;
  weft_future_t *wait;
  long n;
  int r;
  if (c == NULL || weft_tcp_closed(c)) {
    if (soft) return push_soft_error(L, WEFT_ECLOSED);
    return luaL_error(L, "%s: the connection is closed", fname);
  }
  /* Most writes fit in the socket's buffer: no request, no wait. */
  if ((n = weft_tcp_try_write(c, &t->t, p, len)) < 0) {
    if (!soft) return raise_conn(L, c, fname, (int)n, "writing to");
    if (n != WEFT_ESTATE) weft_tcp_close(c);
    return push_soft_error(L, (int)n);
  }
  if ((size_t)n == len) {
    if (!soft) return 0;
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
  }
  /* The rest must live until libuv is done with it: in the write slot
   * (see About waits on a connection), filled before the write starts. */
  lua_settop(L, 2);
  lua_createtable(L, 3, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  lua_pushboolean(L, soft);
  lua_rawseti(L, -2, 3);
  lua_rawseti(L, LUA_REGISTRYINDEX, u->wref);
  r = weft_tcp_write(c, &t->t, p + n, len - (size_t)n, &wait);
  if (r == WEFT_PENDING) {
    if (ms > 0) weft_loop_update_time(S->loop);
    r = weft_task_await(&t->t, wait, ms > 0 ? (uint64_t)ms : WEFT_FOREVER);
    if (r >= 0) return lw_yield(L, u->wref, write_k); /* parked */
    weft_tcp_write_abandon(c, &t->t); /* no timer: give up the write */
    r = WEFT_ENOMEM;
  }
  slot_clear(L, u->wref);
  if (r == 0 && !soft) return 0;
  if (r == 0) {
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
  }
  if (!soft) return raise_conn(L, c, fname, r, "writing to");
  weft_tcp_close(c);
  return push_soft_error(L, r);
}

static int l_write(lua_State *L) { return do_write(L, 0); }
static int l_sock_write(lua_State *L) { return do_write(L, 1); }

/* I.tcp_shutdown(conn): sends the end of the stream once the writes in
 * flight are out; reading goes on. */
static int l_shutdown(lua_State *L) {
  State *S = upstate(L);
  weft_tcp_t *c = check_conn(L, "conn:shutdown");
  Task *t = lw_need_task(L, S, "conn:shutdown");
  weft_future_t *wait;
  int r = weft_tcp_shutdown(c, &t->t, &wait);
  ConnUd *u = toconn(L, 1);
  if (r != WEFT_PENDING)
    return raise_conn(L, c, "conn:shutdown", r, "writing to");
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  lua_rawseti(L, LUA_REGISTRYINDEX, u->wref);
  weft_task_await(&t->t, wait, WEFT_FOREVER);
  return lw_yield(L, u->wref, write_k);
}

/* ---------------------------------------------------------- connecting */

static int own(lua_State *L, Task *t, int idx);

/* Stack while waiting: 1 ip, 2 port, 3 where, 4 ms, 5 shown ms, 6 conn.
 * ctx 1: a soft connect (see About soft calls), whose connection belongs
 * to whoever holds it, not to the task. */
static int connect_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  const char *where = lua_tostring(L, 3);
  weft_future_t *wait;
  weft_tcp_t *c;
  int why, r;
  if (t == NULL) return lw_yield(L, ctx, connect_k);
  c = conn_at(L, 6, "tcp.connect");
  why = woke(t, st);
  if (why) {
    weft_tcp_close(c);
    if (why == WEFT_ECANCELED) lw_raise_cancel(L, t);
    if (ctx) return push_soft_error(L, WEFT_ETIMEDOUT);
    return raise_timeout(L, "tcp.connect", where, lua_tointeger(L, 5));
  }
  r = weft_tcp_poll_connect(c, &wait);
  if (r == WEFT_PENDING) { /* woken early: the deadline stands */
    weft_task_await(&t->t, wait, WEFT_FOREVER);
    return lw_yield(L, ctx, connect_k);
  }
  if (ctx && r != 0) return push_soft_error(L, r);
  if (r == WEFT_ECLOSED)
    return luaL_error(L, "tcp.connect: the connection is closed");
  if (r != 0) return raise_io(L, "tcp.connect", where, r);
  if (!ctx && own(L, t, 6) != LUA_OK) {
    weft_tcp_close(c);
    return lua_error(L);
  }
  lua_settop(L, 6);
  return 1;
}

/* I.tcp_connect(ip, port, where, ms, shown_ms) -> conn, owned by the
 * calling task. ms 0: no time limit; shown_ms is the limit the script
 * gave, for the message. I.sock_connect(ip, port, where, ms) -> conn, or
 * nil, error: a soft connect, the connection owned by no task. */
static int do_connect(lua_State *L, int soft) {
  State *S = upstate(L);
  const char *ip = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  const char *where = luaL_checkstring(L, 3);
  lua_Integer ms = luaL_optinteger(L, 4, 0);
  Task *t = lw_need_task(L, S, "tcp.connect");
  weft_future_t *wait;
  ConnUd *u;
  int r;
  lua_settop(L, 5);
  u = push_conn(L); /* at 6 */
  r = weft_tcp_connect(S->loop, ip, port < 0 || port > 65535 ? -1 : (int)port,
                       &u->c);
  if (r != 0) {
    r = r == WEFT_EINVAL ? UV_EINVAL : r;
    if (soft) return push_soft_error(L, r);
    return raise_io(L, "tcp.connect", where, r);
  }
  weft_tcp_set_name(u->c, where);
  if ((r = weft_tcp_poll_connect(u->c, &wait)) != WEFT_PENDING)
    return connect_k(L, LUA_OK, soft);
  weft_loop_update_time(S->loop);
  r = weft_task_await(&t->t, wait, ms > 0 ? (uint64_t)ms : WEFT_FOREVER);
  if (r == WEFT_ENOMEM) {
    weft_tcp_close(u->c);
    if (soft) return push_soft_error(L, r);
    return luaL_error(L, "tcp.connect: not enough memory");
  }
  return lw_yield(L, soft, connect_k);
}

static int l_connect(lua_State *L) { return do_connect(L, 0); }
static int l_sock_connect(lua_State *L) { return do_connect(L, 1); }

/* ------------------------------------------------- connection methods */

/* I.tcp_close(conn), and __close: closes at once; tasks waiting on the
 * connection wake and get "the connection is closed". */
static int l_close(lua_State *L) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, "conn:close");
  weft_tcp_close(u->c);
  return 0;
}

/* The owning task ended (see LwOwned). */
static void conn_owned_close(lua_State *L, void *ud) {
  (void)L;
  weft_tcp_close(((ConnUd *)ud)->c);
}
static const LwOwned conn_owned = {conn_owned_close, sizeof(ConnUd),
                                   CONN_TAG};

/* __gc: a task waiting on the connection holds it on its stack, but
 * debug.setlocal can replace it there: closing wakes the waiters before
 * the connection's memory goes (see conn_at). */
static int conn_gc(lua_State *L) {
  ConnUd *u = toconn(L, 1);
  if (u == NULL) return 0; /* not a connection: a script called this */
  weft_tcp_free(u->c);
  u->c = NULL;
  slot_release(L, &u->rref);
  slot_release(L, &u->wref);
  return 0;
}

static int l_closed(lua_State *L) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, "conn:closed");
  lua_pushboolean(L, u->c == NULL || weft_tcp_closed(u->c));
  return 1;
}

/* I.tcp_addr(conn, peer) -> ip, port of the peer or of the local end */
static int l_addr(lua_State *L) {
  int peer = lua_toboolean(L, 2), port, r;
  const char *fname = peer ? "conn:getpeername" : "conn:getsockname";
  weft_tcp_t *c = check_conn(L, fname);
  char ip[INET6_ADDRSTRLEN];
  if ((r = weft_tcp_addr(c, peer, ip, sizeof ip, &port)) != 0)
    return raise_io(L, fname, weft_tcp_name(c), r);
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

static int conn_tostring(lua_State *L) {
  ConnUd *u = toconn(L, 1);
  if (u == NULL) return lua_pushfstring(L, "%s: %p", luaL_typename(L, 1),
                           lua_topointer(L, 1)), 1; /* not a conn */
  if (u->c && !weft_tcp_closed(u->c))
    lua_pushfstring(L, "weft.tcp.Conn (%s)", weft_tcp_name(u->c));
  else
    lua_pushliteral(L, "weft.tcp.Conn (closed)");
  return 1;
}

/* -------------------------------------------------------------- servers */

/* About ServerUd: a script's server, owning its weft_server_t (freed when
 * collected). While it listens, the userdata is anchored in the registry
 * (ref), since each accepted connection needs its handler (user value 1)
 * and records its task in the weak set of user value 2; the task that
 * called listen owns it, so it closes when that task ends at the latest.
 * The server is the accept callback's ud: it can call only while the
 * server listens, so while the userdata is anchored. */
typedef struct ServerUd {
  const char *tag; /* SERVER_TAG */
  weft_server_t *s;
  State *S;
  int ref, port, closed, waiters;
  char name[WHERE_MAX];
} ServerUd;

static ServerUd *toserver(lua_State *L, int idx) {
  return lw_toudata(L, idx, sizeof(ServerUd), SERVER_TAG);
}

static ServerUd *checkserver(lua_State *L, const char *fname) {
  return lw_checkudata(L, 1, sizeof(ServerUd), SERVER_TAG, fname);
}

/* [task, object] -> nil: makes a connection or server (which it also
 * anchors, see About ServerUd) a resource of the task. A script's call
 * hook can capture this and call it again (see About internal functions
 * in task.c): it takes the task by its userdata, checked, and anchors a
 * server once. */
static int own_entry(lua_State *L) {
  Fut *f = lw_tofut(L, NULL, 1);
  ServerUd *u = toserver(L, 2);
  if (f == NULL || f->kind != KIND_TASK || ((Task *)f)->ref == LUA_NOREF)
    return luaL_error(L, "weft: an internal function called with a bad "
                         "argument");
  if (u && !u->closed && u->ref == LUA_NOREF) {
    lua_pushvalue(L, 2);
    u->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lw_task_own(L, (Task *)f, 2);
  return 0;
}

/* Hands the object at idx to task t, protected: on out of memory it
 * returns an error status with the error pushed, and the caller closes
 * the object rather than leave it open until the collector finds it. */
static int own(lua_State *L, Task *t, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, own_entry);
  lw_push_task(L, t);
  lua_pushvalue(L, idx);
  return lua_pcall(L, 2, 0, 0);
}

/* Stops accepting and drops the anchor (L NULL: none can be dropped). */
static void server_end(lua_State *L, ServerUd *u) {
  u->closed = 1;
  weft_server_close(u->s);
  if (L && u->ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, u->ref);
  u->ref = LUA_NOREF;
}

/* What on_accept hands to accept_entry: not light userdata on the Lua
 * stack, since a script's call hook can capture accept_entry and call it
 * again (see own_entry). One per thread; taken once. */
static _Thread_local struct {
  weft_tcp_t *c;
  ServerUd *u;
} accept_req;

/* -> nil: spawns the handler task with a userdata for the connection of
 * accept_req. Run protected: it allocates. */
static int accept_entry(lua_State *L) {
  weft_tcp_t *c = accept_req.c;
  ServerUd *s = accept_req.u;
  ConnUd *u;
  if (c == NULL)
    return luaL_error(L, "weft: an internal function called again");
  lua_settop(L, 0);
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref) != LUA_TUSERDATA) /* 1 */
    return luaL_error(L, "tcp.listen: the server is gone");
  lua_pushfstring(L, "tcp %s", weft_tcp_name(c)); /* 2: the task's name */
  lua_getiuservalue(L, 1, 1);                     /* 3: the handler */
  u = push_conn(L);                               /* 4 */
  u->c = c; /* from here the userdata owns c */
  accept_req.c = NULL;
  lw_spawn_at(L, s->S, 3, WEFT_PRIO_NORMAL, 2); /* 5 */
  lw_task_own(L, lua_touserdata(L, 5), 4);
  /* The server's weak set of handler tasks (debug.setuservalue may have
   * put something else there). */
  if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 5);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}

/* A client connected (weft_accept_cb): spawns its handler. This runs
 * inside the loop, with no task running: the handler task has no parent,
 * and the Lua work runs on the driver's stack (S->L), protected. */
static void on_accept(weft_server_t *srv, weft_tcp_t *c, void *ud) {
  ServerUd *s = ud;
  lua_State *L = s->S->L;
  (void)srv;
  if (!lua_checkstack(L, 3)) {
    weft_tcp_free(c);
    return;
  }
  lua_pushcfunction(L, accept_entry);
  accept_req.c = c;
  accept_req.u = s;
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    /* Out of memory. A connection that no handler owns is let go now,
     * not when the collector finds it (no finalizer runs while memory
     * is short, and its client would wait until then). */
    lua_pop(L, 1);
    if (accept_req.c) weft_tcp_free(accept_req.c);
  }
  accept_req.c = NULL;
  accept_req.u = NULL;
  weft_loop_wake(s->S->loop);
}

/* I.tcp_listen(ip, port, handler, backlog, where) -> server, owned by the
 * calling task. Binding and listening are synchronous. */
static int l_listen(lua_State *L) {
  State *S = upstate(L);
  const char *ip = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  lua_Integer backlog = luaL_checkinteger(L, 4);
  const char *where = luaL_checkstring(L, 5);
  Task *t = lw_need_task(L, S, "tcp.listen");
  ServerUd *u;
  int r;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 5);
  u = lua_newuserdatauv(L, sizeof *u, 2); /* 6 */
  memset(u, 0, sizeof *u);
  u->tag = SERVER_TAG;
  u->S = S;
  u->ref = LUA_NOREF;
  snprintf(u->name, sizeof u->name, "%s", where);
  luaL_setmetatable(L, SERVER_MT);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 6, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, 6, 2);
  r = weft_tcp_listen(S->loop, ip,
                      port < 0 || port > 65535 ? -1 : (int)port,
                      backlog < 1 || backlog > INT_MAX ? 0 : (int)backlog,
                      on_accept, u, &u->s);
  if (r != 0) {
    u->closed = 1;
    return raise_io(L, "tcp.listen", where, r == WEFT_EINVAL ? UV_EINVAL : r);
  }
  u->port = weft_server_port(u->s);
  if (own(L, t, 6) != LUA_OK) {
    server_end(L, u);
    return lua_error(L);
  }
  lua_settop(L, 6);
  return 1;
}

static int server_wait_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  ServerUd *u;
  if (t == NULL) return lw_yield(L, ctx, server_wait_k);
  u = toserver(L, 1); /* see conn_at */
  (void)ctx;
  if (u == NULL) return luaL_error(L, "server:wait: the server was replaced");
  if (u->s && u->waiters > 0) {
    u->waiters--;
    weft_server_hold(u->s, 0);
  }
  if (woke(t, st) == WEFT_ECANCELED) lw_raise_cancel(L, t);
  return 0;
}

/* I.tcp_server_wait(server): waits until the server closes; meanwhile
 * the server keeps the loop alive. */
static int l_server_wait(lua_State *L) {
  State *S = upstate(L);
  ServerUd *u = checkserver(L, "server:wait");
  Task *t = lw_need_task(L, S, "server:wait");
  if (u->s == NULL || u->closed) return 0;
  lua_settop(L, 1);
  u->waiters++;
  weft_server_hold(u->s, 1);
  weft_task_await(&t->t, weft_server_closed(u->s), WEFT_FOREVER);
  return lw_yield(L, 0, server_wait_k);
}

/* I.tcp_server_close(server) -> the weak set of its handler tasks */
static int l_server_close(lua_State *L) {
  ServerUd *u = checkserver(L, "server:close");
  if (u->s) server_end(L, u);
  lua_getiuservalue(L, 1, 2);
  return 1;
}

/* The owning task ended (see LwOwned). */
static void server_owned_close(lua_State *L, void *ud) {
  ServerUd *u = ud;
  if (u->s) server_end(L, u);
}
static const LwOwned server_owned = {server_owned_close, sizeof(ServerUd),
                                     SERVER_TAG};

/* __close */
static int server_close_mm(lua_State *L) {
  ServerUd *u = toserver(L, 1);
  if (u == NULL) return 0; /* not a server: a script called this */
  if (u->s) server_end(L, u);
  return 0;
}

/* __gc: a listening server is anchored, so this is a closed one, or the
 * Lua state is closing. */
static int server_gc(lua_State *L) {
  ServerUd *u = toserver(L, 1);
  if (u == NULL) return 0; /* not a server: a script called this */
  u->closed = 1;
  weft_server_free(u->s);
  u->s = NULL;
  return 0;
}

/* I.tcp_set_max_line(conn or server, n): the longest line a read takes
 * (a server: for the connections it accepts from now on); 0: no limit. */
static int l_set_max_line(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  size_t max = n <= 0 || (uint64_t)n > SIZE_MAX ? 0 : (size_t)n;
  ServerUd *su = toserver(L, 1);
  if (su) {
    if (su->s) weft_server_set_max_line(su->s, max);
  } else {
    weft_tcp_set_max_line(check_conn(L, "conn:read"), max);
  }
  return 0;
}

/* I.tcp_server_info(server) -> port, closed */
static int l_server_info(lua_State *L) {
  ServerUd *u = checkserver(L, "server:info");
  lua_pushinteger(L, u->port);
  lua_pushboolean(L, u->s == NULL || u->closed);
  return 2;
}

static int server_tostring(lua_State *L) {
  ServerUd *u = toserver(L, 1);
  if (u == NULL) return lua_pushfstring(L, "%s: %p", luaL_typename(L, 1),
                           lua_topointer(L, 1)), 1; /* not a server */
  if (u->s && !u->closed)
    lua_pushfstring(L, "weft.tcp.Server (%s, port %d)", u->name, u->port);
  else
    lua_pushfstring(L, "weft.tcp.Server (port %d, closed)", u->port);
  return 1;
}

/* ------------------------------------------------------------ opening */

static const luaL_Reg funcs[] = {
    {"tcp_resolve", l_resolve},   {"tcp_connect", l_connect},
    {"tcp_read", l_read},         {"tcp_write", l_write},
    {"tcp_shutdown", l_shutdown}, {"tcp_close", l_close},
    {"tcp_closed", l_closed},     {"tcp_addr", l_addr},
    {"tcp_listen", l_listen},     {"tcp_server_wait", l_server_wait},
    {"tcp_server_close", l_server_close},
    {"tcp_server_info", l_server_info},
    {"tcp_set_max_line", l_set_max_line},
    {"sock_connect", l_sock_connect}, {"sock_read", l_sock_read},
    {"sock_write", l_sock_write},     {"tcp_idle_check", l_idle_check},
    {NULL, NULL}};

/* Adds the primitives to the internal table on top, and the metatables
 * of connections and servers as tcp_conn_mt and tcp_server_mt (tcp.lua
 * gives them their __index). */
void lw_open_tcp(lua_State *L, State *S) {
  lw_push_state(L, S);
  luaL_setfuncs(L, funcs, 1);
  lw_wrap_fields(L, -1, (const char *const[]){"tcp_resolve", "tcp_connect",
                                                 "tcp_read", "tcp_write",
                                                 "tcp_server_wait",
                                                 "sock_connect", "sock_read",
                                                 "sock_write", NULL});
  luaL_newmetatable(L, CONN_MT);
  lw_protect_mt(L, CONN_MT);
  lua_pushcfunction(L, conn_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
  lw_set_owned_close(L, &conn_owned);
  lua_pushcfunction(L, conn_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setfield(L, -2, "tcp_conn_mt");
  luaL_newmetatable(L, SERVER_MT);
  lw_protect_mt(L, SERVER_MT);
  lua_pushcfunction(L, server_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, server_close_mm);
  lua_setfield(L, -2, "__close");
  lw_set_owned_close(L, &server_owned);
  lua_pushcfunction(L, server_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setfield(L, -2, "tcp_server_mt");
}
