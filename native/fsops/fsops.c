// kiln-fsops: the few file-system calls Node has no API for (mknod, lsetxattr, llistxattr+lgetxattr,
// utimensat with nanoseconds on symlinks, syncfs), served to one Node process over stdin/stdout so that a
// whole layer's worth of calls costs one process start and a few pipe round trips.
//
// Request:  u8 op, u8 nfields, then nfields × (u32le length, bytes). Numbers travel as 8-byte LE fields.
// Reply:    u32le errno (0 = ok), u32le payload length, payload.
// Ops:      'M' mknod(path, mode, major, minor)       'X' lsetxattr(path, name, value)
//           'L' list xattrs(path) -> (u32 nlen, name, u32 vlen, value)*
//           'T' utimensat(path, asec, ansec, msec, mnsec) without following symlinks
//           'S' syncfs(path of a directory on the file system)
//           'D' list a directory(path, flags): every entry but . and .. with its lstat; flags bit 0 adds
//               its xattrs (as 'L'), bit 1 a symlink's target. Per entry: u32 nlen, name, u32 mode,
//               u32 uid, u32 gid, u32 nlink, u64 size, u64 ino, u64 dev, u64 rdev, i64 mtime sec,
//               u32 nsec, i64 ctime sec, u32 nsec, i64 atime sec, u32 nsec, [u32 xlen, xattrs],
//               [u32 tlen, target]. Entries that vanish meanwhile are left out.
//           'W' fingerprint of a tree(path) -> u64 h1, u64 h2, u64 entries, i64 newest m/ctime sec, u32 nsec
//           'F' add inode flags(path, flags): FS_IOC_GETFLAGS | flags → FS_IOC_SETFLAGS (e.g. FS_TOPDIR_FL);
//               file systems without inode flags answer ENOTTY/EOPNOTSUPP
//           'x' set an xattr in a root(root, rel, name, value)     't' utimens in a root(root, rel, 4 × i64)
//               `rel` names an entry below the trusted dir `root`; its parent is opened with openat2
//               RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH (a parent that is, or became, a symlink is ELOOP, never
//               followed) and the entry itself is never followed. For deferred metadata of a tree being
//               written, where a later tar entry may have replaced a parent with a symlink.
//           'l' make a symlink in a root(root, rel, target, uid, gid): symlinkat through the parent opened
//               as for 'x', then, when uid and gid are not -1, fchownat without following it
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_FIELDS 8
#define MAX_FIELD (1u << 20)

static unsigned char inbuf[1 << 16];
static size_t inpos, inlen;
static unsigned char *out;
static size_t outlen, outcap;

static void die(const char *msg) {
  fprintf(stderr, "kiln-fsops: %s\n", msg);
  exit(2);
}

static void flush_out(void) {
  size_t done = 0;
  while (done < outlen) {
    ssize_t n = write(1, out + done, outlen - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) exit(3); // Node went away
    done += (size_t)n;
  }
  outlen = 0;
}

static void put(const void *p, size_t n) {
  if (outlen + n > outcap) {
    while (outlen + n > outcap) outcap = outcap ? outcap * 2 : (1 << 16);
    out = realloc(out, outcap);
    if (!out) die("out of memory");
  }
  memcpy(out + outlen, p, n);
  outlen += n;
}

static void put_u32(uint32_t v) {
  unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
  put(b, 4);
}

// Replies are only flushed when the helper is about to wait for input, so a batch costs one write.
static int fill(void) {
  if (inpos < inlen) return 1;
  flush_out();
  ssize_t n;
  do n = read(0, inbuf, sizeof inbuf);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  inpos = 0;
  inlen = (size_t)n;
  return 1;
}

static int read_exact(void *dst, size_t n, int eof_ok) {
  unsigned char *d = dst;
  size_t got = 0;
  while (got < n) {
    if (!fill()) {
      if (eof_ok && got == 0) return 0;
      die("truncated request");
    }
    size_t k = inlen - inpos < n - got ? inlen - inpos : n - got;
    memcpy(d + got, inbuf + inpos, k);
    inpos += k;
    got += k;
  }
  return 1;
}

