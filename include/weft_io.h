/*
 * weft_io.h - the public C API of weft's I/O on the host tier: operations
 * a C task, or any binding, starts and awaits. Files, DNS and processes
 * so far; sockets and HTTP move here next (docs/c-api.md).
 * SPDX-License-Identifier: MIT
 *
 * About operations: each function checks what it is given (WEFT_EINVAL,
 * with *out NULL, for a NULL pointer or a bad value), copies it, and
 * starts the operation as a call (weft_call_t, see weft.h) that the
 * caller owns: await weft_call_future(*out), read weft_call_result or
 * weft_call_error, then weft_call_release. Releasing or cancelling a call
 * early abandons the operation: a job not yet started never runs, one
 * running finishes on its worker and its result is dropped. File
 * operations run as one job of the loop's pool (weft_loop_set_pool) at
 * normal priority; a name lookup in libuv's thread pool; a process on the
 * loop. A full pool queue returns WEFT_EFULL with *out set to
 * the call, not started: await weft_loop_room(loop) and weft_call_start
 * it. Failures carry libuv's code (UV_ENOENT...) and a message that names
 * the path: "x.txt: No such file or directory". Loop thread only.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- errors */

/* Writes "<what>: <Message>" into buf (size bytes, always terminated): the
 * message of code (libuv's, or weft's for a WEFT_E* code) with a capital,
 * as strerror writes it; what may be NULL. A what too long for buf is cut
 * ("...") so that the message is never. Returns what snprintf returns.
 * Threads: any. */
WEFT_API int weft_io_error_text(char *buf, size_t size, const char *what,
                                int code);
/* The symbolic name of code: libuv's ("ENOENT", "EAI_NONAME") or weft's
 * ("WEFT_ECANCELED"). Never NULL. Threads: any. */
WEFT_API const char *weft_io_err_name(int code);

/* ------------------------------------------------------------------- DNS */

/* Resolves host (a name or a numeric address) with the system's resolver
 * in libuv's thread pool: the result is an array of numeric addresses
 * (strings, IPv4 and IPv6), in the resolver's order, never empty (no
 * address at all is UV_EAI_NODATA). A numeric host is its own result,
 * settled without a lookup. Cancelling the call cancels a lookup still
 * queued; one already running finishes and is dropped. A time limit is
 * the awaiting task's deadline: cancel the call when it passes. The call
 * is named "dns.resolve"; a failure's message names host. */
WEFT_API int weft_dns_resolve(weft_loop_t *loop, const char *host,
                              weft_call_t **out);

/* -------------------------------------------------------------- processes */

/* About weft_process_opts: what weft_process_exec runs, borrowed until it
 * returns (the child is spawned, and stdin_data copied, before that).
 * cmd: the program, looked up in PATH; it is also argv[0].
 * args: its other arguments, NULL-terminated (NULL: none).
 * env: changes to the inherited environment, NULL-terminated (NULL: none):
 *   "NAME=value" sets NAME, a bare "NAME" removes it.
 * cwd: the directory it runs in (NULL: the caller's).
 * stdin_data, stdin_len: bytes written to its standard input, which is
 *   then closed (empty when stdin_len is 0; a child need not read it). */
typedef struct weft_process_opts {
  const char *cmd;
  const char *const *args;
  const char *const *env;
  const char *cwd;
  const void *stdin_data;
  size_t stdin_len;
} weft_process_opts;

/* Runs a program without a shell, its output captured through pipes on
 * the loop (libuv's uv_spawn: no worker is held while it runs). The call
 * is fulfilled once the child exited and its output is read, with a map
 * {code, signal, stdout, stderr}: the exit status, the signal that ended
 * it (0 if none), and the whole output (strings, any bytes). A non-zero
 * exit is not a failure. A program that cannot start rejects with
 * libuv's code and "<cmd>: <Message>" ("ls-x: No such file or
 * directory"); output too large for memory with UV_ENOMEM, the child
 * killed. Cancelling or releasing the call early, or weft_loop_free with
 * it in flight, kills the child (SIGKILL; only the child, not what it
 * started) and closes the pipes; the child is still reaped, and the
 * memory goes once libuv's close callbacks have run. A time limit is the
 * awaiting task's deadline: cancel the call when it passes. With stdin
 * data, SIGPIPE is set to be ignored, if its action is still the default,
 * so that a child which does not read its input cannot end the process.
 * The call is named "process.exec". WEFT_EINVAL: a NULL loop, opts, cmd
 * or out, stdin_data NULL with stdin_len > 0, an env entry that is empty
 * or starts with "=". */
