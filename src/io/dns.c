/*
 * dns.c - name resolution (I/O tier, weft_io.h): the one resolver of
 * weft, getaddrinfo in libuv's thread pool as a loop call, so a lookup is
 * awaited, timed out and cancelled like any other call.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>
#include <uv.h>

#include "weft_io.h"
/* host.h: the call's loop (for its uv loop) and its error code. */
#include "host.h"

/* About Lookup: one lookup, made with its call (its ud). It holds a
 * reference to the call from the start of the lookup until its callback,
 * which libuv always runs, with UV_EAI_CANCELED if the lookup was
 * cancelled while queued; the call's fini frees it once both are done
 * with it, so a cancelled or released call never frees a lookup libuv
 * still holds. */
typedef struct Lookup {
  uv_getaddrinfo_t req;
  weft_call_t *call;
  int active; /* between uv_getaddrinfo and its callback */
} Lookup;

static void lookup_free(void *ud) { weft__valloc(ud, sizeof(Lookup), 0); }

/* Rejects call with "<host>: <Message>" and libuv's code. */
static void fail(weft_call_t *c, const char *host, int code) {
  char msg[1024];
  weft_io_error_text(msg, sizeof msg, host, code);
  c->err = code;
  weft_call_reject(c, msg);
}

/* The numeric address of sa into *v (a string); 0, 1 if sa is neither
 * IPv4 nor IPv6, or WEFT_ENOMEM. */
static int addr_value(const struct sockaddr *sa, weft_value_t *v) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
  else if (sa->sa_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
  else
    return 1;
  return weft_value_str(v, ip, strlen(ip));
}

/* Resolves call with the addresses of res: 0, or a libuv code. */
static int resolve_with(weft_call_t *c, const struct addrinfo *res) {
  const struct addrinfo *ai;
  weft_value_t list;
  size_t n = 0;
  for (ai = res; ai; ai = ai->ai_next) n++;
  if (weft_value_array(&list, n) != 0) return UV_ENOMEM;
  for (n = 0, ai = res; ai; ai = ai->ai_next) {
    int r = addr_value(ai->ai_addr, &list.u.a.items[n]);
    if (r == WEFT_ENOMEM) {
      weft_value_free(&list);
      return UV_ENOMEM;
    }
    n += r == 0;
  }
  list.u.a.len = n; /* the nils past n own nothing */
  if (n == 0) {
    weft_value_free(&list);
    return UV_EAI_NODATA;
  }
  weft_call_resolve(c, &list);
  return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  Lookup *k = req->data;
  weft_call_t *c = k->call;
  const char *host = weft_call_args(c)->u.a.items[0].u.s.ptr;
  k->active = 0;
  if (status == 0) status = resolve_with(c, res);
  if (status != 0) fail(c, host, status); /* a no-op once cancelled */
  if (res) uv_freeaddrinfo(res);
  weft_call_unref(c);
}

/* The call's function (loop thread): a numeric host at once, else the
 * lookup. */
static void start(weft_call_t *c, void *ud) {
  Lookup *k = ud;
  const char *host = weft_call_args(c)->u.a.items[0].u.s.ptr;
  struct sockaddr_storage ss;
  struct addrinfo hints;
  int r;
  if (uv_ip4_addr(host, 0, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(host, 0, (struct sockaddr_in6 *)&ss) == 0) {
    weft_value_t list;
    if (weft_value_array(&list, 1) != 0 ||
        addr_value((struct sockaddr *)&ss, &list.u.a.items[0]) != 0) {
      weft_value_free(&list);
      return fail(c, host, UV_ENOMEM);
    }
    weft_call_resolve(c, &list);
    return;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  k->call = c;
  k->req.data = k;
  weft_call_ref(c); /* the lookup's, until on_resolved */
  r = uv_getaddrinfo(c->loop->uv, &k->req, on_resolved, host, NULL, &hints);
  if (r != 0) {
    fail(c, host, r);
    weft_call_unref(c);
    return;
  }
  k->active = 1;
}

/* Told once, on the loop thread, that the caller gave up: a queued lookup
 * is cancelled (its callback still comes); a running one cannot be. */
static void on_cancel(weft_call_t *c, void *ud) {
  Lookup *k = ud;
  (void)c;
  if (k->active) uv_cancel((uv_req_t *)&k->req);
}

int weft_dns_resolve(weft_loop_t *loop, const char *host,
                     weft_call_t **out) {
  weft_fn_opts o = {WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 0, on_cancel, NULL};
  weft_value_t args;
  Lookup *k;
  int r;
  if (out) *out = NULL;
  if (loop == NULL || host == NULL || out == NULL || host[0] == '\0')
    return WEFT_EINVAL;
  if ((k = weft__valloc(NULL, 0, sizeof *k)) == NULL) return WEFT_ENOMEM;
  memset(k, 0, sizeof *k);
  if (weft_value_array(&args, 1) != 0 ||
      weft_value_str(&args.u.a.items[0], host, strlen(host)) != 0) {
    weft_value_free(&args);
    lookup_free(k);
    return WEFT_ENOMEM;
  }
  o.ud = k;
  if ((r = weft_call_new(loop, "dns.resolve", start, &o, NULL, &args, out))) {
    lookup_free(k);
    return r;
  }
  (*out)->fini = lookup_free;
  return weft_call_start(*out);
}
