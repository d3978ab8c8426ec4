// Platforms (os/arch/variant): parsing, normalising and matching as containerd's `platforms` package does,
// so kiln picks the same index entry BuildKit would.
import { arch as nodeArch, endianness } from 'node:os';
import { UserError } from '../errors.js';
import type { Descriptor, ImageIndex, Platform } from './types.js';

export class InvalidPlatformError extends UserError {}
export class NoMatchingPlatformError extends UserError {}

const SPECIFIER_RE = /^[A-Za-z0-9_-]+$/;
const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd',
  'openbsd', 'plan9', 'solaris', 'wasi', 'wasip1', 'windows', 'zos',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64', 'mips', 'mipsle',
  'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64',
  'wasm',
]);

function normalizeOS(os: string): string {
  const o = os.toLowerCase();
  return o === 'macos' ? 'darwin' : o;
}

/** containerd's normalizeArch: canonical architecture names and variants (without defaults filled in). */
function normalizeArch(arch: string, variant: string): [string, string] {
  let a = arch.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case 'i386':
      a = '386';
      v = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      a = 'amd64';
      if (v === 'v1') v = '';
      break;
    case 'aarch64':
    case 'arm64':
      a = 'arm64';
      if (v === '8' || v === 'v8' || v === 'v8.0') v = 'v8';
      else if (v === '9' || v === '9.0' || v === 'v9.0') v = 'v9';
      break;
    case 'armhf':
      a = 'arm';
      v = 'v7';
      break;
    case 'armel':
      a = 'arm';
      v = 'v6';
      break;
    case 'arm':
      if (v === '' || v === '7') v = 'v7';
      else if (v === '5' || v === '6' || v === '8') v = 'v' + v;
      break;
  }
  return [a, v];
}

function platformOf(os: string, architecture: string, variant: string): Platform {
  const p: Platform = { os, architecture };
  if (variant) p.variant = variant;
  return p;
}

/**
 * Parses `os`, `arch`, `os/arch` or `os/arch/variant` (e.g. `linux/arm64/v8`, `linux/aarch64`, `arm`,
 * `linux`), the OS optionally with its version as containerd writes it (`windows(10.0.20348)/amd64`).
 * A lone OS gets the host's architecture; a lone architecture gets the host's OS.
 * The result carries the variant as written (normalised spelling); use normalizePlatform to fill defaults.
 */
export function parsePlatform(specifier: string): Platform {
  const withVersion = /^([^/()]+)\(([^()/]*)\)(\/.*)?$/.exec(specifier.trim());
  if (withVersion) {
    const p = parsePlatformWithoutVersion(withVersion[1]! + (withVersion[3] ?? ''));
    return withVersion[2] ? { ...p, 'os.version': withVersion[2] } : p;
  }
  return parsePlatformWithoutVersion(specifier);
}

function parsePlatformWithoutVersion(specifier: string): Platform {
  const parts = specifier.trim().split('/');
  for (const part of parts) {
    if (!SPECIFIER_RE.test(part)) {
      throw new InvalidPlatformError(`invalid platform ${JSON.stringify(specifier)}: ${JSON.stringify(part)} is not a valid component (expected os/arch[/variant], e.g. linux/arm64/v8)`);
    }
  }
  // WebAssembly: `wasi` (or `wasm`) alone means wasi/wasm; wasm has no variants.
  if (parts.length === 1 && ['wasi', 'wasm'].includes(parts[0]!.toLowerCase())) return { os: 'wasi', architecture: 'wasm' };
  if (parts.length === 3 && parts[1]!.toLowerCase() === 'wasm') {
    throw new InvalidPlatformError(`invalid platform ${JSON.stringify(specifier)}: wasm has no variants (use ${parts[0]}/wasm)`);
  }
  switch (parts.length) {
    case 1: {
      const os = normalizeOS(parts[0]!);
      if (KNOWN_OS.has(os)) {
        const host = hostPlatform();
        return platformOf(os, host.architecture, host.architecture === 'arm' && host.variant !== 'v7' ? (host.variant ?? '') : '');
      }
      const [a, v] = normalizeArch(parts[0]!, '');
      if (KNOWN_ARCH.has(a)) return platformOf(hostPlatform().os, a, a === 'arm' && v === 'v7' ? '' : v);
      throw new InvalidPlatformError(`invalid platform ${JSON.stringify(specifier)}: unknown operating system or architecture`);
    }
    case 2: {
      const [a, v] = normalizeArch(parts[1]!, '');
      return platformOf(normalizeOS(parts[0]!), a, a === 'arm' && v === 'v7' ? '' : v);
    }
    case 3: {
      const [a, v] = normalizeArch(parts[1]!, parts[2]!);
      return platformOf(normalizeOS(parts[0]!), a, v);
    }
    default:
      throw new InvalidPlatformError(`invalid platform ${JSON.stringify(specifier)}: expected os/arch[/variant], e.g. linux/arm64/v8`);
  }
}

