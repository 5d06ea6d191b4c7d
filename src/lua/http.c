/*
 * http.c - weft.http's C primitives (Lua binding): the requests of
 * weft_io.h (src/io/http.c) as guard userdata, their waits as
 * continuations, their failures as Lua errors. Argument checks, get and
 * post and the streamed response's methods are in http.lua.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "lweft.h"
#include "weft_io.h"

#define GUARD_MT "weft.HttpRequest"
/* Userdata tags: see About userdata tags in lweft.h. */
static const char GUARD_TAG[] = GUARD_MT;

/* About Guard: the script's handle on a request (the stack of the waiting
 * call, or a streamed response's _h), which owns it: when the guard lets
 * go first (cancelled, timed out, closed, collected) the request is
 * abandoned and freed (weft_http_free). busy: a task waits in
 * response:read. fname and timeout_ms are for messages. */
enum { G_OPEN, G_ENDED, G_CLOSED };
typedef struct Guard {
  const char *tag; /* GUARD_TAG */
  weft_http_t *req;
  int state, busy, stream;
  lua_Integer timeout_ms;
  char fname[24];
} Guard;

/* ---------------------------------------------------------------- errors */

/* Pushes the error of the failed request of g, of kind "io":
 * "<fname>: <url>: <curl's message>", with err.code curl's name. */
static void push_failure(lua_State *L, Guard *g) {
  weft_error_t e;
  weft_http_error(g->req, &e);
  lua_pushfstring(L, "%s: %s", g->fname, e.message);
  lw_new_error(L, "io", lua_tostring(L, -1));
  lua_pushstring(L, weft_http_error_name(g->req));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, g->fname);
  lua_setfield(L, -2, "name");
}

/* Lets go of g's request; the guard is then ended or closed. */
static void guard_drop(Guard *g, int state) {
  weft_http_t *r = g->req;
  g->req = NULL;
  g->state = state;
  weft_http_free(r); /* a task waiting on r wakes and finds it closed */
}

/* Raises the failure of g's request, which g lets go of. */
static int raise_failed(lua_State *L, Guard *g) {
  push_failure(L, g);
  guard_drop(g, G_CLOSED);
  return lua_error(L);
}

/* The wait ended by a cancellation or a deadline: the request goes (g
 * lets go) and the error is raised. A cancellation makes no message
 * first: with memory short, it must still end as one. */
static int give_up(lua_State *L, Task *t, Guard *g, int cancelled) {
  if (!cancelled) /* the message needs the request */
    lua_pushfstring(L, "%s: %s: timed out after " LW_I " ms",
                    g->fname, weft_http_url(g->req, 0), LW_INT(g->timeout_ms));
  guard_drop(g, G_CLOSED);
  if (cancelled) lw_raise_cancel(L, t);
  lw_new_error(L, "timeout", lua_tostring(L, -1));
  return lua_error(L);
}

/* ----------------------------------------------------------- the guard */

static void guard_release(lua_State *L, void *ud) {
  Guard *g = ud;
  (void)L;
  guard_drop(g, g->state == G_OPEN ? G_CLOSED : g->state);
}
static const LwOwned guard_owned = {guard_release, sizeof(Guard),
                                    GUARD_TAG}; /* see LwOwned */

/* The guard at idx, or raises: a continuation checks what it left on its
 * stack, as debug.setlocal can replace it. */
static Guard *guard_at(lua_State *L, int idx, const char *fname) {
  Guard *g = lw_toudata(L, idx, sizeof *g, GUARD_TAG);
  if (g == NULL) luaL_error(L, "%s: the request was replaced", fname);
  return g;
}

static int guard_close(lua_State *L) {
  Guard *g = lw_toudata(L, 1, sizeof *g, GUARD_TAG);
  if (g == NULL) return 0; /* not a guard: a script called this */
  guard_release(L, g);
  return 0;
}

/* Parks t on wait until the deadline of g's request, if it has one. */
static int park(lua_State *L, Task *t, Guard *g, weft_future_t *wait,
                lua_KFunction k) {
  if (weft_task_await(&t->t, wait, weft_http_wait_ms(g->req)) ==
      WEFT_ENOMEM)
    return luaL_error(L, "%s: not enough memory", g->fname);
  return lw_yield(L, 0, k);
}

/* -------------------------------------------------------- the response */

