/*
 * fs.c - files as jobs of weft's worker pool (I/O tier, weft_io.h). Each
 * operation is one pool job that does the whole thing with plain POSIX
 * calls (a read opens, sizes, reads and closes in one hop), so files get
 * the pool's priorities, backpressure, counters and cancellation; libuv's
 * uv_fs_* would take one hop per system call and its own thread pool.
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft_io.h"
/* host.h for the value allocator (weft__valloc): a job moves the buffer it
 * read into its result without a copy, and a file's reference travels
 * with its jobs (call->fini). */
#include "host.h"

#define CHUNK (64 * 1024)

/* --------------------------------------------------------------- errors */

/* Rejects call with "<path>: <Message>" and libuv's code for errno e. */
static void let_go(weft_call_t *c);

static void fail(weft_call_t *c, const char *path, int e) {
  char msg[4096 + 256];
  int code = uv_translate_sys_error(e);
  weft_io_error_text(msg, sizeof msg, path, code); /* path may be the file's */
  c->err = code;
  let_go(c);
  weft_call_reject(c, msg);
}

/* Resolves call with *v (NULL: nil), letting go of its file first. */
static void done(weft_call_t *c, weft_value_t *v) {
  let_go(c);
  weft_call_resolve(c, v);
}

static const weft_value_t *arg(weft_call_t *c, size_t i) {
  const weft_value_t *a = weft_call_args(c);
  static const weft_value_t nil = {WEFT_VNIL, {0}};
  return i < a->u.a.len ? &a->u.a.items[i] : &nil;
}

static const char *sarg(weft_call_t *c, size_t i) {
  const weft_value_t *v = arg(c, i);
  return v->type == WEFT_VSTR ? v->u.s.ptr : "";
}

static int barg(weft_call_t *c, size_t i) {
  const weft_value_t *v = arg(c, i);
  return v->type == WEFT_VBOOL && v->u.b;
}

static int64_t iarg(weft_call_t *c, size_t i) {
  const weft_value_t *v = arg(c, i);
  return v->type == WEFT_VINT ? v->u.i : 0;
}

/* Moves a malloc'd buffer of len bytes (room for len + 1) into a string
 * value, without a copy. */
static void str_value(weft_value_t *v, char *buf, size_t len) {
  buf[len] = '\0';
  v->type = WEFT_VSTR;
  v->u.s.ptr = buf;
  v->u.s.len = len;
}

