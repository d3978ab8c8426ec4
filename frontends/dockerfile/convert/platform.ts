// Platform strings (containerd's platforms.Parse/Format, the parts BuildKit relies on) and the automatic
// platform ARGs (TARGETPLATFORM, BUILDARCH, …).
import type { GraphPlatform } from '../../../solver/graph/ops.js';
import { DockerfileSyntaxError } from '../errors.js';

const KNOWN_OS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'illumos', 'ios', 'js', 'linux', 'netbsd', 'openbsd', 'plan9', 'solaris', 'wasip1', 'windows']);
const KNOWN_ARCH = new Set(['386', 'amd64', 'arm', 'arm64', 'loong64', 'mips', 'mips64', 'mips64le', 'mipsle', 'ppc64', 'ppc64le', 'riscv64', 's390x', 'wasm', 'sparc64']);

function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  const a = arch.toLowerCase();
  const v = variant.toLowerCase();
  switch (a) {
    case 'i386': case 'i486': case 'i586': case 'i686': return { architecture: '386', variant: '' };
    case 'x86_64': case 'x86-64': case 'amd64': return { architecture: 'amd64', variant: v === 'v1' ? '' : v };
    case 'aarch64': case 'arm64': return { architecture: 'arm64', variant: v === '8' || v === 'v8.0' ? 'v8' : v };
    case 'armhf': return { architecture: 'arm', variant: 'v7' };
    case 'armel': return { architecture: 'arm', variant: 'v6' };
    case 'arm': return { architecture: 'arm', variant: v === '' || v === '7' ? 'v7' : /^\d$/.test(v) ? 'v' + v : v };
    default: return { architecture: a, variant: v };
  }
}

/** `windows(10.0.20348)` → the OS and its version (containerd's platform syntax since 2.0). */
export function splitOSVersion(os: string): { os: string; osVersion?: string } | undefined {
  const m = /^([^()]*)(?:\(([^()]*)\))?$/.exec(os);
  if (!m) return undefined;
  return m[2] !== undefined ? { os: m[1]!, osVersion: m[2] } : { os: m[1]! };
}

/**
 * Parses `os[(osversion)][/arch[/variant]]` (or a bare arch); `defaults` supplies what is left out. The
 * graph's platform has no OS version: a version is accepted and checked for form, and the stage's image
 * keeps the version of its base.
 */
export function parsePlatform(spec: string, defaults: GraphPlatform): GraphPlatform {
  const parts = spec.split('/');
  const withVersion = splitOSVersion(parts[0]!);
  if (withVersion?.osVersion !== undefined) parts[0] = withVersion.os;
  const bad = (): never => { throw new DockerfileSyntaxError(`${JSON.stringify(spec)}: unknown operating system or architecture: invalid argument`); };
  if (parts.some((p) => p === '') || parts.length > 3) bad();
  if (parts.length === 1) {
    const p = parts[0]!.toLowerCase();
    if (KNOWN_OS.has(p)) return p === defaults.os ? { ...defaults } : { os: p, architecture: defaults.architecture };
    const n = normalizeArch(p, '');
    if (!KNOWN_ARCH.has(n.architecture)) bad();
    return withVariant({ os: defaults.os, architecture: n.architecture }, n.variant);
  }
  const os = parts[0]!.toLowerCase();
  if (!KNOWN_OS.has(os)) bad();
  const n = normalizeArch(parts[1]!, parts[2] ?? '');
  if (!KNOWN_ARCH.has(n.architecture)) bad();
  return withVariant({ os, architecture: n.architecture }, n.variant);
}

function withVariant(p: GraphPlatform, variant: string): GraphPlatform {
  return variant ? { ...p, variant } : p;
}

export function formatPlatform(p: GraphPlatform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x).join('/');
}

export function samePlatform(a: GraphPlatform, b: GraphPlatform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** The automatic platform ARGs plus TARGETSTAGE, in BuildKit's order; --build-arg overrides them. */
export function defaultPlatformArgs(build: GraphPlatform, target: GraphPlatform, targetStage: string, overrides: Record<string, string>): [string, string][] {
  const pairs: [string, string][] = [
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage || 'default'],
  ];
  return pairs.map(([k, v]) => [k, Object.hasOwn(overrides, k) ? overrides[k]! : v]);
}
