// Streaming tar reader: feed it chunks as they arrive, iterate the events each chunk completes. It folds
// PAX ('x' local, 'g' global) and GNU long-name ('L') / long-link ('K') headers into the entry they
// describe, so callers only ever see real entries. Data events are views into the fed chunk, valid until
// the next feed.
import { BLOCK, decodeBlock, entryTypeOf, TarFormatError, type TarHeader } from './tar-header.js';
import { decodePaxRecords, parsePaxInt, parsePaxTime } from './tar-pax.js';
import { nameFromBytes } from '../../base/raw-names.js';

export type TarEvent =
  | { kind: 'entry'; header: TarHeader }
  | { kind: 'data'; data: Buffer }
  | { kind: 'entry-end' };

type State = 'header' | 'data' | 'meta' | 'skip' | 'eof';

// Types whose size field does not announce data (as Go's archive/tar reads them).
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

export class TarReader {
  private state: State = 'header';
  private partial: Buffer[] = [];
  private partialLen = 0;
  private remaining = 0; // data bytes left in the current entry or metadata block
  private padding = 0; // zero bytes after the data, up to the block boundary
  private meta?: { flag: string; parts: Buffer[] };
  private local = new Map<string, Buffer>();
  private readonly global = new Map<string, Buffer>();
  private longName?: string;
  private longLink?: string;
  private metaPending = false; // a PAX/GNU header was read; its entry has not come yet
  /** Bytes consumed so far, for error messages. */
  offset = 0;

  /** True once the end-of-archive block was seen. */
  get done(): boolean {
    return this.state === 'eof';
  }

