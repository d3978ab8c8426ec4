// exec ops (RUN): the command runs in kiln's sandbox over the rootfs input's layers; the sandbox's
// upperdir becomes the new top layer. Extra mounts: bind (another state or the context, read-only by
// default), cache (a persistent dir by id), tmpfs, secret (a file from the build's secrets).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { ExecOp, ExecMount } from '../graph/ops.js';
import { canonicalJSON } from '../graph/canonical.js';
import type { CacheMapDep, OpContext, OpImpl } from '../op.js';
import { SolveError } from '../op.js';
import { layersOf, type Ref } from '../refs.js';
import { runSandbox, type SandboxMount, type SandboxSpec } from '../../native/sandbox.js';
import { emulatorFor } from '../../native/binfmt.js';
import { registerEmulator } from '../../native/binfmt-setup.js';
import { resolveImageUser } from '../../native/user.js';
import { resolveInRoot } from '../../native/in-root.js';
import { cacheMountDir } from './cache-mounts.js';
import { selectionsContentDigest } from './file-op/index.js';
import { relayAgent } from './ssh-forward.js';
import { maskExcluded } from './context-mask.js';
import { proxyVariables } from './proxy-env.js';
import { hostsFile, resolvConf } from '../../native/network/etc-files.js';
import type { CacheMountSeeder } from '../../cache/remote/mount-seed.js';

/**
 * What the build gives every RUN besides the op itself: the caller's secrets, ssh agents, network and
 * resource settings. Handed to this op only (through the op registry, see ops/index.ts), never to the
 * other ops, and never part of a key: like BuildKit, a different secret value, DNS server or limit gives
 * the same cache key (what does key a RUN is on the op: its network mode, mounts, proxy-free env).
 */
export interface RunSettings {
  /** RUN --mount=type=secret: id → content. */
  secrets?: Record<string, Buffer>;
  /** What RUN's `default` network means in this build (`kiln build --network`): kiln's bridge unless none or host. */
  defaultNetwork?: 'none' | 'host' | 'bridge';
  /** --add-host entries for RUN's /etc/hosts. */
  extraHosts?: { host: string; ip: string }[];
  /** --dns: resolv.conf for RUN instead of the host's. */
  dns?: { nameservers?: string[]; search?: string[]; options?: string[] };
  /** RUN --mount=type=ssh: id → the SSH agent socket to forward (--ssh ID=SOCKET). */
  ssh?: Record<string, string>;
  /** Resource limits for each RUN (and, with `buildCgroup`, for all RUNs of the build together). */
  runLimits?: { memoryBytes?: number; pids?: number; cpuShares?: number; cpuQuotaUs?: number; cpuPeriodUs?: number };
  /** A cgroup all RUNs of this build share, with the build's limits (made and removed by the sandbox helper). */
  buildCgroup?: { name: string; limits?: RunSettings['runLimits'] };
  /**
   * Where cache mounts of steps run without the cache (--no-cache, --no-cache-filter) live: a dir of this
   * build only, removed after it, so they start empty (as in BuildKit) and are shared by this build's RUNs.
   */
  uncachedMountsRoot?: string;
  /** Fills an empty RUN cache mount from the caches imported with --cache-from (cache/remote/mount-seed.ts). */
  cacheMountSeeder?: CacheMountSeeder;
}

/** BuildKit's hostname for RUN containers; some build scripts look at it. */
const SANDBOX_HOSTNAME = 'buildkitsandbox';

/**
 * How input `i` enters a RUN's key. The rootfs by its key; an input only mounted (bind, cache seed,
 * heredoc script) by the content of exactly the paths its mounts expose, and not by its key (BuildKit's
 * content checksum per mount selector): the RUN re-runs when the mounted files change, and only then.
 */
