/* Credentials and confinement applied just before exec: seccomp, optional no_new_privs, user/groups, capabilities. */
#ifndef KILN_SECURITY_H
#define KILN_SECURITY_H
#include "spec.h"

/* Switches to the spec's uid/gid/groups keeping Docker's default capability set (all caps when
 * privileged). After exec the kernel leaves root with that set and other users with none, as in Docker. */
void security_switch_user(const struct spec *s);
/* no_new_privs when the spec asks for it, and the seccomp deny-list (skipped for privileged). Call before
 * security_switch_user: without no_new_privs, loading the filter needs CAP_SYS_ADMIN. */
void security_confine(const struct spec *s);
#endif
