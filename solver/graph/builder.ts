// A small builder for graphs: add ops with their inputs, get references back; identical vertices (same
// op, inputs and platform) are added once, which is how two stages sharing a step run it once.
import { createHash } from 'node:crypto';
import { canonicalJSON } from './canonical.js';
import type { Definition, GraphPlatform, Op, Vertex, VertexInput, VertexMeta } from './ops.js';

export function vertexDigest(op: Op, inputs: VertexInput[], platform?: GraphPlatform): string {
  const body = canonicalJSON({ op, inputs, platform });
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

export class GraphBuilder {
  private readonly vertices = new Map<string, Vertex>();

  add(op: Op, inputs: VertexInput[] = [], opts: { platform?: GraphPlatform; meta?: VertexMeta } = {}): VertexInput {
    for (const input of inputs) {
      if (!this.vertices.has(input.digest)) throw new Error(`graph: input ${input.digest} was not added before its user`);
    }
    const digest = vertexDigest(op, inputs, opts.platform);
    const existing = this.vertices.get(digest);
    if (existing) {
      // Merge metadata: keep the first description, but a no-cache request from any user wins.
      if (opts.meta?.ignoreCache) existing.meta.ignoreCache = true;
    } else {
      this.vertices.set(digest, { digest, op, inputs, platform: opts.platform, meta: { ...opts.meta } });
    }
    return { digest, output: 0 };
  }

  get(digest: string): Vertex | undefined {
    return this.vertices.get(digest);
  }

  /** The vertices the outputs need, in dependency order (inputs before users). */
  definition(outputs: VertexInput[]): Definition {
    const order: Vertex[] = [];
    const seen = new Set<string>();
    const visit = (d: string) => {
      if (seen.has(d)) return;
      seen.add(d);
      const v = this.vertices.get(d);
      if (!v) throw new Error(`graph: unknown vertex ${d}`);
      for (const i of v.inputs) visit(i.digest);
      order.push(v);
    };
    for (const o of outputs) visit(o.digest);
    return { vertices: order, outputs };
  }
}

/** Checks a definition received from elsewhere (the wire): digests match their content, inputs exist and come first. */
export function verifyDefinition(def: Definition): void {
  const seen = new Set<string>();
  for (const v of def.vertices) {
    const d = vertexDigest(v.op, v.inputs, v.platform);
    if (d !== v.digest) throw new Error(`graph: vertex digest ${v.digest} does not match its content (${d})`);
    for (const i of v.inputs) if (!seen.has(i.digest)) throw new Error(`graph: vertex ${v.digest} uses ${i.digest} before it is defined`);
    seen.add(v.digest);
  }
  for (const o of def.outputs) if (!seen.has(o.digest)) throw new Error(`graph: output ${o.digest} is not in the graph`);
}
