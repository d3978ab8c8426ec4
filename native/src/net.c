/* Container networking. "none": a new network namespace with lo up. "bridge": a network namespace with
 * eth0, one end of a veth pair whose host end is on kiln's bridge (made by native/network/bridge.ts), an
 * address leased from the bridge's pool and a default route via the bridge.
 *
 * Leases: byte n of the lease file, locked with an open-file-description lock (F_OFD_SETLK) for as long
 * as the helper lives, owns address pool[n], the host link <vethPrefix><n> and pool entry n. The kernel
 * drops the lock when the helper exits, however it exits, so a crash cannot leak a lease.
 *
 * Pool: making a veth pair and tearing it down costs ~40 ms of kernel time (RTNL, RCU grace periods), so
 * a configured namespace is kept for the next RUN, as BuildKit's CNI pool does: entry n is the namespace
 * bind-mounted on <lease dir>/pool/<bridge>-<gateway>-<prefix>-<n>, made only once it is fully set up. A
 * sandbox without CAP_NET_ADMIN cannot change a namespace's addresses, routes or rules, and its processes
 * (and their sockets) die with its pid namespace, so the next RUN finds it as it was made. Privileged
 * sandboxes never use the pool. Entries idle for longer than poolIdleSeconds, entries whose veth lost
 * its bridge, and host links with no entry and no lease holder are removed by the next helper that
 * takes a lease; `kiln-sandbox --net-reset` removes every idle entry. */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "net.h"
#include "fail.h"
#include "netlink.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#define ETH0_INDEX 2 /* in a fresh namespace lo is 1: eth0 gets a fixed index, usable from the host side */

static int lease_fd = -1;
static long lease_index = -1;
static int pool_ns_fd = -1;   /* the pooled namespace this sandbox enters, or -1 */
static bool persisted;        /* this sandbox's namespace is (now) a pool entry */

static int lock_byte(int fd, long n, short type) {
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = n, .l_len = 1 };
  return fcntl(fd, F_OFD_SETLK, &fl);
}

static void veth_name(const struct spec *s, long n, char *out, size_t len) {
  snprintf(out, len, "%s%ld", s->bridge.veth_prefix, n);
}

static void pool_dir(const struct spec *s, char *out, size_t len) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", s->bridge.lease_file);
  snprintf(out, len, "%s/pool", dirname(tmp));
}

/* Entry names carry the bridge and its subnet: a changed KILN_NETWORK_SUBNET never reuses an old entry. */
static void pool_prefix(const struct spec *s, char *out, size_t len) {
  snprintf(out, len, "%s-%08x-%d-", s->bridge.name, ntohl(s->bridge.gateway), s->bridge.prefix_len);
}

static void pool_path(const struct spec *s, long n, char *out, size_t len) {
  char dir[PATH_MAX], prefix[64];
  pool_dir(s, dir, sizeof dir);
  pool_prefix(s, prefix, sizeof prefix);
  snprintf(out, len, "%s/%s%ld", dir, prefix, n);
}

static int link_delete(int nl, const char *name) {
  struct nl_msg m;
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
  nl_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
  nl_put_str(&m, IFLA_IFNAME, name);
  return nl_talk(nl, &m);
}

static bool is_nsfs(const char *path) {
  struct statfs st;
  return statfs(path, &st) == 0 && st.f_type == NSFS_MAGIC;
}

static bool veth_on_bridge(const struct spec *s, const char *veth) {
  char path[PATH_MAX], target[PATH_MAX];
  snprintf(path, sizeof path, "/sys/class/net/%s/master", veth);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0) return false;
  target[n] = 0;
  const char *base = strrchr(target, '/');
  return base && !strcmp(base + 1, s->bridge.name);
}

/* Removes pool entry path (if any) and host link veth (if any). The caller holds the entry's lease. */
static void destroy_entry(int nl, const char *path, const char *veth) {
  if (path) {
    umount2(path, MNT_DETACH);
    unlink(path);
    char used[PATH_MAX + 8];
    snprintf(used, sizeof used, "%s.used", path);
    unlink(used);
  }
  if (veth && nl >= 0) link_delete(nl, veth);
}

static time_t last_used(const char *path) {
  char used[PATH_MAX + 8];
  struct stat st;
  snprintf(used, sizeof used, "%s.used", path);
  return stat(used, &st) == 0 ? st.st_mtime : 0;
}

/* With idle < 0 every free entry goes; otherwise only broken ones, ones idle longer than idle seconds,
 * and host links that belong to no entry. Entries whose lease is held are in use and left alone. */