/* Reads fd to its end into a new string value. 0 or an errno. */
static int read_all(int fd, size_t hint, weft_value_t *out) {
  size_t cap = hint ? hint + 1 : CHUNK, len = 0;
  char *buf = weft__valloc(NULL, 0, cap + 1), *nb;
  ssize_t n;
  if (buf == NULL) return ENOMEM;
  for (;;) {
    if (len == cap) {
      if ((nb = weft__valloc(buf, cap + 1, cap * 2 + 1)) == NULL) {
        weft__valloc(buf, cap + 1, 0);
        return ENOMEM;
      }
      buf = nb;
      cap *= 2;
    }
    n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      weft__valloc(buf, cap + 1, 0);
      return e;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  if (len < cap && (nb = weft__valloc(buf, cap + 1, len + 1)) == NULL) {
    weft__valloc(buf, cap + 1, 0); /* the value must own len + 1 bytes */
    return ENOMEM;
  }
  str_value(out, len < cap ? nb : buf, len);
  return 0;
}

static int write_all(int fd, const char *p, size_t len) {
  ssize_t n;
  while (len > 0) {
    n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* ----------------------------------------------------------- path jobs */

/* fs.read(path): open, size, read, close, in one job. */
static void job_read(weft_call_t *c, void *ud) {
  const char *path = sarg(c, 0);
  weft_value_t v;
  struct stat st;
  int fd, e;
  (void)ud;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return fail(c, path, errno);
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return fail(c, path, EISDIR);
  }
  e = read_all(fd, fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
                       ? (size_t)st.st_size : 0, &v);
  close(fd);
  if (e) return fail(c, path, e);
  weft_call_resolve(c, &v);
}

/* The string argument i: its value, or an empty string's. */
static const weft_value_t *svalue(weft_call_t *c, size_t i) {
  static const weft_value_t empty = {WEFT_VSTR, {.s = {"", 0}}};
  const weft_value_t *v = arg(c, i);
  return v->type == WEFT_VSTR ? v : &empty;
}

/* fs.write(path, data, append) */
static void job_write(weft_call_t *c, void *ud) {
  const char *path = sarg(c, 0);
  const weft_value_t *data = svalue(c, 1);
  int fd, e, flags = O_WRONLY | O_CREAT | O_CLOEXEC;
  (void)ud;
  flags |= barg(c, 2) ? O_APPEND : O_TRUNC;
  if ((fd = open(path, flags, 0666)) < 0) return fail(c, path, errno);
  e = write_all(fd, data->u.s.ptr, data->u.s.len);
  if (close(fd) != 0 && e == 0) e = errno;
  if (e) return fail(c, path, e);
  weft_call_resolve(c, NULL);
}

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "link";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "char";
  if (S_ISBLK(m)) return "block";
  return "other";
}

static double secs(struct timespec ts) {
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* fs.stat(path) -> {type, size, mode, mtime, atime, ctime, uid, gid} */
static void job_stat(weft_call_t *c, void *ud) {
  static const char *const keys[] = {"type", "size", "mode", "mtime",
                                     "atime", "ctime", "uid", "gid"};
  const char *path = sarg(c, 0);
  const char *tn;
  weft_value_t m;
  struct stat st;
  size_t i;
  (void)ud;
  if (stat(path, &st) != 0) return fail(c, path, errno);
  if (weft_value_map(&m, 8) != 0) return fail(c, path, ENOMEM);
  for (i = 0; i < 8; i++)
    if (weft_value_str(&m.u.m.keys[i], keys[i], strlen(keys[i])) != 0) {
      weft_value_free(&m);
      return fail(c, path, ENOMEM);
    }
  tn = type_name(st.st_mode);
  if (weft_value_str(&m.u.m.vals[0], tn, strlen(tn)) != 0) {
    weft_value_free(&m);
    return fail(c, path, ENOMEM);
  }
  weft_value_int(&m.u.m.vals[1], (int64_t)st.st_size);
  weft_value_int(&m.u.m.vals[2], (int64_t)(st.st_mode & 07777));
  weft_value_num(&m.u.m.vals[3], secs(st.st_mtim));
  weft_value_num(&m.u.m.vals[4], secs(st.st_atim));
  weft_value_num(&m.u.m.vals[5], secs(st.st_ctim));
  weft_value_int(&m.u.m.vals[6], (int64_t)st.st_uid);
  weft_value_int(&m.u.m.vals[7], (int64_t)st.st_gid);
  weft_call_resolve(c, &m);
}

/* fs.exists(path) -> boolean; errors other than "not there" raise. */
static void job_exists(weft_call_t *c, void *ud) {
  const char *path = sarg(c, 0);
  weft_value_t v;
  struct stat st;
  (void)ud;
  if (stat(path, &st) != 0 && errno != ENOENT && errno != ENOTDIR)
    return fail(c, path, errno);
  weft_value_bool(&v, stat(path, &st) == 0);
  weft_call_resolve(c, &v);
}

static int cmp_str(const void *a, const void *b) {
  const weft_value_t *x = a, *y = b;
  return strcmp(x->u.s.ptr, y->u.s.ptr);
}

/* fs.list(path) -> sorted names, without "." and "..". */
static void job_list(weft_call_t *c, void *ud) {
  const char *path = sarg(c, 0);
  weft_value_t a, *items;
  struct dirent *de;
  size_t n = 0, cap = 16;
  DIR *d;
  int e = 0;
  (void)ud;
  if ((d = opendir(path)) == NULL) return fail(c, path, errno);
  if (weft_value_array(&a, cap) != 0) {
    closedir(d);
    return fail(c, path, ENOMEM);
  }
  while ((errno = 0, de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (n == cap) {
      items = weft__valloc(a.u.a.items, cap * sizeof *items,
                           cap * 2 * sizeof *items);
      if (items == NULL) {
        e = ENOMEM;
        break;
      }
      memset(items + cap, 0, cap * sizeof *items);
      a.u.a.items = items;
      a.u.a.len = cap *= 2;
    }
    if (weft_value_str(&a.u.a.items[n], de->d_name, strlen(de->d_name))) {
      e = ENOMEM;
      break;
    }
    n++;
  }
  if (de == NULL && errno) e = errno;
  closedir(d);
  if (e) {
    weft_value_free(&a);
    return fail(c, path, e);
  }
  /* The value must own exactly len items: shrink to what was filled. */
  if (n < cap) {
    items = n ? weft__valloc(a.u.a.items, cap * sizeof *items,
                             n * sizeof *items)
              : NULL;
    if (n && items == NULL) {
      weft_value_free(&a);
      return fail(c, path, ENOMEM);
    }
    if (n == 0) weft__valloc(a.u.a.items, cap * sizeof *items, 0);
    a.u.a.items = items;
    a.u.a.len = n;
  }
  if (n > 1) qsort(a.u.a.items, n, sizeof *items, cmp_str);
  weft_call_resolve(c, &a);
}

/* mkdir -p: creates each missing component of path (a writable copy). */
static int mkdir_p(char *path) {
  char *p = path, saved;
  struct stat st;
  for (;;) {
    while (*p == '/') p++;
    while (*p && *p != '/') p++;
    saved = *p;
    *p = '\0';
    if (mkdir(path, 0777) != 0) {
      if (errno != EEXIST) return errno;
      if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return ENOTDIR;
    }
    *p = saved;
    if (saved == '\0') return 0;
  }
}

/* fs.mkdir(path, recursive) */
static void job_mkdir(weft_call_t *c, void *ud) {
  const weft_value_t *pv = svalue(c, 0);
  int e = 0;
  (void)ud;
  if (!barg(c, 1)) {
    if (mkdir(pv->u.s.ptr, 0777) != 0) e = errno;
  } else {
    char *copy = weft__valloc(NULL, 0, pv->u.s.len + 1);
    if (copy == NULL) return fail(c, pv->u.s.ptr, ENOMEM);
    memcpy(copy, pv->u.s.ptr, pv->u.s.len + 1);
    errno = 0;
    e = mkdir_p(copy);
    weft__valloc(copy, pv->u.s.len + 1, 0);
  }
  if (e) return fail(c, pv->u.s.ptr, e);
  weft_call_resolve(c, NULL);
}

/* Removes path and, for a directory, what is in it. 0 or an errno; the
 * path that failed is left in *where (a buffer of PATH_MAX bytes). */
static int remove_tree(const char *path, char *where, size_t wsize) {
  struct stat st;
  struct dirent *de;
  DIR *d;
  int e = 0;
  if (lstat(path, &st) != 0) goto failed;
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) != 0) goto failed;
    return 0;
  }
  if ((d = opendir(path)) == NULL) goto failed;
  while (e == 0 && (de = readdir(d)) != NULL) {
    size_t n = strlen(path) + strlen(de->d_name) + 2;
    char *sub;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if ((sub = weft__valloc(NULL, 0, n)) == NULL) {
      e = ENOMEM;
      snprintf(where, wsize, "%s", path);
      break;
    }
    snprintf(sub, n, "%s/%s", path, de->d_name);
    e = remove_tree(sub, where, wsize);
    weft__valloc(sub, n, 0);
  }
  closedir(d);
  if (e) return e;
  if (rmdir(path) != 0) goto failed;
  return 0;
failed:
  e = errno;
  snprintf(where, wsize, "%s", path);
  return e;
}

