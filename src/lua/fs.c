/*
 * fs.c - weft.fs: file system calls as jobs of weft's worker pool (Lua
 * binding). Each call is one pool job that does the whole operation with
 * plain POSIX calls (fs.read opens, sizes, reads and closes in one hop), so
 * files get the pool's priorities, backpressure, counters and
 * cancellation. The script-facing wrappers (argument checks, buffered
 * files, lines) are in io.lua.
 * SPDX-License-Identifier: MIT
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lweft.h"
#include "host.h"

#define HANDLE_MT "weft.FileHandle"
static const char HANDLE_TAG[] = HANDLE_MT;
#define CHUNK (64 * 1024)

/* --------------------------------------------------------------- errors */

/* Rejects call with "<path>: <Message>" and libuv's code for errno e. */
static void fail(weft_call_t *c, const char *path, int e) {
  char text[128], msg[4096 + 256];
  int code = uv_translate_sys_error(e);
  snprintf(text, sizeof text, "%s", uv_strerror(code));
  if (text[0] >= 'a' && text[0] <= 'z')
    text[0] -= 'a' - 'A'; /* "No such file or directory", as strerror */
  size_t n = strlen(path);
  snprintf(msg, sizeof msg, "%.*s%s: %s", (int)(n > 4000 ? 4000 : n), path,
           n > 4000 ? "..." : "", text); /* the message is never cut */
  c->err = code;
  weft_call_reject(c, msg);
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
    if ((sub = malloc(n)) == NULL) {
      e = ENOMEM;
      break;
    }
    snprintf(sub, n, "%s/%s", path, de->d_name);
    e = remove_tree(sub, where, wsize);
    free(sub);
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

/* About FileH: an open file descriptor shared by the script's handle and
 * the jobs in flight on it. Each holds a reference; the last one closes
 * the descriptor, on whichever thread drops it, so a cancelled job still
 * running on a worker never sees its descriptor closed or reused. The
 * handle is made first, with no descriptor (fd -1); the open job then
 * gives it one, once (a compare-and-swap). So no descriptor number ever
 * reaches Lua: a script cannot make weft close a descriptor it does not
 * own, and one opened for a caller that left is closed with its handle. */
typedef struct FileH {
  atomic_int refs;
  atomic_int fd;
  size_t size; /* of this block */
  char path[1];
} FileH;

/* The descriptor of h for a job: -1 until opened (the calls then fail
 * with EBADF). The open job's release pairs with this acquire. */
static int fileh_fd(FileH *h) {
  return atomic_load_explicit(&h->fd, memory_order_acquire);
}

static void fileh_ref(void *ud) {
  atomic_fetch_add_explicit(&((FileH *)ud)->refs, 1, memory_order_relaxed);
}

static void fileh_unref(void *ud) {
  FileH *h = ud;
  if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (fileh_fd(h) >= 0) close(fileh_fd(h));
  weft__valloc(h, h->size, 0);
}

/* The script's handle: owner of one reference until closed. */
typedef struct HandleUd {
  const char *tag; /* HANDLE_TAG: see About userdata tags */
  FileH *h;
} HandleUd;

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

/* h:open(mode): opens the handle's path with fopen's mode (see FileH).
 * A second open of one handle fails (EBUSY) and closes what it opened. */
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
  weft_call_resolve(c, NULL);
}

/* h:read(n): up to n bytes, or nil at the end. */
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
    weft_call_resolve(c, NULL);
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
  weft_call_resolve(c, &v);
}

static void job_hwrite(weft_call_t *c, void *ud) {
  FileH *h = ud;
  const weft_value_t *d = svalue(c, 0);
  int e = write_all(fileh_fd(h), d->u.s.ptr, d->u.s.len);
  if (e) return fail(c, h->path, e);
  weft_call_resolve(c, NULL);
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
  weft_call_resolve(c, &v);
}

/* ------------------------------------------------------------ bindings */

static const weft_fn_opts pool_opts = {WEFT_FN_POOL, WEFT_PRIO_NORMAL, 0,
                                       NULL, NULL};

/* The jobs, by the key of their primitive in the internal table. args
 * says what each takes after the handle of a handle job: s a string, b a
 * boolean, i an integer. */
static const struct Job {
  const char *key, *name, *args;
  weft_host_fn job;
  int handle;
} jobs[] = {
    {"fs_read", "fs.read", "s", job_read, 0},
    {"fs_write", "fs.write", "ssb", job_write, 0},
    {"fs_append", "fs.append", "ssb", job_write, 0},
    {"fs_stat", "fs.stat", "s", job_stat, 0},
    {"fs_exists", "fs.exists", "s", job_exists, 0},
    {"fs_list", "fs.list", "s", job_list, 0},
    {"fs_mkdir", "fs.mkdir", "sb", job_mkdir, 0},
    {"fs_remove", "fs.remove", "sb", job_remove, 0},
    {"fs_rename", "fs.rename", "ss", job_rename, 0},
    {"fs_open", "fs.open", "s", job_open, 1},
    {"fs_lines", "fs.lines", "s", job_open, 1},
    {"fs_hread", "file:read", "i", job_hread, 1},
    {"fs_hlines", "file:lines", "i", job_hread, 1},
    {"fs_hwrite", "file:write", "s", job_hwrite, 1},
    {"fs_hseek", "file:seek", "ii", job_hseek, 1},
};

#define NJOBS (sizeof jobs / sizeof jobs[0])

/* The job of the running primitive: upvalue 2 is its index in jobs, not
 * a function pointer, as a script can replace upvalues. */
