// `kiln serve`: the gRPC build service. Each Solve is one build: authenticate the caller (its tenant),
// sync the context (ask only for contents the tenant's store lacks), collect secrets, wait for a build
// slot, run the embedded engine on the materialised context, stream progress and outputs back. A client
// that goes away cancels its build; SIGTERM stops taking builds, lets running ones finish for a grace
// period, then cancels the rest and closes every state cleanly.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { builderService, CHUNK, KILN_VERSION, PROTOCOL_VERSION, type BuildStart, type SolveRequest, type SolveResponse, type SyncStats, type InfoResponse, type BuildRecordMsg, type ContextEntry, type OutputMsg } from '../protocol/builder.js';
import { identify, AuthError, type AuthConfig } from './auth.js';
import { Tenants, type Tenant } from './tenants.js';
import { recordMessage, serveRetention } from './history.js';
import { BuildRecorder } from '../engine/history/recorder.js';
import { HistoryStore, inProgress, type ContextSync } from '../engine/history/store.js';
import { InflightResultCache } from './inflight-cache.js';
import { ClientCredentials, tenantCredentials, type TenantCredentialConfig } from './tenant-credentials.js';
import { BuildSlots } from './build-slots.js';
import { callGuard, CallCounter, MESSAGE_LIMITS } from './call-guard.js';
import { PathScrubber } from './scrub-paths.js';
import { DiskQuota, QuotaExceeded } from './disk-quota.js';
import type { ServeLimits } from '../engine/limits.js';
import { planManifest, type Ingest } from './context-store.js';
import { runBuild, type BuildHooks, type BuildRequest } from '../engine/build.js';
import { writableLocalSources } from '../engine/writable-contexts.js';
import { decodeTarget } from '../protocol/build-request.js';
import type { OutputSpec } from '../engine/exports.js';
import type { ProgressEvent } from '../../solver/progress.js';
import { formatPlatform, normalizePlatform, parsePlatform } from '../../base/oci/platform.js';
import { runnablePlatforms } from '../../native/binfmt.js';
import { isUserFacing, errorMessage, UserError } from '../../base/errors.js';
import { diskUsage, prune, dirSize } from '../../cache/gc.js';
import { resolveInRoot } from '../../native/in-root.js';
import { BuildkitServer } from '../buildkit/server.js';

const DEFAULT_CALLS_PER_TENANT = 64;
/** HTTP/2 streams one connection may open at once (before any of them is authenticated). */
const MAX_STREAMS_PER_CONNECTION = 128;
/** Context upload bytes between two disk quota checks. */
const QUOTA_CHECK_BYTES = 64 * 1024 * 1024;

export interface ServerOptions {
  root: string;
  name: string;
  auth: AuthConfig;
  maxParallel: number;
  /** Builds of one tenant running at once (default: maxParallel). */
  maxParallelPerTenant?: number;
  /** Calls one tenant may have open at once (builds running or queued, and other calls). */
  maxCallsPerTenant?: number;
  /** Resource limits of every build (memory, CPUs, pids) and every tenant (disk); none when undefined. */
  limits?: ServeLimits;
  historyTtlMs: number;
  /** Platforms this node offers (default: its own, then those runnable through binfmt_misc emulators). */
  platforms?: string[];
  /** Entitlements builds may ask for (--allow): network.host, security.insecure. */
  entitlements: string[];
  /** Where tenants' registry credentials come from besides their client (src/daemon/tenant-credentials.ts). */
  credentials?: TenantCredentialConfig;
  /** ADD http(s):// may reach this machine's loopback, link-local and own addresses (--allow-local-fetch): all, or these HOST:PORT. */
  allowLocalFetch?: true | string[];
}

class Inbox {
  private readonly queue: SolveRequest[] = [];
  private waiter: ((m: SolveRequest | undefined) => void) | undefined;
  ended = false;

