/*
 * tcp.c - weft.tcp: TCP connections and servers on libuv (Lua binding).
 * Reads and writes both push back on the peer; argument checks and the
 * weft.tcp table are in tcp.lua.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lweft.h"
/* host.h for weft__valloc and the loop's uv_loop_t. */
#include "host.h"
#include "weft_io.h"

#define CONN_MT "weft.tcp.Conn"
#define SERVER_MT "weft.tcp.Server"
#define READ_ROOM (64 * 1024)  /* free room offered to each socket read */
#define KEEP_MAX (1024 * 1024) /* an emptied buffer above this is freed */
#define WHERE_MAX 320 /* "host:port" of a peer, for messages */
#define LINE_MAX_DEFAULT (1024 * 1024) /* longest line a read takes */

/* Userdata tags: see About userdata tags in lweft.h. */
static const char CONN_TAG[] = CONN_MT, SERVER_TAG[] = SERVER_MT;

/* What a reader waits for (tcp.lua passes these numbers). */
enum { R_SOME = 1, R_EXACT, R_LINE, R_LINE_KEEP, R_ALL };

static const char *const read_names[] = {
    "", "conn:read", "conn:read_exactly", "conn:read", "conn:read",
    "conn:read"};

/* ---------------------------------------------------------------- errors */

/* Raises "<fname>: <where>: <libuv's message>" as an "io" error whose
 * code is libuv's name ("ECONNREFUSED"), as fs.c's errors. */
static int raise_io(lua_State *L, const char *fname, const char *where,
                    int code) {
  char text[128];
  snprintf(text, sizeof text, "%s", uv_strerror(code));
  if (text[0] >= 'a' && text[0] <= 'z') text[0] -= 'a' - 'A';
  lua_pushfstring(L, "%s: %s: %s", fname, where, text);
  lw_new_error(L, "io", lua_tostring(L, -1));
  lua_pushstring(L, uv_err_name(code));
  lua_setfield(L, -2, "code");
  return lua_error(L);
}

static int raise_timeout(lua_State *L, const char *fname, const char *where,
                         lua_Integer ms) {
  lua_pushfstring(L, "%s: %s: timed out after %I ms", fname, where, ms);
  lw_new_error(L, "timeout", lua_tostring(L, -1));
  lua_pushliteral(L, "ETIMEDOUT");
  lua_setfield(L, -2, "code");
  return lua_error(L);
}

static void *xalloc(size_t n) {
  void *p = weft__valloc(NULL, 0, n);
  if (p) memset(p, 0, n);
  return p;
}

/* Settles f from a libuv callback (or a close) and lets a borrowed loop
 * know that a task became ready. */
static void wake(weft_loop_t *loop, weft_future_t *f) {
  if (weft_future_fulfill(f) == 0) weft_loop_wake(loop);
}

/* The wake-up status of a wait: a continuation that is called directly
 * (the future was settled already) must not read a stale status. */
static int woke(Task *t, int st) { return st == LUA_YIELD ? t->status : 0; }

/* "host:port", or "[v6]:port", of a socket address. */
static void format_addr(const struct sockaddr *sa, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    snprintf(out, size, "[%s]:%d", ip, port);
    return;
  }
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  }
  snprintf(out, size, "%s:%d", ip, port);
}

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
  static const char *const fnames[] = {"tcp.connect", "tcp.listen", NULL};
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

/* About Conn: one connection. It is allocated apart from its Lua userdata
 * (ConnUd), which only points to it, because libuv uses the handle and
 * the requests inside until the close callback, and Lua may collect the
 * userdata before that. ud and ud->c point at each other while both are
 * open; closing clears both, and a closed userdata raises on use. The
 * closer lists the connection in the state until it is closed.
 * - Reading: buf[off, len) holds bytes received and not consumed (cap
 *   allocated). The socket is read (reading) only while a task (reader)
 *   waits for more than the buffer holds: rmode and need say what for, and
 *   each read offers READ_ROOM bytes of room. What nobody asked for stays
 *   in the kernel, so a slow reader slows the sender. rerr is 0 while the
 *   stream is open, then UV_EOF or the error that ended it; the buffered
 *   bytes are still handed out first. No newline lies in [off, scan).
 *   A line longer than max_line (SIZE_MAX: no limit) is an error, so a
 *   peer that never sends "\n" cannot fill memory.
 * - Writing: one write or shutdown at a time (writer), waiting on wfut;
 *   werr is its outcome. The string being written is anchored by a
 *   registry reference until the writer's continuation runs (see
 *   l_write). Connecting uses wfut too; cerr is its outcome.
 * - rfut and wfut are re-armed before each wait; a close settles both, so
 *   waiting tasks wake and see the connection closed. A reader or writer
 *   whose cancellation was requested no longer counts: cancellation is
 *   delivered when the task next runs, and the task that cancelled it
 *   (weft.timeout, say) may use the connection before that.
 * - Once closing, the callbacks that libuv still makes (a cancelled
 *   connect or write) touch nothing but the struct, which on_conn_closed
 *   frees. */