static void sweep(const struct spec *s, int nl, long idle) {
  char dir[PATH_MAX], prefix[64];
  pool_dir(s, dir, sizeof dir);
  pool_prefix(s, prefix, sizeof prefix);
  size_t plen = strlen(prefix);
  time_t now = time(NULL);
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strncmp(e->d_name, s->bridge.name, strlen(s->bridge.name)) || e->d_name[strlen(s->bridge.name)] != '-') continue;
    if (strstr(e->d_name, ".used")) continue;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    char *end;
    bool current = !strncmp(e->d_name, prefix, plen);
    long n = current ? strtol(e->d_name + plen, &end, 10) : -1;
    if (current && (*end || n < 0 || n >= s->bridge.pool_size)) continue;
    if (!current) { /* an entry of another subnet: its lease index is in its name's tail */
      const char *dash = strrchr(e->d_name, '-');
      n = dash ? strtol(dash + 1, &end, 10) : -1;
      if (n < 0 || n >= s->bridge.pool_size) continue;
    }
    if (lock_byte(lease_fd, n, F_WRLCK) < 0) continue; /* in use */
    char veth[32];
    veth_name(s, n, veth, sizeof veth);
    bool broken = !current || !is_nsfs(path) || !veth_on_bridge(s, veth);
    if (broken || idle < 0 || now - last_used(path) > idle) destroy_entry(nl, path, veth);
    lock_byte(lease_fd, n, F_UNLCK);
  }
  if (d) closedir(d);
  /* Host links with no pool entry and no lease holder: left by a crash while a namespace was dying. */
  d = opendir("/sys/class/net");
  size_t vlen = strlen(s->bridge.veth_prefix);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strncmp(e->d_name, s->bridge.veth_prefix, vlen)) continue;
    char *end;
    long n = strtol(e->d_name + vlen, &end, 10);
    if (*end || end == e->d_name + vlen || n < 0 || n >= s->bridge.pool_size) continue;
    if (lock_byte(lease_fd, n, F_WRLCK) < 0) continue;
    char path[PATH_MAX];
    pool_path(s, n, path, sizeof path);
    if (!is_nsfs(path)) destroy_entry(nl, NULL, e->d_name);
    lock_byte(lease_fd, n, F_UNLCK);
  }
  if (d) closedir(d);
}

static int open_leases(const struct spec *s, char *err, size_t errlen) {
  lease_fd = open(s->bridge.lease_file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lease_fd < 0) {
    snprintf(err, errlen, "network: cannot open lease file %s: %s", s->bridge.lease_file, strerror(errno));
    return -1;
  }
  char dir[PATH_MAX];
  pool_dir(s, dir, sizeof dir);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    snprintf(err, errlen, "network: cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

int net_lease(const struct spec *s, char *err, size_t errlen) {
  if (open_leases(s, err, errlen) < 0) return -1;
  int nl = nl_open();
  sweep(s, nl, s->bridge.pool_idle_seconds);
  /* The lowest free slot: the pool stays as small as the most RUNs that ran at once. */
  for (long n = 0; n < s->bridge.pool_size; n++) {
    if (lock_byte(lease_fd, n, F_WRLCK) == 0) {
      lease_index = n;
      break;
    }
    if (errno != EAGAIN && errno != EACCES) {
      snprintf(err, errlen, "network: lock %s: %s", s->bridge.lease_file, strerror(errno));
      if (nl >= 0) close(nl);
      return -1;
    }
  }
  if (lease_index < 0) {
    snprintf(err, errlen, "network: all %ld addresses of bridge %s are in use", s->bridge.pool_size, s->bridge.name);
    if (nl >= 0) close(nl);
    return -1;
  }
  char path[PATH_MAX], veth[32];
  pool_path(s, lease_index, path, sizeof path);
  veth_name(s, lease_index, veth, sizeof veth);
  if (!s->privileged && is_nsfs(path) && veth_on_bridge(s, veth)) {
    pool_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
    persisted = pool_ns_fd >= 0;
  } else {
    /* Nothing usable under our lease: clear whatever is there, the sandbox makes a fresh one. */
    destroy_entry(nl, path, veth);
  }
  if (nl >= 0) close(nl);
  return 0;
}

bool net_pooled(void) { return pool_ns_fd >= 0; }

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
  struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ETH0_INDEX };
  nl_put_raw(&m, &peer_ifi, sizeof peer_ifi);
  nl_put_str(&m, IFLA_IFNAME, "eth0");
  nl_put_u32(&m, IFLA_NET_NS_FD, (unsigned)nsfd);
  if (s->bridge.mtu) nl_put_u32(&m, IFLA_MTU, (unsigned)s->bridge.mtu);
  nl_nest_end(&m, peer);
  nl_nest_end(&m, data);
  nl_nest_end(&m, info);
  return nl_talk(nl, &m);
}

static int link_up(int nl, int index) {
  struct nl_msg m;
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
  nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
  return nl_talk(nl, &m);
}