/* Adds the field name: value to the headers table on top: names
 * lower-cased, repeats joined with ", " ("\n" for set-cookie, whose
 * values hold commas). */
static void add_header(lua_State *L, weft_span_t name, weft_span_t value) {
  char low[64];
  size_t i;
  luaL_Buffer b;
  if (name.len <= sizeof low) { /* the usual case: no buffer on the stack */
    for (i = 0; i < name.len; i++)
      low[i] = (char)(name.ptr[i] >= 'A' && name.ptr[i] <= 'Z'
                          ? name.ptr[i] + 32 : name.ptr[i]);
    lua_pushlstring(L, low, name.len);
  } else {
    luaL_buffinit(L, &b);
    for (i = 0; i < name.len; i++)
      luaL_addchar(&b, (char)(name.ptr[i] >= 'A' && name.ptr[i] <= 'Z'
                                  ? name.ptr[i] + 32 : name.ptr[i]));
    luaL_pushresult(&b);
  }
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) == LUA_TSTRING) {
    const char *sep = strcmp(lua_tostring(L, -2), "set-cookie") ? ", " : "\n";
    lua_pushstring(L, sep);
    lua_pushlstring(L, value.ptr, value.len);
    lua_concat(L, 3);
  } else {
    lua_pop(L, 1);
    lua_pushlstring(L, value.ptr, value.len);
  }
  lua_rawset(L, -3);
}

/* Pushes {status, headers, url[, body]} of g's request. */
static void push_response(lua_State *L, Guard *g, int body) {
  weft_span_t name, value, sp;
  weft_future_t *wait;
  size_t pos = 0;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, weft_http_status(g->req));
  lua_setfield(L, -2, "status");
  lua_createtable(L, 0, 8);
  while (weft_http_header_next(g->req, &pos, &name, &value))
    add_header(L, name, value);
  lua_setfield(L, -2, "headers");
  lua_pushstring(L, weft_http_url(g->req, 1));
  lua_setfield(L, -2, "url");
  if (body) { /* a whole response: its body in one piece, or none */
    if (weft_http_read(g->req, &sp, &wait) == 0)
      lua_pushlstring(L, sp.ptr, sp.len);
    else
      lua_pushliteral(L, "");
    lua_setfield(L, -2, "body");
  }
}

/* ---------------------------------------------------------- the request */

static int request_k(lua_State *L, int st, lua_KContext ctx);

/* Polls the request of g (at 3) for t: its response, its failure, or a
 * wait. */
static int request_step(lua_State *L, Task *t, Guard *g) {
  weft_future_t *wait;
  int rc = weft_http_poll(g->req, &wait);
  if (rc == WEFT_PENDING) return park(L, t, g, wait, request_k);
  if (rc == WEFT_ETIMEDOUT) return give_up(L, t, g, 0);
  if (rc == WEFT_ECLOSED)
    return luaL_error(L, "weft.http: the request was closed");
  if (rc != 0) return raise_failed(L, g);
  push_response(L, g, !g->stream);
  if (!g->stream) {
    guard_drop(g, G_ENDED);
  } else {
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "_h");
    lw_task_own(L, t, 3); /* the transfer ends with its task at the latest */
  }
  return 1;
}

static int opt_bool(lua_State *L, int idx, const char *k) {
  int b;
  lua_getfield(L, idx, k);
  b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

/* The string field k of the table at idx, or NULL (also for a number,
 * which lua_tolstring would convert in a copy nobody keeps); the table
 * keeps it. */
static const char *opt_str(lua_State *L, int idx, const char *k, size_t *len) {
  const char *s = NULL;
  if (lua_getfield(L, idx, k) == LUA_TSTRING) s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return s;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *k,
                           lua_Integer dflt) {
  lua_Integer v;
  lua_getfield(L, idx, k);
  v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

/* The header lines of the table at idx, "Name: value" as http.lua builds
 * them, into a NULL-terminated array: small (of HDR_SMALL entries) if
 * they fit, which weft_http_request copies before the call returns, or a
 * userdata pushed here (a request's lines are few: most need none). The
 * strings stay in the table at idx. A script that calls the primitive
 * itself may give anything: only strings without a NUL count (curl takes
 * C strings), and weft_http_request refuses the rest. */
#define HDR_SMALL 16
static const char **header_lines(lua_State *L, int idx, const char **small) {
  size_t n, i, k = 0;
  const char **lines = small;
  n = lua_getfield(L, idx, "headers") == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
  if (n >= HDR_SMALL) {
    lines = lua_newuserdatauv(L, (n + 1) * sizeof *lines, 0);
    lua_insert(L, -2);
  }
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *line;
    if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING &&
        (line = lua_tolstring(L, -1, &len), strlen(line) == len))
      lines[k++] = line; /* the headers table keeps it */
    lua_pop(L, 1);
  }
  lines[k] = NULL;
  lua_pop(L, 1);
  return lines;
}

