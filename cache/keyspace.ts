// The metadata database's keyspace: every key prefix kiln writes, its value shape, its schema version
// and its garbage collection, in one place (docs/design.md, "On-disk state and database keyspace").
// Nothing else builds a db key: stores, ops and the engine use the typed tables exported here.
//
// Prefixes are of two kinds. Primary records (image/, result/) say what the state holds; they go when
// a user removes them (rmi, prune). Derived records (everything else) are memos a build can recompute;
// collect() removes those whose subject is gone or that are older than every remaining cache record,
// so a pruned database does not grow with the number of past builds.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MetadataDB } from './state.js';
import type { ImageRecord } from './image-store.js';
import type { RecordedResult } from './result-cache.js';
import { UserError } from '../base/errors.js';

/** Bumped when a derived prefix changes shape; an older database has its derived prefixes reset. */
export const SCHEMA_VERSION = 2;
const SCHEMA_KEY = 'meta/schema';

/** The smallest db surface a table needs (the client's file-backed stat index store has only this). */
export interface KeyValueDB {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
}

/** One prefix of the database: values of one shape, keyed by an id. */
export class Table<V> {
  constructor(
    private readonly db: KeyValueDB,
    readonly prefix: string,
  ) {}

  async get(id: string): Promise<V | undefined> {
    return ((await this.db.get(this.prefix + id).catch(() => undefined)) ?? undefined) as V | undefined;
  }

  async put(id: string, value: V): Promise<void> {
    await this.db.put(this.prefix + id, value);
  }

  async del(id: string): Promise<void> {
    await (this.db as MetadataDB).del(this.prefix + id);
  }

  async *entries(): AsyncGenerator<[string, V]> {
    for await (const [k, v] of (this.db as MetadataDB).iterator({ gte: this.prefix, lt: `${this.prefix}\xff` })) yield [k.slice(this.prefix.length), v as V];
  }

  async count(): Promise<number> {
    let n = 0;
    for await (const _ of (this.db as MetadataDB).keys({ gte: this.prefix, lt: `${this.prefix}\xff` })) n++;
    return n;
  }

  /** Deletes the entries `doomed` picks (all of them without it); returns how many went. */
  async collect(doomed: (id: string, value: V) => boolean = () => true): Promise<number> {
    const ids: string[] = [];
    for await (const [id, v] of this.entries()) if (doomed(id, v)) ids.push(id);
    const db = this.db as MetadataDB;
    for (let i = 0; i < ids.length; i += 500) await db.batch(ids.slice(i, i + 500).map((id) => ({ type: 'del' as const, key: this.prefix + id })));
    return ids.length;
  }
}

/** `content/<id>`: the digest of what a step read from an input, by (op, input index, input key). */
export interface ContentMemo {
  digest: string;
  /** Day (YYYY-MM-DD) of last use. */
  used: string;
}

/** `selcache/<sha256 of dir, excludes, selectors>`: a COPY selection's digest while the context is unchanged. */
export interface SelectionMemo {
  dir: string;
  used: string;
  fingerprint: string;
  entries: number;
  digest: string;
  files: Record<string, string>;
}

/** `copydonor/<op digest>`: the files the op wrote into its last layer, for hard-linking into the next. */
export interface DonorMemo {
  layer: string;
  created?: string;
  files: Record<string, string>;
}

/** `statindex/<sha256 of context dir>`: (stat → content hash) of the context's files. */
export interface StatIndexMemo {
  dir: string;
  used: string;
  entries: Record<string, { stat: string; hash: string }>;
}

/** `layerblob/<layer id | diff/<diffID>>/<compression>/<level>/<epoch>[/d]`: a layer's blob as packed. */
export interface LayerBlobMemo {
  diffId: string;
  digest: string;
  size: number;
  mediaType: string;
}

/** `lastbuild/<sha256 of context, Dockerfile, target, platforms>`: the last build's keys, for --explain. */
export interface LastBuildMemo {
  created: string;
  vertices: unknown[];
}

export const today = (): string => new Date().toISOString().slice(0, 10);

/** Every prefix; `reset`: a memo whose entries an older schema shaped differently, dropped on upgrade. */
export const PREFIXES = {
  'image/': { reset: false },
  'result/': { reset: false },
  'layerblob/': { reset: false },
  'layersize/': { reset: true },
  'content/': { reset: true },
  'selcache/': { reset: true },
  'copydonor/': { reset: true },
  'statindex/': { reset: true },
  'lastbuild/': { reset: true },
  'meta/': { reset: false },
} as const;

export function statIndexTable(db: KeyValueDB): Table<StatIndexMemo> {
  return new Table(db, 'statindex/');
}

