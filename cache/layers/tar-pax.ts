// PAX extended header records: "<len> <key>=<value>\n", where <len> counts the whole record including its
// own digits. Values are raw bytes: SCHILY.xattr.* values are binary (security.capability), so they are
// never passed through a string.
import type { Timespec } from './fsops.js';
import { TarFormatError } from './tar-header.js';

/** Encodes records in sorted key order, so the same entry always gives the same bytes. */
export function encodePaxRecords(records: Map<string, string | Buffer>): Buffer {
  const keys = [...records.keys()].sort();
  // The usual case (a sub-second mtime, a long path): text only, built as one string.
  if (keys.every((k) => typeof records.get(k) === 'string')) {
    let text = '';
    for (const key of keys) {
      const body = ` ${key}=${records.get(key) as string}\n`;
      const n = Buffer.byteLength(body);
      let len = n + 1;
      while (String(len).length + n !== len) len = String(len).length + n;
      text += `${len}${body}`;
    }
    return Buffer.from(text);
  }
  const parts: Buffer[] = [];
  for (const key of keys) {
    const value = records.get(key)!;
    const body = Buffer.concat([Buffer.from(` ${key}=`), typeof value === 'string' ? Buffer.from(value) : value, Buffer.from('\n')]);
    // The length prefix includes its own digits: grow until it is self-consistent.
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.from(String(len)), body);
  }
  return Buffer.concat(parts);
}

/** Decodes records into `into` (later records win; an empty value removes the key, as POSIX says). */
export function decodePaxRecords(data: Buffer, into: Map<string, Buffer>): void {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad with NULs
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw new TarFormatError('malformed PAX record (no length)');
    const len = Number(data.toString('latin1', pos, space));
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new TarFormatError('malformed PAX record length');
    }
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= pos + len - 1) throw new TarFormatError('malformed PAX record (no "=")');
    const key = data.toString('utf8', space + 1, eq);
    const value = Buffer.from(data.subarray(eq + 1, pos + len - 1));
    if (value.length === 0) into.delete(key);
    else into.set(key, value);
    pos += len;
  }
}

/** "1234", "1234.5", "-1.25" → seconds + nanoseconds (floor semantics for negatives). */
export function parsePaxTime(s: string): Timespec {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) throw new TarFormatError(`malformed PAX time ${JSON.stringify(s)}`);
  let sec = Number(m[2]);
  let nsec = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (m[1] === '-') {
    sec = -sec;
    if (nsec > 0) {
      sec -= 1;
      nsec = 1e9 - nsec;
    }
  }
  return { sec, nsec };
}

export function parsePaxInt(s: string, key: string): number {
  if (!/^\d+$/.test(s)) throw new TarFormatError(`malformed PAX ${key} ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new TarFormatError(`PAX ${key} ${s} is too large`);
  return n;
}
