/* kiln-sandbox: runs one container process from a JSON run spec.
 *
 * Protocol (see native/sandbox.ts):
 *   fd 3  the run spec as one line of JSON, ended by "\n". The helper keeps reading fd 3 afterwards:
 *         end-of-file or any further byte means "abort": the whole container is SIGKILLed (killing pid 1 of
 *         its pid namespace takes every process with it) and cgroups and mounts are cleaned up. With
 *         "signalProxy" in the spec, a byte that is the number of INT, TERM, HUP, QUIT, USR1 or USR2 means
 *         "pass this signal to the container" instead (docker's sig-proxy, sent by the parent). A spec read
 *         from a regular file (kiln-sandbox 3<spec.json) is not watched.
 *   fd 4  optional: receives one JSON status object at the end:
 *         {"exitCode":N,"signal":"SIGKILL","oomKilled":false,"aborted":false,
 *          "execError":"...","setupError":"..."}   (signal/execError/setupError only when they apply)
 *   0-2   the container's stdio (inherited as-is; relayed through a pty when the spec asks for a tty).
 * Signals INT, TERM, HUP, QUIT, USR1, USR2 and WINCH sent to the helper are forwarded to the container
 * process (WINCH only sets the pty's size, when there is one; with "signalProxy" the others are ignored:
 * they come as bytes on fd 3). If the helper's parent dies (kiln killed
 * -9), the kernel tells the helper (PR_SET_PDEATHSIG) and the container is killed as on abort; if the
 * helper itself is killed, the container's pid 1 gets SIGKILL from its own parent-death signal, and the
 * pid namespace goes with its init. With "tty", a terminal that hangs up (closed window) sends SIGHUP to the
 * container and SIGKILL after a short grace. The helper exits with the container's exit code (128+n when killed by signal n), 125 when the
 * sandbox could not be set up, 126/127 when the command cannot be executed / is not found.
 *
 * Process layout: the helper stays in the host's namespaces (so it can clean up), unshares only the pid
 * namespace for its child, and forks once. The child becomes pid 1 of the new pid namespace, builds the
 * mount/uts/ipc/net namespaces and the rootfs, drops privileges and execs the command: the container's
 * process is pid 1, as with docker run without --init. */
#define _GNU_SOURCE
#include "cgroups.h"
#include "exec.h"
#include "init.h"
#include "fail.h"
#include "net.h"
#include "rootfs.h"
#include "security.h"
#include "spec.h"
#include "tty.h"
#include "upper.h"
#include "userns.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPEC_FD 3
#define STATUS_FD 4
/* Delivered to the helper when its parent dies; any signal nobody sends by hand. */
#define SIG_PARENT_GONE (SIGRTMIN + 3)
/* How long a container may outlive the terminal that hung up before it is killed. */
#define HANGUP_GRACE_MS 2000

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

struct outcome {
  int exit_code;
  int signal;
  bool oom_killed;
  bool aborted;
  const char *exec_error;
  const char *setup_error;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The signals a proxying parent may pass on as a byte on fd 3 (all of forwarded_signals but WINCH, which
 * only resizes the pty and comes from the terminal itself). */
static bool proxied_signal(int sig) {
  for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++)
    if (forwarded_signals[i] == sig) return sig != SIGWINCH;
  return false;
}

static bool fd_is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static __attribute__((noreturn)) void finish(const struct outcome *o) {
  tty_restore_outer();
  if (fd_is_open(STATUS_FD)) {
    FILE *f = fdopen(STATUS_FD, "w");
    fprintf(f, "{\"exitCode\":%d,\"oomKilled\":%s,\"aborted\":%s", o->exit_code, o->oom_killed ? "true" : "false",
            o->aborted ? "true" : "false");
    if (o->signal) fprintf(f, ",\"signal\":\"SIG%s\"", sigabbrev_np(o->signal));
    if (o->exec_error) { fputs(",\"execError\":", f); json_string(f, o->exec_error); }
    if (o->setup_error) { fputs(",\"setupError\":", f); json_string(f, o->setup_error); }
    fputs("}\n", f);
    fclose(f);
  } else if (o->setup_error || o->exec_error) {
    fprintf(stderr, "kiln-sandbox: %s\n", o->setup_error ? o->setup_error : o->exec_error);
  }
  exit(o->exit_code);
}

static __attribute__((noreturn)) void setup_failed(const char *msg) {
  struct outcome o = { .exit_code = EXIT_SETUP, .setup_error = msg };
  finish(&o);
}

