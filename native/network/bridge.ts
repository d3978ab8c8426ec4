// kiln's bridge for RUN's `default` network: one Linux bridge (kiln0, 10.201.0.1/16 unless
// KILN_NETWORK_SUBNET says otherwise) that every sandbox plugs a veth into, NAT out through the host's
// routes, and FORWARD accept rules (dockerd sets the FORWARD policy to DROP when it runs).
//
// The bridge and its rules are made once per boot (checked once per process, ~5 ms); everything per RUN
// (veth pair, address lease, eth0 set-up, route) is done by the C helper over netlink. Leases live in
// LEASE_DIR and are held with OFD locks, so a crash never leaks an address; set-up namespaces are pooled
// for later RUNs (KILN_NETWORK_POOL_IDLE seconds, default 300; 0 turns the pool off); see native/src/net.c.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The build network could not be set up (missing tool, bad setting, subnet clash): one line. */
export class NetworkSetupError extends Error {
  readonly userFacing = true;
  override name = 'NetworkSetupError';
}

export interface BridgeConfig {
  /** Interface name of the bridge. */
  name: string;
  /** The bridge's own address: the sandboxes' gateway. */
  gateway: string;
  prefixLen: number;
  /** e.g. 10.201.0.0/16 */
  subnet: string;
  /** Sandboxes get gateway-network + 2 + n for n < poolSize: the lower half of the subnet. The upper half
   * is never leased (tests attach their own hosts there). */
  poolSize: number;
  leaseFile: string;
  /** Host ends of the veth pairs are named <vethPrefix><n>. */
  vethPrefix: string;
  /** Set-up network namespaces are kept this long for reuse by later RUNs (0: never). */
  poolIdleSeconds: number;
}

export const LEASE_DIR = '/run/kiln/net';
const DEFAULT_SUBNET = '10.201.0.0/16';
const RULE_TAG = 'kiln-bridge';

function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new NetworkSetupError(`invalid IPv4 address "${ip}"`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}
export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

/** The bridge kiln uses; KILN_NETWORK_SUBNET (a CIDR, /8 to /24) changes its subnet, KILN_BRIDGE its name. */
export function bridgeConfig(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const subnetText = env.KILN_NETWORK_SUBNET || DEFAULT_SUBNET;
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(subnetText);
  const prefixLen = m ? Number(m[2]) : NaN;
  if (!m || !(prefixLen >= 8 && prefixLen <= 24)) throw new NetworkSetupError(`invalid KILN_NETWORK_SUBNET "${subnetText}": expected an IPv4 CIDR between /8 and /24, e.g. ${DEFAULT_SUBNET}`);
  const base = (ipToInt(m[1]!) & maskOf(prefixLen)) >>> 0;
  const name = env.KILN_BRIDGE || 'kiln0';
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) throw new NetworkSetupError(`invalid KILN_BRIDGE "${name}": an interface name of 1 to 15 characters`);
  return {
    name,
    gateway: intToIp(base + 1),
    prefixLen,
    subnet: `${intToIp(base)}/${prefixLen}`,
    poolSize: Math.min(2 ** (32 - prefixLen - 1) - 2, 1 << 20),
    leaseFile: `${LEASE_DIR}/${name}.leases`,
    // Leases are per bridge, so each bridge needs host link names of its own.
    vethPrefix: name === 'kiln0' ? 'kilnv' : `kv${createHash('sha256').update(name).digest('hex').slice(0, 5)}`,
    poolIdleSeconds: env.KILN_NETWORK_POOL_IDLE !== undefined && env.KILN_NETWORK_POOL_IDLE !== '' ? Math.max(0, Number(env.KILN_NETWORK_POOL_IDLE) || 0) : 300,
  };
}

/** Routes of the host (other than the bridge's own) that overlap the subnet: the bridge would shadow them. */
function collidingRoute(cfg: BridgeConfig): string | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return undefined;
  }
  const base = ipToInt(cfg.subnet.split('/')[0]!);
  const mask = maskOf(cfg.prefixLen);
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[0] === cfg.name) continue;
    // /proc/net/route prints addresses as little-endian hex.
    const le = (h: string) => Buffer.from(h, 'hex').readUInt32LE(0);
    const dest = le(f[1]!);
    const rmask = le(f[7]!);
    if (rmask === 0) continue; // the default route overlaps everything; it is what NAT goes out through
    const common = (mask & rmask) >>> 0;
    if (((dest & common) >>> 0) === ((base & common) >>> 0)) {
      const bits = rmask.toString(2).replace(/0/g, '').length;
      return `${intToIp(dest)}/${bits} on ${f[0]}`;
    }
  }
  return undefined;
}

async function ip(args: string[], okIfExists = false): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    const text = `${(err as { stderr?: string }).stderr ?? ''}`;
    if (okIfExists && /File exists|already assigned/.test(text)) return;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NetworkSetupError('network: the ip command is missing (apt-get install iproute2)');
    throw new NetworkSetupError(`network: ip ${args.join(' ')}: ${text.trim() || (err as Error).message}`);
  }
}

