// LLB exec ops → kiln exec ops: the command and its meta, mounts (bind, cache, tmpfs, secret, ssh),
// secret env, network and security mode. What kiln's sandbox cannot honour (extra hosts, ulimits,
// cgroup parents, CDI devices) is refused in one line rather than ignored.
import type { ExecMount, Op } from '../../../solver/graph/ops.js';
import { LlbError } from './decode.js';
import { cleanPath, mountDest } from './paths.js';
import type { PbExecOp } from './wire.js';

const MOUNT_TYPES = ['bind', 'secret', 'ssh', 'cache', 'tmpfs'] as const;
const SHARING = ['shared', 'private', 'locked'] as const;

/** `needs` collects the secret and ssh ids the op needs from the client. */
export function execOp(what: string, e: PbExecOp, nInputs: number, needs: { secrets: Set<string>; ssh: Set<string> }): Op {
  const meta = e.meta;
  if (!meta || meta.args.length === 0) throw new LlbError(`${what}: no command (meta.args is empty)`);
  if (meta.extraHosts.length) throw new LlbError(`${what}: extra hosts are not supported by this builder`);
  if (meta.ulimit.length) throw new LlbError(`${what}: ulimits are not supported by this builder`);
  if (meta.cgroupParent) throw new LlbError(`${what}: cgroupParent is not supported by this builder`);
  if (e.cdiDevices.length) throw new LlbError(`${what}: CDI devices are not supported by this builder`);
  const mounts: ExecMount[] = e.mounts.map((m, i) => {
    const mw = `${what}: mount ${i} (${JSON.stringify(m.dest)})`;
    const type = MOUNT_TYPES[m.mountType];
    if (!type) throw new LlbError(`${mw}: unknown mount type ${m.mountType}`);
    if (!Number.isInteger(m.input) || m.input < -1 || m.input >= nInputs) throw new LlbError(`${mw}: input ${m.input} is not one of the op's ${nInputs} inputs`);
    if (!Number.isInteger(m.output) || m.output < -1) throw new LlbError(`${mw}: invalid output ${m.output}`);
    const dest = mountDest(mw, m.dest);
    // kiln keeps an exec's rootfs as its one result (a reference to another mount's output was refused).
    const mount: ExecMount = { input: m.input, dest, output: dest === '/' ? 0 : -1, type };
    if (m.selector && m.selector !== '/') mount.selector = cleanPath(mw, m.selector);
    if (m.readonly) mount.readonly = true;
    switch (type) {
      case 'cache': {
        const sharing = SHARING[m.cacheOpt?.sharing ?? 0];
        if (!sharing) throw new LlbError(`${mw}: unknown cache sharing ${m.cacheOpt?.sharing}`);
        mount.cache = { id: m.cacheOpt?.ID || mount.dest, sharing };
        break;
      }
      case 'tmpfs':
        mount.tmpfs = m.TmpfsOpt?.size ? { size: m.TmpfsOpt.size } : {};
        break;
      case 'secret': {
        const s = m.secretOpt;
        if (!s?.ID) throw new LlbError(`${mw}: a secret mount without a secret id`);
        needs.secrets.add(s.ID);
        mount.secret = { id: s.ID, uid: s.uid, gid: s.gid, mode: s.mode || 0o400, optional: s.optional };
        break;
      }
      case 'ssh': {
        const s = m.SSHOpt;
        const id = s?.ID || 'default';
        needs.ssh.add(id);
        mount.ssh = { id, uid: s?.uid ?? 0, gid: s?.gid ?? 0, mode: s?.mode || 0o600, optional: s?.optional ?? false };
        break;
      }
    }
    return mount;
  });
  const roots = mounts.filter((m) => m.dest === '/');
  if (roots.length !== 1) throw new LlbError(`${what}: ${roots.length ? 'more than one' : 'no'} rootfs mount (dest "/")`);
  if (roots[0]!.type !== 'bind') throw new LlbError(`${what}: the rootfs mount must be a bind mount, not ${roots[0]!.type}`);
  for (const s of e.secretenv) {
    if (!s.ID || !s.name) throw new LlbError(`${what}: a secret env without an id or a name`);
    needs.secrets.add(s.ID);
    mounts.push({ input: -1, dest: '', output: -1, type: 'secret', secret: { id: s.ID, uid: 0, gid: 0, mode: 0o400, optional: s.optional, env: s.name } });
  }
  const network = e.network === 0 ? 'default' : e.network === 1 ? 'host' : e.network === 2 ? 'none' : undefined;
  if (!network) throw new LlbError(`${what}: unknown network mode ${e.network}`);
  const security = e.security === 0 ? 'sandbox' : e.security === 1 ? 'insecure' : undefined;
  if (!security) throw new LlbError(`${what}: unknown security mode ${e.security}`);
  const proxy = Object.fromEntries(Object.entries(meta.proxy_env ?? {}).filter(([, v]) => v));
  return {
    kind: 'exec',
    args: meta.args,
    env: meta.env,
    cwd: meta.cwd || '/',
    user: meta.user,
    ...(meta.hostname ? { hostname: meta.hostname } : {}),
    mounts,
    network,
    security,
    ...(meta.validExitCodes.length ? { validExitCodes: meta.validExitCodes } : {}),
    ...(Object.keys(proxy).length ? { proxyEnv: proxy } : {}),
  };
}
