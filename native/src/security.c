#define _GNU_SOURCE
#include "security.h"
#include "fail.h"
#include "userns.h"
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int docker_default_caps[] = {
  CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW, CAP_SETGID,
  CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

static int last_cap(void) {
  int last = CAP_LAST_CAP;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    fclose(f);
  }
  return last;
}

static bool in_default_set(int cap) {
  for (size_t i = 0; i < sizeof docker_default_caps / sizeof docker_default_caps[0]; i++)
    if (docker_default_caps[i] == cap) return true;
  return false;
}

void security_switch_user(const struct spec *s) {
  int last = last_cap();
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) child_fail(EXIT_SETUP, "capget: %s", strerror(errno));
  /* "All capabilities" means all the helper has: it may itself run with a reduced set. */
  unsigned long long have = data[0].permitted | ((unsigned long long)data[1].permitted << 32);
  unsigned long long keep = 0;
  for (int cap = 0; cap <= last; cap++)
    if (s->privileged || in_default_set(cap)) keep |= 1ULL << cap;
  keep &= have;
  for (int cap = 0; cap <= last; cap++)
    if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      child_fail(EXIT_SETUP, "drop capability %d from the bounding set: %s", cap, strerror(errno));

  /* Keep permitted caps across setuid so capset below can set the exact sets. */
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) child_fail(EXIT_SETUP, "PR_SET_KEEPCAPS: %s", strerror(errno));
  if (setgroups(s->n_additional_gids, s->additional_gids) < 0) {
    /* A rootless namespace that maps only the user's own ids has setgroups denied: the caller's
     * supplementary groups (unmapped, shown as nogroup) stay, which is all it can be. Asking for no group
     * beyond the primary gid is then not an error. */
    bool only_primary = true;
    for (size_t i = 0; i < s->n_additional_gids; i++)
      if (s->additional_gids[i] != s->gid) only_primary = false;
    if (!(errno == EPERM && in_user_namespace() && only_primary))
      child_fail(EXIT_SETUP, "setgroups: %s%s", strerror(errno),
                 errno == EPERM && in_user_namespace() ? " (rootless mode without a subordinate gid range cannot set supplementary groups)" : "");
  }
  if (setresgid(s->gid, s->gid, s->gid) < 0) child_fail(EXIT_SETUP, "setgid %u: %s", s->gid, strerror(errno));
  if (setresuid(s->uid, s->uid, s->uid) < 0) child_fail(EXIT_SETUP, "setuid %u: %s", s->uid, strerror(errno));

  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    data[i].effective = data[i].permitted = (unsigned)(keep >> (32 * i));
    data[i].inheritable = 0; /* Docker >= 20.10.14 leaves inheritable empty (CVE-2022-24769). */
  }
  if (syscall(SYS_capset, &hdr, data) < 0) child_fail(EXIT_SETUP, "capset: %s", strerror(errno));
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

/* Syscalls Docker's default profile refuses to a container without extra capabilities. */
static const char *const denied[] = {
  "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
  "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
  "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
  "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at",
  "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "query_module", "quotactl",
  "quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapoff", "swapon",
  "_sysctl", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
  "lsm_set_self_attr",
};

/* personality() values Docker allows: the default, UNAME26 and their 0x20000 variants, and the query. */
static const unsigned long allowed_personalities[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };

void security_confine(const struct spec *s) {
  if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(EXIT_SETUP, "no_new_privs: %s", strerror(errno));
  if (s->privileged) return;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) child_fail(EXIT_SETUP, "seccomp_init failed");
  /* libseccomp sets no_new_privs when loading unless told not to; the filter is loaded with CAP_SYS_ADMIN. */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, s->no_new_privs ? 1 : 0);
  for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++) {
    int nr = seccomp_syscall_resolve_name(denied[i]);
    if (nr == __NR_SCMP_ERROR) continue; /* not a syscall on this architecture */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  /* personality: refuse everything but the allowed values (no "not equal to any of" operator, so
   * compare the whole argument with each allowed value via ranges between them). */
  int personality_nr = seccomp_syscall_resolve_name("personality");
  unsigned long lo = 0;
  for (size_t i = 0; i < sizeof allowed_personalities / sizeof allowed_personalities[0] && rc == 0; i++) {
    unsigned long v = allowed_personalities[i];
    if (v > lo) /* deny [lo, v) */
      for (unsigned long a = lo; a < v && rc == 0;) {
        /* one rule per power-of-two aligned block keeps the filter small */
        unsigned long size = 1;
        while ((a & (size * 2 - 1)) == 0 && a + size * 2 <= v) size *= 2;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), personality_nr, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ~(size - 1) & 0xffffffffUL, a));
        a += size;
      }
    lo = v + 1;
  }
  /* New namespaces need CAP_SYS_ADMIN in Docker; clone with a CLONE_NEW* flag is refused. clone3 passes its
   * flags in memory a filter cannot read, so it reports ENOSYS and libc falls back to clone. */
  static const unsigned long ns_flags[] = { CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                             CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME };
  for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) child_fail(EXIT_SETUP, "seccomp filter: %s", strerror(-rc));
}
