/* Keeps the upperdir an exact record of the process's changes. Mounting on a path that the image lacks
 * (a bind target, /proc in a scratch image, ...) must create it in the overlay, so the directory or empty
 * file lands in the upperdir. Before the run we note which of those paths are absent from the upperdir;
 * afterwards we remove the ones that are still empty (a mount point cannot have been written through), the
 * way BuildKit drops empty mount stubs. Paths on the way to the cwd are kept: creating the cwd is a real
 * change, as with docker's WORKDIR. Known limit: a mount target reached through a symlink in the image is
 * created at the link's destination, which this literal-path bookkeeping does not remove. */
#ifndef KILN_UPPER_H
#define KILN_UPPER_H
#include <stddef.h>

struct upper_guard { char **paths; size_t n, cap; };

void upper_guard_note(struct upper_guard *g, const char *upperdir, const char *target, const char *cwd);
void upper_guard_clean(struct upper_guard *g);
#endif
