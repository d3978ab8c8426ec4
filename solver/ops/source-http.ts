// http(s):// sources (ADD URL): the file is downloaded once per solve into a layer holding just that
// file (mode 0600, mtime from Last-Modified, as BuildKit does); the key is the content's digest, so a
// changed remote file invalidates the steps that use it. `checksum` pins the expected digest.
// On a shared builder (FetchPolicy.denyLocalFetch) the fetch cannot reach the builder's own loopback, link-local
// or interface addresses, checked after DNS and on each redirect hop; every fetch has connect and idle
// timeouts and a minimum rate (base/oci/registry/fetch-limits.ts).
import { DigestCounter, digestingStream } from '../../base/oci/digest.js';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, utimesSync, chmodSync } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Agent, type Dispatcher } from 'undici';
import { checkLiteralHost, guardedLookup } from '../../base/oci/registry/address-guard.js';
import { fetchLimits, meteredBody } from '../../base/oci/registry/fetch-limits.js';
import type { SourceOp } from '../graph/ops.js';
import type { OpContext, OpImpl } from '../op.js';
import { SolveError } from '../op.js';
import type { Ref } from '../refs.js';

/** Where a build's ADD URL may connect: on a shared builder, not the builder itself (`kiln serve`). */
export interface FetchPolicy {
  /** Refuse the builder's own loopback, link-local and interface addresses (kiln serve without --allow-local-fetch). */
  denyLocalFetch?: boolean;
  /** With denyLocalFetch: HOST:PORT origins allowed anyway (kiln serve --allow-local-fetch HOST:PORT). */
  localFetchAllowed?: string[];
}

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

async function download(op: SourceOp, ctx: OpContext, policy: FetchPolicy): Promise<Downloaded> {
  const layer = ctx.env.state.snapshots.newLayer({ workdir: false });
  const limits = fetchLimits();
  const deny = policy.denyLocalFetch === true;
  const allowed = new Set(policy.localFetchAllowed ?? []);
  const agentOf = (guarded: boolean) =>
    new Agent({
      connect: { timeout: limits.connectTimeoutMs, ...(guarded ? { lookup: guardedLookup } : {}) },
      headersTimeout: limits.idleTimeoutMs,
      bodyTimeout: limits.idleTimeoutMs,
    });
  const guardedAgent = agentOf(deny);
  const openAgent = deny && allowed.size ? agentOf(false) : guardedAgent;
  try {
    let url = new URL(op.identifier);
    let res: Dispatcher.ResponseData;
    for (let hops = 0; ; hops++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SolveError(`failed to load ${op.identifier}: redirected to ${url.protocol} URL`);
      // Each hop is checked anew: a redirect to the builder's own address is refused like a direct URL.
      const open = !deny || allowed.has(`${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`.toLowerCase());
      if (!open) checkLiteralHost(url);
      const agent = open ? openAgent : guardedAgent;
      res = await agent.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', signal: ctx.signal, headers: { 'user-agent': 'kiln' } });
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && res.headers.location && hops < 10) {
        await res.body.dump();
        url = new URL(String(res.headers.location), url);
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
    const fetched = new DigestCounter();
    await pipeline(meteredBody(res.body, limits, op.identifier), digestingStream(fetched), createWriteStream(path, { mode: 0o600 }));
    chmodSync(path, 0o600);
    const digest = fetched.digest();
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
  } finally {
    await Promise.all([guardedAgent.close(), openAgent.close()]).catch(() => {});
  }
}

function downloadOnce(op: SourceOp, ctx: OpContext, policy: FetchPolicy): Promise<Downloaded> {
  let p = downloads.get(ctx);
  if (!p) downloads.set(ctx, (p = download(op, ctx, policy)));
  return p;
}

/** The http(s) source of one build, with that build's fetch policy. */
export const sourceHttpOpWith = (policy: FetchPolicy): OpImpl<SourceOp> => ({
  async cacheMap(op, ctx) {
    // With --checksum the content is known in advance: no download is needed to key the step (a cached
    // build never fetches the URL). Without it, the content decides.
    const digest = op.attrs?.checksum ?? (await downloadOnce(op, ctx, policy)).digest;
    const body = JSON.stringify({ http: digest, filename: fileNameOf(op) });
    return { digest: `sha256:${createHash('sha256').update(body).digest('hex')}`, deps: [] };
  },
  async exec(op, _inputs, ctx) {
    return (await downloadOnce(op, ctx, policy)).ref;
  },
});
