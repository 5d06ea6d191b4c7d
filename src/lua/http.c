/*
 * http.c - weft.http (Lua binding): an HTTP(S) client on libcurl's multi
 * interface, driven by the weft loop through libuv poll and timer handles.
 * The script-facing wrappers (argument checks, get/post) are in http.lua.
 * SPDX-License-Identifier: MIT
 */
#define CURL_DISABLE_TYPECHECK /* its macros would hide ours below */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lweft.h"
/* host.h for the loop's uv_loop_t: curl's sockets and timer are libuv
 * handles on the loop that runs the tasks. */
#include "host.h"

/* ------------------------------------------------------ loading libcurl */

/* libcurl and the 30-odd libraries it pulls in (TLS, GSSAPI, LDAP, SSH,
 * ...) are loaded on the first request, not at start-up: a script that
 * makes no HTTP request does not pay for mapping them (W0). The calls
 * below go through this table; the names are libcurl's own. */
static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  CURLcode (*easy_pause)(CURL *, int);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  CURLMcode (*multi_cleanup)(CURLM *);
  const char *(*multi_strerror)(CURLMcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  curl_version_info_data *(*version_info)(CURLversion);
} curl;

static char curl_error[256]; /* why loading failed, or "" */

/* Whether an ended transfer's easy handle is kept for the next one
 * (curl_easy_init costs mallocs). Not with libcurl before
 * 8.1.0 (Debian 12 has 7.88) frees a transfer's stored headers when the
 * next one on the handle starts, but keeps a pointer to the last: a
 * folded line (one starting with a space or a tab) as the first header
 * of the next response is appended to freed memory (curl issue 11101; a
 * use-after-free and a double free under ASan). It cannot be turned
 * off: curl stores every header for curl_easy_header, asked or not. A
 * new handle has no previous header, so there each request gets one. */
static int reuse_easy;

static void load_curl(void) {
  static const char *const names[] = {
      "curl_global_init", "curl_easy_init", "curl_easy_setopt",
      "curl_easy_getinfo", "curl_easy_pause", "curl_easy_cleanup",
      "curl_easy_reset",
      "curl_easy_strerror", "curl_multi_init", "curl_multi_setopt",
      "curl_multi_add_handle", "curl_multi_remove_handle",
      "curl_multi_socket_action",
      "curl_multi_info_read", "curl_multi_cleanup", "curl_multi_strerror",
      "curl_slist_append", "curl_slist_free_all", "curl_version_info"};
  void **slot = (void **)&curl;
  void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  size_t i;
  if (lib == NULL) {
    snprintf(curl_error, sizeof curl_error, "cannot load libcurl: %s",
             dlerror());
    return;
  }
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if ((slot[i] = dlsym(lib, names[i])) == NULL) {
      snprintf(curl_error, sizeof curl_error, "libcurl lacks %s", names[i]);
      return;
    }
  if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    snprintf(curl_error, sizeof curl_error, "libcurl failed to start");
  reuse_easy = curl.version_info(CURLVERSION_NOW)->version_num >= 0x080100;
}

#undef curl_easy_setopt /* curl.h's own checks of the argument count */
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_easy_init curl.easy_init
#define curl_easy_setopt curl.easy_setopt
#define curl_easy_getinfo curl.easy_getinfo
#define curl_easy_pause curl.easy_pause
#define curl_easy_cleanup curl.easy_cleanup
#define curl_easy_reset curl.easy_reset
#define curl_easy_strerror curl.easy_strerror
#define curl_multi_init curl.multi_init
#define curl_multi_setopt curl.multi_setopt
#define curl_multi_add_handle curl.multi_add_handle
#define curl_multi_remove_handle curl.multi_remove_handle
#define curl_multi_socket_action curl.multi_socket_action
#define curl_multi_info_read curl.multi_info_read
#define curl_multi_cleanup curl.multi_cleanup
#define curl_multi_strerror curl.multi_strerror
#define curl_slist_append curl.slist_append
#define curl_slist_free_all curl.slist_free_all

#define GUARD_MT "weft.HttpRequest"
#define CTX_MT "weft.HttpContext" /* no metatable: the tag's name */
/* Userdata tags: see About userdata tags in lweft.h. */
static const char GUARD_TAG[] = GUARD_MT, CTX_TAG[] = CTX_MT;
/* A streamed body stops being read from the socket (the transfer is
 * paused) once this much waits for the script: the backpressure bound. */
#define HIGH_WATER (64 * 1024)
#define MAX_REDIRECTS 10
#define MAX_IDLE_CONNS 256 /* connections kept for reuse */
#define MAX_SPARE_EASY 64  /* ended transfers' easy handles kept for reuse */

typedef struct Http Http;
typedef struct Req Req;

/* About Sock: the poll handle of one socket. A connection's socket that
 * has been proven (it was a transfer's CURLINFO_ACTIVESOCKET when the
 * transfer ended well: a connected socket in curl's cache) keeps its Sock
 * until curl closes it through on_closesocket, across the requests of a
 * kept-alive connection, so that those requests cost no poll set-up.
 * Between requests (from CURL_POLL_REMOVE to curl's next CURL_POLL_IN/OUT;
 * wanted is 0) it goes on watching for reading if it did, and stops at
 * its first event (the server closed the connection: curl finds out when
 * it reuses it). Any other socket is watched only while curl wants it,
 * because curl may close it without calling on_closesocket: its
 * resolver's wake-up pair, and (before curl 8.2) a connection attempt
 * that never completed. A socket weft opened for curl (kept) is in doubt
 * from its opening and from each REMOVE until check_done has read the
 * messages that may prove it: settle then closes it unless it is proven
 * or wanted. events: what the poll watches now. The Sock is freed in its
 * close callback; next/prev list it in its Http and byfd finds it by
 * descriptor while it is open. */
