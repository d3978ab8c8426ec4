#include "spec.h"
#include "json.h"
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int get_string(const struct json *o, const char *key, bool required, char **out, char *err, size_t errlen) {
  const struct json *v = json_get(o, key);
  if (!v || v->type == JSON_NULL) {
    if (required) FAIL("run spec: missing \"%s\"", key);
    return 0;
  }
  if (v->type != JSON_STRING) FAIL("run spec: \"%s\" must be a string", key);
  *out = v->string;
  return 0;
}

static int get_bool(const struct json *o, const char *key, bool *out, char *err, size_t errlen) {
  const struct json *v = json_get(o, key);
  if (!v || v->type == JSON_NULL) return 0;
  if (v->type != JSON_BOOL) FAIL("run spec: \"%s\" must be a boolean", key);
  *out = v->boolean;
  return 0;
}

static int get_int(const struct json *o, const char *key, long long min, long long max, long long *out, char *err,
                   size_t errlen) {
  const struct json *v = json_get(o, key);
  if (!v || v->type == JSON_NULL) return 0;
  if (v->type != JSON_NUMBER || v->number != floor(v->number) || v->number < (double)min || v->number > (double)max)
    FAIL("run spec: \"%s\" must be an integer between %lld and %lld", key, min, max);
  *out = (long long)v->number;
  return 0;
}

static int get_strings(const struct json *o, const char *key, bool required, char ***out, size_t *n, char *err,
                       size_t errlen) {
  const struct json *v = json_get(o, key);
  if (!v || v->type == JSON_NULL) {
    if (required) FAIL("run spec: missing \"%s\"", key);
    return 0;
  }
  if (v->type != JSON_ARRAY) FAIL("run spec: \"%s\" must be an array of strings", key);
  *out = calloc(v->len + 1, sizeof **out);
  for (size_t i = 0; i < v->len; i++) {
    if (v->items[i]->type != JSON_STRING) FAIL("run spec: \"%s\" must be an array of strings", key);
    (*out)[i] = v->items[i]->string;
  }
  *n = v->len;
  return 0;
}

static int parse_mount(const struct json *m, struct spec_mount *out, char *err, size_t errlen) {
  char *type = NULL;
  if (!m || m->type != JSON_OBJECT) FAIL("run spec: each of \"mounts\" must be an object");
  if (get_string(m, "type", true, &type, err, errlen) || get_string(m, "target", true, &out->target, err, errlen) ||
      get_bool(m, "readonly", &out->readonly, err, errlen))
    return -1;
  if (out->target[0] != '/') FAIL("run spec: mount target \"%s\" must be an absolute path", out->target);
  out->mode = -1;
  if (!strcmp(type, "bind")) {
    out->kind = MOUNT_BIND;
    if (get_string(m, "source", true, &out->source, err, errlen) || get_string(m, "root", false, &out->root, err, errlen))
      return -1;
    if (out->root && out->root[0] != '/') FAIL("run spec: bind mount root \"%s\" must be an absolute path", out->root);
    if (!out->root && out->source[0] != '/') FAIL("run spec: bind mount source \"%s\" must be an absolute path", out->source);
  } else if (!strcmp(type, "tmpfs")) {
    long long mode = -1;
    out->kind = MOUNT_TMPFS;
    if (get_int(m, "sizeBytes", 0, 1LL << 50, &out->size_bytes, err, errlen) ||
        get_int(m, "mode", 0, 07777, &mode, err, errlen))
      return -1;
    out->mode = (long)mode;
  } else if (!strcmp(type, "overlay")) {
    out->kind = MOUNT_OVERLAY;
    if (get_strings(m, "lowerdirs", true, &out->lowerdirs, &out->n_lowerdirs, err, errlen) ||
        get_string(m, "subpath", false, &out->subpath, err, errlen))
      return -1;
    if (out->n_lowerdirs == 0) FAIL("run spec: overlay mount on %s needs at least one lowerdir", out->target);
    for (size_t i = 0; i < out->n_lowerdirs; i++)
      if (out->lowerdirs[i][0] != '/') FAIL("run spec: lowerdir \"%s\" must be an absolute path", out->lowerdirs[i]);
  } else {
    FAIL("run spec: mount type \"%s\" for %s is not supported (use \"bind\", \"tmpfs\" or \"overlay\")", type, out->target);
  }
  return 0;
}

