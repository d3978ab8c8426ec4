/* Tries what Docker's default security profile refuses or allows and prints one line per probe:
 * "<name> ok" or "<name> <ERRNO-NAME>". Built statically by the security tests and copied into images. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/if_ether.h>

static void report(const char *name, long r) {
  if (r >= 0) printf("%s ok\n", name);
  else printf("%s %s\n", name, strerrorname_np(errno));
}

int main(void) {
  report("unshare-mount-ns", unshare(CLONE_NEWNS));
  report("mount-tmpfs", mount("none", "/mnt", "tmpfs", 0, NULL));
  report("keyctl-join", syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0L));
  report("add-key", syscall(SYS_add_key, "user", "kiln-probe", "x", 1L, -3L /* session keyring */));
  report("raw-icmp-socket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  report("packet-socket", socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  report("clock-settime", clock_settime(CLOCK_REALTIME, &ts));
  report("sethostname", sethostname("probe", 5));
  report("chroot", chroot("/"));
  report("swapon", syscall(SYS_swapon, "/nonexistent", 0));
  /* Last: a new user namespace takes the capabilities the probes above need. */
  report("unshare-user-ns", unshare(CLONE_NEWUSER));
  return 0;
}
