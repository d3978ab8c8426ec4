#define _GNU_SOURCE
#include "rootfs.h"
#include "fail.h"
#include "userns.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int openat2_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = { .flags = (unsigned long long)(flags | O_CLOEXEC),
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  while (*path == '/') path++;
  if (!*path) path = ".";
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Reads the kernel's error text for a failed fsconfig()/fsmount() (e.g. "overlay: failed to resolve ..."). */
static const char *fs_context_error(int fsfd, char *buf, size_t len) {
  int saved = errno;
  ssize_t n = read(fsfd, buf, len - 1);
  if (n <= 2) return strerror(saved);
  buf[n] = 0;
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  return buf + 2; /* skip the "e " severity prefix */
}

/* Opens path (inside rootfd) as the mount point for a mount, creating it, and any missing parents, as a
 * directory or an empty file. Everything resolves inside the root, so symlinks in the image cannot point a
 * mount outside the container. Created entries land in the upperdir; the helper removes them afterwards. */
static int open_mountpoint(int rootfd, const char *path, bool dir) {
  int fd = openat2_in_root(rootfd, path, O_PATH);
  if (fd >= 0) return fd;
  if (errno != ENOENT) child_fail(EXIT_SETUP, "mount point %s: %s", path, strerror(errno));
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  size_t len = strlen(buf);
  while (len > 1 && buf[len - 1] == '/') buf[--len] = 0;
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != 0) continue;
    bool last = *p == 0;
    char saved = *p;
    *p = 0;
    char *slash = strrchr(buf, '/');
    *slash = 0;
    int parent = openat2_in_root(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
    *slash = '/';
    if (parent < 0) child_fail(EXIT_SETUP, "mount point %s: %s: %s", path, buf, strerror(errno));
    int r;
    if (last && !dir) {
      int f = openat(parent, slash + 1, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      r = f < 0 ? -1 : close(f);
    } else {
      r = mkdirat(parent, slash + 1, 0755);
    }
    if (r < 0 && errno != EEXIST) child_fail(EXIT_SETUP, "cannot create mount point %s: %s", buf, strerror(errno));
    close(parent);
    *p = saved;
    if (last) break;
  }
  fd = openat2_in_root(rootfd, path, O_PATH);
  if (fd < 0) child_fail(EXIT_SETUP, "mount point %s: %s", path, strerror(errno));
  return fd;
}

