/*
 * http1.c - the HTTP client's native HTTP/1.1 path (I/O tier, weft_io.h):
 * plain http:// requests on libuv TCP handles, responses parsed by
 * nodejs's http_parser, connections kept alive in a pool of the loop's.
 * SPDX-License-Identifier: MIT
 *
 * Why a native path: libcurl's multi cost about 88k instructions of
 * the 130k a request of W7 took (callgrind), for its connection cache,
 * its state machine and its callbacks; this path does the same work for
 * a plain http:// URL in about 20k, parsing included. libcurl keeps
 * https://, proxies and what this path does not do (weft__h1_eligible).
 *
 * Why http_parser (libhttp-parser 2.9.4, Debian 12's; llhttp, its
 * successor, is not in Debian 12): callgrind counts 6,770 instructions
 * for it to parse nginx's W7 response (380 bytes: 8 header fields and a
 * body of 128), with callbacks that do nothing, against 2,320 for
 * picohttpparser's phr_parse_response (its upstream source at -O2; the
 * headers only). picohttpparser is cheaper, but Debian ships it only
 * inside libh2o, with no header and a dozen libraries to load with it;
 * http_parser is a library of its own with a stable ABI, parses requests
 * with the same code (the server will), and decodes chunked and
 * close-delimited bodies as they come, across reads, which a head-only
 * parser leaves to its caller.
 *
 * Why raw uv_tcp_t and not weft_tcp_t: weft_tcp_t's reads are polls that
 * a task awaits, a future per read, with lines and turns this path does
 * not need; the client is a state machine driven by libuv's callbacks,
 * as the luv peer of W7 is.
 */
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* What curl sends in the request's Expect for a body larger than this
 * (libcurl 7.88), which makes curl wait for a 100 before the body: such
 * a request, unless the caller removed Expect, goes to curl. */
#define EXPECT_THRESHOLD (1024 * 1024)

typedef struct weft__conn Conn;

/* About Conn: one connection of the native path, from its socket to its
 * close callback. It is in h->busy while it connects or serves r, in
 * h->idle (r NULL) between requests; an idle one is unreferenced (it
 * never holds the loop open) and goes on reading, so that the server
 * closing it, or sending anything, closes it. The read buffer is the
 * Http's. out holds the bytes of a request the kernel did not take at
 * once, until uv_write is done with them (freed in the close callback if
 * that never comes). got: a response byte came for the current request;
 * reused: it is not the connection's first; sent: the request is all
 * written; complete: the parser ended the response (and was paused);
 * failed: a callback ended the request (too_big, no memory). lead and
 * fold: see feed and on_value; trailer: the headers are done, so fields
 * are a chunked body's trailers (left out, as curl's path does). */
struct weft__conn {
  CLink link; /* first member: h->idle or h->busy */
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  http_parser parser;
  Http *h;
  Req *r;
  char *out;
  size_t out_len;
  unsigned char got, reused, sent, writing, complete, failed, idle;
  unsigned char lead, fold, trailer;
  const char *rstart, *rend; /* the bytes being parsed */
  unsigned short port;
  size_t host_len;
  char host[1]; /* allocated to fit */
};

