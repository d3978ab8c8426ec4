// The stat index of a build context: for each file read by a COPY key, (size, mtime, ctime, inode, mode)
// → content sha256, kept in level between builds. A file whose stat is unchanged is not read again, so
// an unchanged 20,000-file context is checksummed from stats alone. Keys stay sha256 of the content.
import { createHash } from 'node:crypto';
import { readFileSync, type BigIntStats } from 'node:fs';
import { lstatSync } from 'node:fs';
import type { MetadataDB } from './state.js';

interface Entry {
  /** size:mtimeNs:ctimeNs:ino:mode */
  stat: string;
  hash: string;
}

function statKey(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.mode}`;
}

export class StatIndex {
  private dirty = false;
  reads = 0;
  hits = 0;

  private constructor(
    private readonly db: MetadataDB,
    private readonly key: string,
    private readonly entries: Map<string, Entry>,
  ) {}

  static async load(db: MetadataDB, contextDir: string): Promise<StatIndex> {
    const key = `statindex/${createHash('sha256').update(contextDir).digest('hex')}`;
    const stored = (await db.get(key)) as Record<string, Entry> | undefined;
    return new StatIndex(db, key, new Map(Object.entries(stored ?? {})));
  }

  /** sha256 (hex) of a regular file's content, from the index when its stat is unchanged. */
  hash(realPath: string): string {
    const st = lstatSync(realPath, { bigint: true });
    const k = statKey(st);
    const known = this.entries.get(realPath);
    if (known && known.stat === k) {
      this.hits++;
      return known.hash;
    }
    this.reads++;
    const hash = createHash('sha256').update(readFileSync(realPath)).digest('hex');
    // A file changed in the same clock tick as it was indexed could keep its stat: do not index files
    // modified in the last two seconds (git's "racy" rule).
    if (Number(st.mtimeNs / 1_000_000n) < Date.now() - 2000) {
      this.entries.set(realPath, { stat: k, hash });
      this.dirty = true;
    }
    return hash;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await this.db.put(this.key, Object.fromEntries(this.entries));
    this.dirty = false;
  }
}