typedef struct ConnUd ConnUd;
typedef struct Conn {
  Closer closer;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  ConnUd *ud;
  weft_loop_t *loop;
  weft_future_t rfut, wfut;
  char *buf;
  size_t off, len, cap, scan, need, max_line;
  int rmode, rerr, reading;
  int werr, cerr;
  Task *reader, *writer; /* the tasks waiting to read and to write */
  int closing, owned; /* owned: by a handler task (accepted ones) */
  char name[WHERE_MAX]; /* the peer, for messages */
} Conn;

struct ConnUd {
  const char *tag; /* CONN_TAG */
  Conn *c;
};

/* The connection userdata at idx, or NULL. */
static ConnUd *toconn(lua_State *L, int idx) {
  return lw_toudata(L, idx, sizeof(ConnUd), CONN_TAG);
}

/* The connection of the userdata a continuation left at idx (see
 * resolve_k), NULL if closed; raises if the userdata was replaced. */
static Conn *conn_at(lua_State *L, int idx, const char *fname) {
  ConnUd *u = toconn(L, idx);
  if (u == NULL) luaL_error(L, "%s: the connection was replaced", fname);
  return u->c;
}

static void on_conn_closed(uv_handle_t *h) {
  Conn *c = h->data;
  if (c->buf) weft__valloc(c->buf, c->cap, 0);
  weft__valloc(c, sizeof *c, 0);
}

/* Closes c: unlinks it from its userdata and the state, closes the
 * handle (libuv cancels a connect or write in flight) and, if wake,
 * wakes the tasks waiting on it. Harmless on a closing connection. */
static void conn_close(Conn *c, int wake_waiters) {
  if (c->ud) c->ud->c = NULL;
  c->ud = NULL;
  if (c->closing) return;
  c->closing = 1;
  lw_closer_remove(&c->closer);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  if (wake_waiters) {
    wake(c->loop, &c->rfut);
    wake(c->loop, &c->wfut);
  }
}

/* The state is closing: no task will run again, so nobody is woken. */
static void conn_closer(Closer *cl) {
  conn_close(lw_container(cl, Conn, closer), 0);
}

static void conn_init(Conn *c, State *S) {
  uv_tcp_init(S->loop->uv, &c->tcp); /* no socket yet: cannot fail */
  c->tcp.data = c->creq.data = c->wreq.data = c->sreq.data = c;
  c->loop = S->loop;
  c->max_line = LINE_MAX_DEFAULT;
  weft_future_init(&c->rfut);
  weft_future_init(&c->wfut);
  c->closer.close = conn_closer;
  lw_closer_add(S, &c->closer);
}

/* Pushes a new userdata and a connection for it, linked and listed.
 * [-0, +1, m] */
static Conn *new_conn(lua_State *L, State *S, const char *fname) {
  ConnUd *u = lua_newuserdatauv(L, sizeof *u, 0);
  Conn *c;
  u->tag = CONN_TAG;
  u->c = NULL;
  luaL_setmetatable(L, CONN_MT);
  if ((c = xalloc(sizeof *c)) == NULL)
    luaL_error(L, "%s: not enough memory", fname);
  conn_init(c, S);
  c->ud = u;
  u->c = c;
  return c;
}

/* The open connection of the userdata at 1, or raises. */
static Conn *check_conn(lua_State *L, const char *fname) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, fname);
  if (u->c == NULL) luaL_error(L, "%s: the connection is closed", fname);
  return u->c;
}

/* ------------------------------------------------------------- reading */

/* The first newline in the buffer, or NULL; remembers how far it looked. */
static const char *find_nl(Conn *c) {
  const char *nl;
  if (c->scan < c->off) c->scan = c->off;
  nl = memchr(c->buf + c->scan, '\n', c->len - c->scan);
  c->scan = nl ? (size_t)(nl - c->buf) : c->len;
  return nl;
}

/* Whether the buffer can answer a read of mode and need now. */
static int satisfied(Conn *c, int mode, size_t need) {
  size_t avail = c->len - c->off;
  switch (mode) {
  case R_SOME: return avail > 0;
  case R_EXACT: return avail >= need;
  case R_LINE: /* need: the longest line */
  case R_LINE_KEEP: return avail > 0 && (find_nl(c) != NULL || avail > need);
  default: return 0; /* R_ALL: only the end answers */
  }
}

/* Makes room for at least room more bytes after len: first by moving the
 * unread bytes to the front, then by growing. 0 or UV_ENOMEM. */
static int reserve(Conn *c, size_t room) {
  size_t cap;
  char *nb;
  if (c->cap - c->len >= room) return 0;
  if (c->off > 0) {
    memmove(c->buf, c->buf + c->off, c->len - c->off);
    c->len -= c->off;
    c->scan -= c->scan >= c->off ? c->off : c->scan;
    c->off = 0;
    if (c->cap - c->len >= room) return 0;
  }
  cap = c->cap ? c->cap : room;
  while (cap - c->len < room) cap *= 2;
  if ((nb = weft__valloc(c->buf, c->cap, cap)) == NULL) return UV_ENOMEM;
  c->buf = nb;
  c->cap = cap;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  Conn *c = h->data;
  (void)hint;
  if (reserve(c, READ_ROOM) != 0) {
    b->base = NULL; /* libuv then reports UV_ENOBUFS */
    b->len = 0;
    return;
  }
  b->base = c->buf + c->len;
  b->len = c->cap - c->len;
}

