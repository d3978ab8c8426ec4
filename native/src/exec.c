#define _GNU_SOURCE
#include "exec.h"
#include "fail.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *env_path(const struct spec *s) {
  for (size_t i = 0; i < s->n_env; i++)
    if (!strncmp(s->env[i], "PATH=", 5)) return s->env[i] + 5;
  return DEFAULT_PATH;
}

/* Like Go's exec.LookPath (what runc uses): the first regular file with an execute bit. */
static bool look_path(const char *name, const char *path, char *out, size_t outlen) {
  const char *p = path;
  for (;;) {
    size_t n = strcspn(p, ":");
    if (n == 0) snprintf(out, outlen, "./%s", name);
    else snprintf(out, outlen, "%.*s/%s", (int)n, p, name);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) return true;
    if (!p[n]) return false;
    p += n + 1;
  }
}

void exec_command(const struct spec *s) {
  const char *cmd = s->args[0];
  char resolved[PATH_MAX];
  if (!strchr(cmd, '/')) {
    if (!look_path(cmd, env_path(s), resolved, sizeof resolved))
      child_fail(EXIT_NOT_FOUND, "exec: \"%s\": executable file not found in $PATH", cmd);
    cmd = resolved;
  }
  execve(cmd, s->args, s->env);
  int e = errno;
  if (e == ENOENT) {
    struct stat st;
    if (stat(cmd, &st) < 0) child_fail(EXIT_NOT_FOUND, "exec: \"%s\": stat %s: no such file or directory", s->args[0], cmd);
    /* The file exists, so its interpreter or dynamic loader is what is missing. */
    child_fail(EXIT_NOT_FOUND, "exec %s: no such file or directory (missing interpreter or loader?)", cmd);
  }
  if (e == EACCES) child_fail(EXIT_NOT_EXECUTABLE, "exec: \"%s\": permission denied", s->args[0]);
  child_fail(EXIT_NOT_EXECUTABLE, "exec %s: %s", cmd, strerror(e));
}
