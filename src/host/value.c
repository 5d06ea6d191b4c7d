/*
 * value.c - weft_value_t: plain data trees that cross threads (host tier).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "host.h"

/* About the value allocator: process-wide, like libuv's. Set once before
 * use; read without a lock afterwards. */
static weft_alloc_fn valloc = weft__std_alloc;
static void *valloc_ud;

void weft_value_set_allocator(weft_alloc_fn fn, void *ud) {
  valloc = fn ? fn : weft__std_alloc;
  valloc_ud = fn ? ud : NULL;
}

void *weft__valloc(void *p, size_t osize, size_t nsize) {
  return valloc(valloc_ud, p, osize, nsize);
}

/* Misuse (a NULL value or string) returns WEFT_EINVAL or does nothing:
 * these are cheap checks at the edge of the API (see STYLE.md). */

void weft_value_nil(weft_value_t *v) {
  if (v == NULL) return;
  memset(v, 0, sizeof *v);
  v->type = WEFT_VNIL;
}

void weft_value_bool(weft_value_t *v, int b) {
  if (v == NULL) return;
  weft_value_nil(v);
  v->type = WEFT_VBOOL;
  v->u.b = b != 0;
}

void weft_value_int(weft_value_t *v, int64_t i) {
  if (v == NULL) return;
  weft_value_nil(v);
  v->type = WEFT_VINT;
  v->u.i = i;
}

void weft_value_num(weft_value_t *v, double n) {
  if (v == NULL) return;
  weft_value_nil(v);
  v->type = WEFT_VNUM;
  v->u.n = n;
}

int weft_value_str(weft_value_t *v, const char *s, size_t len) {
  char *p;
  if (v == NULL) return WEFT_EINVAL;
  weft_value_nil(v);
  if (s == NULL && len > 0) return WEFT_EINVAL;
  if (len == (size_t)-1 || (p = weft__valloc(NULL, 0, len + 1)) == NULL)
    return WEFT_ENOMEM;
  if (len) memcpy(p, s, len);
  p[len] = '\0';
  v->type = WEFT_VSTR;
  v->u.s.ptr = p;
  v->u.s.len = len;
  return 0;
}

static weft_value_t *new_items(size_t len) {
  weft_value_t *items;
  size_t i;
  if (len == 0) return NULL;
  if (len > (size_t)-1 / sizeof *items) return NULL;
  items = weft__valloc(NULL, 0, len * sizeof *items);
  if (items)
    for (i = 0; i < len; i++) weft_value_nil(&items[i]);
  return items;
}

int weft_value_array(weft_value_t *v, size_t len) {
  if (v == NULL) return WEFT_EINVAL;
  weft_value_nil(v);
  v->u.a.items = new_items(len);
  if (len && v->u.a.items == NULL) return WEFT_ENOMEM;
  v->type = WEFT_VARRAY;
  v->u.a.len = len;
  return 0;
}

int weft_value_map(weft_value_t *v, size_t len) {
  weft_value_t *keys, *vals;
  if (v == NULL) return WEFT_EINVAL;
  weft_value_nil(v);
  keys = new_items(len);
  vals = new_items(len);
  if (len && (keys == NULL || vals == NULL)) {
    if (keys) weft__valloc(keys, len * sizeof *keys, 0);
    if (vals) weft__valloc(vals, len * sizeof *vals, 0);
    return WEFT_ENOMEM;
  }
  v->type = WEFT_VMAP;
  v->u.m.keys = keys;
  v->u.m.vals = vals;
  v->u.m.len = len;
  return 0;
}

/* About freeing and copying deep trees: a host can build a tree nested
 * as deep as it likes (a list of 300,000 nested arrays), so neither walks
 * the tree by recursion, which would exhaust the C stack. Freeing must not
 * fail, so it needs no memory: it reverses pointers (Deutsch-Schorr-Waite).
 * Going down into the container at slot x of the array being freed, it
 * keeps in x (whose content it has read) the way back: that array, its
 * length, the slot that leads further up, and, for a map's keys, the
 * values still to free. Coming back up, the slot's index gives where to go
 * on. Copying may fail anyway, so it keeps its path in a stack of its own
 * that grows as needed. */
typedef struct Back {
  weft_value_t *base;    /* the array that was being freed */
  size_t len;
  weft_value_t *up;      /* the slot holding the way back from base */
  weft_value_t *pending; /* a map's values after its keys, or NULL */
} Back;
_Static_assert(sizeof(Back) <= sizeof(weft_value_t), "Back fits a value");

/* The number of items of an array, of pairs of a map, else 0. */
static size_t nitems(const weft_value_t *v) {
  return v->type == WEFT_VARRAY ? v->u.a.len
         : v->type == WEFT_VMAP ? v->u.m.len
                                : 0;
}

static int has_items(const weft_value_t *v) { return nitems(v) > 0; }

static void free_leaf(weft_value_t *v) {
  if (v->type == WEFT_VSTR) weft__valloc(v->u.s.ptr, v->u.s.len + 1, 0);
  weft_value_nil(v); /* an empty array or map owns nothing */
}

