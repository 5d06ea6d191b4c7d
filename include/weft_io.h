/*
 * weft_io.h - the public C API of weft's I/O on the host tier: operations
 * a C task, or any binding, starts and awaits: files, DNS, processes,
 * TCP and the HTTP client (docs/c-api.md).
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
 *
 * About SIGPIPE: a write to a socket or pipe whose reader has gone would
 * end the process; weft ignores SIGPIPE before its first socket or its
 * first process with input, unless the host installed its own handler,
 * so such a write fails with UV_EPIPE instead.
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

/* ------------------------------------------------------------------- TCP */

/* About weft_tcp_t: a TCP connection. weft allocates it; its owner (who
 * connected it, or the accept callback it was handed to) ends it with
 * weft_tcp_free, whose memory goes once libuv is done with the socket.
 * Reads and writes are polls: a call is answered at once (0), fails (a
 * negative code), or returns WEFT_PENDING with *wait set to the future to
 * await before calling again. One task reads and one writes at a time:
 * the connection remembers them (weft_tcp_reader, weft_tcp_writer). A task
 * whose cancellation was requested no longer holds its turn, so the task
 * that cancelled it may take over. The socket is read only while a reader
 * waits for more than the buffer holds, so a slow reader slows the sender.
 * weft_tcp_close (or the loop's end) closes it at once and wakes the tasks
 * waiting on it; every call then returns WEFT_ECLOSED. A closed
 * connection keeps its memory until weft_tcp_free. Loop thread only. */
typedef struct weft_tcp_s weft_tcp_t;

/* Bytes lent by a read: valid until the next call on the connection. */
typedef struct weft_span_t {
  const char *ptr;
  size_t len;
} weft_span_t;

/* What a read waits for: some bytes (up to n), exactly n, a line without
 * or with its "\n" (of at most n bytes, 0: the connection's max_line),
 * or everything up to the end. */
enum {
  WEFT_READ_SOME = 1,
  WEFT_READ_EXACT,
  WEFT_READ_LINE,
  WEFT_READ_LINE_KEEP,
  WEFT_READ_ALL,
  WEFT_READ_UNTIL /* weft_tcp_read_until's, not weft_tcp_read's */
};
/* The longest pattern weft_tcp_read_until takes. */
#define WEFT_UNTIL_MAX 4096

/* Starts connecting to ip (numeric: weft_dns_resolve names) and port.
 * *out (OUT) is the connection; poll it with weft_tcp_poll_connect.
 * WEFT_EINVAL (with *out NULL), WEFT_ENOMEM, or libuv's code. */
WEFT_API int weft_tcp_connect(weft_loop_t *loop, const char *ip, int port,
                              weft_tcp_t **out);
/* 0 once connected; WEFT_PENDING (await *wait, then poll again); or why
 * it failed (the connection is then closed). */
WEFT_API int weft_tcp_poll_connect(weft_tcp_t *c, weft_future_t **wait);

/* Reads for task t. 0: *out holds the bytes (consumed: lent until the
 * next call on c). WEFT_PENDING: t is the reader; await *wait and call
 * again. UV_EOF: the stream ended (WEFT_READ_EXACT: *out holds what came,
 * not consumed; the others hand out what is left first, and READ_ALL
 * answers 0 with what came). UV_EMSGSIZE: the line at the front is longer
 * than allowed (the bytes stay, for a read of a count). WEFT_ESTATE:
 * another task is reading. WEFT_ECLOSED, WEFT_EINVAL, or the stream's
 * error. */
WEFT_API int weft_tcp_read(weft_tcp_t *c, weft_task_t *t, int mode,
                           size_t n, weft_span_t *out, weft_future_t **wait);
/* Reads up to the first occurrence of pat (plen bytes, 1..WEFT_UNTIL_MAX;
 * copied) for task t, as weft_tcp_read does otherwise. 0 with *found 1:
 * *out holds the bytes before pat (with pat when incl) and pat is
 * consumed; 0 with *found 0 (max > 0 only): *out holds max bytes that no
 * match of pat begins in, pat stays ahead. UV_EOF: the stream ended
 * first; *out holds what came, not consumed. */
