// Build history: every build's record (status, times, digest, sync numbers) and its progress as plain
// lines, kept in memory while it runs and in <root>/history/<id>.json after, for --history-ttl.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { ProgressEvent } from '../../solver/progress.js';
import type { BuildRecordMsg, SyncStats } from '../protocol/builder.js';

const MAX_LINES = 5000;

export interface HistoryRecord extends BuildRecordMsg {
  tenant: string;
}

export class History {
  private readonly records = new Map<string, HistoryRecord>();
  private readonly names = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly dir: string,
    private readonly ttlMs: number,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as HistoryRecord;
        this.records.set(r.id, r);
      } catch {
        rmSync(join(dir, f), { force: true });
      }
    }
    this.expire();
    this.timer = setInterval(() => this.expire(), Math.min(60_000, Math.max(1000, ttlMs / 10)));
    this.timer.unref();
  }

  start(id: string, tenant: string, platforms: string[], client: string): HistoryRecord {
    const r: HistoryRecord = { id, tenant, status: 'queued', started: new Date().toISOString(), ended: '', error: '', digest: '', platforms, client, logs: [], sync: null };
    this.records.set(id, r);
    return r;
  }

  get(id: string): HistoryRecord | undefined {
    return this.records.get(id);
  }

  list(tenant: string): HistoryRecord[] {
    return [...this.records.values()].filter((r) => r.tenant === tenant).sort((a, b) => a.started.localeCompare(b.started));
  }

  log(r: HistoryRecord, ev: ProgressEvent): void {
    const line = this.render(ev);
    if (line === undefined) return;
    r.logs.push(...line.split('\n'));
    if (r.logs.length > MAX_LINES) r.logs.splice(0, r.logs.length - MAX_LINES);
  }

  finish(r: HistoryRecord, status: HistoryRecord['status'], fields: { error?: string; digest?: string; sync?: SyncStats }): void {
    r.status = status;
    r.ended = new Date().toISOString();
    if (fields.error) r.error = fields.error;
    if (fields.digest) r.digest = fields.digest;
    if (fields.sync) r.sync = fields.sync;
    const tmp = join(this.dir, `.${r.id}.tmp`);
    writeFileSync(tmp, JSON.stringify(r));
    renameSync(tmp, join(this.dir, `${r.id}.json`));
  }

  expire(): void {
    const cutoff = Date.now() - this.ttlMs;
    for (const r of this.records.values()) {
      if (r.ended && Date.parse(r.ended) < cutoff) {
        this.records.delete(r.id);
        rmSync(join(this.dir, `${r.id}.json`), { force: true });
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private render(ev: ProgressEvent): string | undefined {
    switch (ev.type) {
      case 'vertex.started':
        this.names.set(ev.digest, ev.name);
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
}
