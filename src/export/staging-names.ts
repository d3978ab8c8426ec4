// Layers are merged in a private staging directory by apply-layer.ts, which reads tars with tar-stream:
// tar-stream decodes every name as UTF-8, so a name that is not UTF-8 (byte 0xff) would come out as
// U+FFFD. Before a layer reaches it, its names (and link targets) are rewritten into a reversible
// UTF-8 form: each byte that is not part of valid UTF-8 becomes ESC + two hex digits, and ESC itself
// becomes ESC + "zz". Staging holds those names; whatever copies staging out (the local copier, the
// rootfs tar packer) turns them back into the original bytes. ESC is a private-use character.
import { Transform, type TransformCallback } from 'node:stream';
import { TarReader } from '../../cache/layers/tar-reader.js';
import { ChunkedOutput, TarWriter } from '../../cache/layers/tar-writer.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { hasRawBytes, nameFromBytes } from '../../base/raw-names.js';

const ESC = '\uF8FF';
const ESC_BYTES = Buffer.from(ESC);

/** kiln's name form (raw bytes as lone surrogates) → the staging form (valid UTF-8 only). */
export function toStagingName(name: string): string {
  if (!hasRawBytes(name) && !name.includes(ESC)) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    if (c >= 0xdc80 && c <= 0xdcff && !(prev >= 0xd800 && prev <= 0xdbff)) out += ESC + (c - 0xdc00).toString(16).padStart(2, '0');
    else if (name[i] === ESC) out += ESC + 'zz';
    else out += name[i];
  }
  return out;
}

/** A staging name as read from the file system (bytes) → the original name's bytes. */
export function stagingNameToBytes(b: Buffer): Buffer {
  if (b.indexOf(ESC_BYTES) < 0) return b;
  const s = b.toString('utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = s.indexOf(ESC); i >= 0; i = s.indexOf(ESC, start)) {
    parts.push(Buffer.from(s.slice(start, i)));
    const code = s.slice(i + 1, i + 3);
    parts.push(code === 'zz' ? ESC_BYTES : Buffer.from([parseInt(code, 16)]));
    start = i + 3;
  }
  parts.push(Buffer.from(s.slice(start)));
  return Buffer.concat(parts);
}

/** A staging name (bytes) → kiln's name form, for tar headers. */
export function stagingNameToName(b: Buffer): string {
  return nameFromBytes(stagingNameToBytes(b));
}

function needsRewrite(h: TarHeader): boolean {
  return toStagingName(h.name) !== h.name || toStagingName(h.linkname) !== h.linkname;
}

/**
 * A tar → tar pass that gives every name and link target its staging form. A layer without such names
 * is re-emitted with the same entries (kiln's tar codec), which apply-layer reads the same way.
 */
export function stagingNamesTransform(): Transform {
  const reader = new TarReader();
  let pushOut: (b: Buffer) => void = () => {};
  const out = new ChunkedOutput((chunk) => pushOut(chunk));
  const writer = new TarWriter(out);
  let size = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        for (const ev of reader.feed(chunk)) {
          if (ev.kind === 'entry') {
            const h = ev.header;
            size = h.size;
            writer.writeHeader(needsRewrite(h) ? { ...h, name: toStagingName(h.name), linkname: toStagingName(h.linkname) } : h);
          } else if (ev.kind === 'data') out.append(ev.data);
          else writer.padData(size);
        }
        out.drain().then(() => cb(), cb);
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      writer.finish();
      out.end().then(() => cb(), cb);
    },
  });
  pushOut = (b) => {
    t.push(b);
  };
  return t;
}
