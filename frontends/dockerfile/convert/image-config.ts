// Image config bookkeeping: the empty (scratch) config, cloning, and history entries exactly as BuildKit's
// commitToHistory writes them.
import type { GraphPlatform } from '../../../solver/graph/ops.js';
import type { ImageConfigJSON } from './types.js';

export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function emptyImage(platform: GraphPlatform): ImageConfigJSON {
  const img: ImageConfigJSON = {
    architecture: platform.architecture,
    os: platform.os,
    rootfs: { type: 'layers', diff_ids: [] },
    config: { WorkingDir: '/' },
  };
  if (platform.variant) img.variant = platform.variant;
  if (platform.os !== 'windows') img.config!.Env = [`PATH=${DEFAULT_PATH}`];
  return img;
}

export function cloneImage(img: ImageConfigJSON): ImageConfigJSON {
  return structuredClone(img);
}

/** Appends a history entry; `withBuildkitSuffix` marks entries made by a graph op (RUN, COPY, ADD). */
export function commitToHistory(img: ImageConfigJSON, createdBy: string, withLayer: boolean, withBuildkitSuffix: boolean, epoch: number | undefined): void {
  img.history ??= [];
  const entry: NonNullable<ImageConfigJSON['history']>[number] = {
    created_by: withBuildkitSuffix ? `${createdBy} # buildkit` : createdBy,
    comment: HISTORY_COMMENT,
  };
  if (!withLayer) entry.empty_layer = true;
  if (epoch !== undefined) entry.created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  img.history.push(entry);
}

/** True when the config describes an image without layers (BuildKit then uses scratch as the state). */
export function isLayerless(img: ImageConfigJSON): boolean {
  if ((img.rootfs?.diff_ids ?? []).length > 0) return false;
  return (img.history ?? []).every((h) => h.empty_layer);
}

/** Shell form → exec form through SHELL (default `/bin/sh -c`). */
export function withShell(img: ImageConfigJSON, args: string[]): string[] {
  const shell = img.config?.Shell && img.config.Shell.length > 0 ? [...img.config.Shell] : img.os === 'windows' ? ['cmd', '/S', '/C'] : ['/bin/sh', '-c'];
  return [...shell, args.join(' ')];
}

/** Sets KEY=value in an Env array, replacing in place (BuildKit addEnv). */
export function addEnv(env: string[], key: string, value: string): string[] {
  const i = env.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === key);
  const out = [...env];
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}
