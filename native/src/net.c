/* Container networking. "none": a new network namespace with lo up. "bridge": the same plus a veth pair
 * whose host end joins kiln's bridge (made by native/network/bridge.ts) and whose other end is eth0 in the
 * container, with an address leased from the bridge's pool and a default route via the bridge.
 *
 * Leases: byte n of the lease file, locked with an open-file-description lock (F_OFD_SETLK) for as long
 * as the helper lives, owns address pool[n] and the host link name <vethPrefix><n>. The kernel drops the
 * lock when the helper exits, however it exits, so a crash cannot leak an address. The veth pair dies
 * with the container's network namespace (when its last process is gone); the helper also deletes the
 * host end itself at the end, and removes host links whose lease nobody holds (left by a crash while
 * the kernel was still tearing a namespace down) before taking a lease. */
#define _GNU_SOURCE
#include "net.h"
#include "fail.h"
#include "netlink.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lease_fd = -1;
static long lease_index = -1;

static int lock_byte(int fd, long n, short type) {
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = n, .l_len = 1 };
  return fcntl(fd, F_OFD_SETLK, &fl);
}

static void veth_name(const struct spec *s, long n, char *out, size_t len) {
  snprintf(out, len, "%s%ld", s->bridge.veth_prefix, n);
}

static int link_delete(int nl, const char *name) {
  struct nl_msg m;
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
  nl_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
  nl_put_str(&m, IFLA_IFNAME, name);
  return nl_talk(nl, &m);
}

/* Host links named <prefix><n> whose lease is free belong to no live helper: delete them. */
static void sweep_stale(const struct spec *s, int nl) {
  DIR *d = opendir("/sys/class/net");
  if (!d) return;
  size_t plen = strlen(s->bridge.veth_prefix);
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, s->bridge.veth_prefix, plen)) continue;
    char *end;
    long n = strtol(e->d_name + plen, &end, 10);
    if (*end || end == e->d_name + plen || n < 0 || n >= (long)s->bridge.pool_size) continue;
    if (lock_byte(lease_fd, n, F_WRLCK) < 0) continue; /* a live helper holds it */
    link_delete(nl, e->d_name);
    lock_byte(lease_fd, n, F_UNLCK);
  }
  closedir(d);
}

int net_lease(const struct spec *s, char *err, size_t errlen) {
  lease_fd = open(s->bridge.lease_file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lease_fd < 0) {
    snprintf(err, errlen, "network: cannot open lease file %s: %s", s->bridge.lease_file, strerror(errno));
    return -1;
  }
  int nl = nl_open();
  if (nl >= 0) {
    sweep_stale(s, nl);
    close(nl);
  }
  /* Start at a random slot: fewer collisions between helpers starting together, and an address is not
   * reused right away (its previous namespace may still be on its way out). */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long pool = (long)s->bridge.pool_size;
  long start = (long)(((unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16)) % (unsigned long)pool);
  for (long i = 0; i < pool; i++) {
    long n = (start + i) % pool;
    if (lock_byte(lease_fd, n, F_WRLCK) == 0) {
      lease_index = n;
      return 0;
    }
    if (errno != EAGAIN && errno != EACCES) {
      snprintf(err, errlen, "network: lock %s: %s", s->bridge.lease_file, strerror(errno));
      return -1;
    }
  }
  snprintf(err, errlen, "network: all %ld addresses of bridge %s are in use", pool, s->bridge.name);
  return -1;
}

uint32_t net_address(const struct spec *s) {
  uint32_t mask = s->bridge.prefix_len ? ~0U << (32 - s->bridge.prefix_len) : 0;
  uint32_t base = ntohl(s->bridge.gateway) & mask;
  return htonl(base + 2 + (uint32_t)lease_index);
}