static void fail(Req *r, CURLcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hop_start(Req *r);
static void open_conn(Req *r);
static void connect_next(Req *r);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* ---------------------------------------------------------- the lists */

static void link_add(CLink *head, CLink *l) {
  l->next = head->next;
  l->prev = head;
  head->next->prev = l;
  head->next = l;
}

static void link_del(CLink *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->next = l->prev = l;
}

/* ------------------------------------------------------- connections */

static void on_conn_closed(uv_handle_t *hd) {
  Conn *c = hd->data;
  Http *h = c->h;
  weft__http_free_mem(c->out, c->out_len);
  weft__http_free_mem(c, sizeof *c + c->host_len);
  weft__http_handle_closed(h);
}

/* Closes c, which no request uses any more once this returns. */
static void conn_close(Conn *c) {
  Http *h = c->h;
  if (c->idle) h->nidle--;
  c->idle = 0;
  link_del(&c->link);
  h->nconns--;
  if (c->r) c->r->conn = NULL;
  c->r = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* A new connection to host:port, busy, not yet connecting; NULL out of
 * memory. */
static Conn *conn_new(Http *h, const char *host, unsigned short port) {
  size_t n = strlen(host);
  Conn *c = weft__http_alloc(sizeof *c + n);
  if (c == NULL) return NULL;
  if (uv_tcp_init(h->loop->uv, &c->tcp) != 0) {
    weft__http_free_mem(c, sizeof *c + n);
    return NULL;
  }
  c->h = h;
  c->host_len = n;
  memcpy(c->host, host, n + 1);
  c->port = port;
  c->tcp.data = c->connect.data = c->write.data = c;
  link_add(&h->busy, &c->link);
  h->nconns++;
  h->handles++;
  return c;
}

/* The newest idle connection to r's host and port, now r's; or NULL. */
static Conn *take_idle(Http *h, Req *r) {
  size_t n = strlen(r->host);
  CLink *l;
  for (l = h->idle.next; l != &h->idle; l = l->next) {
    Conn *c = (Conn *)l;
    if (c->port != r->port || c->host_len != n ||
        memcmp(c->host, r->host, n) != 0)
      continue;
    link_del(l);
    link_add(&h->busy, l);
    c->idle = 0;
    h->nidle--;
    c->reused = 1;
    uv_ref((uv_handle_t *)&c->tcp);
    return c;
  }
  return NULL;
}

/* c served its request to the end and may serve another: it waits in
 * the pool, the oldest idle one closing if the pool is full. */
static void conn_keep(Conn *c) {
  Http *h = c->h;
  if (c->r) c->r->conn = NULL;
  c->r = NULL;
  link_del(&c->link);
  link_add(&h->idle, &c->link);
  c->idle = 1;
  h->nidle++;
  uv_unref((uv_handle_t *)&c->tcp);
  if (h->nidle > MAX_IDLE_NATIVE) conn_close((Conn *)h->idle.prev);
}

/* ------------------------------------------------------ the response */

/* Appends to the header block; a failure ends the request (no memory). */
static int head_add(Conn *c, const char *p, size_t n) {
  Buf *b = &c->r->head;
  if (b->p && b->cap - b->len >= n) { /* the usual case, without a call */
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
  }
  if (weft__http_buf_add(b, p, n) == 0) return 0;
  c->r->nomem = 1;
  c->failed = 1;
  http_parser_pause(&c->parser, 1);
  return -1;
}

/* About the header block: the lines of the latest response as curl's
 * header callback gives them ("HTTP/1.1 200 OK", then "Name: value",
 * each ending in CRLF), so that weft_http_header_next reads either
 * path's the same way. r->line says where the block is: 0 empty, 1 in
 * the status line, 2 in a field's name, 3 in its value. */
static int status_line(Conn *c) {
  char buf[16] = "HTTP/1.1 200 ";
  unsigned code = c->parser.status_code; /* http_parser: at most 999 */
  if (c->r->line != 0) return 0;
  c->r->line = 1;
  buf[5] = (char)('0' + c->parser.http_major % 10);
  buf[7] = (char)('0' + c->parser.http_minor % 10);
  buf[9] = (char)('0' + code / 100 % 10);
  buf[10] = (char)('0' + code / 10 % 10);
  buf[11] = (char)('0' + code % 10);
  return head_add(c, buf, 13);
}

static int on_message_begin(http_parser *p) {
  Conn *c = p->data;
  c->trailer = 0;
  c->r->head.len = 0; /* a 1xx's or a redirect's lines go */
  c->r->line = 0;
  return 0;
}

static int on_status(http_parser *p, const char *at, size_t n) {
  Conn *c = p->data;
  if (status_line(c) != 0) return 0;
  head_add(c, at, n);
  return 0;
}

static int on_field(http_parser *p, const char *at, size_t n) {
  Conn *c = p->data;
  Req *r = c->r;
  if (c->trailer) return 0;
  c->fold = 0;
  if (status_line(c) != 0) return 0;
  if (r->line != 2 && head_add(c, "\r\n", 2) != 0) return 0;
  r->line = 2;
  head_add(c, at, n);
  return 0;
}

/* A value's pieces. http_parser passes a folded value (obsolete line
 * folding: a line that starts with a space or a tab continues the one
 * before) as pieces that end before the line break and start with the
 * next line's blanks; as weft_http_header_next promises, the break and
 * the blanks around it become one space. A value is also cut where a
 * read ends. fold: 1, the last piece ended at a line break; 2, at the end
 * of a read, so that a piece starting past the start of the next read
 * (after the line break) continues a fold, one starting right there the
 * same line. */
static int on_value(http_parser *p, const char *at, size_t n) {
  Conn *c = p->data;
  Req *r = c->r;
  int fold = c->fold == 1 || (c->fold == 2 && at != c->rstart);
  if (c->trailer) return 0;
  if (at + n < c->rend)
    c->fold = at[n] == '\r' || at[n] == '\n';
  else
    c->fold = 2;
  if (r->line == 2) {
    if (head_add(c, ": ", 2) != 0) return 0;
    fold = 0;
  }
  r->line = 3;
  if (fold) {
    Buf *h = &r->head;
    while (n && (at[0] == ' ' || at[0] == '\t')) at++, n--;
    if (n == 0) {
      c->fold = 1; /* a blank line of a fold: the next one goes on */
      return 0;
    }
    while (h->len && (h->p[h->len - 1] == ' ' || h->p[h->len - 1] == '\t'))
      h->len--;
    if (head_add(c, " ", 1) != 0) return 0;
  }
  head_add(c, at, n);
  return 0;
}

/* The value of r's response header name (n bytes, lowercase), trimmed,
 * in *value; 0 if there is none. */
static int find_header(const Req *r, const char *name, size_t n,
                       weft_span_t *value) {
  weft_span_t k;
  size_t pos = 0;
  while (weft_http_header_next(r, &pos, &k, value))
    if (k.len == n && strncasecmp(k.ptr, name, n) == 0) return 1;
  return 0;
}

/* The headers of a response are in. A 1xx is skipped (the parser ends it
 * without a body); a redirect to follow is read to its end and dropped;
 * the final response's headers are r's. 1 tells the parser that no body
 * follows: after HEAD, 204 and 304 (http_parser would read the length a
 * 304's Content-Length states, RFC 9110 says there is none). */
static int on_headers_complete(http_parser *p) {
  Conn *c = p->data;
  Req *r = c->r;
  weft_span_t loc;
  unsigned status = p->status_code;
  int none = r->head_only || status == 204 || status == 304;
  if (status_line(c) != 0 || (r->line > 1 && head_add(c, "\r\n", 2) != 0))
    return 0;
  c->trailer = 1;
  if (status < 200) return 0;
  r->headers_done = 1; /* (for find_header; cleared for a redirect) */
  r->redirect = r->follow && status / 100 == 3 && status != 304 &&
                find_header(r, "location", 8, &loc);
  if (r->redirect) {
    r->headers_done = 0;
    return none;
  }
  r->status = status; /* (the lines are unfolded already: see on_value) */
  if (r->max_body >= 0 && !(p->flags & F_CHUNKED) &&
      p->content_length != ULLONG_MAX && !none &&
      p->content_length > (uint64_t)r->max_body) {
    r->too_big = 1; /* as curl: refused before the body comes */
    c->failed = 1;
    http_parser_pause(p, 1);
    return 0;
  }
  if (r->stream) weft__http_wake(r);
  return none;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  Conn *c = p->data;
  Req *r = c->r;
  if (r->redirect) return 0; /* a redirect's body is dropped */
  if (r->max_body >= 0 && r->received + (curl_off_t)n > r->max_body) {
    r->too_big = 1;
    c->failed = 1;
    http_parser_pause(p, 1);
    return 0;
  }
  if (weft__http_buf_add(&r->body, at, n) != 0) {
    r->nomem = 1;
    c->failed = 1;
    http_parser_pause(p, 1);
    return 0;
  }
  r->received += (curl_off_t)n;
  if (r->stream) {
    weft__http_wake(r);
    if (r->body.len >= HIGH_WATER) r->paused = 1; /* see after_read */
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  Conn *c = p->data;
  if (p->status_code < 200) return 0; /* a 1xx: the response follows */
  c->complete = 1;
  http_parser_pause(p, 1); /* ends the parse: completion follows it */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------ completion */

/* r leaves its connection (closed unless it was kept) and its lookup. */
static void let_go(Req *r) {
  if (r->conn) conn_close(r->conn);
  if (r->dns) {
    weft_waiter_remove(&r->dnsw);
    weft_call_cancel(r->dns);
    weft_call_release(r->dns);
    r->dns = NULL;
  }
}

/* Ends r: code (CURLE_OK, or a failure with its text made from fmt). r
 * leaves its connection (closed unless it was kept), and its waiter
 * wakes. */
static void finish(Req *r, CURLcode code) {
  let_go(r);
  r->result = code;
  if (!r->headers_done) {
    r->status = 0;
    r->headers_done = 1; /* as curl's path: a failed request's status */
    r->head.len = 0;
  }
  r->done = 1;
  weft__http_unlist(r);
  weft__http_wake(r);
}

static void fail(Req *r, CURLcode code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof r->err, fmt, ap);
  va_end(ap);
  finish(r, code);
}

/* A failure whose reason is a flag (too_big, nomem): its text is made
 * from the flag (see reason in http.c). */
static void fail_flagged(Req *r) {
  snprintf(r->err, sizeof r->err, "%s",
           r->too_big ? "the body exceeds max_body" : "not enough memory");
  finish(r, CURLE_WRITE_ERROR);
}

/* "Connection refused" for code: libuv's text with a capital. */
static const char *why(int code, char *buf, size_t size) {
  weft_io_error_text(buf, size, NULL, code);
  return buf;
}

/* The URL of a redirect's Location, resolved against cur, into a new
 * allocation (*size bytes); NULL out of memory. */
static char *resolve(const char *cur, const char *loc, size_t n, size_t *size) {
  const char *rest = strstr(cur, "://"), *end;
  size_t keep;
  char *u;
  if ((n >= 7 && strncasecmp(loc, "http://", 7) == 0) ||
      (n >= 8 && strncasecmp(loc, "https://", 8) == 0))
    keep = 0;
  else if (n >= 2 && loc[0] == '/' && loc[1] == '/')
    keep = (size_t)(rest - cur) + 1; /* "http:" */
  else {
    rest += 3;
    end = rest + strcspn(rest, "/?#");
    if (n > 0 && loc[0] == '/') {
      keep = (size_t)(end - cur); /* the origin */
    } else {                      /* relative to the path's directory */
      const char *q = end + strcspn(end, "?#"), *slash = end;
      const char *s;
      for (s = end; s < q; s++)
        if (*s == '/') slash = s + 1;
      keep = (size_t)(slash - cur);
      if (slash == end) { /* no path: "/" */
        *size = keep + 1 + n + 1;
        if ((u = weft__http_alloc(*size)) == NULL) return NULL;
        memcpy(u, cur, keep);
        u[keep] = '/';
        memcpy(u + keep + 1, loc, n);
        return u;
      }
    }
  }
  *size = keep + n + 1;
  if ((u = weft__http_alloc(*size)) == NULL) return NULL;
  memcpy(u, cur, keep);
  memcpy(u + keep, loc, n);
  return u;
}

static int set_target(Req *r, const char *url);

/* Hands r to curl from url on (a redirect to https://), with the options
 * rebuilt from its spec. */
static int hand_to_curl(Req *r, const char *url) {
  const char *spec = r->url + strlen(r->url) + 1, *p;
  const char *lines = spec + r->method_len + 1, *end = lines + r->lines_len;
  const char **list;
  weft_http_opts o;
  size_t n = 1, size;
  int rc;
  for (p = lines; p < end; p += strlen(p) + 1) n++;
  size = n * sizeof *list;
  if ((list = weft__http_alloc(size)) == NULL) return WEFT_ENOMEM;
  for (n = 0, p = lines; p < end; p += strlen(p) + 1) list[n++] = p;
  memset(&o, 0, sizeof o);
  o.url = url;
  o.method = r->body_dropped ? "GET" : spec;
  o.headers = list;
  if (!r->body_dropped && r->body_len > 0) {
    o.body = end;
    o.body_len = r->body_len - 1;
  }
  if (r->ca_len) o.ca_file = end + (r->body_len ? r->body_len - 1 : 0);
  o.insecure = r->insecure;
  o.max_body = r->max_body;
  o.follow_redirects = 1;
  weft__h1_abandon(r); /* the native state; r stays listed */
  r->native = 0;
  rc = weft__http_to_curl(r, &o, url);
  weft__http_free_mem(list, size);
  return rc;
}

/* Follows r's redirect: its next hop, on the connection just kept if it
 * goes to the same place. */
static void redirect(Req *r) {
  weft_span_t loc;
  const char *cur = r->final_url ? r->final_url : r->url;
  size_t size;
  char *u;
  int rc;
  r->headers_done = 1; /* (for find_header) */
  find_header(r, "location", 8, &loc);
  r->headers_done = 0;
  r->redirect = 0;
  if (r->hops >= MAX_REDIRECTS) {
    fail(r, CURLE_TOO_MANY_REDIRECTS, "Maximum (%d) redirects followed",
         MAX_REDIRECTS);
    return;
  }
  r->hops++;
  if ((u = resolve(cur, loc.ptr, loc.len, &size)) == NULL) {
    r->nomem = 1;
    fail_flagged(r);
    return;
  }
  if (r->final_url) weft__http_free_mem(r->final_url, strlen(r->final_url) + 1);
  r->final_url = u;
  /* 301, 302 and 303 turn a POST into a GET without its body, as curl's
   * default does. */
  if ((r->status == 301 || r->status == 302 || r->status == 303) &&
      r->method_len == 4 && memcmp(r->url + strlen(r->url) + 1, "POST", 4) == 0)
    r->body_dropped = 1;
  r->head.len = 0;
  r->body.len = 0;
  r->received = 0;
  /* https://, or a URL this path does not take: curl goes on from it. */
  rc = strncasecmp(u, "http:", 5) == 0 ? set_target(r, u) : -1;
  if (rc == -1) rc = hand_to_curl(r, u);
  if (rc == -2 || rc == WEFT_ENOMEM) {
    r->nomem = 1;
    fail_flagged(r);
  } else if (rc != 0) {
    fail(r, CURLE_FAILED_INIT, "cannot follow the redirect to %s: %s", u,
         weft_io_err_name(rc));
  } else if (r->native) {
    hop_start(r);
  }
}

/* The parser ended c's response; extra: bytes came after it. */
static void complete(Conn *c, int extra) {
  Req *r = c->r;
  int keep =
      !extra && c->sent && http_should_keep_alive(&c->parser) && !c->h->closing;
  r->status = c->parser.status_code;
  if (keep)
    conn_keep(c);
  else
    conn_close(c);
  if (r->redirect)
    redirect(r);
  else
    finish(r, CURLE_OK);
}

/* The connection failed before the response's end: err is a read's,
 * write's or the end of the stream (UV_EOF). A request sent on a kept
 * connection that got no byte of an answer goes once more on a new one,
 * if its method is idempotent: the server had closed the connection. */
static void conn_failed(Conn *c, int err) {
  Req *r = c->r;
  char buf[128];
  if (!c->got && c->reused && r->idempotent && !r->retried) {
    r->retried = 1;
    conn_close(c);
    open_conn(r);
    return;
  }
  if (!c->got && err == UV_EOF)
    fail(r, CURLE_GOT_NOTHING, "Empty reply from server");
  else if (!c->got && !c->sent)
    fail(r, CURLE_SEND_ERROR, "Send failure: %s", why(err, buf, sizeof buf));
  else if (!c->got || err != UV_EOF)
    fail(r, CURLE_RECV_ERROR, "Recv failure: %s", why(err, buf, sizeof buf));
  else if (!r->headers_done && !r->redirect)
    fail(r, CURLE_WEIRD_SERVER_REPLY,
         "Connection closed in the response's headers");
  else if (!(c->parser.flags & F_CHUNKED) &&
           c->parser.content_length != ULLONG_MAX)
    fail(r, CURLE_PARTIAL_FILE,
         "transfer closed with %llu bytes remaining to read",
         (unsigned long long)c->parser.content_length);
  else
    fail(r, CURLE_PARTIAL_FILE,
         "transfer closed with outstanding read data remaining");
}

/* The parse stopped: the response ended (extra: bytes came after it),
 * a callback failed it, or the response is malformed. */
static void after_parse(Conn *c, int extra) {
  Req *r = c->r;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (c->complete)
    complete(c, extra);
  else if (c->failed)
    fail_flagged(r);
  else
    fail(r, CURLE_WEIRD_SERVER_REPLY, "Weird server reply (%s)",
         http_errno_description(e));
}

static void on_alloc(uv_handle_t *hd, size_t size, uv_buf_t *buf) {
  Conn *c = hd->data;
  (void)size;
  buf->base = c->h->rbuf; /* each read is parsed before the next one */
  buf->len = NATIVE_RBUF;
}

/* Parses n bytes at p. 0 if the parse goes on, else 1 with the response
 * ended or failed (after_parse told). */
static int parse(Conn *c, const char *p, size_t n, int more) {
  size_t used;
  c->rstart = p;
  c->rend = p + n;
  used = http_parser_execute(&c->parser, &settings, p, n);
  if (HTTP_PARSER_ERRNO(&c->parser) == HPE_OK && !c->complete && !c->failed)
    return 0;
  after_parse(c, used < n || more);
  return 1;
}

/* Parses a read. A folded first header line (one starting with a space
 * or a tab right after the status line: it continues no field, RFC 9112,
 * 2.2) is dropped here, as weft's curl path does: http_parser would
 * refuse the response. lead: 0 in the status line, 1 at the start of a
 * header line right after it (or after a dropped one), 2 in a dropped
 * line, 3 past all that. */
static void feed(Conn *c, const char *p, size_t n) {
  const char *s = p, *end = p + n, *keep = p, *nl;
  while (s < end && c->lead < 3) {
    if (c->lead == 1) {
      if (*s != ' ' && *s != '\t') {
        c->lead = 3;
        break;
      }
      if (s > keep && parse(c, keep, (size_t)(s - keep), 1)) return;
      c->lead = 2;
    }
    if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL) {
      s = end;
      if (c->lead == 2) keep = end;
      break;
    }
    s = nl + 1;
    if (c->lead == 2) keep = s;
    c->lead = 1;
  }
  if (end > keep && parse(c, keep, (size_t)(end - keep), 0)) return;
  if (c->r->paused) /* a stream's reader lags: reading waits for it */
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  Conn *c = s->data;
  if (n == 0) return;
  if (c->r == NULL) { /* idle: the server closed it, or sent junk */
    conn_close(c);
    return;
  }
  if (n < 0) {
    if (n == UV_EOF && c->got) {
      http_parser_execute(&c->parser, &settings, NULL, 0);
      if (c->complete) {
        complete(c, 0);
        return;
      }
    }
    conn_failed(c, (int)n);
    return;
  }
  c->got = 1;
  feed(c, buf->base, (size_t)n);
}

/* -------------------------------------------------------- the request */

static void on_written(uv_write_t *w, int status) {
  Conn *c = w->data;
  c->writing = 0;
  weft__http_free_mem(c->out, c->out_len);
  c->out = NULL;
  c->out_len = 0;
  if (status == UV_ECANCELED || c->r == NULL) return; /* closing */
  if (status == 0)
    c->sent = 1;
  else if (!c->got) /* an answer that came first wins */
    conn_failed(c, status);
}

static int build(Req *r, Buf *b);

/* Sends r's request on c (connected): what the kernel takes at once, the
 * rest through uv_write. The request is written into the Http's buffer
 * for this: a request always goes out at once, or its rest is copied. */
static void send_request(Conn *c) {
  Req *r = c->r;
  Buf *out = &c->h->wbuf;
  uv_buf_t b;
  int n;
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  c->got = c->sent = c->complete = c->failed = c->lead = c->fold = 0;
  if (build(r, out) != 0) {
    r->nomem = 1;
    fail_flagged(r);
    return;
  }
  b = uv_buf_init(out->p, (unsigned)out->len);
  n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)out->len) {
    c->sent = 1;
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    conn_failed(c, n);
    return;
  }
  if (n < 0) n = 0;
  c->out_len = out->len - (size_t)n;
  if ((c->out = weft__http_alloc(c->out_len)) == NULL) {
    c->out_len = 0;
    r->nomem = 1;
    fail_flagged(r);
    return;
  }
  memcpy(c->out, out->p + n, c->out_len);
  b = uv_buf_init(c->out, (unsigned)c->out_len);
  c->writing = 1;
  if ((n = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written)))
    conn_failed(c, n);
}

