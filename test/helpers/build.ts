// Builds a Dockerfile with the kiln CLI from a context written to a temp dir, and reads back what a user
// would look at: the image config (via --metadata-file), its digest, stderr.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { kiln, kilnAsync, type KilnResult } from './kiln.js';

export type ContextFiles = Record<string, string | { content: string; mode?: number }>;

export function writeContext(files: ContextFiles): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ctx-'));
  for (const [name, spec] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    const { content, mode } = typeof spec === 'string' ? { content: spec, mode: undefined } : spec;
    writeFileSync(path, content);
    if (mode !== undefined) chmodSync(path, mode);
  }
  return dir;
}

export interface BuildOutcome extends KilnResult {
  context: string;
  digest?: string;
  config?: { config?: Record<string, any>; history?: any[]; rootfs?: { diff_ids: string[] }; [k: string]: any };
}

export function kilnBuild(root: string, files: ContextFiles, args: string[] = [], opts: { env?: NodeJS.ProcessEnv; context?: string } = {}): BuildOutcome {
  const context = opts.context ?? writeContext(files);
  const meta = join(context, '.kiln-metadata.json');
  const r = kiln(root, ['build', '--progress', 'plain', '--metadata-file', meta, ...args, context], { env: opts.env, timeoutMs: 300_000 });
  return withMetadata(r, context, meta);
}

function withMetadata(r: KilnResult, context: string, meta: string): BuildOutcome {
  const out: BuildOutcome = { ...r, context };
  if (r.status === 0 && existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8'));
    out.digest = m['containerimage.digest'];
    out.config = m['containerimage.config'];
  }
  return out;
}

/** Like kilnBuild, without blocking this process (when the test itself serves something kiln fetches). */
export async function kilnBuildAsync(root: string, files: ContextFiles, args: string[] = []): Promise<BuildOutcome> {
  const context = writeContext(files);
  const meta = join(context, '.kiln-metadata.json');
  const r = await kilnAsync(root, ['build', '--progress', 'plain', '--metadata-file', meta, ...args, context]).done;
  return withMetadata(r, context, meta);
}

/** The last line of stderr: where kiln prints a user error. */
export function errorLine(r: KilnResult): string {
  return r.stderr.trim().split('\n').at(-1) ?? '';
}