static uint32_t get_u32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int64_t field_i64(const unsigned char *f, uint32_t len) {
  if (len != 8) die("numeric field must be 8 bytes");
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | f[i];
  return (int64_t)v;
}

static void reply(int err, const unsigned char *payload, size_t n) {
  put_u32((uint32_t)err);
  put_u32((uint32_t)n);
  if (n) put(payload, n);
}

// The xattrs of `path` as (u32 nlen, name, u32 vlen, value)*; returns 0 or an errno.
static int xattr_block(const char *path, unsigned char **out_payload, size_t *out_len) {
  ssize_t n;
  char *names = NULL;
  *out_payload = NULL;
  *out_len = 0;
  for (;;) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) break;
    names = realloc(names, (size_t)n + 1);
    if (!names) die("out of memory");
    n = llistxattr(path, names, (size_t)n);
    if (n >= 0 || errno != ERANGE) break; // ERANGE: the list grew meanwhile
  }
  if (n < 0) {
    int e = errno;
    free(names);
    // A file system without xattr support simply has none.
    return e == ENOTSUP ? 0 : e;
  }
  unsigned char *payload = NULL;
  size_t plen = 0;
  for (ssize_t i = 0; i < n;) {
    const char *name = names + i;
    size_t nlen = strlen(name);
    i += (ssize_t)nlen + 1;
    ssize_t vlen;
    char *val = NULL;
    for (;;) {
      vlen = lgetxattr(path, name, NULL, 0);
      if (vlen < 0) break;
      val = realloc(val, (size_t)vlen + 1);
      if (!val) die("out of memory");
      vlen = lgetxattr(path, name, val, (size_t)vlen);
      if (vlen >= 0 || errno != ERANGE) break;
    }
    if (vlen < 0) { // removed in between: skip it
      free(val);
      continue;
    }
    payload = realloc(payload, plen + 8 + nlen + (size_t)vlen);
    if (!payload) die("out of memory");
    unsigned char *p = payload + plen;
    uint32_t a = (uint32_t)nlen, b = (uint32_t)vlen;
    for (int k = 0; k < 4; k++) p[k] = (a >> (8 * k)) & 0xff;
    memcpy(p + 4, name, nlen);
    for (int k = 0; k < 4; k++) p[4 + nlen + k] = (b >> (8 * k)) & 0xff;
    memcpy(p + 8 + nlen, val, (size_t)vlen);
    plen += 8 + nlen + (size_t)vlen;
    free(val);
  }
  free(names);
  *out_payload = payload;
  *out_len = plen;
  return 0;
}

static void list_xattrs(const char *path) {
  unsigned char *payload;
  size_t plen;
  int e = xattr_block(path, &payload, &plen);
  reply(e, payload, plen);
  free(payload);
}

static unsigned char *lbuf;
static size_t llen, lcap;

static void lput(const void *p, size_t n) {
  if (llen + n > lcap) {
    while (llen + n > lcap) lcap = lcap ? lcap * 2 : (1 << 16);
    lbuf = realloc(lbuf, lcap);
    if (!lbuf) die("out of memory");
  }
  memcpy(lbuf + llen, p, n);
  llen += n;
}

// Numbers go out in host order: kiln runs on little-endian machines (x86-64, arm64), as 'L' assumes.
static void lput_u32(uint32_t v) { lput(&v, 4); }
static void lput_u64(uint64_t v) { lput(&v, 8); }

