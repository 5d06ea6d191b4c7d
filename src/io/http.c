/*
 * http.c - the HTTP(S) client (I/O tier, weft_io.h): libcurl's multi, one
 * per loop, driven through libuv poll and timer handles (on the loop, not
 * the pool: transfers mostly wait on sockets, and one thread runs any
 * number of them); its requests are objects polled like TCP connections.
 * SPDX-License-Identifier: MIT
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* http.h: what this file shares with the native path (http1.c); it
 * includes host.h: the loop's uv_loop_t and scheduler, its slot for the
 * client and its list of open objects (the client closes when the loop is
 * freed), and curl.h with CURL_DISABLE_TYPECHECK (its macros would hide
 * ours below). */
#include "http.h"

/* ------------------------------------------------------ loading libcurl */

/* libcurl and the 30-odd libraries it pulls in (TLS, GSSAPI, LDAP, SSH,
 * ...) are loaded on the first request, not at start-up: a program that
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
#include "http.h"

static void *xalloc(size_t n) {
  void *p = weft__valloc(NULL, 0, n);
  if (p) memset(p, 0, n);
  return p;
}

static void xfree(void *p, size_t n) {
  if (p) weft__valloc(p, n, 0);
}

void *weft__http_alloc(size_t n) { return xalloc(n); }

void weft__http_free_mem(void *p, size_t n) { xfree(p, n); }

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

/* The libuv code nearest to why r failed: the code of its weft_error_t
 * (weft_http_error_name gives curl's own). */
static int uv_code(const Req *r) {
  if (r->weird) return UV_EPROTO;
  if (r->too_big) return UV_EFBIG;
  if (r->nomem) return UV_ENOMEM;
  switch (r->result) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return UV_EAI_NONAME;
  case CURLE_COULDNT_CONNECT: return UV_ECONNREFUSED;
  case CURLE_OPERATION_TIMEDOUT: return UV_ETIMEDOUT;
  case CURLE_OUT_OF_MEMORY: return UV_ENOMEM;
  case CURLE_FILESIZE_EXCEEDED: return UV_EFBIG;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL: return UV_EINVAL;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING: return UV_ECONNRESET;
  default: return UV_EPROTO;
  }
}

/* Trims spaces and tabs around s[0..n). */
static const char *trim(const char *s, size_t *n) {
  while (*n && (s[0] == ' ' || s[0] == '\t')) s++, (*n)--;
  while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r' ||
                s[*n - 1] == '\n'))
    (*n)--;
  return s;
}

static int blank(char c) { return c == ' ' || c == '\t'; }

/* Joins each folded line of b (one starting with a space or a tab:
 * obsolete line folding) to the field before it, in place: the line
 * break and the blanks around it become one space (RFC 9112, 5.2). A
 * folded line right after the status line continues no field: it is
 * dropped (RFC 9112, 2.2). b starts with the status line. */