static void stop_reading(Conn *c) {
  if (!c->reading) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* What ended the stream that libuv says ended (UV_EOF). libuv says so
 * when poll reports the peer gone (POLLHUP) after a read that did not
 * fill the buffer, without reading on, so a reset (RST) that came with
 * the last bytes looked like a clean end, and a truncated stream like a
 * complete one. The socket's pending error tells them apart: a reset
 * leaves ECONNRESET there (EPIPE when it followed the peer's end of
 * stream, which did end cleanly). */
static int end_of_stream(Conn *c) {
  uv_os_fd_t fd;
  int err = 0;
  socklen_t len = sizeof err;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0 ||
      err == EPIPE)
    return UV_EOF;
  return uv_translate_sys_error(err);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  Conn *c = s->data;
  (void)b;
  if (n > 0) c->len += (size_t)n;
  if (n == UV_EOF) n = end_of_stream(c);
  if (n < 0) c->rerr = n == UV_ENOBUFS ? UV_ENOMEM : (int)n;
  if (n < 0 || satisfied(c, c->rmode, c->need)) {
    stop_reading(c);
    wake(c->loop, &c->rfut);
  }
}

/* Pushes n buffered bytes (without the last one if chop) and consumes
 * them. An emptied buffer starts over, and a large one is freed. */
static void take(lua_State *L, Conn *c, size_t n, int chop) {
  lua_pushlstring(L, c->buf + c->off, n - (chop ? 1 : 0));
  c->off += n;
  if (c->off < c->len) return;
  c->off = c->len = c->scan = 0;
  if (c->cap > KEEP_MAX) {
    weft__valloc(c->buf, c->cap, 0);
    c->buf = NULL;
    c->cap = 0;
  }
}

/* Raises that the line at the front of the buffer is longer than max
 * bytes; the bytes stay, for a read of a count. */
static int raise_long(lua_State *L, Conn *c, int mode, size_t max) {
  lua_pushfstring(L, "%s: %s: line longer than %I bytes", read_names[mode],
                  c->name, (lua_Integer)max);
  lw_new_error(L, "io", lua_tostring(L, -1));
  lua_pushliteral(L, "EMSGSIZE");
  lua_setfield(L, -2, "code");
  return lua_error(L);
}

/* Answers a read from the buffer if it can: pushes the result and returns
 * 1, or returns 0 when the reader must wait. At the end of the stream,
 * the bytes left come first; then nil at the end ("" for R_ALL), or the
 * stream's error. R_EXACT raises when the stream ended short; a line
 * read, when the line is longer than need. */
static int answer(lua_State *L, Conn *c, int mode, size_t need) {
  size_t avail = c->len - c->off, n;
  if (satisfied(c, mode, need)) {
    if (mode == R_SOME) take(L, c, avail < need ? avail : need, 0);
    if (mode == R_EXACT) take(L, c, need, 0);
    if (mode == R_LINE || mode == R_LINE_KEEP) {
      n = c->scan - c->off; /* up to the newline, or all: none yet */
      if (c->scan == c->len || n > need) return raise_long(L, c, mode, need);
      take(L, c, n + 1, mode == R_LINE);
    }
    return 1;
  }
  if (c->rerr == 0) return 0;
  if (c->rerr != UV_EOF && (mode == R_ALL || mode == R_EXACT || avail == 0))
    return raise_io(L, read_names[mode], c->name, c->rerr);
  if (mode == R_EXACT) {
    lua_pushfstring(L, "%s: %s: the connection ended after %I of %I bytes",
                    read_names[mode], c->name, (lua_Integer)avail,
                    (lua_Integer)need);
    lw_new_error(L, "io", lua_tostring(L, -1));
    lua_pushliteral(L, "EOF");
    lua_setfield(L, -2, "code");
    return lua_error(L);
  }
  if (avail > 0)
    take(L, c, avail, 0);
  else if (mode == R_ALL)
    lua_pushliteral(L, "");
  else
    lua_pushnil(L);
  return 1;
}

static int wait_read(lua_State *L, Task *t, Conn *c);

/* Whether the reader or writer t still holds the connection: it waits,
 * and nobody asked to cancel it (see About Conn). */
static int busy(const Task *t) {
  return t != NULL && !(t->t.flags & WEFT_TASK_CANCEL);
}

