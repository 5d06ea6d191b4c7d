/*
 * tcp.c - TCP connections and servers on libuv (I/O tier, weft_io.h):
 * reads and writes as polls that push back on the peer, the line reader
 * with its limit, and listening with the accept path.
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "io.h"
#include "weft_io.h"
/* host.h: the loop's uv_loop_t, its list of open objects (closed when it
 * is freed) and the value allocator. */
#include "host.h"

#define READ_ROOM (64 * 1024)  /* free room offered to each socket read */
#define KEEP_MAX (1024 * 1024) /* an emptied buffer above this is freed */
#define NAME_MAX_ 320          /* "host:port" of a peer, for messages */
#define LINE_MAX_DEFAULT (1024 * 1024) /* longest line a read takes */

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

/* "host:port", or "[v6]:port", of a socket address. */
static void format_addr(const struct sockaddr *sa, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof ip);
    snprintf(out, size, "[%s]:%d", ip, ntohs(a->sin6_port));
    return;
  }
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  }
  snprintf(out, size, "%s:%d", ip, port);
}

/* A numeric address and a port into ss; 0 or UV_EINVAL. */
static int parse_addr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (port < 0 || port > 65535) return UV_EINVAL;
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

/* -------------------------------------------------------- connections */

/* About weft_tcp_t (see weft_io.h):
 * - Its memory goes when both its owner let go (weft_tcp_free: owned
 *   cleared) and libuv closed the handle (open cleared), whichever is
 *   last; until then a closed connection answers WEFT_ECLOSED.
 * - Reading: buf[off, len) holds bytes received and not consumed (cap
 *   allocated); lent says how many bytes before off a read handed out
 *   (they stay until the next call). The socket is read (reading) only
 *   while a reader waits for more than the buffer holds: rmode and need
 *   say what for, and each read offers READ_ROOM bytes of room. rerr is 0
 *   while the stream is open, then UV_EOF or the error that ended it; the
 *   buffered bytes are still handed out first. No newline lies in
 *   [off, scan). A read up to a pattern (weft_tcp_read_until) keeps a copy
 *   of it in pat[0, plen) (pcap allocated) and whether to hand it out
 *   (incl); no match of it begins in [off, off + umiss), and found says
 *   whether the last answer ended at one.
 * - Writing: one write, shutdown or connect at a time, waiting on wfut;
 *   werr is its outcome.
 * - rfut and wfut are re-armed before each wait; a close settles both.
 * - Once closing, the callbacks libuv still makes (a cancelled connect or
 *   write) touch nothing but the struct. */
struct weft_tcp_s {
  weft__closer closer;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  weft_loop_t *loop;
  weft_future_t rfut, wfut;
  char *buf, *pat;
  size_t off, len, cap, scan, need, max_line, plen, pcap, umiss;
  int rmode, rerr, reading, werr, writing, connecting, found, incl;
  weft_task_t *reader, *writer;
  int closing, open, owned;
  char name[NAME_MAX_];
};

static void tcp_release(weft_tcp_t *c) {
  if (c->open || c->owned) return;
  if (c->buf) weft__valloc(c->buf, c->cap, 0);
  if (c->pat) weft__valloc(c->pat, c->pcap, 0);
  weft__valloc(c, sizeof *c, 0);
}

static void on_tcp_closed(uv_handle_t *h) {
  weft_tcp_t *c = h->data;
  c->open = 0;
  tcp_release(c);
}

void weft_tcp_close(weft_tcp_t *c) {
  if (c == NULL || c->closing) return;
  c->closing = 1;
  weft__loop_untrack(&c->closer);
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
  if (c->buf) weft__valloc(c->buf, c->cap, 0);
  c->buf = NULL;
  c->off = c->len = c->cap = c->scan = c->umiss = 0;
  c->reader = c->writer = NULL;
  wake(c->loop, &c->rfut);
  wake(c->loop, &c->wfut);
}

static void tcp_closer(weft__closer *cl) {
  weft_tcp_close((weft_tcp_t *)((char *)cl - offsetof(weft_tcp_t, closer)));
}

void weft_tcp_free(weft_tcp_t *c) {
  if (c == NULL) return;
  c->owned = 0;
  if (c->closing) {
    tcp_release(c);
    return;
  }
  weft_tcp_close(c);
}