static void on_connect(uv_connect_t *req, int status) {
  Conn *c = req->data;
  Req *r = c->r;
  char buf[128];
  if (status == UV_ECANCELED || r == NULL) return; /* closing */
  if (status < 0) {
    conn_close(c);
    if (r->addrs.type == WEFT_VARRAY && r->next_addr < r->addrs.u.a.len) {
      connect_next(r);
      return;
    }
    fail(r, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %u: %s",
         r->host, r->port, why(status, buf, sizeof buf));
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    fail(r, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %u", r->host,
         r->port);
    return;
  }
  send_request(c);
}

/* Opens a new connection for r to its next address (addrs, or the host
 * itself when it is numeric). */
static void connect_next(Req *r) {
  struct sockaddr_storage sa;
  const char *ip = r->host;
  char buf[128];
  Conn *c;
  int rc;
  if (r->addrs.type == WEFT_VARRAY) {
    if (r->next_addr >= r->addrs.u.a.len) {
      fail(r, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %u", r->host,
           r->port);
      return;
    }
    ip = r->addrs.u.a.items[r->next_addr++].u.s.ptr;
  }
  if (uv_ip4_addr(ip, r->port, (struct sockaddr_in *)&sa) != 0 &&
      uv_ip6_addr(ip, r->port, (struct sockaddr_in6 *)&sa) != 0) {
    fail(r, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s", r->host);
    return;
  }
  if ((c = conn_new(r->h, r->host, r->port)) == NULL) {
    r->nomem = 1;
    fail_flagged(r);
    return;
  }
  c->r = r;
  r->conn = c;
  rc = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&sa, on_connect);
  if (rc != 0) {
    conn_close(c);
    fail(r, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %u: %s",
         r->host, r->port, why(rc, buf, sizeof buf));
  }
}