/* fs.remove(path, recursive): a file, or a directory (empty unless
 * recursive). */
static void job_remove(weft_call_t *c, void *ud) {
  const char *path = sarg(c, 0);
  char where[4096];
  struct stat st;
  int e = 0;
  (void)ud;
  if (barg(c, 1)) {
    if ((e = remove_tree(path, where, sizeof where)) != 0)
      return fail(c, where, e);
  } else {
    if (lstat(path, &st) != 0) return fail(c, path, errno);
    if ((S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path)) != 0)
      return fail(c, path, errno);
  }
  weft_call_resolve(c, NULL);
}

/* fs.rename(from, to) */
static void job_rename(weft_call_t *c, void *ud) {
  (void)ud;
  if (rename(sarg(c, 0), sarg(c, 1)) != 0) return fail(c, sarg(c, 0), errno);
  weft_call_resolve(c, NULL);
}

/* ---------------------------------------------------------- open files */

/* About weft_file_t (see weft_io.h): refs counts the owner and each job
 * in flight; the last to let go closes the descriptor, on whichever
 * thread that is. The file is made with no descriptor (fd -1); the open
 * job gives it one, once (a compare-and-swap), so a second open fails and
 * a descriptor opened for an owner that left closes with the file. */
struct weft_file_s {
  atomic_int refs;
  atomic_int fd;
  size_t size; /* of this block */
  char path[1];
};
typedef weft_file_t FileH;

