// The stat index of a build context: for each file read by a COPY key, (size, mtime, ctime, inode, mode)
// → content sha256, kept in level between builds. A file whose stat is unchanged is not read again, so
// an unchanged 20,000-file context is checksummed from stats alone. Keys stay sha256 of the content.
import { createHash } from 'node:crypto';
import { readFileSync, lstatSync, type Stats } from 'node:fs';
import { statIndexTable, today, type KeyValueDB, type Table, type StatIndexMemo } from './keyspace.js';
import { fsPath } from '../base/raw-names.js';

interface Entry {
  /** size:mtimeMs:ctimeMs:ino:mode (the times as Node gives them: milliseconds with a sub-µs fraction) */
  stat: string;
  hash: string;
}

function statKey(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}:${st.mode}`;
}

export class StatIndex {
  private dirty = false;
  reads = 0;
  hits = 0;

  private constructor(
    private readonly table: Table<StatIndexMemo>,
    private readonly id: string,
    private readonly dir: string,
    private readonly entries: Map<string, Entry>,
  ) {}

  /** `db`: the state's metadata db, or any get/put store (the client keeps one file per context). */
  static async load(db: KeyValueDB, contextDir: string): Promise<StatIndex> {
    const table = statIndexTable(db);
    const id = createHash('sha256').update(contextDir).digest('hex');
    const stored = await table.get(id);
    const index = new StatIndex(table, id, contextDir, new Map(Object.entries(stored?.entries ?? {})));
    // Its last use, by day, is what GC ages it by.
    if (stored?.used !== today()) index.dirty = true;
    return index;
  }

  /**
   * sha256 (hex) of a regular file's content, from the index when its stat is unchanged. `st` is the
   * file's lstat when the caller has just taken it (a context walk), saving a second one.
   */
  hash(realPath: string, st: Stats = lstatSync(fsPath(realPath))): string {
    const k = statKey(st);
    const known = this.entries.get(realPath);
    if (known && known.stat === k) {
      this.hits++;
      return known.hash;
    }
    this.reads++;
    const hash = createHash('sha256').update(readFileSync(fsPath(realPath))).digest('hex');
    // A file changed in the same clock tick as it was indexed could keep its stat: do not index files
    // modified in the last two seconds (git's "racy" rule).
    if (st.mtimeMs < Date.now() - 2000) {
      this.entries.set(realPath, { stat: k, hash });
      this.dirty = true;
    }
    return hash;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await this.table.put(this.id, { dir: this.dir, used: today(), entries: Object.fromEntries(this.entries) });
    this.dirty = false;
  }
}