/* Stack while waiting: 1 conn, 2 mode, 3 need. */
static int read_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Conn *c = conn_at(L, 1, "conn:read");
  int mode = (int)lua_tointeger(L, 2), why;
  if (t == NULL) return lua_yieldk(L, 0, ctx, read_k);
  why = woke(t, st);
  (void)ctx;
  if (mode < R_SOME || mode > R_ALL)
    return luaL_error(L, "conn:read: its mode was replaced");
  if (c && c->reader == t) {
    c->reader = NULL;
    if (why == WEFT_ECANCELED) stop_reading(c); /* what came stays */
  } else if (c) {
    why = WEFT_ECANCELED; /* another reader took over after the cancel */
  }
  if (why == WEFT_ECANCELED) lw_raise_cancel(L, t);
  if (c == NULL)
    return luaL_error(L, "%s: the connection is closed", read_names[mode]);
  if (answer(L, c, mode, (size_t)lua_tointeger(L, 3))) return 1;
  return wait_read(L, t, c);
}

static int wait_read(lua_State *L, Task *t, Conn *c) {
  int r;
  c->rmode = (int)lua_tointeger(L, 2);
  c->need = (size_t)lua_tointeger(L, 3);
  if (!c->reading) {
    r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r != 0) return raise_io(L, read_names[c->rmode], c->name, r);
    c->reading = 1;
  }
  c->reader = t;
  weft_future_init(&c->rfut);
  weft_task_await(&t->t, &c->rfut, WEFT_FOREVER); /* no deadline: no alloc */
  return lua_yieldk(L, 0, 0, read_k);
}

/* I.tcp_read(conn, mode, need) -> string, or nil at the end */
static int l_read(lua_State *L) {
  State *S = upstate(L);
  lua_Integer mode = luaL_checkinteger(L, 2);
  const char *fname = read_names[mode >= R_SOME && mode <= R_ALL ? mode : 1];
  Conn *c = check_conn(L, fname);
  if (mode < R_SOME || mode > R_ALL)
    return luaL_error(L, "conn:read: mode must be an integer from %d to %d, "
                         "got %I", R_SOME, R_ALL, mode);
  if (luaL_optinteger(L, 3, 0) < 0)
    return luaL_error(L, "conn:read: count must be >= 0");
  Task *t = lw_need_task(L, S, fname);
  lua_settop(L, 3);
  if (busy(c->reader))
    return luaL_error(L, "%s: another task is reading from this connection",
                      fname);
  if (c->reader) { /* cancelled, not yet unwound: take over */
    c->reader = NULL;
    stop_reading(c);
  }
  if (mode == R_LINE || mode == R_LINE_KEEP) { /* need: the longest line */
    lua_pushinteger(L, (lua_Integer)c->max_line);
    lua_replace(L, 3);
  }
  if (answer(L, c, mode, (size_t)luaL_optinteger(L, 3, 0))) return 1;
  return wait_read(L, t, c);
}

/* ------------------------------------------------------------- writing */

static void on_written(uv_write_t *req, int status) {
  Conn *c = req->data;
  if (c->closing) return;
  c->werr = status;
  wake(c->loop, &c->wfut);
}

static void on_shut(uv_shutdown_t *req, int status) {
  Conn *c = req->data;
  if (c->closing) return;
  c->werr = status;
  wake(c->loop, &c->wfut);
}

/* Stack while waiting: 1 conn, 2 fname. */
/* ctx is the registry reference that kept a write's bytes alive (see
 * l_write), or LUA_NOREF. */
static int write_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Conn *c;
  const char *fname = lua_tostring(L, 2);
  int why;
  if (t == NULL) return lua_yieldk(L, 0, ctx, write_k);
  luaL_unref(L, LUA_REGISTRYINDEX, (int)ctx); /* libuv is done with them */
  c = conn_at(L, 1, "conn:write");
  why = woke(t, st);
  if (c && c->writer == t) {
    c->writer = NULL;
    /* Part of the data may be out: the stream is of no use any more. */
    if (why == WEFT_ECANCELED) conn_close(c, 1);
  } else if (c) {
    why = WEFT_ECANCELED; /* another writer took over after the cancel */
  }
  if (why == WEFT_ECANCELED) lw_raise_cancel(L, t);
  if (c == NULL)
    return luaL_error(L, "%s: the connection is closed", fname);
  if (c->werr != 0) return raise_io(L, fname, c->name, c->werr);
  return 0;
}

/* Makes sure no other task writes. A writer whose cancellation is on
 * its way has left the stream half-written, unless its write is done:
 * the connection closes then, as the writer itself would close it. */
static void claim_write(lua_State *L, Conn *c, const char *fname) {
  if (c->writer == NULL) return;
  if (busy(c->writer))
    luaL_error(L, "%s: another task is writing to this connection", fname);
  if (c->wfut.state == WEFT_FUTURE_PENDING) {
    conn_close(c, 1);
    luaL_error(L, "%s: the connection is closed", fname);
  }
  c->writer = NULL;
}

static int wait_write(lua_State *L, Task *t, Conn *c, int ref) {
  c->writer = t;
  c->werr = 0;
  weft_task_await(&t->t, &c->wfut, WEFT_FOREVER);
  return lua_yieldk(L, 0, ref, write_k);
}