typedef struct Sock {
  uv_poll_t poll;
  curl_socket_t fd;
  int events;
  unsigned char kept, wanted, proven, doubt;
  Http *h;
  struct Sock *next, *prev;
} Sock;

/* About Http: the one curl multi handle of a State, created by the first
 * request. Its uv handles (timer, soon, keep and each Sock) are
 * unreferenced
 * except keep, which is referenced while transfers run (active > 0): idle
 * keep-alive connections never hold the loop open, a transfer in flight
 * always does. reqs lists the requests in the multi. It lives until the
 * state closes (close_http); the memory goes once every uv handle's close
 * callback ran (handles counts those not yet closed). */
struct Http {
  Closer closer;
  State *S;
  CURLM *multi;
  uv_timer_t timer;
  uv_idle_t soon; /* curl's timeout of 0 ms: see on_timer */
  uv_async_t keep;
  Sock socks; /* list head */
  Sock **byfd; /* open Socks by descriptor */
  size_t nbyfd;
  size_t ndoubt; /* Socks in doubt: see Sock */
  size_t connections; /* open sockets weft opened for curl (kept) */
  uint64_t requests;  /* started */
  CURL *spare[MAX_SPARE_EASY]; /* easy handles to reuse, reset */
  int nspare;
  Req *reqs;
  size_t active;
  size_t maxconns; /* curl's connection cache: see grow_cache */
  int handles, closing;
};

typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

/* About Req: one request. It is in h->reqs (and the multi) from start to
 * completion; then easy is cleaned up and the result stays here until the
 * script takes it. The script side is a Guard userdata: when the guard
 * lets go first (cancelled, timed out, closed, collected) the request is
 * abandoned (taken out of the multi) and freed; if the state closes first,
 * close_http takes every request out of the multi and clears h, and the
 * guard frees the rest. fut is what the waiting task awaits: completion,
 * or for a stream the end of the headers and then each next chunk (it is
 * re-armed per wait). head holds the header lines of the latest response
 * (a redirect's are dropped); body the bytes not yet given to the script. */
struct Req {
  Req *next, *prev;
  Http *h;
  CURL *easy;
  struct curl_slist *hdrs;
  weft_future_t fut;
  Buf head, body;
  char *final_url; /* after redirects, once the headers are in */
  curl_off_t max_body, received;
  uint64_t deadline; /* scheduler ms; only if timeout_ms > 0 */
  lua_Integer timeout_ms;
  long status;
  CURLcode result;
  unsigned char stream, follow, location, headers_done, done, paused;
  unsigned char too_big, nomem;
  char err[CURL_ERROR_SIZE];
  char fname[24];
  char url[1]; /* allocated to fit */
};

/* The script's handle on a request (the stack of the waiting call, or a
 * streamed response's _h). busy: a task waits in response:read. */
enum { G_OPEN, G_ENDED, G_CLOSED };
typedef struct Guard {
  const char *tag; /* GUARD_TAG */
  Req *req;
  int state, busy;
} Guard;

/* The upvalue of the primitives: the State's Http, once created. */
typedef struct Ctx {
  const char *tag; /* CTX_TAG: debug.setupvalue can replace it */
  Http *h;
} Ctx;

static void *xalloc(size_t n) {
  void *p = weft__valloc(NULL, 0, n);
  if (p) memset(p, 0, n);
  return p;
}

static void xfree(void *p, size_t n) {
  if (p) weft__valloc(p, n, 0);
}

