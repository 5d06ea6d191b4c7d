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

void weft_value_nil(weft_value_t *v) {
  memset(v, 0, sizeof *v);
  v->type = WEFT_VNIL;
}

void weft_value_bool(weft_value_t *v, int b) {
  weft_value_nil(v);
  v->type = WEFT_VBOOL;
  v->u.b = b != 0;
}

void weft_value_int(weft_value_t *v, int64_t i) {
  weft_value_nil(v);
  v->type = WEFT_VINT;
  v->u.i = i;
}

void weft_value_num(weft_value_t *v, double n) {
  weft_value_nil(v);
  v->type = WEFT_VNUM;
  v->u.n = n;
}

int weft_value_str(weft_value_t *v, const char *s, size_t len) {
  char *p;
  weft_value_nil(v);
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
  weft_value_nil(v);
  v->u.a.items = new_items(len);
  if (len && v->u.a.items == NULL) return WEFT_ENOMEM;
  v->type = WEFT_VARRAY;
  v->u.a.len = len;
  return 0;
}

int weft_value_map(weft_value_t *v, size_t len) {
  weft_value_t *keys, *vals;
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

static void free_items(weft_value_t *items, size_t len) {
  size_t i;
  if (items == NULL) return;
  for (i = 0; i < len; i++) weft_value_free(&items[i]);
  weft__valloc(items, len * sizeof *items, 0);
}

void weft_value_free(weft_value_t *v) {
  switch (v->type) {
  case WEFT_VSTR: weft__valloc(v->u.s.ptr, v->u.s.len + 1, 0); break;
  case WEFT_VARRAY: free_items(v->u.a.items, v->u.a.len); break;
  case WEFT_VMAP:
    free_items(v->u.m.keys, v->u.m.len);
    free_items(v->u.m.vals, v->u.m.len);
    break;
  default: break;
  }
  weft_value_nil(v);
}

int weft_value_copy(weft_value_t *dst, const weft_value_t *src) {
  size_t i, n;
  int r = 0;
  switch (src->type) {
  case WEFT_VSTR: return weft_value_str(dst, src->u.s.ptr, src->u.s.len);
  case WEFT_VARRAY:
    n = src->u.a.len;
    if ((r = weft_value_array(dst, n)) != 0) return r;
    for (i = 0; i < n && r == 0; i++)
      r = weft_value_copy(&dst->u.a.items[i], &src->u.a.items[i]);
    break;
  case WEFT_VMAP:
    n = src->u.m.len;
    if ((r = weft_value_map(dst, n)) != 0) return r;
    for (i = 0; i < n && r == 0; i++) {
      r = weft_value_copy(&dst->u.m.keys[i], &src->u.m.keys[i]);
      if (r == 0) r = weft_value_copy(&dst->u.m.vals[i], &src->u.m.vals[i]);
    }
    break;
  default: *dst = *src; return 0;
  }
  if (r != 0) weft_value_free(dst);
  return r;
}

const weft_value_t *weft_value_get(const weft_value_t *map, const char *k) {
  size_t i, len = strlen(k);
  if (map->type != WEFT_VMAP) return NULL;
  for (i = 0; i < map->u.m.len; i++) {
    const weft_value_t *key = &map->u.m.keys[i];
    if (key->type == WEFT_VSTR && key->u.s.len == len &&
        memcmp(key->u.s.ptr, k, len) == 0)
      return &map->u.m.vals[i];
  }
  return NULL;
}