/* The descriptor of h for a job: -1 until opened (the calls then fail
 * with EBADF). The open job's release pairs with this acquire. */
static int fileh_fd(FileH *h) {
  return atomic_load_explicit(&h->fd, memory_order_acquire);
}

static void fileh_ref(FileH *h) {
  atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

static void fileh_unref(void *ud) {
  FileH *h = ud;
  if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (fileh_fd(h) >= 0) close(fileh_fd(h));
  weft__valloc(h, h->size, 0);
}

/* A file's job drops its reference to the file before it completes, not
 * when the worker lets go of the call afterwards: once the caller has the
 * result, closing the file (or its owner's end) closes the descriptor at
 * once, as a script expects. The call's fini then has nothing to do. The
 * worker holds its own reference to the call meanwhile, so the last
 * release of the call, which reads fini, comes after this write. */
static void let_go(weft_call_t *c) {
  if (c->fini != fileh_unref) return; /* a path job: no file */
  c->fini = NULL;
  fileh_unref(c->ud);
}

/* Open flags for a mode string as fopen's: r w a r+ w+ a+ (b ignored). */
static int mode_flags(const char *m) {
  int plus = strchr(m, '+') != NULL, f;
  switch (m[0]) {
  case 'r': f = plus ? O_RDWR : O_RDONLY; break;
  case 'w': f = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC; break;
  case 'a': f = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND; break;
  default: return -1;
  }
  for (m++; *m; m++)
    if (*m != '+' && *m != 'b') return -1;
  return f | O_CLOEXEC;
}

/* open(mode): opens the file's path with fopen's mode. A second open of
 * one file fails (EBUSY) and closes what it opened. */
static void job_open(weft_call_t *c, void *ud) {
  FileH *h = ud;
  int flags = mode_flags(sarg(c, 0)), fd, none = -1;
  struct stat st;
  if (flags < 0) return fail(c, h->path, EINVAL);
  if ((fd = open(h->path, flags, 0666)) < 0) return fail(c, h->path, errno);
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return fail(c, h->path, EISDIR);
  }
  if (!atomic_compare_exchange_strong_explicit(&h->fd, &none, fd,
                                               memory_order_release,
                                               memory_order_relaxed)) {
    close(fd);
    return fail(c, h->path, EBUSY);
  }
  done(c, NULL);
}