/* A new connection on loop, its handle open (no socket yet). */
static weft_tcp_t *tcp_new(weft_loop_t *loop) {
  weft_tcp_t *c = xalloc(sizeof *c);
  if (c == NULL) return NULL;
  uv_tcp_init(loop->uv, &c->tcp); /* no socket yet: cannot fail */
  c->tcp.data = c->creq.data = c->wreq.data = c->sreq.data = c;
  c->loop = loop;
  c->open = c->owned = 1;
  c->max_line = LINE_MAX_DEFAULT;
  weft_future_init(&c->rfut);
  weft_future_init(&c->wfut);
  c->closer.close = tcp_closer;
  weft__loop_track(loop, &c->closer);
  return c;
}

int weft_tcp_closed(const weft_tcp_t *c) { return c == NULL || c->closing; }
const char *weft_tcp_name(const weft_tcp_t *c) { return c ? c->name : "?"; }
weft_task_t *weft_tcp_reader(const weft_tcp_t *c) {
  return c ? c->reader : NULL;
}
weft_task_t *weft_tcp_writer(const weft_tcp_t *c) {
  return c ? c->writer : NULL;
}

void weft_tcp_set_name(weft_tcp_t *c, const char *name) {
  if (c == NULL) return;
  snprintf(c->name, sizeof c->name, "%s", name ? name : "?");
}

void weft_tcp_set_max_line(weft_tcp_t *c, size_t max) {
  if (c == NULL) return;
  c->max_line = max ? max : SIZE_MAX;
}

size_t weft_tcp_max_line(const weft_tcp_t *c) { return c->max_line; }

int weft_tcp_addr(weft_tcp_t *c, int peer, char *ip, size_t size,
                  int *port) {
  struct sockaddr_storage ss;
  int len = sizeof ss, r;
  if (c == NULL || ip == NULL || port == NULL || size < INET6_ADDRSTRLEN)
    return WEFT_EINVAL;
  if (c->closing) return WEFT_ECLOSED;
  r = peer ? uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len)
           : uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len);
  if (r != 0) return r;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, size);
    *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, size);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  return 0;
}

/* Whether task t still holds its turn: nobody asked to cancel it, and
 * it has not ended (a task must give its turn back before it ends; see
 * weft_tcp_read_abandon). */
static int busy(const weft_task_t *t) {
  return t != NULL && !(t->flags & (WEFT_TASK_CANCEL | WEFT_TASK_DONE));
}

/* ------------------------------------------------------------- reading */

/* The first newline in the buffer, or NULL; remembers how far it looked. */
static const char *find_nl(weft_tcp_t *c) {
  const char *nl;
  if (c->scan < c->off) c->scan = c->off;
  nl = memchr(c->buf + c->scan, '\n', c->len - c->scan);
  c->scan = nl ? (size_t)(nl - c->buf) : c->len;
  return nl;
}

/* Looks for the pattern in the buffer: 1 with *at its offset from off,
 * or 0 with *at how many bytes from off no match can begin in (all but
 * the longest tail that begins the pattern). */
static int find_pat(weft_tcp_t *c, size_t *at) {
  size_t avail = c->len - c->off, from = c->umiss, k;
  const char *b = c->buf + c->off, *p;
  if (avail >= c->plen && from <= avail - c->plen) {
    p = memmem(b + from, avail - from, c->pat, c->plen);
    if (p != NULL) {
      *at = c->umiss = (size_t)(p - b);
      return 1;
    }
  }
  k = avail >= c->plen ? avail - c->plen + 1 : 0;
  if (k < from) k = from;
  while (k < avail && memcmp(b + k, c->pat, avail - k) != 0) k++;
  *at = c->umiss = k;
  return 0;
}

/* Whether the buffer can answer a read of mode and need now. */
static int satisfied(weft_tcp_t *c, int mode, size_t need) {
  size_t avail = c->len - c->off, at;
  switch (mode) {
  case WEFT_READ_SOME: return avail > 0;
  case WEFT_READ_EXACT: return avail >= need;
  case WEFT_READ_LINE: /* need: the longest line */
  case WEFT_READ_LINE_KEEP:
    return avail > 0 && (find_nl(c) != NULL || avail > need);
  case WEFT_READ_UNTIL: /* need: the most bytes to hand out, 0: all */
    return find_pat(c, &at) || (need > 0 && at >= need);
  default: return 0; /* WEFT_READ_ALL: only the end answers */
  }
}

/* Makes room for at least room more bytes after len: first by moving the
 * unread bytes to the front, then by growing. 0 or UV_ENOMEM. */
