// kiln serve as a shared builder, tried as a hostile tenant would: crafted context manifests sent with raw
// protocol messages (symlinks out of the context, hard links to the builder's files and to another
// tenant's synced blobs), oversized unauthenticated gRPC frames, cancelled queued builds, corrupt blobs
// at export, a tenant over its disk quota, and builder paths in errors sent to a remote client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { buildSuite } from '../helpers/suite.js';
import { serve, rawManifest, rawSolve, rawStart, type Served, type RawFile } from '../daemon/serve-helpers.js';
import { listTar } from '../daemon/tar-list.js';

const suite = buildSuite();
let dir: string;
let server: Served;
const ALICE = 'alice-token-0123456789';
const BOB = 'bob-token-0123456789';

/** A file outside every state dir whose content, mtime and directory must never change. */
let canary: { dir: string; file: string; text: string; mtimeMs: number };

function canaryUnchanged(): void {
  assert.equal(readFileSync(canary.file, 'utf8'), canary.text);
  assert.equal(statSync(canary.file).mtimeMs, canary.mtimeMs);
  assert.deepEqual(readdirSync(canary.dir), ['canary.txt']);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-sec-serve-'));
  writeFileSync(join(dir, 'tokens'), `alice:${ALICE}\nbob:${BOB}\n`);
  const cdir = mkdtempSync(join(tmpdir(), 'kiln-canary-'));
  const text = `canary-${randomBytes(8).toString('hex')}\n`;
  writeFileSync(join(cdir, 'canary.txt'), text);
  canary = { dir: cdir, file: join(cdir, 'canary.txt'), text, mtimeMs: statSync(join(cdir, 'canary.txt')).mtimeMs };
  server = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--token-file', join(dir, 'tokens'), '--max-parallel', '1']);
});
after(async () => {
  await server?.stop();
});

const tarOut = [{ type: 'tar', attrs: {}, names: [], push: false }];

async function bobBuilds(files: RawFile[], dockerfile = 'FROM scratch\nCOPY . /\n') {
  const { entries, contents } = rawManifest([{ path: 'Dockerfile', content: dockerfile }, ...files]);
  return rawSolve(server.addr, BOB, rawStart(dockerfile, entries, { outputs: tarOut }), contents);
}

test('context sync: a hard link through a symlink to another tenant\'s synced blob is refused, nothing of it reaches the image', async () => {
  const secret = `alice-secret-${randomBytes(8).toString('hex')}\n`;
  const a = rawManifest([{ path: 'Dockerfile', content: 'FROM scratch\nCOPY s.txt /\n' }, { path: 's.txt', content: secret }]);
  const first = await rawSolve(server.addr, ALICE, rawStart('FROM scratch\nCOPY s.txt /\n', a.entries), a.contents);
  assert.equal(first.code, undefined, first.details);
  const hex = createHash('sha256').update(secret).digest('hex');
  const blobs = join(server.root, 'tenants', 'alice', 'sync', 'blobs');
  assert.ok(readdirSync(blobs).includes(hex), 'alice\'s content is in her store');

  const r = await bobBuilds([{ path: 'l', symlink: blobs }, { path: 'x', hardlinkTo: `l/${hex}` }]);
  assert.equal(r.code, grpc.status.INVALID_ARGUMENT, r.details);
  assert.equal(r.details, `context sync: "x" is a hard link to "l/${hex}", which is not a regular file of this manifest`);
  for (const out of r.outputs.values()) assert.ok(!out.includes(secret.trim()), 'alice\'s secret is not in bob\'s output');
});

test('context sync: `l -> /` then a hard link to l/<host file> never copies the builder\'s file into the image', async () => {
  const r = await bobBuilds([{ path: 'h', symlink: '/' }, { path: 'y', hardlinkTo: `h${canary.file}` }]);
  assert.equal(r.code, grpc.status.INVALID_ARGUMENT, r.details);
  assert.match(r.details!, /^context sync: "y" is a hard link to "h\/.*", which is not a regular file of this manifest$/);
  for (const out of r.outputs.values()) assert.ok(!out.includes(canary.text.trim()));
  canaryUnchanged();
});

test('context sync: a file or directory under a symlink of the manifest is refused; nothing is written through it', async () => {
  const r = await bobBuilds([{ path: 'w', symlink: canary.dir }, { path: 'w/pwned.txt', content: 'written through a symlink\n' }]);
  assert.equal(r.code, grpc.status.INVALID_ARGUMENT, r.details);
  assert.equal(r.details, 'context sync: "w/pwned.txt" is inside "w", which the manifest lists as a symlink');
  const d = await bobBuilds([{ path: 'v', symlink: canary.dir }, { path: 'v/sub', dir: true, mode: 0o777 }]);
  assert.equal(d.code, grpc.status.INVALID_ARGUMENT, d.details);
  // A hard link to a symlink of the manifest (which would carry its target's meaning into the image).
  const s = await bobBuilds([{ path: 's', symlink: canary.file }, { path: 't', hardlinkTo: 's' }]);
  assert.equal(s.code, grpc.status.INVALID_ARGUMENT, s.details);
  canaryUnchanged();
  assert.equal(statSync(canary.dir).mode & 0o777, 0o700, 'the canary dir keeps its mode');
});

test('context sync: symlinks are stored as symlinks (never followed), hard links between files of the manifest still work', async () => {
  const r = await bobBuilds([
    { path: 'root', symlink: '/' },
    { path: 'c', symlink: canary.file },
    { path: 'a.txt', content: 'alpha\n' },
    { path: 'b.txt', hardlinkTo: 'a.txt' },
  ]);
  assert.equal(r.code, undefined, r.details);
  const entries = listTar(r.outputs.get(0)!);
  const by = new Map(entries.map((e) => [e.name.replace(/^\.?\//, ''), e]));
  assert.equal(by.get('root')?.type, 'symlink');
  assert.equal(by.get('root')?.linkname, '/');
  assert.equal(by.get('c')?.type, 'symlink');
  assert.equal(by.get('c')?.linkname, canary.file);
  assert.equal(by.get('a.txt')?.content, 'alpha\n');
  const b = by.get('b.txt')!;
  assert.ok(b.type === 'link' ? b.linkname?.replace(/^\.?\//, '') === 'a.txt' : b.content === 'alpha\n', JSON.stringify(b));
  assert.ok(!r.outputs.get(0)!.includes(canary.text.trim()), 'the symlink\'s host target was not read');
  assert.ok(!entries.some((e) => /^(\.\/)?root\/./.test(e.name)), 'nothing under the root symlink');
  canaryUnchanged();
});