/* weft's resolver answered for r's host. */
static void on_resolved(weft_waiter_t *w, int status) {
  Req *r = w->data;
  weft_call_t *call = r->dns;
  const weft_value_t *v = weft_call_result(call);
  (void)status;
  r->dns = NULL;
  weft_value_free(&r->addrs);
  if (v == NULL || v->type != WEFT_VARRAY || v->u.a.len == 0 ||
      weft_value_copy(&r->addrs, v) != 0) {
    weft_call_release(call);
    fail(r, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s", r->host);
    return;
  }
  weft_call_release(call);
  r->next_addr = 0;
  connect_next(r);
}

/* Numeric hosts connect at once; names go through weft's resolver. */
static int is_numeric(const char *host) {
  unsigned char a[16];
  return uv_inet_pton(AF_INET, host, a) == 0 ||
         uv_inet_pton(AF_INET6, host, a) == 0;
}

/* The decimal digits of v, written to end backwards: their start. */
static char *digits(char *end, uint64_t v) {
  do *--end = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  return end;
}

/* Writes r's request for its current hop into b: 0 or -1 (memory).
 * Host and Accept as curl sends them, then the caller's lines ("Name:"
 * removes a default, "Name;" sends it empty, a blank value sends
 * nothing, as curl does), then, with a body, Content-Length and curl's
 * Content-Type for posted fields. */
static int build(Req *r, Buf *b) {
  const char *spec = r->url + strlen(r->url) + 1;
  const char *lines = spec + r->method_len + 1, *p;
  const char *body = lines + r->lines_len;
  int host = 1, accept = 1, clen = 1, ctype = 1;
  char num[24], *d;
  b->len = 0;
  for (p = lines; p < body; p += strlen(p) + 1) {
    size_t k = strcspn(p, ":;");
    if (k == 4 && strncasecmp(p, "host", 4) == 0) host = 0;
    if (k == 6 && strncasecmp(p, "accept", 6) == 0) accept = 0;
    if (k == 14 && strncasecmp(p, "content-length", 14) == 0) clen = 0;
    if (k == 12 && strncasecmp(p, "content-type", 12) == 0) ctype = 0;
  }
  if (weft__http_buf_add(b, spec, r->method_len) ||
      weft__http_buf_add(b, " ", 1) ||
      weft__http_buf_add(b, r->path, strlen(r->path)) ||
      weft__http_buf_add(b, " HTTP/1.1\r\n", 11))
    return -1;
  if (host) { /* "Host: name[:port]", an IPv6 address in brackets */
    int v6 = strchr(r->host, ':') != NULL;
    d = digits(num + sizeof num, r->port);
    *--d = ':';
    if (weft__http_buf_add(b, v6 ? "Host: [" : "Host: ", v6 ? 7 : 6) ||
        weft__http_buf_add(b, r->host, strlen(r->host)) ||
        (v6 && weft__http_buf_add(b, "]", 1)) ||
        (r->port != 80 &&
         weft__http_buf_add(b, d, (size_t)(num + sizeof num - d))) ||
        weft__http_buf_add(b, "\r\n", 2))
      return -1;
  }
  if (accept && weft__http_buf_add(b, "Accept: */*\r\n", 13)) return -1;
  for (p = lines; p < body; p += strlen(p) + 1) {
    size_t k = strcspn(p, ":;"), len = strlen(p), v = k + 1;
    while (v < len && (p[v] == ' ' || p[v] == '\t')) v++;
    if (p[k] == ';') {
      if (weft__http_buf_add(b, p, k) || weft__http_buf_add(b, ":\r\n", 3))
        return -1;
    } else if (v < len) {
      if (weft__http_buf_add(b, p, len) || weft__http_buf_add(b, "\r\n", 2))
        return -1;
    }
  }
  if (r->body_len > 0 && !r->body_dropped) {
    size_t blen = r->body_len - 1; /* body_len counts one more: see start */
    d = digits(num + sizeof num, blen);
    if (clen && (weft__http_buf_add(b, "Content-Length: ", 16) ||
                 weft__http_buf_add(b, d, (size_t)(num + sizeof num - d)) ||
                 weft__http_buf_add(b, "\r\n", 2)))
      return -1;
    if (ctype && weft__http_buf_add(b,
                                    "Content-Type: application/"
                                    "x-www-form-urlencoded\r\n",
                                    49))
      return -1;
    if (weft__http_buf_add(b, "\r\n", 2) ||
        (blen && weft__http_buf_add(b, body, blen)))
      return -1;
    return 0;
  }
  return weft__http_buf_add(b, "\r\n", 2);
}

/* Starts r's current hop: its request on a kept connection to the same
 * place, or on a new one. */
static void hop_start(Req *r) {
  Conn *c;
  r->retried = 0;
  r->line = 0;
  if ((c = take_idle(r->h, r)) != NULL) {
    c->r = r;
    r->conn = c;
    send_request(c);
    return;
  }
  open_conn(r);
}

/* Opens a new connection for r: at once to a numeric host, after weft's
 * resolver answered for a name. */
static void open_conn(Req *r) {
  weft_value_free(&r->addrs);
  if (is_numeric(r->host)) {
    connect_next(r);
    return;
  }
  if (weft_dns_resolve(r->h->loop, r->host, &r->dns) != 0) {
    r->nomem = 1;
    fail_flagged(r);
    return;
  }
  weft_waiter_init(&r->dnsw, on_resolved, r);
  if (weft_future_on(weft_call_future(r->dns), &r->dnsw) != 0)
    on_resolved(&r->dnsw, 0); /* settled already */
}

/* ------------------------------------------------------------ the URL */

/* Parses url (http://) into r's host, port and path: 0, or -1 if this
 * path cannot take it (curl will) or out of memory (-2). */
static int parse_url(const char *url, struct http_parser_url *u) {
  size_t n = strlen(url);
  http_parser_url_init(u);
  if (http_parser_parse_url(url, n, 0, u) != 0) return -1;
  if (!(u->field_set & (1 << UF_SCHEMA)) || !(u->field_set & (1 << UF_HOST)))
    return -1;
  if (u->field_set & (1 << UF_USERINFO)) return -1; /* credentials: curl */
  if (u->field_data[UF_SCHEMA].len != 4 ||
      strncasecmp(url + u->field_data[UF_SCHEMA].off, "http", 4) != 0)
    return -1;
  if (u->field_data[UF_HOST].len == 0) return -1;
  return 0;
}

static int set_target(Req *r, const char *url) {
  struct http_parser_url u;
  size_t hl, pl, ql, size;
  char *t;
  if (parse_url(url, &u) != 0) return -1;
  hl = u.field_data[UF_HOST].len;
  pl = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].len : 0;
  ql = (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].len + 1 : 0;
  size = hl + 1 + (pl ? pl : 1) + ql + 1;
  if ((t = weft__http_alloc(size)) == NULL) return -2;
  memcpy(t, url + u.field_data[UF_HOST].off, hl);
  r->path = t + hl + 1;
  if (pl)
    memcpy(r->path, url + u.field_data[UF_PATH].off, pl);
  else
    r->path[0] = '/';
  if (ql) /* "?" and the query */
    memcpy(r->path + (pl ? pl : 1), url + u.field_data[UF_QUERY].off - 1, ql);
  weft__http_free_mem(r->target, r->target_size);
  r->target = r->host = t;
  r->target_size = size;
  r->port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
  return 0;
}