export function lastBuildTable(db: KeyValueDB): Table<LastBuildMemo> {
  return new Table(db, 'lastbuild/');
}

export interface CollectOptions {
  /** prune --all (or nothing left in the cache): every derived memo goes. */
  all?: boolean;
  /** Where layers live: built ones by id, pulled (or linked) ones by diffID. */
  snapshots: { builtLayerDir(id: string): string; dir(diffId: string): string };
}

export class Keyspace {
  readonly images: Table<ImageRecord>;
  readonly results: Table<RecordedResult>;
  /** Sizes of layer dirs by real path, so `du` and GC need not walk them again. */
  readonly layerSizes: Table<number>;
  readonly layerBlobs: Table<LayerBlobMemo>;
  readonly contents: Table<ContentMemo>;
  readonly selections: Table<SelectionMemo>;
  readonly donors: Table<DonorMemo>;
  readonly statIndexes: Table<StatIndexMemo>;
  readonly lastBuilds: Table<LastBuildMemo>;

  constructor(private readonly db: MetadataDB) {
    this.images = new Table(db, 'image/');
    this.results = new Table(db, 'result/');
    this.layerSizes = new Table(db, 'layersize/');
    this.layerBlobs = new Table(db, 'layerblob/');
    this.contents = new Table(db, 'content/');
    this.selections = new Table(db, 'selcache/');
    this.donors = new Table(db, 'copydonor/');
    this.statIndexes = statIndexTable(db);
    this.lastBuilds = lastBuildTable(db);
  }

  /**
   * Checks the schema version when the state opens. A database from an older kiln (or from before the
   * version key) keeps its images and cache records and has its derived memos reset, with one line on
   * stderr; one from a newer kiln is refused, since this kiln cannot know what its keys mean.
   */
  async open(root: string, notice: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<void> {
    const found = (await this.db.get(SCHEMA_KEY)) as number | undefined;
    if (found === SCHEMA_VERSION) return;
    if (typeof found === 'number' && found > SCHEMA_VERSION) {
      throw new UserError(`kiln state at ${root} was written by a newer kiln (database schema ${found}; this kiln knows ${SCHEMA_VERSION}): use that kiln, or set KILN_ROOT to another dir`);
    }
    let empty = true;
    for await (const _ of this.db.keys({ limit: 1 })) empty = false;
    if (!empty) {
      let reset = 0;
      for (const [prefix, { reset: drop }] of Object.entries(PREFIXES)) if (drop) reset += await new Table(this.db, prefix).collect();
      notice(`kiln: the metadata database at ${join(root, 'db')} is from an older kiln (schema ${found ?? 1}); reset ${reset} derived index entries (images and build cache kept)`);
    }
    await this.db.put(SCHEMA_KEY, SCHEMA_VERSION);
  }

  /**
   * Garbage collection of the derived prefixes, run after cache records were pruned and unreferenced
   * layers swept. A memo goes when its subject is gone (a layer dir, a context dir), or when it was last
   * used before the day of the oldest remaining cache record (it belongs to builds whose records are all
   * gone), or with `all`. Returns the number of keys removed.
   */
  async collect(opts: CollectOptions): Promise<number> {
    let oldest: string | undefined;
    for await (const [, rec] of this.results.entries()) {
      const used = (rec.lastUsed ?? rec.created).slice(0, 10);
      if (oldest === undefined || used < oldest) oldest = used;
    }
    const all = opts.all || oldest === undefined;
    const stale = (used: string | undefined) => all || used === undefined || used.slice(0, 10) < oldest!;
    let removed = 0;
    removed += await this.layerSizes.collect((path) => !existsSync(path));
    removed += await this.layerBlobs.collect((id) => {
      const [layer, diff] = id.split('/');
      return !existsSync(layer === 'diff' ? opts.snapshots.dir(diff!) : opts.snapshots.builtLayerDir(layer!));
    });
    removed += await this.donors.collect((_, d) => all || !existsSync(opts.snapshots.builtLayerDir(d.layer)));
    removed += await this.contents.collect((_, c) => stale(c.used));
    removed += await this.selections.collect((_, s) => stale(s.used) || !existsSync(s.dir));
    removed += await this.statIndexes.collect((_, s) => stale(s.used) || !existsSync(s.dir));
    removed += await this.lastBuilds.collect((_, b) => stale(b.created));
    return removed;
  }

  /** Keys per prefix (`other` for any key outside the known prefixes), for `kiln du --keys` and tests. */
  async counts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for await (const k of this.db.keys()) {
      const prefix = Object.keys(PREFIXES).find((p) => k.startsWith(p)) ?? 'other';
      out[prefix] = (out[prefix] ?? 0) + 1;
    }
    return out;
  }
}