/* Attaches a detached mount (from fsmount or open_tree) at path inside the root. */
static void attach(int rootfd, int mntfd, const char *path, bool dir) {
  int target = open_mountpoint(rootfd, path, dir);
  if (move_mount(mntfd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    child_fail(EXIT_SETUP, "cannot mount on %s: %s", path, strerror(errno));
  close(target);
  close(mntfd);
}

/* fsopen + options + fsmount for pseudo filesystems; options is a NULL-terminated key, value list. */
static int new_fs(const char *type, const char *const *options, unsigned attrs, bool optional) {
  char ebuf[512];
  int fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0) {
    if (optional) return -1;
    child_fail(EXIT_SETUP, "fsopen %s: %s", type, strerror(errno));
  }
  for (; options && options[0]; options += 2) {
    if (fsconfig(fs, FSCONFIG_SET_STRING, options[0], options[1], 0) < 0) {
      if (optional) { close(fs); return -1; }
      child_fail(EXIT_SETUP, "%s option %s=%s: %s", type, options[0], options[1], fs_context_error(fs, ebuf, sizeof ebuf));
    }
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    if (optional) { close(fs); return -1; }
    child_fail(EXIT_SETUP, "cannot create %s: %s", type, fs_context_error(fs, ebuf, sizeof ebuf));
  }
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  if (mnt < 0 && !optional) child_fail(EXIT_SETUP, "fsmount %s: %s", type, strerror(errno));
  close(fs);
  return mnt;
}

/* A detached copy of the mount tree at fd (an O_PATH fd), read-only and/or nodev when asked. what names it
 * in errors. */
static int clone_fd(int fd, bool readonly, bool nodev, const char *what) {
  int t = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (t < 0) child_fail(EXIT_SETUP, "bind mount source %s: %s", what, strerror(errno));
  if (readonly || nodev) {
    struct mount_attr attr = { .attr_set = (readonly ? MOUNT_ATTR_RDONLY : 0) | (nodev ? MOUNT_ATTR_NODEV : 0) };
    if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      child_fail(EXIT_SETUP, "cannot set flags of bind mount of %s: %s", what, strerror(errno));
  }
  return t;
}

/* For host paths kiln chose itself (layer dirs, the host's /dev nodes, /sys). */
static int clone_tree(const char *source, bool readonly, bool nodev) {
  int fd = open(source, O_PATH | O_CLOEXEC);
  if (fd < 0) child_fail(EXIT_SETUP, "bind mount source %s: %s", source, strerror(errno));
  int t = clone_fd(fd, readonly, nodev, source);
  close(fd);
  return t;
}

/* The source of a bind mount as an O_PATH fd. With a root (the build context, a layer dir), the source is
 * resolved inside it: a symlink there (`hostroot -> /`) is followed as if root were `/`, never to the host;
 * the mount is then made from the fd, so nothing can swap the path between the check and the mount. */
static int open_bind_source(const struct spec_mount *m) {
  if (!m->root) {
    int fd = open(m->source, O_PATH | O_CLOEXEC);
    if (fd < 0) child_fail(EXIT_SETUP, "bind mount source %s: %s", m->source, strerror(errno));
    return fd;
  }
  int root = open(m->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) child_fail(EXIT_SETUP, "bind mount root %s: %s", m->root, strerror(errno));
  int fd = openat2_in_root(root, m->source, O_PATH);
  if (fd < 0) child_fail(EXIT_SETUP, "bind mount source %s for %s: %s", m->source, m->target, strerror(errno));
  close(root);
  return fd;
}

/* The old API caps options at a page (~40 layers); used only when fsopen is unavailable. */
static void mount_overlay_legacy(const struct spec *s, const char *upper, const char *work, const char *target) {
  size_t cap = 64;
  for (size_t i = 0; i < s->n_lowerdirs; i++) cap += strlen(s->lowerdirs[i]) + 1;
  if (upper) cap += strlen(upper) + strlen(work) + 32;
  char *opts = calloc(1, cap);
  strcat(opts, "lowerdir=");
  for (size_t i = 0; i < s->n_lowerdirs; i++) {
    if (strpbrk(s->lowerdirs[i], ":,")) child_fail(EXIT_SETUP, "lowerdir %s contains ':' or ','", s->lowerdirs[i]);
    if (i) strcat(opts, ":");
    strcat(opts, s->lowerdirs[i]);
  }
  if (upper) { strcat(opts, ",upperdir="); strcat(opts, upper); strcat(opts, ",workdir="); strcat(opts, work); }
  if (in_user_namespace()) strcat(opts, ",userxattr");
  if (mount("overlay", target, "overlay", (s->rootfs_readonly ? MS_RDONLY : 0) | (s->devices_nodev ? MS_NODEV : 0), opts) < 0)
    child_fail(EXIT_SETUP, "cannot mount overlay rootfs (%zu layers): %s", s->n_lowerdirs, strerror(errno));
  free(opts);
}

/* A detached overlay mount of lowerdirs (topmost first), with upper/work when given. what names it in errors. */
static int overlay_fs(char *const *lowerdirs, size_t n, const char *upper, const char *work, bool readonly, bool nodev, const char *what) {
  char ebuf[512];
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) child_fail(EXIT_SETUP, "fsopen overlay for %s: %s", what, strerror(errno));
  /* In a user namespace (rootless) overlay keeps its metadata in user.overlay.* xattrs. */
  if (in_user_namespace() && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
    child_fail(EXIT_SETUP, "overlay option userxattr for %s: %s", what, fs_context_error(fs, ebuf, sizeof ebuf));
  for (size_t i = 0; i < n; i++)
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lowerdirs[i], 0) < 0)
      child_fail(EXIT_SETUP, "overlay lowerdir %s: %s", lowerdirs[i], fs_context_error(fs, ebuf, sizeof ebuf));
  if (upper && (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
                fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
    child_fail(EXIT_SETUP, "overlay upperdir %s / workdir %s: %s", upper, work, fs_context_error(fs, ebuf, sizeof ebuf));
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    child_fail(EXIT_SETUP, "cannot mount overlay %s (%zu layers): %s", what, n, fs_context_error(fs, ebuf, sizeof ebuf));
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, (readonly ? MOUNT_ATTR_RDONLY : 0) | (nodev ? MOUNT_ATTR_NODEV : 0));
  if (mnt < 0) child_fail(EXIT_SETUP, "fsmount overlay %s: %s", what, strerror(errno));
  close(fs);
  return mnt;
}

