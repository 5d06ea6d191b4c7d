/*
 * io.h - what the files of the I/O tier share (internal to src/io).
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

/* A write to a socket or a pipe whose reader has gone raises SIGPIPE,
 * whose default action ends the process: weft ignores it before its
 * first such write, unless the host installed a handler (error.c). */
void weft__ignore_sigpipe(void);

#endif
