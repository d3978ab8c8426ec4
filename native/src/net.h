/* Container networking: loopback only ("none"), or a veth pair into kiln's bridge ("bridge"). */
#ifndef KILN_NET_H
#define KILN_NET_H
#include "spec.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Helper side, before the child exists (bridge only): takes an address lease (and the pooled namespace
 * that goes with it, if there is a usable one). 0, or -1 with err. */
int net_lease(const struct spec *s, char *err, size_t errlen);
/* The leased slot has a ready namespace: clone without CLONE_NEWNET; the child enters it. */
bool net_pooled(void);
/* Helper side, once the child (born in its own network namespace) exists, unless pooled: the veth pair,
 * host end on the bridge and up, the other end eth0 in the child's namespace with its address and
 * route; then the namespace becomes a pool entry. 0, or -1 with err. */
int net_attach(const struct spec *s, pid_t child, char *err, size_t errlen);
/* Helper side, at the end: deletes the host end (if still there) and drops the lease. */
void net_release(const struct spec *s);
/* The leased address (network byte order). */
uint32_t net_address(const struct spec *s);
/* Removes every pool entry not in use (kiln-sandbox --net-reset). */
int net_reset(const struct spec *s, char *err, size_t errlen);
/* Container side: lo up ("none"), or enter the pooled namespace ("bridge"). */
void net_child_setup(const struct spec *s);
#endif