static int buf_add(Buf *b, const char *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 1024;
    char *np;
    while (cap - b->len < n) cap *= 2;
    if ((np = weft__valloc(b->p, b->cap, cap)) == NULL) return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* ------------------------------------------------------- curl's errors */

/* The name of a curl error code without its CURLE_ prefix, the value of
 * err.code: the codes an HTTP transfer can end with. */
static const char *code_name(CURLcode c) {
#define N(x) \
  case CURLE_##x: return #x
  switch (c) {
    N(UNSUPPORTED_PROTOCOL); N(FAILED_INIT); N(URL_MALFORMAT);
    N(NOT_BUILT_IN); N(COULDNT_RESOLVE_PROXY); N(COULDNT_RESOLVE_HOST);
    N(COULDNT_CONNECT); N(WEIRD_SERVER_REPLY); N(REMOTE_ACCESS_DENIED);
    N(HTTP2); N(PARTIAL_FILE); N(HTTP_RETURNED_ERROR); N(WRITE_ERROR);
    N(UPLOAD_FAILED); N(READ_ERROR); N(OUT_OF_MEMORY);
    N(OPERATION_TIMEDOUT); N(RANGE_ERROR); N(HTTP_POST_ERROR);
    N(SSL_CONNECT_ERROR); N(ABORTED_BY_CALLBACK); N(BAD_FUNCTION_ARGUMENT);
    N(INTERFACE_FAILED); N(TOO_MANY_REDIRECTS); N(GOT_NOTHING);
    N(SEND_ERROR); N(RECV_ERROR); N(SSL_CERTPROBLEM); N(SSL_CIPHER);
    N(PEER_FAILED_VERIFICATION); N(BAD_CONTENT_ENCODING);
    N(FILESIZE_EXCEEDED); N(SEND_FAIL_REWIND); N(SSL_CACERT_BADFILE);
    N(SSL_SHUTDOWN_FAILED); N(SSL_CRL_BADFILE); N(SSL_ISSUER_ERROR);
    N(NO_CONNECTION_AVAILABLE); N(SSL_PINNEDPUBKEYNOTMATCH);
    N(SSL_INVALIDCERTSTATUS); N(HTTP2_STREAM); N(AUTH_ERROR); N(PROXY);
    N(SSL_CLIENTCERT);
  default: return "UNKNOWN";
  }
#undef N
}

/* Pushes the error of the failed request r, of kind "io":
 * "<fname>: <url>: <curl's message>", with err.code. */
static void push_failure(lua_State *L, Req *r) {
  const char *code = code_name(r->result);
  if (r->too_big || r->result == CURLE_FILESIZE_EXCEEDED) {
    lua_pushfstring(L, "%s: %s: the body exceeds max_body (%I bytes)",
                    r->fname, r->url, (lua_Integer)r->max_body);
    code = "FILESIZE_EXCEEDED";
  } else if (r->nomem) {
    lua_pushfstring(L, "%s: %s: not enough memory", r->fname, r->url);
    code = "OUT_OF_MEMORY";
  } else {
    lua_pushfstring(L, "%s: %s: %s", r->fname, r->url,
                    r->err[0] ? r->err : curl_easy_strerror(r->result));
  }
  lw_new_error(L, "io", lua_tostring(L, -1));
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, r->fname);
  lua_setfield(L, -2, "name");
}

/* ------------------------------------------------- the multi on libuv */

static void check_done(Http *h);
static void maybe_free_http(Http *h);

static void on_handle_closed(uv_handle_t *hd) {
  Http *h = hd->data;
  h->handles--;
  maybe_free_http(h);
}

static void on_sock_closed(uv_handle_t *hd) {
  Sock *s = hd->data;
  Http *h = s->h;
  xfree(s, sizeof *s);
  h->handles--;
  maybe_free_http(h);
}

