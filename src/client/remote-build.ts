// One build on a remote builder node: send the request and the context manifest, upload only the file
// contents the node asks for, answer secret requests, render the node's progress events with the local
// renderers, and write streamed outputs (oci/docker/tar archives, local dirs) where the user asked.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type * as grpc from '@grpc/grpc-js';
import { CHUNK, KILN_VERSION, type SolveRequest, type SolveResponse, type SolveResult } from '../protocol/builder.js';
import { encodeTarget, type WireContexts } from '../protocol/build-request.js';
import type { ProgressEvent, ProgressSink } from '../../solver/progress.js';
import type { OutputSpec } from '../engine/exports.js';
import type { BuildTarget } from '../engine/request.js';
import { UserError } from '../../base/errors.js';
import { CredentialStore } from '../../base/oci/registry/credentials.js';
import { contextManifest, type ContextManifest } from './manifest.js';
import { namedContextExcludes } from '../engine/named-context-ignore.js';
import { explainError, type Connection } from './connect.js';
import { writeRootfsTarToDir } from '../export/rootfs.js';
import { localExportOptions } from '../export/local-dir.js';

/** What a remote build takes: one target of the engine's request, and how the client follows it. */
export interface RemoteBuildInput {
  target: BuildTarget;
  explain?: boolean;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface RemoteBuildResult extends SolveResult {
  node: string;
}

/** Where a streamed output goes on this machine. */
interface OutputSink {
  sink: Writable;
  /** Settles when everything written has been flushed (never rejects: see `error`). */
  done: Promise<void>;
  /** The first write error, as the one line a user sees. */
  error(): Error | undefined;
  /** Puts the output in place (an archive file is renamed over its destination only now). */
  commit(): Promise<void>;
  /** Removes what was written so far. */
  discard(): Promise<void>;
}

function openOutput(o: OutputSpec): OutputSink {
  if (o.type === 'image') throw new Error('image outputs are not streamed');
  let failure: Error | undefined;
  const settle = (p: Promise<unknown>, what: string) =>
    p.then(
      () => {},
      (err: NodeJS.ErrnoException) => {
        failure ??= err instanceof UserError ? err : new UserError(`cannot write ${what}: ${err.code ? `${err.code}: ` : ''}${err.message.replace(/^[A-Z]+: /, '')}`);
      },
    );
  if (o.type === 'local') {
    const pass = new PassThrough();
    // The same staging and no-follow copy as a local type=local export (special bits, devices, sudo owner).
    const done = settle(writeRootfsTarToDir(pass, resolve(o.dest), localExportOptions(o.attrs)), o.dest);
    return { sink: pass, done, error: () => failure, commit: async () => {}, discard: async () => void pass.destroy() };
  }
  if (o.dest === '-') {
    if (process.stdout.isTTY) throw new UserError('refusing to write an archive to a terminal: use dest=FILE or redirect stdout');
    return { sink: process.stdout, done: Promise.resolve(), error: () => failure, commit: async () => {}, discard: async () => {} };
  }
  // Written under a temporary name in the destination's directory and renamed at the end: a failed or
  // canceled export leaves the previous file at the destination as it was.
  const path = resolve(o.dest);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.kiln-${randomBytes(6).toString('hex')}.tmp`);
  const ws: WriteStream = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  const done = settle(finished(ws), o.dest);
  return {
    sink: ws,
    done,
    error: () => failure,
    commit: async () => {
      try {
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw new UserError(`cannot write ${o.dest}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    },
    discard: async () => {
      ws.destroy();
      await done;
      await rm(tmp, { force: true });
    },
  };
}

/** Writes to a sink, waiting while it asks for a pause; a sink that failed fails the build with its error. */
async function writeOut(s: OutputSink, data: Buffer): Promise<void> {
  const failed = s.error();
  if (failed) throw failed;
  if (s.sink.write(data)) return;
  await new Promise<void>((res) => {
    const go = () => {
      s.sink.off('drain', go);
      s.sink.off('close', go);
      res();
    };
    s.sink.on('drain', go);
    s.sink.on('close', go);
  });
  const after = s.error();
  if (after) throw after;
}

