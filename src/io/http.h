/*
 * http.h - what the HTTP client's two paths share (I/O tier, internal):
 * the loop's client (Http) and a request (weft_http_t), served by
 * libcurl (http.c) or by the native HTTP/1.1 path (http1.c).
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_IO_HTTP_H
#define WEFT_IO_HTTP_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h> /* types and codes only: http.c loads libcurl */
#include <uv.h>

#include "host.h"
#include "weft_io.h"

/* A streamed body stops being read from the socket (the transfer is
 * paused) once this much waits for the reader: the backpressure bound. */
#define HIGH_WATER (64 * 1024)
#define MAX_REDIRECTS 10
#define MAX_IDLE_CONNS 256  /* connections kept for reuse */
#define MAX_SPARE_EASY 64   /* ended transfers' easy handles kept for reuse */
#define MAX_IDLE_NATIVE 256 /* the native path's kept connections */
#define NATIVE_RBUF (64 * 1024) /* the native path's read buffer */

typedef struct weft__http Http;
typedef weft_http_t Req;

typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

/* A link of the native path's lists of connections (http1.c). */
typedef struct weft__clink {
  struct weft__clink *next, *prev;
} CLink;

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

/* About Http: the one curl multi handle of a loop (loop->http), created
 * by its first request. Its uv handles (timer, soon, keep and each Sock)
 * are unreferenced except keep, which is referenced while transfers run
 * (active > 0): idle keep-alive connections never hold the loop open, a
 * transfer in flight always does. reqs lists the requests in the multi.
 * The loop tracks it (closer) and closes it when it is freed
 * (close_http); the memory goes once every uv handle's close callback ran
 * (handles counts those not yet closed). */
struct weft__http {
  weft__closer closer;
  weft_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  uv_idle_t soon; /* curl's timeout of 0 ms: see on_timer */
  uv_async_t keep;
  Sock socks;  /* list head */
  Sock **byfd; /* open Socks by descriptor */
  size_t nbyfd;
  size_t ndoubt;               /* Socks in doubt: see Sock */
  size_t connections;          /* open sockets weft opened for curl (kept) */
  uint64_t requests;           /* started */
  CURL *spare[MAX_SPARE_EASY]; /* easy handles to reuse, reset */
  int nspare;
  Req *reqs;
  size_t active;
  size_t maxconns; /* curl's connection cache: see grow_cache */
  int handles, closing;
  /* The native path (http1.c): its connections, idle ones (kept alive,
   * newest first) and busy ones (serving a request or connecting), both
   * circular lists through each Conn's first member, with these heads;
   * nidle of them idle, nconns open.
   * rbuf is the one read buffer of all of them (a read is parsed before
   * the next one is made). proxy: the environment names a proxy, so
   * every request goes to curl (which honours it). */
  CLink idle, busy;
  size_t nidle, nconns;
  char *rbuf;
  Buf wbuf; /* where a request is written before it is sent */
  int proxy;
};

/* About weft_http_t: one request, owned by its caller (weft_http_free).
 * It is in h->reqs (and the multi) from start to completion; then easy is
 * reset for reuse and the result stays here until the owner frees it.
 * When the owner lets go first the request is abandoned (taken out of the
 * multi) and freed; if the loop is freed first, close_http takes every
 * request out of the multi and clears h, and weft_http_free frees the
 * rest. fut is what the owner awaits: completion, or for a stream the end
 * of the headers and then each next chunk (re-armed by each poll that
 * returns WEFT_PENDING). head holds the header lines of the latest
 * response (a redirect's are dropped; unfolded once the headers are
 * done); body the bytes not yet read, of which the first lent were lent
 * by the last read (dropped at the next one, so that curl appending
 * meanwhile never moves them). msg is the failure's text, made when it
 * is first asked for. */
struct weft_http_s {
  Req *next, *prev;
  Http *h;
  CURL *easy;
  struct curl_slist *hdrs;
  weft_future_t fut;
  Buf head, body;
  size_t lent;
  char *final_url; /* after redirects, if not url, once headers are in */
  char *msg;
  curl_off_t max_body, received;
  uint64_t deadline; /* scheduler ms; only if timeout_ms > 0 */
  uint64_t timeout_ms;
  long status;
  CURLcode result;
  unsigned char stream, follow, location, headers_done, done, paused;
  unsigned char too_big, nomem, weird;
  /* The native path (http1.c; native is 1 there, and easy stays NULL).
   * conn serves the request (NULL before it has one and after the
   * response); dns is the name lookup in flight, dnsw its waiter; addrs
   * what it gave, tried in order (next). host, port and path are the
   * current hop's (host and path in target, made for each hop). spec
   * holds the method, then the header lines (each NUL-terminated), the
   * body and ca_file, copied from the options after url (a redirect to
   * https:// gives them to curl). */
  unsigned char native, retried, hops, idempotent, head_only, redirect;
  unsigned char line, body_dropped, listed;
  unsigned short port;
  struct weft__conn *conn;
  weft_call_t *dns;
  weft_waiter_t dnsw;
  weft_value_t addrs;
  size_t next_addr;
  char *target, *host, *path;
  size_t target_size;
  size_t method_len, lines_len, body_len, ca_len;
  unsigned char insecure;
  size_t size; /* of this allocation */
  char err[CURL_ERROR_SIZE];
  char url[1]; /* allocated to fit, with spec after it */
};

/* Shared helpers (http.c). */
void *weft__http_alloc(size_t n); /* zeroed, from the value allocator */
void weft__http_free_mem(void *p, size_t n);
int weft__http_buf_add(Buf *b, const char *p, size_t n);
void weft__http_unfold(Buf *b);
void weft__http_wake(Req *r);
void weft__http_unlist(Req *r); /* r leaves h->reqs (no longer active) */
void weft__http_handle_closed(Http *h); /* a uv handle of h has closed */
/* Hands r, a native request being redirected to https://, to curl: its
 * transfer goes on from url with o's method, headers and body. 0, or a
 * negative code. */
int weft__http_to_curl(Req *r, const weft_http_opts *o, const char *url);

/* The native path (http1.c). */
/* Whether o may go the native way (an http:// URL, no proxy, nothing
 * only curl does); weft__h1_prepare has the last word on the URL. */
int weft__h1_eligible(Http *h, const weft_http_opts *o);
/* The bytes a native request needs after its URL for o. */
size_t weft__h1_spec_size(const weft_http_opts *o);
/* Prepares r (native, its url copied) for o: 0, 1 if the native path
 * cannot take its URL (curl will), or WEFT_ENOMEM. */
int weft__h1_prepare(Http *h, Req *r, const weft_http_opts *o);
/* Starts r, prepared and listed. */
void weft__h1_go(Req *r);
/* r's owner lets go of it, or the loop closes (h->closing): ends
 * whatever r still has going. */
void weft__h1_abandon(Req *r);
/* The reader took bytes: reading resumes below the high-water mark. */
void weft__h1_resume(Req *r);
/* Closes every native connection (the loop is freed). */
void weft__h1_close_all(Http *h);

#endif /* WEFT_IO_HTTP_H */