static void sock_close(Sock *s) {
  Http *h = s->h;
  if (s->doubt) h->ndoubt--;
  if (s->kept) h->connections--;
  s->prev->next = s->next;
  s->next->prev = s->prev;
  h->byfd[s->fd] = NULL;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static Sock *sock_find(Http *h, curl_socket_t fd) {
  return fd >= 0 && (size_t)fd < h->nbyfd ? h->byfd[fd] : NULL;
}

static void sock_watch(Sock *s, int events);

/* A new Sock for fd, listed and found by fd; kept: weft opened it for
 * curl (it starts in doubt). It watches nothing, unless it replaces one
 * curl still wanted. NULL out of memory. */
static Sock *sock_new(Http *h, curl_socket_t fd, int kept) {
  Sock *s, *old;
  int wanted = 0, events = 0;
  if (fd < 0) return NULL;
  if ((size_t)fd >= h->nbyfd) {
    size_t n = h->nbyfd ? h->nbyfd : 64;
    Sock **p;
    while (n <= (size_t)fd) n *= 2;
    if ((p = xalloc(n * sizeof *p)) == NULL) return NULL;
    if (h->nbyfd) memcpy(p, h->byfd, h->nbyfd * sizeof *p);
    xfree(h->byfd, h->nbyfd * sizeof *p);
    h->byfd = p;
    h->nbyfd = n;
  }
  /* One curl closed without telling: the number is free again. If curl
   * still wanted it, it wants the new socket the same way without saying
   * so again. */
  if ((old = h->byfd[fd]) != NULL) {
    wanted = old->wanted;
    events = old->events;
    sock_close(old);
  }
  if ((s = xalloc(sizeof *s)) == NULL) return NULL;
  if (uv_poll_init_socket(h->S->loop->uv, &s->poll, fd) != 0) {
    xfree(s, sizeof *s);
    return NULL;
  }
  s->fd = fd;
  s->kept = (unsigned char)kept;
  s->h = h;
  s->poll.data = s;
  uv_unref((uv_handle_t *)&s->poll);
  s->next = h->socks.next;
  s->prev = &h->socks;
  s->next->prev = s;
  h->socks.next = s;
  h->byfd[fd] = s;
  h->handles++;
  if (kept) {
    s->doubt = 1;
    h->ndoubt++;
    h->connections++;
  }
  if (wanted) {
    s->wanted = 1;
    sock_watch(s, events);
  }
  return s;
}

static void on_poll(uv_poll_t *p, int status, int events);

/* Watches s for events (UV_READABLE | UV_WRITABLE; 0 stops). libuv
 * re-registers the descriptor on every uv_poll_start, so an unchanged set
 * is left alone. */
static void sock_watch(Sock *s, int events) {
  if (events == s->events) return;
  s->events = events;
  if (events)
    uv_poll_start(&s->poll, events, on_poll);
  else
    uv_poll_stop(&s->poll);
}

/* A socket error (libuv reports POLLERR, a reset say, as UV_EBADF and
 * stops the poll) is given to curl as the socket being readable and
 * writable, as curl's own poll reports POLLERR and POLLHUP: curl reads,
 * meets the error itself and handles it as any other, so that a request
 * sent on a kept-alive connection the server had closed meanwhile is
 * sent again on a new one. CURL_CSELECT_ERR would end the transfer at
 * once with SEND_ERROR (one request in six to a server that closes after
 * each response; a redirect loop's TOO_MANY_REDIRECTS seen as
 * SEND_ERROR). The poll starts again if curl still wants the socket and
 * did not say so anew: that read clears the error, so it cannot spin. */
static void on_poll(uv_poll_t *p, int status, int events) {
  Sock *s = p->data;
  Http *h = s->h;
  int flags = 0, running, watched = s->events;
  if (!s->wanted) { /* an idle connection: closed by the server, or junk */
    sock_watch(s, 0);
    return;
  }
  if (status < 0) {
    events = UV_READABLE | UV_WRITABLE;
    s->events = 0; /* libuv stopped the poll */
  }
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  if (status < 0 && sock_find(h, s->fd) == s && s->wanted && !s->events)
    sock_watch(s, watched); /* (s is freed only in a close callback) */
  check_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl wants, or stop. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud,
                     void *sockp) {
  Http *h = ud;
  Sock *s = sock_find(h, fd);
  int events = 0;
  (void)e;
  (void)sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s == NULL) return 0;
    s->wanted = 0;
    if (!s->kept) {
      sock_close(s);
      return 0;
    }
    if (s->events & UV_WRITABLE)
      sock_watch(s, 0); /* writable at once: it would only spin */
    if (!s->proven && !s->doubt) {
      s->doubt = 1;
      h->ndoubt++;
    }
    return 0;
  }
  if (s == NULL && (s = sock_new(h, fd, 0)) == NULL) return -1;
  s->wanted = 1;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  sock_watch(s, events);
  return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: a connection's socket, with its Sock made
 * now so that it is kept until on_closesocket. */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose,
                                   struct curl_sockaddr *a) {
  Http *h = ud;
  curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
  (void)purpose;
  if (fd >= 0 && sock_new(h, fd, 1) == NULL) {
    close(fd);
    return CURL_SOCKET_BAD;
  }
  return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the poll stops before the descriptor
 * closes, so its number can be reused at once. */
static int on_closesocket(void *ud, curl_socket_t fd) {
  Sock *s = sock_find(ud, fd);
  if (s) sock_close(s);
  return close(fd) == 0 ? 0 : 1; /* curl's contract: 1 for an error */
}

static void timeout_action(Http *h) {
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static void on_timeout(uv_timer_t *t) { timeout_action(t->data); }

static void on_soon(uv_idle_t *i) {
  uv_idle_stop(i); /* once, as a timer */
  timeout_action(i->data);
}

/* CURLMOPT_TIMERFUNCTION: curl's one timeout; -1 stops it. 0 (curl has
 * more to do at once: a transfer to start, or bytes left after a read
 * of its limit) runs in the idle phase of the loop's next turn, not as
 * a timer of 0 ms: started from a timer callback, that one would run
 * again in the same pass of libuv's timers, with the loop's clock
 * stopped, over and over while a fast server kept the socket readable:
 * curl read on, memory grew and no deadline came due (a timeout_ms of
 * 1.5 s fired after 9 s). */
static int on_timer(CURLM *m, long ms, void *ud) {
  Http *h = ud;
  (void)m;
  uv_timer_stop(&h->timer);
  uv_idle_stop(&h->soon);
  if (ms == 0)
    uv_idle_start(&h->soon, on_soon);
  else if (ms > 0)
    uv_timer_start(&h->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

/* curl's connection cache counts the connections in use too. Its default
 * size follows the number of transfers, so a task that ended a request and
 * started the next often found its connection closed (one request in nine
 * reconnected with 50 in flight). It is at least MAX_IDLE_CONNS and grows
 * with the transfers in flight (four connections each, as curl's default),
 * never shrinking: curl closes a connection idle for 118 s anyway. */
static void grow_cache(Http *h) {
  if (h->active * 4 <= h->maxconns) return;
  h->maxconns = h->active * 4;
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->maxconns);
}

static void keep_ref(Http *h) {
  if (h->active)
    uv_ref((uv_handle_t *)&h->keep);
  else
    uv_unref((uv_handle_t *)&h->keep);
}

/* Wakes the task waiting on r, if one is. This may run in curl's timer
 * or idle callback, and libuv runs idle handles (and before 1.45 timers)
 * before it polls: the poll of that same uv_run would then block, not
 * knowing that a task is ready.
 * An owned loop's uv_run is stopped (weft_loop_run then runs the task),
 * a borrowed one's poll is kept from blocking (weft_loop_wake). */
static void wake(Req *r) {
  weft_loop_t *loop = r->h->S->loop;
  if (r->fut.state != WEFT_FUTURE_PENDING) return;
  weft_future_fulfill(&r->fut);
  if (loop->owns_uv)
    uv_stop(loop->uv);
  else
    weft_loop_wake(loop);
}

/* Takes r out of the multi and ends its transfer. The connection goes
 * back to the multi's cache if it can be reused. */
static void detach(Req *r) {
  Http *h = r->h;
  if (r->easy == NULL) return;
  curl_multi_remove_handle(h->multi, r->easy);
  if (reuse_easy && h->nspare < MAX_SPARE_EASY) { /* see reuse_easy */
    curl_easy_reset(r->easy);
    h->spare[h->nspare++] = r->easy;
  } else {
    curl_easy_cleanup(r->easy);
  }
  r->easy = NULL;
  if (r->next) r->next->prev = r->prev;
  if (r->prev)
    r->prev->next = r->next;
  else
    h->reqs = r->next;
  r->next = r->prev = NULL;
  h->active--;
  keep_ref(h);
}

/* The headers of the final response are in: keeps its status and URL. */
static void headers_done(Req *r) {
  const char *u = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &u);
  if (u && (r->final_url = xalloc(strlen(u) + 1)) != NULL)
    memcpy(r->final_url, u, strlen(u) + 1);
  r->headers_done = 1;
}

static void finish(Req *r, CURLcode code) {
  r->result = code;
  if (!r->headers_done) headers_done(r);
  r->done = 1;
  detach(r);
  wake(r);
}

/* Closes the Socks in doubt that no message proved. */
static void settle(Http *h) {
  Sock *s, *next;
  for (s = h->socks.next; h->ndoubt && s != &h->socks; s = next) {
    next = s->next;
    if (!s->doubt) continue;
    s->doubt = 0;
    h->ndoubt--;
    if (!s->proven && !s->wanted) sock_close(s);
  }
}

/* Settles the requests curl has finished. Called after each
 * curl_multi_socket_action, never from inside a curl callback, so
 * removing handles is allowed. */
static void check_done(Http *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
    Req *r = NULL;
    CURLcode code = m->data.result;
    curl_socket_t fd = CURL_SOCKET_BAD;
    Sock *s;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (code == CURLE_OK &&
        curl_easy_getinfo(m->easy_handle, CURLINFO_ACTIVESOCKET, &fd) ==
            CURLE_OK &&
        (s = sock_find(h, fd)) != NULL && s->kept)
      s->proven = 1; /* (a reset handle may name its previous one: also
                        a connected socket in the cache) */
    finish(r, code); /* m is invalid from here on */
  }
  settle(h);
}

static void req_free(Req *r) {
  /* A task still parked on fut (a reader, when another task closes the
   * response) must not keep a link into freed memory: it is woken; or,
   * once the state has closed (h is gone, and so are the scheduler's
   * queues), only unlinked. */
  if (r->h && r->fut.state == WEFT_FUTURE_PENDING)
    weft_future_settle_cancelled(&r->fut);
  while (r->fut.waiters.next && r->fut.waiters.next != &r->fut.waiters)
    weft_waiter_remove((weft_waiter_t *)r->fut.waiters.next);
  if (r->h) {
    detach(r);
    settle(r->h);
  }
  if (r->easy) curl_easy_cleanup(r->easy); /* never added */
  curl_slist_free_all(r->hdrs);
  xfree(r->head.p, r->head.cap);
  xfree(r->body.p, r->body.cap);
  if (r->final_url) xfree(r->final_url, strlen(r->final_url) + 1);
  xfree(r, sizeof *r + strlen(r->url));
}

static void maybe_free_http(Http *h) {
  if (h->closing && h->handles == 0) {
    xfree(h->byfd, h->nbyfd * sizeof *h->byfd);
    xfree(h, sizeof *h);
  }
}

/* The Closer: the state closes. Every request leaves the multi (the
 * guards free what is left), the multi closes its cached connections,
 * then the uv handles close; the memory goes in the last callback. */
static void close_http(Closer *c) {
  Http *h = lw_container(c, Http, closer);
  h->closing = 1;
  h->S->http = NULL;
  while (h->reqs) {
    Req *r = h->reqs;
    detach(r);
    r->h = NULL;
  }
  while (h->nspare > 0) curl_easy_cleanup(h->spare[--h->nspare]);
  curl_multi_cleanup(h->multi); /* may still report sockets to remove */
  h->multi = NULL;
  while (h->socks.next != &h->socks) sock_close(h->socks.next);
  uv_close((uv_handle_t *)&h->timer, on_handle_closed);
  uv_close((uv_handle_t *)&h->soon, on_handle_closed);
  uv_close((uv_handle_t *)&h->keep, on_handle_closed);
}


/* The State's Http, created on first use. NULL on failure. */
static Http *get_http(lua_State *L, State *S) {
  static uv_once_t once = UV_ONCE_INIT;
  Ctx *ctx = lw_toudata(L, lua_upvalueindex(2), sizeof *ctx, CTX_TAG);
  Http *h;
  if (ctx == NULL)
    luaL_error(L, "weft.http: corrupted upvalue 2 (expected its context)");
  if ((h = ctx->h) != NULL) return h;
  uv_once(&once, load_curl);
  if (curl_error[0] || (h = xalloc(sizeof *h)) == NULL) return NULL;
  if ((h->multi = curl_multi_init()) == NULL) {
    xfree(h, sizeof *h);
    return NULL;
  }
  h->S = S;
  h->socks.next = h->socks.prev = &h->socks;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  h->maxconns = MAX_IDLE_CONNS;
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->maxconns);
  uv_timer_init(S->loop->uv, &h->timer);
  uv_idle_init(S->loop->uv, &h->soon);
  uv_async_init(S->loop->uv, &h->keep, NULL);
  h->timer.data = h->soon.data = h->keep.data = h;
  uv_unref((uv_handle_t *)&h->timer);
  uv_unref((uv_handle_t *)&h->soon);
  uv_unref((uv_handle_t *)&h->keep);
  h->handles = 3;
  h->closer.close = close_http;
  lw_closer_add(S, &h->closer);
  ctx->h = h;
  S->http = h;
  return h;
}

