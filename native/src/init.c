#define _GNU_SOURCE
#include "init.h"
#include "exec.h"
#include "fail.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void init_run(const struct spec *s) {
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  /* Blocked signals stay queued even for a pid 1 without handlers; sigwaitinfo takes them one by one. */
  sigprocmask(SIG_SETMASK, &all, NULL);
  pid_t child = fork();
  if (child < 0) child_fail(EXIT_SETUP, "init: fork: %s", strerror(errno));
  if (child == 0) {
    /* Its own process group: with a tty it becomes the foreground job, so ^C reaches it from the pty. */
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &none, NULL);
    exec_command(s); /* failures reach the helper through the error pipe, which closes on exec */
  }
  setpgid(child, child);
  if (s->tty) tcsetpgrp(STDIN_FILENO, child);
  /* The error pipe and the go pipe must close when the child execs, not when init exits. */
  close_range(3, ~0U, 0);
  prctl(PR_SET_NAME, "kiln-init", 0, 0, 0);

  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
      if (p != child) continue; /* an orphan: reaped, nothing else to do */
      /* Leaving takes the rest of the pid namespace with it, as docker-init's exit does. */
      _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
    }
  }
}