static int reserve(weft_tcp_t *c, size_t room) {
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
  weft_tcp_t *c = h->data;
  (void)hint;
  if (reserve(c, READ_ROOM) != 0) {
    b->base = NULL; /* libuv then reports UV_ENOBUFS */
    b->len = 0;
    return;
  }
  b->base = c->buf + c->len;
  b->len = c->cap - c->len;
}

static void stop_reading(weft_tcp_t *c) {
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
static int end_of_stream(weft_tcp_t *c) {
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
  weft_tcp_t *c = s->data;
  (void)b;
  if (n > 0) c->len += (size_t)n;
  if (n == UV_EOF) n = end_of_stream(c);
  if (n < 0) c->rerr = n == UV_ENOBUFS ? UV_ENOMEM : (int)n;
  if (n < 0 || satisfied(c, c->rmode, c->need)) {
    stop_reading(c);
    wake(c->loop, &c->rfut);
  }
}

/* Lends n buffered bytes (without the last one if chop) and consumes
 * them; the buffer starts over at the next call. */
static void take(weft_tcp_t *c, size_t n, int chop, weft_span_t *out) {
  out->ptr = c->buf + c->off;
  out->len = n - (chop ? 1 : 0);
  c->off += n;
}

/* An emptied buffer starts over, and a large one is freed: at the start
 * of a call, when what the last read lent is no longer used. */
static void settle_buffer(weft_tcp_t *c) {
  if (c->off < c->len) return;
  c->off = c->len = c->scan = 0;
  if (c->cap > KEEP_MAX) {
    weft__valloc(c->buf, c->cap, 0);
    c->buf = NULL;
    c->cap = 0;
  }
}

/* Answers a read from the buffer if it can (see weft_tcp_read); 1 when
 * the reader must wait. */
static int answer(weft_tcp_t *c, int mode, size_t need, weft_span_t *out) {
  size_t avail = c->len - c->off, n;
  if (satisfied(c, mode, need)) {
    if (mode == WEFT_READ_SOME) take(c, avail < need ? avail : need, 0, out);
    if (mode == WEFT_READ_EXACT) take(c, need, 0, out);
    if (mode == WEFT_READ_LINE || mode == WEFT_READ_LINE_KEEP) {
      n = c->scan - c->off; /* up to the newline, or all: none yet */
      if (c->scan == c->len || n > need) return UV_EMSGSIZE;
      take(c, n + 1, mode == WEFT_READ_LINE, out);
    }
    if (mode == WEFT_READ_UNTIL) {
      c->found = find_pat(c, &n) && (need == 0 || n <= need);
      if (c->found) {
        take(c, n + c->plen, 0, out);
        if (!c->incl) out->len = n;
      } else {
        take(c, need, 0, out);
      }
      c->umiss = 0;
    }
    return 0;
  }
  if (c->rerr == 0) return 1;
  if (c->rerr != UV_EOF &&
      (mode == WEFT_READ_ALL || mode == WEFT_READ_EXACT ||
       mode == WEFT_READ_UNTIL || avail == 0))
    return c->rerr;
  if (mode == WEFT_READ_EXACT || mode == WEFT_READ_UNTIL) {
    out->ptr = c->buf + c->off; /* what came: not consumed */
    out->len = avail;
    return UV_EOF;
  }
  if (avail > 0) {
    take(c, avail, 0, out);
    return 0;
  }
  if (mode == WEFT_READ_ALL) {
    out->ptr = "";
    return 0;
  }
  return UV_EOF;
}

/* weft_tcp_read and weft_tcp_read_until, their arguments checked. */
static int start_read(weft_tcp_t *c, weft_task_t *t, int mode, size_t n,
                      weft_span_t *out, weft_future_t **wait) {
  int r;
  out->ptr = NULL;
  out->len = 0;
  *wait = NULL;
  if (c->closing) return WEFT_ECLOSED;
  if (c->reader != NULL && c->reader != t) {
    if (busy(c->reader)) return WEFT_ESTATE;
    c->reader = NULL; /* cancelled, not yet unwound: take over */
    stop_reading(c);
  }
  settle_buffer(c);
  if (mode == WEFT_READ_LINE || mode == WEFT_READ_LINE_KEEP)
    n = n ? n : c->max_line;
  if ((r = answer(c, mode, n, out)) != 1) {
    c->reader = NULL;
    return r;
  }
  c->rmode = mode;
  c->need = n;
  if (!c->reading) {
    if ((r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)))
      return r;
    c->reading = 1;
  }
  c->reader = t;
  weft_future_init(&c->rfut);
  *wait = &c->rfut;
  return WEFT_PENDING;
}

