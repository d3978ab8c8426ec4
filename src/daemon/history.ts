// kiln serve's view of the build history: there is no record of its own. A remote build is recorded once,
// in the tenant's state (src/engine/history, the same HistoryRecord as a local build), from the moment it
// is asked for; ListBuilds and Status read it from there and put it on the wire (BuildRecord), with the
// progress rendered as plain lines for `kiln builder logs`.
import type { HistoryRecord, HistoryStore, RetentionPolicy } from '../engine/history/store.js';
import { retentionFromEnv } from '../engine/history/store.js';
import type { ProgressEvent } from '../../solver/progress.js';
import type { BuildRecordMsg } from '../protocol/builder.js';

const MAX_LINES = 5000;

/** The serve history's retention: the --history-ttl age, and the usual count limit. */
export function serveRetention(ttlMs: number): RetentionPolicy {
  return { keep: retentionFromEnv().keep, maxAgeMs: ttlMs };
}

/** A record on the wire; with `logs`, its progress as plain lines (the last MAX_LINES). */
export function recordMessage(store: HistoryStore, r: HistoryRecord, logs: boolean): BuildRecordMsg {
  const lines: string[] = [];
  if (logs) {
    for (const ev of store.events(r.id).events) {
      const line = renderEvent(ev);
      if (line !== undefined) lines.push(...line.split('\n'));
    }
  }
  const sync = r.sync ? { files: r.sync.files, files_uploaded: r.sync.filesUploaded, bytes_uploaded: String(r.sync.bytesUploaded), files_reused: r.sync.filesReused } : null;
  return {
    id: r.id,
    status: r.status,
    started: r.started,
    ended: r.ended ?? '',
    error: r.error ?? '',
    digest: r.results.find((x) => x.digest)?.digest ?? '',
    platforms: r.platforms,
    client: r.client ?? '',
    logs: lines.slice(-MAX_LINES),
    sync,
    record_json: JSON.stringify(r),
  };
}

function renderEvent(ev: ProgressEvent): string | undefined {
  switch (ev.type) {
    case 'vertex.started':
      return `${ev.name}`;
    case 'vertex.cached':
      return `CACHED ${ev.name}`;
    case 'vertex.completed':
      return `DONE ${ev.name} ${(ev.durationMs / 1000).toFixed(1)}s`;
    case 'vertex.failed':
      return `ERROR ${ev.name}: ${ev.error}`;
    case 'vertex.log':
      return ev.data.replace(/\n$/, '');
    case 'vertex.warning':
      return `WARNING ${ev.message}`;
    case 'status':
      return ev.message;
    default:
      return undefined;
  }
}