/* ----------------------------------------------------- curl callbacks */

/* CURLOPT_HEADERFUNCTION: one header line. A status line starts a new
 * response (after a 1xx or a redirect); the blank line ends a block, and
 * the block of the final response ends the headers. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  Req *r = ud;
  size_t len = size * n;
  long code = 0;
  if (r->headers_done) return len; /* trailers */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    r->head.len = 0;
    r->location = 0;
  } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200) return len; /* 1xx: the real response follows */
    if (r->follow && r->location && code / 100 == 3 && code != 304)
      return len; /* curl follows it */
    headers_done(r);
    if (r->stream) wake(r);
    return len;
  } else if (len > 9 && strncasecmp(p, "location:", 9) == 0) {
    r->location = 1;
  }
  if (buf_add(&r->head, p, len) != 0) {
    r->nomem = 1;
    return 0;
  }
  return len;
}

/* CURLOPT_WRITEFUNCTION: body bytes. A stream whose script lags behind
 * pauses the transfer (curl delivers these bytes again on resume). */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  Req *r = ud;
  size_t len = size * n;
  if (r->max_body >= 0 && r->received + (curl_off_t)len > r->max_body) {
    r->too_big = 1;
    return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  if (r->stream && r->body.len >= HIGH_WATER) {
    r->paused = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (buf_add(&r->body, p, len) != 0) {
    r->nomem = 1;
    return 0;
  }
  r->received += (curl_off_t)len;
  if (r->stream && r->headers_done) wake(r);
  return len;
}

/* ------------------------------------------------------- the requests */

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

/* Sets the options of r's easy handle from the checked table at idx.
 * 0, or -1 out of memory. */
static int setup(lua_State *L, Req *r, int idx) {
  CURL *e = r->easy;
  const char *method = opt_str(L, idx, "method", NULL), *s;
  size_t blen, i, n;
  if (method == NULL) method = "GET"; /* http.lua always sets one */
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->err);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  /* Requests started together to an HTTPS host wait for the first
   * connection's TLS handshake to learn whether it speaks HTTP/2 (ALPN),
   * and then share it as streams, as browsers do, rather than each making
   * a connection of its own. Not for http://: there curl 7.88 would wait
   * for a pending response's headers, so a slow request would hold up
   * every other one to its host. */
  if (strncasecmp(r->url, "https:", 6) == 0)
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)r->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
  if (r->max_body >= 0)
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, r->max_body);
  if ((s = opt_str(L, idx, "ca_file", NULL)) != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, s);
  if (opt_bool(L, idx, "insecure")) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if ((s = opt_str(L, idx, "body", &blen)) != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, s) != CURLE_OK)
      return -1;
  }
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0 || s != NULL)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  /* The header lines, "Name: value", built by http.lua (a script that
   * calls the primitive itself may give anything: only strings count). */
  n = lua_getfield(L, idx, "headers") == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
  for (i = 1; i <= n; i++) {
    struct curl_slist *l;
    size_t len;
    const char *line;
    if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    /* One line each: a NUL would cut it (curl takes C strings), a CR or
     * LF would start another (http.lua refuses every control character
     * but tab with an error). */
    line = lua_tolstring(L, -1, &len);
    if (strlen(line) != len || strpbrk(line, "\r\n") != NULL) {
      lua_pop(L, 1);
      continue;
    }
    l = curl_slist_append(r->hdrs, line);
    lua_pop(L, 1);
    if (l == NULL) {
      lua_pop(L, 1);
      return -1;
    }
    r->hdrs = l;
  }
  lua_pop(L, 1);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  return 0;
}