/* read(n): up to n bytes, or nil at the end. */
static void job_hread(weft_call_t *c, void *ud) {
  FileH *h = ud;
  int64_t n64 = iarg(c, 0);
  size_t want = (size_t)n64;
  char *buf;
  weft_value_t v;
  ssize_t n;
  if (n64 < 0 || (uint64_t)n64 >= SIZE_MAX) return fail(c, h->path, EINVAL);
  if ((buf = weft__valloc(NULL, 0, want + 1)) == NULL)
    return fail(c, h->path, ENOMEM);
  do n = read(fileh_fd(h), buf, want);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    int e = errno;
    weft__valloc(buf, want + 1, 0);
    if (n < 0) return fail(c, h->path, e);
    done(c, NULL);
    return;
  }
  if ((size_t)n < want) { /* the value must own exactly len + 1 bytes */
    char *nb = weft__valloc(buf, want + 1, (size_t)n + 1);
    if (nb == NULL) {
      weft__valloc(buf, want + 1, 0);
      return fail(c, h->path, ENOMEM);
    }
    buf = nb;
  }
  str_value(&v, buf, (size_t)n);
  done(c, &v);
}

static void job_hwrite(weft_call_t *c, void *ud) {
  FileH *h = ud;
  const weft_value_t *d = svalue(c, 0);
  int e = write_all(fileh_fd(h), d->u.s.ptr, d->u.s.len);
  if (e) return fail(c, h->path, e);
  done(c, NULL);
}

static void job_hseek(weft_call_t *c, void *ud) {
  static const int whence[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  FileH *h = ud;
  int64_t w = iarg(c, 0);
  weft_value_t v;
  off_t pos;
  if (w < 0 || w > 2) return fail(c, h->path, EINVAL);
  if ((pos = lseek(fileh_fd(h), (off_t)iarg(c, 1), whence[w])) < 0)
    return fail(c, h->path, errno);
  weft_value_int(&v, (int64_t)pos);
  done(c, &v);
}

/* ------------------------------------------------------------ entries */

/* Makes and starts the pool call of job with args (moved in). A file's
 * job holds a reference to it, dropped with the call (call->fini). */
static int start(weft_loop_t *loop, const char *name, weft_host_fn job,
                 FileH *f, weft_value_t *args, weft_call_t **out) {
  weft_fn_opts o = {WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0, NULL, f};
  int r = weft_call_new(loop, name, job, &o, NULL, args, out);
  if (r != 0) return r;
  if (f) {
    fileh_ref(f);
    (*out)->fini = fileh_unref;
  }
  return weft_call_start(*out);
}

/* The arguments of a job, from spec: s a C string, d bytes (pointer and
 * length), b a boolean, i an integer. 0 or WEFT_ENOMEM. */
static int pack(weft_value_t *args, const char *spec, ...) {
  size_t i, n = strlen(spec);
  va_list ap;
  int r = 0;
  if (weft_value_array(args, n) != 0) return WEFT_ENOMEM;
  va_start(ap, spec);
  for (i = 0; i < n && r == 0; i++) {
    weft_value_t *v = &args->u.a.items[i];
    const char *p;
    switch (spec[i]) {
    case 's':
      p = va_arg(ap, const char *);
      r = weft_value_str(v, p, strlen(p));
      break;
    case 'd':
      p = va_arg(ap, const char *);
      r = weft_value_str(v, p, va_arg(ap, size_t));
      break;
    case 'b': weft_value_bool(v, va_arg(ap, int)); break;
    default: weft_value_int(v, va_arg(ap, int64_t)); break;
    }
  }
  va_end(ap);
  if (r != 0) weft_value_free(args);
  return r ? WEFT_ENOMEM : 0;
}

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (out) *out = NULL;                                                   \
    if (loop == NULL || out == NULL || !(cond)) return WEFT_EINVAL;         \
  } while (0)

#define PACK_START(name, job, f, ...)                                       \
  do {                                                                      \
    weft_value_t args;                                                      \
    if (pack(&args, __VA_ARGS__) != 0) return WEFT_ENOMEM;                  \
    return start(loop, name, job, f, &args, out);                           \
  } while (0)