static void unfold(Buf *b) {
  char *p = b->p, *end, *w = p;
  int field = 0; /* the line before is a field, not the status line */
  if (p == NULL) return; /* no header came (a failure) */
  end = p + b->len;
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

int weft__http_buf_add(Buf *b, const char *p, size_t n) {
  return buf_add(b, p, n);
}

void weft__http_unfold(Buf *b) { unfold(b); }

/* ------------------------------------------------- the multi on libuv */

static void check_done(Http *h);
static void maybe_free_http(Http *h);

static void on_handle_closed(uv_handle_t *hd) {
  Http *h = hd->data;
  h->handles--;
  maybe_free_http(h);
}

void weft__http_handle_closed(Http *h) {
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
  if (uv_poll_init_socket(h->loop->uv, &s->poll, fd) != 0) {
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
  weft_loop_t *loop = r->h->loop;
  if (r->fut.state != WEFT_FUTURE_PENDING) return;
  weft_future_fulfill(&r->fut);
  if (loop->owns_uv)
    uv_stop(loop->uv);
  else
    weft_loop_wake(loop);
}

void weft__http_wake(Req *r) { wake(r); }

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
  weft__http_unlist(r);
}

void weft__http_unlist(Req *r) {
  Http *h = r->h;
  if (!r->listed) return;
  r->listed = 0;
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
  /* Kept only when a redirect changed it: most requests need no copy.
   * (One the native path followed before curl took over is replaced.) */
  if (r->final_url) xfree(r->final_url, strlen(r->final_url) + 1);
  r->final_url = NULL;
  if (u && strcmp(u, r->url) != 0 &&
      (r->final_url = xalloc(strlen(u) + 1)) != NULL)
    memcpy(r->final_url, u, strlen(u) + 1);
  unfold(&r->head);
  /* curl takes any number for the status ("HTTP/1.1 99999999999 OK"
   * gives a garbage long): no response has more than three digits. */
  if (r->status < 0 || r->status > 999) r->weird = 1;
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
  /* A task still parked on fut must not keep a link into freed memory:
   * it is woken; or, once the loop was freed (h is gone, and so are the
   * scheduler's queues), only unlinked. */
  if (r->h && r->fut.state == WEFT_FUTURE_PENDING)
    weft_future_settle_cancelled(&r->fut);
  while (r->fut.waiters.next && r->fut.waiters.next != &r->fut.waiters)
    weft_waiter_remove((weft_waiter_t *)r->fut.waiters.next);
  if (r->native) {
    weft__h1_abandon(r);
    if (r->h) weft__http_unlist(r);
  }
  if (r->h && r->easy) {
    detach(r);
    settle(r->h);
  }
  if (r->easy) curl_easy_cleanup(r->easy); /* never added */
  if (r->hdrs) curl_slist_free_all(r->hdrs);
  xfree(r->head.p, r->head.cap);
  xfree(r->body.p, r->body.cap);
  if (r->final_url) xfree(r->final_url, strlen(r->final_url) + 1);
  if (r->msg) xfree(r->msg, strlen(r->msg) + 1);
  xfree(r, r->size);
}

static void maybe_free_http(Http *h) {
  if (h->closing && h->handles == 0) {
    xfree(h->byfd, h->nbyfd * sizeof *h->byfd);
    xfree(h->rbuf, NATIVE_RBUF);
    xfree(h->wbuf.p, h->wbuf.cap);
    xfree(h, sizeof *h);
  }
}

/* The loop is freed (its closer). Every request leaves the multi (the
 * owners free what is left), the multi closes its cached connections,
 * then the uv handles close; the memory goes in the last callback. */
static void close_http(Http *h) {
  h->closing = 1;
  h->loop->http = NULL;
  weft__loop_untrack(&h->closer);
  while (h->reqs) {
    Req *r = h->reqs;
    if (r->native) {
      weft__h1_abandon(r);
      weft__http_unlist(r);
    } else {
      detach(r);
    }
    r->h = NULL;
  }
  weft__h1_close_all(h);
  while (h->nspare > 0) curl_easy_cleanup(h->spare[--h->nspare]);
  if (h->multi) curl_multi_cleanup(h->multi); /* may report removals */
  h->multi = NULL;
  while (h->socks.next != &h->socks) sock_close(h->socks.next);
  uv_close((uv_handle_t *)&h->timer, on_handle_closed);
  uv_close((uv_handle_t *)&h->soon, on_handle_closed);
  uv_close((uv_handle_t *)&h->keep, on_handle_closed);
}


static void http_closer(weft__closer *c) {
  close_http((Http *)((char *)c - offsetof(Http, closer)));
}

/* Whether the environment names a proxy for http:// URLs, as curl reads
 * it: lowercase http_proxy (curl ignores HTTP_PROXY, which a CGI
 * request's Proxy header could set), all_proxy or ALL_PROXY. Requests of
 * such a loop all go to curl, which applies the proxy and NO_PROXY: the
 * native path speaks to origin servers only. */
static int env_proxy(void) {
  static const char *const names[] = {"http_proxy", "all_proxy",
                                      "ALL_PROXY"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v && v[0]) return 1;
  }
  return 0;
}

/* Loads libcurl and makes h's multi, once: 0, WEFT_ENOMEM, or UV_ENOSYS
 * when libcurl cannot be loaded (curl_error says why). */
static int need_multi(Http *h) {
  static uv_once_t once = UV_ONCE_INIT;
  if (h->multi) return 0;
  uv_once(&once, load_curl);
  if (curl_error[0]) return UV_ENOSYS;
  if ((h->multi = curl_multi_init()) == NULL) return WEFT_ENOMEM;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  h->maxconns = MAX_IDLE_CONNS;
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->maxconns);
  return 0;
}

/* The loop's Http, created on first use (its multi only when a request
 * needs curl): 0 or WEFT_ENOMEM. The environment is read then, once. */
