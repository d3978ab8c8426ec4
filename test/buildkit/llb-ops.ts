// Writes LLB definitions in tests the way BuildKit's client library does: each op marshalled with
// kiln's proto/buildkit/ops.proto, named by the sha256 of its bytes, the terminal op last.
import { createHash } from 'node:crypto';
import { codec } from '../../src/buildkit/proto.js';

export interface OpRef {
  digest: string;
  index: number;
}

export const AMD64 = { OS: 'linux', Architecture: 'amd64' };

export class LlbDef {
  readonly def: Buffer[] = [];
  readonly metadata: Record<string, { description?: Record<string, string>; ignore_cache?: boolean }> = {};
  private readonly op = codec<Record<string, unknown>>('pb.Op');
  private readonly added = new Set<string>();

  /** Adds a pb.Op (plain object as ops.proto spells it); returns its output 0. */
  add(op: Record<string, unknown>, name?: string): OpRef {
    return this.addBytes(this.op.encode(op), name);
  }

  addBytes(bytes: Buffer, name?: string): OpRef {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (!this.added.has(digest)) {
      this.added.add(digest);
      this.def.push(bytes);
    }
    if (name) this.metadata[digest] = { description: { 'llb.customname': name } };
    return { digest, index: 0 };
  }

  image(ref: string, name?: string): OpRef {
    return this.add({ source: { identifier: `docker-image://${ref}` }, platform: AMD64 }, name);
  }

  local(dirName: string, attrs: Record<string, string> = {}): OpRef {
    return this.add({ source: { identifier: `local://${dirName}`, attrs: { 'local.sharedkeyhint': dirName, ...attrs } } });
  }

  /** The definition with `result` as the terminal op's input. */
  definition(result: OpRef): { def: Buffer[]; metadata: LlbDef['metadata'] } {
    const terminal = this.op.encode({ inputs: [result] });
    return { def: [...this.def, terminal], metadata: this.metadata };
  }
}

/** `sh -c SCRIPT` on `root` (output 0 = the rootfs), with extra read-only bind mounts. */
export function execOp(root: OpRef, script: string, mounts: { input: OpRef; dest: string }[] = []): Record<string, unknown> {
  return {
    inputs: [root, ...mounts.map((m) => m.input)],
    exec: {
      meta: { args: ['sh', '-c', script], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/' },
      mounts: [{ input: 0, dest: '/', output: 0 }, ...mounts.map((m, i) => ({ input: i + 1, dest: m.dest, output: -1, readonly: true }))],
    },
    platform: AMD64,
  };
}

/** A chain of file actions on `base` (input 0), copies reading from `from` (input 1), as BuildKit's llb marshals one. */
export function fileChain(base: OpRef | null, from: OpRef | null, actions: Record<string, unknown>[]): Record<string, unknown> {
  const inputs = [base, from].filter((x): x is OpRef => x !== null);
  const baseIndex = base ? 0 : -1;
  const fromIndex = from ? (base ? 1 : 0) : -1;
  return {
    inputs,
    file: {
      actions: actions.map((a, i) => ({
        input: i === 0 ? baseIndex : inputs.length + i - 1,
        secondaryInput: 'copy' in a ? fromIndex : -1,
        output: i === actions.length - 1 ? 0 : -1,
        ...a,
      })),
    },
    platform: AMD64,
  };
}

export const mkfile = (path: string, data: string, mode = 0o644) => ({ mkfile: { path, mode, data: Buffer.from(data), timestamp: -1 } });
export const mkdir = (path: string, mode = 0o755) => ({ mkdir: { path, mode, makeParents: true, timestamp: -1 } });
export const copy = (src: string, dest: string, extra: Record<string, unknown> = {}) => ({ copy: { src, dest, mode: -1, timestamp: -1, createDestPath: true, allowWildcard: true, ...extra } });
