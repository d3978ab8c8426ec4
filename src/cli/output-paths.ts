// Files and directories the CLI writes results to (--iidfile, --metadata-file, -o dest=…): checked before
// the build starts, so a typo does not cost a whole build, and written with one clear line naming the flag
// when the file system still refuses (a directory, a read-only or full disk, a missing parent).
import { statSync, writeFileSync, type Stats } from 'node:fs';
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

/** Refuses a file destination that is a directory or whose directory is not a directory. */
export function checkOutputFile(flag: string, path: string): void {
  const abs = resolve(path);
  if (statOrUndefined(abs)?.isDirectory()) throw new FlagError(`invalid value "${path}" for flag ${flag}: it is a directory, not a file`);
  const parent = statOrUndefined(dirname(abs));
  if (parent && !parent.isDirectory()) throw new FlagError(`invalid value "${path}" for flag ${flag}: ${dirname(abs)} is not a directory`);
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
    else if (o.type !== 'image' && o.dest !== '-') checkOutputFile('--output', o.dest);
  }
}

/** Writes a result file; a failure is one line naming the flag and the path. */
export function writeOutputFile(flag: string, path: string, data: string): void {
  try {
    writeFileSync(path, data);
  } catch (err) {
    throw new FlagError(`${flag} ${path}: cannot write the file: ${reason(err)}`);
  }
}