/* ------------------------------------------------------- entry points */

/* Whether any of o's lines is name with a value (not "Name:"). */
static int has_line(const weft_http_opts *o, const char *name, size_t n) {
  const char *const *l;
  for (l = o->headers; l && *l; l++) {
    const char *p = *l + n;
    if (strncasecmp(*l, name, n) != 0 || (*p != ':' && *p != ';')) continue;
    if (*p == ';') return 1;
    for (p++; *p == ' ' || *p == '\t'; p++) {
    }
    if (*p) return 1;
  }
  return 0;
}

static int has_removal(const weft_http_opts *o, const char *name, size_t n) {
  const char *const *l;
  for (l = o->headers; l && *l; l++)
    if (strncasecmp(*l, name, n) == 0 && (*l)[n] == ':' &&
        !has_line(o, name, n))
      return 1;
  return 0;
}

int weft__h1_eligible(Http *h, const weft_http_opts *o) {
  if (h->proxy || strncasecmp(o->url, "http:", 5) != 0) return 0;
  /* An Expect of the caller's, or curl's own for a large body (waiting
   * for a 100 before the body), and a Transfer-Encoding (curl then
   * sends the body in chunks) are curl's. */
  if (has_line(o, "expect", 6) || has_line(o, "transfer-encoding", 17))
    return 0;
  if (o->body && o->body_len > EXPECT_THRESHOLD && !has_removal(o, "expect", 6))
    return 0;
  return 1;
}