int weft_tcp_read(weft_tcp_t *c, weft_task_t *t, int mode, size_t n,
                  weft_span_t *out, weft_future_t **wait) {
  if (c == NULL || t == NULL || out == NULL || wait == NULL ||
      mode < WEFT_READ_SOME || mode > WEFT_READ_ALL)
    return WEFT_EINVAL;
  return start_read(c, t, mode, n, out, wait);
}

int weft_tcp_read_until(weft_tcp_t *c, weft_task_t *t, const char *pat,
                        size_t plen, size_t max, int incl, weft_span_t *out,
                        int *found, weft_future_t **wait) {
  int r;
  char *np;
  if (c == NULL || t == NULL || pat == NULL || out == NULL || found == NULL ||
      wait == NULL || plen == 0 || plen > WEFT_UNTIL_MAX)
    return WEFT_EINVAL;
  *found = 0;
  if (c->closing) return WEFT_ECLOSED;
  if (plen != c->plen || memcmp(pat, c->pat, plen) != 0) {
    if (plen > c->pcap) {
      if ((np = weft__valloc(c->pat, c->pcap, plen)) == NULL)
        return WEFT_ENOMEM;
      c->pat = np;
      c->pcap = plen;
    }
    memcpy(c->pat, pat, plen);
    c->plen = plen;
  }
  c->umiss = 0;
  c->incl = incl != 0;
  r = start_read(c, t, WEFT_READ_UNTIL, max, out, wait);
  if (r == 0) *found = c->found;
  return r;
}

int weft_tcp_idle_check(weft_tcp_t *c) {
  uv_os_fd_t fd;
  ssize_t n;
  char b;
  if (c == NULL) return WEFT_EINVAL;
  if (c->closing) return WEFT_ECLOSED;
  if (c->rerr) return c->rerr;
  if (c->len > c->off || c->reader || c->writer || c->connecting)
    return WEFT_ESTATE;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return WEFT_ECLOSED;
  n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return UV_EOF;
  if (n > 0) return WEFT_ESTATE;
  return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uv_translate_sys_error(errno);
}

void weft_tcp_read_abandon(weft_tcp_t *c, weft_task_t *t) {
  if (c == NULL || c->reader != t || t == NULL) return;
  c->reader = NULL;
  stop_reading(c); /* what came stays */
}

/* ------------------------------------------------------------- writing */

static void on_written(uv_write_t *req, int status) {
  weft_tcp_t *c = req->data;
  if (c->closing) return;
  c->writing = 0;
  c->werr = status;
  wake(c->loop, &c->wfut);
}

static void on_shut(uv_shutdown_t *req, int status) {
  weft_tcp_t *c = req->data;
  if (c->closing) return;
  c->writing = 0;
  c->werr = status;
  wake(c->loop, &c->wfut);
}

/* Makes sure no other task writes: 0, WEFT_ESTATE, or WEFT_ECLOSED when
 * a writer whose cancellation is on its way left the stream
 * half-written (the connection closes then, as that writer would). */
static int claim_write(weft_tcp_t *c, weft_task_t *t) {
  if (c->closing) return WEFT_ECLOSED;
  if (c->connecting) return UV_ENOTCONN;
  if (c->writer == t && c->writing) return WEFT_ESTATE; /* one at a time */
  if (c->writer == NULL || c->writer == t) return 0;
  if (busy(c->writer)) return WEFT_ESTATE;
  if (c->writing) {
    weft_tcp_close(c);
    return WEFT_ECLOSED;
  }
  c->writer = NULL;
  return 0;
}

static int wait_write(weft_tcp_t *c, weft_task_t *t, weft_future_t **wait) {
  c->writer = t;
  c->writing = 1;
  c->werr = 0;
  weft_future_init(&c->wfut);
  *wait = &c->wfut;
  return WEFT_PENDING;
}

