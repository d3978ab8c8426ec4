// moby.buildkit.v1.frontend.LLBBridge, the gateway buildx runs its build function against: Ping (what
// this builder can do), Solve (frontend dockerfile.v0 → kiln's engine, exporting as the build's
// Control.Solve asked), Return (the function's result or error, which ends that Control.Solve).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { errorMessage, UserError } from '../../base/errors.js';
import { parsePlatform, normalizePlatform } from '../../base/oci/platform.js';
import { Canceled, grpcError, whenClientGone, type ControlService } from './control.js';
import { solveDockerfile } from './engine-adapter.js';
import type { BuildkitHost } from './host.js';
import type { SolveInfo } from './build-registry.js';
import { workerRecords } from './workers.js';

const BUILD_ID = 'buildkit-controlapi-buildid';

/** The gateway features kiln implements; a client falls back or refuses where one is missing. */
const FRONTEND_CAPS = ['solve.base', 'return', 'returnmap', 'proto.refarray', 'frontend.inputs', 'gateway.warnings'];
const LLB_CAPS = ['source.image', 'source.local', 'source.local.unique', 'source.local.sessionid', 'source.local.includepatterns', 'source.local.excludepatterns', 'source.local.followpaths', 'source.local.sharedkeyhint', 'exec.meta.base', 'exec.mount.bind', 'exec.mount.cache', 'exec.mount.secret', 'exec.mount.tmpfs', 'file.base', 'constraints', 'platform', 'meta.description'];

interface GatewaySolveRequest {
  Definition?: { def: Buffer[] } | null;
  Frontend: string;
  FrontendOpt: Record<string, string>;
  Evaluate: boolean;
  Final: boolean;
}

/** Per-tenant serialisation of synced dirs: a dir is used by one build at a time. */
class DirLocks {
  private readonly tails = new Map<string, Promise<void>>();
  async lock(key: string): Promise<() => void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}

export class GatewayService {
  private readonly locks = new DirLocks();

  constructor(
    private readonly host: BuildkitHost,
    private readonly control: ControlService,
  ) {
    control.directSolve = (info, attrs) => this.runSolve(info, attrs).then((r) => r.exporterResponse);
  }

  private caller(call: grpc.ServerUnaryCall<unknown, unknown>): { tenant: string; ref: string } {
    const tenant = this.host.identify(call);
    const ref = String(call.metadata.get(BUILD_ID)[0] ?? '');
    if (!ref) throw new UserError('gateway call without a build id');
    return { tenant, ref };
  }

