// A raw LLB solve (Control.Solve with a definition and no frontend, as `buildctl build < def.pb` sends):
// decode and check the definition, translate it to kiln's graph, bring in the local:// dirs it names
// through the client's session, then run it on kiln's engine with the exporters the client asked for,
// sending outputs back over the session. Progress shows each step under its BuildKit vertex digest.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../../base/errors.js';
import { hostPlatform, normalizePlatform } from '../../../base/oci/platform.js';
import type { Platform } from '../../../base/oci/types.js';
import type { ProgressEvent } from '../../../solver/progress.js';
import { runBuild, type BuildTarget } from '../../engine/build.js';
import type { SolveInfo } from '../build-registry.js';
import type { ControlService } from '../control.js';
import { cacheExports, cacheImports, outputsOf, sendLocalCaches } from '../engine-adapter.js';
import { receiveDir } from '../fsutil-receive.js';
import type { BuildkitHost } from '../host.js';
import { sendDir, sendFile } from '../output-send.js';
import { fetchSecrets, sessionCredentials } from '../session-attachables.js';
import type { ClientSession } from '../session-grpc.js';
import { forwardAgents } from '../ssh-forward.js';
import { decodeDefinition } from './decode.js';
import { translateDefinition, type LocalSource } from './translate.js';
import type { WireDefinition } from './wire.js';

/** One build at a time per synced dir (a dir is rewritten in place by its sync). */
const tails = new Map<string, Promise<void>>();
async function lockDir(key: string): Promise<() => void> {
  const prev = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  tails.set(key, tail);
  await prev;
  return () => {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  };
}

/** The image config of an LLB result: BuildKit's exporter gives a bare one (platform, PATH, workdir /). */
function bareImageConfig(p: Platform) {
  return {
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
  };
}

