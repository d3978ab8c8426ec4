/* The run spec the helper reads (mirrors SandboxSpec in native/sandbox.ts). */
#ifndef KILN_SPEC_H
#define KILN_SPEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum mount_kind { MOUNT_BIND, MOUNT_TMPFS, MOUNT_OVERLAY };
enum net_mode { NET_NONE, NET_HOST, NET_BRIDGE };

/* network "bridge": where the container's veth goes and how its address is chosen. */
struct spec_bridge {
  char *name;            /* the bridge (made by native/network/bridge.ts) */
  uint32_t gateway;      /* the bridge's address, network byte order; also the default route */
  int prefix_len;
  char *lease_file;      /* byte n locked = address gateway-subnet + 2 + n in use */
  long pool_size;        /* leases 0 .. pool_size-1 */
  char *veth_prefix;     /* host end: <prefix><n> */
  long mtu;              /* 0 = kernel default */
  long pool_idle_seconds; /* keep set-up namespaces this long for reuse; 0 = no pool */
};

struct spec_mount {
  enum mount_kind kind;
  char *source;          /* bind: host path, or with root: a path inside root */
  char *root;            /* bind: the tree source resolves in (symlinks cannot leave it); NULL = host path */
  char **lowerdirs;      /* overlay: layer dirs, topmost first */
  size_t n_lowerdirs;
  char *subpath;         /* overlay: the directory (or file) inside the merged layers to mount; NULL = root */
  char *target;          /* absolute path inside the container */
  bool readonly;
  long long size_bytes;  /* tmpfs: 0 = kernel default */
  long mode;             /* tmpfs: -1 = default (1777) */
};

struct spec {
  char **lowerdirs; size_t n_lowerdirs;   /* topmost first */
  char *upperdir, *workdir;               /* both or neither */
  bool rootfs_readonly;
  char **args; size_t n_args;
  char **env; size_t n_env;
  char *cwd;
  uid_t uid; gid_t gid;
  gid_t *additional_gids; size_t n_additional_gids;
  char *hostname;
  enum net_mode network;
  struct spec_bridge bridge;
  struct spec_mount *mounts; size_t n_mounts;
  long long memory_bytes;                 /* 0 = no limit */
  long long pids;                         /* 0 = no limit */
  long long cpu_shares, cpu_quota_us, cpu_period_us;
  /* buildCgroup: a cgroup shared by all sandboxes of one build (created on first use, under the helper's
   * own cgroup), with the build's limits; this sandbox's cgroup goes inside it. NULL name = none. */
  char *build_cgroup;
  long long build_memory_bytes, build_pids, build_cpu_shares, build_cpu_quota_us, build_cpu_period_us;
  bool tty;
  bool privileged;
  /* "init": pid 1 is a tiny init (the helper's own code) that runs the command as its child, passes
   * signals on and reaps orphans, like docker run --init. */
  bool init;
  /* "noNewPrivileges": set no_new_privs (docker --security-opt no-new-privileges); off by default, as in
   * docker run and BuildKit's RUN, so setuid binaries (sudo, su) work for non-root users. */
  bool no_new_privs;
  /* "signalProxy": the parent passes its signals on as bytes on fd 3 (kiln run); the helper then ignores
   * INT, TERM, HUP, QUIT, USR1 and USR2 that reach it as signals (a process-group signal's copy). */
  bool signal_proxy;
  /* Not from the JSON: set by the helper when no devices cgroup confines the sandbox (a host without the
   * v1 devices controller). Then every filesystem the container can write or read device nodes from is
   * mounted nodev, and /dev holds bind mounts of the host's allowed nodes on a nodev tmpfs. */
  bool devices_nodev;
};

/* Fills s from JSON text. Returns 0, or -1 with a one-line message in err. */
int spec_parse(const char *text, struct spec *s, char *err, size_t errlen);
#endif
