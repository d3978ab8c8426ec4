// Files and directories the CLI writes results to (--iidfile, --metadata-file, -o dest=…): checked before
// the build starts, so a typo does not cost a whole build, and written with one clear line naming the flag
// when the file system still refuses (a directory, a read-only or full disk, a missing parent).
import { closeSync, openSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { OutputSpec } from '../engine/exports.js';
import { FlagError } from './flags.js';

function statOrUndefined(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

/** Why a write to `path` failed, in words (the errno code stays at the end for searching). */
function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    EISDIR: 'it is a directory',
    ENOENT: 'its directory does not exist',
    ENOTDIR: 'a parent is not a directory',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
  };
  return code ? `${words[code] ?? (err as Error).message.split('\n')[0]} (${code})` : String((err as Error).message ?? err);
}

/**
 * Refuses a file destination that is a directory, whose directory is not a directory, or that cannot be
 * created or written: the file is opened for appending (nothing written) and removed again if it was
 * not there. `createsParents`: the writer makes a missing directory itself (-o dest=), so that is no error.
 */
export function checkOutputFile(flag: string, path: string, createsParents = false): void {
  const abs = resolve(path);
  const st = statOrUndefined(abs);
  if (st?.isDirectory()) throw new FlagError(`invalid value "${path}" for flag ${flag}: it is a directory, not a file`);
  const parent = statOrUndefined(dirname(abs));
  if (parent && !parent.isDirectory()) throw new FlagError(`invalid value "${path}" for flag ${flag}: ${dirname(abs)} is not a directory`);
  if (!parent && createsParents) return;
  if (st && !st.isFile()) return; // a FIFO or /dev/stdout: opening it could block
  try {
    closeSync(openSync(abs, 'a'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' && parent ? 'the file system refuses to create it (ENOENT)' : reason(err);
    throw new FlagError(`${flag} ${path}: cannot write the file: ${why}`);
  }
  if (!st) unlinkSync(abs);
}

/** Refuses a directory destination that exists as something else. */
export function checkOutputDir(flag: string, path: string): void {
  const st = statOrUndefined(resolve(path));
  if (st && !st.isDirectory()) throw new FlagError(`invalid value "${path}" for flag ${flag}: it exists and is not a directory`);
}

/** The checks for every --output of a build, before it runs. */
export function checkOutputs(outputs: OutputSpec[]): void {
  for (const o of outputs) {
    if (o.type === 'local') checkOutputDir('--output', o.dest);
    else if (o.type !== 'image' && o.dest !== '-') checkOutputFile('--output', o.dest, true);
  }
}

/**
 * A file system error while writing one of the outputs (a read-only or full disk, a path the kernel
 * refuses), as one line naming --output and its dest; any other error is returned as it is.
 */
export function outputWriteError(err: unknown, outputs: OutputSpec[]): unknown {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof e.code !== 'string' || typeof e.path !== 'string') return err;
  for (const o of outputs) {
    if (o.type === 'image' || o.dest === '-') continue;
    const abs = resolve(o.dest);
    if (e.path === abs || e.path.startsWith(abs + '/') || abs.startsWith(e.path + '/')) {
      return new FlagError(`--output ${o.type === 'local' ? 'type=local,' : `type=${o.type},`}dest=${o.dest}: cannot write: ${reason(e)}`);
    }
  }
  return err;
}

/** Writes a result file; a failure is one line naming the flag and the path. */
export function writeOutputFile(flag: string, path: string, data: string): void {
  try {
    writeFileSync(path, data);
  } catch (err) {
    throw new FlagError(`${flag} ${path}: cannot write the file: ${reason(err)}`);
  }
}