static int get_http(weft_loop_t *loop, Http **out) {
  Http *h;
  if ((*out = loop->http) != NULL) return 0;
  if ((h = xalloc(sizeof *h)) == NULL) return WEFT_ENOMEM;
  h->loop = loop;
  h->proxy = env_proxy();
  h->socks.next = h->socks.prev = &h->socks;
  h->idle.next = h->idle.prev = &h->idle;
  h->busy.next = h->busy.prev = &h->busy;
  uv_timer_init(loop->uv, &h->timer);
  uv_idle_init(loop->uv, &h->soon);
  uv_async_init(loop->uv, &h->keep, NULL);
  h->timer.data = h->soon.data = h->keep.data = h;
  uv_unref((uv_handle_t *)&h->timer);
  uv_unref((uv_handle_t *)&h->soon);
  uv_unref((uv_handle_t *)&h->keep);
  h->handles = 3;
  h->closer.close = http_closer;
  weft__loop_track(loop, &h->closer);
  loop->http = h;
  *out = h;
  return 0;
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
    if (r->weird) return 0; /* curl ends the transfer */
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

/* CURLOPT_WRITEFUNCTION: body bytes. A stream whose reader lags behind
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

/* A token (RFC 9110): what a method or a header name is made of. */
static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+.^_`|~-", c));
}

/* The length of the token at s (0 if none). */
static size_t token_len(const char *s) {
  size_t n = 0;
  while (is_tchar((unsigned char)s[n])) n++;
  return n;
}

/* Whether s has a control character (tab too unless tab). */
static int has_ctl(const char *s, int tab) {
  for (; *s; s++)
    if (((unsigned char)*s < 32 && !(tab && *s == '\t')) || *s == 127)
      return 1;
  return 0;
}

/* A header line: "Name: value" (the value without control characters but
 * tab: a CR or LF would start another line), "Name:" (curl removes its
 * own header) or "Name;" (sent empty). */
static int valid_line(const char *line) {
  size_t n = token_len(line);
  if (n == 0 || (line[n] != ':' && line[n] != ';')) return 0;
  if (line[n] == ';') return line[n + 1] == '\0';
  return !has_ctl(line + n + 1, 1);
}

/* Whether opts can be sent: see weft_http_request. */
static int valid(const weft_http_opts *o) {
  const char *const *l;
  if (o->url == NULL || strncasecmp(o->url, "http", 4) != 0 ||
      has_ctl(o->url, 0))
    return 0;
  if (strncmp(o->url + 4 + (o->url[4] == 's' || o->url[4] == 'S'), "://",
              3) != 0)
    return 0;
  if (o->method && (o->method[token_len(o->method)] || !o->method[0]))
    return 0;
  if (o->body == NULL && o->body_len > 0) return 0;
  if (o->max_body < -1 || o->timeout_ms > (uint64_t)INT64_MAX) return 0;
  if (o->ca_file && o->ca_file[0] == '\0') return 0;
  for (l = o->headers; l && *l; l++)
    if (!valid_line(*l)) return 0;
  return 1;
}

/* Sets the options of r's easy handle from o. 0, or -1 out of memory. */
static int setup(Req *r, const weft_http_opts *o) {
  CURL *e = r->easy;
  const char *method = o->method;
  const char *const *l;
  if (method == NULL) method = o->body ? "POST" : "GET";
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
  if (o->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
  if (o->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (o->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)o->body_len);
    if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
                         o->body_len ? o->body : "") != CURLE_OK)
      return -1;
  }
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0 || o->body)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  for (l = o->headers; l && *l; l++) {
    struct curl_slist *n = curl_slist_append(r->hdrs, *l);
    if (n == NULL) return -1;
    r->hdrs = n;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r->h);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r->h);
  return 0;
}

/* Lists r in h's requests as started. */
static void list_req(Http *h, Req *r) {
  r->h = h;
  r->listed = 1;
  r->next = h->reqs;
  if (r->next) r->next->prev = r;
  h->reqs = r;
  h->active++;
  h->requests++;
  keep_ref(h);
}

/* Adds r to h's multi: 0, or WEFT_ENOMEM. */
static int start(Http *h, Req *r) {
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
    return WEFT_ENOMEM; /* a handle made here is valid: only memory */
  list_req(h, r);
  grow_cache(h);
  return 0;
}

/* A redirect of a native request to https://: r's transfer goes on in
 * curl from url, with the redirects left, its method and headers and
 * (unless the redirect dropped it) its body. r is listed and native no
 * more; its native state is gone (the caller ended it). */
int weft__http_to_curl(Req *r, const weft_http_opts *o, const char *url) {
  Http *h = r->h;
  int rc = need_multi(h);
  if (rc != 0) return rc;
  if ((r->easy = h->nspare > 0 ? h->spare[--h->nspare] : curl_easy_init())
      == NULL || setup(r, o) != 0)
    return WEFT_ENOMEM;
  curl_easy_setopt(r->easy, CURLOPT_URL, url);
  curl_easy_setopt(r->easy, CURLOPT_MAXREDIRS,
                   (long)(MAX_REDIRECTS - r->hops));
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
    return WEFT_ENOMEM;
  grow_cache(h);
  return 0;
}

int weft_http_request(weft_loop_t *loop, const weft_http_opts *opts,
                      weft_http_t **out) {
  size_t ulen, size;
  Http *h;
  Req *r;
  int rc, native;
  if (out) *out = NULL;
  if (loop == NULL || opts == NULL || out == NULL || !valid(opts))
    return WEFT_EINVAL;
  if ((rc = get_http(loop, &h)) != 0) return rc;
  native = weft__h1_eligible(h, opts);
again:
  if (!native && (rc = need_multi(h)) != 0) return rc;
  ulen = strlen(opts->url);
  size = sizeof *r + ulen + (native ? weft__h1_spec_size(opts) : 0);
  if ((r = xalloc(size)) == NULL) return WEFT_ENOMEM;
  r->size = size;
  memcpy(r->url, opts->url, ulen + 1);
  weft_future_init(&r->fut);
  r->stream = opts->stream != 0;
  r->follow = opts->follow_redirects != 0;
  r->max_body = (curl_off_t)opts->max_body;
  r->timeout_ms = opts->timeout_ms;
  r->deadline = weft_sched_now(&loop->sched) + opts->timeout_ms;
  if (native) {
    r->native = 1;
    if ((rc = weft__h1_prepare(h, r, opts)) != 0) {
      req_free(r);
      if (rc != 1) return rc;
      native = 0; /* a URL for curl */
      goto again;
    }
    list_req(h, r);
    weft__h1_go(r);
    *out = r;
    return 0;
  }
  r->easy = h->nspare > 0 ? h->spare[--h->nspare] : curl_easy_init();
  r->h = h; /* for setup; start lists it */
  rc = r->easy == NULL || setup(r, opts) != 0 ? WEFT_ENOMEM : 0;
  r->h = NULL;
  if (rc == 0) rc = start(h, r);
  if (rc != 0) {
    req_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static int failed(const Req *r) {
  return r->done &&
         (r->result != CURLE_OK || r->too_big || r->nomem || r->weird);
}

/* Whether r's deadline passed with the transfer still running. */
static int late(const Req *r) {
  return !r->done && r->timeout_ms > 0 && r->h &&
         weft_sched_now(&r->h->loop->sched) >= r->deadline;
}

/* WEFT_PENDING with r's future re-armed in *wait. */
static int pending(Req *r, weft_future_t **wait) {
  weft_future_init(&r->fut);
  *wait = &r->fut;
  return WEFT_PENDING;
}

int weft_http_poll(weft_http_t *r, weft_future_t **wait) {
  if (wait) *wait = NULL;
  if (r == NULL || wait == NULL) return WEFT_EINVAL;
  if (failed(r)) return uv_code(r);
  if (r->done || (r->stream && r->headers_done)) return 0;
  if (r->h == NULL) return WEFT_ECLOSED;
  if (late(r)) return WEFT_ETIMEDOUT;
  return pending(r, wait);
}

/* Drops the bytes the last read lent, and resumes a transfer paused for
 * want of room. */
static void drop_lent(Req *r) {
  if (r->lent == 0) return;
  r->body.len -= r->lent;
  if (r->body.len) memmove(r->body.p, r->body.p + r->lent, r->body.len);
  r->lent = 0;
  if (r->paused && r->body.len < HIGH_WATER) {
    r->paused = 0;
    if (r->native)
      weft__h1_resume(r);
    else if (r->easy)
      curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may call on_body */
  }
}

int weft_http_read(weft_http_t *r, weft_span_t *out, weft_future_t **wait) {
  if (wait) *wait = NULL;
  if (out) out->ptr = NULL, out->len = 0;
  if (r == NULL || out == NULL || wait == NULL) return WEFT_EINVAL;
  drop_lent(r);
  /* A read after the deadline fails even with bytes buffered, or a fast
   * server's stream, whose reads never wait, would never time out. */
  if (late(r)) return WEFT_ETIMEDOUT;
  if (r->body.len > 0 && (r->stream || (r->done && !failed(r)))) {
    out->ptr = r->body.p;
    out->len = r->lent = r->body.len;
    return 0;
  }
  if (failed(r)) return uv_code(r);
  if (r->done) return UV_EOF;
  if (r->h == NULL) return WEFT_ECLOSED;
  return pending(r, wait);
}

uint64_t weft_http_wait_ms(const weft_http_t *r) {
  uint64_t now;
  if (r == NULL || r->timeout_ms == 0 || r->h == NULL) return WEFT_FOREVER;
  now = weft_sched_now(&r->h->loop->sched);
  return r->deadline > now ? r->deadline - now : 0;
}

long weft_http_status(const weft_http_t *r) {
  return r && r->headers_done ? r->status : 0;
}

const char *weft_http_url(const weft_http_t *r, int final) {
  if (r == NULL) return NULL;
  return final && r->final_url ? r->final_url : r->url;
}

int weft_http_header_next(const weft_http_t *r, size_t *pos,
                          weft_span_t *name, weft_span_t *value) {
  const char *p, *end;
  if (r == NULL || pos == NULL || name == NULL || value == NULL ||
      !r->headers_done || r->head.p == NULL)
    return 0;
  end = r->head.p + r->head.len;
  for (p = r->head.p + *pos; p && p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl ? nl + 1 : end, *colon;
    const char *line = p;
    p = next;
    *pos = (size_t)(next - r->head.p);
    if (strncmp(line, "HTTP/", 5) == 0) continue; /* a status line */
    colon = memchr(line, ':', (size_t)(next - line));
    if (colon == NULL || colon == line) continue;
    name->ptr = line;
    name->len = (size_t)(colon - line);
    value->ptr = colon + 1;
    value->len = (size_t)(next - colon - 1);
    value->ptr = trim(value->ptr, &value->len);
    return 1;
  }
  return 0;
}

const char *weft_http_error_name(const weft_http_t *r) {
  if (r == NULL || !failed(r)) return NULL;
  if (r->too_big || r->result == CURLE_FILESIZE_EXCEEDED)
    return "FILESIZE_EXCEEDED";
  if (r->nomem) return "OUT_OF_MEMORY";
  if (r->weird) return "WEIRD_SERVER_REPLY";
  return code_name(r->result);
}

/* The failure's text after the URL, into buf. */
static const char *reason(const Req *r, char *buf, size_t size) {
  if (r->too_big || r->result == CURLE_FILESIZE_EXCEEDED)
    snprintf(buf, size, "the body exceeds max_body (%lld bytes)",
             (long long)r->max_body);
  else if (r->nomem)
    snprintf(buf, size, "not enough memory");
  else if (r->weird)
    snprintf(buf, size, "%s", curl_easy_strerror(CURLE_WEIRD_SERVER_REPLY));
  else
    snprintf(buf, size, "%s",
             r->err[0] ? r->err : curl_easy_strerror(r->result));
  return buf;
}

int weft_http_error(weft_http_t *r, weft_error_t *out) {
  char why[CURL_ERROR_SIZE + 64];
  size_t n;
  if (out) memset(out, 0, sizeof *out);
  if (r == NULL || out == NULL || !failed(r)) return 0;
  out->code = uv_code(r);
  out->where = "http.request";
  reason(r, why, sizeof why);
  n = strlen(r->url) + strlen(why) + 3;
  if (r->msg == NULL && (r->msg = weft__valloc(NULL, 0, n)) != NULL)
    snprintf(r->msg, n, "%s: %s", r->url, why);
  out->message = r->msg ? r->msg : "failed (message lost: no memory)";
  return out->code;
}

void weft_http_free(weft_http_t *r) {
  if (r == NULL) return;
  /* A task may still wait on r (another task frees it): it wakes. */
  if (r->h && r->fut.state == WEFT_FUTURE_PENDING)
    weft_future_fulfill(&r->fut);
  req_free(r);
}

int weft_http_stats(weft_loop_t *loop, weft_http_stats_t *out) {
  Http *h;
  if (out) memset(out, 0, sizeof *out);
  if (loop == NULL || out == NULL || (h = loop->http) == NULL) return 0;
  out->requests = h->requests;
  out->active = h->active;
  out->connections = h->connections + h->nconns;
  return 1;
}

const char *weft_http_load_error(void) { return curl_error; }
