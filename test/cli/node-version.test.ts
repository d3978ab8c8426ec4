// kiln on a Node older than package.json's engines (Debian 12's own Node 18) says so in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../../../bin/kiln.js', import.meta.url));

test('an unsupported Node gets one line naming the version kiln needs, and exit 1', () => {
  const code = `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '18.19.0' } }); await import(${JSON.stringify(entry)});`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'kiln: Node.js 18.19.0 is not supported; kiln needs Node.js 20.20 or newer (see package.json "engines")\n');
  const ok = spawnSync(process.execPath, [entry, '--version'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
});
