/* Container networking: loopback only ("none"), or a veth pair into kiln's bridge ("bridge"). */
#ifndef KILN_NET_H
#define KILN_NET_H
#include "spec.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Helper side, before the child exists (bridge only): takes an address lease. 0, or -1 with err. */
int net_lease(const struct spec *s, char *err, size_t errlen);
/* Helper side, once the child (born in its own network namespace) exists: the veth pair, host end on the
 * bridge and up, the other end named eth0 in the child's namespace. 0, or -1 with err. */
int net_attach(const struct spec *s, pid_t child, char *err, size_t errlen);
/* Helper side, at the end: deletes the host end (if still there) and drops the lease. */
void net_release(const struct spec *s);
/* The leased address (network byte order). */
uint32_t net_address(const struct spec *s);
/* Container side, in its namespace: lo up; for bridge also eth0 up, its address and the default route. */
void net_child_setup(const struct spec *s);
#endif
