// Lists an uncompressed tar held in memory (ustar and PAX headers): name, type, link name and small contents.
export interface TarEntry {
  name: string;
  type: 'file' | 'link' | 'symlink' | 'directory' | 'other';
  linkname?: string;
  content?: string;
}

export function listTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  const str = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(str(h.subarray(124, 136)).trim() || '0', 8);
    const flag = String.fromCharCode(h[156]!);
    const prefix = str(h.subarray(345, 500));
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (flag === 'x') {
      pax = {};
      let p = 0;
      const text = body.toString('utf8');
      while (p < text.length) {
        const sp = text.indexOf(' ', p);
        const len = Number(text.slice(p, sp));
        const rec = text.slice(sp + 1, p + len - 1);
        const eq = rec.indexOf('=');
        pax[rec.slice(0, eq)] = rec.slice(eq + 1);
        p += len;
      }
      continue;
    }
    if (flag === 'g') continue;
    const name = pax.path ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)));
    const linkname = pax.linkpath ?? str(h.subarray(157, 257));
    pax = {};
    const type = flag === '0' || flag === '\0' ? 'file' : flag === '1' ? 'link' : flag === '2' ? 'symlink' : flag === '5' ? 'directory' : 'other';
    out.push({ name, type, linkname: linkname || undefined, content: type === 'file' && size < 1 << 16 ? body.toString('utf8') : undefined });
  }
  return out;
}
