// File names are bytes on Linux, not text: a context may hold a name with byte 0xff, which is not UTF-8.
// Kiln keeps paths as JS strings; a byte that is not part of valid UTF-8 is carried as the lone
// surrogate U+DC00+byte (Python's "surrogateescape"). Valid UTF-8 never decodes to a lone surrogate, so
// the mapping is exact both ways. Whatever hands such a path to the file system or writes it into a tar
// or a hash uses nameToBytes / fsPath, never Buffer.from(string) (which would turn it into U+FFFD).

import { readdirSync, readlinkSync } from 'node:fs';

const ESCAPED = /[\uDC80-\uDCFF]/;

/** True when `s` carries escaped raw bytes. */
export function hasRawBytes(s: string): boolean {
  return ESCAPED.test(s);
}

/** Length of the valid UTF-8 sequence starting at b[i], or 0 when it is not one. */
function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // a surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

/** A name read from the file system or a tar, as kiln's string form. */
export function nameFromBytes(b: Buffer): string {
  const s = b.toString('utf8');
  if (!s.includes('\uFFFD')) return s;
  let out = '';
  let i = 0;
  while (i < b.length) {
    const n = utf8SeqLen(b, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + b[i]!);
      i++;
    } else {
      out += b.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** The bytes of a name in kiln's string form. */
export function nameToBytes(s: string): Buffer {
  if (!hasRawBytes(s)) return Buffer.from(s);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) {
      // Only a lone low surrogate is an escape; a high+low pair is one character.
      const prev = i > 0 ? s.charCodeAt(i - 1) : 0;
      if (prev >= 0xd800 && prev <= 0xdbff) continue;
      parts.push(Buffer.from(s.slice(start, i)), Buffer.from([c - 0xdc00]));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start)));
  return Buffer.concat(parts);
}

/** A path for node:fs: the string itself, or its bytes when it carries raw bytes. */
export function fsPath(s: string): string | Buffer {
  return hasRawBytes(s) ? nameToBytes(s) : s;
}

/** The names in a directory, raw bytes escaped (readdir with encoding 'buffer'). */
export function readdirRaw(dir: string): string[] {
  return readdirSync(fsPath(dir), { encoding: 'buffer' }).map(nameFromBytes);
}

/** A symlink's target, raw bytes escaped. */
export function readlinkRaw(path: string): string {
  return nameFromBytes(readlinkSync(fsPath(path), { encoding: 'buffer' }));
}

/** A name for a message: raw bytes shown as \xNN. */
export function displayName(s: string): string {
  return s.replace(/(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`);
}
