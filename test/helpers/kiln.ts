// Runs the kiln CLI as a user would (node bin/kiln.js …) with its own state dir.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';

export const kilnBin = join(repoRoot, 'bin', 'kiln.js');

export interface KilnResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function tempRoot(prefix = 'kiln-state-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function kiln(root: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): KilnResult {
  const r = spawnSync(process.execPath, [kilnBin, ...args], {
    env: { ...process.env, KILN_ROOT: root, ...opts.env },
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Starts kiln without waiting (for lock and signal tests). */
export function kilnAsync(root: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const child = spawn(process.execPath, [kilnBin, ...args], { env: { ...process.env, KILN_ROOT: root, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<KilnResult>((resolve) => child.on('close', (code) => resolve({ status: code ?? 128, stdout, stderr })));
  return { child, done, output: () => ({ stdout, stderr }) };
}