int weft_tcp_write(weft_tcp_t *c, weft_task_t *t, const void *data,
                   size_t len, weft_future_t **wait) {
  uv_stream_t *s;
  uv_buf_t b;
  int r;
  if (c == NULL || t == NULL || wait == NULL || (data == NULL && len > 0))
    return WEFT_EINVAL;
  *wait = NULL;
  if ((r = claim_write(c, t)) != 0) return r;
  if (len == 0) return 0;
  s = (uv_stream_t *)&c->tcp;
  b.base = (char *)data; /* on Unix, a uv_buf_t's len is a size_t */
  b.len = len;
  /* Most writes fit in the socket's buffer: no request, no wait. */
  if (uv_stream_get_write_queue_size(s) == 0) {
    r = uv_try_write(s, &b, 1);
    if (r >= 0 && (size_t)r == len) return 0;
    if (r < 0 && r != UV_EAGAIN) return r;
    if (r > 0) {
      b.base = (char *)data + r;
      b.len = len - (size_t)r;
    }
  }
  if ((r = uv_write(&c->wreq, s, &b, 1, on_written)) != 0) return r;
  return wait_write(c, t, wait);
}

long weft_tcp_try_write(weft_tcp_t *c, weft_task_t *t, const void *data,
                        size_t len) {
  uv_stream_t *s;
  uv_buf_t b;
  int r;
  if (c == NULL || t == NULL || (data == NULL && len > 0))
    return WEFT_EINVAL;
  if ((r = claim_write(c, t)) != 0) return r;
  s = (uv_stream_t *)&c->tcp;
  if (len == 0 || uv_stream_get_write_queue_size(s) != 0) return 0;
  b.base = (char *)data;
  b.len = len;
  r = uv_try_write(s, &b, 1);
  return r == UV_EAGAIN ? 0 : r;
}

int weft_tcp_shutdown(weft_tcp_t *c, weft_task_t *t, weft_future_t **wait) {
  int r;
  if (c == NULL || t == NULL || wait == NULL) return WEFT_EINVAL;
  *wait = NULL;
  if ((r = claim_write(c, t)) != 0) return r;
  if ((r = uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shut)) != 0)
    return r;
  return wait_write(c, t, wait);
}

int weft_tcp_poll_write(weft_tcp_t *c, weft_task_t *t,
                        weft_future_t **wait) {
  if (c == NULL || wait == NULL) return WEFT_EINVAL;
  *wait = NULL;
  if (c->closing) return WEFT_ECLOSED;
  if (c->writer != t) return WEFT_ESTATE;
  if (c->writing) {
    *wait = &c->wfut;
    return WEFT_PENDING;
  }
  c->writer = NULL;
  return c->werr;
}

void weft_tcp_write_abandon(weft_tcp_t *c, weft_task_t *t) {
  if (c == NULL || c->writer != t || t == NULL) return;
  c->writer = NULL;
  weft_tcp_close(c); /* part of the data may be out */
}

/* ---------------------------------------------------------- connecting */

static void on_connect(uv_connect_t *req, int status) {
  weft_tcp_t *c = req->data;
  if (c->closing) return; /* abandoned: libuv cancelled it */
  c->connecting = 0;
  c->werr = status;
  wake(c->loop, &c->wfut);
}

int weft_tcp_connect(weft_loop_t *loop, const char *ip, int port,
                     weft_tcp_t **out) {
  struct sockaddr_storage ss;
  weft_tcp_t *c;
  int r;
  if (out) *out = NULL;
  if (loop == NULL || ip == NULL || out == NULL ||
      parse_addr(ip, port, &ss) != 0)
    return WEFT_EINVAL;
  if ((c = tcp_new(loop)) == NULL) return WEFT_ENOMEM;
  weft__ignore_sigpipe();
  format_addr((struct sockaddr *)&ss, c->name, sizeof c->name);
  r = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&ss, on_connect);
  if (r != 0) {
    weft_tcp_free(c);
    return r;
  }
  c->connecting = 1;
  *out = c;
  return 0;
}