/* I.tcp_write(conn, data): returns once the kernel has all of data. */
static int l_write(lua_State *L) {
  State *S = upstate(L);
  Conn *c = check_conn(L, "conn:write");
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  Task *t = lw_need_task(L, S, "conn:write");
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  uv_buf_t b;
  int r, ref;
  claim_write(L, c, "conn:write");
  if (len == 0) return 0;
  /* Most writes fit in the socket's buffer: no request, no wait. */
  if (uv_stream_get_write_queue_size(s) == 0) {
    b.base = (char *)p;
    b.len = len;
    r = uv_try_write(s, &b, 1);
    if (r >= 0 && (size_t)r == len) return 0;
    if (r < 0 && r != UV_EAGAIN)
      return raise_io(L, "conn:write", c->name, r);
    if (r > 0) {
      p += r;
      len -= (size_t)r;
    }
  }
  b.base = (char *)p;
  b.len = len;
  /* The bytes must live until libuv is done with them: a registry
   * reference keeps them (a user value or stack slot would not: a script
   * can replace those with debug), released by write_k. */
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if ((r = uv_write(&c->wreq, s, &b, 1, on_written)) != 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return raise_io(L, "conn:write", c->name, r);
  }
  lua_pushliteral(L, "conn:write");
  lua_replace(L, 2);
  weft_future_init(&c->wfut);
  return wait_write(L, t, c, ref);
}

/* I.tcp_shutdown(conn): sends the end of the stream once the writes in
 * flight are out; reading goes on. */
static int l_shutdown(lua_State *L) {
  State *S = upstate(L);
  Conn *c = check_conn(L, "conn:shutdown");
  Task *t = lw_need_task(L, S, "conn:shutdown");
  int r;
  claim_write(L, c, "conn:shutdown");
  if ((r = uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shut)) != 0)
    return raise_io(L, "conn:shutdown", c->name, r);
  lua_settop(L, 1);
  lua_pushliteral(L, "conn:shutdown");
  weft_future_init(&c->wfut);
  return wait_write(L, t, c, LUA_NOREF);
}

/* ---------------------------------------------------------- connecting */

static int own(lua_State *L, Task *t, int idx);

static void on_connect(uv_connect_t *req, int status) {
  Conn *c = req->data;
  if (c->closing) return; /* abandoned: libuv cancelled it */
  c->cerr = status;
  wake(c->loop, &c->wfut);
}

/* Stack while waiting: 1 ip, 2 port, 3 where, 4 ms, 5 shown ms, 6 conn. */
static int connect_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Conn *c = conn_at(L, 6, "tcp.connect");
  const char *where = lua_tostring(L, 3);
  int why, err;
  if (t == NULL) return lua_yieldk(L, 0, ctx, connect_k);
  why = woke(t, st);
  (void)ctx;
  if (c == NULL)
    return luaL_error(L, "tcp.connect: the connection is closed");
  if (why) {
    conn_close(c, 0);
    if (why == WEFT_ECANCELED) lw_raise_cancel(L, t);
    return raise_timeout(L, "tcp.connect", where, lua_tointeger(L, 5));
  }
  if ((err = c->cerr) != 0) {
    conn_close(c, 0);
    return raise_io(L, "tcp.connect", where, err);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (own(L, t, 6) != LUA_OK) {
    conn_close(c, 0);
    return lua_error(L);
  }
  lua_settop(L, 6);
  return 1;
}

/* I.tcp_connect(ip, port, where, ms, shown_ms) -> conn, owned by the
 * calling task. ms 0: no time limit; shown_ms is the limit the script
 * gave, for the message. */
static int l_connect(lua_State *L) {
  State *S = upstate(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  const char *where = luaL_checkstring(L, 3);
  lua_Integer ms = luaL_optinteger(L, 4, 0);
  struct sockaddr_storage ss;
  Task *t = lw_need_task(L, S, "tcp.connect");
  Conn *c;
  int r;
  lua_settop(L, 5);
  if ((r = parse_addr(ip, port, &ss)) != 0)
    return raise_io(L, "tcp.connect", where, r);
  lw_ignore_sigpipe();
  c = new_conn(L, S, "tcp.connect"); /* at 6 */
  snprintf(c->name, sizeof c->name, "%s", where);
  r = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&ss, on_connect);
  if (r != 0) {
    conn_close(c, 0);
    return raise_io(L, "tcp.connect", where, r);
  }
  weft_loop_update_time(S->loop);
  r = weft_task_await(&t->t, &c->wfut, ms > 0 ? (uint64_t)ms : WEFT_FOREVER);
  if (r == 0) return connect_k(L, LUA_OK, 0);
  if (r == WEFT_ENOMEM) {
    conn_close(c, 0);
    return luaL_error(L, "tcp.connect: not enough memory");
  }
  return lua_yieldk(L, 0, 0, connect_k);
}

/* ------------------------------------------------- connection methods */

/* I.tcp_close(conn), and __close: closes at once; tasks waiting on the
 * connection wake and get "the connection is closed". */
