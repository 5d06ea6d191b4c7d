/*
 * marshal.c - the host functions of the marshal fuzz target (marshal.lua):
 * echo hands its arguments back, so a Lua value crosses to a weft value
 * and back (lw_args_to_value, lw_push_value); make decodes bytes into a
 * weft value of any shape, as a host could build one, and returns it.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "fuzz.h"
#include "weft_lua.h"

/* echo(...) -> {...}: the arguments array, copied. */
static void echo(weft_call_t *call, void *ud) {
  weft_value_t v;
  (void)ud;
  if (weft_value_copy(&v, weft_call_args(call)) != 0) {
    weft_call_reject(call, "not enough memory");
    return;
  }
  weft_call_resolve(call, &v);
}

/* ------------------------------------------------------------- make */

/* About In: the bytes left to decode, and how many values they may still
 * make (a budget: one input stays fast however it nests). */
typedef struct In {
  const unsigned char *p;
  size_t n, budget;
} In;

static unsigned take(In *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static uint64_t take64(In *in) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v |= (uint64_t)take(in) << (8 * i);
  return v;
}

/* Structure deeper than this comes only from the nest operation, which is
 * a loop: the decoder's own recursion stays shallow. */
#define DECODE_DEPTH 32
/* The nest operation wraps up to 1023 levels, or with a shape of 0xff
 * up to 256 times more: deep enough to overflow a C stack that a
 * conversion (or a free, or a copy) would use per level. */
#define NEST_DEEP 0xff
#define BUDGET (1 << 18) /* values an input may make */

static int decode(In *in, weft_value_t *v, int depth);

/* Wraps *v in k one-item arrays or maps (by the low bit of shape). */
static int nest(weft_value_t *v, size_t k, unsigned shape) {
  weft_value_t inner;
  size_t i;
  for (i = 0; i < k; i++) {
    inner = *v;
    if ((shape & 1) ? weft_value_map(v, 1) : weft_value_array(v, 1)) {
      weft_value_free(&inner);
      return -1;
    }
    if (shape & 1) {
      weft_value_int(&v->u.m.keys[0], (int64_t)(i % 3));
      v->u.m.vals[0] = inner;
    } else {
      v->u.a.items[0] = inner;
    }
  }
  return 0;
}

static int decode_items(In *in, weft_value_t *items, size_t n, int depth) {
  size_t i;
  for (i = 0; i < n; i++)
    if (decode(in, &items[i], depth + 1) != 0) return -1;
  return 0;
}

static int decode_str(In *in, weft_value_t *v) {
  size_t len = take(in);
  if (len == 255) len = (size_t)take(in) << 8 | take(in);
  if (len > in->n) len = in->n;
  in->p += len;
  in->n -= len;
  return weft_value_str(v, (const char *)in->p - len, len);
}

/* Decodes one value into v: 0, or -1 out of memory (v then holds what
 * was built; free it). Any bytes decode: what is missing reads as zeros. */
static int decode(In *in, weft_value_t *v, int depth) {
  unsigned op = take(in) % 9;
  double d;
  uint64_t bits;
  weft_value_nil(v);
  if (depth > DECODE_DEPTH && op >= 5) op %= 5;
  switch (op) {
  case 0: return 0;
  case 1: weft_value_bool(v, take(in) & 1); return 0;
  case 2: weft_value_int(v, (int64_t)take64(in)); return 0;
  case 3:
    bits = take64(in);
    memcpy(&d, &bits, sizeof d); /* NaN, infinities, -0.0 included */
    weft_value_num(v, d);
    return 0;
  case 4: return decode_str(in, v);
  case 5:
    if (weft_value_array(v, take(in) % 9) != 0) return -1;
    return decode_items(in, v->u.a.items, v->u.a.len, depth);
  case 6: /* keys of any type: nil, NaN, tables, repeated ones */
    if (weft_value_map(v, take(in) % 9) != 0) return -1;
    if (decode_items(in, v->u.m.keys, v->u.m.len, depth) != 0) return -1;
    return decode_items(in, v->u.m.vals, v->u.m.len, depth);
  case 7: {
    unsigned shape = take(in);
    size_t k = take(in) | (take(in) & 3) << 8;
    if (shape == NEST_DEEP) k <<= 8;
    if (k > in->budget) k = in->budget;
    in->budget -= k;
    if (decode(in, v, depth + 1) != 0) return -1;
    return nest(v, k, shape);
  }
  default: { /* a wide array of integers, up to 3,825 */
    size_t i, n = (size_t)take(in) * (take(in) % 16);
    if (n > in->budget) n = in->budget;
    in->budget -= n;
    if (weft_value_array(v, n) != 0) return -1;
    for (i = 0; i < n; i++) weft_value_int(&v->u.a.items[i], (int64_t)i);
    return 0;
  }
  }
}

/* make(bytes) -> the value the bytes decode to. A first byte 0xff makes
 * it fail instead, with the rest of the bytes as its message. */
static void make(weft_call_t *call, void *ud) {
  const weft_value_t *args = weft_call_args(call);
  const weft_value_t *s = args->u.a.len ? &args->u.a.items[0] : NULL;
  weft_value_t v;
  In in;
  (void)ud;
  if (s == NULL || s->type != WEFT_VSTR) {
    weft_call_reject(call, "expected a string");
    return;
  }
  in.p = (const unsigned char *)s->u.s.ptr;
  in.n = s->u.s.len;
  in.budget = BUDGET;
  if (in.n > 0 && in.p[0] == 0xff) {
    weft_call_reject(call, s->u.s.ptr + 1); /* up to its first NUL */
    return;
  }
  if (decode(&in, &v, 0) != 0) {
    weft_value_free(&v);
    weft_call_reject(call, "not enough memory");
    return;
  }
  weft_call_resolve(call, &v);
}

static void add(lua_State *L, const char *name, weft_host_fn fn) {
  weft_fn_opts o;
  memset(&o, 0, sizeof o);
  o.kind = WEFT_FN_SYNC;
  o.priority = WEFT_PRIO_NORMAL;
  if (weft_lua_push_fn(L, name, fn, &o) != 0)
    fuzz_die("marshal", "cannot register the host functions");
  lua_setfield(L, -2, name);
}

void fuzz_setup(lua_State *L) {
  lua_createtable(L, 0, 2);
  add(L, "echo", echo);
  add(L, "make", make);
}
