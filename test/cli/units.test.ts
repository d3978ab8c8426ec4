import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags, flagList, flagString, flagBool } from '../../src/cli/flags.js';
import { parseMemorySize, formatSize } from '../../base/units.js';
import { resolveUser } from '../../native/user.js';

const specs = [
  { name: 'rm', type: 'bool' as const, description: '' },
  { name: 'env', short: 'e', type: 'string' as const, multiple: true, description: '' },
  { name: 'tty', short: 't', type: 'bool' as const, description: '' },
  { name: 'interactive', short: 'i', type: 'bool' as const, description: '' },
  { name: 'platform', type: 'string' as const, description: '' },
];

test('flags: docker conventions', () => {
  const p = parseFlags('kiln run', ['--rm', '-it', '-e', 'A=1', '-eB=2', '--env=C=3', '--platform', 'linux/arm64', 'img', 'ls', '-l', '--rm'], specs, { stopAtPositional: true });
  assert.equal(flagBool(p, 'rm'), true);
  assert.equal(flagBool(p, 'tty'), true);
  assert.equal(flagBool(p, 'interactive'), true);
  assert.deepEqual(flagList(p, 'env'), ['A=1', 'B=2', 'C=3']);
  assert.equal(flagString(p, 'platform'), 'linux/arm64');
  assert.deepEqual(p.positionals, ['img', 'ls', '-l', '--rm']);
  assert.throws(() => parseFlags('kiln run', ['--nope'], specs), /kiln run: unknown flag: --nope/);
  assert.throws(() => parseFlags('kiln run', ['--platform'], specs), /flag needs an argument: --platform/);
  assert.throws(() => parseFlags('kiln run', ['-x'], specs), /unknown shorthand flag: 'x'/);
  assert.throws(() => parseFlags('kiln run', ['--rm=maybe'], specs), /expected true or false/);
});

test('units: memory sizes and display sizes', () => {
  assert.equal(parseMemorySize('--memory', '512'), 512);
  assert.equal(parseMemorySize('--memory', '64k'), 65536);
  assert.equal(parseMemorySize('--memory', '32m'), 32 * 1024 * 1024);
  assert.equal(parseMemorySize('--memory', '1g'), 1024 ** 3);
  assert.equal(parseMemorySize('--memory', '1.5g'), 1.5 * 1024 ** 3);
  assert.throws(() => parseMemorySize('--memory', 'lots'), /invalid value "lots" for flag --memory/);
  assert.equal(formatSize(999), '999B');
  assert.equal(formatSize(1_234_567), '1.23MB');
});

test('user resolution as runc does it', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n';
  const group = 'root:x:0:\nwheel:x:10:app\nstaff:x:50:app,nobody\napp:x:1000:\n';
  assert.deepEqual(resolveUser('app', { passwd, group }), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50], home: '/home/app' });
  assert.deepEqual(resolveUser('1000', { passwd, group }), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50], home: '/home/app' });
  assert.deepEqual(resolveUser('app:staff', { passwd, group }), { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' });
  assert.deepEqual(resolveUser('4242', { passwd, group }), { uid: 4242, gid: 0, additionalGids: [0], home: '/' });
  assert.deepEqual(resolveUser('4242:7', { passwd, group }), { uid: 4242, gid: 7, additionalGids: [7], home: '/' });
  assert.deepEqual(resolveUser('', { passwd, group }).uid, 0);
  assert.throws(() => resolveUser('ghost', { passwd, group }), /unable to find user ghost: no matching entries in passwd file/);
  assert.throws(() => resolveUser('app:ghosts', { passwd, group }), /unable to find group ghosts/);
  assert.deepEqual(resolveUser('0', {}), { uid: 0, gid: 0, additionalGids: [0], home: '/' });
});
