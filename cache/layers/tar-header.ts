// One tar entry's metadata and the 512-byte ustar header block that carries it. Fields a ustar block
// cannot hold (long or non-ASCII names, ids above 2097151, sub-second or far times, xattrs) go in a PAX
// extended header instead (tar-pax.ts); reading also accepts GNU base-256 numbers.
import type { Timespec } from './fsops.js';
import { nameFromBytes, nameToBytes } from '../../base/raw-names.js';

export const BLOCK = 512;

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Path as stored (no leading "./" added or removed here); dirs may end in "/". */
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Data bytes following the header (0 for every type but 'file'). */
  size: number;
  mtime: Timespec;
  /** Only when the archive carried one (PAX); writers leave it out for determinism. */
  atime?: Timespec;
  /** Symlink target, or the earlier entry a hardlink refers to. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (PAX SCHILY.xattr.*), values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

/** A header with plain defaults (a root-owned 0644 file, epoch mtime, no data), overridden by `over`. */
export function newHeader(over: Partial<TarHeader> & { name: string }): TarHeader {
  return {
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    size: 0,
    mtime: { sec: 0, nsec: 0 },
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...over,
  };
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

/** Maps a typeflag to an entry type; undefined for metadata and unsupported types. */
export function entryTypeOf(flag: string): TarEntryType | undefined {
  switch (flag) {
    case '0':
    case '\0':
    case '7': // contiguous file: a regular file everywhere that matters
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
  }
  return undefined;
}

export function typeflagOf(type: TarEntryType): string {
  return TYPEFLAG[type];
}

/** Largest values the fixed-width octal fields can hold (width - 1 digits). */
export const MAX_OCTAL_7 = 0o7777777;
export const MAX_OCTAL_11 = 0o77777777777;

export class TarFormatError extends Error {}

/** A NUL-terminated string field. */
export function readString(block: Buffer, start: number, len: number): string {
  let end = start;
  while (end < start + len && block[end] !== 0) end++;
  return nameFromBytes(block.subarray(start, end));
}

/** An octal field (space/NUL padded), or a GNU base-256 field (high bit of the first byte set). */
export function readNumber(block: Buffer, start: number, len: number, what: string): number {
  const first = block[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw new TarFormatError(`negative base-256 ${what} is not supported`);
    let v = first & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + block[i]!;
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} is too large`);
    return v;
  }
  let i = start;
  const end = start + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) {
    if (block[i] === 0) return 0; // an all-NUL field is 0
    i++;
  }
  let v = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new TarFormatError(`invalid octal digit in ${what}`);
    v = v * 8 + (c - 0x30);
  }
  return v;
}

export function checksumOf(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

/** The ustar fields of one block (before any PAX/GNU overrides). */
export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

export function decodeBlock(block: Buffer): RawHeader {
  const stored = readNumber(block, 148, 8, 'checksum');
  const sum = checksumOf(block);
  if (stored !== sum.unsigned && stored !== sum.signed) throw new TarFormatError('header checksum mismatch (not a tar archive, or corrupt)');
  const magic = block.toString('latin1', 257, 263);
  const posix = magic === 'ustar\0';
  const gnu = magic === 'ustar ';
  let name = readString(block, 0, 100);
  // Only POSIX ustar has a prefix field; GNU keeps times there.
  if (posix) {
    const prefix = readString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[156]!);
  return {
    name,
    mode: readNumber(block, 100, 8, 'mode') & 0o7777,
    uid: readNumber(block, 108, 8, 'uid'),
    gid: readNumber(block, 116, 8, 'gid'),
    size: readNumber(block, 124, 12, 'size'),
    mtime: readNumber(block, 136, 12, 'mtime'),
    typeflag: typeflag === '\0' ? '0' : typeflag,
    linkname: readString(block, 157, 100),
    uname: posix || gnu ? readString(block, 265, 32) : '',
    gname: posix || gnu ? readString(block, 297, 32) : '',
    devmajor: posix || gnu ? readNumber(block, 329, 8, 'devmajor') : 0,
    devminor: posix || gnu ? readNumber(block, 337, 8, 'devminor') : 0,
  };
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

/** Splits a long ASCII path into ustar prefix (≤155 bytes) and name (≤100 bytes), or undefined. */
export function splitUstarPath(path: string): { prefix: string; name: string } | undefined {
  if (!isAscii(path)) return undefined;
  if (path.length <= 100) return { prefix: '', name: path };
  // The split slash must leave a non-empty name; a dir's trailing slash stays with the name.
  for (let i = Math.min(155, path.length - 2); i > 0; i--) {
    if (path[i] === '/' && path.length - i - 1 <= 100) return { prefix: path.slice(0, i), name: path.slice(i + 1) };
  }
  return undefined;
}

/** Fields of `h` the ustar block cannot represent, for the PAX header (empty when none are needed). */
export function paxOverrides(h: TarHeader): Map<string, string | Buffer> {
  const pax = new Map<string, string | Buffer>();
  // Names are bytes: a name that is not UTF-8 goes into the PAX record as its raw bytes.
  if (!splitUstarPath(h.name)) pax.set('path', nameToBytes(h.name));
  if (Buffer.byteLength(h.linkname) > 100 || !isAscii(h.linkname)) pax.set('linkpath', nameToBytes(h.linkname));
  if (h.uid > MAX_OCTAL_7) pax.set('uid', String(h.uid));
  if (h.gid > MAX_OCTAL_7) pax.set('gid', String(h.gid));
  if (h.size > MAX_OCTAL_11) pax.set('size', String(h.size));
  if (h.mtime.nsec !== 0 || h.mtime.sec < 0 || h.mtime.sec > MAX_OCTAL_11) pax.set('mtime', formatPaxTime(h.mtime));
  if (Buffer.byteLength(h.uname) > 32 || !isAscii(h.uname)) pax.set('uname', h.uname);
  if (Buffer.byteLength(h.gname) > 32 || !isAscii(h.gname)) pax.set('gname', h.gname);
  for (const [name, value] of h.xattrs) pax.set(`SCHILY.xattr.${name}`, value);
  return pax;
}

export function formatPaxTime(t: Timespec): string {
  let sec = t.sec;
  let nsec = t.nsec;
  let sign = '';
  if (sec < 0) {
    sign = '-';
    if (nsec > 0) {
      sec += 1;
      nsec = 1e9 - nsec;
    }
    sec = -sec;
  }
  if (nsec === 0) return `${sign}${sec}`;
  return `${sign}${sec}.${String(nsec).padStart(9, '0').replace(/0+$/, '')}`;
}

/**
 * The ustar block for `h`. Values that do not fit are written clamped: the PAX header before it carries
 * the real ones.
 */
export function encodeBlock(h: TarHeader, typeflag = typeflagOf(h.type)): Buffer {
  const block = Buffer.alloc(BLOCK);
  encodeBlockInto(block, h, typeflag);
  return block;
}

/** Writes the ustar block for `h` into `block`: 512 bytes that are all zero. */
export function encodeBlockInto(block: Buffer, h: TarHeader, typeflag = typeflagOf(h.type)): void {
  // Every field is ASCII or latin1 text, one byte per character, so the checksum (the sum of the
  // block's bytes, its own field counted as 8 spaces) adds up as the fields are written.
  let sum = 8 * 0x20;
  const text = (s: string, start: number, max: number) => {
    const n = block.write(s, start, max, 'latin1');
    for (let i = 0; i < n; i++) sum += s.charCodeAt(i) & 0xff;
  };
  const octal = (start: number, len: number, value: number) => text(value.toString(8).padStart(len - 1, '0'), start, len - 1);
  const split = splitUstarPath(h.name);
  const clip = (s: string, n: number) => (isAscii(s) && s.length <= n ? s : Buffer.from(s).subarray(0, n).toString('latin1'));
  if (split) {
    text(split.name, 0, 100);
    text(split.prefix, 345, 155);
  } else {
    text(clip(h.name, 100), 0, 100);
  }
  octal(100, 8, h.mode & 0o7777);
  octal(108, 8, Math.min(h.uid, MAX_OCTAL_7));
  octal(116, 8, Math.min(h.gid, MAX_OCTAL_7));
  octal(124, 12, Math.min(h.size, MAX_OCTAL_11));
  octal(136, 12, Math.max(0, Math.min(h.mtime.sec, MAX_OCTAL_11)));
  text(typeflag, 156, 1);
  text(clip(h.linkname, 100), 157, 100);
  text('ustar\x0000', 257, 8);
  text(clip(h.uname, 32), 265, 32);
  text(clip(h.gname, 32), 297, 32);
  if (h.type === 'char' || h.type === 'block') {
    octal(329, 8, h.devmajor);
    octal(337, 8, h.devminor);
  }
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}