static void guard_release(lua_State *L, void *ud) {
  Guard *g = ud;
  Req *r = g->req;
  (void)L;
  g->req = NULL;
  if (g->state == G_OPEN) g->state = G_CLOSED;
  /* A task may still wait on r if debug.setlocal took the guard off its
   * stack: it wakes (and finds the request closed) before r goes. */
  if (r) weft_future_fulfill(&r->fut);
  if (r) req_free(r);
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

/* Trims spaces and tabs around s[0..n). */
static const char *trim(const char *s, size_t *n) {
  while (*n && (s[0] == ' ' || s[0] == '\t')) s++, (*n)--;
  while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r' ||
                s[*n - 1] == '\n'))
    (*n)--;
  return s;
}

/* Adds "name: value" to the headers table on top: names lower-cased,
 * repeats joined with ", " ("\n" for set-cookie, whose values hold
 * commas). */
static void add_header(lua_State *L, const char *p, size_t n) {
  const char *colon = memchr(p, ':', n), *v;
  size_t nl, vl, i;
  luaL_Buffer b;
  if (colon == NULL || colon == p) return;
  nl = (size_t)(colon - p);
  v = colon + 1;
  vl = n - nl - 1;
  v = trim(v, &vl);
  luaL_buffinit(L, &b);
  for (i = 0; i < nl; i++)
    luaL_addchar(&b, (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]));
  luaL_pushresult(&b); /* name */
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) == LUA_TSTRING) {
    const char *sep = strcmp(lua_tostring(L, -2), "set-cookie") ? ", " : "\n";
    lua_pushstring(L, sep);
    lua_pushlstring(L, v, vl);
    lua_concat(L, 3);
  } else {
    lua_pop(L, 1);
    lua_pushlstring(L, v, vl);
  }
  lua_rawset(L, -3);
}

static int blank(char c) { return c == ' ' || c == '\t'; }