static int create_veth(const struct spec *s, int nl, const char *host, unsigned master, int nsfd) {
  struct nl_msg m;
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
  nl_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  nl_put_str(&m, IFLA_IFNAME, host);
  nl_put_u32(&m, IFLA_MASTER, master);
  if (s->bridge.mtu) nl_put_u32(&m, IFLA_MTU, (unsigned)s->bridge.mtu);
  size_t info = nl_nest_begin(&m, IFLA_LINKINFO);
  nl_put_str(&m, IFLA_INFO_KIND, "veth");
  size_t data = nl_nest_begin(&m, IFLA_INFO_DATA);
  size_t peer = nl_nest_begin(&m, VETH_INFO_PEER);
  struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };
  nl_put_raw(&m, &peer_ifi, sizeof peer_ifi);
  nl_put_str(&m, IFLA_IFNAME, "eth0");
  nl_put_u32(&m, IFLA_NET_NS_FD, (unsigned)nsfd);
  if (s->bridge.mtu) nl_put_u32(&m, IFLA_MTU, (unsigned)s->bridge.mtu);
  nl_nest_end(&m, peer);
  nl_nest_end(&m, data);
  nl_nest_end(&m, info);
  return nl_talk(nl, &m);
}

int net_attach(const struct spec *s, pid_t child, char *err, size_t errlen) {
  char host[32], path[64];
  veth_name(s, lease_index, host, sizeof host);
  unsigned master = if_nametoindex(s->bridge.name);
  if (!master) {
    snprintf(err, errlen, "network: bridge %s does not exist", s->bridge.name);
    return -1;
  }
  snprintf(path, sizeof path, "/proc/%d/ns/net", (int)child);
  int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  int nl = nl_open();
  if (nsfd < 0 || nl < 0) {
    snprintf(err, errlen, "network: %s: %s", nsfd < 0 ? path : "netlink socket", strerror(errno));
    if (nsfd >= 0) close(nsfd);
    return -1;
  }
  int r = create_veth(s, nl, host, master, nsfd);
  if (r < 0 && errno == EEXIST) {
    /* Ours by lease: a leftover of an earlier holder whose namespace is still being torn down. */
    link_delete(nl, host);
    r = create_veth(s, nl, host, master, nsfd);
  }
  int e = errno;
  close(nl);
  close(nsfd);
  if (r < 0) {
    snprintf(err, errlen, "network: cannot create veth %s on bridge %s: %s", host, s->bridge.name, strerror(e));
    return -1;
  }
  return 0;
}

void net_release(const struct spec *s) {
  if (lease_index < 0) return;
  char host[32];
  veth_name(s, lease_index, host, sizeof host);
  int nl = nl_open();
  if (nl >= 0) {
    link_delete(nl, host); /* usually already gone with the namespace: ENODEV is fine */
    close(nl);
  }
  lock_byte(lease_fd, lease_index, F_UNLCK);
  lease_index = -1;
}

static void link_up(int nl, unsigned index, const char *name) {
  struct nl_msg m;
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
  nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
  if (nl_talk(nl, &m) < 0) child_fail(EXIT_SETUP, "network: bring %s up: %s", name, strerror(errno));
}

void net_child_setup(const struct spec *s) {
  if (s->network == NET_HOST) return;
  int nl = nl_open();
  if (nl < 0) child_fail(EXIT_SETUP, "network: netlink socket: %s", strerror(errno));
  link_up(nl, if_nametoindex("lo"), "lo");
  if (s->network == NET_BRIDGE) {
    unsigned eth0 = if_nametoindex("eth0");
    if (!eth0) child_fail(EXIT_SETUP, "network: eth0 is missing in the container");
    link_up(nl, eth0, "eth0");
    uint32_t addr = net_address(s);
    struct nl_msg m;
    struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)s->bridge.prefix_len, .ifa_index = eth0 };
    nl_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    nl_put(&m, IFA_LOCAL, &addr, 4);
    nl_put(&m, IFA_ADDRESS, &addr, 4);
    if (nl_talk(nl, &m) < 0) child_fail(EXIT_SETUP, "network: add address to eth0: %s", strerror(errno));
    struct rtmsg rt = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
                        .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
    nl_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
    nl_put(&m, RTA_GATEWAY, &s->bridge.gateway, 4);
    nl_put_u32(&m, RTA_OIF, eth0);
    if (nl_talk(nl, &m) < 0) child_fail(EXIT_SETUP, "network: default route: %s", strerror(errno));
  }
  close(nl);
}