/* lo and eth0 up, the address, the default route: through a netlink socket opened inside the namespace. */
static int configure(const struct spec *s, int nl, char *err, size_t errlen) {
  uint32_t addr = net_address(s);
  if (link_up(nl, 1) < 0 || link_up(nl, ETH0_INDEX) < 0) {
    snprintf(err, errlen, "network: bring lo/eth0 up: %s", strerror(errno));
    return -1;
  }
  struct nl_msg m;
  struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)s->bridge.prefix_len, .ifa_index = ETH0_INDEX };
  nl_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
  nl_put(&m, IFA_LOCAL, &addr, 4);
  nl_put(&m, IFA_ADDRESS, &addr, 4);
  if (nl_talk(nl, &m) < 0) {
    snprintf(err, errlen, "network: add address to eth0: %s", strerror(errno));
    return -1;
  }
  struct rtmsg rt = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
                      .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
  nl_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
  nl_put(&m, RTA_GATEWAY, &s->bridge.gateway, 4);
  nl_put_u32(&m, RTA_OIF, ETH0_INDEX);
  if (nl_talk(nl, &m) < 0) {
    snprintf(err, errlen, "network: default route: %s", strerror(errno));
    return -1;
  }
  return 0;
}

/* A netlink socket that works in the namespace nsfd (sockets stay with the namespace they were made in). */
static int nl_open_in(int nsfd) {
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -1;
  int nl = -1;
  if (setns(nsfd, CLONE_NEWNET) == 0) {
    nl = nl_open();
    int e = errno;
    if (setns(self, CLONE_NEWNET) < 0) {
      /* Stuck in the container's namespace: cleaning up on the host would go wrong. */
      fprintf(stderr, "kiln-sandbox: cannot return to the host network namespace: %s\n", strerror(errno));
      _exit(EXIT_SETUP);
    }
    errno = e;
  }
  close(self);
  return nl;
}

int net_attach(const struct spec *s, pid_t child, char *err, size_t errlen) {
  if (net_pooled()) return 0;
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
    if (nl >= 0) close(nl);
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
  if (r < 0) {
    close(nsfd);
    snprintf(err, errlen, "network: cannot create veth %s on bridge %s: %s", host, s->bridge.name, strerror(e));
    return -1;
  }
  int inner = nl_open_in(nsfd);
  if (inner < 0) {
    close(nsfd);
    snprintf(err, errlen, "network: netlink socket in the sandbox's namespace: %s", strerror(errno));
    return -1;
  }
  r = configure(s, inner, err, errlen);
  close(inner);
  close(nsfd);
  if (r < 0) return -1;
  if (!s->privileged && s->bridge.pool_idle_seconds > 0) {
    /* Fully set up: keep it for the next RUN. */
    char entry[PATH_MAX];
    pool_path(s, lease_index, entry, sizeof entry);
    int f = open(entry, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (f >= 0) {
      close(f);
      if (mount(path, entry, NULL, MS_BIND, NULL) == 0) persisted = true;
      else unlink(entry);
    }
  }
  return 0;
}

void net_release(const struct spec *s) {
  if (lease_index < 0) return;
  char host[32], entry[PATH_MAX];
  veth_name(s, lease_index, host, sizeof host);
  pool_path(s, lease_index, entry, sizeof entry);
  if (persisted) {
    char used[PATH_MAX + 8];
    snprintf(used, sizeof used, "%s.used", entry);
    int f = open(used, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (f >= 0) {
      futimens(f, NULL);
      close(f);
    }
  } else {
    int nl = nl_open();
    if (nl >= 0) {
      link_delete(nl, host); /* usually already gone with the namespace: ENODEV is fine */
      close(nl);
    }
  }
  lock_byte(lease_fd, lease_index, F_UNLCK);
  lease_index = -1;
}

int net_reset(const struct spec *s, char *err, size_t errlen) {
  if (open_leases(s, err, errlen) < 0) return -1;
  int nl = nl_open();
  sweep(s, nl, -1);
  if (nl >= 0) close(nl);
  return 0;
}

void net_child_setup(const struct spec *s) {
  if (s->network == NET_HOST) return;
  if (s->network == NET_BRIDGE) {
    /* Configured by the helper, or a pooled namespace to enter. */
    if (pool_ns_fd >= 0 && setns(pool_ns_fd, CLONE_NEWNET) < 0)
      child_fail(EXIT_SETUP, "network: enter the pooled network namespace: %s", strerror(errno));
    return;
  }
  int nl = nl_open();
  if (nl < 0) child_fail(EXIT_SETUP, "network: netlink socket: %s", strerror(errno));
  if (link_up(nl, 1) < 0) child_fail(EXIT_SETUP, "network: bring lo up: %s", strerror(errno));
  close(nl);
}
