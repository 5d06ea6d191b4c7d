/*
 * alloc.c - the weft command's Lua allocator (CLI).
 * SPDX-License-Identifier: MIT
 *
 * A Lua program that runs many tasks allocates many small objects (a task
 * is a coroutine, its stack and a userdata, all under 1 KiB) and touches
 * fresh memory all the time: with malloc, two thirds of spawning a task is
 * the page faults of its first touch (docs/performance.md, W1). Here small
 * blocks are carved from regions of up to 2 MiB that the kernel is asked
 * to back with huge pages (one fault instead of 512), without malloc's
 * per-block header: lua_Alloc passes the old size, so the class of a
 * block is known when it is freed.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"

#define SLAB_FIRST_REGION ((size_t)256 << 10)
#define SLAB_REGION ((size_t)2 << 20) /* a huge page on x86-64 and arm64 */

/* The head of a region, at its start. */
typedef struct region {
  void *next;
  size_t size;
} region;

#define REGION_HEAD ((sizeof(region) + SLAB_GRAIN - 1) & ~(size_t)(SLAB_GRAIN - 1))

static size_t class_of(size_t n) { return (n - 1) / SLAB_GRAIN; }

void slab_init(slab *s) {
  memset(s, 0, sizeof *s);
  s->region_size = SLAB_FIRST_REGION;
}

/* Maps a region of size bytes aligned to its size, so that a full-size
 * region can be one huge page. */
static char *map_region(size_t size) {
  char *p, *a;
  p = mmap(NULL, size * 2, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  a = (char *)(((uintptr_t)p + size - 1) & ~(uintptr_t)(size - 1));
  if (a > p) munmap(p, (size_t)(a - p));
  if (a + size < p + size * 2) munmap(a + size, (size_t)(p + size * 2 - (a + size)));
#ifdef MADV_HUGEPAGE
  if (size >= SLAB_REGION) madvise(a, size, MADV_HUGEPAGE);
#endif
  return a;
}

/* A new block of class c, or NULL when no memory is left. */
static void *take(slab *s, size_t c) {
  size_t n = (c + 1) * SLAB_GRAIN;
  void *b = s->free[c];
  region *r;
  if (b != NULL) {
    memcpy(&s->free[c], b, sizeof(void *));
    return b;
  }
  if ((size_t)(s->end - s->next) < n) {
    char *p = map_region(s->region_size);
    if (p == NULL) return NULL;
    r = (region *)p;
    r->next = s->regions;
    r->size = s->region_size;
    s->regions = r;
    s->mapped += r->size;
    s->next = p + REGION_HEAD;
    s->end = p + r->size;
    if (s->region_size < SLAB_REGION) s->region_size *= 2;
  }
  b = s->next;
  s->next += n;
  return b;
}

static void give(slab *s, void *b, size_t c) {
  memcpy(b, &s->free[c], sizeof(void *));
  s->free[c] = b;
}

/* lua_Alloc's contract: ptr is NULL exactly when there is no old block
 * (osize then holds a type tag); nsize 0 frees; NULL means no memory and
 * leaves the old block as it was. */
void *slab_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  slab *s = ud;
  void *nb;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    if (osize > SLAB_MAX)
      free(ptr);
    else if (ptr != NULL)
      give(s, ptr, class_of(osize));
    return NULL;
  }
  if (osize > SLAB_MAX && nsize > SLAB_MAX) return realloc(ptr, nsize);
  if (osize > 0 && osize <= SLAB_MAX && nsize <= SLAB_MAX &&
      class_of(osize) == class_of(nsize))
    return ptr;
  nb = nsize <= SLAB_MAX ? take(s, class_of(nsize)) : malloc(nsize);
  if (nb == NULL || ptr == NULL) return nb;
  memcpy(nb, ptr, osize < nsize ? osize : nsize);
  if (osize > SLAB_MAX)
    free(ptr);
  else
    give(s, ptr, class_of(osize));
  return nb;
}

void slab_free(slab *s) {
  void *r, *next;
  for (r = s->regions; r != NULL; r = next) {
    next = ((region *)r)->next;
    munmap(r, ((region *)r)->size);
  }
  slab_init(s);
}
