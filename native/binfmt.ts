// Tells whether this host can run a given platform's binaries: natively, or through a registered
// binfmt_misc handler (qemu-user-static). It only reads /proc/sys/fs/binfmt_misc; registering handlers is
// someone else's job.
import { readFileSync, readdirSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { hostPlatform } from '../base/oci/platform.js';

export interface Platform { os: string; architecture: string; variant?: string }

export type EmulatorVerdict =
  | { runnable: true; native: true }
  | { runnable: true; native: false; handler: string; interpreter: string; fixBinary: boolean }
  | { runnable: false; reason: string };

/** OCI architecture names -> qemu-user binary suffix. */
const qemuNames: Record<string, string> = {
  arm64: 'aarch64', arm: 'arm', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', amd64: 'x86_64',
  '386': 'i386', mips64le: 'mips64el', loong64: 'loongarch64',
};

/** The OCI architectures this host's CPU runs without emulation. */
function nativeArchitectures(): string[] {
  switch (arch()) {
    case 'x64': return ['amd64', '386'];
    case 'arm64': return ['arm64', 'arm'];
    case 'arm': return ['arm'];
    case 'ppc64': return ['ppc64le'];
    case 's390x': return ['s390x'];
    case 'riscv64': return ['riscv64'];
    default: return [];
  }
}

interface BinfmtEntry { name: string; enabled: boolean; interpreter: string; flags: string }

function readEntries(dir: string): BinfmtEntry[] | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  if (!names.includes('register')) return undefined; // the binfmt_misc filesystem is not mounted
  const out: BinfmtEntry[] = [];
  for (const name of names) {
    if (name === 'register' || name === 'status') continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    const field = (key: string) => text.split('\n').find((l) => l.startsWith(key + ' '))?.slice(key.length + 1).trim() ?? '';
    out.push({ name, enabled: text.startsWith('enabled'), interpreter: field('interpreter'), flags: field('flags:') || field('flags') });
  }
  return out;
}

/** Whether `platform` runs here, and how. binfmtDir is for tests. */
export function emulatorFor(platform: Platform, binfmtDir = '/proc/sys/fs/binfmt_misc'): EmulatorVerdict {
  const name = `${platform.os}/${platform.architecture}${platform.variant ? '/' + platform.variant : ''}`;
  if (platform.os !== 'linux') return { runnable: false, reason: `cannot run ${name} here: only linux containers can run` };
  if (nativeArchitectures().includes(platform.architecture)) return { runnable: true, native: true };
  const qemu = qemuNames[platform.architecture];
  if (!qemu) return { runnable: false, reason: `cannot run ${name} here: no emulator is known for architecture ${platform.architecture}` };
  const entries = readEntries(binfmtDir);
  if (!entries) {
    return { runnable: false, reason: `cannot run ${name} here: binfmt_misc is not mounted, so no qemu-${qemu} handler is registered (install qemu-user-static and binfmt-support)` };
  }
  const entry = entries.find((e) => e.name === `qemu-${qemu}`) ??
    entries.find((e) => /qemu-/.test(e.interpreter) && e.interpreter.replace(/-static$/, '').endsWith(`qemu-${qemu}`));
  if (!entry) {
    return { runnable: false, reason: `cannot run ${name} here: no binfmt_misc handler for qemu-${qemu} is registered (install qemu-user-static and binfmt-support)` };
  }
  if (!entry.enabled) {
    return { runnable: false, reason: `cannot run ${name} here: the binfmt_misc handler ${entry.name} is disabled (echo 1 > ${join(binfmtDir, entry.name)})` };
  }
  // Without the F flag the kernel opens the interpreter lazily by path, which fails inside the container's
  // root; with F it was opened at registration and works after pivot_root.
  const fixBinary = entry.flags.includes('F');
  if (!fixBinary) {
    return { runnable: false, reason: `cannot run ${name} here: the binfmt_misc handler ${entry.name} lacks the F (fix binary) flag, so ${entry.interpreter} cannot be found inside a container (re-register it with flags F)` };
  }
  return { runnable: true, native: false, handler: entry.name, interpreter: entry.interpreter, fixBinary };
}

/** Foreign platforms a builder offers when their emulator is registered (BuildKit's usual set). */
const EMULATED: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 'riscv64' },
  { os: 'linux', architecture: 'ppc64le' },
  { os: 'linux', architecture: 's390x' },
];

/**
 * The platforms this host runs: its own first, then each foreign one whose emulator emulatorFor accepts
 * (registered, enabled, with the F flag). `kiln serve` offers these. binfmtDir is for tests.
 */
export function runnablePlatforms(binfmtDir = '/proc/sys/fs/binfmt_misc'): Platform[] {
  const out: Platform[] = [hostPlatform()];
  for (const p of EMULATED) {
    const v = emulatorFor(p, binfmtDir);
    if (v.runnable && !v.native) out.push(p);
  }
  return out;
}
