// Unpacks a tar stream (a `type=local` export sent by a remote builder) into a directory: files with
// their modes, directories, symlinks and hard links; nothing is written outside the directory.
import { chmodSync, createWriteStream, linkSync, mkdirSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { UserError } from '../../base/errors.js';
import { resolveInRoot } from '../../native/in-root.js';

export async function extractTar(input: Readable, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  const root = resolve(dest);
  // The builder is not trusted with this machine's files: a name resolves inside `dest` even through a
  // symlink an earlier entry made (`a -> /etc`, then `a/passwd` is dest/etc/passwd).
  const inside = (name: string) => {
    const p = resolveInRoot(root, name, { followFinal: false });
    if (p !== root && !p.startsWith(root + sep)) throw new UserError(`refusing to write ${name} outside ${dest}`);
    return p;
  };
  const dirs: { path: string; mode: number; mtime?: Date }[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, stream, next) => {
    const run = async () => {
      const path = inside(h.name);
      if (h.type === 'directory') {
        mkdirSync(path, { recursive: true });
        dirs.push({ path, mode: h.mode ?? 0o755, mtime: h.mtime });
        stream.resume();
        return;
      }
      mkdirSync(dirname(path), { recursive: true });
      rmSync(path, { force: true });
      if (h.type === 'symlink') {
        symlinkSync(h.linkname ?? '', path);
        stream.resume();
      } else if (h.type === 'link') {
        linkSync(inside(h.linkname ?? ''), path);
        stream.resume();
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        const out = createWriteStream(path, { mode: h.mode ?? 0o644 });
        await pipeline(stream, out);
        chmodSync(path, (h.mode ?? 0o644) & 0o7777);
        if (h.mtime) utimesSync(path, h.mtime, h.mtime);
      } else stream.resume();
    };
    run().then(() => next(), (err) => ex.destroy(err));
  });
  input.pipe(ex);
  await finished(ex);
  for (const d of dirs.reverse()) {
    chmodSync(d.path, d.mode & 0o7777);
    if (d.mtime) utimesSync(d.path, d.mtime, d.mtime);
  }
}
