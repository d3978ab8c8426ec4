/* Credentials and confinement applied just before exec: user/groups, capabilities, no_new_privs, seccomp. */
#ifndef KILN_SECURITY_H
#define KILN_SECURITY_H
#include "spec.h"

/* Switches to the spec's uid/gid/groups keeping Docker's default capability set (all caps when
 * privileged). After exec the kernel leaves root with that set and other users with none, as in Docker. */
void security_switch_user(const struct spec *s);
/* no_new_privs and the seccomp deny-list (both skipped for privileged). Call last before exec. */
void security_confine(const struct spec *s);
#endif