static int has_ctl(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 32 || *s == 127) return 1;
  return 0;
}

/* The options of a request made with its defaults (http.get(url)): as
 * http.lua's normalize makes them, with max_body its default. NULL, with
 * nothing done, if url is not plainly an http:// or https:// URL (http.lua
 * then takes the long way, and raises). */
static const char *const DEFAULT_LINES[] = {"Expect:", NULL};

static const char *default_opts(lua_State *L, weft_http_opts *o) {
  size_t ulen;
  const char *url = lua_tolstring(L, 2, &ulen);
  if (!(strncasecmp(url, "http://", 7) == 0 ||
        strncasecmp(url, "https://", 8) == 0) || strlen(url) != ulen)
    return NULL;
  memset(o, 0, sizeof *o);
  o->url = url;
  o->headers = DEFAULT_LINES;
  o->follow_redirects = 1;
  o->max_body = luaL_checkinteger(L, 3);
  return url;
}

/* I.http_request(fname, opts) -> {status, headers, url[, body | _h]};
 * opts was checked and normalized by http.lua. I.http_request(fname,
 * url, max_body): the same with the default options (http.get(url), the
 * common case, without a table for the options), or nothing if url needs
 * the checks of http.lua. */
static int l_request(lua_State *L) {
  State *S = upstate(L);
  const char *fname = luaL_checkstring(L, 1), *small[HDR_SMALL];
  weft_http_opts o;
  size_t ulen = 0;
  Task *t;
  Guard *g;
  int rc, plain = lua_type(L, 2) == LUA_TSTRING;
  if (plain && default_opts(L, &o) == NULL) return 0;
  if (!plain) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  t = lw_need_task(L, S, fname);
  g = lua_newuserdatauv(L, sizeof *g, 0); /* at 3, where request_k looks */
  memset(g, 0, sizeof *g);
  g->tag = GUARD_TAG;
  g->state = G_OPEN;
  snprintf(g->fname, sizeof g->fname, "%s", fname);
  luaL_setmetatable(L, GUARD_MT);
  if (plain) goto start;
  memset(&o, 0, sizeof o);
  if ((o.url = opt_str(L, 2, "url", &ulen)) == NULL)
    return luaL_error(L, "%s: no url", fname);
  if (strlen(o.url) != ulen) /* curl takes C strings (http.lua says so too) */
    return luaL_error(L, "%s: url must not contain a NUL", fname);
  o.headers = header_lines(L, 2, small);
  o.method = opt_str(L, 2, "method", NULL);
  o.body = opt_str(L, 2, "body", &o.body_len);
  o.follow_redirects = opt_bool(L, 2, "follow_redirects");
  o.max_body = opt_int(L, 2, "max_body", -1);
  g->timeout_ms = opt_int(L, 2, "timeout_ms", 0);
  o.timeout_ms = g->timeout_ms > 0 ? (uint64_t)g->timeout_ms : 0;
  o.ca_file = opt_str(L, 2, "ca_file", NULL);
  o.insecure = opt_bool(L, 2, "insecure");
  o.stream = g->stream = opt_bool(L, 2, "stream");
start:
  rc = weft_http_request(S->loop, &o, &g->req);
  if (rc == UV_ENOSYS)
    return luaL_error(L, "%s: %s", fname, weft_http_load_error());
  if (rc == WEFT_EINVAL && has_ctl(o.url)) { /* as curl refused it */
    lua_pushfstring(L, "%s: %s: URL using bad/illegal format or missing URL",
                    fname, o.url);
    lw_new_error(L, "io", lua_tostring(L, -1));
    lua_pushliteral(L, "URL_MALFORMAT");
    lua_setfield(L, -2, "code");
    lua_pushstring(L, fname);
    lua_setfield(L, -2, "name");
    return lua_error(L);
  }
  if (rc == WEFT_EINVAL)
    return luaL_error(L, "%s: bad request options", fname);
  if (rc != 0) return luaL_error(L, "%s: not enough memory", fname);
  return request_step(L, t, g);
}