  private async solveOf(tenant: string, ref: string): Promise<SolveInfo> {
    const info = await this.control.builds.get(ref).waitSolve(10_000);
    if (!info || info.tenant !== tenant) throw Object.assign(new Error(`no build ${ref}`), { code: grpc.status.NOT_FOUND });
    return info;
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Ping: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        try {
          this.host.identify(call);
        } catch (err) {
          cb({ code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` });
          return;
        }
        const caps = (ids: string[]) => ids.map((ID) => ({ ID, Enabled: true }));
        cb(null, { FrontendAPICaps: caps(FRONTEND_CAPS), LLBCaps: caps(LLB_CAPS), Workers: workerRecords(this.host.name, this.host.platforms) });
      },
      Solve: (call: grpc.ServerUnaryCall<GatewaySolveRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => void this.solve(call, cb),
      Return: (call: grpc.ServerUnaryCall<{ error?: { code: number; message: string } | null }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        void (async () => {
          const { tenant, ref } = this.caller(call);
          await this.solveOf(tenant, ref);
          const e = call.request.error;
          this.control.builds.get(ref).resolveReturn(e && e.code ? { error: e.message, code: e.code } : {});
          return {};
        })().then(
          (r) => cb(null, r),
          (err) => cb(grpcError(err)),
        );
      },
      Warn: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    };
  }

  private async solve(call: grpc.ServerUnaryCall<GatewaySolveRequest, unknown>, reply: grpc.sendUnaryData<unknown>): Promise<void> {
    let answered = () => {};
    const cb: grpc.sendUnaryData<unknown> = (err, res) => {
      answered();
      reply(err, res);
    };
    try {
      const { tenant, ref } = this.caller(call);
      const info = await this.solveOf(tenant, ref);
      const req = call.request;
      answered = whenClientGone(call, () => info.abort.abort(new Canceled('the client went away')));
      if (!req.Frontend) {
        if (req.Definition?.def?.length) throw Object.assign(new Error('this builder does not solve LLB definitions from the gateway yet'), { code: grpc.status.UNIMPLEMENTED });
        cb(null, { ref: '', result: { ref: { id: '' }, metadata: {} } });
        return;
      }
      if (req.Frontend !== 'dockerfile.v0') throw new UserError(`frontend "${req.Frontend}" is not supported by this builder (dockerfile.v0 is)`);
      const outcome = await this.runSolve(info, { ...info.frontendAttrs, ...req.FrontendOpt });
      // A subrequest (--call=check) answers with metadata only.
      if (outcome.metadata) return cb(null, { ref: '', result: { metadata: outcome.metadata } });
      const metadata: Record<string, Buffer> = {};
      const id = randomBytes(12).toString('hex');
      let result;
      if (outcome.configs.length > 1) {
        const refs: Record<string, { id: string }> = {};
        const platforms = outcome.configs.map((c) => {
          refs[c.platform] = { id: `${id}-${c.platform}` };
          metadata[`containerimage.config/${c.platform}`] = Buffer.from(c.config);
          const p = normalizePlatform(parsePlatform(c.platform));
          return { id: c.platform, platform: { os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) } };
        });
        metadata['refs.platforms'] = Buffer.from(JSON.stringify({ platforms }));
        result = { refs: { refs }, metadata };
      } else {
        if (outcome.configs[0]) metadata['containerimage.config'] = Buffer.from(outcome.configs[0].config);
        result = { ref: { id }, metadata };
      }
      cb(null, { ref: id, result });
    } catch (err) {
      const ref = String(call.metadata.get(BUILD_ID)[0] ?? '');
      if (ref) this.control.builds.get(ref).solveError ??= errorMessage(err);
      cb(grpcError(err));
    }
  }

  /** One dockerfile.v0 solve of a build, on its tenant's state, with its session. */
  private async runSolve(info: SolveInfo, frontendOpt: Record<string, string>) {
    const entry = this.control.builds.get(info.ref);
    const session = await this.control.sessions.get(info.session);
    if (!session) throw new UserError(`the client's session ${info.session} is not open`);
    const t = await this.host.tenant(info.tenant);
    const buildDir = join(this.host.root, 'buildkit', 'builds', randomBytes(8).toString('hex'));
    const release = this.host.acquireSlot ? await this.host.acquireSlot(info.tenant, info.abort.signal) : () => {};
    try {
      const outcome = await t.shared(() =>
        solveDockerfile({
          state: t.state,
          session,
          solve: info,
          frontendOpt,
          syncRoot: join(this.host.root, 'buildkit', 'sync', Buffer.from(info.tenant).toString('hex')),
          buildDir,
          allowedEntitlements: this.host.entitlements,
          progress: (ev) => {
            const s = entry.translator.translate(ev);
            if (s) entry.emit(s);
          },
          step: (name) => entry.translator.step(name, (s) => entry.emit(s)),
          signal: info.abort.signal,
          lock: (key) => this.locks.lock(key),
        }),
      );
      Object.assign(entry.exporterResponse, outcome.exporterResponse);
      entry.syncBytes = (entry.syncBytes ?? 0) + outcome.sync.contentBytes;
      return outcome;
    } catch (err) {
      throw info.abort.signal.aborted && info.abort.signal.reason instanceof Canceled ? info.abort.signal.reason : err;
    } finally {
      release();
      await rm(buildDir, { recursive: true, force: true });
    }
  }
}