static void list_dir(const char *path, int64_t flags) {
  DIR *d = opendir(path);
  if (!d) {
    reply(errno, NULL, 0);
    return;
  }
  llen = 0;
  size_t plen = strlen(path);
  char *full = malloc(plen + 258);
  if (!full) die("out of memory");
  memcpy(full, path, plen);
  full[plen] = '/';
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    struct stat st;
    if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      errno = 0;
      continue;
    }
    size_t nlen = strlen(name);
    lput_u32((uint32_t)nlen);
    lput(name, nlen);
    lput_u32(st.st_mode);
    lput_u32(st.st_uid);
    lput_u32(st.st_gid);
    lput_u32((uint32_t)st.st_nlink);
    lput_u64((uint64_t)st.st_size);
    lput_u64((uint64_t)st.st_ino);
    lput_u64((uint64_t)st.st_dev);
    lput_u64((uint64_t)st.st_rdev);
    lput_u64((uint64_t)st.st_mtim.tv_sec);
    lput_u32((uint32_t)st.st_mtim.tv_nsec);
    lput_u64((uint64_t)st.st_ctim.tv_sec);
    lput_u32((uint32_t)st.st_ctim.tv_nsec);
    lput_u64((uint64_t)st.st_atim.tv_sec);
    lput_u32((uint32_t)st.st_atim.tv_nsec);
    memcpy(full + plen + 1, name, nlen + 1);
    if (flags & 1) {
      unsigned char *x = NULL;
      size_t xlen = 0;
      int is_whiteout = S_ISCHR(st.st_mode) && st.st_rdev == 0;
      if (!is_whiteout && xattr_block(full, &x, &xlen) != 0) xlen = 0;
      lput_u32((uint32_t)xlen);
      if (xlen) lput(x, xlen);
      free(x);
    }
    if (flags & 2) {
      if (S_ISLNK(st.st_mode)) {
        char target[4097];
        ssize_t t = readlinkat(dirfd(d), name, target, sizeof target - 1);
        if (t < 0) t = 0;
        lput_u32((uint32_t)t);
        lput(target, (size_t)t);
      } else lput_u32(0);
    }
    errno = 0;
  }
  int e = errno;
  closedir(d);
  free(full);
  reply(e, lbuf, llen);
}


// 'W': a fingerprint of a directory tree's names and lstat (mode, owner, size, times, inode, rdev,
// links), depth first. Two 64-bit multiplicative hashes with different seeds and multipliers: local
// change detection only (kiln's cache keys stay sha256).
struct fp_state {
  uint64_t a, b, count;
  int64_t newest_sec;
  uint32_t newest_nsec;
  int err;
};

static void fp_bytes(struct fp_state *s, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) {
    s->a = (s->a ^ c[i]) * 0x100000001b3ULL;
    s->b = (s->b ^ c[i]) * 0x9e3779b97f4a7c15ULL;
  }
}

static void fp_newest(struct fp_state *s, struct timespec t) {
  if (t.tv_sec > s->newest_sec || (t.tv_sec == s->newest_sec && (uint32_t)t.tv_nsec > s->newest_nsec)) {
    s->newest_sec = t.tv_sec;
    s->newest_nsec = (uint32_t)t.tv_nsec;
  }
}

static void fp_words(struct fp_state *s, const uint64_t *w, size_t n) {
  for (size_t i = 0; i < n; i++) {
    s->a = (s->a ^ w[i]) * 0x100000001b3ULL;
    s->a ^= s->a >> 32;
    s->b = (s->b ^ w[i]) * 0x9e3779b97f4a7c15ULL;
    s->b ^= s->b >> 29;
  }
}

