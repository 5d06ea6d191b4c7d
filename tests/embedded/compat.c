/*
 * compat.c - the channel buffers of compat.h: a bump arena, never freed
 * (each test binary makes a few small channels).
 * SPDX-License-Identifier: MIT
 */
#include "compat.h"

static _Alignas(16) unsigned char arena[1 << 14];
static size_t used;

int test_chan_init(weft_sched_t *s, weft_chan_t *ch, size_t cap,
                   size_t item_size) {
  size_t n;
  if (item_size == 0) return weft_chan_init_buf(s, ch, NULL, cap, 0);
  if (cap > (sizeof arena - used) / item_size) return WEFT_ENOMEM;
  n = (cap * item_size + 15) & ~(size_t)15;
  if (n > sizeof arena - used) return WEFT_ENOMEM;
  used += n;
  return weft_chan_init_buf(s, ch, cap ? arena + used - n : NULL, cap,
                            item_size);
}