WEFT_API int weft_process_exec(weft_loop_t *loop,
                               const weft_process_opts *opts,
                               weft_call_t **out);

/* ------------------------------------------------------------------ files */

/* Whole-file operations. Results: read, a string (the whole file); stat,
 * a map {type, size, mode, mtime, atime, ctime, uid, gid} (type is "file",
 * "directory", "link", "fifo", "socket", "char", "block" or "other"; times
 * in seconds); exists, a boolean (only failures other than "not there"
 * reject); list, the names in a directory, sorted, without "." and "..";
 * the others, nil. write replaces the file (append: adds to its end) and
 * creates it if needed; mkdir with recursive makes the missing parents
 * (mkdir -p); remove takes a file or an empty directory, or with
 * recursive a whole tree. */
WEFT_API int weft_fs_read(weft_loop_t *loop, const char *path,
                          weft_call_t **out);
WEFT_API int weft_fs_write(weft_loop_t *loop, const char *path,
                           const void *data, size_t len, int append,
                           weft_call_t **out);
WEFT_API int weft_fs_stat(weft_loop_t *loop, const char *path,
                          weft_call_t **out);
WEFT_API int weft_fs_exists(weft_loop_t *loop, const char *path,
                            weft_call_t **out);
WEFT_API int weft_fs_list(weft_loop_t *loop, const char *path,
                          weft_call_t **out);
WEFT_API int weft_fs_mkdir(weft_loop_t *loop, const char *path,
                           int recursive, weft_call_t **out);
WEFT_API int weft_fs_remove(weft_loop_t *loop, const char *path,
                            int recursive, weft_call_t **out);
WEFT_API int weft_fs_rename(weft_loop_t *loop, const char *from,
                            const char *to, weft_call_t **out);

/* About weft_file_t: an open file, shared by its owner and the operations
 * in flight on it; the descriptor closes when the last of them lets go, so
 * an abandoned job never sees its descriptor closed or reused. It is made
 * unopened; weft_file_open opens it once. No descriptor number is ever
 * handed out. */
typedef struct weft_file_s weft_file_t;

/* Makes an unopened file for path (copied). *out (OUT) is the owner's
 * reference. WEFT_EINVAL, WEFT_ENOMEM. Threads: any. */
WEFT_API int weft_file_new(const char *path, weft_file_t **out);
/* Drops the owner's reference: the descriptor closes once no operation
 * uses it. NULL is ignored. Threads: any. */
WEFT_API void weft_file_close(weft_file_t *f);
/* Whether mode is one of fopen's: r w a r+ w+ a+, with b allowed after
 * the letter. Threads: any. */
WEFT_API int weft_file_valid_mode(const char *mode);
/* Opens the file with mode (a second open fails with UV_EBUSY). */
WEFT_API int weft_file_open(weft_loop_t *loop, weft_file_t *f,
                            const char *mode, weft_call_t **out);
/* Reads up to max bytes (max >= 1): a string, or nil at the end. */
WEFT_API int weft_file_read(weft_loop_t *loop, weft_file_t *f, size_t max,
                            weft_call_t **out);
/* Writes len bytes (copied). */
WEFT_API int weft_file_write(weft_loop_t *loop, weft_file_t *f,
                             const void *data, size_t len,
                             weft_call_t **out);
/* Moves the position as lseek does; the result is the new position. */
enum { WEFT_SEEK_SET = 0, WEFT_SEEK_CUR = 1, WEFT_SEEK_END = 2 };
WEFT_API int weft_file_seek(weft_loop_t *loop, weft_file_t *f, int whence,
                            int64_t offset, weft_call_t **out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
