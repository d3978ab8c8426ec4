// What the commands share: opening the state (with a wait message when another kiln holds it), a
// registry client, and finding an image locally or pulling it.
import { State, StateLockedError } from '../../cache/state.js';
import type { PullEvent, PulledImage } from '../../cache/pull.js';
import { parseReference, type ImageReference } from '../../base/oci/reference.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../../base/oci/platform.js';
import type { ImageConfig, Platform } from '../../base/oci/types.js';
import { FlagError } from './flags.js';
import { formatSize, shortDigest } from '../../base/units.js';
import { releaseEngineState } from '../resident/client.js';
import { stateRoot } from '../resident/paths.js';

let stateProvider: (() => Promise<State>) | undefined;

/** The resident engine hands its commands the state it keeps open (src/resident/server). */
export function provideState(provider: (() => Promise<State>) | undefined): void {
  stateProvider = provider;
}

export async function openState(): Promise<State> {
  if (stateProvider) return stateProvider();
  // A resident engine keeps the state open between builds: ask it to let go rather than wait for its idle timeout.
  const root = stateRoot(process.env);
  await releaseEngineState(root);
  try {
    return await State.open({ lockTimeoutMs: 0 });
  } catch (err) {
    if (!(err instanceof StateLockedError)) throw err;
  }
  // Held: by another kiln, or by an engine that opened it ahead of its first build (resident/server
  // preopen) just after it was asked; asked again, an engine lets go and does not take it again. It is
  // asked at every try: an engine that starts while this waits (one this build started) may take the
  // state the moment the holder lets go.
  await releaseEngineState(root);
  return State.open({ onWait: (msg) => process.stderr.write(`kiln: ${msg}\n`), onLocked: () => releaseEngineState(root) });
}

export function platformFlag(value: string | undefined): Platform {
  if (!value) return normalizePlatform(hostPlatform());
  try {
    return normalizePlatform(parsePlatform(value));
  } catch (err) {
    throw new FlagError(`invalid value "${value}" for flag --platform: ${(err as Error).message}`);
  }
}

export function imageRef(value: string): ImageReference {
  return parseReference(value);
}

/** Prints pull progress as short lines (docker-like) to the given stream. */
export function pullPrinter(out: NodeJS.WritableStream): (ev: PullEvent) => void {
  return (ev) => {
    switch (ev.kind) {
      case 'resolved':
        out.write(`${ev.ref}: pulling ${ev.platform} (${ev.digest})\n`);
        break;
      case 'layer':
        if (ev.status === 'exists') out.write(`${shortDigest(ev.digest)}: already exists\n`);
        else if (ev.status === 'unpacked') out.write(`${shortDigest(ev.digest)}: pull complete (${formatSize(ev.size)})\n`);
        break;
      case 'done':
        out.write(`Digest: ${ev.digest}\nStatus: ${ev.downloadedBytes > 0 ? 'downloaded newer image' : 'image is up to date'} for ${ev.ref}\n`);
        break;
    }
  };
}

export interface LocalImage {
  name: string;
  platform: string;
  config: ImageConfig;
  configDigest: string;
  manifestDigest: string;
  lowerdirs: string[];
}

/** The image for `platform` from the local store; pulls it when it is missing (like `docker run`). */
export async function localOrPull(state: State, ref: ImageReference, platform: Platform, progress: NodeJS.WritableStream): Promise<LocalImage> {
  const name = ref.toString();
  const want = formatPlatform(platform);
  const record = await state.images.get(name);
  let entry = record?.platforms.find((p) => p.platform === want);
  let config: ImageConfig | undefined;
  if (entry && state.content.has(entry.configDigest)) config = state.content.readJSON<ImageConfig>(entry.configDigest);
  if (!entry || !config || !(config.rootfs?.diff_ids ?? []).every((d) => state.snapshots.has(d))) {
    progress.write(`Unable to find image '${name}' (${want}) locally\n`);
    // Loaded only when needed: the HTTP client costs more start-up time than running a container.
    const [{ pullImage }, { RegistryClient }] = await Promise.all([import('../../cache/pull.js'), import('../../base/oci/registry/client.js')]);
    const client = new RegistryClient();
    let pulled: PulledImage;
    try {
      pulled = await pullImage(state, ref, { platform, client, onEvent: pullPrinter(progress) });
    } finally {
      await client.close();
    }
    entry = pulled.image;
    config = pulled.config;
  }
  return {
    name,
    platform: want,
    config,
    configDigest: entry.configDigest,
    manifestDigest: entry.manifestDigest,
    lowerdirs: state.snapshots.lowerdirs(config.rootfs?.diff_ids ?? []),
  };
}