  *feed(chunk: Buffer): Generator<TarEvent> {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 'eof') {
        this.offset += chunk.length - pos; // trailing zero blocks and record padding
        return;
      }
      if (this.state === 'header') {
        let block: Buffer;
        if (this.partialLen === 0 && chunk.length - pos >= BLOCK) {
          block = chunk.subarray(pos, pos + BLOCK);
          pos += BLOCK;
        } else {
          const n = Math.min(BLOCK - this.partialLen, chunk.length - pos);
          this.partial.push(chunk.subarray(pos, pos + n));
          this.partialLen += n;
          pos += n;
          if (this.partialLen < BLOCK) continue;
          block = Buffer.concat(this.partial, BLOCK);
          this.partial = [];
          this.partialLen = 0;
        }
        const ev = this.onHeader(block);
        this.offset += BLOCK;
        if (ev) {
          yield ev;
          if (this.state === 'header') yield { kind: 'entry-end' };
        }
        continue;
      }
      if (this.state === 'skip' && this.remaining === 0) {
        const n = Math.min(this.padding, chunk.length - pos);
        pos += n;
        this.offset += n;
        this.padding -= n;
        if (this.padding === 0) this.state = 'header';
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - pos);
      const data = chunk.subarray(pos, pos + n);
      pos += n;
      this.offset += n;
      this.remaining -= n;
      if (this.state === 'data') {
        if (n > 0) yield { kind: 'data', data };
        if (this.remaining === 0) {
          this.state = this.padding ? 'skip' : 'header';
          yield { kind: 'entry-end' };
        }
      } else if (this.state === 'meta') {
        this.meta!.parts.push(Buffer.from(data));
        if (this.remaining === 0) {
          this.onMeta();
          this.state = this.padding ? 'skip' : 'header';
        }
      } else if (this.remaining === 0) {
        this.state = this.padding ? 'skip' : 'header';
      }
    }
  }

  /** Call when the input ends: throws if it ended inside an entry. */
  end(): void {
    if (this.state === 'eof') return;
    if (this.state === 'header' && this.partialLen === 0 && !this.metaPending && this.offset > 0) {
      return; // no end-of-archive blocks, but ends on an entry boundary: accepted like GNU tar does
    }
    throw new TarFormatError(`tar archive is truncated at byte ${this.offset + this.partialLen}`);
  }

  private onHeader(block: Buffer): TarEvent | undefined {
    if (block.every((b) => b === 0)) {
      this.state = 'eof';
      return undefined;
    }
    let raw;
    try {
      raw = decodeBlock(block);
    } catch (err) {
      throw new TarFormatError(`invalid tar header at byte ${this.offset}: ${(err as Error).message}`);
    }
    const flag = raw.typeflag;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (raw.size > 16 << 20) throw new TarFormatError(`tar metadata header at byte ${this.offset} is too large (${raw.size} bytes)`);
      this.meta = { flag, parts: [] };
      this.startBody(raw.size, 'meta');
      if (raw.size === 0) this.onMeta();
      return undefined;
    }
    const pax = this.local;
    this.local = new Map(this.global);
    const str = (k: string) => pax.get(k)?.toString('utf8');
    // Names are bytes: one that is not UTF-8 keeps them (base/raw-names.ts).
    const name = (k: string) => { const v = pax.get(k); return v && nameFromBytes(v); };
    if (pax.has('GNU.sparse.major') || pax.has('GNU.sparse.size') || flag === 'S') {
      throw new TarFormatError(`sparse file ${raw.name} at byte ${this.offset} is not supported`);
    }
    let type = entryTypeOf(flag);
    if (type === undefined) {
      if (flag === 'V') {
        this.startBody(raw.size, 'skip'); // a volume label is no file
        return undefined;
      }
      type = 'file'; // POSIX: unknown types are read as regular files
    }
    const size = pax.has('size') ? parsePaxInt(str('size')!, 'size') : raw.size;
    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of pax) {
      if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice(13), value);
      else if (key.startsWith('LIBARCHIVE.xattr.')) xattrs.set(decodeURIComponent(key.slice(17)), Buffer.from(value.toString('latin1'), 'base64'));
    }
    const header: TarHeader = {
      name: name('path') ?? this.longName ?? raw.name,
      type,
      mode: raw.mode,
      uid: pax.has('uid') ? parsePaxInt(str('uid')!, 'uid') : raw.uid,
      gid: pax.has('gid') ? parsePaxInt(str('gid')!, 'gid') : raw.gid,
      uname: str('uname') ?? raw.uname,
      gname: str('gname') ?? raw.gname,
      size: HEADER_ONLY.has(flag) ? 0 : size,
      mtime: pax.has('mtime') ? parsePaxTime(str('mtime')!) : { sec: raw.mtime, nsec: 0 },
      atime: pax.has('atime') ? parsePaxTime(str('atime')!) : undefined,
      linkname: name('linkpath') ?? this.longLink ?? raw.linkname,
      devmajor: pax.has('SCHILY.devmajor') ? parsePaxInt(str('SCHILY.devmajor')!, 'devmajor') : raw.devmajor,
      devminor: pax.has('SCHILY.devminor') ? parsePaxInt(str('SCHILY.devminor')!, 'devminor') : raw.devminor,
      xattrs,
    };
    this.longName = undefined;
    this.longLink = undefined;
    this.metaPending = false;
    this.startBody(header.size, 'data');
    return { kind: 'entry', header };
  }

  private startBody(size: number, state: 'data' | 'meta' | 'skip'): void {
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.state = 'header';
    else this.state = state;
  }

  private onMeta(): void {
    const { flag, parts } = this.meta!;
    this.meta = undefined;
    this.metaPending = true;
    const data = Buffer.concat(parts);
    if (flag === 'x') decodePaxRecords(data, this.local);
    else if (flag === 'g') {
      decodePaxRecords(data, this.global);
      for (const [k, v] of this.global) if (!this.local.has(k)) this.local.set(k, v);
    } else {
      const nul = data.indexOf(0);
      const s = nameFromBytes(data.subarray(0, nul < 0 ? data.length : nul));
      if (flag === 'L') this.longName = s;
      else this.longLink = s;
    }
  }
}
