// Cache mounts of steps that run without the cache (--no-cache, --no-cache-filter) start empty, as in
// BuildKit v0.25: they get a dir of their own for the build, under the state root (cache mounts can be
// large, unlike tmpfs), removed when the build ends. Dirs a killed build left behind go at the next one.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function uncachedMountsRoot(stateRoot: string): { root: string; remove(): void } {
  const parent = join(stateRoot, 'cachemounts-uncached');
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
  const root = mkdtempSync(join(parent, `${process.pid}-`));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
