// SLSA provenance (v0.2 predicate, the shape BuildKit writes) of one platform image: the build's inputs
// (Dockerfile, build args, target, context digest), the base images it read (materials, pinned by digest),
// and the graph that made it. mode=min keeps what identifies the inputs; mode=max adds the full graph,
// the Dockerfile text and the ids of the secrets and SSH sockets the build was given (never their values).
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Definition, Vertex } from '../../solver/graph/ops.js';
import { IgnoreMatcher } from '../../base/patterns/dockerignore.js';

export const KILN_BUILD_TYPE = 'https://kiln.dev/build@v1';
export const KILN_METADATA_KEY = 'https://kiln.dev/build@v1#metadata';

export interface Material {
  uri: string;
  digest: Record<string, string>;
}

export interface ProvenanceInput {
  mode: 'min' | 'max';
  platform: string;
  dockerfile: { name: string; text: string };
  buildArgs: Record<string, string>;
  target?: string;
  labels?: Record<string, string>;
  contextDigest?: string;
  /** The platform's graph: its output vertex digest is the graph digest. */
  definition: Definition;
  startedOn: string;
  finishedOn: string;
  secretIds?: string[];
  sshIds?: string[];
  noCache?: boolean;
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** The ref of a pinned image source as a docker purl, e.g. pkg:docker/127.0.0.1:5000/library/busybox@latest. */
function dockerPurl(ref: string, platform: string | undefined): string {
  const at = ref.lastIndexOf(':');
  const slash = ref.lastIndexOf('/');
  const [repo, tag] = at > slash ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
  return `pkg:docker/${repo}@${tag}${platform ? `?platform=${encodeURIComponent(platform)}` : ''}`;
}

function platformText(v: Vertex): string | undefined {
  return v.platform ? [v.platform.os, v.platform.architecture, v.platform.variant].filter(Boolean).join('/') : undefined;
}

/** Base images (and pinned oci-layout / http sources) the graph reads, each with its digest. */
export function materialsOf(def: Definition): Material[] {
  const out = new Map<string, Material>();
  for (const v of def.vertices) {
    if (v.op.kind !== 'source') continue;
    const id = v.op.identifier;
    const m = /^(docker-image|oci-layout):\/\/(.+)@(sha256):([0-9a-f]{64})$/.exec(id);
    if (m) {
      const uri = m[1] === 'docker-image' ? dockerPurl(m[2]!, platformText(v)) : `oci-layout://${m[2]}`;
      out.set(`${uri}@${m[4]}`, { uri, digest: { sha256: m[4]! } });
    } else if (/^https?:\/\//.test(id) && v.op.attrs?.checksum?.startsWith('sha256:')) {
      out.set(id, { uri: id, digest: { sha256: v.op.attrs.checksum.slice(7) } });
    }
  }
  return [...out.values()].sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
}

/**
 * Digest of a build context: sha256 over the sorted (path, type, mode, content digest / link target) of
 * every file .dockerignore lets through. The same files give the same digest on any machine.
 */
export function contextDigest(dir: string, ignorePatterns: string[], fileHash?: (real: string) => string): string {
  const ignore = ignorePatterns.length ? new IgnoreMatcher(ignorePatterns) : undefined;
  const lines: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (ignore?.matches(r)) continue;
      const real = join(dir, r);
      const st = lstatSync(real);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        lines.push(`${r}\0dir\0${mode}`);
        walk(r);
      } else if (st.isSymbolicLink()) lines.push(`${r}\0link\0${mode}`);
      else if (st.isFile()) lines.push(`${r}\0file\0${mode}\0${fileHash ? fileHash(real) : sha(readFileSync(real))}`);
    }
  };
  walk('');
  return `sha256:${sha(lines.join('\n'))}`;
}

export function provenancePredicate(inp: ProvenanceInput): Record<string, unknown> {
  const graphDigest = inp.definition.outputs[0]?.digest ?? `sha256:${sha('')}`;
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(inp.buildArgs).sort()) args[`build-arg:${k}`] = v;
  if (inp.target) args.target = inp.target;
  for (const [k, v] of Object.entries(inp.labels ?? {}).sort()) args[`label:${k}`] = v;
  if (inp.noCache) args['no-cache'] = '';
  const dockerfileDigest = sha(inp.dockerfile.text);
  const kilnMeta: Record<string, unknown> = {
    graphDigest,
    ...(inp.contextDigest ? { contextDigest: inp.contextDigest } : {}),
    dockerfileDigest: `sha256:${dockerfileDigest}`,
  };
  const predicate: Record<string, unknown> = {
    builder: { id: '' },
    buildType: KILN_BUILD_TYPE,
    materials: materialsOf(inp.definition),
    invocation: {
      configSource: { entryPoint: inp.dockerfile.name, digest: { sha256: dockerfileDigest } },
      parameters: {
        frontend: 'dockerfile.v0',
        args,
        locals: [{ name: 'context', ...(inp.contextDigest ? { digest: inp.contextDigest } : {}) }, { name: 'dockerfile' }],
        ...(inp.mode === 'max' ? { secrets: (inp.secretIds ?? []).map((id) => ({ id })), ssh: (inp.sshIds ?? []).map((id) => ({ id })) } : {}),
      },
      environment: { platform: inp.platform },
    },
    metadata: {
      buildStartedOn: inp.startedOn,
      buildFinishedOn: inp.finishedOn,
      completeness: { parameters: inp.mode === 'max', environment: true, materials: false },
      reproducible: false,
      [KILN_METADATA_KEY]: inp.mode === 'max' ? { ...kilnMeta, source: { dockerfile: inp.dockerfile.text } } : kilnMeta,
    },
  };
  if (inp.mode === 'max') {
    predicate.buildConfig = {
      graph: inp.definition.vertices.map((v) => ({
        id: v.digest,
        op: v.op,
        inputs: v.inputs.map((i) => `${i.digest}:${i.output}`),
        ...(v.platform ? { platform: platformText(v) } : {}),
        ...(v.meta.description ? { name: v.meta.description } : {}),
      })),
      outputs: inp.definition.outputs.map((o) => `${o.digest}:${o.output}`),
    };
  }
  return predicate;
}
