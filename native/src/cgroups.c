#define _GNU_SOURCE
#include "cgroups.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const controller_names[CG_COUNT] = { "memory", "pids", "cpu", "devices" };

/* Docker's default device policy (runc's AllowedDevices): mknod of any node is allowed, so a RUN can still
 * create device nodes and whiteouts in its layer, but only these may be read or written. Everything else
 * (the host's disks, /dev/kvm, hwrng, loop-control, nodes shipped in a pulled layer or the context) is
 * refused with EPERM on open. */
static const char *const allowed_devices[] = {
  "c *:* m", "b *:* m",
  "c 1:3 rwm",   /* null */
  "c 1:5 rwm",   /* zero */
  "c 1:7 rwm",   /* full */
  "c 1:8 rwm",   /* random */
  "c 1:9 rwm",   /* urandom */
  "c 5:0 rwm",   /* tty */
  "c 5:1 rwm",   /* console */
  "c 5:2 rwm",   /* ptmx */
  "c 136:* rwm", /* pts */
  "c 10:200 rwm", /* net/tun */
};

static bool has_token(const char *list, const char *word) {
  size_t n = strlen(word);
  for (const char *p = list; (p = strstr(p, word)); p += n)
    if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0 || p[n] == '\n')) return true;
  return false;
}

/* Where the controller's hierarchy is mounted, and which part of the hierarchy that mount shows. */
static bool find_mount(const char *controller, char *mnt, char *mnt_root) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    char root[PATH_MAX], point[PATH_MAX], fstype[64], source[256], opts[1024];
    const char *sep = strstr(line, " - ");
    if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2) continue;
    if (sscanf(sep + 3, "%63s %255s %1023s", fstype, source, opts) != 3) continue;
    if (strcmp(fstype, "cgroup") || !has_token(opts, controller)) continue;
    strcpy(mnt, point);
    strcpy(mnt_root, root);
    found = true;
  }
  fclose(f);
  return found;
}

/* The helper's own cgroup in the controller's hierarchy, from /proc/self/cgroup. */
static bool own_cgroup(const char *controller, char *out) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    if (!b) continue;
    *b = 0;
    if (!has_token(a + 1, controller)) continue;
    b[1 + strcspn(b + 1, "\n")] = 0;
    strcpy(out, b + 1);
    found = true;
  }
  fclose(f);
  return found;
}

static int write_file(const char *dir, const char *file, const char *value) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, value, strlen(value));
  int saved = errno;
  close(fd);
  errno = saved;
  return n < 0 ? -1 : 0;
}

static bool exists(const char *dir, const char *file) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  return access(path, F_OK) == 0;
}

/* A helper that was SIGKILLed could not remove its cgroups. Remove such leftovers next to ours: only
 * empty ones (rmdir refuses others), only old ones (a new sandbox's cgroup is empty until its child joins),
 * and only when their helper pid is gone. */