int weft_tcp_poll_connect(weft_tcp_t *c, weft_future_t **wait) {
  if (c == NULL || wait == NULL) return WEFT_EINVAL;
  *wait = NULL;
  if (c->closing) return WEFT_ECLOSED;
  if (c->connecting) { /* wfut was armed by weft_tcp_connect */
    *wait = &c->wfut;
    return WEFT_PENDING;
  }
  if (c->werr != 0) {
    int r = c->werr;
    weft_tcp_close(c);
    return r;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  return 0;
}

/* -------------------------------------------------------------- servers */

/* About weft_server_t (see weft_io.h): spare accepts and drops a
 * connection when there is no memory for it; stalled marks one more
 * waiting meanwhile (libuv stops accepting until uv_accept is called).
 * open counts the handles not yet closed; the memory goes when none is
 * and the owner let go (owned cleared). The handle is unreferenced, so
 * an idle server does not keep the loop alive, except while held. */
struct weft_server_s {
  weft__closer closer;
  uv_tcp_t tcp, spare;
  weft_loop_t *loop;
  weft_accept_cb on_accept;
  void *ud;
  weft_future_t closed;
  int holds, closing, refusing, stalled, open, owned, port;
  size_t max_line; /* of the connections it accepts */
};

static void server_release(weft_server_t *s) {
  if (s->open == 0 && !s->owned) weft__valloc(s, sizeof *s, 0);
}

static void on_server_closed(uv_handle_t *h) {
  weft_server_t *s = h->data;
  s->open--;
  server_release(s);
}

void weft_server_close(weft_server_t *s) {
  if (s == NULL || s->closing) return;
  s->closing = 1;
  weft__loop_untrack(&s->closer);
  uv_close((uv_handle_t *)&s->tcp, on_server_closed);
  wake(s->loop, &s->closed);
}

static void server_closer(weft__closer *cl) {
  weft_server_close(
      (weft_server_t *)((char *)cl - offsetof(weft_server_t, closer)));
}

void weft_server_free(weft_server_t *s) {
  if (s == NULL) return;
  weft_server_close(s);
  s->owned = 0;
  server_release(s);
}

static void refuse(weft_server_t *s);

static void on_refused(uv_handle_t *h) {
  weft_server_t *s = h->data;
  s->refusing = 0;
  if (s->stalled && !s->closing) {
    s->stalled = 0;
    refuse(s);
  }
  s->open--;
  server_release(s);
}

/* Accepts the pending connection into spare and closes it: with no
 * memory for a connection, its client is turned away, not left hanging,
 * and the server goes on accepting. */
static void refuse(weft_server_t *s) {
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

static void on_connection(uv_stream_t *ls, int status) {
  weft_server_t *s = ls->data;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  weft_tcp_t *c;
  if (status != 0 || s->closing) return; /* libuv tries again later */
  if ((c = tcp_new(s->loop)) == NULL) {
    refuse(s);
    return;
  }
  c->max_line = s->max_line;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    weft_tcp_free(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    format_addr((struct sockaddr *)&ss, c->name, sizeof c->name);
  else
    snprintf(c->name, sizeof c->name, "%s", "?");
  s->on_accept(s, c, s->ud); /* c is the callback's now */
}

int weft_tcp_listen(weft_loop_t *loop, const char *ip, int port,
                    int backlog, weft_accept_cb on_accept, void *ud,
                    weft_server_t **out) {
  struct sockaddr_storage ss;
  int len = sizeof ss, r;
  weft_server_t *s;
  if (out) *out = NULL;
  if (loop == NULL || ip == NULL || on_accept == NULL || out == NULL ||
      backlog < 1 || parse_addr(ip, port, &ss) != 0)
    return WEFT_EINVAL;
  if ((s = xalloc(sizeof *s)) == NULL) return WEFT_ENOMEM;
  weft__ignore_sigpipe();
  s->loop = loop;
  s->on_accept = on_accept;
  s->ud = ud;
  s->open = s->owned = 1;
  s->max_line = LINE_MAX_DEFAULT;
  uv_tcp_init(loop->uv, &s->tcp);
  s->tcp.data = s;
  weft_future_init(&s->closed);
  s->closer.close = server_closer;
  weft__loop_track(loop, &s->closer);
  r = uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&s->tcp, backlog, on_connection);
  if (r != 0) {
    weft_server_free(s);
    return r;
  }
  uv_unref((uv_handle_t *)&s->tcp); /* see About weft_server_t */
  if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) == 0)
    s->port = ntohs(ss.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&ss)->sin6_port
                        : ((struct sockaddr_in *)&ss)->sin_port);
  *out = s;
  return 0;
}

int weft_server_port(const weft_server_t *s) { return s ? s->port : 0; }

weft_future_t *weft_server_closed(weft_server_t *s) {
  return s ? &s->closed : NULL;
}

void weft_server_hold(weft_server_t *s, int hold) {
  if (s == NULL || s->closing) return;
  if (hold) {
    if (s->holds++ == 0) uv_ref((uv_handle_t *)&s->tcp);
  } else if (s->holds > 0 && --s->holds == 0) {
    uv_unref((uv_handle_t *)&s->tcp);
  }
}

void weft_server_set_max_line(weft_server_t *s, size_t max) {
  if (s == NULL) return;
  s->max_line = max ? max : SIZE_MAX;
}