int weft_fs_read(weft_loop_t *loop, const char *path, weft_call_t **out) {
  CHECK(path != NULL);
  PACK_START("fs.read", job_read, NULL, "s", path);
}

int weft_fs_write(weft_loop_t *loop, const char *path, const void *data,
                  size_t len, int append, weft_call_t **out) {
  CHECK(path != NULL && (data != NULL || len == 0));
  PACK_START(append ? "fs.append" : "fs.write", job_write, NULL, "sdb", path,
             data ? data : "", len, append != 0);
}

int weft_fs_stat(weft_loop_t *loop, const char *path, weft_call_t **out) {
  CHECK(path != NULL);
  PACK_START("fs.stat", job_stat, NULL, "s", path);
}

int weft_fs_exists(weft_loop_t *loop, const char *path, weft_call_t **out) {
  CHECK(path != NULL);
  PACK_START("fs.exists", job_exists, NULL, "s", path);
}

int weft_fs_list(weft_loop_t *loop, const char *path, weft_call_t **out) {
  CHECK(path != NULL);
  PACK_START("fs.list", job_list, NULL, "s", path);
}

int weft_fs_mkdir(weft_loop_t *loop, const char *path, int recursive,
                  weft_call_t **out) {
  CHECK(path != NULL);
  PACK_START("fs.mkdir", job_mkdir, NULL, "sb", path, recursive != 0);
}

int weft_fs_remove(weft_loop_t *loop, const char *path, int recursive,
                   weft_call_t **out) {
  CHECK(path != NULL);
  PACK_START("fs.remove", job_remove, NULL, "sb", path, recursive != 0);
}

int weft_fs_rename(weft_loop_t *loop, const char *from, const char *to,
                   weft_call_t **out) {
  CHECK(from != NULL && to != NULL);
  PACK_START("fs.rename", job_rename, NULL, "ss", from, to);
}

int weft_file_new(const char *path, weft_file_t **out) {
  size_t len;
  FileH *h;
  if (out) *out = NULL;
  if (path == NULL || out == NULL) return WEFT_EINVAL;
  len = strlen(path);
  if ((h = weft__valloc(NULL, 0, sizeof *h + len)) == NULL)
    return WEFT_ENOMEM;
  atomic_init(&h->refs, 1);
  atomic_init(&h->fd, -1);
  h->size = sizeof *h + len;
  memcpy(h->path, path, len + 1);
  *out = h;
  return 0;
}

void weft_file_close(weft_file_t *f) {
  if (f) fileh_unref(f);
}

int weft_file_valid_mode(const char *mode) {
  return mode != NULL && mode_flags(mode) >= 0;
}

int weft_file_open(weft_loop_t *loop, weft_file_t *f, const char *mode,
                   weft_call_t **out) {
  CHECK(f != NULL && weft_file_valid_mode(mode));
  PACK_START("fs.open", job_open, f, "s", mode);
}

int weft_file_read(weft_loop_t *loop, weft_file_t *f, size_t max,
                   weft_call_t **out) {
  CHECK(f != NULL && max >= 1 && max < (size_t)INT64_MAX);
  PACK_START("file:read", job_hread, f, "i", (int64_t)max);
}

int weft_file_write(weft_loop_t *loop, weft_file_t *f, const void *data,
                    size_t len, weft_call_t **out) {
  CHECK(f != NULL && (data != NULL || len == 0));
  PACK_START("file:write", job_hwrite, f, "d", data ? data : "", len);
}

int weft_file_seek(weft_loop_t *loop, weft_file_t *f, int whence,
                   int64_t offset, weft_call_t **out) {
  CHECK(f != NULL && whence >= WEFT_SEEK_SET && whence <= WEFT_SEEK_END);
  PACK_START("file:seek", job_hseek, f, "ii", (int64_t)whence, offset);
}
