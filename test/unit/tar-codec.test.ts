// kiln's tar codec (cache/layers/tar-*.ts) in memory: header blocks, PAX records, and writer → reader
// round trips of what tar-stream used to lose (binary xattrs, sub-second mtimes, uids above 262143) plus
// long and non-UTF-8 names, hard links and whiteout names. No root, no native helper, no files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK, checksumOf, decodeBlock, encodeBlock, formatPaxTime, MAX_OCTAL_7, newHeader, paxOverrides, readNumber, splitUstarPath, TarFormatError, type TarHeader } from '../../cache/layers/tar-header.js';
import { decodePaxRecords, encodePaxRecords, parsePaxTime } from '../../cache/layers/tar-pax.js';
import { TarReader, type TarEvent } from '../../cache/layers/tar-reader.js';
import { ChunkedOutput, TarWriter } from '../../cache/layers/tar-writer.js';
import { nameFromBytes, nameToBytes } from '../../base/raw-names.js';

/** A header for the tests: newHeader's defaults with a recent mtime. */
function h(over: Partial<TarHeader> & { name: string }): TarHeader {
  return newHeader({ mtime: { sec: 1_700_000_000, nsec: 0 }, ...over });
}

/** Writes entries (file data given per entry) into one tar buffer. */
async function pack(entries: { header: TarHeader; data?: Buffer }[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new ChunkedOutput((c) => void chunks.push(Buffer.from(c)));
  const w = new TarWriter(out);
  for (const { header, data } of entries) {
    const body = data ?? Buffer.alloc(0);
    w.writeHeader({ ...header, size: header.type === 'file' ? body.length : 0 });
    if (header.type === 'file') {
      out.append(body);
      w.padData(body.length);
    }
  }
  w.finish();
  await out.end();
  return Buffer.concat(chunks);
}

/** Reads a tar fed in chunks of `step` bytes: the headers and each entry's data. */
function unpack(tar: Buffer, step = tar.length): { header: TarHeader; data: Buffer }[] {
  const reader = new TarReader();
  const out: { header: TarHeader; data: Buffer }[] = [];
  const on = (ev: TarEvent) => {
    if (ev.kind === 'entry') out.push({ header: ev.header, data: Buffer.alloc(0) });
    else if (ev.kind === 'data') out[out.length - 1]!.data = Buffer.concat([out[out.length - 1]!.data, ev.data]);
  };
  for (let i = 0; i < tar.length; i += step) for (const ev of reader.feed(tar.subarray(i, i + step))) on(ev);
  reader.end();
  assert.ok(reader.done, 'the end-of-archive blocks were seen');
  return out;
}

const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service+ep, v2
const RAW = nameFromBytes(Buffer.from([0x61, 0xff, 0xfe, 0x2e, 0x62])); // "a\xff\xfe.b": not UTF-8

const ENTRIES: { header: TarHeader; data?: Buffer }[] = [
  { header: h({ name: 'dir/', type: 'dir', mode: 0o2755, mtime: { sec: 1_700_000_000, nsec: 123_456_789 } }) },
  { header: h({ name: 'dir/ping', mode: 0o4755, uid: 300_000, gid: 2_000_000_000, xattrs: new Map([['security.capability', CAPABILITY], ['user.zero', Buffer.from([0, 0x0a, 0x3d, 0xff])]]) }), data: Buffer.from('binary\n') },
  { header: h({ name: `${'long/'.repeat(30)}file`, mtime: { sec: 1, nsec: 1 } }), data: Buffer.alloc(1000, 7) },
  { header: h({ name: 'x'.repeat(250), mtime: { sec: 1_600_000_000, nsec: 500_000_000 } }), data: Buffer.from('no slash to split at') },
  { header: h({ name: RAW, uname: 'üser', gname: 'grüp' }), data: Buffer.from('raw name') },
  { header: h({ name: 'dir/hard', type: 'hardlink', linkname: 'dir/ping' }) },
  { header: h({ name: 'lnk', type: 'symlink', linkname: `${RAW}/${'t'.repeat(150)}` }) },
  { header: h({ name: 'dir/.wh.gone', mode: 0 }) },
  { header: h({ name: 'dir/.wh..wh..opq', mode: 0 }) },
  { header: h({ name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }) },
  { header: h({ name: 'blk', type: 'block', mode: 0o660, devmajor: 259, devminor: 1_048_575 }) },
  { header: h({ name: 'pipe', type: 'fifo', mode: 0o600, mtime: { sec: -1, nsec: 250_000_000 } }) },
  { header: h({ name: 'empty' }), data: Buffer.alloc(0) },
  { header: h({ name: 'block-sized' }), data: Buffer.alloc(BLOCK * 3, 0x41) },
];

test('writer → reader keeps every field: raw and long names, big ids, binary xattrs, ns mtimes, links, whiteouts, devices', async () => {
  const tar = await pack(ENTRIES);
  assert.equal(tar.length % BLOCK, 0);
  const back = unpack(tar);
  assert.equal(back.length, ENTRIES.length);
  for (const [i, { header, data }] of ENTRIES.entries()) {
    const got = back[i]!;
    const want = { ...header, size: header.type === 'file' ? (data?.length ?? 0) : 0 };
    assert.deepEqual(got.header, { ...want, atime: undefined }, `entry ${i} (${JSON.stringify(header.name)})`);
    assert.deepEqual(got.data, header.type === 'file' ? (data ?? Buffer.alloc(0)) : Buffer.alloc(0));
  }
  assert.deepEqual(nameToBytes(back[4]!.header.name), Buffer.from([0x61, 0xff, 0xfe, 0x2e, 0x62]), 'the raw name comes back byte for byte');
  assert.deepEqual(back[1]!.header.xattrs.get('security.capability'), CAPABILITY);
});

test('the reader gives the same entries whatever the chunk sizes (1 byte, odd sizes, whole)', async () => {
  const tar = await pack(ENTRIES);
  const whole = unpack(tar);
  for (const step of [1, 7, 511, 513, 4096]) assert.deepEqual(unpack(tar, step), whole, `chunks of ${step}`);
});

test('ustar blocks: fields that fit need no PAX; the rest go to PAX with the block clamped', () => {
  const plain = h({ name: 'a/b', uid: MAX_OCTAL_7, mtime: { sec: 5, nsec: 0 } });
  assert.equal(paxOverrides(plain).size, 0);
  const raw = decodeBlock(encodeBlock(plain));
  assert.equal(raw.uid, MAX_OCTAL_7);
  assert.equal(raw.name, 'a/b');

  // 300000 is past tar-stream's 6-digit clamp (262143) but fits the 7-digit octal field as it is.
  const mid = h({ name: 'f', uid: 300_000, gid: 262_144 });
  assert.equal(paxOverrides(mid).size, 0);
  assert.deepEqual([decodeBlock(encodeBlock(mid)).uid, decodeBlock(encodeBlock(mid)).gid], [300_000, 262_144]);
  const big = h({ name: 'f', uid: 3_000_000, gid: MAX_OCTAL_7 + 1, mtime: { sec: 5, nsec: 10 }, xattrs: new Map([['security.capability', CAPABILITY]]) });
  const pax = paxOverrides(big);
  assert.equal(pax.get('uid'), '3000000');
  assert.equal(pax.get('gid'), String(MAX_OCTAL_7 + 1));
  assert.equal(pax.get('mtime'), '5.00000001');
  assert.deepEqual(pax.get('SCHILY.xattr.security.capability'), CAPABILITY);
  assert.equal(decodeBlock(encodeBlock(big)).uid, MAX_OCTAL_7, 'the block holds the clamped value');

  // A long path splits at a slash into prefix + name; one with no usable slash does not.
  assert.deepEqual(splitUstarPath(`${'p'.repeat(150)}/${'n'.repeat(99)}`), { prefix: 'p'.repeat(150), name: 'n'.repeat(99) });
  assert.equal(splitUstarPath('n'.repeat(101)), undefined);
  assert.equal(splitUstarPath('ä'), undefined, 'non-ASCII names go to PAX');
  const split = decodeBlock(encodeBlock(h({ name: `${'p'.repeat(150)}/${'n'.repeat(99)}` })));
  assert.equal(split.name, `${'p'.repeat(150)}/${'n'.repeat(99)}`);
});

test('header checksums, octal and GNU base-256 numbers; a bad checksum is a format error', () => {
  const block = encodeBlock(h({ name: 'x', size: 12 }));
  const { unsigned } = checksumOf(block);
  assert.equal(readNumber(block, 148, 8, 'checksum'), unsigned);
  const b256 = Buffer.alloc(12);
  b256[0] = 0x80;
  b256.writeUIntBE(2 ** 40 + 3, 6, 6);
  assert.equal(readNumber(b256, 0, 12, 'size'), 2 ** 40 + 3);
  assert.equal(readNumber(Buffer.from('0000644 \0'), 0, 8, 'mode'), 0o644);
  assert.throws(() => readNumber(Buffer.from('00009\0'), 0, 6, 'mode'), TarFormatError);
  const bad = Buffer.from(block);
  bad[0] ^= 1;
  assert.throws(() => decodeBlock(bad), /checksum mismatch/);
});

test('PAX records: self-consistent lengths across digit boundaries, binary values, deletes, times', () => {
  for (const n of [1, 80, 88, 89, 90, 980, 990, 995, 9985, 9990]) {
    const records = new Map<string, string | Buffer>([['comment', 'c'.repeat(n)]]);
    const bytes = encodePaxRecords(records);
    const len = Number(bytes.toString('latin1', 0, bytes.indexOf(0x20)));
    assert.equal(len, bytes.length, `a record with a ${n}-byte value states its own length`);
    const back = new Map<string, Buffer>();
    decodePaxRecords(bytes, back);
    assert.equal(back.get('comment')?.toString(), 'c'.repeat(n));
  }
  const binary = Buffer.from([0, 1, 0x0a, 0x3d, 0x20, 0xff]);
  const into = new Map<string, Buffer>([['uid', Buffer.from('7')]]);
  decodePaxRecords(encodePaxRecords(new Map<string, string | Buffer>([['SCHILY.xattr.user.b', binary], ['uid', '']])), into);
  assert.deepEqual(into.get('SCHILY.xattr.user.b'), binary, 'newlines, "=" and NULs inside a value survive');
  assert.ok(!into.has('uid'), 'an empty value deletes the key');
  assert.throws(() => decodePaxRecords(Buffer.from('99 path=x\n'), new Map()), TarFormatError);

  assert.deepEqual(parsePaxTime('1700000000.123456789'), { sec: 1_700_000_000, nsec: 123_456_789 });
  assert.deepEqual(parsePaxTime('1.5'), { sec: 1, nsec: 500_000_000 });
  assert.deepEqual(parsePaxTime('-1.25'), { sec: -2, nsec: 750_000_000 });
  assert.deepEqual(parsePaxTime('3.1234567891'), { sec: 3, nsec: 123_456_789 }, 'digits past ns are dropped');
  for (const t of [{ sec: 0, nsec: 1 }, { sec: -2, nsec: 750_000_000 }, { sec: 1_700_000_000, nsec: 100 }, { sec: 9, nsec: 0 }]) {
    assert.deepEqual(parsePaxTime(formatPaxTime(t)), t);
  }
});

test('the reader folds GNU long names/links and global PAX headers into entries', () => {
  const blocks: Buffer[] = [];
  const meta = (flag: string, data: Buffer) => {
    blocks.push(encodeBlock(h({ name: '././@LongLink', size: data.length }), flag));
    blocks.push(Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]));
  };
  const longName = 'g/'.repeat(120) + 'file';
  meta('L', Buffer.from(longName + '\0'));
  meta('K', Buffer.from('target-' + 't'.repeat(200) + '\0'));
  blocks.push(encodeBlock(h({ name: 'short', type: 'symlink' })));
  meta('g', encodePaxRecords(new Map([['uid', '400000']])));
  blocks.push(encodeBlock(h({ name: 'after-global' })));
  blocks.push(Buffer.alloc(BLOCK * 2));
  const got = unpack(Buffer.concat(blocks), 100);
  assert.equal(got.length, 2);
  assert.equal(got[0]!.header.name, longName);
  assert.equal(got[0]!.header.linkname, 'target-' + 't'.repeat(200));
  assert.equal(got[1]!.header.uid, 400_000, 'a global PAX record applies to later entries');
});

test('a truncated archive is a format error naming the byte; trailing data after the end is ignored', async () => {
  const tar = await pack([{ header: h({ name: 'f' }), data: Buffer.alloc(2000, 1) }]);
  const reader = new TarReader();
  for (const _ of reader.feed(tar.subarray(0, 1000))) void _;
  assert.throws(() => reader.end(), /tar archive is truncated at byte 1000/);
  assert.equal(unpack(Buffer.concat([tar, Buffer.alloc(BLOCK * 4)])).length, 1);
});