  push(m: SolveRequest): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(m);
    } else this.queue.push(m);
  }

  end(): void {
    this.ended = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(undefined);
    }
  }

  next(): Promise<SolveRequest | undefined> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((r) => (this.waiter = r));
  }
}

class Canceled extends Error {}

type Duplex = grpc.ServerDuplexStream<SolveRequest, SolveResponse>;

export class BuildServer {
  readonly server: grpc.Server;
  readonly tenants: Tenants;
  readonly slots: BuildSlots;
  private readonly running = new Map<string, { abort: AbortController; tenant: string; done: Promise<unknown> }>();
  private shuttingDown = false;
  private readonly cleanups = new Set<Promise<void>>();
  readonly platforms: string[];
  /** The BuildKit API endpoint (--buildkit-addr), when one is started. */
  buildkit: BuildkitServer | undefined;

  constructor(readonly opts: ServerOptions) {
    // Every call is authenticated and counted, and its message size bounded, before a byte of it is read.
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': MESSAGE_LIMITS.solveStart,
      'grpc.max_concurrent_streams': MAX_STREAMS_PER_CONNECTION,
      interceptors: [callGuard(opts.auth, new CallCounter(opts.maxCallsPerTenant ?? DEFAULT_CALLS_PER_TENANT))],
    });
    mkdirSync(opts.root, { recursive: true });
    this.tenants = new Tenants(opts.root);
    this.slots = new BuildSlots(opts.maxParallel, opts.maxParallelPerTenant ?? opts.maxParallel);
    this.platforms = opts.platforms?.length ? opts.platforms.map((p) => formatPlatform(normalizePlatform(parsePlatform(p)))) : detectPlatforms();
    rmSync(join(opts.root, 'builds'), { recursive: true, force: true });
    rmSync(join(opts.root, 'trash'), { recursive: true, force: true });
    this.server.addService(builderService().service, {
      Solve: (call: Duplex) => void this.solve(call),
      Info: this.unary(async (tenant) => this.info(tenant)),
      ListBuilds: this.unary(async (tenant, req: { running_only: boolean }) => {
        const store = await this.historyOf(tenant);
        return { builds: store.list().filter((r) => !req.running_only || inProgress(r)).map((r) => recordMessage(store, r, false)) };
      }),
      Status: this.unary(async (tenant, req: { build_id: string }) => {
        const store = await this.historyOf(tenant);
        const r = /^[0-9a-z]+$/.test(req.build_id) ? store.tryGet(req.build_id) : undefined;
        if (!r) throw Object.assign(new UserError(`no build ${req.build_id}`), { code: grpc.status.NOT_FOUND });
        return recordMessage(store, r, true) satisfies BuildRecordMsg;
      }),
      Cancel: this.unary(async (tenant, req: { build_id: string }) => {
        const b = this.running.get(req.build_id);
        if (!b || b.tenant !== tenant) return { canceled: false };
        b.abort.abort(new Canceled('canceled by request'));
        return { canceled: true };
      }),
      DiskUsage: this.unary(async (tenant) => {
        const t = await this.tenants.get(tenant);
        const records = await diskUsage(t.state);
        return { records: records.map((u) => ({ id: u.id, description: u.description, size: String(u.size), last_used: u.lastUsed, reclaimable: u.reclaimable })), context_store_bytes: String(dirSize(t.contexts.root)) };
      }),
      Prune: this.unary(async (tenant, req: { all: boolean; older_than_ms: string; keep_storage: string }) => {
        const t = await this.tenants.get(tenant);
        const r = await t.exclusive(async () => {
          const cache = await prune(t.state, { all: req.all, olderThanMs: Number(req.older_than_ms) || undefined, keepStorage: Number(req.keep_storage) || undefined });
          // Context variants nobody links are regenerable; with --all the synced contents go too.
          return { ...cache, reclaimedBytes: cache.reclaimedBytes + (await t.contexts.prune(req.all)) };
        });
        return { removed_records: r.removedRecords, reclaimed_bytes: String(r.reclaimedBytes) };
      }),
    });
  }

  /** A tenant's history, its builds past --history-ttl removed. */
  private async historyOf(tenant: string): Promise<HistoryStore> {
    const store = new HistoryStore((await this.tenants.get(tenant)).state.root);
    store.prune(serveRetention(this.opts.historyTtlMs));
    return store;
  }

  private async discard(dir: string): Promise<void> {
    if (!existsSync(dir)) return;
    const trash = join(this.opts.root, 'trash', randomBytes(8).toString('hex'));
    try {
      mkdirSync(dirname(trash), { recursive: true });
      renameSync(dir, trash);
    } catch {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const removal = rm(trash, { recursive: true, force: true }).catch(() => {});
    this.cleanups.add(removal);
    void removal.finally(() => this.cleanups.delete(removal));
  }

  /** Binds and starts; returns the bound address (tcp with port 0 gets its real port). */
  async listen(bindAddr: string, creds: grpc.ServerCredentials): Promise<number> {
    return new Promise((resolve, reject) => this.server.bindAsync(bindAddr, creds, (err, port) => (err ? reject(err) : resolve(port))));
  }

  /** Serves BuildKit's API (buildx, buildctl) on the same tenants and state; returns the bound port. */
  async listenBuildkit(bindAddr: string, creds: grpc.ServerCredentials, tls?: { cert: Buffer; key: Buffer; ca?: Buffer }): Promise<number> {
    this.buildkit ??= new BuildkitServer({
      root: this.opts.root,
      name: this.opts.name,
      platforms: this.platforms,
      entitlements: this.opts.entitlements,
      identify: (call) => identify(call as Parameters<typeof identify>[0], this.opts.auth),
      tenant: (name) => this.tenants.get(name),
      acquireSlot: (tenant, signal) => this.slots.acquire(tenant, signal),
    });
    const tcp = /^(?:dns:)?(?:\[([^\]]+)\]|([^:/]+)):([0-9]+)$/.exec(bindAddr);
    if (tls && tcp) return this.buildkit.listenTls(tcp[1] ?? tcp[2]!, Number(tcp[3]), tls);
    return this.buildkit.listen(bindAddr, creds);
  }

  info(tenant: string): InfoResponse {
    return {
      version: KILN_VERSION,
      protocol_version: PROTOCOL_VERSION,
      name: this.opts.name,
      platforms: this.platforms,
      workers: [{ id: `${this.opts.name}-0`, platforms: this.platforms, max_parallel: this.opts.maxParallel }],
      tenant,
      running: this.slots.active,
      queued: this.slots.queued,
    };
  }

  /** Stops taking builds; waits up to `graceMs` for running ones, cancels the rest, closes the states. */
  async shutdown(graceMs: number, log: (m: string) => void = () => {}): Promise<void> {
    this.shuttingDown = true;
    const pending = [...this.running.values()];
    if (pending.length) {
      log(`waiting up to ${Math.round(graceMs / 1000)}s for ${pending.length} running build(s)`);
      const timer = setTimeout(() => {
        for (const b of this.running.values()) b.abort.abort(new Canceled('the builder is shutting down'));
      }, graceMs);
      await Promise.allSettled(pending.map((b) => b.done));
      clearTimeout(timer);
    }
    await this.buildkit?.shutdown();
    await new Promise<void>((r) => this.server.tryShutdown(() => r()));
    await Promise.all(this.cleanups);
    await this.tenants.closeAll();
  }

  private unary<Req, Res>(fn: (tenant: string, req: Req) => Promise<Res>) {
    return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      let tenant: string;
      try {
        tenant = identify(call, this.opts.auth);
      } catch (err) {
        cb({ code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` });
        return;
      }
      fn(tenant, call.request).then(
        (res) => cb(null, res),
        (err) => cb({ code: (err as { code?: number }).code ?? (isUserFacing(err) ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL), details: new PathScrubber(this.opts.root).scrub(errorMessage(err)) }),
      );
    };
  }

  private async solve(call: Duplex): Promise<void> {
    let tenantName: string;
    try {
      tenantName = identify(call, this.opts.auth);
    } catch (err) {
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` });
      return;
    }
    if (this.shuttingDown) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the builder is shutting down' });
      return;
    }
    const inbox = new Inbox();
    const abort = new AbortController();
    const clientCredentials = new ClientCredentials((m) => call.write(m), abort.signal);
    call.on('data', (m: SolveRequest) => (m.credentials ? clientCredentials.answer(m.credentials) : inbox.push(m)));
    call.on('end', () => inbox.end());
    call.on('cancelled', () => {
      inbox.end();
      abort.abort(new Canceled('the client went away'));
    });
    call.on('error', () => abort.abort(new Canceled('the client went away')));

    // The build's id is its history record's, from when the record is made (until then, a key of this call).
    let id = randomBytes(8).toString('hex');
    const buildDir = join(this.opts.root, 'builds', id);
    let record: BuildRecorder | undefined;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    this.running.set(id, { abort, tenant: tenantName, done });
    const sync: SyncStats = { files: 0, files_uploaded: 0, bytes_uploaded: '0', files_reused: 0 };
    try {
      const first = await inbox.next();
      if (!first?.start) throw new UserError('protocol: the first message of Solve must be start');
      const start = first.start;
      if (start.protocol_version !== PROTOCOL_VERSION) throw new UserError(`protocol version ${start.protocol_version} is not supported by this builder (it speaks ${PROTOCOL_VERSION}); upgrade kiln`);
      if (start.frontend && start.frontend !== 'dockerfile.v0') throw new UserError(`frontend "${start.frontend}" is not supported (dockerfile.v0 is)`);
      const tenant = await this.tenants.get(tenantName);
      // Recorded once, in the tenant's history, from now on (queued while the context syncs and a slot is awaited).
      record = new BuildRecorder(new HistoryStore(tenant.state.root), {
        origin: `serve:${tenantName}`,
        dockerfile: { text: start.dockerfile_text, name: start.dockerfile_name || 'Dockerfile', ...(start.dockerfile_path ? { path: start.dockerfile_path } : {}) },
        target: start.target || undefined,
        buildArgs: start.build_args,
        // As asked: none means the builder's native platform (`kiln builder builds` shows "native").
        platforms: start.platforms,
        cacheImports: start.cache_from.map((c) => c.ref),
        cacheExports: start.cache_to.map((c) => (c.type === 'inline' ? 'inline' : c.ref)),
        queued: true,
        client: start.client,
        retention: serveRetention(this.opts.historyTtlMs),
      });
      const running = this.running.get(id)!;
      this.running.delete(id);
      id = record.record.id;
      this.running.set(id, running);
      const send = (m: SolveResponse) => call.write(m);
      send({ accepted: { build_id: id, tenant: tenantName, node: this.opts.name } });
      const paths = new PathScrubber(this.opts.root, buildDir);
      const progress = (ev: ProgressEvent) => {
        // Errors, warnings and status lines are kiln's words and may name a path of this host; a step's own output is the user's.
        if (ev.type === 'vertex.failed') ev = { ...ev, error: paths.scrub(ev.error) };
        else if (ev.type === 'vertex.warning' || ev.type === 'status') ev = { ...ev, message: paths.scrub(ev.message) };
        send({ progress: { json: JSON.stringify(ev) } });
        record!.observe(ev);
      };

      // A tenant over its disk quota builds nothing until it frees space (kiln builder prune).
      const diskBytes = this.opts.limits?.tenant.diskBytes;
      const quota = diskBytes ? new DiskQuota(tenantName, join(this.opts.root, 'tenants', tenantName), diskBytes) : undefined;
      quota?.check();

      // 1. Context sync: only contents this tenant's store does not hold. A manifest that is not one tree
      // inside its root is refused before anything is uploaded (materialise checks it again when writing).
      for (const m of [start.context, ...start.named_contexts.map((n) => n.local)]) if (m) planManifest(m.entries);
      const entries = [...(start.context?.entries ?? []), ...start.named_contexts.flatMap((n) => n.local?.entries ?? [])];
      const files = entries.filter((e) => e.kind === 'FILE' && !e.hardlink_to);
      sync.files = files.length;
      const missing = [...new Set(files.map((e) => e.digest).filter((d) => !tenant.contexts.has(d)))];
      sync.files_reused = files.filter((e) => tenant.contexts.has(e.digest)).length;
      for (let i = 0; i < missing.length; i += 10_000) send({ need_files: { digests: missing.slice(i, i + 10_000), done: i + 10_000 >= missing.length } });
      if (missing.length === 0) send({ need_files: { digests: [], done: true } });
      const want = new Set(missing);
      let bytes = 0;
      let checkedAt = 0;
      const open = new Map<string, Ingest>();
      try {
        while (want.size > 0) {
          const m = await inbox.next();
          abort.signal.throwIfAborted();
          if (!m) throw new Canceled('the client went away during context sync');
          if (!m.file) throw new UserError('protocol: expected file data during context sync');
          const d = m.file.digest;
          if (!want.has(d)) throw new UserError(`protocol: file ${d} was not requested`);
          let ing = open.get(d);
          if (!ing) open.set(d, (ing = tenant.contexts.ingest(d)));
          ing.write(m.file.data);
          bytes += m.file.data.length;
          if (quota && bytes - checkedAt >= QUOTA_CHECK_BYTES) {
            checkedAt = bytes;
            quota.check();
          }
          if (m.file.last) {
            open.delete(d);
            ing.finish();
            want.delete(d);
          }
        }
      } finally {
        for (const ing of open.values()) ing.abort();
      }
      sync.files_uploaded = missing.length;
      sync.bytes_uploaded = String(bytes);

      // 2. Secrets the client declared.
      const secrets: Record<string, Buffer> = {};
      if (start.secret_ids.length) {
        send({ need_secrets: { ids: start.secret_ids } });
        const wanted = new Set(start.secret_ids);
        while (wanted.size > 0) {
          const m = await inbox.next();
          abort.signal.throwIfAborted();
          if (!m) throw new Canceled('the client went away');
          if (!m.secret || !wanted.has(m.secret.id)) throw new UserError('protocol: expected a requested secret');
          secrets[m.secret.id] = Buffer.from(m.secret.value);
          wanted.delete(m.secret.id);
        }
      }

      // 3. A build slot.
      // A build canceled while it waits never starts; a running one holds its slot until it has really ended.
      if (this.slots.full(tenantName)) progress({ type: 'status', message: `waiting for a build slot (${this.slots.queued + 1} queued, ${this.slots.active} running)`, time: Date.now() });
      const release = await this.slots.acquire(tenantName, abort.signal);
      let outcome;
      try {
        abort.signal.throwIfAborted();
        record.record.sync = syncOf(sync);
        const unwatch = quota?.watch(abort);
        try {
          outcome = await tenant.shared(() => this.runBuild(tenant, start, buildDir, secrets, abort.signal, progress, send, call, start.session_credentials ? clientCredentials : undefined, record!, quota));
        } finally {
          unwatch?.();
        }
        abort.signal.throwIfAborted();
      } finally {
        release();
      }
      const result = { ...outcome!, build_id: id, sync };
      send({ result });
      record.record.sync = syncOf(sync);
      record.finish({ status: 'completed' });
      call.end();
    } catch (err) {
      const reason = abort.signal.aborted ? abort.signal.reason : err;
      const overQuota = reason instanceof QuotaExceeded ? reason : err instanceof QuotaExceeded ? err : undefined;
      const canceled = !overQuota && (reason instanceof Canceled || (abort.signal.aborted && !(err instanceof UserError)));
      // No path of this host goes to the client (nor into the tenant's history).
      const message = new PathScrubber(this.opts.root, buildDir).scrub(overQuota ? overQuota.message : canceled ? `build canceled: ${errorMessage(reason)}` : errorMessage(err));
      if (record) {
        record.record.sync = syncOf(sync);
        record.finish({ status: canceled ? 'canceled' : 'failed', error: message });
      }
      if (!isUserFacing(err) && !canceled && !overQuota) console.error(`kiln serve: build ${id}:`, err);
      const code = overQuota ? grpc.status.RESOURCE_EXHAUSTED : canceled ? grpc.status.CANCELLED : isUserFacing(err) ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
      call.emit('error', { code, details: message });
    } finally {
      this.running.delete(id);
      // The build dir (context copy, outputs) goes away off the build's path: a big context takes a while to unlink.
      await this.discard(buildDir);
      finish();
    }
  }

  private async runBuild(
    tenant: Tenant,
    start: BuildStart,
    buildDir: string,
    secrets: Record<string, Buffer>,
    signal: AbortSignal,
    progress: (ev: ProgressEvent) => void,
    send: (m: SolveResponse) => boolean,
    call: Duplex,
    clientCredentials: ClientCredentials | undefined,
    recorder: BuildRecorder,
    quota?: DiskQuota,
  ) {
    mkdirSync(buildDir, { recursive: true });
    let contextDir: string | undefined;
    const hashes = new Map<string, string>();
    // Contexts are materialised as links to the tenant's shared store; `placed` remembers each so one a
    // RUN mounts writable can be made a private copy once the graph says so (see `planned` below).
    const placed = new Map<string, ContextEntry[]>();
    const place = async (entries: ContextEntry[], dir: string, copy = false) => {
      await tenant.contexts.materialise(entries, dir, { copy });
      signal.throwIfAborted();
      placed.set(dir, entries);
      const byPath = new Map(entries.map((e) => [e.path, e]));
      for (const e of entries) {
        if (e.kind !== 'FILE') continue;
        const digest = e.hardlink_to ? byPath.get(e.hardlink_to)?.digest : e.digest;
        if (digest) hashes.set(join(dir, e.path), digest.slice('sha256:'.length));
      }
    };
    if (start.context) {
      contextDir = join(buildDir, 'context');
      await place(start.context.entries, contextDir);
    }
    const namedDirs: Record<string, string> = {};
    for (const n of start.named_contexts) {
      if (n.image || !n.local) continue;
      const dir = join(buildDir, 'named', String(Object.keys(namedDirs).length));
      await place(n.local.entries, dir);
      namedDirs[n.name] = dir;
    }
    // Outputs that go back to the client are written to files here, then streamed.
    const streamed: { index: number; path: string }[] = [];
    const output = (o: OutputMsg, index: number): OutputSpec => {
      if (o.type === 'image') return { type: 'image', names: o.names, push: o.push, attrs: o.attrs };
      const path = join(buildDir, `output-${index}`);
      streamed.push({ index, path });
      // A local export travels as a tar; the client unpacks it.
      if (o.type === 'local') return { type: 'tar', dest: path, names: [], attrs: o.attrs };
      if (o.type === 'oci' || o.type === 'docker' || o.type === 'tar') return { type: o.type, dest: path, names: o.names, attrs: o.attrs };
      throw new UserError(`unknown output type "${o.type}"`);
    };
    const dockerfilePath = contextDir ? resolveInRoot(contextDir, start.dockerfile_path || '.kiln-no-dockerfile') : undefined;
    const { target, explain } = decodeTarget(start, { contextDir, dockerfilePath, namedDirs, secrets, output });
    for (const a of target.allow ?? []) {
      if (!this.opts.entitlements.includes(a)) throw new UserError(`entitlement ${a} is not allowed by this builder (kiln serve --allow-insecure-entitlement ${a})`);
    }
    target.limits = this.opts.limits ? { run: this.opts.limits.run, build: this.opts.limits.build } : undefined;
    if (target.dockerfile.path && !start.dockerfile_path) {
      target.dockerfile.path = undefined;
      if (contextDir && start.has_dockerignore) {
        // A Dockerfile from outside the context: put it beside the ignore patterns the client applied,
        // as <name>.dockerignore, which the engine prefers to the context's .dockerignore.
        const name = basename(start.dockerfile_name || 'Dockerfile');
        const dir = join(buildDir, 'dockerfile');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, name), start.dockerfile_text);
        writeFileSync(join(dir, `${name}.dockerignore`), start.dockerignore.join('\n') + '\n');
        target.dockerfile.path = join(dir, name);
      }
    }
    const req: BuildRequest = {
      targets: [target],
      explain,
      historyOrigin: `serve:${tenant.name}`,
      denyLocalFetch: this.opts.allowLocalFetch !== true,
      localFetchAllowed: this.opts.allowLocalFetch === true ? undefined : this.opts.allowLocalFetch,
      registryCredentials: tenantCredentials(this.opts.credentials ?? {}, tenant.name, clientCredentials),
    };
    const cache = { current: undefined as InflightResultCache | undefined };
    const hooks: BuildHooks = {
      signal,
      recorder,
      progress: (ev) => {
        cache.current?.observe(ev);
        progress(ev);
      },
      knownFileHash: (real) => hashes.get(real),
      wrapCache: (inner) => (cache.current = new InflightResultCache(inner, tenant.inflight, signal)),
      // A RUN that mounts a context writable could write into the shared store's files through its links:
      // the converted graph says which contexts that is, and only those become private copies.
      planned: async ({ def, localDirs }) => {
        for (const name of writableLocalSources(def)) {
          const dir = localDirs[name];
          const entries = dir === undefined ? undefined : placed.get(dir);
          if (!dir || !entries) continue;
          await rm(dir, { recursive: true, force: true });
          await place(entries, dir, true);
        }
      },
    };
    try {
      const built = await runBuild(tenant.state, req, hooks);
      const result = { ...built.targets[0]!, warnings: built.warnings };
      // What the build wrote counts before anything of it is exported or reported as done.
      quota?.check();
      for (const s of streamed) {
        if (!existsSync(s.path)) continue;
        for await (const chunk of createReadStream(s.path, { highWaterMark: CHUNK })) {
          signal.throwIfAborted();
          // A client that went away never drains: stop waiting when the build is aborted.
          if (!send({ output: { index: s.index, data: chunk as Buffer, last: false } })) await drainOrAbort(call, signal);
          signal.throwIfAborted();
        }
        send({ output: { index: s.index, data: Buffer.alloc(0), last: true } });
      }
      const digest = result.exports.find((e) => e.digest)?.digest ?? '';
      return {
        digest,
        images: result.images.map((i) => ({ platform: formatPlatform(i.platform), config_json: JSON.stringify(i.config) })),
        exports: result.exports.map((e) => ({ type: e.type, digest: e.digest ?? '', names: e.names ?? [] })),
        warnings: result.warnings.map((w) => ({ line: w.line ?? 0, message: new PathScrubber(this.opts.root, buildDir).scrub(w.message) })),
        explanations_json: JSON.stringify(result.explanations),
      };
    } finally {
      cache.current?.releaseAll();
    }
  }
}

function syncOf(s: SyncStats): ContextSync {
  return { files: s.files, filesUploaded: s.files_uploaded, bytesUploaded: Number(s.bytes_uploaded), filesReused: s.files_reused };
}

/** Resolves when the call can take more output, or when the build is aborted (a gone client never drains). */
function drainOrAbort(call: Duplex, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
    if (signal.aborted) done();
  });
}

/** This machine's platform first, then those it can run through registered QEMU emulators (native/binfmt.ts decides). */
function detectPlatforms(): string[] {
  return [...new Set(runnablePlatforms().map((p) => formatPlatform(normalizePlatform(p))))];
}

export function defaultNodeName(): string {
  return hostname();
}
