// One cache namespace per tenant: its own state dir (<root>/tenants/<name>: content, snapshots, db) and
// its own store of synced context files, opened once and shared by that tenant's concurrent builds. A
// tenant's builds never see another tenant's records or files: they live in different directories.
import { join } from 'node:path';
import { State } from '../../cache/state.js';
import { ContextStore } from './context-store.js';
import { InflightTable } from './inflight-cache.js';

export class Tenant {
  readonly inflight = new InflightTable();
  /** Builds running now; prune waits for them (and new builds wait for a prune). */
  private readers = 0;
  private writer: Promise<void> | undefined;
  private idle: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly state: State,
    readonly contexts: ContextStore,
  ) {}

  /** Runs a build while no prune runs. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    this.readers++;
    try {
      return await fn();
    } finally {
      this.readers--;
      if (this.readers === 0) for (const r of this.idle.splice(0)) r();
    }
  }

  /** Runs a prune alone: after running builds finish, before new ones start. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    let done!: () => void;
    this.writer = new Promise((r) => (done = r));
    try {
      if (this.readers > 0) await new Promise<void>((r) => this.idle.push(r));
      return await fn();
    } finally {
      this.writer = undefined;
      done();
    }
  }
}

export class Tenants {
  private readonly open = new Map<string, Promise<Tenant>>();

  constructor(private readonly root: string) {}

  get(name: string): Promise<Tenant> {
    let t = this.open.get(name);
    if (!t) {
      const dir = join(this.root, 'tenants', name);
      t = State.open({ root: dir, lockTimeoutMs: 0 }).then((state) => new Tenant(name, state, new ContextStore(join(dir, 'sync'))));
      t.catch(() => this.open.delete(name));
      this.open.set(name, t);
    }
    return t;
  }

  async closeAll(): Promise<void> {
    for (const t of this.open.values()) {
      try {
        await (await t).state.close();
      } catch {
        // a tenant that failed to open has nothing to close
      }
    }
    this.open.clear();
  }
}