size_t weft__h1_spec_size(const weft_http_opts *o) {
  const char *const *l;
  const char *m = o->method ? o->method : o->body ? "POST" : "GET";
  size_t n = strlen(m) + 1 + 1 + (o->body ? o->body_len : 0);
  for (l = o->headers; l && *l; l++) n += strlen(*l) + 1;
  if (o->ca_file) n += strlen(o->ca_file) + 1; /* for a redirect to TLS */
  return n;
}

int weft__h1_prepare(Http *h, Req *r, const weft_http_opts *o) {
  const char *const *l;
  const char *m = o->method ? o->method : o->body ? "POST" : "GET";
  char *spec = r->url + strlen(r->url) + 1, *p;
  if (h->rbuf == NULL && (h->rbuf = weft__http_alloc(NATIVE_RBUF)) == NULL)
    return WEFT_ENOMEM;
  r->method_len = strlen(m);
  memcpy(spec, m, r->method_len + 1);
  p = spec + r->method_len + 1;
  for (l = o->headers; l && *l; l++) {
    size_t n = strlen(*l) + 1;
    memcpy(p, *l, n);
    p += n;
  }
  r->lines_len = (size_t)(p - (spec + r->method_len + 1));
  /* body_len is the body's length plus one, 0 without a body: an empty
   * body still sends Content-Length: 0. */
  if (o->body) {
    if (o->body_len) memcpy(p, o->body, o->body_len);
    r->body_len = o->body_len + 1;
    p += o->body_len;
  }
  if (o->ca_file) {
    r->ca_len = strlen(o->ca_file) + 1;
    memcpy(p, o->ca_file, r->ca_len);
  }
  r->insecure = o->insecure != 0;
  r->head_only = strcmp(m, "HEAD") == 0;
  r->idempotent = r->head_only || !strcmp(m, "GET") || !strcmp(m, "PUT") ||
                  !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS") ||
                  !strcmp(m, "TRACE");
  switch (set_target(r, r->url)) {
  case 0:
    return 0;
  case -1:
    return 1;
  default:
    return WEFT_ENOMEM;
  }
}

void weft__h1_go(Req *r) { hop_start(r); }

/* (r stays listed: its callers unlist it, or hand it to curl.) */
void weft__h1_abandon(Req *r) {
  let_go(r);
  weft_value_free(&r->addrs);
  weft__http_free_mem(r->target, r->target_size);
  r->target = r->host = r->path = NULL;
}

void weft__h1_resume(Req *r) {
  if (r->conn && !r->done)
    uv_read_start((uv_stream_t *)&r->conn->tcp, on_alloc, on_read);
}

void weft__h1_close_all(Http *h) {
  while (h->idle.next != &h->idle) conn_close((Conn *)h->idle.next);
  while (h->busy.next != &h->busy) conn_close((Conn *)h->busy.next);
}