static int parse_bridge(const struct json *b, struct spec_bridge *out, char *err, size_t errlen) {
  if (!b || b->type != JSON_OBJECT) FAIL("run spec: network \"bridge\" needs a \"bridge\" object");
  char *gateway = NULL;
  long long prefix = 0, pool = 0, mtu = 0, idle = 300;
  out->veth_prefix = "kilnv";
  if (get_string(b, "name", true, &out->name, err, errlen) || get_string(b, "gateway", true, &gateway, err, errlen) ||
      get_string(b, "leaseFile", true, &out->lease_file, err, errlen) ||
      get_string(b, "vethPrefix", false, &out->veth_prefix, err, errlen) ||
      get_int(b, "prefixLen", 8, 30, &prefix, err, errlen) || get_int(b, "poolSize", 1, 1 << 22, &pool, err, errlen) ||
      get_int(b, "mtu", 0, 65535, &mtu, err, errlen) || get_int(b, "poolIdleSeconds", 0, 1 << 30, &idle, err, errlen))
    return -1;
  if (strlen(out->name) >= 16) FAIL("run spec: bridge name \"%s\" is longer than 15 bytes", out->name);
  if (strlen(out->veth_prefix) > 8) FAIL("run spec: vethPrefix \"%s\" is longer than 8 bytes", out->veth_prefix);
  if (inet_pton(AF_INET, gateway, &out->gateway) != 1) FAIL("run spec: bridge gateway \"%s\" is not an IPv4 address", gateway);
  if (!prefix) FAIL("run spec: bridge needs \"prefixLen\"");
  if (!pool) FAIL("run spec: bridge needs \"poolSize\"");
  if (pool + 2 > (1LL << (32 - prefix))) FAIL("run spec: poolSize %lld does not fit a /%lld subnet", pool, prefix);
  out->prefix_len = (int)prefix;
  out->pool_size = (long)pool;
  out->mtu = (long)mtu;
  out->pool_idle_seconds = (long)idle;
  return 0;
}