static int l_close(lua_State *L) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, "conn:close");
  if (u->c) conn_close(u->c, 1);
  return 0;
}

/* The owning task ended (see LwOwned). */
static void conn_owned_close(lua_State *L, void *ud) {
  ConnUd *u = ud;
  (void)L;
  if (u->c) conn_close(u->c, 1);
}
static const LwOwned conn_owned = {conn_owned_close, sizeof(ConnUd),
                                   CONN_TAG};

/* __gc: a task waiting on the connection holds it on its stack, but
 * debug.setlocal can replace it there: waiters are woken before the
 * connection's memory goes. */
static int conn_gc(lua_State *L) {
  ConnUd *u = toconn(L, 1);
  if (u == NULL) return 0; /* not a connection: a script called this */
  if (u->c) conn_close(u->c, 1);
  return 0;
}

static int l_closed(lua_State *L) {
  ConnUd *u = lw_checkudata(L, 1, sizeof *u, CONN_TAG, "conn:closed");
  lua_pushboolean(L, u->c == NULL);
  return 1;
}

/* I.tcp_addr(conn, peer) -> ip, port of the peer or of the local end */
static int l_addr(lua_State *L) {
  int peer = lua_toboolean(L, 2);
  Conn *c = check_conn(L, peer ? "conn:getpeername" : "conn:getsockname");
  struct sockaddr_storage ss;
  char ip[INET6_ADDRSTRLEN];
  int len = sizeof ss, r;
  r = peer ? uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len)
           : uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len);
  if (r != 0)
    return raise_io(L, peer ? "conn:getpeername" : "conn:getsockname",
                    c->name, r);
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    lua_pushstring(L, ip);
    lua_pushinteger(L, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    lua_pushstring(L, ip);
    lua_pushinteger(L, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  return 2;
}

static int conn_tostring(lua_State *L) {
  ConnUd *u = toconn(L, 1);
  if (u == NULL) return lua_pushfstring(L, "%s: %p", luaL_typename(L, 1),
                           lua_topointer(L, 1)), 1; /* not a conn */
  if (u->c)
    lua_pushfstring(L, "weft.tcp.Conn (%s)", u->c->name);
  else
    lua_pushliteral(L, "weft.tcp.Conn (closed)");
  return 1;
}

/* -------------------------------------------------------------- servers */

/* About Server: a listening socket, allocated apart from its userdata
 * (ServerUd) as a connection is. While it listens, the userdata is
 * anchored in the registry (ref), since each accepted connection needs
 * its handler (user value 1) and records its task in the weak set of
 * user value 2; the task that called listen owns it, so it closes when
 * that task ends at the latest. The handle is unreferenced, so an idle
 * server does not keep the loop alive, except while tasks wait in
 * server:wait() (waiters); closed settles when it closes.
 * spare accepts and drops a connection when there is no memory for it;
 * stalled marks one more waiting meanwhile (libuv stops accepting until
 * uv_accept is called). open counts the handles not yet closed. */
typedef struct ServerUd ServerUd;
typedef struct Server {
  Closer closer;
  uv_tcp_t tcp, spare;
  ServerUd *ud;
  State *S;
  weft_future_t closed;
  int ref, waiters, closing, refusing, stalled, open;
  size_t max_line; /* of the connections it accepts */
  char name[WHERE_MAX];
} Server;

struct ServerUd {
  const char *tag; /* SERVER_TAG */
  Server *s;
  int port;
};

static ServerUd *toserver(lua_State *L, int idx) {
  return lw_toudata(L, idx, sizeof(ServerUd), SERVER_TAG);
}

static ServerUd *checkserver(lua_State *L, const char *fname) {
  return lw_checkudata(L, 1, sizeof(ServerUd), SERVER_TAG, fname);
}


/* [task, object] -> nil: makes a connection or server (which it also
 * anchors, see About Server) a resource of the task. A script's call hook
 * can capture this and call it again (see About internal functions in
 * task.c): it takes the task by its userdata, checked, and anchors a
 * server once. */
static int own_entry(lua_State *L) {
  Fut *f = lw_tofut(L, NULL, 1);
  ServerUd *u = toserver(L, 2);
  if (f == NULL || f->kind != KIND_TASK || ((Task *)f)->ref == LUA_NOREF)
    return luaL_error(L, "weft: an internal function called with a bad "
                         "argument");
  if (u && u->s && u->s->ref == LUA_NOREF) {
    lua_pushvalue(L, 2);
    u->s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
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

static void on_server_closed(uv_handle_t *h) {
  Server *s = h->data;
  if (--s->open == 0) weft__valloc(s, sizeof *s, 0);
}

/* Stops accepting. L is NULL when the state closes (the registry anchor
 * goes with the state); wake says whether tasks in server:wait() wake. */
static void server_close(Server *s, lua_State *L, int wake_waiters) {
  if (s->ud) s->ud->s = NULL;
  s->ud = NULL;
  if (s->closing) return;
  s->closing = 1;
  lw_closer_remove(&s->closer);
  if (L && s->ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
  s->ref = LUA_NOREF;
  uv_close((uv_handle_t *)&s->tcp, on_server_closed);
  if (wake_waiters) wake(s->S->loop, &s->closed);
}

static void server_closer(Closer *c) {
  server_close(lw_container(c, Server, closer), NULL, 0);
}

static void refuse(Server *s);

static void on_refused(uv_handle_t *h) {
  Server *s = h->data;
  s->refusing = 0;
  if (s->stalled && !s->closing) {
    s->stalled = 0;
    refuse(s);
  }
  if (--s->open == 0) weft__valloc(s, sizeof *s, 0);
}

/* Accepts the pending connection into spare and closes it: with no
 * memory for a connection, its client is turned away, not left hanging,
 * and the server goes on accepting. */
static void refuse(Server *s) {
  if (s->refusing) { /* spare is busy: on_refused comes back for it */
    s->stalled = 1;
    return;
  }
  s->refusing = 1;
  s->open++;
  uv_tcp_init(s->tcp.loop, &s->spare);
  s->spare.data = s;
  uv_accept((uv_stream_t *)&s->tcp, (uv_stream_t *)&s->spare);
  uv_close((uv_handle_t *)&s->spare, on_refused);
}

/* What on_connection hands to accept_entry: not light userdata on the
 * Lua stack, since a script's call hook can capture accept_entry and call
 * it again (see own_entry). One per thread; taken once. */
static _Thread_local struct {
  Conn *c;
  Server *s;
} accept_req;

/* -> nil: spawns the handler task with a userdata for the connection of
 * accept_req. Run protected: it allocates. */
static int accept_entry(lua_State *L) {
  Conn *c = accept_req.c;
  Server *s = accept_req.s;
  ConnUd *u;
  accept_req.c = NULL;
  accept_req.s = NULL;
  if (c == NULL)
    return luaL_error(L, "weft: an internal function called again");
  lua_settop(L, 0);
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref) != LUA_TUSERDATA) /* 1 */
    return luaL_error(L, "tcp.listen: the server is gone");
  lua_pushfstring(L, "tcp %s", c->name); /* 2: the task's name */
  lua_getiuservalue(L, 1, 1);            /* 3: the handler */
  u = lua_newuserdatauv(L, sizeof *u, 0); /* 4 */
  u->tag = CONN_TAG;
  u->c = NULL;
  luaL_setmetatable(L, CONN_MT);
  u->c = c; /* from here the userdata owns c */
  c->ud = u;
  lw_spawn_at(L, s->S, 3, WEFT_PRIO_NORMAL, 2); /* 5 */
  lw_task_own(L, lua_touserdata(L, 5), 4);
  c->owned = 1;
  /* The server's weak set of handler tasks (debug.setuservalue may have
   * put something else there). */
  if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 5);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}

/* A client connected: accept it and spawn its handler. This runs inside
 * the loop, with no task running: the handler task has no parent, and
 * the Lua work runs on the driver's stack (S->L), protected. */
static void on_connection(uv_stream_t *ls, int status) {
  Server *s = ls->data;
  State *S = s->S;
  lua_State *L = S->L;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  Conn *c;
  if (status != 0 || s->closing) return; /* libuv tries again later */
  if (!lua_checkstack(L, 3) || (c = xalloc(sizeof *c)) == NULL) {
    refuse(s);
    return;
  }
  conn_init(c, S);
  c->max_line = s->max_line;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c, 0);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    format_addr((struct sockaddr *)&ss, c->name, sizeof c->name);
  else
    snprintf(c->name, sizeof c->name, "%s", "?");
  lua_pushcfunction(L, accept_entry);
  accept_req.c = c;
  accept_req.s = s;
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    /* Out of memory. A connection that no handler owns is let go now,
     * not when the collector finds it (no finalizer runs while memory
     * is short, and its client would wait until then). */
    lua_pop(L, 1);
    if (!c->owned) conn_close(c, 0);
  }
  accept_req.c = NULL; /* if the entry failed before taking it */
  accept_req.s = NULL;
  weft_loop_wake(S->loop);
}

