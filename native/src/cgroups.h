/* cgroup v1 limits for one sandbox: a child cgroup under the helper's own cgroup in each controller. */
#ifndef KILN_CGROUPS_H
#define KILN_CGROUPS_H
#include "spec.h"
#include <limits.h>
#include <stdbool.h>

enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_DEVICES, CG_COUNT };

struct cgroups {
  char path[CG_COUNT][PATH_MAX]; /* "" when that controller is not used */
  char build[CG_COUNT][PATH_MAX]; /* the build's cgroup (parent of path), "" without one */
};

/* Creates the cgroups and writes the limits, and (unless privileged) Docker's default device allow-list in
 * the devices controller; cg->path[CG_DEVICES] is "" when the host has no v1 devices controller. Returns 0, or -1 with a one-line message in err. */
int cgroups_create(const struct spec *s, struct cgroups *cg, char *err, size_t errlen);
int cgroups_add(const struct cgroups *cg, pid_t pid, char *err, size_t errlen);
/* True when the memory controller OOM-killed a process in the sandbox. */
bool cgroups_oom_killed(const struct cgroups *cg);
/* SIGKILLs anything still in the sandbox cgroups and removes them, and the build's cgroup once empty. */
void cgroups_destroy(struct cgroups *cg);
#endif
