// Registers Debian's qemu-user-static interpreters with binfmt_misc (kiln setup binfmt, and on demand
// when a foreign RUN or `kiln run` needs one and kiln runs as root): mounts binfmt_misc if needed and
// registers /usr/share/binfmts/qemu-<arch> with the F (fix binary) flag, so the interpreter is opened
// now and still works inside a container's root.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emulatorFor, type Platform } from './binfmt.js';
import { inUserNamespace } from './userns.js';

const BINFMT = '/proc/sys/fs/binfmt_misc';
const DEFINITIONS = '/usr/share/binfmts';

export class BinfmtSetupError extends Error {
  readonly userFacing = true;
}

const qemuArch: Record<string, string> = { arm64: 'aarch64', arm: 'arm', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', '386': 'i386', mips64le: 'mips64el' };

function mounted(): boolean {
  return existsSync(join(BINFMT, 'register'));
}

/** Registers the handler for one architecture; returns its name, or undefined when already usable. */
export function registerEmulator(platform: Platform): string | undefined {
  if (emulatorFor(platform).runnable) return undefined;
  const arch = qemuArch[platform.architecture];
  if (!arch) throw new BinfmtSetupError(`no qemu emulator is known for ${platform.os}/${platform.architecture}`);
  if (inUserNamespace)
    throw new BinfmtSetupError(`no qemu-${arch} handler is registered and rootless mode cannot register one (binfmt_misc needs real root): run as root once: kiln setup binfmt`);
  if (process.getuid?.() !== 0) throw new BinfmtSetupError(`registering qemu-${arch} needs root (run: sudo kiln setup binfmt)`);
  const defFile = join(DEFINITIONS, `qemu-${arch}`);
  if (!existsSync(defFile)) throw new BinfmtSetupError(`${defFile} is missing: apt-get install qemu-user-static`);
  if (!mounted()) {
    try {
      execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { stdio: 'ignore' });
    } catch {
      throw new BinfmtSetupError(`cannot mount binfmt_misc on ${BINFMT}`);
    }
  }
  const def = new Map(
    readFileSync(defFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(' '))
      .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1).trim()] as [string, string]),
  );
  const name = `qemu-${arch}`;
  const existing = join(BINFMT, name);
  // A handler registered without F (e.g. by binfmt-support) is replaced by one with it.
  if (existsSync(existing)) writeFileSync(existing, '-1');
  const flags = `F${def.get('preserve') === 'yes' ? 'P' : ''}${def.get('credentials') === 'yes' ? 'C' : ''}`;
  const rule = `:${name}:M:${def.get('offset') ?? '0'}:${def.get('magic')}:${def.get('mask') ?? ''}:${def.get('interpreter')}:${flags}`;
  try {
    writeFileSync(join(BINFMT, 'register'), rule);
  } catch (err) {
    throw new BinfmtSetupError(`registering ${name} with binfmt_misc failed: ${(err as Error).message}`);
  }
  return name;
}

export const EMULATED_ARCHITECTURES = Object.keys(qemuArch);