/* Joins each folded line of b (one starting with a space or a tab:
 * obsolete line folding) to the field before it, in place: the line
 * break and the blanks around it become one space (RFC 9112, 5.2). A
 * folded line right after the status line continues no field: it is
 * dropped (RFC 9112, 2.2). b starts with the status line. */
static void unfold(Buf *b) {
  char *p = b->p, *end = p + b->len, *w = p;
  int field = 0; /* the line before is a field, not the status line */
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *next = nl ? nl + 1 : end;
    if (!blank(p[0])) {
      field = w > b->p;
    } else if (field) {
      while (w > b->p && (w[-1] == '\n' || w[-1] == '\r' || blank(w[-1])))
        w--; /* back over the field's line end */
      *w++ = ' ';
      while (p < next && blank(p[0])) p++;
    } else {
      p = next; /* nothing to continue */
      continue;
    }
    memmove(w, p, (size_t)(next - p));
    w += next - p;
    p = next;
  }
  b->len = (size_t)(w - b->p);
}

/* Pushes the header lines of r as a table (folded lines joined). */
static void push_headers(lua_State *L, Req *r) {
  const char *p, *end;
  unfold(&r->head);
  p = r->head.p;
  end = p + r->head.len;
  lua_newtable(L);
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl ? nl + 1 : end;
    if (strncmp(p, "HTTP/", 5) != 0) add_header(L, p, (size_t)(next - p));
    p = next;
  }
}

/* Pushes {status, headers, url[, body]} of r. */
static void push_response(lua_State *L, Req *r, int body) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, r->status);
  lua_setfield(L, -2, "status");
  push_headers(L, r);
  lua_setfield(L, -2, "headers");
  lua_pushstring(L, r->final_url ? r->final_url : r->url);
  lua_setfield(L, -2, "url");
  if (body) {
    lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
    lua_setfield(L, -2, "body");
  }
}

static int failed(Req *r) {
  return r->done && (r->result != CURLE_OK || r->too_big || r->nomem);
}

/* Raises the failure of r, whose guard g lets go of it. */
static int raise_failed(lua_State *L, Guard *g) {
  Req *r = g->req;
  push_failure(L, r);
  g->req = NULL;
  g->state = G_CLOSED;
  req_free(r);
  return lua_error(L);
}

/* The wait ended by a cancellation or a deadline: the request goes (its
 * guard at gidx lets go) and the error is raised. A cancellation makes
 * no message first: with memory short, it must still end as one. */
static int give_up(lua_State *L, Task *t, int gidx) {
  Guard *g = guard_at(L, gidx, "weft.http");
  Req *r = g->req;
  int cancelled = t->status == WEFT_ECANCELED;
  if (r == NULL) /* a script finalized the guard (debug.getmetatable) */
    return luaL_error(L, "weft.http: the request was closed");
  if (!cancelled) /* the message needs r */
    lua_pushfstring(L, "%s: %s: timed out after %I ms", r->fname, r->url,
                    r->timeout_ms);
  g->req = NULL;
  g->state = G_CLOSED;
  req_free(r);
  if (cancelled) lw_raise_cancel(L, t);
  lw_new_error(L, "timeout", lua_tostring(L, -1));
  return lua_error(L);
}

/* Parks t on r's future until r's deadline, if it has one. */
static int park(lua_State *L, State *S, Task *t, Req *r, lua_KFunction k) {
  uint64_t tmo = WEFT_FOREVER, now = weft_sched_now(S->sched);
  if (r->timeout_ms > 0) tmo = r->deadline > now ? r->deadline - now : 0;
  if (weft_task_await(&t->t, &r->fut, tmo) == WEFT_ENOMEM)
    return luaL_error(L, "%s: not enough memory", r->fname);
  return lua_yieldk(L, 0, 0, k);
}

/* Stack of a request while it waits: 1 fname, 2 checked opts, 3 guard. */
static int request_k(lua_State *L, int st, lua_KContext ctx) {
  State *S = upstate(L);
  Task *t = lw_k_task(L);
  Guard *g = guard_at(L, 3, "weft.http");
  Req *r = g->req;
  if (t == NULL) return lua_yieldk(L, 0, ctx, request_k);
  (void)st;
  (void)ctx;
  if (r == NULL) return luaL_error(L, "weft.http: the request was closed");
  if (t->status == WEFT_ECANCELED || t->status == WEFT_ETIMEDOUT)
    return give_up(L, t, 3);
  if (failed(r)) return raise_failed(L, g);
  if (!r->done && !(r->stream && r->headers_done)) {
    weft_future_init(&r->fut); /* not there yet: wait on */
    return park(L, S, t, r, request_k);
  }
  if (!r->stream) {
    push_response(L, r, 1);
    g->req = NULL;
    g->state = G_ENDED;
    req_free(r);
  } else {
    push_response(L, r, 0);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "_h");
    lw_task_own(L, t, 3); /* the transfer ends with its task at the latest */
  }
  return 1;
}

/* I.http_request(fname, opts) -> {status, headers, url[, body | _h]};
 * opts was checked and normalized by http.lua. */
