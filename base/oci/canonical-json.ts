// Deterministic JSON for image documents: the same image always serialises to the same bytes (and so the
// same digest). Struct-like objects keep the field order BuildKit's Go structs marshal in; map-like objects
// (labels, annotations, exposed ports, volumes) are sorted by key as Go marshals maps. The image config's
// top level is sorted by key too: BuildKit rewrites it through a map when it patches timestamps.
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from './types.js';

type Obj = Record<string, unknown>;

/** A copy of `obj` with `order`'s keys first (those present), then any others sorted; undefined dropped. */
function ordered(obj: Obj, order: readonly string[]): Obj {
  const out: Obj = {};
  for (const k of order) if (obj[k] !== undefined) out[k] = obj[k];
  for (const k of Object.keys(obj).filter((k) => !order.includes(k)).sort()) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function sortedMap<T>(m: Record<string, T> | undefined): Record<string, T> | undefined {
  if (m === undefined || m === null) return m;
  return ordered(m, []) as Record<string, T>;
}

const PLATFORM_ORDER = ['architecture', 'os', 'os.version', 'os.features', 'variant', 'features'];
const DESCRIPTOR_ORDER = ['mediaType', 'digest', 'size', 'urls', 'annotations', 'data', 'platform', 'artifactType'];
const MANIFEST_ORDER = ['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'subject', 'annotations'];
const INDEX_ORDER = ['schemaVersion', 'mediaType', 'artifactType', 'manifests', 'subject', 'annotations'];
const CONTAINER_CONFIG_ORDER = [
  'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin',
  'StdinOnce', 'Env', 'Entrypoint', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Labels',
  'StopSignal', 'OnBuild', 'Shell',
];
const HEALTH_ORDER = ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'];
const HISTORY_ORDER = ['created', 'created_by', 'author', 'comment', 'empty_layer'];
const ROOTFS_ORDER = ['type', 'diff_ids'];

export function canonicalPlatform(p: Platform): Platform {
  return ordered(p as unknown as Obj, PLATFORM_ORDER) as unknown as Platform;
}

export function canonicalDescriptor(d: Descriptor): Descriptor {
  const out = { ...d } as Obj;
  if (d.annotations) out.annotations = sortedMap(d.annotations);
  if (d.platform) out.platform = canonicalPlatform(d.platform);
  return ordered(out, DESCRIPTOR_ORDER) as unknown as Descriptor;
}

function containerConfig(c: Obj): Obj {
  const out: Obj = { ...c };
  for (const k of ['ExposedPorts', 'Volumes', 'Labels']) if (c[k]) out[k] = sortedMap(c[k] as Obj);
  if (c.Healthcheck) out.Healthcheck = ordered(c.Healthcheck as Obj, HEALTH_ORDER);
  return ordered(out, CONTAINER_CONFIG_ORDER);
}

/** The image config's bytes. */
export function serializeConfig(config: ImageConfig): Buffer {
  const out: Obj = { ...config };
  if (config.config) out.config = containerConfig(config.config as Obj);
  out.rootfs = ordered(config.rootfs as unknown as Obj, ROOTFS_ORDER);
  if (config.history) out.history = config.history.map((h) => ordered(h as Obj, HISTORY_ORDER));
  return Buffer.from(JSON.stringify(ordered(out, [])));
}

export function serializeManifest(m: ImageManifest): Buffer {
  const out: Obj = { ...m, config: canonicalDescriptor(m.config), layers: m.layers.map(canonicalDescriptor) };
  if (m.subject) out.subject = canonicalDescriptor(m.subject);
  if (m.annotations) out.annotations = sortedMap(m.annotations);
  return Buffer.from(JSON.stringify(ordered(out, MANIFEST_ORDER)));
}

export function serializeIndex(i: ImageIndex): Buffer {
  const out: Obj = { ...i, manifests: i.manifests.map(canonicalDescriptor) };
  if (i.subject) out.subject = canonicalDescriptor(i.subject);
  if (i.annotations) out.annotations = sortedMap(i.annotations);
  return Buffer.from(JSON.stringify(ordered(out, INDEX_ORDER)));
}