/* Reads the spec line; *watch says whether fd 3 stays open as the abort channel. */
static char *read_spec(bool *watch) {
  struct stat st;
  if (fstat(SPEC_FD, &st) < 0) setup_failed("fd 3 must carry the run spec (JSON)");
  size_t len = 0, cap = 65536;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
    ssize_t n = read(SPEC_FD, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) setup_failed("cannot read the run spec from fd 3");
    if (n == 0) { *watch = false; break; }
    char *nl = memchr(buf + len, '\n', (size_t)n);
    len += (size_t)n;
    if (nl) {
      /* Anything after the newline is already an abort request. */
      if ((size_t)(nl - buf) + 1 < len) setup_failed("aborted before start");
      len = (size_t)(nl - buf);
      *watch = !S_ISREG(st.st_mode);
      break;
    }
  }
  buf[len] = 0;
  return buf;
}

struct child_ctx {
  const struct spec *s;
  int go_fd, tty_sock;
  struct winsize ws;
  bool have_ws;
};

static __attribute__((noreturn)) void run_child(const struct child_ctx *c) {
  const struct spec *s = c->s;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  /* Killed with the helper from here on; a helper that died before this leaves "go" unwritten. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char go;
  if (read(c->go_fd, &go, 1) != 1) _exit(EXIT_SETUP); /* the helper died before the cgroups were ready */
  /* A session of its own: terminal job-control signals for the helper's group do not hit the container
   * twice (the helper forwards them), and reading a tty stdin cannot stop it with SIGTTIN. */
  setsid();
  umask(0);
  /* The network namespace came with the clone (so the helper could plug a veth into it before "go"). */
  int ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  if (unshare(ns) < 0) child_fail(EXIT_SETUP, "unshare namespaces: %s", strerror(errno));
  const char *hostname = s->hostname ? s->hostname : "kiln-sandbox";
  if (sethostname(hostname, strlen(hostname)) < 0) child_fail(EXIT_SETUP, "sethostname %s: %s", hostname, strerror(errno));
  net_child_setup(s);
  rootfs_enter(s);
  rootfs_harden(s);
  if (s->tty) tty_child_setup(c->tty_sock, &c->ws, c->have_ws, s->uid);
  if (c->tty_sock >= 0) close(c->tty_sock);
  rootfs_mkdir_p(s->cwd);
  /* seccomp before dropping to the user: without no_new_privs, loading a filter needs CAP_SYS_ADMIN. */
  security_confine(s);
  security_switch_user(s);
  if (chdir(s->cwd) < 0) child_fail(EXIT_SETUP, "cannot change to cwd %s as uid %u: %s", s->cwd, s->uid, strerror(errno));
  /* Only stdio reaches the container: everything else (spec and status pipes...) closes on exec. */
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  umask(022);
  /* setuid cleared the parent-death signal: set it again, then make sure the helper did not die in
   * between (it holds the write end of the go pipe for its whole life). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd alive = { .fd = c->go_fd, .events = POLLIN };
  if (poll(&alive, 1, 0) > 0 && (alive.revents & (POLLHUP | POLLERR))) _exit(EXIT_SETUP);
  if (s->init) init_run(s);
  exec_command(s);
}

static void write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* reader went away: drop output, like a closed terminal */
    buf += w;
    n -= w;
  }
}

/* Relays the pty master to stdout until it reports EIO (every slave closed) or EAGAIN. Returns false at EIO. */
static bool pump_master(int master) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) { write_all(STDOUT_FILENO, buf, n); continue; }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

