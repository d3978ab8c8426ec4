// moby.buildkit.v1.Control as kiln serves it: Info, ListWorkers, Session, Status, Solve, DiskUsage,
// Prune and the build history. A buildx build is one Solve (the exporters), one Status (progress), one
// Session (files, secrets, credentials, outputs) and the gateway calls that run the dockerfile.v0 solve
// (gateway.ts); all of them meet in the build registry by the build's ref.
import * as grpc from '@grpc/grpc-js';
import { errorMessage, isUserFacing } from '../../base/errors.js';
import { diskUsage, prune, type UsageRecord } from '../../cache/gc.js';
import { BuildRegistry, type SolveInfo } from './build-registry.js';
import { BuildRecorder } from '../engine/history/recorder.js';
import { HistoryStore, inProgress, type HistoryRecord } from '../engine/history/store.js';
import { formatPlatform } from '../../base/oci/platform.js';
import { eventType, findByRef, historyRecordMsg, refOf, replayStatus, watchHistory } from './history.js';
import { readAttrs } from './frontend-attrs.js';
import { describeBlob } from './content-service.js';
import type { BuildkitHost } from './host.js';
import { timestamp } from './progress.js';
import { ClientSession, Sessions } from './session-grpc.js';
import { solveLLB } from './llb/solve.js';
import type { WireDefinition } from './llb/wire.js';
import { versionRecord, workerRecords } from './workers.js';

export class Canceled extends Error {}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

interface KV {
  [k: string]: string;
}

export interface SolveRequestMsg {
  Ref: string;
  Definition?: WireDefinition | null;
  ExporterDeprecated: string;
  ExporterAttrsDeprecated: KV;
  Session: string;
  Frontend: string;
  FrontendAttrs: KV;
  Cache?: { Exports: { Type: string; Attrs: KV }[]; Imports: { Type: string; Attrs: KV }[] } | null;
  Entitlements: string[];
  /** buildx's own helper builds: not recorded in the history. */
  Internal: boolean;
  Exporters: { Type: string; Attrs: KV }[];
}

/**
 * Calls fn when the client cancels the call or goes away before it is answered. (grpc-js also emits
 * 'cancelled' after a call is answered; those are not cancellations.) Returns "answered".
 */
export function whenClientGone(call: { on(ev: 'cancelled', fn: () => void): unknown }, fn: () => void): () => void {
  let answered = false;
  call.on('cancelled', () => {
    if (!answered) fn();
  });
  return () => (answered = true);
}

export function grpcError(err: unknown, fallback = grpc.status.INTERNAL): grpc.ServiceError {
  const code = err instanceof Canceled ? grpc.status.CANCELLED : (err as { code?: number }).code ?? (isUserFacing(err) ? grpc.status.INVALID_ARGUMENT : fallback);
  return Object.assign(new Error(errorMessage(err)), { code, details: errorMessage(err), metadata: new grpc.Metadata() });
}

export class ControlService {
  readonly builds = new BuildRegistry();
  readonly sessions = new Sessions();
  /** Runs a frontend solve sent straight to Control.Solve (buildctl --frontend dockerfile.v0). */
  directSolve?: (info: SolveInfo, frontendAttrs: KV) => Promise<Record<string, string>>;

  constructor(private readonly host: BuildkitHost) {}

  /** The tenant's one history (kiln's own protocol and local builds record into it too). */
  private async historyOf(tenant: string): Promise<HistoryStore> {
    return new HistoryStore((await this.host.tenant(tenant)).state.root);
  }

