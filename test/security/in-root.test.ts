// The root-confined path primitive every caller uses for paths from images, layers, contexts and tenants:
// real symlinks that point out of the root (absolute, relative with `..`, chains, loops) resolve inside it,
// and a canary file outside the root is never read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileInRoot, resolveInRoot } from '../../native/in-root.js';

function tree() {
  const top = mkdtempSync(join(tmpdir(), 'kiln-inroot-'));
  const root = join(top, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(top, 'canary'), 'HOST SECRET');
  writeFileSync(join(root, 'canary'), 'inside');
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  return { top, root };
}

test('symlinks resolve inside the root: absolute, relative with .., chained', () => {
  const { top, root } = tree();
  symlinkSync('/', join(root, 'hostroot'));
  symlinkSync('../../../../../canary', join(root, 'up'));
  symlinkSync(top, join(root, 'abs-top'));
  symlinkSync('hostroot/etc', join(root, 'chain'));
  assert.equal(resolveInRoot(root, 'hostroot/canary'), join(root, 'canary'));
  assert.equal(resolveInRoot(root, '/up'), join(root, 'canary'));
  assert.equal(resolveInRoot(root, '../../canary'), join(root, 'canary'));
  assert.equal(resolveInRoot(root, 'chain/passwd'), join(root, 'etc', 'passwd'));
  // an absolute link to the host's copy of the root's parent lands on a path under the root, not on the host
  assert.ok(resolveInRoot(root, 'abs-top/canary').startsWith(root + '/'));
  assert.equal(readFileInRoot(root, 'up', { maxBytes: 100 })?.toString(), 'inside');
  assert.equal(readFileInRoot(root, 'abs-top/canary', { maxBytes: 100 }), undefined);
  // the final component can be kept as the link itself
  assert.equal(resolveInRoot(root, 'hostroot', { followFinal: false }), join(root, 'hostroot'));
  // missing components are appended lexically, `..` through them stays inside
  assert.equal(resolveInRoot(root, 'no/such/../../../../x'), join(root, 'x'));
});

test('loops, FIFOs, devices and oversized files are refused, not followed, waited on or read', () => {
  const { root } = tree();
  symlinkSync('b', join(root, 'a'));
  symlinkSync('a', join(root, 'b'));
  assert.throws(() => resolveInRoot(root, 'a/x'), /too many levels of symbolic links/);
  mkfifoSync(join(root, 'etc', 'group'));
  assert.throws(() => readFileInRoot(root, '/etc/group', { maxBytes: 1 << 20 }), /not a regular file/);
  execFileSync('mknod', [join(root, 'zero'), 'c', '1', '5']);
  assert.throws(() => readFileInRoot(root, '/zero', { maxBytes: 1 << 20 }), /not a regular file/);
  writeFileSync(join(root, 'big'), Buffer.alloc(4096));
  assert.throws(() => readFileInRoot(root, '/big', { maxBytes: 1024 }), /larger than 1024 bytes/);
  assert.equal(readFileInRoot(root, '/etc/missing', { maxBytes: 10 }), undefined);
});

function mkfifoSync(p: string) {
  execFileSync('mkfifo', [p]);
}