WEFT_API int weft_tcp_read_until(weft_tcp_t *c, weft_task_t *t,
                                 const char *pat, size_t plen, size_t max,
                                 int incl, weft_span_t *out, int *found,
                                 weft_future_t **wait);
/* Task t gives up its read (it was cancelled): reading stops, what came
 * stays buffered. Harmless if t is not the reader. */
WEFT_API void weft_tcp_read_abandon(weft_tcp_t *c, weft_task_t *t);
/* Writes len bytes for task t. 0: the kernel has them all. WEFT_PENDING:
 * the rest is being written; data is borrowed until *wait settles, then
 * weft_tcp_poll_write gives the outcome. WEFT_ESTATE: another task is
 * writing. WEFT_ECLOSED (also when a cancelled writer left the stream
 * half-written: the connection is closed then), or libuv's code. */
WEFT_API int weft_tcp_write(weft_tcp_t *c, weft_task_t *t, const void *data,
                            size_t len, weft_future_t **wait);
/* Writes what the kernel takes now of len bytes, without waiting: the
 * number of bytes taken (0..len), or a negative code as weft_tcp_write's.
 * A caller that must keep its bytes alive for a pending write (a binding
 * anchoring a string) tries this first and pays for that only when the
 * kernel's buffer is full; weft_tcp_write then writes the rest. */
WEFT_API long weft_tcp_try_write(weft_tcp_t *c, weft_task_t *t,
                                 const void *data, size_t len);
/* Sends the end of the stream once the writes in flight are out (reading
 * goes on); like a write that has no data. */
WEFT_API int weft_tcp_shutdown(weft_tcp_t *c, weft_task_t *t,
                               weft_future_t **wait);
/* The outcome of t's write or shutdown once *wait settled: 0 or libuv's
 * code, and t's turn ends; WEFT_PENDING (with *wait) while it goes on;
 * WEFT_ECLOSED if the connection closed; WEFT_ESTATE if t is not the
 * writer. */
WEFT_API int weft_tcp_poll_write(weft_tcp_t *c, weft_task_t *t,
                                 weft_future_t **wait);
/* Task t gives up its write (it was cancelled): part of the data may be
 * out, so the connection is closed. Harmless if t is not the writer. */
WEFT_API void weft_tcp_write_abandon(weft_tcp_t *c, weft_task_t *t);
/* Whether c may be reused by another owner (a pool): 0 when it is open,
 * idle (no task reads or writes, nothing buffered) and the peer has
 * neither ended it nor sent anything; else UV_EOF, WEFT_ESTATE (busy or
 * bytes pending), WEFT_ECLOSED or the socket's error. Asks the kernel
 * without waiting. */
WEFT_API int weft_tcp_idle_check(weft_tcp_t *c);
/* The reading and the writing task, or NULL. */
WEFT_API weft_task_t *weft_tcp_reader(const weft_tcp_t *c);
WEFT_API weft_task_t *weft_tcp_writer(const weft_tcp_t *c);
/* Closes at once (harmless if closed); waiting tasks wake. */
WEFT_API void weft_tcp_close(weft_tcp_t *c);
/* Closes c and lets go of it (NULL is ignored); also after its loop was
 * freed (the loop closed it then). */
WEFT_API void weft_tcp_free(weft_tcp_t *c);
WEFT_API int weft_tcp_closed(const weft_tcp_t *c);
/* The peer as "host:port" for messages (connect: the numeric address
 * unless set; accept: the peer's address). The name is copied, cut at
 * 319 bytes. */
WEFT_API const char *weft_tcp_name(const weft_tcp_t *c);
WEFT_API void weft_tcp_set_name(weft_tcp_t *c, const char *name);
/* The longest line a line read takes; 0 or SIZE_MAX: no limit. The
 * default is 1 MiB. */
WEFT_API void weft_tcp_set_max_line(weft_tcp_t *c, size_t max);
WEFT_API size_t weft_tcp_max_line(const weft_tcp_t *c);
/* The peer's (peer != 0) or the local address: ip (INET6_ADDRSTRLEN
 * bytes at least) and port. 0 or libuv's code. */