static void mount_rootfs(const struct spec *s, const char *target) {
  const char *upper = s->upperdir, *work = s->workdir;
  if (!upper && !s->rootfs_readonly) { upper = STAGE_DIR "/upper"; work = STAGE_DIR "/work"; }
  if (s->rootfs_readonly && s->n_lowerdirs == 1) {
    /* overlay wants an upperdir or two lowers; a single read-only layer is just a read-only bind. */
    int t = clone_tree(s->lowerdirs[0], true, s->devices_nodev);
    if (move_mount(t, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
      child_fail(EXIT_SETUP, "cannot mount rootfs %s: %s", s->lowerdirs[0], strerror(errno));
    close(t);
    return;
  }
  int probe = fsopen("overlay", FSOPEN_CLOEXEC);
  if (probe < 0 && errno == ENOSYS) { mount_overlay_legacy(s, upper, work, target); return; }
  if (probe >= 0) close(probe);
  int mnt = overlay_fs(s->lowerdirs, s->n_lowerdirs, upper, work, s->rootfs_readonly, s->devices_nodev, "rootfs");
  if (move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    child_fail(EXIT_SETUP, "cannot attach overlay rootfs: %s", strerror(errno));
  close(mnt);
}

/* An overlay of other layers mounted inside the container (e.g. RUN --mount=from=stage): read-only, or
 * writable with a throwaway upper on the staging tmpfs (writes are discarded, as in BuildKit). Only
 * subpath of the merged tree is mounted at the target. */
static int overlay_mount_tree(const struct spec_mount *m, size_t index, bool nodev) {
  char dir[PATH_MAX], upper[PATH_MAX], work[PATH_MAX], merged[PATH_MAX];
  snprintf(dir, sizeof dir, STAGE_DIR "/mount-%zu", index);
  snprintf(upper, sizeof upper, STAGE_DIR "/mount-%zu/upper", index);
  snprintf(work, sizeof work, STAGE_DIR "/mount-%zu/work", index);
  snprintf(merged, sizeof merged, STAGE_DIR "/mount-%zu/merged", index);
  if (mkdir(dir, 0700) < 0 || mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(merged, 0755) < 0)
    child_fail(EXIT_SETUP, "staging dirs for %s: %s", m->target, strerror(errno));
  int mnt;
  if (m->readonly && m->n_lowerdirs == 1) mnt = clone_tree(m->lowerdirs[0], true, nodev);
  else mnt = overlay_fs(m->lowerdirs, m->n_lowerdirs, m->readonly ? NULL : upper, m->readonly ? NULL : work, m->readonly, nodev, m->target);
  if (move_mount(mnt, "", AT_FDCWD, merged, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    child_fail(EXIT_SETUP, "cannot stage overlay for %s: %s", m->target, strerror(errno));
  close(mnt);
  int root = open(merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
  /* The subpath resolves inside the merged layers: a symlink in them cannot reach the host. */
  int sub = root < 0 ? -1 : openat2_in_root(root, m->subpath ? m->subpath : "/", O_PATH);
  if (sub < 0) child_fail(EXIT_SETUP, "mount source %s in the layers for %s: %s", m->subpath ? m->subpath : "/", m->target, strerror(errno));
  int tree = open_tree(sub, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0) child_fail(EXIT_SETUP, "clone overlay subpath for %s: %s", m->target, strerror(errno));
  close(sub);
  close(root);
  return tree;
}

static void make_dev(int rootfd, const struct spec *s) {
  static const char *const devtmp[] = { "mode", "755", "size", "65536k", NULL };
  /* Without a devices cgroup, /dev is nodev too and its nodes are the host's, bind-mounted (as in rootless
   * mode, where the kernel allows no mknod): a node made in /dev then cannot be used. */
  bool host_nodes = in_user_namespace() || s->devices_nodev;
  unsigned dev_attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME | (s->devices_nodev ? MOUNT_ATTR_NODEV : 0);
  attach(rootfd, new_fs("tmpfs", devtmp, dev_attrs, false), "/dev", true);
  int dev = openat2_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
  if (dev < 0) child_fail(EXIT_SETUP, "open /dev: %s", strerror(errno));
  static const struct { const char *name; unsigned major, minor; } nodes[] = {
    { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
  };
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    if (host_nodes) {
      /* No mknod in a user namespace: bind the host's node (as rootless runc does). */
      char host[64];
      snprintf(host, sizeof host, "/dev/%s", nodes[i].name);
      int f = openat(dev, nodes[i].name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
      if (f < 0) child_fail(EXIT_SETUP, "create /dev/%s: %s", nodes[i].name, strerror(errno));
      close(f);
      char target[PATH_MAX];
      snprintf(target, sizeof target, "/dev/%s", nodes[i].name);
      attach(rootfd, clone_tree(host, false, false), target, false);
      continue;
    }
    if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0)
      child_fail(EXIT_SETUP, "mknod /dev/%s: %s", nodes[i].name, strerror(errno));
  }
  static const char *const pts[] = { "newinstance", NULL, "ptmxmode", "0666", "mode", "0620", NULL };
  /* devpts: "newinstance" is a flag, so set it separately. */
  int fs = fsopen("devpts", FSOPEN_CLOEXEC);
  if (fs < 0) child_fail(EXIT_SETUP, "fsopen devpts: %s", strerror(errno));
  fsconfig(fs, FSCONFIG_SET_FLAG, "newinstance", NULL, 0);
  for (const char *const *o = pts + 2; *o; o += 2) fsconfig(fs, FSCONFIG_SET_STRING, o[0], o[1], 0);
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) child_fail(EXIT_SETUP, "devpts: %s", strerror(errno));
  int ptsmnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
  if (ptsmnt < 0) child_fail(EXIT_SETUP, "fsmount devpts: %s", strerror(errno));
  close(fs);
  attach(rootfd, ptsmnt, "/dev/pts", true);
  static const char *const shm[] = { "mode", "1777", "size", "65536k", NULL };
  attach(rootfd, new_fs("tmpfs", shm, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, false), "/dev/shm", true);
  int mq = new_fs("mqueue", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, true);
  if (mq >= 0) attach(rootfd, mq, "/dev/mqueue", true);
  static const char *const links[][2] = {
    { "pts/ptmx", "ptmx" }, { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
    { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" }, { "/proc/kcore", "core" },
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][0], dev, links[i][1]) < 0) child_fail(EXIT_SETUP, "symlink /dev/%s: %s", links[i][1], strerror(errno));
  if (s->tty) {
    /* Mount point for the pty bind-mounted over /dev/console (done by the tty set-up). */
    int f = openat(dev, "console", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (f >= 0) close(f);
  }
  close(dev);
}

static void make_sys(int rootfd, const struct spec *s) {
  unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | (s->privileged ? 0 : MOUNT_ATTR_RDONLY);
  int mnt = new_fs("sysfs", NULL, attrs, true);
  /* sysfs refuses a fresh mount in the host network namespace: fall back to a read-only copy of the host's. */
  if (mnt < 0) mnt = clone_tree("/sys", !s->privileged, !s->privileged);
  attach(rootfd, mnt, "/sys", true);
}

static void make_spec_mounts(int rootfd, const struct spec *s) {
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct spec_mount *m = &s->mounts[i];
    if (m->kind == MOUNT_BIND) {
      int src = open_bind_source(m);
      struct stat st;
      if (fstat(src, &st) < 0) child_fail(EXIT_SETUP, "bind mount source %s: %s", m->source, strerror(errno));
      attach(rootfd, clone_fd(src, m->readonly, s->devices_nodev, m->source), m->target, S_ISDIR(st.st_mode));
      close(src);
    } else if (m->kind == MOUNT_OVERLAY) {
      int tree = overlay_mount_tree(m, i, s->devices_nodev);
      struct stat st;
      if (fstat(tree, &st) < 0) child_fail(EXIT_SETUP, "stat overlay mount for %s: %s", m->target, strerror(errno));
      attach(rootfd, tree, m->target, S_ISDIR(st.st_mode));
    } else {
      char size[32], mode[32];
      const char *opts[5] = { NULL };
      int n = 0;
      snprintf(mode, sizeof mode, "%lo", m->mode >= 0 ? (unsigned long)m->mode : 01777UL);
      opts[n++] = "mode"; opts[n++] = mode;
      if (m->size_bytes > 0) {
        snprintf(size, sizeof size, "%lld", m->size_bytes);
        opts[n++] = "size"; opts[n++] = size;
      }
      unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (m->readonly ? MOUNT_ATTR_RDONLY : 0);
      attach(rootfd, new_fs("tmpfs", opts, attrs, false), m->target, true);
    }
  }
}

void rootfs_enter(const struct spec *s) {
  /* Nothing we mount may propagate back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail(EXIT_SETUP, "make / private: %s", strerror(errno));
  if (mkdir("/run", 0755) < 0 && errno != EEXIST) child_fail(EXIT_SETUP, "mkdir /run: %s", strerror(errno));
  if (mkdir(STAGE_DIR, 0700) < 0 && errno != EEXIST) child_fail(EXIT_SETUP, "mkdir " STAGE_DIR ": %s", strerror(errno));
  if (mount("tmpfs", STAGE_DIR, "tmpfs", 0, "mode=0700") < 0) child_fail(EXIT_SETUP, "mount staging tmpfs: %s", strerror(errno));
  if (mkdir(STAGE_DIR "/root", 0755) < 0 || mkdir(STAGE_DIR "/upper", 0755) < 0 || mkdir(STAGE_DIR "/work", 0700) < 0)
    child_fail(EXIT_SETUP, "staging dirs: %s", strerror(errno));
  mount_rootfs(s, STAGE_DIR "/root");
  int rootfd = open(STAGE_DIR "/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) child_fail(EXIT_SETUP, "open rootfs: %s", strerror(errno));

  attach(rootfd, new_fs("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, false), "/proc", true);
  make_dev(rootfd, s);
  make_sys(rootfd, s);
  make_spec_mounts(rootfd, s);

  if (fchdir(rootfd) < 0) child_fail(EXIT_SETUP, "chdir rootfs: %s", strerror(errno));
  /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the container. */
  if (syscall(SYS_pivot_root, ".", ".") < 0) child_fail(EXIT_SETUP, "pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) < 0) child_fail(EXIT_SETUP, "detach old root: %s", strerror(errno));
  if (chdir("/") < 0) child_fail(EXIT_SETUP, "chdir /: %s", strerror(errno));
  close(rootfd);
}

void rootfs_harden(const struct spec *s) {
  if (s->privileged) return;
  static const char *const masked[] = {
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
  };
  for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
    struct stat st;
    if (stat(masked[i], &st) < 0) continue; /* e.g. no /proc/timer_stats on this kernel */
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, "size=0")
                                : mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
    if (r < 0) child_fail(EXIT_SETUP, "mask %s: %s", masked[i], strerror(errno));
  }
  static const char *const readonly[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
  for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
    if (mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
      if (errno == ENOENT) continue;
      child_fail(EXIT_SETUP, "bind %s: %s", readonly[i], strerror(errno));
    }
    if (mount(NULL, readonly[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      child_fail(EXIT_SETUP, "make %s read-only: %s", readonly[i], strerror(errno));
  }
}

void rootfs_mkdir_p(const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != 0) continue;
    char saved = *p;
    *p = 0;
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) child_fail(EXIT_SETUP, "cannot create cwd %s: %s", path, strerror(errno));
    *p = saved;
    if (!saved) break;
  }
}
