// `kiln builder create|ls|use|rm|inspect`: remote builder instances (like `docker buildx create/ls/use/
// rm/inspect`). A builder is a list of nodes (kiln serve instances) stored under $KILN_CONFIG_DIR.
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { parseAddr, type NodeConfig } from '../../client/address.js';
import { checkName, currentBuilderName, DEFAULT_BUILDER, listBuilders, loadBuilder, removeBuilder, resolveBuilder, saveBuilder, useBuilder, type BuilderConfig } from '../../client/builders.js';
import type { BuildRecordMsg } from '../../protocol/builder.js';
import { formatPlatform, normalizePlatform, parsePlatform } from '../../../base/oci/platform.js';
import { existsSync } from 'node:fs';
import { printTable } from '../table.js';

const usage = [
  'kiln builder create NAME --addr ADDR [--node NODE] [--platform P] [--tls-ca F --tls-cert F --tls-key F] [--token-file F] [--append] [--use]',
  '       kiln builder ls',
  '       kiln builder use NAME',
  '       kiln builder rm NAME',
  '       kiln builder inspect [NAME]',
  '       kiln builder builds [NAME|ADDR]      (build history of each node)',
  '       kiln builder logs NAME|ADDR BUILD_ID',
  '       kiln builder cancel NAME|ADDR BUILD_ID',
  '       kiln builder du [NAME|ADDR]          (your build cache on each node)',
  '       kiln builder prune [NAME|ADDR] [--all]',
].join('\n');

export const builderCommand: Command = {
  name: 'builder',
  summary: 'Manage remote builders (kiln serve instances)',
  usage,
  flags: [
    { name: 'addr', type: 'string', valueName: 'ADDR', description: 'create: the node address, unix:///path or tcp://host:port' },
    { name: 'node', type: 'string', valueName: 'NAME', description: 'create: name of the node (default NAME0, NAME1, …)' },
    { name: 'platform', type: 'string', multiple: true, valueName: 'os/arch', description: 'create: platforms this node builds natively (default: ask the node)' },
    { name: 'append', type: 'bool', description: 'create: add a node to an existing builder' },
    { name: 'use', type: 'bool', description: 'create: use the builder for later builds' },
    { name: 'tls-ca', type: 'string', valueName: 'FILE', description: "create: CA that signed the node's certificate" },
    { name: 'tls-cert', type: 'string', valueName: 'FILE', description: 'create: client certificate (mTLS)' },
    { name: 'tls-key', type: 'string', valueName: 'FILE', description: 'create: client key (mTLS)' },
    { name: 'tls-server-name', type: 'string', valueName: 'NAME', description: "create: expected name in the node's certificate (default: the address host)" },
    { name: 'token-file', type: 'string', valueName: 'FILE', description: 'create: file holding the bearer token' },
    { name: 'all', type: 'bool', description: 'prune: also remove RUN cache mounts' },
  ],
  async run(args) {
    const [sub, ...rest] = args.positionals;
    switch (sub) {
      case 'create':
        return create(args, rest);
      case 'ls':
        return ls();
      case 'use': {
        const name = one(rest, 'use');
        useBuilder(name);
        console.log(name);
        return 0;
      }
      case 'rm': {
        const name = one(rest, 'rm');
        if (name === DEFAULT_BUILDER) throw new FlagError('kiln builder rm: the default builder (the embedded engine) cannot be removed');
        removeBuilder(name);
        console.log(name);
        return 0;
      }
      case 'inspect':
        return inspect(rest[0] ?? currentBuilderName());
      case 'builds':
        return builds(rest[0]);
      case 'logs':
        if (rest.length !== 2) throw new FlagError('kiln builder logs: requires 2 arguments: the builder (NAME or address) and a build ID');
        return logs(rest[0]!, rest[1]!);
      case 'du':
        return du(rest[0]);
      case 'prune':
        return pruneRemote(rest[0], flagBool(args, 'all'));
      case 'cancel':
        if (rest.length !== 2) throw new FlagError('kiln builder cancel: requires 2 arguments: the builder (NAME or address) and a build ID');
        return cancel(rest[0]!, rest[1]!);
      case undefined:
        throw new FlagError("kiln builder: a subcommand is required (create, ls, use, rm, inspect, builds, logs, cancel, du, prune; see 'kiln builder --help')");
      default:
        throw new FlagError(`kiln builder: unknown subcommand "${sub}" (create, ls, use, rm, inspect, builds, logs, cancel, du, prune)`);
    }
  },
};

function one(rest: string[], sub: string): string {
  if (rest.length !== 1) throw new FlagError(`kiln builder ${sub}: requires exactly 1 argument: the builder NAME`);
  return rest[0]!;
}