async function iptables(args: string[]): Promise<string> {
  try {
    return (await run('iptables', ['-w', '5', ...args])).stdout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NetworkSetupError('network: iptables is missing (apt-get install iptables), needed for the build network\'s NAT');
    throw new NetworkSetupError(`network: iptables ${args.join(' ')}: ${`${(err as { stderr?: string }).stderr ?? ''}`.trim() || (err as Error).message}`);
  }
}

/** The iptables rules the bridge needs: [table, chain, rule args]. */
function rules(cfg: BridgeConfig): [string, string, string[]][] {
  const tag = ['-m', 'comment', '--comment', `${RULE_TAG}:${cfg.name}`];
  return [
    ['filter', 'FORWARD', ['-i', cfg.name, ...tag, '-j', 'ACCEPT']],
    ['filter', 'FORWARD', ['-o', cfg.name, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...tag, '-j', 'ACCEPT']],
    ['nat', 'POSTROUTING', ['-s', cfg.subnet, '!', '-o', cfg.name, ...tag, '-j', 'MASQUERADE']],
  ];
}

async function ensureRules(cfg: BridgeConfig): Promise<void> {
  const saved = await run('iptables-save', []).then((r) => r.stdout).catch(() => '');
  for (const [table, chain, args] of rules(cfg)) {
    // iptables-save prints `-A CHAIN <args>`; comments come back quoted only when they need it.
    const wanted = `-A ${chain} ${args.join(' ')}`;
    if (saved.split('\n').some((l) => l.trim().replace(/"/g, '') === wanted)) continue;
    // Insert FORWARD rules first, ahead of dockerd's chains and any DROP; NAT can go last.
    await iptables(['-t', table, chain === 'FORWARD' ? '-I' : '-A', chain, ...(chain === 'FORWARD' ? ['1'] : []), ...args]);
  }
}

/**
 * A bridge without an address of its own takes the lowest MAC of its ports, so its MAC changes as pooled
 * namespaces' veths come and go; a reused namespace still holds the gateway's old MAC in its neighbour table
 * and sends into the void until that entry is re-probed (the ~20 s RUN network stall). A fixed, locally
 * administered MAC derived from the bridge's name never changes (the kernel marks it NET_ADDR_SET).
 */
export function bridgeMac(name: string): string {
  const h = createHash('sha256').update(`kiln-bridge:${name}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Pins the MAC; says whether it changed (pooled namespaces then hold the old one). */
async function pinBridgeMac(name: string): Promise<boolean> {
  const sys = `/sys/class/net/${name}`;
  const assigned = readFileSync(`${sys}/addr_assign_type`, 'utf8').trim() === '3'; // NET_ADDR_SET
  if (assigned && readFileSync(`${sys}/address`, 'utf8').trim() === bridgeMac(name)) return false;
  await ip(['link', 'set', name, 'address', bridgeMac(name)]);
  return true;
}

async function setUp(cfg: BridgeConfig, resetPool?: (cfg: BridgeConfig) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new NetworkSetupError('network: the build network needs root (run as root, or use --network none)');
  const present = existsSync(`/sys/class/net/${cfg.name}`);
  if (!present) {
    const clash = collidingRoute(cfg);
    if (clash) throw new NetworkSetupError(`network: kiln's bridge subnet ${cfg.subnet} overlaps the host route ${clash}; set KILN_NETWORK_SUBNET to a free range`);
    await ip(['link', 'add', cfg.name, 'type', 'bridge'], true);
  }
  // A bridge made by an older kiln: its pooled namespaces know the old gateway MAC, so they go.
  if ((await pinBridgeMac(cfg.name)) && present) resetPool?.(cfg);
  // (os.networkInterfaces() skips a bridge without ports: it is not RUNNING.)
  const addrs = networkInterfaces()[cfg.name] ?? [];
  if (!present || !addrs.some((a) => a.family === 'IPv4' && a.address === cfg.gateway)) await ip(['addr', 'add', `${cfg.gateway}/${cfg.prefixLen}`, 'dev', cfg.name], true);
  const flags = Number.parseInt(readFileSync(`/sys/class/net/${cfg.name}/flags`, 'utf8').trim(), 16);
  if (!(flags & 1)) await ip(['link', 'set', cfg.name, 'up']);
  if (readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() !== '1') writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
  await ensureRules(cfg);
  mkdirSync(LEASE_DIR, { recursive: true, mode: 0o700 });
}

const ready = new Map<string, Promise<BridgeConfig>>();

/** Makes sure the bridge, its address, forwarding and NAT rules exist (once per process per bridge). */
/** `resetPool` drops pooled namespaces that know an older bridge (the sandbox helper owns that pool). */
export function ensureBridge(cfg: BridgeConfig = bridgeConfig(), resetPool?: (cfg: BridgeConfig) => void): Promise<BridgeConfig> {
  let p = ready.get(cfg.name);
  if (!p) {
    p = setUp(cfg, resetPool).then(() => cfg);
    p.catch(() => ready.delete(cfg.name));
    ready.set(cfg.name, p);
  }
  return p;
}