WEFT_API int weft_tcp_addr(weft_tcp_t *c, int peer, char *ip, size_t size,
                           int *port);

/* About weft_server_t: a listening socket. Each connection accepted is
 * handed to on_accept, which owns it (weft_tcp_free). With no memory for
 * a connection, its client is turned away and the server goes on. An
 * idle server does not keep its loop running unless held
 * (weft_server_hold). weft_server_close stops accepting and settles the
 * closed future; weft_server_free also lets go of it. */
typedef struct weft_server_s weft_server_t;
typedef void (*weft_accept_cb)(weft_server_t *s, weft_tcp_t *c, void *ud);

/* Binds ip (numeric) and port (0: any free port) and listens. *out (OUT)
 * is the server. WEFT_EINVAL, WEFT_ENOMEM, or libuv's code. */
WEFT_API int weft_tcp_listen(weft_loop_t *loop, const char *ip, int port,
                             int backlog, weft_accept_cb on_accept, void *ud,
                             weft_server_t **out);
WEFT_API int weft_server_port(const weft_server_t *s);
WEFT_API weft_future_t *weft_server_closed(weft_server_t *s);
/* hold 1 keeps the loop running while the server listens; 0 undoes one. */
WEFT_API void weft_server_hold(weft_server_t *s, int hold);
/* The max_line of the connections it accepts from now on. */
WEFT_API void weft_server_set_max_line(weft_server_t *s, size_t max);
WEFT_API void weft_server_close(weft_server_t *s);
WEFT_API void weft_server_free(weft_server_t *s);

/* ------------------------------------------------------------------ HTTP */

/* About weft_http_opts: what weft_http_request sends, borrowed until it
 * returns (everything is copied).
 * url: an http:// or https:// URL (scheme in any case), no control
 *   character.
 * method: a token (RFC 9110: "GET", "PATCH"...); NULL: GET, or POST
 *   with a body. "HEAD" asks for no body.
 * headers: header lines, NULL-terminated (NULL: none): "Name: value"
 *   (the value without a control character but tab), "Name:" to remove
 *   a header sent by default (Host, Accept, and with a body
 *   Content-Length and Content-Type, as curl sends them), "Name;" to
 *   send it empty.
 * body, body_len: the request body (any bytes); body NULL: none.
 * timeout_ms: 0, or the time the whole request, and each read of a
 *   stream, must be done within.
 * max_body: a longer body fails the request (UV_EFBIG,
 *   "FILESIZE_EXCEEDED"); -1: no limit.
 * follow_redirects: follow 3xx with a Location, 10 at most.
 * ca_file: a PEM file of authorities to trust (NULL: the system's).
 * insecure: do not verify the server's certificate (tests only).
 * stream: weft_http_poll answers once the headers are in; the body is
 *   read as it comes, the transfer paused while 64 KiB wait. */
typedef struct weft_http_opts {
  const char *url;
  const char *method;
  const char *const *headers;
  const void *body;
  size_t body_len;
  uint64_t timeout_ms;
  int64_t max_body;
  int follow_redirects;
  const char *ca_file;
  int insecure;
  int stream;
} weft_http_opts;

/* About weft_http_t: one HTTP(S) request, owned by its caller
 * (weft_http_free, which abandons it if it still runs). A plain http://
 * request goes the native HTTP/1.1 way: libuv sockets, http_parser,
 * weft's resolver, and a pool of the loop's kept-alive connections by
 * host and port (256 idle ones kept); a request sent on a kept
 * connection that fails before any byte of an answer is sent once more
 * on a new one if its method may be repeated (GET, HEAD, PUT, DELETE,
 * OPTIONS, TRACE). The rest goes through the loop's curl multi, made by
 * the first such request: https://, a redirect to it, credentials in the
 * URL, a request's own Expect or Transfer-Encoding line, a body over
 * 1 MiB without an "Expect:" line, and every request of a loop whose
 * environment named a proxy (http_proxy, all_proxy, ALL_PROXY) at its
 * first request; it keeps 256 connections, or four per request in
 * flight if more. libcurl (libcurl.so.4) is loaded then. Both paths run
 * requests at once on the loop's thread and answer the calls below the
 * same way (statuses, headers, bodies, streams, limits, error codes and
 * names). Its poll and read are
 * like weft_tcp_read: answered (0), failed (a negative code), or
 * WEFT_PENDING with the future to await (with weft_http_wait_ms as its
 * time limit) before calling again. A failure is a libuv code
 * (UV_ECONNREFUSED, UV_EFBIG, UV_EPROTO for most of curl's...); its text,
 * and curl's name for it (on either path), come from weft_http_error and
 * weft_http_error_name. WEFT_ETIMEDOUT: timeout_ms passed (the transfer
 * goes on until freed). WEFT_ECLOSED: the loop was freed meanwhile
 * (weft_loop_free abandons every request in flight; the owner still
 * frees it). Loop thread only. */