function file(path: string | undefined, flag: string): string | undefined {
  if (path === undefined) return undefined;
  const abs = resolve(path);
  if (!existsSync(abs)) throw new FlagError(`${flag} ${path}: no such file`);
  return abs;
}

function create(args: Parameters<Command['run']>[0], rest: string[]): number {
  const name = one(rest, 'create');
  if (name === DEFAULT_BUILDER) throw new FlagError('kiln builder create: "default" is the embedded engine; choose another name');
  checkName(name);
  const addr = flagString(args, 'addr');
  if (!addr) throw new FlagError('kiln builder create: --addr is required (unix:///path or tcp://host:port)');
  parseAddr(addr);
  const append = flagBool(args, 'append');
  let existing: BuilderConfig | undefined;
  if (listBuilders().some((b) => b.name === name)) existing = loadBuilder(name);
  if (existing && !append) throw new FlagError(`kiln builder create: builder "${name}" exists (use --append to add a node)`);
  if (!existing && append) throw new FlagError(`kiln builder create --append: no builder "${name}" to append to`);
  const nodes = existing?.nodes ?? [];
  const nodeName = flagString(args, 'node') ?? `${name}${nodes.length}`;
  checkName(nodeName, 'node');
  if (nodes.some((n) => n.name === nodeName)) throw new FlagError(`kiln builder create: builder "${name}" already has a node "${nodeName}"`);
  let platforms: string[];
  try {
    platforms = flagList(args, 'platform').flatMap((p) => p.split(',')).filter(Boolean).map((p) => formatPlatform(normalizePlatform(parsePlatform(p))));
  } catch (err) {
    throw new FlagError(`invalid value for flag --platform: ${(err as Error).message}`);
  }
  const ca = file(flagString(args, 'tls-ca'), '--tls-ca');
  const cert = file(flagString(args, 'tls-cert'), '--tls-cert');
  const key = file(flagString(args, 'tls-key'), '--tls-key');
  if (!!cert !== !!key) throw new FlagError('kiln builder create: --tls-cert and --tls-key go together');
  const serverName = flagString(args, 'tls-server-name');
  if ((ca || cert || serverName) && parseAddr(addr).unix) throw new FlagError('kiln builder create: TLS options are for tcp:// addresses');
  const node: NodeConfig = {
    name: nodeName,
    addr,
    platforms,
    ...(ca || cert || serverName ? { tls: { ca, cert, key, serverName } } : {}),
    ...(flagString(args, 'token-file') ? { tokenFile: file(flagString(args, 'token-file'), '--token-file') } : {}),
  };
  saveBuilder({ name, nodes: [...nodes, node] });
  if (flagBool(args, 'use')) useBuilder(name);
  console.log(name);
  return 0;
}

function ls(): number {
  const current = currentBuilderName();
  const rows = [['NAME/NODE', 'ENDPOINT', 'PLATFORMS']];
  rows.push([`default${current === DEFAULT_BUILDER ? ' *' : ''}`, 'embedded', '']);
  for (const b of listBuilders()) {
    rows.push([`${b.name}${b.name === current ? ' *' : ''}`, '', '']);
    for (const n of b.nodes) rows.push([`  \\_ ${n.name}`, n.addr, n.platforms.join(', ')]);
  }
  printTable(rows);
  return 0;
}

async function inspect(name: string): Promise<number> {
  if (name === DEFAULT_BUILDER) {
    console.log('Name:   default\nDriver: embedded (builds run in the kiln process)');
    return 0;
  }
  const b = loadBuilder(name);
  console.log(`Name:   ${b.name}\nDriver: remote\n\nNodes:`);
  // Ask each node what it is; an unreachable node is reported, not fatal.
  const { connect, unary } = await import('../../client/connect.js');
  for (const n of b.nodes) {
    console.log(`Name:      ${n.name}\nEndpoint:  ${n.addr}`);
    if (n.tls) console.log(`TLS:       ${n.tls.cert ? 'mTLS' : 'TLS'}${n.tls.ca ? ` (CA ${n.tls.ca})` : ''}`);
    if (n.tokenFile) console.log(`Token:     ${n.tokenFile}`);
    const conn = connect(n);
    try {
      const info = await unary<import('../../protocol/builder.js').InfoResponse>(conn, 'Info', {}, 10_000);
      console.log(`Status:    running\nVersion:   kiln ${info.version} (protocol ${info.protocol_version}), node ${info.name}\nTenant:    ${info.tenant}`);
      console.log(`Platforms: ${(n.platforms.length ? n.platforms : info.platforms).join(', ')}${n.platforms.length ? ' (declared)' : ''}`);
      console.log(`Builds:    ${info.running} running, ${info.queued} queued (max ${info.workers[0]?.max_parallel ?? '?'})\n`);
    } catch (err) {
      console.log(`Status:    unreachable: ${(err as Error).message}\n`);
    } finally {
      conn.close();
    }
  }
  return 0;
}

