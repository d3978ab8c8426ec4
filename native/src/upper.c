#define _GNU_SOURCE
#include "upper.h"
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* True when prefix names cwd or one of its ancestors. */
static bool leads_to(const char *prefix, const char *cwd) {
  size_t n = strlen(prefix);
  return !strncmp(prefix, cwd, n) && (cwd[n] == 0 || cwd[n] == '/');
}

void upper_guard_note(struct upper_guard *g, const char *upperdir, const char *target, const char *cwd) {
  char rel[PATH_MAX];
  snprintf(rel, sizeof rel, "%s", target);
  for (char *p = rel + 1;; p++) {
    if (*p != '/' && *p != 0) continue;
    char saved = *p;
    *p = 0;
    char host[PATH_MAX * 2];
    snprintf(host, sizeof host, "%s%s", upperdir, rel);
    struct stat st;
    if (rel[1] && !leads_to(rel, cwd) && lstat(host, &st) < 0) {
      if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->paths = realloc(g->paths, g->cap * sizeof *g->paths);
      }
      g->paths[g->n++] = strdup(host);
    }
    *p = saved;
    if (!saved) break;
  }
}

static int deeper_first(const void *a, const void *b) {
  return (int)strlen(*(char *const *)b) - (int)strlen(*(char *const *)a);
}

void upper_guard_clean(struct upper_guard *g) {
  qsort(g->paths, g->n, sizeof *g->paths, deeper_first);
  for (size_t i = 0; i < g->n; i++) {
    struct stat st;
    if (lstat(g->paths[i], &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) rmdir(g->paths[i]); /* fails, as it should, when the process put files in it */
    else if (S_ISREG(st.st_mode) && st.st_size == 0) unlink(g->paths[i]);
  }
}