typedef struct weft_http_s weft_http_t;

/* Starts a request. *out (OUT) is the request. WEFT_EINVAL (*out NULL)
 * for a NULL argument or an option against weft_http_opts, WEFT_ENOMEM,
 * UV_ENOSYS if it needs libcurl and libcurl cannot be loaded
 * (weft_http_load_error says why). */
WEFT_API int weft_http_request(weft_loop_t *loop, const weft_http_opts *opts,
                               weft_http_t **out);
/* 0 once the response is in (a stream: its headers); then the status,
 * URL and headers can be read. WEFT_PENDING, a failure, WEFT_ETIMEDOUT
 * or WEFT_ECLOSED. */
WEFT_API int weft_http_poll(weft_http_t *r, weft_future_t **wait);
/* Reads the body after a poll answered 0: 0 with bytes in *out (lent
 * until the next call on r); a whole response's body comes in one
 * piece. UV_EOF at its end (and after). A stream: WEFT_PENDING until
 * bytes come, and its failure once what came before it was read. */
WEFT_API int weft_http_read(weft_http_t *r, weft_span_t *out,
                            weft_future_t **wait);
/* The time limit for awaiting r's future: ms left until its deadline, 0
 * once passed, WEFT_FOREVER without timeout_ms. */
WEFT_API uint64_t weft_http_wait_ms(const weft_http_t *r);
/* The status of the final response (0 before its headers). */
WEFT_API long weft_http_status(const weft_http_t *r);
/* The URL asked for, or with final the final response's (after
 * redirects) once its headers are in. Borrowed from r. */
WEFT_API const char *weft_http_url(const weft_http_t *r, int final);
/* The headers of the final response, one field a call: 1 with its name
 * and value (trimmed; folded lines joined by one space) lent from r, 0
 * at the end. *pos starts at 0. Status lines and trailers are left
 * out. */
WEFT_API int weft_http_header_next(const weft_http_t *r, size_t *pos,
                                   weft_span_t *name, weft_span_t *value);
/* Why r failed: fills *out {code, "http.request", "<url>: <reason>"}
 * (borrowed from r) and returns the code; 0 if it did not fail. */
WEFT_API int weft_http_error(weft_http_t *r, weft_error_t *out);
/* curl's name of the failure without CURLE_ ("COULDNT_CONNECT",
 * "FILESIZE_EXCEEDED"...), or NULL. */
WEFT_API const char *weft_http_error_name(const weft_http_t *r);
/* Abandons r if it still runs and frees it; a task waiting on it wakes.
 * NULL is ignored; also after its loop was freed. */
WEFT_API void weft_http_free(weft_http_t *r);
/* Why libcurl could not be loaded ("cannot load libcurl: ..."), or "". */
WEFT_API const char *weft_http_load_error(void);

/* The loop's HTTP counters: requests started, those in flight, and the
 * connections open (idle kept-alive ones included). */
typedef struct weft_http_stats_t {
  uint64_t requests;
  uint64_t active;
  uint64_t connections;
} weft_http_stats_t;
/* 1 with *out filled (both paths counted) once the loop has made a
 * request, else 0. */
WEFT_API int weft_http_stats(weft_loop_t *loop, weft_http_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