/* I.tcp_listen(ip, port, handler, backlog, where) -> server, owned by the
 * calling task. Binding and listening are synchronous. */
static int l_listen(lua_State *L) {
  State *S = upstate(L);
  const char *ip = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  int backlog = (int)luaL_checkinteger(L, 4);
  const char *where = luaL_checkstring(L, 5);
  Task *t = lw_need_task(L, S, "tcp.listen");
  struct sockaddr_storage ss;
  int len = sizeof ss, r;
  ServerUd *u;
  Server *s;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 5);
  if ((r = parse_addr(ip, port, &ss)) != 0)
    return raise_io(L, "tcp.listen", where, r);
  lw_ignore_sigpipe();
  u = lua_newuserdatauv(L, sizeof *u, 2); /* 6 */
  u->tag = SERVER_TAG;
  u->s = NULL;
  u->port = 0;
  luaL_setmetatable(L, SERVER_MT);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 6, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, 6, 2);
  if ((s = xalloc(sizeof *s)) == NULL)
    return luaL_error(L, "tcp.listen: not enough memory");
  s->S = S;
  s->ref = LUA_NOREF;
  s->open = 1;
  s->max_line = LINE_MAX_DEFAULT;
  uv_tcp_init(S->loop->uv, &s->tcp);
  s->tcp.data = s;
  weft_future_init(&s->closed);
  s->closer.close = server_closer;
  lw_closer_add(S, &s->closer);
  s->ud = u;
  u->s = s;
  snprintf(s->name, sizeof s->name, "%s", where);
  r = uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&s->tcp, backlog, on_connection);
  if (r != 0) {
    server_close(s, L, 0);
    return raise_io(L, "tcp.listen", where, r);
  }
  uv_unref((uv_handle_t *)&s->tcp); /* see About Server */
  if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) == 0)
    u->port = ntohs(ss.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&ss)->sin6_port
                        : ((struct sockaddr_in *)&ss)->sin_port);
  if (own(L, t, 6) != LUA_OK) {
    server_close(s, L, 0);
    return lua_error(L);
  }
  lua_settop(L, 6);
  return 1;
}

