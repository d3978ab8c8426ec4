// emulatorFor: native platforms, and the verdicts for registered / missing / flagless binfmt_misc handlers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, arch } from 'node:os';
import { join } from 'node:path';
import { emulatorFor, runnablePlatforms } from '../../native/binfmt.js';

const entry = (interp: string, flags: string, enabled = true) =>
  `${enabled ? 'enabled' : 'disabled'}\ninterpreter ${interp}\nflags: ${flags}\noffset 0\nmagic 7f454c46\nmask fffffff\n`;

function binfmtDir(t: { after: (fn: () => void) => void }, entries: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-binfmt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'register'), '');
  writeFileSync(join(dir, 'status'), 'enabled\n');
  for (const [name, text] of Object.entries(entries)) writeFileSync(join(dir, name), text);
  return dir;
}

test('amd64 and 386 run natively on this x86_64 host', () => {
  assert.equal(arch(), 'x64');
  assert.deepEqual(emulatorFor({ os: 'linux', architecture: 'amd64' }), { runnable: true, native: true });
  assert.deepEqual(emulatorFor({ os: 'linux', architecture: '386' }), { runnable: true, native: true });
});

test('on this machine (binfmt_misc not mounted) arm64 is refused with a clear reason', () => {
  const v = emulatorFor({ os: 'linux', architecture: 'arm64', variant: 'v8' }, '/nonexistent/binfmt_misc');
  assert.equal(v.runnable, false);
  assert.match((v as { reason: string }).reason, /^cannot run linux\/arm64\/v8 here: .*qemu-aarch64.*install qemu-user-static and binfmt-support/);
});

test('a registered handler with the F flag makes arm64 runnable', (t) => {
  const dir = binfmtDir(t, { 'qemu-aarch64': entry('/usr/libexec/qemu-binfmt/aarch64-binfmt-P', 'POCF') });
  const v = emulatorFor({ os: 'linux', architecture: 'arm64' }, dir);
  assert.deepEqual(v, { runnable: true, native: false, handler: 'qemu-aarch64', interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', fixBinary: true });
});

test('missing, disabled and flagless handlers each get their own reason', (t) => {
  const dir = binfmtDir(t, {
    'qemu-arm': entry('/usr/bin/qemu-arm-static', 'OC', true),
    'qemu-riscv64': entry('/usr/bin/qemu-riscv64-static', 'F', false),
  });
  const missing = emulatorFor({ os: 'linux', architecture: 's390x' }, dir);
  assert.equal((missing as { reason: string }).reason,
    'cannot run linux/s390x here: no binfmt_misc handler for qemu-s390x is registered (install qemu-user-static and binfmt-support)');
  assert.match((emulatorFor({ os: 'linux', architecture: 'arm', variant: 'v7' }, dir) as { reason: string }).reason, /lacks the F \(fix binary\) flag/);
  assert.match((emulatorFor({ os: 'linux', architecture: 'riscv64' }, dir) as { reason: string }).reason, /handler qemu-riscv64 is disabled/);
  assert.match((emulatorFor({ os: 'windows', architecture: 'amd64' }, dir) as { reason: string }).reason, /only linux containers/);
});

test('the platforms a builder offers: the host first, then only emulators emulatorFor accepts', (t) => {
  const dir = binfmtDir(t, {
    'qemu-aarch64': entry('/usr/libexec/qemu-binfmt/aarch64-binfmt-P', 'POCF'),
    // Registered and enabled, but without F: a RUN would fail inside the container, so it is not offered.
    'qemu-arm': entry('/usr/bin/qemu-arm-static', 'OC', true),
    'qemu-riscv64': entry('/usr/bin/qemu-riscv64-static', 'F', false),
    'qemu-s390x': entry('/usr/bin/qemu-s390x-static', 'F'),
  });
  assert.deepEqual(runnablePlatforms(dir), [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
    { os: 'linux', architecture: 's390x' },
  ]);
  assert.deepEqual(runnablePlatforms('/nonexistent/binfmt_misc'), [{ os: 'linux', architecture: 'amd64' }]);
});
