// A named context dir (`--build-context name=DIR`) is filtered by its own DIR/.dockerignore, as buildx
// sends it; a Dockerfile-specific ignore file belongs to the main context only.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDockerignore } from '../../base/patterns/dockerignore.js';

export function namedContextExcludes(dir: string): string[] | undefined {
  const file = join(dir, '.dockerignore');
  return existsSync(file) ? readDockerignore(readFileSync(file, 'utf8')) : undefined;
}
