#define _GNU_SOURCE
#include "upper.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* True when prefix names cwd or one of its ancestors. */
static bool leads_to(const char *prefix, const char *cwd) {
  size_t n = strlen(prefix);
  return !strncmp(prefix, cwd, n) && (cwd[n] == 0 || cwd[n] == '/');
}

/* Opens rel (no leading slash; "" = dirfd itself) beneath dirfd, refusing every symlink and `..` escape. */
static int open_beneath(int dirfd, const char *rel, int flags) {
  struct open_how how = { .flags = (unsigned long long)(flags | O_CLOEXEC),
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
  return (int)syscall(SYS_openat2, dirfd, rel[0] ? rel : ".", &how, sizeof how);
}

void upper_guard_note(struct upper_guard *g, const char *upperdir, const char *target, const char *cwd) {
  if (!g->upperdir) g->upperdir = strdup(upperdir);
  int upper = open(upperdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (upper < 0) return;
  char rel[PATH_MAX];
  snprintf(rel, sizeof rel, "%s", target);
  for (char *p = rel + 1;; p++) {
    if (*p != '/' && *p != 0) continue;
    char saved = *p;
    *p = 0;
    if (rel[1] && !leads_to(rel, cwd)) {
      int fd = open_beneath(upper, rel + 1, O_PATH);
      if (fd >= 0) close(fd);
      else if (errno == ENOENT) {
        if (g->n == g->cap) {
          g->cap = g->cap ? g->cap * 2 : 16;
          g->paths = realloc(g->paths, g->cap * sizeof *g->paths);
        }
        g->paths[g->n++] = strdup(rel + 1);
      }
    }
    *p = saved;
    if (!saved) break;
  }
  close(upper);
}

static int deeper_first(const void *a, const void *b) {
  return (int)strlen(*(char *const *)b) - (int)strlen(*(char *const *)a);
}

void upper_guard_clean(struct upper_guard *g) {
  if (!g->upperdir) return;
  int upper = open(g->upperdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (upper < 0) return;
  qsort(g->paths, g->n, sizeof *g->paths, deeper_first);
  for (size_t i = 0; i < g->n; i++) {
    char *rel = g->paths[i], *slash = strrchr(rel, '/');
    const char *name = slash ? slash + 1 : rel;
    if (slash) *slash = 0;
    int parent = open_beneath(upper, slash ? rel : "", O_PATH | O_DIRECTORY);
    if (slash) *slash = '/';
    if (parent < 0) continue; /* a parent is now a symlink or gone: not ours to touch */
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      /* rmdir fails, as it should, when the process put files in it. */
      if (S_ISDIR(st.st_mode)) unlinkat(parent, name, AT_REMOVEDIR);
      else if (S_ISREG(st.st_mode) && st.st_size == 0) unlinkat(parent, name, 0);
    }
    close(parent);
  }
  close(upper);
}