function remote(name: string | undefined): BuilderConfig {
  const b = resolveBuilder(name ?? currentBuilderName());
  if (!b) throw new FlagError('the default builder is the embedded engine: it keeps no build history (name a remote builder)');
  return b;
}

/** Calls `fn` once per node of a remote builder with an open connection, closed afterwards. */
async function eachNode(b: BuilderConfig, fn: (n: BuilderConfig['nodes'][number], call: <Res>(method: string, req: object, timeoutMs?: number) => Promise<Res>) => Promise<void>): Promise<void> {
  const { connect, unary } = await import('../../client/connect.js');
  for (const n of b.nodes) {
    const conn = connect(n);
    try {
      await fn(n, (method, req, timeoutMs) => unary(conn, method, req, timeoutMs));
    } finally {
      conn.close();
    }
  }
}

async function builds(name: string | undefined): Promise<number> {
  const rows = [['NODE', 'ID', 'STATUS', 'PLATFORMS', 'STARTED', 'DURATION', 'UPLOADED', 'DIGEST']];
  await eachNode(remote(name), async (n, call) => {
    const res = await call<{ builds: BuildRecordMsg[] }>('ListBuilds', {});
    for (const r of res.builds) {
      const dur = r.ended ? `${((Date.parse(r.ended) - Date.parse(r.started)) / 1000).toFixed(1)}s` : '';
      const up = r.sync ? `${r.sync.files_uploaded}/${r.sync.files}` : '';
      rows.push([n.name, r.id, r.status, r.platforms.join(',') || 'native', r.started.replace(/\.\d+Z$/, 'Z'), dur, up, r.digest || (r.error ? r.error.slice(0, 60) : '')]);
    }
  });
  printTable(rows, { gap: 2 });
  return 0;
}

async function logs(name: string, id: string): Promise<number> {
  const b = remote(name);
  const { connect, unary } = await import('../../client/connect.js');
  let lastErr: unknown;
  for (const n of b.nodes) {
    const conn = connect(n);
    try {
      const r = await unary<BuildRecordMsg>(conn, 'Status', { build_id: id });
      for (const l of r.logs) console.log(l);
      console.log(`${r.status}${r.error ? `: ${r.error}` : ''}${r.digest ? ` ${r.digest}` : ''}`);
      return 0;
    } catch (err) {
      lastErr = err;
    } finally {
      conn.close();
    }
  }
  throw lastErr;
}

async function cancel(name: string, id: string): Promise<number> {
  const b = remote(name);
  const { connect, unary } = await import('../../client/connect.js');
  for (const n of b.nodes) {
    const conn = connect(n);
    try {
      const r = await unary<{ canceled: boolean }>(conn, 'Cancel', { build_id: id });
      if (r.canceled) {
        console.log(id);
        return 0;
      }
    } finally {
      conn.close();
    }
  }
  throw new FlagError(`kiln builder cancel: no running build ${id}`);
}

async function du(name: string | undefined): Promise<number> {
  const { formatSize } = await import('../../../base/units.js');
  await eachNode(remote(name), async (n, call) => {
    const r = await call<{ records: { id: string; description: string; size: string; reclaimable: boolean }[]; context_store_bytes: string }>('DiskUsage', {});
    const total = r.records.reduce((t, u) => t + Number(u.size), 0);
    console.log(`${n.name}: ${r.records.length} cache records, ${formatSize(total)}; synced context files ${formatSize(Number(r.context_store_bytes))}`);
    for (const u of r.records) console.log(`  ${u.id.replace(/^result\/sha256:/, '').slice(0, 25)}  ${formatSize(Number(u.size)).padStart(9)}  ${u.description.slice(0, 60)}`);
  });
  return 0;
}

async function pruneRemote(name: string | undefined, all: boolean): Promise<number> {
  const { formatSize } = await import('../../../base/units.js');
  await eachNode(remote(name), async (n, call) => {
    const r = await call<{ removed_records: number; reclaimed_bytes: string }>('Prune', { all }, 600_000);
    console.log(`${n.name}: removed ${r.removed_records} cache records, reclaimed ${formatSize(Number(r.reclaimed_bytes))}`);
  });
  return 0;
}