static void sweep_stale(const char *parent) {
  DIR *d = opendir(parent);
  if (!d) return;
  time_t now = time(NULL);
  for (struct dirent *e; (e = readdir(d));) {
    int pid;
    if (sscanf(e->d_name, "kiln-sandbox-%d-", &pid) != 1 || (kill(pid, 0) == 0 || errno != ESRCH)) continue;
    char path[PATH_MAX * 2 + 256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
    if (stat(path, &st) == 0 && now - st.st_mtime > 60) rmdir(path);
  }
  closedir(d);
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int build_limits(const struct spec *s, int c, const char *dir, char *err, size_t errlen) {
  char v[64];
  if (c == CG_MEMORY && s->build_memory_bytes > 0) {
    snprintf(v, sizeof v, "%lld", s->build_memory_bytes);
    if (write_file(dir, "memory.limit_in_bytes", v) < 0) FAIL("cannot set the build's memory limit %lld: %s", s->build_memory_bytes, strerror(errno));
    if (exists(dir, "memory.memsw.limit_in_bytes") && write_file(dir, "memory.memsw.limit_in_bytes", v) < 0)
      FAIL("cannot set the build's memory+swap limit %lld: %s", s->build_memory_bytes, strerror(errno));
  }
  if (c == CG_PIDS && s->build_pids > 0) {
    snprintf(v, sizeof v, "%lld", s->build_pids);
    if (write_file(dir, "pids.max", v) < 0) FAIL("cannot set the build's pids limit %lld: %s", s->build_pids, strerror(errno));
  }
  if (c == CG_CPU) {
    const char *files[] = { "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us" };
    long long vals[] = { s->build_cpu_shares, s->build_cpu_period_us, s->build_cpu_quota_us };
    for (int i = 0; i < 3; i++) {
      if (vals[i] <= 0) continue;
      snprintf(v, sizeof v, "%lld", vals[i]);
      if (write_file(dir, files[i], v) < 0) FAIL("cannot set the build's %s %lld: %s", files[i], vals[i], strerror(errno));
    }
  }
  return 0;
}

int cgroups_create(const struct spec *s, struct cgroups *cg, char *err, size_t errlen) {
  memset(cg, 0, sizeof *cg);
  /* pid alone is not unique: helpers in other pid namespaces may share the (root) pids cgroup. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long unique = now.tv_nsec;
  bool needed[CG_COUNT] = { s->memory_bytes > 0 || s->build_memory_bytes > 0, s->pids > 0 || s->build_pids > 0,
                            s->cpu_shares > 0 || s->cpu_quota_us > 0 || s->cpu_period_us > 0 ||
                            s->build_cpu_shares > 0 || s->build_cpu_quota_us > 0 || s->build_cpu_period_us > 0 };
  /* memory and pids are used even without limits: for OOM reporting and to find stray processes. */
  bool wanted[CG_COUNT] = { true, true, needed[CG_CPU], !s->privileged };
  for (int c = 0; c < CG_COUNT; c++) {
    if (!wanted[c]) continue;
    char mnt[PATH_MAX], mnt_root[PATH_MAX], own[PATH_MAX];
    if (!find_mount(controller_names[c], mnt, mnt_root) || !own_cgroup(controller_names[c], own)) {
      if (needed[c]) FAIL("cannot apply the %s limit: the cgroup v1 %s controller is not mounted", controller_names[c], controller_names[c]);
      continue;
    }
    const char *rel = own;
    size_t rl = strlen(mnt_root);
    if (strcmp(mnt_root, "/") && !strncmp(own, mnt_root, rl)) rel = own + rl;
    char parent[PATH_MAX * 2];
    snprintf(parent, sizeof parent, "%s%s", mnt, strcmp(rel, "/") ? rel : "");
    /* The device list is per sandbox; the build's cgroup only carries limits. */
    bool in_build = s->build_cgroup && c != CG_DEVICES;
    if (in_build) {
      /* The build's cgroup: made by the first sandbox of the build; its limits are (re)written by each. */
      size_t pl = strlen(parent);
      snprintf(parent + pl, sizeof parent - pl, "/%s", s->build_cgroup);
      if (mkdir(parent, 0755) < 0 && errno != EEXIST) FAIL("cannot create build cgroup %s: %s", parent, strerror(errno));
      if (build_limits(s, c, parent, err, errlen) < 0) return -1;
    }
    sweep_stale(parent);
    snprintf(cg->path[c], PATH_MAX, "%s/kiln-sandbox-%d-%ld", parent, (int)getpid(), unique);
    if (in_build) snprintf(cg->build[c], PATH_MAX, "%s", parent);
    int made = mkdir(cg->path[c], 0755);
    /* The last sandbox of the build may have just removed the build's cgroup: make it again. */
    for (int tries = 0; made < 0 && errno == ENOENT && in_build && tries < 5; tries++) {
      if ((mkdir(parent, 0755) < 0 && errno != EEXIST) || build_limits(s, c, parent, err, errlen) < 0) break;
      made = mkdir(cg->path[c], 0755);
    }
    if (made < 0 && errno != EEXIST) {
      int e = errno;
      cg->path[c][0] = 0;
      if (needed[c] || c == CG_DEVICES) FAIL("cannot create %s cgroup under %s%s: %s", controller_names[c], mnt, rel, strerror(e));
    }
  }
  if (cg->path[CG_DEVICES][0]) {
    if (write_file(cg->path[CG_DEVICES], "devices.deny", "a") < 0)
      FAIL("cannot set the sandbox's device policy (devices.deny): %s", strerror(errno));
    for (size_t i = 0; i < sizeof allowed_devices / sizeof allowed_devices[0]; i++)
      if (write_file(cg->path[CG_DEVICES], "devices.allow", allowed_devices[i]) < 0)
        FAIL("cannot allow device \"%s\" for the sandbox: %s", allowed_devices[i], strerror(errno));
  }
  char v[64];
  if (s->memory_bytes > 0) {
    snprintf(v, sizeof v, "%lld", s->memory_bytes);
    if (write_file(cg->path[CG_MEMORY], "memory.limit_in_bytes", v) < 0)
      FAIL("cannot set memory limit %lld: %s", s->memory_bytes, strerror(errno));
    /* Without a memsw limit the sandbox could spill into swap past its limit. */
    if (exists(cg->path[CG_MEMORY], "memory.memsw.limit_in_bytes") &&
        write_file(cg->path[CG_MEMORY], "memory.memsw.limit_in_bytes", v) < 0)
      FAIL("cannot set memory+swap limit %lld: %s", s->memory_bytes, strerror(errno));
  }
  if (s->pids > 0) {
    snprintf(v, sizeof v, "%lld", s->pids);
    if (write_file(cg->path[CG_PIDS], "pids.max", v) < 0) FAIL("cannot set pids limit %lld: %s", s->pids, strerror(errno));
  }
  if (s->cpu_shares > 0) {
    snprintf(v, sizeof v, "%lld", s->cpu_shares);
    if (write_file(cg->path[CG_CPU], "cpu.shares", v) < 0) FAIL("cannot set cpu shares %lld: %s", s->cpu_shares, strerror(errno));
  }
  if (s->cpu_period_us > 0) {
    snprintf(v, sizeof v, "%lld", s->cpu_period_us);
    if (write_file(cg->path[CG_CPU], "cpu.cfs_period_us", v) < 0)
      FAIL("cannot set cpu period %lldus: %s", s->cpu_period_us, strerror(errno));
  }
  if (s->cpu_quota_us > 0) {
    snprintf(v, sizeof v, "%lld", s->cpu_quota_us);
    if (write_file(cg->path[CG_CPU], "cpu.cfs_quota_us", v) < 0)
      FAIL("cannot set cpu quota %lldus: %s", s->cpu_quota_us, strerror(errno));
  }
  return 0;
}

int cgroups_add(const struct cgroups *cg, pid_t pid, char *err, size_t errlen) {
  char v[32];
  snprintf(v, sizeof v, "%d", (int)pid);
  for (int c = 0; c < CG_COUNT; c++)
    if (cg->path[c][0] && write_file(cg->path[c], "cgroup.procs", v) < 0)
      FAIL("cannot move the sandbox into %s: %s", cg->path[c], strerror(errno));
  return 0;
}

bool cgroups_oom_killed(const struct cgroups *cg) {
  if (!cg->path[CG_MEMORY][0]) return false;
  char path[PATH_MAX + 32], line[256];
  snprintf(path, sizeof path, "%s/memory.oom_control", cg->path[CG_MEMORY]);
  FILE *f = fopen(path, "re");
  if (!f) return false;
  long long kills = 0;
  while (fgets(line, sizeof line, f)) sscanf(line, "oom_kill %lld", &kills);
  fclose(f);
  return kills > 0;
}

static int kill_members(const char *dir) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  int pid, n = 0;
  while (fscanf(f, "%d", &pid) == 1) { kill(pid, SIGKILL); n++; }
  fclose(f);
  return n;
}

void cgroups_destroy(struct cgroups *cg) {
  for (int c = 0; c < CG_COUNT; c++) {
    if (!cg->path[c][0]) continue;
    /* Members can take a moment to leave after SIGKILL; rmdir fails with EBUSY until they have. */
    for (int attempt = 0; attempt < 200; attempt++) {
      kill_members(cg->path[c]);
      if (rmdir(cg->path[c]) == 0 || errno == ENOENT) break;
      struct timespec ts = { 0, 5 * 1000 * 1000 };
      nanosleep(&ts, NULL);
    }
    cg->path[c][0] = 0;
    if (cg->build[c][0]) rmdir(cg->build[c]); /* fails (EBUSY) while other sandboxes of the build run */
    cg->build[c][0] = 0;
  }
}
