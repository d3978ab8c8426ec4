// Test data for the converter: a resolver that answers every image with a fixed busybox-like config
// (what a registry would return for busybox), and small accessors over the produced graph.
import type { Definition, ExecOp, FileOp, GraphPlatform, Vertex } from '../../solver/graph/ops.js';
import { convertDockerfile, type ConvertOptions, type ConvertResult, type ImageConfigJSON, type ImageMetaResolver } from '../../frontends/dockerfile/convert/index.js';

export const AMD64: GraphPlatform = { os: 'linux', architecture: 'amd64' };
export const ARM64: GraphPlatform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
export const DIGEST = 'sha256:' + '1'.repeat(64);

export function busyboxConfig(p: GraphPlatform, extra: Partial<NonNullable<ImageConfigJSON['config']>> = {}): ImageConfigJSON {
  return {
    architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}),
    created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], ...extra },
    rootfs: { type: 'layers', diff_ids: ['sha256:' + '2'.repeat(64)] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'BusyBox 1.36.1 (glibc), Debian 13' }],
  };
}

/** Resolves any ref to busybox; per-ref overrides of the container config; records the calls. */
export function fakeResolver(overrides: Record<string, Partial<NonNullable<ImageConfigJSON['config']>>> = {}): ImageMetaResolver & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async resolve(ref, platform) {
      calls.push(ref);
      if (ref.includes('does-not-exist')) throw new Error(`${ref}: not found`);
      return { ref, digest: DIGEST, config: busyboxConfig(platform, overrides[ref] ?? {}) };
    },
  };
}

export function convert(dockerfile: string, opts: Partial<ConvertOptions> = {}): Promise<ConvertResult> {
  return convertDockerfile({ dockerfile, targetPlatform: AMD64, buildPlatform: AMD64, resolver: fakeResolver(), ...opts });
}

export const execs = (def: Definition): (Vertex & { op: ExecOp })[] => def.vertices.filter((v): v is Vertex & { op: ExecOp } => v.op.kind === 'exec');
export const files = (def: Definition): (Vertex & { op: FileOp })[] => def.vertices.filter((v): v is Vertex & { op: FileOp } => v.op.kind === 'file');
export const sources = (def: Definition): string[] => def.vertices.flatMap((v) => (v.op.kind === 'source' ? [v.op.identifier] : []));

/** The exec whose shell command is `cmd`. */
export function execOf(def: Definition, cmd: string): Vertex & { op: ExecOp } {
  const v = execs(def).find((e) => e.op.args[e.op.args.length - 1] === cmd);
  if (!v) throw new Error(`no exec running ${JSON.stringify(cmd)} in ${execs(def).map((e) => e.op.args.join(' ')).join(' | ')}`);
  return v;
}

export const envMap = (env: string[]): Record<string, string> => Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

export const history = (r: ConvertResult): string[] => (r.image.history ?? []).filter((h) => h.comment === 'buildkit.dockerfile.v0').map((h) => h.created_by ?? '');
