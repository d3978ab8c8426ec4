// BuildKit's build history (ListenBuildHistory, UpdateBuildHistory, the Status of an ended build) served
// from kiln's one history: the tenant's HistoryStore (src/engine/history), where kiln's own protocol and
// local builds are recorded too. A build asked for through BuildKit's API keeps buildx's ref and request
// in its record (`buildkit`); any other record is shown under its kiln id, its request spelled the way
// buildx would have sent it. No second store.
import { HistoryStore, inProgress, type HistoryRecord } from '../engine/history/store.js';
import type { ProgressEvent } from '../../solver/progress.js';
import { StatusTranslator, timestamp, type StatusResponse } from './progress.js';

/** The name buildx knows a record by: the ref it gave the build, or kiln's id for a build it did not ask for. */
export const refOf = (r: HistoryRecord): string => r.buildkit?.ref ?? r.id;

/** The record a ref names (buildx's ref, or kiln's id of any record). */
export function findByRef(store: HistoryStore, ref: string): HistoryRecord | undefined {
  if (!ref) return undefined;
  return store.list().find((r) => refOf(r) === ref || r.id === ref);
}

/** google.rpc.Code of an ended build: buildx shows Canceled (1) as "Canceled", anything else as an error. */
const CANCELED = 1;
const UNKNOWN = 2;

function frontendAttrs(r: HistoryRecord): Record<string, string> {
  if (r.buildkit) return { ...r.buildkit.frontendAttrs };
  const attrs: Record<string, string> = { filename: r.dockerfile.name };
  if (r.target) attrs.target = r.target;
  for (const [k, v] of Object.entries(r.buildArgs)) attrs[`build-arg:${k}`] = v;
  if (r.platforms.length) attrs.platform = r.platforms.join(',');
  return attrs;
}

function exporters(r: HistoryRecord): { Type: string; Attrs: Record<string, string> }[] {
  if (r.buildkit) return r.buildkit.exporters;
  return r.results.map((x) => ({ Type: x.type, Attrs: x.names?.length ? { name: x.names.join(',') } : ({} as Record<string, string>) }));
}

/** What the exporters answered, as BuildKit's exporter response spells it. */
export function exporterResponse(r: HistoryRecord): Record<string, string> {
  const out: Record<string, string> = {};
  const digest = r.results.find((x) => x.digest)?.digest;
  if (digest) out['containerimage.digest'] = digest;
  const names = [...new Set(r.results.flatMap((x) => x.names ?? []))];
  if (names.length) out['image.name'] = names.join(',');
  return out;
}

/** Step counts as buildx shows them ("Build Steps: 3/4 (25% cached)"). */
export function stepCounts(r: HistoryRecord): { total: number; cached: number; completed: number } {
  const cached = r.vertices.filter((v) => v.state === 'cached').length;
  const completed = r.vertices.filter((v) => v.state === 'cached' || v.state === 'ran').length;
  return { total: r.vertices.length, cached, completed };
}

export interface ResultDescriptor {
  media_type: string;
  digest: string;
  size: string;
  annotations: Record<string, string>;
}

/** One record as BuildKit's BuildHistoryRecord; `result` is the descriptor of the image the build made, if known. */
export function historyRecordMsg(r: HistoryRecord, result?: ResultDescriptor) {
  const steps = stepCounts(r);
  const ended = !inProgress(r) && r.ended ? Date.parse(r.ended) : undefined;
  return {
    Ref: refOf(r),
    Frontend: r.buildkit?.frontend || 'dockerfile.v0',
    FrontendAttrs: frontendAttrs(r),
    Exporters: exporters(r),
    error: r.status === 'failed' || r.status === 'canceled' ? { code: r.status === 'canceled' ? CANCELED : UNKNOWN, message: r.error ?? r.status, details: [] } : null,
    CreatedAt: timestamp(Date.parse(r.started)),
    CompletedAt: ended !== undefined ? timestamp(ended) : null,
    ExporterResponse: exporterResponse(r),
    Result: result ? { Attestations: [], Results: { '0': result } } : null,
    Generation: 0,
    numCachedSteps: steps.cached,
    numTotalSteps: steps.total,
    numCompletedSteps: steps.completed,
    numWarnings: 0,
  };
}

/** The event type of a record in ListenBuildHistory. */
export const eventType = (r: HistoryRecord): 'STARTED' | 'COMPLETE' => (inProgress(r) ? 'STARTED' : 'COMPLETE');

/** An ended build's progress replayed as BuildKit status messages (`buildx history logs`). */
export function replayStatus(store: HistoryStore, r: HistoryRecord): StatusResponse[] {
  const t = new StatusTranslator();
  const out: StatusResponse[] = [];
  for (const ev of store.events(r.id).events as ProgressEvent[]) {
    const s = t.translate(ev);
    if (s) out.push(s);
  }
  return out;
}

/**
 * Follows a tenant's history for a ListenBuildHistory without EarlyExit: builds are recorded by whichever
 * protocol ran them (and by other processes), so the store is read again every `everyMs`, and a record
 * whose state changed is reported.
 */
export function watchHistory(store: HistoryStore, fn: (r: HistoryRecord) => void, everyMs = 1000): () => void {
  const seen = new Map(store.list().map((r) => [r.id, r.status]));
  const timer = setInterval(() => {
    for (const r of store.list()) {
      if (seen.get(r.id) === r.status) continue;
      seen.set(r.id, r.status);
      fn(r);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