export async function solveLLB(host: BuildkitHost, control: ControlService, info: SolveInfo, wire: WireDefinition): Promise<Record<string, string>> {
  // Checked and translated before anything is read from the client or run.
  const llb = translateDefinition(decodeDefinition(wire));
  const entry = control.builds.get(info.ref);
  const emit = (ev: ProgressEvent) => {
    const d = 'digest' in ev ? llb.progressDigest.get(ev.digest) : undefined;
    const s = entry.translator.translate(d ? ({ ...ev, digest: d } as ProgressEvent) : ev);
    if (s) entry.emit(s);
  };
  const step = (name: string) => entry.translator.step(name, (s) => entry.emit(s));
  const needsSession = llb.locals.length > 0 || llb.secretIds.length > 0 || llb.sshIds.length > 0 || info.exporters.some((e) => e.Type !== 'image' && e.Type !== 'moby' && e.Type !== 'cacheonly');
  const session = info.session ? await control.sessions.get(info.session) : undefined;
  if (needsSession && !session) throw new UserError(`the client's session ${info.session || '(none)'} is not open; local sources, secrets and file outputs need one`);
  const t = await host.tenant(info.tenant);
  const signal = info.abort.signal;
  const buildDir = join(host.root, 'buildkit', 'builds', randomBytes(8).toString('hex'));
  const syncRoot = join(host.root, 'buildkit', 'sync', Buffer.from(info.tenant).toString('hex'));
  const release = host.acquireSlot ? await host.acquireSlot(info.tenant, signal) : () => {};
  const unlocks: (() => void)[] = [];
  let agents: { sockets: Record<string, string>; close(): void } | undefined;
  try {
    return await t.shared(async () => {
      // 1. The local dirs, from the session the source names (default: the solve's).
      const localDirs: Record<string, string> = {};
      for (const l of llb.locals) {
        const from = l.session && l.session !== info.session ? await control.sessions.get(l.session) : session;
        if (!from) throw new UserError(`local source "${l.dirName}": the client's session ${l.session} is not open`);
        localDirs[l.name] = await receiveLocal(from, l, syncRoot, unlocks, step, signal);
      }
      const secrets = session ? await fetchSecrets(session, llb.secretIds) : {};
      if (session) agents = await forwardAgents(session, llb.sshIds, join(buildDir, 'ssh'));

      // 2. The build on kiln's engine.
      mkdirSync(buildDir, { recursive: true });
      const { outputs, back } = outputsOf(info, buildDir);
      const platform = normalizePlatform(llb.platform ?? hostPlatform());
      const allow = info.entitlements.filter((e) => {
        if (!host.entitlements.includes(e)) throw new UserError(`entitlement ${e} is not allowed by this builder (kiln serve --allow-insecure-entitlement ${e})`);
        return true;
      });
      const cacheTo = cacheExports(info, buildDir);
      const epoch = info.frontendAttrs['build-arg:SOURCE_DATE_EPOCH'] ?? info.exporters.map((e) => e.Attrs['source-date-epoch']).find(Boolean);
      const target: BuildTarget = {
        dockerfile: { text: '', name: 'LLB definition' },
        outputs,
        secrets,
        ssh: agents?.sockets,
        allow,
        cacheFrom: await cacheImports({ solve: info, step, buildDir, session }),
        cacheTo: cacheTo.specs,
        sourceDateEpoch: epoch !== undefined && /^\d+$/.test(epoch) ? Number(epoch) : undefined,
        graph: {
          conversions: [{ definition: llb.definition, output: llb.output, image: bareImageConfig(platform), warnings: [], stagesUsed: [] }],
          platforms: [platform],
          localDirs,
        },
      };
      const result = (
        await runBuild(t.state, { targets: [target], registryCredentials: session ? sessionCredentials(session) : undefined, historyOrigin: `buildkit:${info.tenant}`, denyLocalFetch: true }, { progress: emit, signal })
      ).targets[0]!;
      signal.throwIfAborted();

      // 3. Outputs that go back to the client.
      for (const b of back) {
        if (!existsSync(b.path)) continue;
        const done = step(`sending ${info.exporters[b.id]!.Type} output to the client`);
        try {
          const bytes = b.kind === 'file' ? await sendFile(session!, b.id, b.path, signal) : await sendDir(session!, b.id, b.path, signal);
          done(undefined, `sent ${bytes} bytes`);
        } catch (err) {
          done((err as Error).message);
          throw err;
        }
      }
      const response: Record<string, string> = {};
      await sendLocalCaches({ solve: info, step, buildDir, session }, cacheTo.local, response);
      const digest = result.exports.find((e) => e.digest)?.digest;
      if (digest) response['containerimage.digest'] = digest;
      const names = result.exports.flatMap((e) => e.names ?? []);
      if (names.length) response['image.name'] = [...new Set(names)].join(',');
      Object.assign(entry.exporterResponse, response);
      return response;
    });
  } catch (err) {
    // Canceled by the client: its reason (control.ts answers CANCELLED), not whatever the abort broke.
    throw signal.aborted ? signal.reason : err;
  } finally {
    agents?.close();
    for (const u of unlocks.reverse()) u();
    release();
    await rm(buildDir, { recursive: true, force: true });
  }
}

async function receiveLocal(session: ClientSession, l: LocalSource, syncRoot: string, unlocks: (() => void)[], step: (name: string) => (error?: string, log?: string) => void, signal: AbortSignal): Promise<string> {
  // Kept between builds per client (its shared key) and filter set, so an unchanged dir sends no contents.
  const key = createHash('sha256').update(`${session.sharedKey}\0${l.sharedKeyHint ?? ''}\0llb\0${l.name}`).digest('hex').slice(0, 32);
  mkdirSync(syncRoot, { recursive: true });
  const dest = join(syncRoot, key);
  unlocks.push(await lockDir(dest));
  const done = step(`[internal] load local ${l.dirName}`);
  try {
    const stats = await receiveDir(session, dest, { dirName: l.dirName, includePatterns: l.includePatterns, excludePatterns: l.excludePatterns, followPaths: l.followPaths, signal });
    done(undefined, `transferring ${l.dirName}: ${stats.entries} entries, ${stats.filesRequested} changed file(s), ${stats.contentBytes} bytes`);
  } catch (err) {
    done((err as Error).message);
    throw err;
  }
  return dest;
}
