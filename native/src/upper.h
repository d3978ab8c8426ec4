/* Keeps the upperdir an exact record of the process's changes. Mounting on a path that the image lacks
 * (a bind target, /proc in a scratch image, ...) must create it in the overlay, so the directory or empty
 * file lands in the upperdir. Before the run we note which of those paths are absent from the upperdir;
 * afterwards we remove the ones that are still empty (a mount point cannot have been written through), the
 * way BuildKit drops empty mount stubs. Paths on the way to the cwd are kept: creating the cwd is a real
 * change, as with docker's WORKDIR. Known limit: a mount target reached through a symlink in the image is
 * created at the link's destination, which this literal-path bookkeeping does not remove.
 *
 * The process owns the upperdir while it runs: it may have replaced a noted path's parent with a symlink
 * (to `/`, to a host dir). Clean-up therefore works on fds: each parent is opened beneath the upperdir with
 * no symlink allowed on the way, and the entry is removed with unlinkat() on that fd, which never follows
 * the name itself. A path whose parent is no longer a plain directory is left alone (the process changed
 * it; that change is part of its layer). */
#ifndef KILN_UPPER_H
#define KILN_UPPER_H
#include <stddef.h>

struct upper_guard { char *upperdir; char **paths; size_t n, cap; };  /* paths relative to upperdir */

void upper_guard_note(struct upper_guard *g, const char *upperdir, const char *target, const char *cwd);
void upper_guard_clean(struct upper_guard *g);
#endif
