/*
 * compat.h - lets the core tests (tests/c/test-future.c, test-sched.c,
 * test-task.c, test-cancel.c, test-group.c, test-chan.c, test-sem.c,
 * test-error.c), unchanged, test the embedded profile (force-included
 * with -include): the embedded tier has no weft_chan_init, so channels
 * get their buffer from a static arena here, with weft_chan_init's
 * errors.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_TEST_EMBEDDED_COMPAT_H
#define WEFT_TEST_EMBEDDED_COMPAT_H

#include "weft.h"

int test_chan_init(weft_sched_t *s, weft_chan_t *ch, size_t cap,
                   size_t item_size);
#define weft_chan_init test_chan_init

#endif
