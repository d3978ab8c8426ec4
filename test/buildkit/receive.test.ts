// The builder's side of the client's file sync (fsutil's protocol), fed crafted packets: a client that
// sends paths out of its dir, writes through a symlink, sends data nobody asked for, or disappears
// mid-upload cannot write outside the sync dir, and leaves nothing a later sync trusts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiveDir } from '../../src/buildkit/fsutil-receive.js';
import { PACKET, packetCodec, type Packet, type Stat } from '../../src/buildkit/fsutil-packets.js';
import { GO_MODE } from '../../src/buildkit/file-mode.js';
import type { ClientSession } from '../../src/buildkit/session-grpc.js';

const codec = packetCodec();
const T = 1_700_000_000_000_000_000;

function stat(path: string, kind: 'file' | 'dir' | 'symlink', extra: Partial<Stat> = {}): Packet {
  const mode = kind === 'dir' ? (GO_MODE.dir | 0o755) >>> 0 : kind === 'symlink' ? (GO_MODE.symlink | 0o777) >>> 0 : 0o644;
  return { type: PACKET.STAT, stat: { path, mode, uid: 0, gid: 0, size: 0, modTime: T, linkname: '', ...extra } };
}

/** A client that sends `script` (after the walk, data comes when asked) and records what it was sent. */
function fakeSession(walk: Packet[], files: Record<number, Buffer | 'vanish'> = {}, extra: Packet[] = []) {
  const sent: Packet[] = [];
  const queue: (Buffer | undefined)[] = [...walk, { type: PACKET.STAT }].map((p) => codec.encode(p));
  queue.push(...extra.map((p) => codec.encode(p)));
  let waiter: ((b: Buffer | undefined) => void) | undefined;
  const push = (b: Buffer | undefined) => (waiter ? (waiter(b), (waiter = undefined)) : queue.push(b));
  const call = {
    async recv() {
      if (queue.length) return queue.shift();
      return new Promise<Buffer | undefined>((r) => (waiter = r));
    },
    async send(buf: Buffer) {
      const p = codec.decode(buf);
      sent.push(p);
      if (p.type === PACKET.REQ) {
        const content = files[p.ID!];
        if (content === 'vanish') push(undefined);
        else if (content) {
          push(codec.encode({ type: PACKET.DATA, ID: p.ID, data: content }));
          push(codec.encode({ type: PACKET.DATA, ID: p.ID }));
        }
      }
      if (p.type === PACKET.FIN) push(codec.encode({ type: PACKET.FIN }));
    },
    end() {},
    cancel() {},
  };
  const session = { supports: () => true, open: () => call } as unknown as ClientSession;
  return { session, sent };
}

function setup() {
  const base = mkdtempSync(join(tmpdir(), 'kiln-recv-'));
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'canary'), 'canary\n');
  const dest = join(base, 'sync', 'ctx');
  mkdirSync(join(base, 'sync'));
  const canary = () => ({ files: existsSync(join(outside, 'pwned')), content: readFileSync(join(outside, 'canary'), 'utf8'), mtime: statSync(join(outside, 'canary')).mtimeMs });
  return { base, outside, dest, canary };
}

test('paths out of the dir (.., absolute, empty components) are refused before anything is written', async () => {
  for (const bad of ['../outside/pwned', '/etc/pwned', 'a//b', './x']) {
    const { dest, canary } = setup();
    const before = canary();
    const { session } = fakeSession([stat(bad, 'file', { size: 2 })], { 0: Buffer.from('x\n') });
    await assert.rejects(receiveDir(session, dest, { dirName: 'context' }), { message: `the client sent an invalid path in its files: ${JSON.stringify(bad)}` });
    assert.deepEqual(canary(), before);
  }
});

test('a file under a symlink the client sent is refused: nothing is written through it', async () => {
  const { dest, outside, canary } = setup();
  const before = canary();
  const { session } = fakeSession([stat('link', 'symlink', { linkname: outside }), stat('link/pwned', 'file', { size: 2 })], { 1: Buffer.from('x\n') });
  await assert.rejects(receiveDir(session, dest, { dirName: 'context' }), { message: 'the client sent "link/pwned" before (or without) its parent directory' });
  assert.deepEqual(canary(), before);
});

test('a symlink left by an earlier sync is replaced, not followed, when the client now has a dir there', async () => {
  const { dest, outside, canary } = setup();
  mkdirSync(dest);
  symlinkSync(outside, join(dest, 'd'));
  const before = canary();
  const { session } = fakeSession([stat('d', 'dir'), stat('d/pwned', 'file', { size: 3 })], { 1: Buffer.from('ok\n') });
  const r = await receiveDir(session, dest, { dirName: 'context' });
  assert.equal(r.contentBytes, 3);
  assert.equal(readFileSync(join(dest, 'd', 'pwned'), 'utf8'), 'ok\n');
  assert.ok(statSync(join(dest, 'd')).isDirectory());
  assert.deepEqual(canary(), before);
});

test('data for a file that was not requested is refused', async () => {
  const { dest } = setup();
  const { session } = fakeSession([stat('a', 'file', { size: 1 })], { 0: Buffer.from('a') }, [{ type: PACKET.DATA, ID: 7, data: Buffer.from('zz') }]);
  await assert.rejects(receiveDir(session, dest, { dirName: 'context' }), { message: 'protocol: the client sent data for file 7 that was not requested' });
});

test('a client gone mid-upload leaves no sync record: the next sync asks for every file again; an unchanged one then asks for none', async () => {
  const { dest } = setup();
  const walk = [stat('a.txt', 'file', { size: 2 }), stat('b.txt', 'file', { size: 2 })];
  const gone = fakeSession(walk, { 0: Buffer.from('a\n'), 1: 'vanish' });
  await assert.rejects(receiveDir(gone.session, dest, { dirName: 'context' }), /closed its files \(context\) before sending them all/);
  const again = fakeSession(walk, { 0: Buffer.from('a\n'), 1: Buffer.from('b\n') });
  const r = await receiveDir(again.session, dest, { dirName: 'context' });
  assert.deepEqual(again.sent.filter((p) => p.type === PACKET.REQ).map((p) => p.ID).sort(), [0, 1]);
  assert.equal(r.contentBytes, 4);
  const unchanged = fakeSession(walk);
  const r2 = await receiveDir(unchanged.session, dest, { dirName: 'context' });
  assert.equal(unchanged.sent.filter((p) => p.type === PACKET.REQ).length, 0);
  assert.equal(r2.contentBytes, 0);
  assert.equal(readFileSync(join(dest, 'b.txt'), 'utf8'), 'b\n');
  // A file the client no longer has goes from the synced dir.
  const fewer = fakeSession([walk[0]!]);
  await receiveDir(fewer.session, dest, { dirName: 'context' });
  assert.ok(!existsSync(join(dest, 'b.txt')));
});