void weft_value_free(weft_value_t *v) {
  weft_value_t *base, *pending, *up = NULL, *x;
  size_t len, i = 0;
  Back back;
  if (v == NULL) return;
  if (!has_items(v)) return free_leaf(v);
  base = v->type == WEFT_VMAP ? v->u.m.keys : v->u.a.items;
  pending = v->type == WEFT_VMAP ? v->u.m.vals : NULL;
  len = nitems(v);
  for (;;) {
    if (i < len) {
      x = &base[i];
      if (!has_items(x)) {
        free_leaf(x);
        i++;
        continue;
      }
      back.base = base; /* down into x: the way back goes in x */
      back.len = len;
      back.up = up;
      back.pending = pending;
      base = x->type == WEFT_VMAP ? x->u.m.keys : x->u.a.items;
      pending = x->type == WEFT_VMAP ? x->u.m.vals : NULL;
      len = nitems(x);
      memcpy(x, &back, sizeof back);
      up = x;
      i = 0;
      continue;
    }
    weft__valloc(base, len * sizeof *base, 0); /* this array is done */
    if (pending) {
      base = pending;
      pending = NULL;
      i = 0;
      continue;
    }
    if (up == NULL) break;
    memcpy(&back, up, sizeof back); /* back up to the slot after up */
    i = (size_t)(up - back.base) + 1;
    base = back.base;
    len = back.len;
    pending = back.pending;
    up = back.up;
  }
  weft_value_nil(v);
}

/* A step of a copy: the source and destination arrays and the index of
 * the next item; a map's values follow its keys (src2, dst2). The first
 * STEPS_LOCAL are on the C stack, so a tree of common depth is copied
 * with no allocation but its own. */
#define STEPS_LOCAL 32
typedef struct Step {
  const weft_value_t *src, *src2;
  weft_value_t *dst, *dst2;
  size_t len, i;
} Step;

/* Makes dst an empty container of src's type and length, and pushes its
 * step. 0 or WEFT_ENOMEM (dst nil). */
static int open_step(Step **stack, size_t *n, size_t *cap,
                     weft_value_t *dst, const weft_value_t *src) {
  Step *st;
  size_t len = nitems(src);
  int r = src->type == WEFT_VMAP ? weft_value_map(dst, len)
                                 : weft_value_array(dst, len);
  if (r != 0) return r;
  if (*n == *cap) { /* the first steps are on the C stack: see below */
    size_t ncap = *cap * 2;
    Step *ns = weft__valloc(*n > STEPS_LOCAL ? *stack : NULL,
                            *n > STEPS_LOCAL ? *cap * sizeof **stack : 0,
                            ncap * sizeof **stack);
    if (ns == NULL) {
      weft_value_free(dst);
      return WEFT_ENOMEM;
    }
    if (*n == STEPS_LOCAL) memcpy(ns, *stack, *n * sizeof **stack);
    *stack = ns;
    *cap = ncap;
  }
  st = &(*stack)[(*n)++];
  st->len = len;
  st->i = 0;
  if (src->type == WEFT_VMAP) {
    st->src = src->u.m.keys, st->src2 = src->u.m.vals;
    st->dst = dst->u.m.keys, st->dst2 = dst->u.m.vals;
  } else {
    st->src = src->u.a.items, st->src2 = NULL;
    st->dst = dst->u.a.items, st->dst2 = NULL;
  }
  return 0;
}

/* Copies a leaf (no items to copy). */
static int copy_leaf(weft_value_t *dst, const weft_value_t *src) {
  switch (src->type) {
  case WEFT_VSTR: return weft_value_str(dst, src->u.s.ptr, src->u.s.len);
  case WEFT_VARRAY: return weft_value_array(dst, 0);
  case WEFT_VMAP: return weft_value_map(dst, 0);
  default: *dst = *src; return 0;
  }
}

int weft_value_copy(weft_value_t *dst, const weft_value_t *src) {
  Step local[STEPS_LOCAL], *stack = local, *st;
  const weft_value_t *s;
  weft_value_t *d;
  size_t n = 0, cap = STEPS_LOCAL;
  int r;
  if (dst == NULL || src == NULL) return WEFT_EINVAL;
  weft_value_nil(dst);
  if (!has_items(src)) return copy_leaf(dst, src);
  r = open_step(&stack, &n, &cap, dst, src);
  while (r == 0 && n > 0) {
    st = &stack[n - 1];
    if (st->i == st->len) {
      if (st->src2) { /* a map's keys are done: its values next */
        st->src = st->src2, st->dst = st->dst2;
        st->src2 = NULL, st->dst2 = NULL;
        st->i = 0;
      } else {
        n--;
      }
      continue;
    }
    s = &st->src[st->i];
    d = &st->dst[st->i];
    st->i++; /* before open_step, which may move the stack */
    r = has_items(s) ? open_step(&stack, &n, &cap, d, s) : copy_leaf(d, s);
  }
  if (stack != local) weft__valloc(stack, cap * sizeof *stack, 0);
  if (r != 0) weft_value_free(dst); /* what was filled in, nils elsewhere */
  return r;
}

const weft_value_t *weft_value_get(const weft_value_t *map, const char *k) {
  size_t i, len;
  if (map == NULL || k == NULL || map->type != WEFT_VMAP) return NULL;
  len = strlen(k);
  for (i = 0; i < map->u.m.len; i++) {
    const weft_value_t *key = &map->u.m.keys[i];
    if (key->type == WEFT_VSTR && key->u.s.len == len &&
        memcmp(key->u.s.ptr, k, len) == 0)
      return &map->u.m.vals[i];
  }
  return NULL;
}