function mountDep(op: ExecOp, i: number, ctx: OpContext): CacheMapDep {
  const uses = op.mounts.filter((m) => m.input === i);
  const selector = uses[0]?.selector;
  if (uses.length === 0 || uses.some((m) => m.dest === '/')) return { selector };
  const paths = [...new Set(uses.map((m) => m.selector ?? '/'))].sort();
  // A mount source resolves like the mount does: a symlink named as the source is followed (in the root).
  const sels = paths.map((path) => ({ path, followSymlink: true }));
  return { selector: paths.join('\0'), contentOnly: true, contentDigest: (ref) => selectionsContentDigest(ctx, i, ref, sels) };
}

/** The exec op of one build, with that build's run settings. */
export const execOpWith = (run: RunSettings): OpImpl<ExecOp> => ({
  async cacheMap(op, ctx) {
    // Everything that can change what the command does, minus the inputs (the solver adds their keys).
    // Proxy settings are left out (BuildKit's ProxyEnv): a different proxy gives the same result.
    const { proxyEnv: _proxy, ...keyed } = op;
    const mounts = op.mounts.map((m) => ({ ...m, secret: m.secret ? { ...m.secret } : undefined }));
    const body = canonicalJSON({ exec: { ...keyed, mounts }, platform: ctx.vertex.platform ?? null });
    return {
      digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      deps: ctx.vertex.inputs.map((_, i) => mountDep(op, i, ctx)),
    };
  },

  async exec(op, inputs, ctx) {
    const root = op.mounts.find((m) => m.dest === '/');
    if (!root) throw new Error('exec op without a rootfs mount');
    const rootLayers = root.input >= 0 ? layersOf(inputs[root.input]!, 'RUN rootfs') : [];
    const platform = ctx.vertex.platform ?? ctx.env.hostPlatform;
    let emu = emulatorFor(platform);
    if (!emu.runnable && process.getuid?.() === 0) {
      // As root, register Debian's qemu-user-static for this platform (what `kiln setup binfmt` does).
      try {
        const name = registerEmulator(platform);
        if (name) ctx.progress.log('stderr', `registered binfmt_misc handler ${name} for ${platform.os}/${platform.architecture}\n`);
      } catch (err) {
        throw new SolveError(`${emu.reason}; ${(err as Error).message}`);
      }
      emu = emulatorFor(platform);
    }
    if (!emu.runnable) throw new SolveError(emu.reason);

    const snapshots = ctx.env.state.snapshots;
    const layer = snapshots.newLayer();
    // With resultMount, what the command writes to that mount (scratch, bound writable) is the result.
    const resultMount = op.resultMount !== undefined ? op.mounts.find((m) => m.dest === op.resultMount && m.type === 'bind' && m.input < 0 && !m.readonly) : undefined;
    if (op.resultMount !== undefined && !resultMount) {
      layer.discard();
      throw new Error(`exec op: result mount ${op.resultMount} is not a writable bind mount of scratch`);
    }
    const out = resultMount ? snapshots.newLayer() : undefined;
    const scratchDir = mkdtempSync(join(tmpdir(), 'kiln-exec-'));
    const releases: (() => void | Promise<void>)[] = [];
    try {
      // overlay needs at least one lowerdir: an empty one stands for scratch.
      const lowerdirs = rootLayers.map((l) => l.dir).reverse();
      if (lowerdirs.length === 0) {
        const empty = join(scratchDir, 'empty');
        mkdirSync(empty);
        lowerdirs.push(empty);
      }
      let user;
      try {
        user = resolveImageUser(op.user || '0', lowerdirs);
      } catch (err) {
        throw new SolveError((err as Error).message);
      }
      const env = [...op.env];
      // As runc does for BuildKit: HOME is the user's home from the image's /etc/passwd ("/" without an
      // entry) unless ENV set it.
      if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
      // Proxy settings reach the process but, as in BuildKit, not the image config.
      env.push(...proxyVariables(op.proxyEnv, env));
      const network = op.network === 'default' ? run.defaultNetwork ?? 'bridge' : op.network;
      const hostname = op.hostname ?? SANDBOX_HOSTNAME;
      // /etc/hosts and /etc/resolv.conf are the build's, mounted over the image's (never in the layer),
      // unless the RUN mounts something of its own there.
      const mounts: SandboxMount[] = [];
      const etcFiles: [string, string][] = [
        ['/etc/hosts', hostsFile(hostname, run.extraHosts)],
        ['/etc/resolv.conf', resolvConf(network, run.dns)],
      ];
      for (const [target, content] of etcFiles) {
        if (op.mounts.some((m) => m.dest === target || m.dest === '/etc')) continue;
        const file = join(scratchDir, target.slice('/etc/'.length));
        writeFileSync(file, content, { mode: 0o644 });
        mounts.push({ type: 'bind', source: file, target });
      }
      for (const m of op.mounts) {
        if (m.dest === '/') continue;
        if (m === resultMount) {
          mounts.push({ type: 'bind', source: out!.dir, target: m.dest });
          continue;
        }
        const mount = await mountFor(m, inputs, ctx, run, scratchDir, releases, env);
        if (mount) mounts.push(mount);
      }
      // As in BuildKit, the first ssh mount is the default agent for the process.
      const sshMount = op.mounts.find((m) => m.type === 'ssh' && mounts.some((x) => x.target === m.dest));
      if (sshMount && !env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${sshMount.dest}`);
      const spec: SandboxSpec = {
        rootfs: { lowerdirs, upperdir: layer.dir, workdir: layer.workdir },
        args: op.args,
        env,
        cwd: op.cwd || '/',
        user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
        hostname,
        network,
        mounts,
        privileged: op.security === 'insecure',
      };
      if (run.runLimits && Object.keys(run.runLimits).length) spec.limits = run.runLimits;
      if (run.buildCgroup) spec.buildCgroup = run.buildCgroup;
      const result = await runSandbox(spec, {
        stdio: 'pipe',
        onOutput: (stream, chunk) => ctx.progress.log(stream, chunk),
        signal: ctx.signal,
      });
      const valid = op.validExitCodes ?? [0];
      if (!valid.includes(result.exitCode)) {
        const why = result.oomKilled ? ' (out of memory)' : '';
        throw new SolveError(`process "${op.args.join(' ')}" did not complete successfully: exit code: ${result.exitCode}${why}`);
      }
      if (out) {
        layer.discard();
        return { kind: 'layers', layers: [{ dir: out.commit(), id: out.id, created: new Date().toISOString() }] } satisfies Ref;
      }
      const dir = layer.commit();
      return { kind: 'layers', layers: [...rootLayers, { dir, id: layer.id, created: new Date().toISOString() }] } satisfies Ref;
    } catch (err) {
      layer.discard();
      out?.discard();
      throw err;
    } finally {
      for (const release of releases) await release();
      rmSync(scratchDir, { recursive: true, force: true });
    }
  },
});

async function mountFor(m: ExecMount, inputs: Ref[], ctx: OpContext, run: RunSettings, scratchDir: string, releases: (() => void | Promise<void>)[], env: string[]): Promise<SandboxMount | undefined> {
  switch (m.type) {
    case 'tmpfs':
      return { type: 'tmpfs', target: m.dest, sizeBytes: m.tmpfs?.size };
    case 'cache': {
      // The input (if any) is a dir made with the mount's uid/gid/mode: a new cache dir takes its owner and mode.
      const template = m.input >= 0 ? inputs[m.input] : undefined;
      // The source path resolves inside that layer: a symlink in it cannot make kiln copy a host dir's owner.
      const seed = template?.kind === 'layers' && template.layers.length ? resolveInRoot(template.layers.at(-1)!.dir, m.selector ?? '/') : undefined;
      // A step run without the cache (--no-cache) starts from an empty cache dir of this build.
      const root = ctx.vertex.meta.ignoreCache && run.uncachedMountsRoot ? run.uncachedMountsRoot : ctx.env.state.root;
      // An empty cache dir is filled from --cache-from first (not the per-build dirs of --no-cache steps).
      const seeder = root === ctx.env.state.root ? run.cacheMountSeeder : undefined;
      const { dir, release } = await cacheMountDir(root, m.cache!.id, m.cache!.sharing, ctx.signal, seed, seeder);
      releases.push(release);
      return { type: 'bind', source: dir, target: m.dest, readonly: m.readonly };
    }
    case 'secret': {
      const s = m.secret!;
      const value = run.secrets?.[s.id];
      if (value === undefined) {
        if (s.optional) return m.dest ? { type: 'tmpfs', target: posix.dirname(m.dest), sizeBytes: 1 << 20 } : undefined;
        throw new SolveError(`secret ${s.id}: not found (pass it with --secret id=${s.id},src=FILE)`);
      }
      if (s.env) env.push(`${s.env}=${value.toString('utf8')}`);
      if (!m.dest) return undefined; // exposed as an environment variable only
      // In memory (tmpfs), never on disk, where the machine has /dev/shm.
      const dir = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/kiln-secret-') : scratchDir;
      if (dir !== scratchDir) releases.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, `secret-${createHash('sha256').update(s.id).digest('hex').slice(0, 16)}`);
      writeFileSync(file, value, { mode: s.mode & 0o777 });
      chownSync(file, s.uid, s.gid);
      return { type: 'bind', source: file, target: m.dest, readonly: true };
    }
    case 'bind': {
      const input = m.input >= 0 ? inputs[m.input]! : undefined;
      const selector = (m.selector ?? '/').replace(/^\/+/, '');
      if (!input) {
        const empty = join(scratchDir, `scratch-${releases.length}`);
        mkdirSync(empty);
        return { type: 'bind', source: empty, target: m.dest, readonly: m.readonly };
      }
      // `rw` makes the mount writable, but as in BuildKit the writes are thrown away: the context and the
      // cached layers underneath are never touched (an overlay with a throwaway upper).
      if (input.kind === 'dir') {
        // The selector resolves inside the context (the helper opens it with RESOLVE_IN_ROOT): a symlink
        // there such as `hostroot -> /` names the context's own root, never the host's.
        if (input.excludes.length > 0) {
          // .dockerignore'd files are not part of the context: a whiteout layer hides them.
          const mask = join(scratchDir, `mask-${releases.length}-${m.dest.replace(/\W/g, '_')}`);
          mkdirSync(mask);
          await maskExcluded(input.path, input.excludes, mask);
          return { type: 'overlay', lowerdirs: [mask, input.path], subpath: selector, target: m.dest, readonly: m.readonly };
        }
        if (m.readonly) return { type: 'bind', root: input.path, source: `/${selector}`, target: m.dest, readonly: true };
        return { type: 'overlay', lowerdirs: [input.path], subpath: selector, target: m.dest, readonly: false };
      }
      if (input.layers.length === 0) {
        const empty = join(scratchDir, `scratch-${releases.length}`);
        mkdirSync(empty);
        return { type: 'bind', source: empty, target: m.dest, readonly: m.readonly };
      }
      // One read-only layer has nothing below it to merge with: bind it directly.
      if (input.layers.length === 1 && m.readonly) return { type: 'bind', root: input.layers[0]!.dir, source: `/${selector}`, target: m.dest, readonly: true };
      return { type: 'overlay', lowerdirs: input.layers.map((l) => l.dir).reverse(), subpath: selector, target: m.dest, readonly: m.readonly };
    }
    case 'ssh': {
      const o = m.ssh!;
      const agent = run.ssh?.[o.id];
      if (agent === undefined) {
        if (o.optional) return undefined;
        throw new SolveError(`unset ssh forward key ${o.id}: no SSH agent or key given (pass it with --ssh ${o.id}=$SSH_AUTH_SOCK or --ssh ${o.id}=KEYFILE)`);
      }
      const relay = await relayAgent(agent, join(scratchDir, `ssh-${releases.length}.sock`), o);
      releases.push(() => relay.close());
      return { type: 'bind', source: relay.path, target: m.dest };
    }
  }
}