int spec_parse(const char *text, struct spec *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  struct json *root = json_parse(text, err, errlen);
  if (!root) return -1;
  if (root->type != JSON_OBJECT) FAIL("run spec: expected a JSON object");

  const struct json *rootfs = json_get(root, "rootfs");
  if (!rootfs || rootfs->type != JSON_OBJECT) FAIL("run spec: missing \"rootfs\" object");
  if (get_strings(rootfs, "lowerdirs", true, &s->lowerdirs, &s->n_lowerdirs, err, errlen) ||
      get_string(rootfs, "upperdir", false, &s->upperdir, err, errlen) ||
      get_string(rootfs, "workdir", false, &s->workdir, err, errlen) ||
      get_bool(rootfs, "readonly", &s->rootfs_readonly, err, errlen))
    return -1;
  if (s->n_lowerdirs == 0) FAIL("run spec: \"rootfs.lowerdirs\" needs at least one directory");
  for (size_t i = 0; i < s->n_lowerdirs; i++)
    if (s->lowerdirs[i][0] != '/') FAIL("run spec: lowerdir \"%s\" must be an absolute path", s->lowerdirs[i]);
  if (!s->upperdir != !s->workdir) FAIL("run spec: \"rootfs.upperdir\" and \"rootfs.workdir\" go together");
  if (s->upperdir && (s->upperdir[0] != '/' || s->workdir[0] != '/'))
    FAIL("run spec: upperdir and workdir must be absolute paths");
  if (s->upperdir && s->rootfs_readonly) FAIL("run spec: a read-only rootfs cannot have an upperdir");

  if (get_strings(root, "args", true, &s->args, &s->n_args, err, errlen) ||
      get_strings(root, "env", false, &s->env, &s->n_env, err, errlen))
    return -1;
  if (s->n_args == 0 || !s->args[0][0]) FAIL("run spec: \"args\" must name a command");
  if (!s->env) s->env = calloc(1, sizeof *s->env);
  s->cwd = "/";
  if (get_string(root, "cwd", false, &s->cwd, err, errlen)) return -1;
  if (s->cwd[0] != '/') FAIL("run spec: cwd \"%s\" must be an absolute path", s->cwd);

  const struct json *user = json_get(root, "user");
  if (user && user->type != JSON_NULL) {
    long long uid = 0, gid = 0;
    if (user->type != JSON_OBJECT) FAIL("run spec: \"user\" must be an object");
    if (get_int(user, "uid", 0, 0xfffffffe, &uid, err, errlen) ||
        get_int(user, "gid", 0, 0xfffffffe, &gid, err, errlen))
      return -1;
    s->uid = (uid_t)uid;
    s->gid = (gid_t)gid;
    const struct json *groups = json_get(user, "additionalGids");
    if (groups && groups->type == JSON_ARRAY) {
      s->additional_gids = calloc(groups->len + 1, sizeof *s->additional_gids);
      for (size_t i = 0; i < groups->len; i++) {
        const struct json *g = groups->items[i];
        if (g->type != JSON_NUMBER || g->number < 0 || g->number > 0xfffffffe || g->number != floor(g->number))
          FAIL("run spec: \"user.additionalGids\" must be an array of group ids");
        s->additional_gids[i] = (gid_t)g->number;
      }
      s->n_additional_gids = groups->len;
    }
  }

  char *network = "none";
  if (get_string(root, "hostname", false, &s->hostname, err, errlen) ||
      get_string(root, "network", false, &network, err, errlen) || get_bool(root, "tty", &s->tty, err, errlen) ||
      get_bool(root, "privileged", &s->privileged, err, errlen) || get_bool(root, "init", &s->init, err, errlen) ||
      get_bool(root, "noNewPrivileges", &s->no_new_privs, err, errlen) ||
      get_bool(root, "signalProxy", &s->signal_proxy, err, errlen))
    return -1;
  if (!strcmp(network, "host")) s->network = NET_HOST;
  else if (!strcmp(network, "none")) s->network = NET_NONE;
  else if (!strcmp(network, "bridge")) {
    s->network = NET_BRIDGE;
    if (parse_bridge(json_get(root, "bridge"), &s->bridge, err, errlen)) return -1;
  } else FAIL("run spec: network \"%s\" is not supported (use \"none\", \"host\" or \"bridge\")", network);
  if (s->hostname && strlen(s->hostname) > 64) FAIL("run spec: hostname \"%s\" is longer than 64 bytes", s->hostname);

  const struct json *mounts = json_get(root, "mounts");
  if (mounts && mounts->type != JSON_NULL) {
    if (mounts->type != JSON_ARRAY) FAIL("run spec: \"mounts\" must be an array");
    s->mounts = calloc(mounts->len + 1, sizeof *s->mounts);
    for (size_t i = 0; i < mounts->len; i++)
      if (parse_mount(mounts->items[i], &s->mounts[i], err, errlen)) return -1;
    s->n_mounts = mounts->len;
  }

  const struct json *bcg = json_get(root, "buildCgroup");
  if (bcg && bcg->type != JSON_NULL) {
    if (bcg->type != JSON_OBJECT) FAIL("run spec: \"buildCgroup\" must be an object");
    if (get_string(bcg, "name", true, &s->build_cgroup, err, errlen)) return -1;
    if (!s->build_cgroup[0] || strchr(s->build_cgroup, '/') || s->build_cgroup[0] == '.')
      FAIL("run spec: buildCgroup name \"%s\" must be a plain directory name", s->build_cgroup);
    const struct json *bl = json_get(bcg, "limits");
    if (bl && bl->type == JSON_OBJECT &&
        (get_int(bl, "memoryBytes", 4 << 20, 1LL << 60, &s->build_memory_bytes, err, errlen) ||
         get_int(bl, "pids", 1, 1 << 22, &s->build_pids, err, errlen) ||
         get_int(bl, "cpuShares", 2, 262144, &s->build_cpu_shares, err, errlen) ||
         get_int(bl, "cpuQuotaUs", 1000, 1LL << 40, &s->build_cpu_quota_us, err, errlen) ||
         get_int(bl, "cpuPeriodUs", 1000, 1000000, &s->build_cpu_period_us, err, errlen)))
      return -1;
  }

  const struct json *limits = json_get(root, "limits");
  if (limits && limits->type != JSON_NULL) {
    if (limits->type != JSON_OBJECT) FAIL("run spec: \"limits\" must be an object");
    if (get_int(limits, "memoryBytes", 4 << 20, 1LL << 60, &s->memory_bytes, err, errlen) ||
        get_int(limits, "pids", 1, 1 << 22, &s->pids, err, errlen) ||
        get_int(limits, "cpuShares", 2, 262144, &s->cpu_shares, err, errlen) ||
        get_int(limits, "cpuQuotaUs", 1000, 1LL << 40, &s->cpu_quota_us, err, errlen) ||
        get_int(limits, "cpuPeriodUs", 1000, 1000000, &s->cpu_period_us, err, errlen))
      return -1;
  }
  return 0;
}
