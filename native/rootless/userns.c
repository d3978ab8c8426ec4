/* kiln-userns: runs a command as root of a new user namespace (with a mount namespace of its own), for
 * kiln's rootless mode. Usage: kiln-userns COMMAND [ARG...]
 *
 * The caller's uid/gid become 0 inside; its subordinate ranges from /etc/subuid and /etc/subgid (by name or
 * uid) are mapped after it as 1, 2, ... through newuidmap/newgidmap (package uidmap), so that a layer can
 * hold files of many owners. Without a range only the caller's own id is mapped (written directly), and a
 * chown to any other id fails with EINVAL.
 *
 * Node cannot unshare a user namespace (it is multi-threaded), hence this small single-threaded program:
 * it unshares, a forked child runs newuidmap/newgidmap for it, then it execs the command, which keeps the
 * caller's pid (so signals and exit status pass through unchanged).
 *
 * Exit: the command's status, or 125 with a one-line message on stderr when the namespace cannot be made. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RANGES 16

struct range { unsigned long start, count; };

static __attribute__((noreturn)) void die(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "kiln: rootless: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  exit(125);
}

/* Reads NAME:START:COUNT lines of file for the given user name or numeric id. */
static int read_ranges(const char *file, const char *name, unsigned long id, struct range *out) {
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  char line[512], idstr[32];
  snprintf(idstr, sizeof idstr, "%lu", id);
  int n = 0;
  while (n < MAX_RANGES && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    if (strcmp(line, idstr) != 0 && (!name || strcmp(line, name) != 0)) continue;
    unsigned long start, count;
    if (sscanf(colon + 1, "%lu:%lu", &start, &count) != 2 || count == 0) continue;
    out[n++] = (struct range){ start, count };
  }
  fclose(f);
  return n;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t len = (ssize_t)strlen(text), w = write(fd, text, (size_t)len);
  int saved = errno;
  close(fd);
  errno = saved;
  return w == len ? 0 : -1;
}

/* Runs newuidmap/newgidmap PID 0 ID 1 [inner outer count]... and returns its exit status. */
static int run_map_tool(const char *tool, pid_t pid, unsigned long id, const struct range *r, int n) {
  char *argv[4 + 3 * (MAX_RANGES + 1) + 1];
  char buf[3 * (MAX_RANGES + 2)][24];
  int a = 0, b = 0;
  argv[a++] = (char *)tool;
  snprintf(buf[b], sizeof buf[b], "%d", (int)pid); argv[a++] = buf[b++];
  argv[a++] = "0";
  snprintf(buf[b], sizeof buf[b], "%lu", id); argv[a++] = buf[b++];
  argv[a++] = "1";
  unsigned long inner = 1;
  for (int i = 0; i < n; i++) {
    snprintf(buf[b], sizeof buf[b], "%lu", inner); argv[a++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "%lu", r[i].start); argv[a++] = buf[b++];
    snprintf(buf[b], sizeof buf[b], "%lu", r[i].count); argv[a++] = buf[b++];
    inner += r[i].count;
  }
  argv[a] = NULL;
  pid_t c = fork();
  if (c < 0) return -1;
  if (c == 0) {
    execvp(tool, argv);
    fprintf(stderr, "kiln: rootless: cannot run %s: %s (install the uidmap package)\n", tool, strerror(errno));
    _exit(127);
  }
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: kiln-userns COMMAND [ARG...]%s%s", "", "");
  pid_t parent = getppid();
  uid_t uid = getuid();
  gid_t gid = getgid();
  struct passwd *pw = getpwuid(uid);
  const char *name = pw ? pw->pw_name : NULL;
  struct range ur[MAX_RANGES], gr[MAX_RANGES];
  int nu = read_ranges("/etc/subuid", name, uid, ur);
  int ng = read_ranges("/etc/subgid", name, uid, gr);
  bool full = nu > 0 && ng > 0;

  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0) die("pipe: %s%s", strerror(errno), "");
  pid_t me = getpid();
  pid_t helper = full ? fork() : 0;
  if (full && helper < 0) die("fork: %s%s", strerror(errno), "");
  if (full && helper == 0) {
    /* Wait until the parent has unshared, map its ids, report. */
    close(to_child[1]);
    close(from_child[0]);
    char c;
    if (read(to_child[0], &c, 1) != 1) _exit(1);
    int r = run_map_tool("newuidmap", me, uid, ur, nu);
    if (r == 0) r = run_map_tool("newgidmap", me, gid, gr, ng);
    c = r == 0 ? 'y' : 'n';
    if (write(from_child[1], &c, 1) != 1) _exit(1);
    _exit(r == 0 ? 0 : 1);
  }
  close(to_child[0]);
  close(from_child[1]);
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
    die("cannot create a user namespace: %s%s", strerror(errno),
        errno == EPERM || errno == ENOSPC ? " (unprivileged user namespaces disabled? see user.max_user_namespaces)" : "");
  if (full) {
    char c = 'g';
    if (write(to_child[1], &c, 1) != 1) die("cannot reach the id-mapping helper%s%s", "", "");
    if (read(from_child[0], &c, 1) != 1 || c != 'y')
      die("newuidmap/newgidmap failed (see above): check the ranges of %s in /etc/subuid and /etc/subgid", name ? name : "this user", "");
    int st;
    while (waitpid(helper, &st, 0) < 0 && errno == EINTR) {}
  } else {
    char text[64];
    snprintf(text, sizeof text, "0 %lu 1\n", (unsigned long)uid);
    if (write_file("/proc/self/uid_map", text) < 0) die("write uid_map: %s%s", strerror(errno), "");
    if (write_file("/proc/self/setgroups", "deny") < 0) die("write setgroups: %s%s", strerror(errno), "");
    snprintf(text, sizeof text, "0 %lu 1\n", (unsigned long)gid);
    if (write_file("/proc/self/gid_map", text) < 0) die("write gid_map: %s%s", strerror(errno), "");
  }
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("cannot become root in the user namespace: %s%s", strerror(errno), "");
  /* Mounts made inside (overlays of RUN steps) never propagate out. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private: %s%s", strerror(errno), "");
  setenv("KILN_ROOTLESS_IDS", full ? "subid" : "single", 1);
  if (name) setenv("KILN_ROOTLESS_USER", name, 1);
  /* The outer kiln killed -9 takes the re-executed one (and so its sandboxes) with it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  execvp(argv[1], argv + 1);
  die("cannot run %s: %s", argv[1], strerror(errno));
}
