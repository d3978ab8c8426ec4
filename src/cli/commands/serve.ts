// `kiln serve`: run the build service (gRPC) on a unix socket or TCP address. See docs/protocol.md.
import { GC_ENV, describePolicy, gcPolicyFromEnv, parseAmount } from '../../../cache/gc-policy.js';
import { existsSync, readFileSync, rmSync, chmodSync, statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { defaultStateRoot } from '../../../cache/state.js';
import { BuildServer, defaultNodeName } from '../../daemon/server.js';
import { loadTokenFile } from '../../daemon/auth.js';
import { isLoopback, parseAddr } from '../../client/address.js';
import { formatBytes, parseDuration } from '../../../base/units.js';
import { join } from 'node:path';
import { startDashboard } from '../../daemon/ui/dashboard.js';
import { serveLimits } from '../../engine/limits.js';

/** `--ui :8080`, `--ui 127.0.0.1:0`, `--ui [::1]:80`. */
function parseUiAddr(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([0-9]{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new FlagError(`invalid value "${text}" for flag --ui: expected [HOST]:PORT`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run a remote builder (gRPC build service)',
  usage: 'kiln serve --addr unix:///path|tcp://host:port [--buildkit-addr ADDR] [OPTIONS]',
  flags: [
    { name: 'addr', type: 'string', valueName: 'ADDR', description: 'Listen address: unix:///path or tcp://host:port (port 0 picks one)' },
    { name: 'buildkit-addr', type: 'string', valueName: 'ADDR', description: "Also serve BuildKit's API here (docker buildx create --driver remote ADDR): unix:///path or tcp://host:port" },
    { name: 'tls-cert', type: 'string', valueName: 'FILE', description: 'Server certificate (PEM)' },
    { name: 'tls-key', type: 'string', valueName: 'FILE', description: 'Server private key (PEM)' },
    { name: 'tls-ca', type: 'string', valueName: 'FILE', description: 'CA for client certificates: clients must present one it signed (mTLS); the subject CN names the tenant' },
    { name: 'token-file', type: 'string', valueName: 'FILE', description: 'Bearer tokens, one per line: TENANT:TOKEN (or TOKEN)' },
    { name: 'insecure', type: 'bool', description: 'Allow a non-loopback address without TLS or tokens' },
    { name: 'root', type: 'string', valueName: 'DIR', description: 'State dir (default $KILN_ROOT or ~/.local/share/kiln)' },
    { name: 'max-parallel', type: 'string', valueName: 'N', description: 'Builds running at once; more wait in a queue (default 4)' },
    { name: 'history-ttl', type: 'string', valueName: 'DURATION', description: 'Keep finished builds and their logs this long (default 48h)' },
    { name: 'shared-cache', type: 'bool', description: 'All tenants share one cache namespace' },
    { name: 'name', type: 'string', valueName: 'NAME', description: 'Node name reported to clients (default: host name)' },
    { name: 'platform', type: 'string', multiple: true, valueName: 'os/arch', description: 'Platforms offered (default: native, then emulated ones)' },
    { name: 'ui', type: 'string', valueName: '[HOST]:PORT', description: 'Serve the web dashboard on this address (HOST defaults to 127.0.0.1; port 0 picks one)' },
    { name: 'ui-host', type: 'string', multiple: true, valueName: 'NAME', description: 'A host name the dashboard is reached under (its Host header); besides its address and localhost, others are refused' },
    { name: 'allow-insecure-entitlement', type: 'string', multiple: true, valueName: 'NAME', description: 'Let builds ask for this entitlement with --allow: network.host or security.insecure' },
    { name: 'tenant-credentials', type: 'string', valueName: 'DIR', description: "Registry credentials per tenant: DIR/TENANT/config.json (Docker's format), used after those the client sends" },
    { name: 'operator-credentials', type: 'bool', description: "Let every tenant's pulls and pushes use this server's own $DOCKER_CONFIG (off: tenants never get the operator's credentials)" },
    { name: 'allow-local-fetch', type: 'bool', description: "Let ADD http://… reach this machine's loopback, link-local and own addresses (off: refused)" },
    { name: 'allow-local-fetch-origin', type: 'string', multiple: true, valueName: 'HOST:PORT', description: 'Let ADD http://… reach this one local origin (e.g. a mirror on 127.0.0.1:8080); redirects from it are checked again' },
    { name: 'build-memory', type: 'string', valueName: 'SIZE', description: 'Memory of one build (all its RUNs together; default: half the RAM, at most 4g; 0: no limit)' },
    { name: 'build-cpus', type: 'string', valueName: 'N', description: 'CPUs of one build (default: half the cores, at least 1; 0: no limit)' },
    { name: 'build-pids', type: 'string', valueName: 'N', description: 'Processes of one build (default 4096; 0: no limit)' },
    { name: 'tenant-disk', type: 'string', valueName: 'SIZE', description: "Disk quota of a tenant's cache and synced context (default 20g; 0: none)" },
    { name: 'tenant-builds', type: 'string', valueName: 'N', description: 'Builds of one tenant running at once (default: half of --max-parallel with tokens or mTLS, else all)' },
    { name: 'gc-keep-storage', type: 'string', valueName: 'SIZE', description: "Each state dir's cache may take at most SIZE, held while builds run (older name of --gc-max-used-space; default: no automatic GC)" },
    { name: 'gc-max-used-space', type: 'string', valueName: 'SIZE|N%', description: 'GC: the most the cache may take (bytes, or % of the disk)' },
    { name: 'gc-min-free-space', type: 'string', valueName: 'SIZE|N%', description: 'GC: remove cache until the disk has this much free space' },
    { name: 'gc-reserved-space', type: 'string', valueName: 'SIZE|N%', description: 'GC: never shrink the cache below this' },
    { name: 'shutdown-timeout', type: 'string', valueName: 'DURATION', description: 'On SIGTERM, wait this long for running builds before canceling them (default 60s)' },
  ],
  async run(args) {
    if (args.positionals.length) throw new FlagError(`kiln serve: unexpected argument "${args.positionals[0]}"`);
    const addr = flagString(args, 'addr');
    const bkAddr = flagString(args, 'buildkit-addr');
    if (!addr && !bkAddr) throw new FlagError('kiln serve: --addr is required (unix:///path or tcp://host:port)');
    const ep = addr ? parseAddr(addr) : undefined;
    const bkEp = bkAddr ? parseAddr(bkAddr) : undefined;
    const cert = flagString(args, 'tls-cert');
    const key = flagString(args, 'tls-key');
    const ca = flagString(args, 'tls-ca');
    if (!!cert !== !!key) throw new FlagError('kiln serve: --tls-cert and --tls-key go together');
    if (ca && !cert) throw new FlagError('kiln serve: --tls-ca (client certificates) needs --tls-cert and --tls-key');
    if (cert && (ep?.unix ?? true) && (bkEp?.unix ?? true)) throw new FlagError('kiln serve: TLS is for tcp:// addresses (a unix socket is protected by its file mode)');
    const tokenFile = flagString(args, 'token-file');
    const tokens = tokenFile ? loadTokenFile(tokenFile) : undefined;
    if (ep && !isLoopback(ep) && !cert && !tokens && !flagBool(args, 'insecure')) {
      throw new FlagError(`kiln serve: refusing to listen on ${addr} without TLS (--tls-cert/--tls-key) or tokens (--token-file); pass --insecure to do it anyway`);
    }
    if (ep && !isLoopback(ep) && !cert && tokens) process.stderr.write(`kiln serve: warning: tokens travel in plaintext on ${addr} without TLS (--tls-cert/--tls-key)\n`);
    // buildx sends no bearer tokens: on the BuildKit address a tenant is named by its client certificate.
    if (bkEp && !isLoopback(bkEp) && !cert && !flagBool(args, 'insecure')) {
      throw new FlagError(`kiln serve: refusing to serve BuildKit's API on ${bkAddr} without TLS (--tls-cert/--tls-key); pass --insecure to do it anyway`);
    }
    if (bkEp && tokens && !ca) throw new FlagError('kiln serve: --buildkit-addr with --token-file needs client certificates (--tls-ca): buildx cannot send tokens');
    const maxText = flagString(args, 'max-parallel') ?? '4';
    if (!/^[1-9][0-9]*$/.test(maxText)) throw new FlagError(`invalid value "${maxText}" for flag --max-parallel: expected a positive number`);
    const ui = flagString(args, 'ui') === undefined ? undefined : parseUiAddr(flagString(args, 'ui')!);
    if (ui && !isLoopbackHost(ui.host) && !tokens && !flagBool(args, 'insecure')) {
      throw new FlagError(`kiln serve: refusing to serve the dashboard on ${ui.host} without tokens (--token-file); pass --insecure to do it anyway`);
    }
    const historyTtlMs = parseDuration('--history-ttl', flagString(args, 'history-ttl') ?? '48h', { bareSeconds: true });
    const graceMs = parseDuration('--shutdown-timeout', flagString(args, 'shutdown-timeout') ?? '60s', { bareSeconds: true });
    const read = (path: string, flag: string) => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new FlagError(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    };
    const creds = cert
      ? grpc.ServerCredentials.createSsl(ca ? read(ca, '--tls-ca') : null, [{ cert_chain: read(cert, '--tls-cert'), private_key: read(key!, '--tls-key') }], !!ca)
      : grpc.ServerCredentials.createInsecure();
    // GC runs while builds run (their leases keep what they use); without --gc-* flags, only on request.
    for (const [flag, env] of [['gc-keep-storage', GC_ENV.keepStorage], ['gc-max-used-space', GC_ENV.maxUsedSpace], ['gc-min-free-space', GC_ENV.minFreeSpace], ['gc-reserved-space', GC_ENV.reservedSpace]] as const) {
      const v = flagString(args, flag);
      if (v === undefined) continue;
      try {
        parseAmount(`value for flag --${flag}`, v);
      } catch (err) {
        throw new FlagError((err as Error).message);
      }
      process.env[env] = v;
    }
    if (!Object.values(GC_ENV).some((e) => process.env[e])) process.env.KILN_GC_KEEP_STORAGE = '0';
    const tenantCredentials = flagString(args, 'tenant-credentials');
    if (tenantCredentials && !(existsSync(tenantCredentials) && statSync(tenantCredentials).isDirectory())) throw new FlagError(`--tenant-credentials ${tenantCredentials}: not a directory`);
    const root = flagString(args, 'root') ?? defaultStateRoot();
    const limits = serveLimits({
      buildMemory: flagString(args, 'build-memory'),
      buildCpus: flagString(args, 'build-cpus'),
      buildPids: flagString(args, 'build-pids'),
      tenantDisk: flagString(args, 'tenant-disk'),
      tenantBuilds: flagString(args, 'tenant-builds'),
    });
    const maxParallel = Number(maxText);
    // With several tenants, one of them alone cannot take every build slot.
    const manyTenants = (!!tokens || !!ca) && !flagBool(args, 'shared-cache');
    const server = new BuildServer({
      root,
      name: flagString(args, 'name') ?? defaultNodeName(),
      auth: { tokens, mtls: !!ca, sharedCache: flagBool(args, 'shared-cache') },
      maxParallel,
      maxParallelPerTenant: limits.tenant.builds ?? (manyTenants ? Math.max(1, Math.ceil(maxParallel / 2)) : maxParallel),
      limits,
      historyTtlMs,
      platforms: flagList(args, 'platform'),
      entitlements: flagList(args, 'allow-insecure-entitlement').map((e) => {
        if (e !== 'network.host' && e !== 'security.insecure') throw new FlagError(`invalid value "${e}" for flag --allow-insecure-entitlement: expected network.host or security.insecure`);
        return e;
      }),
      allowLocalFetch: flagBool(args, 'allow-local-fetch') ? true : flagList(args, 'allow-local-fetch-origin').map((o) => {
        if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/.test(o)) throw new FlagError(`invalid value "${o}" for flag --allow-local-fetch-origin: expected HOST:PORT`);
        return o.toLowerCase();
      }),
      credentials: { dir: tenantCredentials, operator: flagBool(args, 'operator-credentials') },
    });
    const bind = async (e: typeof ep, text: string, listen: (target: string, c: grpc.ServerCredentials) => Promise<number>) => {
      if (e!.unix) {
        const path = e!.target.slice('unix://'.length);
        if (existsSync(path) && statSync(path).isSocket()) rmSync(path);
      }
      let port: number;
      try {
        port = await listen(e!.target, e!.unix ? grpc.ServerCredentials.createInsecure() : creds);
      } catch (err) {
        throw new FlagError(`kiln serve: cannot listen on ${text}: ${(err as Error).message}`);
      }
      if (e!.unix) chmodSync(e!.target.slice('unix://'.length), 0o660);
      return e!.unix ? text : text.replace(/:[0-9]+$/, `:${port}`);
    };
    const auth = [cert ? (ca ? 'mTLS' : 'TLS') : 'plaintext', tokens ? `${tokens.size} token(s)` : ''].filter(Boolean).join(', ');
    if (ep) {
      const shown = await bind(ep, addr!, (t, c) => server.listen(t, c));
      process.stderr.write(`kiln serve: listening on ${shown} (${auth}; platforms ${server.platforms.join(', ')}; state ${root})\n`);
    }
    if (bkEp) {
      const tlsFiles = cert && !bkEp.unix ? { cert: read(cert, '--tls-cert'), key: read(key!, '--tls-key'), ca: ca ? read(ca, '--tls-ca') : undefined } : undefined;
      const shown = await bind(bkEp, bkAddr!, (t, c) => server.listenBuildkit(t, c, tlsFiles));
      process.stderr.write(`kiln serve: BuildKit API on ${shown} (${bkEp.unix ? 'unix socket' : cert ? (ca ? 'mTLS' : 'TLS') : 'plaintext'}; docker buildx create --driver remote ${shown})\n`);
    }
    const b = limits.build;
    const perTenant = server.slots.perTenant;
    process.stderr.write(
      `kiln serve: limits per build: memory ${b.memoryBytes ? formatBytes(b.memoryBytes) : 'none'}, CPUs ${b.cpus ?? 'none'}, processes ${b.pids ?? 'none'}; per tenant: disk ${limits.tenant.diskBytes ? formatBytes(limits.tenant.diskBytes) : 'none'}, ${perTenant} build(s) at once\n`,
    );
    const dashboard = ui
      ? await startDashboard({
          host: ui.host,
          port: ui.port,
          root,
          tokens,
          sharedCache: flagBool(args, 'shared-cache'),
          hostNames: flagList(args, 'ui-host'),
          tenantState: async (name) => (existsSync(join(root, 'tenants', name)) ? (await server.tenants.get(name)).state : undefined),
          gcPolicy: describePolicy(gcPolicyFromEnv()),
        }).catch((err: Error) => {
          throw new FlagError(`kiln serve: cannot serve the dashboard on ${ui.host}:${ui.port}: ${err.message}`);
        })
      : undefined;
    if (dashboard) process.stderr.write(`kiln serve: dashboard on ${dashboard.url}\n`);
    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) {
          process.stderr.write(`kiln serve: ${sig} again: exiting now\n`);
          process.exit(1);
        }
        stopping = true;
        process.stderr.write(`kiln serve: ${sig}: shutting down\n`);
        void dashboard?.close();
        server.shutdown(graceMs, (m) => process.stderr.write(`kiln serve: ${m}\n`)).then(
          () => {
            process.stderr.write('kiln serve: stopped\n');
            resolve(0);
          },
          (err) => {
            process.stderr.write(`kiln serve: shutdown failed: ${(err as Error).message}\n`);
            resolve(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
  },
};