// Entries are taken in readdir order: stable while a directory is unchanged (a reordering only costs a
// false "changed").
static void fp_walk(struct fp_state *s, int dirfd_, const char *rel) {
  int fd = openat(dirfd_, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    s->err = errno;
    return;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    s->err = errno;
    close(fd);
    return;
  }
  struct dirent *de;
  while (!s->err && (de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    struct stat st;
    if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      s->err = errno;
      break;
    }
    uint64_t f[12] = {(uint64_t)st.st_mode, (uint64_t)st.st_uid, (uint64_t)st.st_gid, (uint64_t)st.st_size,
                      (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec,
                      (uint64_t)st.st_ctim.tv_nsec, (uint64_t)st.st_ino, (uint64_t)st.st_dev, (uint64_t)st.st_rdev,
                      (uint64_t)st.st_nlink};
    fp_bytes(s, name, strlen(name) + 1);
    fp_words(s, f, 12);
    fp_newest(s, st.st_mtim);
    fp_newest(s, st.st_ctim);
    s->count++;
    if (S_ISDIR(st.st_mode)) {
      fp_bytes(s, "{", 1);
      fp_walk(s, dirfd(d), name);
      fp_bytes(s, "}", 1);
    }
  }
  closedir(d);
}

static void tree_fingerprint(const char *path) {
  struct fp_state s = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL, 0, 0, 0, 0};
  struct stat st;
  if (lstat(path, &st) < 0) {
    reply(errno, NULL, 0);
    return;
  }
  fp_newest(&s, st.st_mtim);
  fp_newest(&s, st.st_ctim);
  fp_bytes(&s, &st.st_mode, sizeof st.st_mode);
  fp_bytes(&s, &st.st_ino, sizeof st.st_ino);
  if (S_ISDIR(st.st_mode)) fp_walk(&s, AT_FDCWD, path);
  if (s.err) {
    reply(s.err, NULL, 0);
    return;
  }
  unsigned char out[36];
  memcpy(out, &s.a, 8);
  memcpy(out + 8, &s.b, 8);
  memcpy(out + 16, &s.count, 8);
  memcpy(out + 24, &s.newest_sec, 8);
  memcpy(out + 32, &s.newest_nsec, 4);
  reply(0, out, sizeof out);
}

// An O_PATH fd of the directory holding `rel` inside `root`, and the entry's name in it ("." for the root
// itself). No component is followed if it is a symlink, none may be "..". Returns -errno on failure.
static int parent_in_root(const char *root, const char *rel, const char **base) {
  int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return -errno;
  while (*rel == '/') rel++;
  if (*rel == 0) {
    *base = ".";
    return rootfd;
  }
  const char *slash = strrchr(rel, '/');
  const char *name = slash ? slash + 1 : rel;
  if (*name == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    close(rootfd);
    return -EINVAL;
  }
  if (strlen(name) > 255) {
    close(rootfd);
    return -ENAMETOOLONG;
  }
  *base = name;
  if (!slash) return rootfd;
  size_t plen = (size_t)(slash - rel);
  char *parent = malloc(plen + 1);
  if (!parent) die("out of memory");
  memcpy(parent, rel, plen);
  parent[plen] = 0;
  struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                         .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, rootfd, parent, &how, sizeof how);
  int e = errno;
  free(parent);
  close(rootfd);
  return fd < 0 ? -e : fd;
}