/* Stack of a request while it waits: 1 fname, 2 checked opts, 3 guard. */
static int request_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Guard *g;
  if (t == NULL) return lw_yield(L, ctx, request_k);
  (void)st;
  g = guard_at(L, 3, "weft.http");
  if (g->req == NULL)
    return luaL_error(L, "weft.http: the request was closed");
  if (t->status == WEFT_ECANCELED || t->status == WEFT_ETIMEDOUT)
    return give_up(L, t, g, t->status == WEFT_ECANCELED);
  return request_step(L, t, g);
}

/* ------------------------------------------------- streamed responses */

static Guard *check_guard(lua_State *L, const char *fname) {
  Guard *g = lw_toudata(L, 1, sizeof *g, GUARD_TAG);
  if (g == NULL) luaL_error(L, "%s: not a streamed response", fname);
  return g;
}

static int read_k(lua_State *L, int st, lua_KContext ctx);

/* The next chunk for the reader at 1 (guard g): what is buffered, nil at
 * the end, the failure, or a wait for more. */
static int read_step(lua_State *L, Task *t, Guard *g) {
  weft_future_t *wait;
  weft_span_t sp;
  int rc = weft_http_read(g->req, &sp, &wait);
  switch (rc) {
  case 0:
    lua_pushlstring(L, sp.ptr, sp.len);
    return 1;
  case UV_EOF:
    guard_drop(g, G_ENDED);
    lua_pushnil(L);
    return 1;
  case WEFT_PENDING:
    g->busy = 1;
    return park(L, t, g, wait, read_k);
  case WEFT_ETIMEDOUT: return give_up(L, t, g, 0);
  case WEFT_ECLOSED:
    return luaL_error(L, "response:read: the response was closed");
  default: return raise_failed(L, g);
  }
}

static int read_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Guard *g;
  if (t == NULL) return lw_yield(L, ctx, read_k);
  (void)st;
  g = guard_at(L, 1, "response:read");
  g->busy = 0;
  if (g->req == NULL) { /* another task closed it meanwhile */
    if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
    return luaL_error(L, "response:read: the response was closed");
  }
  if (t->status == WEFT_ECANCELED || t->status == WEFT_ETIMEDOUT)
    return give_up(L, t, g, t->status == WEFT_ECANCELED);
  return read_step(L, t, g);
}

/* I.http_read(h) -> the next chunk of the body, or nil at its end. */
static int l_read(lua_State *L) {
  State *S = upstate(L);
  Guard *g = check_guard(L, "response:read");
  Task *t;
  lua_settop(L, 1);
  if (g->state == G_ENDED) {
    lua_pushnil(L);
    return 1;
  }
  if (g->state == G_CLOSED || g->req == NULL)
    return luaL_error(L, "response:read: the response is closed");
  if (g->busy)
    return luaL_error(L, "response:read: another task is reading the "
                         "response");
  t = lw_need_task(L, S, "response:read");
  return read_step(L, t, g);
}

/* I.http_close(h): ends the transfer; the rest of the body is dropped. */
static int l_close(lua_State *L) {
  check_guard(L, "response:close");
  return guard_close(L);
}

void lw_open_http(lua_State *L, State *S) {
  static const luaL_Reg fns[] = {{"http_request", l_request},
                                 {"http_read", l_read},
                                 {"http_close", l_close},
                                 {NULL, NULL}};
  luaL_newmetatable(L, GUARD_MT);
  lw_protect_mt(L, GUARD_MT);
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "__close");
  lw_set_owned_close(L, &guard_owned);
  lua_pop(L, 1);
  lw_push_state(L, S);
  luaL_setfuncs(L, fns, 1);
  lw_wrap_fields(L, -1, (const char *const[]){"http_request", "http_read",
                                                 NULL});
}

/* Adds the HTTP counters to the stats table on top, once a request has
 * made the loop's curl multi. */
void lw_http_stats(lua_State *L, State *S) {
  weft_http_stats_t st;
  if (!weft_http_stats(S->loop, &st)) return;
  lw_setint(L, "http_requests", st.requests);
  lw_setint(L, "http_active", st.active);
  lw_setint(L, "http_connections", st.connections);
}
