/* `init: true` (kiln run --init): pid 1 of the container stays the helper's own code, a tiny init like
 * docker's --init (tini): it runs the command as its only direct child, passes every signal it gets on to
 * that child (a process that is pid 1 itself would ignore those it has no handler for), reaps orphans
 * re-parented to it, and exits with the child's status (128+n when the child died of signal n). */
#ifndef KILN_INIT_H
#define KILN_INIT_H
#include "spec.h"

/* Called as the last step before exec, with user, caps and seccomp already in place. */
__attribute__((noreturn)) void init_run(const struct spec *s);
#endif