int main(void) {
  unsigned char *fields[MAX_FIELDS];
  uint32_t lens[MAX_FIELDS];
  for (;;) {
    unsigned char hdr[2];
    if (!read_exact(hdr, 2, 1)) break;
    unsigned op = hdr[0], nf = hdr[1];
    if (nf == 0 || nf > MAX_FIELDS) die("bad field count");
    for (unsigned i = 0; i < nf; i++) {
      unsigned char lb[4];
      read_exact(lb, 4, 0);
      lens[i] = get_u32(lb);
      if (lens[i] > MAX_FIELD) die("field too long");
      fields[i] = malloc(lens[i] + 1);
      if (!fields[i]) die("out of memory");
      read_exact(fields[i], lens[i], 0);
      fields[i][lens[i]] = 0; // strings (paths, names) need NUL termination
    }
    const char *path = (const char *)fields[0];
    int err = 0;
    switch (op) {
      case 'M':
        if (nf != 4) die("mknod takes 4 fields");
        if (mknod(path, (mode_t)field_i64(fields[1], lens[1]),
                  makedev((unsigned)field_i64(fields[2], lens[2]), (unsigned)field_i64(fields[3], lens[3]))) < 0)
          err = errno;
        reply(err, NULL, 0);
        break;
      case 'X':
        if (nf != 3) die("setxattr takes 3 fields");
        if (lsetxattr(path, (const char *)fields[1], fields[2], lens[2], 0) < 0) err = errno;
        reply(err, NULL, 0);
        break;
      case 'L':
        if (nf != 1) die("listxattr takes 1 field");
        list_xattrs(path);
        break;
      case 'T': {
        if (nf != 5) die("utimens takes 5 fields");
        struct timespec ts[2];
        ts[0].tv_sec = (time_t)field_i64(fields[1], lens[1]);
        ts[0].tv_nsec = (long)field_i64(fields[2], lens[2]);
        ts[1].tv_sec = (time_t)field_i64(fields[3], lens[3]);
        ts[1].tv_nsec = (long)field_i64(fields[4], lens[4]);
        if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) err = errno;
        reply(err, NULL, 0);
        break;
      }
      case 'S': {
        if (nf != 1) die("syncfs takes 1 field");
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0) err = errno;
        if (fd >= 0) close(fd);
        reply(err, NULL, 0);
        break;
      }
      case 'W':
        if (nf != 1) die("fingerprint takes 1 field");
        tree_fingerprint(path);
        break;
      case 'D':
        if (nf != 2) die("listdir takes 2 fields");
        list_dir(path, field_i64(fields[1], lens[1]));
        break;
      case 'F': {
        if (nf != 2) die("setflags takes 2 fields");
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        int flags = 0;
        if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) err = errno;
        else {
          int want = flags | (int)field_i64(fields[1], lens[1]);
          if (want != flags && ioctl(fd, FS_IOC_SETFLAGS, &want) < 0) err = errno;
        }
        if (fd >= 0) close(fd);
        reply(err, NULL, 0);
        break;
      }
      case 'x': {
        if (nf != 4) die("setxattr in root takes 4 fields");
        const char *base;
        int dfd = parent_in_root(path, (const char *)fields[1], &base);
        if (dfd < 0) err = -dfd;
        else {
          // The entry through the pinned parent dir: the magic link is only a prefix, the last component
          // is not followed (lsetxattr), so the xattr lands on exactly that inode.
          char p[64 + 256];
          snprintf(p, sizeof p, "/proc/self/fd/%d/%s", dfd, base);
          if (lsetxattr(p, (const char *)fields[2], fields[3], lens[3], 0) < 0) err = errno;
          close(dfd);
        }
        reply(err, NULL, 0);
        break;
      }
      case 't': {
        if (nf != 6) die("utimens in root takes 6 fields");
        const char *base;
        int dfd = parent_in_root(path, (const char *)fields[1], &base);
        if (dfd < 0) err = -dfd;
        else {
          struct timespec ts[2];
          ts[0].tv_sec = (time_t)field_i64(fields[2], lens[2]);
          ts[0].tv_nsec = (long)field_i64(fields[3], lens[3]);
          ts[1].tv_sec = (time_t)field_i64(fields[4], lens[4]);
          ts[1].tv_nsec = (long)field_i64(fields[5], lens[5]);
          if (utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) err = errno;
          close(dfd);
        }
        reply(err, NULL, 0);
        break;
      }
      case 'l': {
        if (nf != 5) die("symlink in root takes 5 fields");
        const char *base;
        int dfd = parent_in_root(path, (const char *)fields[1], &base);
        if (dfd < 0) err = -dfd;
        else {
          long long uid = (long long)field_i64(fields[3], lens[3]), gid = (long long)field_i64(fields[4], lens[4]);
          if (strcmp(base, ".") == 0) err = EEXIST; // the root itself
          else if (symlinkat((const char *)fields[2], dfd, base) < 0) err = errno;
          else if (uid != -1 && gid != -1 && fchownat(dfd, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0) err = errno;
          close(dfd);
        }
        reply(err, NULL, 0);
        break;
      }
      default:
        die("unknown op");
    }
    for (unsigned i = 0; i < nf; i++) free(fields[i]);
  }
  flush_out();
  return 0;
}