static int l_request(lua_State *L) {
  State *S = upstate(L);
  const char *fname = luaL_checkstring(L, 1), *url;
  size_t ulen = 0;
  CURLMcode mc;
  Task *t;
  Guard *g;
  Http *h;
  Req *r;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  t = lw_need_task(L, S, fname);
  g = lua_newuserdatauv(L, sizeof *g, 0); /* at 3, where request_k looks */
  g->tag = GUARD_TAG;
  g->req = NULL;
  g->state = G_OPEN;
  g->busy = 0;
  luaL_setmetatable(L, GUARD_MT);
  if ((url = opt_str(L, 2, "url", &ulen)) == NULL)
    return luaL_error(L, "%s: no url", fname);
  if (strlen(url) != ulen) /* curl takes C strings (http.lua says so too) */
    return luaL_error(L, "%s: url must not contain a NUL", fname);
  if ((h = get_http(L, S)) == NULL && curl_error[0])
    return luaL_error(L, "%s: %s", fname, curl_error);
  if (h == NULL || (r = xalloc(sizeof *r + ulen)) == NULL)
    return luaL_error(L, "%s: not enough memory", fname);
  g->req = r; /* from here on the guard frees r, whatever happens */
  memcpy(r->url, url, ulen + 1);
  snprintf(r->fname, sizeof r->fname, "%s", fname);
  weft_future_init(&r->fut);
  r->stream = (unsigned char)opt_bool(L, 2, "stream");
  r->follow = (unsigned char)opt_bool(L, 2, "follow_redirects");
  r->max_body = (curl_off_t)opt_int(L, 2, "max_body", -1);
  r->timeout_ms = opt_int(L, 2, "timeout_ms", 0);
  r->deadline = weft_sched_now(S->sched) + (uint64_t)r->timeout_ms;
  r->easy = h->nspare > 0 ? h->spare[--h->nspare] : curl_easy_init();
  if (r->easy == NULL || setup(L, r, 2) != 0)
    return luaL_error(L, "%s: not enough memory", fname);
  curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
  curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETDATA, h);
  curl_easy_setopt(r->easy, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
  curl_easy_setopt(r->easy, CURLOPT_CLOSESOCKETDATA, h);
  if ((mc = curl_multi_add_handle(h->multi, r->easy)) != CURLM_OK)
    return luaL_error(L, "%s: %s", fname, curl_multi_strerror(mc));
  r->h = h;
  r->next = h->reqs;
  if (r->next) r->next->prev = r;
  h->reqs = r;
  h->active++;
  h->requests++;
  grow_cache(h);
  keep_ref(h);
  return park(L, S, t, r, request_k);
}

/* ------------------------------------------------- streamed responses */

static Guard *check_guard(lua_State *L, const char *fname) {
  Guard *g = lw_toudata(L, 1, sizeof *g, GUARD_TAG);
  if (g == NULL) luaL_error(L, "%s: not a streamed response", fname);
  return g;
}

/* The next chunk of r for the reader at 1 (guard g): what is buffered,
 * nil at the end, the failure, or a wait for more. */
static int read_k(lua_State *L, int st, lua_KContext ctx);

static int read_step(lua_State *L, State *S, Task *t, Guard *g) {
  Req *r = g->req;
  /* A read after the deadline fails even with bytes buffered, or a fast
   * server's stream, whose reads never wait, would never time out. */
  if (!r->done && r->timeout_ms > 0 &&
      weft_sched_now(S->sched) >= r->deadline)
    return give_up(L, t, 1);
  if (r->body.len > 0) {
    lua_pushlstring(L, r->body.p, r->body.len);
    r->body.len = 0;
    if (r->paused && r->easy) { /* room again: resume the transfer */
      r->paused = 0;
      curl_easy_pause(r->easy, CURLPAUSE_CONT);
    }
    return 1;
  }
  if (failed(r)) return raise_failed(L, g);
  if (r->done) {
    g->req = NULL;
    g->state = G_ENDED;
    req_free(r);
    lua_pushnil(L);
    return 1;
  }
  weft_future_init(&r->fut);
  g->busy = 1;
  return park(L, S, t, r, read_k);
}

static int read_k(lua_State *L, int st, lua_KContext ctx) {
  State *S = upstate(L);
  Task *t = lw_k_task(L);
  Guard *g = guard_at(L, 1, "response:read");
  if (t == NULL) return lua_yieldk(L, 0, ctx, read_k);
  (void)st;
  (void)ctx;
  g->busy = 0;
  if (g->req == NULL) { /* another task closed it meanwhile */
    if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
    return luaL_error(L, "response:read: the response was closed");
  }
  if (t->status == WEFT_ECANCELED || t->status == WEFT_ETIMEDOUT)
    return give_up(L, t, 1);
  return read_step(L, S, t, g);
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
  if (g->state == G_CLOSED)
    return luaL_error(L, "response:read: the response is closed");
  if (g->busy)
    return luaL_error(L, "response:read: another task is reading the "
                         "response");
  t = lw_need_task(L, S, "response:read");
  return read_step(L, S, t, g);
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
  Ctx *ctx;
  luaL_newmetatable(L, GUARD_MT);
  lw_protect_mt(L, GUARD_MT);
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, guard_close);
  lua_setfield(L, -2, "__close");
  lw_set_owned_close(L, &guard_owned);
  lua_pop(L, 1);
  lw_push_state(L, S);
  ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
  ctx->tag = CTX_TAG;
  ctx->h = NULL;
  luaL_setfuncs(L, fns, 2);
}

/* Adds the HTTP counters to the stats table on top, once a request has
 * made the curl multi. */
void lw_http_stats(lua_State *L, State *S) {
  Http *h = S->http;
  if (h == NULL) return;
  lw_setint(L, "http_requests", h->requests);
  lw_setint(L, "http_active", h->active);
  lw_setint(L, "http_connections", h->connections);
}
