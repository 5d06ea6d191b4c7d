/*
 * alloc.h - the weft command's Lua allocator: size classes carved from
 * large, huge-page-advised regions (CLI).
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_CLI_ALLOC_H
#define WEFT_CLI_ALLOC_H

#include <stddef.h>

/* Blocks up to SLAB_MAX bytes come from the slab, in classes of
 * SLAB_GRAIN bytes; larger ones from malloc. */
#define SLAB_GRAIN 16
#define SLAB_MAX 1024
#define SLAB_NCLASS (SLAB_MAX / SLAB_GRAIN)

/* About slab: one per Lua state, used by its thread only. free[c] lists
 * the freed blocks of class c ((c + 1) * SLAB_GRAIN bytes), linked
 * through their first word; next..end is the unused rest of the newest
 * region; regions lists every region (linked through their first word)
 * so that slab_free can unmap them. A freed block is kept for reuse by
 * the same class: memory goes back to the system at slab_free only. */
typedef struct slab {
  void *free[SLAB_NCLASS];
  char *next, *end;
  void *regions;
  size_t region_size; /* of the next region: doubles up to SLAB_REGION */
  size_t mapped;      /* bytes in regions */
} slab;

void slab_init(slab *s);
/* The lua_Alloc: ud is the slab. */
void *slab_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Unmaps every region. Blocks from malloc must have been freed already
 * (lua_close does it). */
void slab_free(slab *s);

#endif