static const struct Job *upjob(lua_State *L) {
  int isint;
  lua_Integer i = lua_tointegerx(L, lua_upvalueindex(2), &isint);
  if (!isint || i < 1 || (size_t)i > NJOBS)
    luaL_error(L, "weft.fs: corrupted upvalue 2 (expected a job number)");
  return &jobs[i - 1];
}

/* Leaves exactly the arguments spec says from first, of those types. */
static void check_args(lua_State *L, int first, const char *spec,
                       const char *fname) {
  static const char *const what[] = {"a string", "a boolean", "an integer"};
  int i;
  lua_settop(L, first + (int)strlen(spec) - 1);
  for (i = 0; spec[i]; i++) {
    int k = spec[i] == 's' ? 0 : spec[i] == 'b' ? 1 : 2;
    int ok = k == 0   ? lua_type(L, first + i) == LUA_TSTRING
             : k == 1 ? lua_type(L, first + i) == LUA_TBOOLEAN
                      : lua_isinteger(L, first + i);
    if (!ok)
      luaL_error(L, "%s: argument %d must be %s, got %s", fname, first + i,
                 what[k], luaL_typename(L, first + i));
  }
}

static HandleUd *check_handle(lua_State *L, const char *fname) {
  HandleUd *hu = lw_checkudata(L, 1, sizeof *hu, HANDLE_TAG, fname);
  if (hu->h == NULL) luaL_error(L, "%s: the file is closed", fname);
  return hu;
}

/* A job on the pool with the arguments checked against its spec (io.lua
 * checks them for the script; these are private). A handle job (h, ...)
 * runs on an open handle and holds a reference to its descriptor. */
static int l_job(lua_State *L) {
  State *S = upstate(L);
  const struct Job *j = upjob(L);
  weft_fn_opts o = pool_opts;
  HandleUd *hu = NULL;
  Task *t;
  if (j->handle) hu = check_handle(L, j->name);
  check_args(L, j->handle ? 2 : 1, j->args, j->name);
  t = lw_need_task(L, S, j->name);
  if (!j->handle)
    return lw_call(L, t, j->name, j->job, &o, 1, lua_gettop(L), NULL, NULL);
  o.ud = hu->h;
  return lw_call(L, t, j->name, j->job, &o, 2, lua_gettop(L) - 1, fileh_ref,
                 fileh_unref);
}

/* I.fs_handle(path) -> a handle for path, not yet open (see FileH),
 * owned by the running task. */
static int l_handle(lua_State *L) {
  State *S = upstate(L);
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  HandleUd *hu;
  if (len >= SIZE_MAX - sizeof *hu->h)
    return luaL_error(L, "fs.open: path too long");
  hu = lua_newuserdatauv(L, sizeof *hu, 0);
  hu->tag = HANDLE_TAG;
  hu->h = NULL;
  luaL_setmetatable(L, HANDLE_MT);
  hu->h = weft__valloc(NULL, 0, sizeof *hu->h + len);
  if (hu->h == NULL) return luaL_error(L, "fs.open: not enough memory");
  atomic_init(&hu->h->refs, 1);
  atomic_init(&hu->h->fd, -1);
  hu->h->size = sizeof *hu->h + len;
  memcpy(hu->h->path, path, len + 1);
  if (S->current) lw_task_own(L, S->current, -1);
  return 1;
}

/* Drops the handle's reference; the descriptor closes once no job uses
 * it. Closing twice is harmless. Also how its owning task closes it (see
 * LwOwned). */
static void hclose(lua_State *L, void *ud) {
  HandleUd *hu = ud;
  (void)L;
  if (hu->h) fileh_unref(hu->h);
  hu->h = NULL;
}
static const LwOwned handle_owned = {hclose, sizeof(HandleUd), HANDLE_TAG};

/* __gc and __close: on anything a script gives them, nothing happens. */
static int l_hclose_mm(lua_State *L) {
  HandleUd *hu = lw_toudata(L, 1, sizeof *hu, HANDLE_TAG);
  if (hu) hclose(L, hu);
  return 0;
}

/* I.fs_hclose(h) */
static int l_hclose(lua_State *L) {
  hclose(L, lw_checkudata(L, 1, sizeof(HandleUd), HANDLE_TAG, "file:close"));
  return 0;
}

/* I.fs_hclosed(h) -> boolean */
static int l_hclosed(lua_State *L) {
  HandleUd *hu = lw_checkudata(L, 1, sizeof *hu, HANDLE_TAG, "file:closed");
  lua_pushboolean(L, hu->h == NULL);
  return 1;
}

/* I.fs_valid_mode(mode) -> whether mode is a valid open mode */
static int l_flags(lua_State *L) {
  lua_pushboolean(L, mode_flags(luaL_checkstring(L, 1)) >= 0);
  return 1;
}

/* Adds the primitives to the internal table on top (io.lua builds
 * weft.fs from them). */
void lw_open_fs(lua_State *L, State *S) {
  size_t i;
  for (i = 0; i < NJOBS; i++) {
    lw_push_state(L, S);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_pushcclosure(L, l_job, 2);
    lua_setfield(L, -2, jobs[i].key);
  }
  lw_push_state(L, S);
  lua_pushcclosure(L, l_handle, 1);
  lua_setfield(L, -2, "fs_handle");
  lua_pushcfunction(L, l_hclose);
  lua_setfield(L, -2, "fs_hclose");
  lua_pushcfunction(L, l_hclosed);
  lua_setfield(L, -2, "fs_hclosed");
  luaL_newmetatable(L, HANDLE_MT);
  lw_protect_mt(L, HANDLE_MT);
  lua_pushcfunction(L, l_hclose_mm);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_hclose_mm);
  lua_setfield(L, -2, "__close");
  lw_set_owned_close(L, &handle_owned);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_flags);
  lua_setfield(L, -2, "fs_valid_mode");
}