static int server_wait_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lua_yieldk(L, 0, ctx, server_wait_k);
  ServerUd *u = toserver(L, 1); /* see resolve_k */
  (void)ctx;
  if (u == NULL) return luaL_error(L, "server:wait: the server was replaced");
  if (u->s && --u->s->waiters == 0) uv_unref((uv_handle_t *)&u->s->tcp);
  if (woke(t, st) == WEFT_ECANCELED) lw_raise_cancel(L, t);
  return 0;
}

/* I.tcp_server_wait(server): waits until the server closes; meanwhile
 * the server keeps the loop alive. */
static int l_server_wait(lua_State *L) {
  State *S = upstate(L);
  ServerUd *u = checkserver(L, "server:wait");
  Task *t = lw_need_task(L, S, "server:wait");
  if (u->s == NULL) return 0;
  lua_settop(L, 1);
  if (u->s->waiters++ == 0) uv_ref((uv_handle_t *)&u->s->tcp);
  weft_task_await(&t->t, &u->s->closed, WEFT_FOREVER);
  return lua_yieldk(L, 0, 0, server_wait_k);
}

/* I.tcp_server_close(server) -> the weak set of its handler tasks */
static int l_server_close(lua_State *L) {
  ServerUd *u = checkserver(L, "server:close");
  if (u->s) server_close(u->s, L, 1);
  lua_getiuservalue(L, 1, 2);
  return 1;
}

/* The owning task ended (see LwOwned). */
static void server_owned_close(lua_State *L, void *ud) {
  ServerUd *u = ud;
  if (u->s) server_close(u->s, L, 1);
}
static const LwOwned server_owned = {server_owned_close, sizeof(ServerUd),
                                     SERVER_TAG};

/* __close */
static int server_close_mm(lua_State *L) {
  ServerUd *u = toserver(L, 1);
  if (u == NULL) return 0; /* not a server: a script called this */
  if (u->s) server_close(u->s, L, 1);
  return 0;
}

/* __gc: a listening server is anchored, so this is a closed one, or the
 * Lua state is closing. */
static int server_gc(lua_State *L) {
  ServerUd *u = toserver(L, 1);
  if (u == NULL) return 0; /* not a server: a script called this */
  if (u->s) server_close(u->s, L, 0);
  return 0;
}

/* I.tcp_set_max_line(conn or server, n): the longest line a read takes
 * (a server: for the connections it accepts from now on); 0: no limit. */
static int l_set_max_line(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  size_t max = n <= 0 || (uint64_t)n > SIZE_MAX ? SIZE_MAX : (size_t)n;
  ServerUd *su = toserver(L, 1);
  if (su) {
    if (su->s) su->s->max_line = max;
  } else {
    check_conn(L, "conn:read")->max_line = max;
  }
  return 0;
}

/* I.tcp_server_info(server) -> port, closed */
static int l_server_info(lua_State *L) {
  ServerUd *u = checkserver(L, "server:info");
  lua_pushinteger(L, u->port);
  lua_pushboolean(L, u->s == NULL);
  return 2;
}

static int server_tostring(lua_State *L) {
  ServerUd *u = toserver(L, 1);
  if (u == NULL) return lua_pushfstring(L, "%s: %p", luaL_typename(L, 1),
                           lua_topointer(L, 1)), 1; /* not a server */
  if (u->s)
    lua_pushfstring(L, "weft.tcp.Server (%s, port %d)", u->s->name, u->port);
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
    {"tcp_set_max_line", l_set_max_line}, {NULL, NULL}};

/* Adds the primitives to the internal table on top, and the metatables
 * of connections and servers as tcp_conn_mt and tcp_server_mt (tcp.lua
 * gives them their __index). */
void lw_open_tcp(lua_State *L, State *S) {
  lw_push_state(L, S);
  luaL_setfuncs(L, funcs, 1);
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