int main(int argc, char **argv) {
  /* Blocked at once (it would terminate the helper before its cleanup), read from the signalfd later. */
  sigset_t gone;
  sigemptyset(&gone);
  sigaddset(&gone, SIG_PARENT_GONE);
  sigprocmask(SIG_BLOCK, &gone, NULL);
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIG_PARENT_GONE);
  if (getppid() != parent) setup_failed("aborted before start: the parent process is gone");
  bool watch_ctl = false;
  char *text = read_spec(&watch_ctl);
  struct spec spec;
  static char err[1024];
  if (spec_parse(text, &spec, err, sizeof err) < 0) setup_failed(err);
  if (argc > 1 && !strcmp(argv[1], "--net-reset")) {
    /* Maintenance: remove the bridge's idle pooled namespaces (the spec names the bridge). */
    if (spec.network != NET_BRIDGE) setup_failed("--net-reset needs a spec with network \"bridge\"");
    if (net_reset(&spec, err, sizeof err) < 0) setup_failed(err);
    struct outcome o = { 0 };
    finish(&o);
  }

  /* Rootless (a user namespace): no bridge (veths and NAT need real root) and no cgroups (v1 has no
   * delegation); the caller warns about limits it drops. */
  bool rootless = in_user_namespace();
  if (rootless && spec.network == NET_BRIDGE) setup_failed("rootless mode has no bridge network: use network none or host");
  if (spec.network == NET_BRIDGE && net_lease(&spec, err, sizeof err) < 0) setup_failed(err);

  struct cgroups cg;
  memset(&cg, 0, sizeof cg);
  if (!rootless && cgroups_create(&spec, &cg, err, sizeof err) < 0) { cgroups_destroy(&cg); setup_failed(err); }

  /* No devices cgroup (a host without the v1 devices controller): confine device use with nodev mounts. */
  spec.devices_nodev = !rootless && !spec.privileged && !cg.path[CG_DEVICES][0];

  struct upper_guard guard = { 0 };
  if (spec.upperdir) {
    static const char *const fixed[] = { "/proc", "/dev", "/sys" };
    for (size_t i = 0; i < 3; i++) upper_guard_note(&guard, spec.upperdir, fixed[i], spec.cwd);
    for (size_t i = 0; i < spec.n_mounts; i++) upper_guard_note(&guard, spec.upperdir, spec.mounts[i].target, spec.cwd);
  }

  struct child_ctx ctx = { .s = &spec, .tty_sock = -1 };
  int go[2], errp[2], sock[2] = { -1, -1 };
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) setup_failed("pipe failed");
  if (spec.tty) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) setup_failed("socketpair failed");
    ctx.have_ws = tty_outer_size(&ctx.ws);
    ctx.tty_sock = sock[1];
  }
  ctx.go_fd = go[0];

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIG_PARENT_GONE);
  for (size_t i = 0; i < sizeof forwarded_signals / sizeof forwarded_signals[0]; i++) sigaddset(&mask, forwarded_signals[i]);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Non-blocking: the loop below drains every pending signal and must get back to poll() after the last. */
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  if (unshare(CLONE_NEWPID) < 0) {
    snprintf(err, sizeof err, "cannot create a pid namespace: %s (kiln-sandbox must run as root)", strerror(errno));
    cgroups_destroy(&cg);
    setup_failed(err);
  }
  /* Like fork(), but the child is born in a new network namespace unless it uses the host's. */
  bool new_net = spec.network == NET_NONE || (spec.network == NET_BRIDGE && !net_pooled());
  pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | (new_net ? CLONE_NEWNET : 0), NULL, NULL, NULL, NULL);
  if (pid < 0) { cgroups_destroy(&cg); setup_failed("fork failed"); }
  if (pid == 0) {
    close(go[1]);
    close(errp[0]);
    if (sock[0] >= 0) close(sock[0]);
    child_error_fd = errp[1];
    run_child(&ctx);
  }
  close(go[0]);
  close(errp[1]);
  if (sock[1] >= 0) close(sock[1]);

  if (cgroups_add(&cg, pid, err, sizeof err) < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cgroups_destroy(&cg);
    setup_failed(err);
  }
  if (spec.network == NET_BRIDGE && net_attach(&spec, pid, err, sizeof err) < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cgroups_destroy(&cg);
    setup_failed(err);
  }
  /* go[1] stays open: the child polls it for a hang-up to learn whether the helper is still alive. */
  if (write(go[1], "g", 1) != 1) setup_failed("cannot start the sandbox child");

  enum { P_SIG, P_CTL, P_ERR, P_SOCK, P_MASTER, P_STDIN, P_COUNT };
  struct pollfd pfd[P_COUNT];
  for (int i = 0; i < P_COUNT; i++) pfd[i] = (struct pollfd){ .fd = -1, .events = POLLIN };
  pfd[P_SIG].fd = sigfd;
  pfd[P_CTL].fd = watch_ctl ? SPEC_FD : -1;
  pfd[P_ERR].fd = errp[0];
  pfd[P_SOCK].fd = sock[0];
  int master = -1;
  char child_msg[2048] = "";
  size_t child_msg_len = 0;
  struct outcome o = { 0 };
  int status = 0;
  bool exited = false;
  /* Set when the outer terminal hung up: the container is killed at this time (ms, CLOCK_MONOTONIC). */
  long long kill_at = -1;
  bool stdin_tty = false;

  while (!exited) {
    int timeout = -1;
    if (kill_at >= 0) timeout = kill_at > now_ms() ? (int)(kill_at - now_ms()) : 0;
    int ready = poll(pfd, P_COUNT, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0 && kill_at >= 0) {
      kill(pid, SIGKILL);
      kill_at = -1;
      continue;
    }
    if (pfd[P_SIG].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD) {
          if (waitpid(pid, &status, WNOHANG) == pid) exited = true;
        } else if (sig == SIG_PARENT_GONE) {
          /* Only when the parent process is gone: the signal also comes when the thread that started the
           * helper ends, and then getppid() still names that process. */
          if (getppid() != parent) {
            o.aborted = true;
            kill(pid, SIGKILL);
          }
        } else if (sig == SIGWINCH) {
          struct winsize ws;
          /* The kernel signals the container's foreground group when the size changes. */
          if (master >= 0 && tty_outer_size(&ws)) ioctl(master, TIOCSWINSZ, &ws);
        } else if (!spec.signal_proxy) {
          /* With signalProxy the parent passes on every signal it gets (docker's sig-proxy) as a byte on
           * fd 3, so a copy that reaches the helper directly from a process-group signal (a terminal's ^C,
           * `timeout`) is dropped: the container sees each signal once. A byte cannot merge with the direct
           * copy as two pending signals of one number do, and no time window drops a real second signal. */
          kill(pid, sig);
        }
        if (exited) break;
      }
    }
    if (pfd[P_CTL].revents) {
      unsigned char b[64];
      ssize_t n = read(SPEC_FD, b, sizeof b);
      bool abort_now = n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
      for (ssize_t i = 0; i < n && !abort_now; i++) {
        if (spec.signal_proxy && proxied_signal(b[i])) kill(pid, b[i]);
        else abort_now = true;
      }
      if (abort_now) {
        o.aborted = true;
        kill(pid, SIGKILL);
        pfd[P_CTL].fd = -1;
      }
    }
    if (pfd[P_ERR].revents) {
      ssize_t n = read(errp[0], child_msg + child_msg_len, sizeof child_msg - 1 - child_msg_len);
      if (n > 0) child_msg_len += (size_t)n;
      else pfd[P_ERR].fd = -1;
    }
    if (pfd[P_SOCK].revents) {
      master = tty_recv_master(sock[0]);
      close(sock[0]);
      pfd[P_SOCK].fd = -1;
      if (master >= 0) {
        fcntl(master, F_SETFL, O_NONBLOCK);
        pfd[P_MASTER].fd = master;
        pfd[P_STDIN].fd = STDIN_FILENO;
        stdin_tty = isatty(STDIN_FILENO);
        tty_make_outer_raw(STDIN_FILENO);
      }
    }
    if (pfd[P_MASTER].revents) {
      if (!pump_master(master)) pfd[P_MASTER].fd = -1;
    }
    if (pfd[P_STDIN].revents) {
      char buf[16384];
      ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) write_all(master, buf, n);
      else if (n == 0 || errno != EINTR) {
        bool hangup = stdin_tty || (n < 0 && errno == EIO);
        /* Input ended: pass an end-of-file to the terminal's reader, as typing ^D would. */
        if (n == 0 && !isatty(STDIN_FILENO)) write_all(master, "\x04", 1);
        pfd[P_STDIN].fd = -1;
        if (hangup && kill_at < 0) {
          /* The user's terminal is gone (window closed): hang up the container's terminal as well, and
           * kill what ignores that after a grace, so nothing keeps running without a terminal. */
          kill(pid, SIGHUP);
          kill_at = now_ms() + HANGUP_GRACE_MS;
        }
      }
    }
  }

  if (master >= 0) pump_master(master);
  /* The child is gone, so its end of the error pipe is closed: read what it reported. */
  for (ssize_t n; errp[0] >= 0 && (n = read(errp[0], child_msg + child_msg_len, sizeof child_msg - 1 - child_msg_len)) > 0;)
    child_msg_len += (size_t)n;
  child_msg[child_msg_len] = 0;

  if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
    o.exit_code = 128 + o.signal;
  } else {
    o.exit_code = WEXITSTATUS(status);
  }
  char *space = strchr(child_msg, ' ');
  if (child_msg_len && space && !o.aborted) {
    int code = atoi(child_msg);
    o.exit_code = code;
    o.signal = 0;
    if (code == EXIT_SETUP) o.setup_error = space + 1;
    else o.exec_error = space + 1;
  }
  o.oom_killed = cgroups_oom_killed(&cg);
  cgroups_destroy(&cg);
  if (spec.network == NET_BRIDGE) net_release(&spec);
  upper_guard_clean(&guard);
  finish(&o);
}
