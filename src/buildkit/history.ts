// Build history of the BuildKit API (ListenBuildHistory: `buildx history ls`), per tenant, kept in one
// JSON file per tenant under <root>/buildkit/history so it outlives the process. Records are written
// when a build starts and when it ends; a build that never ended shows as failed after a restart.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface HistoryEntry {
  ref: string;
  tenant: string;
  frontend: string;
  frontendAttrs: Record<string, string>;
  exporters: { Type: string; Attrs: Record<string, string> }[];
  createdAt: number;
  completedAt?: number;
  error?: string;
  exporterResponse: Record<string, string>;
  steps: { total: number; cached: number; completed: number; warnings: number };
}

const KEEP = 200;

export class BuildkitHistory {
  private readonly byTenant = new Map<string, HistoryEntry[]>();
  private readonly listeners = new Set<(e: HistoryEntry, kind: 'STARTED' | 'COMPLETE') => void>();

  constructor(private readonly dir: string) {}

  private file(tenant: string): string {
    return join(this.dir, `${Buffer.from(tenant).toString('hex')}.json`);
  }

  list(tenant: string): HistoryEntry[] {
    let l = this.byTenant.get(tenant);
    if (!l) {
      l = [];
      try {
        if (existsSync(this.file(tenant))) l = JSON.parse(readFileSync(this.file(tenant), 'utf8')) as HistoryEntry[];
      } catch {
        l = [];
      }
      for (const e of l) if (!e.completedAt) Object.assign(e, { completedAt: e.createdAt, error: 'the builder stopped during this build' });
      this.byTenant.set(tenant, l);
    }
    return l;
  }

  private save(tenant: string): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file(tenant)}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.list(tenant)));
    renameSync(tmp, this.file(tenant));
  }

  start(e: HistoryEntry): void {
    const l = this.list(e.tenant);
    l.push(e);
    if (l.length > KEEP) l.splice(0, l.length - KEEP);
    this.save(e.tenant);
    for (const f of this.listeners) f(e, 'STARTED');
  }

  finish(e: HistoryEntry): void {
    e.completedAt = Date.now();
    this.save(e.tenant);
    for (const f of this.listeners) f(e, 'COMPLETE');
  }

  watch(fn: (e: HistoryEntry, kind: 'STARTED' | 'COMPLETE') => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
