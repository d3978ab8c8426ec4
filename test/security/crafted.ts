// Hostile inputs written byte by byte for the security tests: tars whose entries no well-behaved tool
// would write (symlink parents, hard links through symlinks, `..`, whiteout names, huge name components),
// a one-image registry on 127.0.0.1 serving such a tar as a base image layer, and canary dirs outside
// every state dir whose content, mtimes and xattrs must come out unchanged.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, lstatSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { ChunkedOutput, TarWriter } from '../../cache/layers/tar-writer.js';
import { FsOps } from '../../cache/layers/fsops.js';

export type Entry = Partial<TarHeader> & { name: string; data?: string };

/** A tar of `entries`, exactly in this order (later entries may replace earlier ones); headers default to
 * root-owned, 0644 files / 0755 dirs at `mtime` (seconds). */
export async function tarOf(entries: Entry[], mtime = 1_000_000_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new ChunkedOutput((c) => void chunks.push(Buffer.from(c)));
  const tar = new TarWriter(out);
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const type = e.type ?? 'file';
    tar.writeHeader({
      type,
      mode: type === 'dir' ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      mtime: { sec: mtime, nsec: 0 },
      linkname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(),
      ...e,
      size: type === 'file' ? data.length : 0,
    });
    if (type === 'file') {
      out.append(data);
      tar.padData(data.length);
    }
  }
  tar.finish();
  await out.end();
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export interface EvilRegistry {
  /** `127.0.0.1:PORT/evil:latest` */
  ref: string;
  /** Paths asked for, to show the image was really pulled. */
  requests: string[];
  close(): Promise<void>;
}

/** A registry on 127.0.0.1 serving one linux/amd64 image `evil:latest` made of `layers` (gzip). */
export async function serveEvilImage(layers: Buffer[]): Promise<EvilRegistry> {
  const blobs = new Map<string, { body: Buffer; type: string }>();
  const layerDescs = layers.map((tar) => {
    const gz = gzipSync(tar);
    blobs.set(sha(gz), { body: gz, type: 'application/octet-stream' });
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length };
  });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map(sha) },
    }),
  );
  blobs.set(sha(config), { body: config, type: 'application/octet-stream' });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: layerDescs,
    }),
  );
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    const send = (status: number, body: Buffer, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-length': String(body.length), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url === '/v2/' || url === '/v2') return send(200, Buffer.from('{}'), { 'content-type': 'application/json' });
    const m = /^\/v2\/evil\/(manifests|blobs)\/(.+)$/.exec(url);
    if (m?.[1] === 'manifests' && (m[2] === 'latest' || m[2] === sha(manifest))) {
      return send(200, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha(manifest) });
    }
    const blob = m?.[1] === 'blobs' ? blobs.get(m[2]!) : undefined;
    if (blob) return send(200, blob.body, { 'content-type': blob.type, 'docker-content-digest': m![2]! });
    send(404, Buffer.from('{"errors":[{"code":"NOT_FOUND","message":"not found"}]}'), { 'content-type': 'application/json' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    ref: `127.0.0.1:${port}/evil:latest`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface CanaryState {
  [rel: string]: { mtimeNs: bigint; nlink: bigint; content?: string; xattrs: string };
}

/**
 * A canary dir outside every state dir, with a file `x`, a file `shadow`, a dir `sub` and fixed old
 * mtimes, and a snapshot function: its result must be the same after the attack.
 */
export function makeCanary(): { dir: string; snapshot: () => Promise<CanaryState> } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-canary-'));
  writeFileSync(join(dir, 'x'), 'canary file\n');
  writeFileSync(join(dir, 'shadow'), 'root:CANARY-HASH:19000::::::\n');
  mkdirSync(join(dir, 'sub'));
  for (const p of ['x', 'shadow', 'sub', '.']) utimesSync(join(dir, p), 300_000_000, 300_000_000);
  const snapshot = async () => {
    const ops = FsOps.start();
    try {
      const out: CanaryState = {};
      const walk = async (rel: string) => {
        const p = rel ? join(dir, rel) : dir;
        const st = lstatSync(p, { bigint: true });
        const x = await ops.llistxattrs(p);
        out[rel || '.'] = {
          mtimeNs: st.mtimeNs,
          nlink: st.isDirectory() ? 0n : st.nlink, // a hard link made to it would show here
          content: st.isFile() ? readFileSync(p, 'utf8') : undefined,
          xattrs: [...x].map(([k, v]) => `${k}=${v.toString('hex')}`).sort().join(','),
        };
        if (st.isDirectory()) for (const n of readdirSync(p).sort()) await walk(rel ? `${rel}/${n}` : n);
      };
      await walk('');
      return out;
    } finally {
      await ops.close();
    }
  };
  return { dir, snapshot };
}
