// http(s):// sources (ADD URL): the file is downloaded once per solve into a layer holding just that
// file (mode 0600, mtime from Last-Modified, as BuildKit does); the key is the content's digest, so a
// changed remote file invalidates the steps that use it. `checksum` pins the expected digest.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, utimesSync, chmodSync } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { request } from 'undici';
import type { SourceOp } from '../graph/ops.js';
import type { OpContext, OpImpl } from '../op.js';
import { SolveError } from '../op.js';
import type { Ref } from '../refs.js';

interface Downloaded {
  ref: Ref;
  digest: string;
}

const downloads = new WeakMap<OpContext, Promise<Downloaded>>();

function fileNameOf(op: SourceOp): string {
  if (op.attrs?.filename) return op.attrs.filename;
  const u = new URL(op.identifier);
  const base = posix.basename(u.pathname);
  return base && base !== '/' ? base : '__unnamed__';
}

async function download(op: SourceOp, ctx: OpContext): Promise<Downloaded> {
  const layer = ctx.env.state.snapshots.newLayer();
  try {
    let url = op.identifier;
    let res;
    for (let hops = 0; ; hops++) {
      res = await request(url, { method: 'GET', signal: ctx.signal, headers: { 'user-agent': 'kiln' } });
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && res.headers.location && hops < 10) {
        await res.body.dump();
        url = new URL(String(res.headers.location), url).toString();
        continue;
      }
      break;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new SolveError(`failed to load ${op.identifier}: invalid response status ${res.statusCode}`);
    }
    const name = fileNameOf(op);
    const path = join(layer.dir, name);
    mkdirSync(layer.dir, { recursive: true });
    const h = createHash('sha256');
    const hasher = new Transform({
      transform(chunk, _e, cb) {
        h.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(res.body, hasher, createWriteStream(path, { mode: 0o600 }));
    chmodSync(path, 0o600);
    const digest = `sha256:${h.digest('hex')}`;
    const expected = op.attrs?.checksum;
    if (expected && expected !== digest) throw new SolveError(`digest mismatch for ${op.identifier}: expected ${expected}, got ${digest}`);
    const lastModified = res.headers['last-modified'];
    if (typeof lastModified === 'string' && !Number.isNaN(Date.parse(lastModified))) {
      const t = new Date(lastModified);
      utimesSync(path, t, t);
    }
    const dir = layer.commit();
    return { ref: { kind: 'layers', layers: [{ dir, id: layer.id, created: new Date().toISOString() }] }, digest };
  } catch (err) {
    layer.discard();
    if (err instanceof SolveError) throw err;
    throw new SolveError(`failed to load ${op.identifier}: ${(err as Error).message}`);
  }
}

function downloadOnce(op: SourceOp, ctx: OpContext): Promise<Downloaded> {
  let p = downloads.get(ctx);
  if (!p) downloads.set(ctx, (p = download(op, ctx)));
  return p;
}

export const sourceHttpOp: OpImpl<SourceOp> = {
  async cacheMap(op, ctx) {
    // With --checksum the content is known in advance: no download is needed to key the step (a cached
    // build never fetches the URL). Without it, the content decides.
    const digest = op.attrs?.checksum ?? (await downloadOnce(op, ctx)).digest;
    const body = JSON.stringify({ http: digest, filename: fileNameOf(op) });
    return { digest: `sha256:${createHash('sha256').update(body).digest('hex')}`, deps: [] };
  },
  async exec(op, _inputs, ctx) {
    return (await downloadOnce(op, ctx)).ref;
  },
};