  /** The caller's tenant, or undefined after refusing the call through `refuse`. */
  private tenantOf(call: Parameters<BuildkitHost['identify']>[0], refuse: (err: Partial<grpc.StatusObject>) => void): string | undefined {
    try {
      return this.host.identify(call);
    } catch (err) {
      refuse({ code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` });
      return undefined;
    }
  }

  private unary<Req, Res>(fn: (tenant: string, req: Req) => Promise<Res>): Unary<Req, Res> {
    return (call, cb) => {
      const tenant = this.tenantOf(call, (e) => cb(e));
      if (tenant === undefined) return;
      fn(tenant, call.request).then(
        (res) => cb(null, res),
        (err) => cb(grpcError(err)),
      );
    };
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Info: this.unary(async () => ({ buildkitVersion: versionRecord() })),
      ListWorkers: this.unary(async () => ({ record: workerRecords(this.host.name, this.host.platforms) })),
      Session: (call: grpc.ServerDuplexStream<{ data: Buffer }, { data: Buffer }>) => this.session(call),
      Status: (call: grpc.ServerWritableStream<{ Ref: string }, unknown>) => this.status(call),
      Solve: (call: grpc.ServerUnaryCall<SolveRequestMsg, unknown>, cb: grpc.sendUnaryData<unknown>) => void this.solve(call, cb),
      DiskUsage: this.unary(async (tenant) => {
        const t = await this.host.tenant(tenant);
        return { record: (await diskUsage(t.state)).map(usageRecord) };
      }),
      Prune: (call: grpc.ServerWritableStream<{ all: boolean; keepDuration: string; reservedSpace: string; maxUsedSpace: string }, unknown>) => void this.prune(call),
      ListenBuildHistory: (call: grpc.ServerWritableStream<{ ActiveOnly: boolean; Ref: string; EarlyExit: boolean; Limit: number }, unknown>) => this.listenHistory(call),
      UpdateBuildHistory: this.unary(async (tenant, req: { Ref: string; Delete: boolean }) => {
        if (req.Delete) {
          const store = await this.historyOf(tenant);
          const r = findByRef(store, req.Ref);
          if (!r) throw Object.assign(new Error(`no build ${req.Ref} in the history`), { code: grpc.status.NOT_FOUND });
          if (inProgress(r)) throw Object.assign(new Error(`build ${req.Ref} is still running`), { code: grpc.status.FAILED_PRECONDITION });
          store.remove(r.id);
        }
        return {};
      }),
    };
  }

  private session(call: grpc.ServerDuplexStream<{ data: Buffer }, { data: Buffer }>): void {
    if (this.tenantOf(call, (e) => call.emit('error', e)) === undefined) return;
    const get = (k: string) => call.metadata.get(k).map(String);
    const id = get('x-docker-expose-session-uuid')[0];
    if (!id) {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'session: no X-Docker-Expose-Session-Uuid header' });
      return;
    }
    const methods = new Set(get('x-docker-expose-session-grpc-method').flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
    const s = new ClientSession(id, get('x-docker-expose-session-name')[0] ?? '', get('x-docker-expose-session-sharedkey')[0] ?? '', methods, call);
    this.sessions.add(s);
  }

  private status(call: grpc.ServerWritableStream<{ Ref: string }, unknown>): void {
    const tenant = this.tenantOf(call, (e) => call.emit('error', e));
    if (tenant === undefined) return;
    void this.historyOf(tenant).then(
      (store) => {
        // An ended build (`buildx history logs`): its progress as the history kept it.
        const r = this.builds.isLive(call.request.Ref) ? undefined : findByRef(store, call.request.Ref);
        if (r && !inProgress(r)) {
          for (const s of replayStatus(store, r)) call.write(s);
          call.end();
        } else this.follow(call, tenant);
      },
      (err) => call.emit('error', grpcError(err)),
    );
  }

  /** The progress of a build that runs (or is about to) through this API. */
  private follow(call: grpc.ServerWritableStream<{ Ref: string }, unknown>, tenant: string): void {
    const entry = this.builds.get(call.request.Ref);
    let checked = false;
    const off = entry.subscribe((s) => {
      if (!checked && entry.solve) {
        checked = true;
        if (entry.solve.tenant !== tenant) {
          call.emit('error', { code: grpc.status.NOT_FOUND, details: `no build ${call.request.Ref}` });
          off?.();
          return;
        }
      }
      if (s) call.write(s);
      else call.end();
    });
    call.on('cancelled', () => off());
  }

  private async solve(call: grpc.ServerUnaryCall<SolveRequestMsg, unknown>, cb: grpc.sendUnaryData<unknown>): Promise<void> {
    const tenant = this.tenantOf(call, (e) => cb(e));
    if (tenant === undefined) return;
    const req = call.request;
    const entry = this.builds.get(req.Ref);
    if (entry.solve) {
      cb({ code: grpc.status.ALREADY_EXISTS, details: `build ${req.Ref} is already running` });
      return;
    }
    const abort = new AbortController();
    const answered = whenClientGone(call, () => abort.abort(new Canceled('the client went away')));
    const reply: grpc.sendUnaryData<unknown> = (err, res) => {
      answered();
      cb(err, res);
    };
    const exporters = req.Exporters?.length ? req.Exporters : req.ExporterDeprecated ? [{ Type: req.ExporterDeprecated, Attrs: req.ExporterAttrsDeprecated }] : [];
    const info: SolveInfo = {
      ref: req.Ref,
      session: req.Session,
      exporters,
      frontendAttrs: req.FrontendAttrs ?? {},
      cacheImports: req.Cache?.Imports ?? [],
      cacheExports: req.Cache?.Exports ?? [],
      entitlements: req.Entitlements ?? [],
      tenant,
      abort,
    };
    try {
      // Recorded once, in the tenant's history, from now on (queued while the client's files sync).
      if (!req.Internal) info.recorder = await this.record(tenant, info, req.Frontend || 'dockerfile.v0');
    } catch (err) {
      reply(grpcError(err));
      return;
    }
    const recorder = info.recorder;
    entry.setSolve(info);
    try {
      let response: Record<string, string>;
      if (req.Frontend) {
        if (!this.directSolve) throw Object.assign(new Error('frontend solves are not available'), { code: grpc.status.UNIMPLEMENTED });
        response = await this.directSolve(info, req.FrontendAttrs ?? {});
      } else if (req.Definition?.def?.length) {
        response = await solveLLB(this.host, this, info, req.Definition);
      } else {
        // buildx's build function runs against the gateway (gateway.ts) and returns here.
        const returned = await Promise.race([
          entry.returned,
          new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true })),
        ]);
        // A failed solve of kiln's reaches the client as BuildKit's do: kiln's words, code Unknown.
        if (returned.error) throw Object.assign(new Error(entry.solveError ?? returned.error), { code: entry.solveError ? grpc.status.UNKNOWN : returned.code ?? grpc.status.UNKNOWN });
        response = entry.exporterResponse;
      }
      recorder?.finish({ status: 'completed' });
      reply(null, { ExporterResponse: response });
    } catch (err) {
      const canceled = abort.signal.aborted && abort.signal.reason instanceof Canceled;
      recorder?.finish({ status: canceled ? 'canceled' : 'failed', error: errorMessage(canceled ? abort.signal.reason : err) });
      abort.abort(new Canceled('the build failed'));
      reply(grpcError(err));
    } finally {
      this.builds.finish(req.Ref);
    }
  }

  /** A build's record in the tenant's history, with buildx's ref and request (the engine fills in the rest). */
  private async record(tenant: string, info: SolveInfo, frontend: string): Promise<BuildRecorder> {
    const store = await this.historyOf(tenant);
    let attrs: ReturnType<typeof readAttrs> | undefined;
    try {
      attrs = readAttrs(info.frontendAttrs);
    } catch {
      // Attributes the frontend refuses: the build fails with that error, and is still recorded.
    }
    return new BuildRecorder(store, {
      origin: `buildkit:${tenant}`,
      // The Dockerfile's text is read from the client's files later (engine-adapter.ts sets its digest).
      dockerfile: { name: attrs?.filename ?? 'Dockerfile', text: '' },
      target: attrs?.target,
      buildArgs: attrs?.buildArgs,
      platforms: (attrs?.platforms ?? []).map(formatPlatform),
      cacheImports: info.cacheImports.map((c) => c.Attrs.ref ?? c.Attrs.src ?? c.Type),
      cacheExports: info.cacheExports.map((c) => c.Attrs.ref ?? c.Attrs.dest ?? c.Type),
      queued: true,
      buildkit: { ref: info.ref, frontend, frontendAttrs: { ...info.frontendAttrs }, exporters: info.exporters },
    });
  }

  private async prune(call: grpc.ServerWritableStream<{ all: boolean; keepDuration: string; reservedSpace: string; maxUsedSpace: string }, unknown>): Promise<void> {
    try {
      const tenant = this.host.identify(call);
      const t = await this.host.tenant(tenant);
      const req = call.request;
      const keepNs = Number(req.keepDuration) || 0;
      const keepBytes = Number(req.maxUsedSpace) || Number(req.reservedSpace) || 0;
      const removed = await t.exclusive(async () => {
        const before = await diskUsage(t.state);
        await prune(t.state, { all: req.all, olderThanMs: keepNs ? keepNs / 1e6 : undefined, keepStorage: keepBytes || undefined });
        const after = new Set((await diskUsage(t.state)).map((r) => r.id));
        return before.filter((r) => !after.has(r.id));
      });
      for (const r of removed) call.write(usageRecord(r));
      call.end();
    } catch (err) {
      call.emit('error', grpcError(err));
    }
  }

  private listenHistory(call: grpc.ServerWritableStream<{ ActiveOnly: boolean; Ref: string; EarlyExit: boolean; Limit: number }, unknown>): void {
    const tenant = this.tenantOf(call, (e) => call.emit('error', e));
    if (tenant === undefined) return;
    const req = call.request;
    void this.host.tenant(tenant).then(
      (t) => {
        const store = new HistoryStore(t.state.root);
        // The image a record made, when the tenant's content store has it (buildx history inspect reads it there).
        const msg = (r: HistoryRecord) => historyRecordMsg(r, r.results.map((x) => x.digest && describeBlob(t.state.content, x.digest)).find(Boolean) || undefined);
        const wanted = (r: HistoryRecord) => (!req.Ref || refOf(r) === req.Ref || r.id === req.Ref) && (!req.ActiveOnly || inProgress(r));
        let list = store.list().filter(wanted);
        if (req.Limit > 0) list = list.slice(-req.Limit);
        for (const r of list) call.write({ type: eventType(r), record: msg(r) });
        if (req.EarlyExit) {
          call.end();
          return;
        }
        const off = watchHistory(store, (r) => {
          if (wanted(r) || (!inProgress(r) && (!req.Ref || refOf(r) === req.Ref))) call.write({ type: eventType(r), record: msg(r) });
        });
        call.on('cancelled', off);
      },
      (err) => call.emit('error', grpcError(err)),
    );
  }
}

function usageRecord(r: UsageRecord) {
  const last = Date.parse(r.lastUsed);
  return {
    ID: r.id,
    Mutable: r.id.startsWith('cachemount/'),
    InUse: false,
    Size: String(r.size),
    LastUsedAt: Number.isFinite(last) ? timestamp(last) : null,
    CreatedAt: Number.isFinite(last) ? timestamp(last) : null,
    UsageCount: '1',
    Description: r.description,
    RecordType: r.id.startsWith('cachemount/') ? 'exec.cachemount' : 'regular',
    Shared: r.inUseByImage,
    Parents: [],
  };
}