export async function remoteBuild(conn: Connection, input: RemoteBuildInput): Promise<RemoteBuildResult> {
  const t = input.target;
  let manifest: ContextManifest | undefined;
  if (t.contextDir) manifest = await contextManifest(t.contextDir, t.dockerfile.path);
  const named: WireContexts['named'] = {};
  const paths = new Map(manifest?.paths ?? []);
  for (const [name, spec] of Object.entries(t.buildContexts ?? {})) {
    if (spec.kind !== 'local') continue;
    const m = await contextManifest(spec.path, undefined, { patterns: namedContextExcludes(spec.path) ?? [] });
    for (const [d, p] of m.paths) paths.set(d, p);
    named[name] = m.entries;
  }
  const dockerfileRel = t.contextDir && t.dockerfile.path?.startsWith(t.contextDir + '/') ? t.dockerfile.path.slice(t.contextDir.length + 1) : '';
  const start = encodeTarget(t, { explain: input.explain }, { context: manifest?.entries, dockerfilePath: dockerfileRel, dockerignore: manifest?.ignorePatterns, named }, `kiln ${KILN_VERSION} ${hostname()}`);
  const outputs = t.outputs;

  const call = conn.client.Solve(conn.metadata()) as grpc.ClientDuplexStream<SolveRequest, SolveResponse>;
  const onAbort = () => call.cancel();
  input.signal?.addEventListener('abort', onAbort, { once: true });
  const write = async (m: SolveRequest) => {
    if (!call.write(m)) await new Promise((r) => call.once('drain', r));
  };
  const sinks = new Map<number, OutputSink>();
  let result: SolveResult | undefined;
  let node = conn.node.name;
  // Responses are handled one after another (uploads and output writes keep their order).
  let work: Promise<void> = Promise.resolve();
  let localCredentials: CredentialStore | undefined;

  const handle = async (m: SolveResponse) => {
    if (m.accepted) node = m.accepted.node || node;
    else if (m.progress) input.progress?.(JSON.parse(m.progress.json) as ProgressEvent);
    else if (m.need_files) {
      for (const d of m.need_files.digests) {
        const path = paths.get(d);
        if (!path) throw new UserError(`builder asked for content ${d} that is not in the context`);
        for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) await write({ file: { digest: d, data: chunk as Buffer, last: false } });
        await write({ file: { digest: d, data: Buffer.alloc(0), last: true } });
      }
    } else if (m.need_secrets) {
      for (const id of m.need_secrets.ids) await write({ secret: { id, value: t.secrets?.[id] ?? Buffer.alloc(0) } });
    } else if (m.need_credentials) {
      // Registry credentials come from this user's docker config, never from the builder operator's.
      const found = (localCredentials ??= CredentialStore.fromDockerConfig()).get(m.need_credentials.host);
      await write({ credentials: { id: m.need_credentials.id, username: found?.username ?? '', password: found?.password ?? '' } });
    } else if (m.output) {
      let s = sinks.get(m.output.index);
      if (!s) {
        const o = outputs[m.output.index];
        if (!o) throw new UserError(`builder sent output ${m.output.index}, which was not asked for`);
        s = openOutput(o);
        sinks.set(m.output.index, s);
      }
      if (m.output.data.length) await writeOut(s, m.output.data);
      if (m.output.last && s.sink !== process.stdout) s.sink.end();
    } else if (m.result) result = m.result;
  };

  try {
    await new Promise<void>((resolvePromise, reject) => {
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        call.cancel();
        reject(err);
      };
      call.on('data', (m: SolveResponse) => {
        work = work.then(() => (failed ? undefined : handle(m))).catch(fail);
      });
      let explaining: Promise<Error> | undefined;
      call.on('error', (err) => {
        if (input.signal?.aborted) fail(new UserError('build canceled'));
        else {
          explaining = explainError(conn.node, err);
          void explaining.then(fail, fail);
        }
      });
      call.on('end', () => {
        void work.then(() => {
          if (failed || explaining) return;
          call.end();
          resolvePromise();
        });
      });
      call.write({ start });
    });
    await Promise.all([...sinks.values()].map((s) => s.done));
    const failed = [...sinks.values()].map((s) => s.error()).find((e) => e);
    if (failed) throw failed;
    if (!result) throw new UserError(`builder ${conn.node.name} ended the build without a result`);
    for (const s of sinks.values()) await s.commit();
  } catch (err) {
    for (const s of sinks.values()) await s.discard().catch(() => {});
    throw err;
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
  }
  return { ...result!, node };
}