/**
 * Canonical form of a platform: lowercase, aliases resolved (aarch64→arm64, x86_64→amd64, armhf→arm/v7,
 * i386→386, macos→darwin), and the default variant filled in (arm64→v8, arm→v7; amd64/v1→amd64).
 * Two platforms are the same platform when their normalised forms are equal.
 */
export function normalizePlatform(p: Platform): Platform {
  const [a, v0] = normalizeArch(p.architecture, p.variant ?? '');
  const v = a === 'arm64' && v0 === '' ? 'v8' : v0;
  const out = platformOf(normalizeOS(p.os), a, v);
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features']?.length) out['os.features'] = [...p['os.features']];
  return out;
}

/** `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The platform this process runs on, normalised. */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform === 'sunos' ? 'solaris' : process.platform;
  const a = nodeArch();
  switch (a) {
    case 'x64':
      return { os, architecture: 'amd64' };
    case 'arm64':
      return { os, architecture: 'arm64', variant: 'v8' };
    case 'arm': {
      const armVersion = (process.config.variables as Record<string, unknown>)['arm_version'];
      return { os, architecture: 'arm', variant: `v${typeof armVersion === 'string' && armVersion ? armVersion : '7'}` };
    }
    case 'ia32':
      return { os, architecture: '386' };
    case 'ppc64':
      return { os, architecture: endianness() === 'LE' ? 'ppc64le' : 'ppc64' };
    case 'mipsel':
      return { os, architecture: 'mipsle' };
    default:
      return { os, architecture: a };
  }
}

/** True when `have` is exactly the platform `want` names (after normalising both). */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture || (w.variant ?? '') !== (h.variant ?? '')) return false;
  // An os.version asked for must be met exactly (Windows images are tied to the host build).
  if (w['os.version'] && h['os.version'] && w['os.version'] !== h['os.version']) return false;
  return true;
}

/**
 * The platforms that can run on `p`, best first, as containerd's `platforms.Only` orders them:
 * amd64/vN accepts vN-1…v1 then 386; arm/vN accepts vN-1…v5; arm64 accepts arm/v8…v5.
 * With `strict` only `p` itself (containerd's OnlyStrict).
 */
export function compatiblePlatforms(p: Platform, opts: { strict?: boolean } = {}): Platform[] {
  const n = normalizePlatform(p);
  const out: Platform[] = [n];
  if (opts.strict) return out;
  const same = (architecture: string, variant: string) => ({ ...platformOf(n.os, architecture, variant), ...(n['os.version'] ? { 'os.version': n['os.version'] } : {}) });
  const armFrom = (version: number) => {
    for (let v = version; v >= 5; v--) out.push(same('arm', `v${v}`));
  };
  switch (n.architecture) {
    case 'amd64': {
      const level = Number.parseInt((n.variant ?? '').replace(/^v/, ''), 10);
      if (level > 1) for (let v = level - 1; v >= 1; v--) out.push(same('amd64', v === 1 ? '' : `v${v}`));
      out.push(same('386', ''));
      break;
    }
    case 'arm': {
      const version = Number.parseInt((n.variant ?? '').replace(/^v/, ''), 10);
      if (version > 5) armFrom(version - 1);
      break;
    }
    case 'arm64': {
      // arm64/v9 runs arm64/v8 images; arm64 runs 32-bit arm of the same version and below.
      const major = Number.parseInt((n.variant ?? 'v8').replace(/^v/, ''), 10) || 8;
      for (let v = major - 1; v >= 8; v--) out.push(same('arm64', `v${v}`));
      armFrom(major);
      break;
    }
  }
  return out;
}

/**
 * The index entry that best serves `want`: the first of compatiblePlatforms(want) that some entry has;
 * among equal entries the first listed. Entries without a platform (attestations, unknown/unknown) are
 * never chosen. Throws NoMatchingPlatformError listing what the index offers.
 */
export function selectManifest(index: ImageIndex, want: Platform, opts: { strict?: boolean; ref?: string } = {}): Descriptor {
  const candidates = index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown' && d.platform.architecture !== 'unknown');
  for (const p of compatiblePlatforms(want, opts)) {
    const hit = candidates.find((d) => platformMatches(p, d.platform!));
    if (hit) return hit;
  }
  const available = [...new Set(candidates.map((d) => formatPlatform(normalizePlatform(d.platform!))))];
  const what = opts.ref ? ` for ${opts.ref}` : '';
  throw new NoMatchingPlatformError(
    `no image${what} matches platform ${formatPlatform(normalizePlatform(want))}; available: ${available.length ? available.join(', ') : '(none)'}`,
  );
}
