// The state dir ($KILN_ROOT or ~/.local/share/kiln): content/ blobs, snapshots/ unpacked layers,
// containers/ run dirs, db/ metadata in level. One process owns the db at a time (level's LOCK file);
// a second kiln process waits with a clear message and gives up clearly after a timeout. Commands that
// run long without needing metadata (`kiln run` while its container runs) close the state first.
import { Level } from 'level';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from './content-store.js';
import { SnapshotStore } from './snapshots.js';
import { ImageStore } from './image-store.js';
import { Keyspace } from './keyspace.js';
import { Leases } from './leases.js';
import { UserError } from '../base/errors.js';
import { rootlessMode } from './layers/overlay-xattr.js';

export type MetadataDB = Level<string, unknown>;

export class StateLockedError extends UserError {}

export function defaultStateRoot(): string {
  if (process.env.KILN_ROOT) return process.env.KILN_ROOT;
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'kiln');
}

export interface OpenStateOptions {
  root?: string;
  /** How long to wait for another kiln process to release the state (default $KILN_LOCK_TIMEOUT s, or 300 s). */
  lockTimeoutMs?: number;
  /** Called once when the state is locked and we start waiting. */
  onWait?: (message: string) => void;
  /** Called before each new try while the state is locked (asks a resident engine again to let go). */
  onLocked?: () => Promise<void>;
}

export class State {
  /** What running builds use; GC leaves it alone (cache/leases.ts). */
  readonly leases = new Leases();

  private constructor(
    readonly root: string,
    readonly db: MetadataDB,
    /** The typed tables of the db: nothing outside cache/keyspace.ts builds a key. */
    readonly keys: Keyspace,
    readonly content: ContentStore,
    readonly snapshots: SnapshotStore,
    readonly images: ImageStore,
  ) {}

  static async open(opts: OpenStateOptions = {}): Promise<State> {
    const root = opts.root ?? defaultStateRoot();
    mkdirSync(join(root, 'db'), { recursive: true });
    checkMode(root);
    const db = await openLocked(root, opts);
    const keys = new Keyspace(db);
    try {
      await keys.open(root);
    } catch (err) {
      await db.close();
      throw err;
    }
    writeFileSync(join(root, 'db.owner'), `${process.pid} ${process.argv.slice(2, 4).join(' ')}\n`);
    const content = new ContentStore(join(root, 'content'));
    content.cleanIngest();
    const snapshots = new SnapshotStore(join(root, 'snapshots'));
    snapshots.cleanTemp();
    return new State(root, db, keys, content, snapshots, new ImageStore(keys.images));
  }

  get containersDir(): string {
    return join(this.root, 'containers');
  }

  async close(): Promise<void> {
    rmSync(join(this.root, 'db.owner'), { force: true });
    await this.db.close();
  }
}

/**
 * A state dir is either root's or rootless: their layer dirs mark opaque dirs in different xattr
 * namespaces (trusted.overlay.* vs user.overlay.*), which the other mode's overlay mounts do not read.
 * The mode is recorded in `state-mode` on first use (a dir from before the record, with layers, is root's).
 */
function checkMode(root: string): void {
  const file = join(root, 'state-mode');
  const mine = rootlessMode ? 'rootless' : 'root';
  let theirs: string | undefined;
  try {
    theirs = readFileSync(file, 'utf8').trim();
  } catch {
    const snapshots = join(root, 'snapshots');
    if (existsSync(snapshots) && readdirSync(snapshots).length > 0) theirs = 'root';
  }
  if (theirs === undefined) writeFileSync(file, `${mine}\n`);
  else if (theirs !== mine)
    throw new UserError(
      `kiln state at ${root} belongs to ${theirs === 'root' ? 'kiln run as root' : 'rootless kiln'} and cannot be used ${rootlessMode ? 'in rootless mode' : 'as root'} (its layers mark opaque dirs in the other mode's xattrs): set KILN_ROOT to another dir`,
    );
}

async function openLocked(root: string, opts: OpenStateOptions): Promise<MetadataDB> {
  const envTimeout = Number(process.env.KILN_LOCK_TIMEOUT);
  const timeoutMs = opts.lockTimeoutMs ?? (Number.isFinite(envTimeout) && process.env.KILN_LOCK_TIMEOUT ? envTimeout * 1000 : 300_000);
  const deadline = Date.now() + timeoutMs;
  let waited = false;
  let delay = 50;
  for (;;) {
    const db: MetadataDB = new Level<string, unknown>(join(root, 'db'), { valueEncoding: 'json' });
    try {
      await db.open();
      return db;
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if (code !== 'LEVEL_LOCKED') throw err;
    }
    const owner = lockOwner(root);
    if (Date.now() >= deadline) {
      throw new StateLockedError(`kiln state at ${root} is in use by another kiln process${owner}; gave up after ${Math.round(timeoutMs / 1000)}s (set KILN_LOCK_TIMEOUT to wait longer)`);
    }
    if (!waited) {
      waited = true;
      opts.onWait?.(`waiting for another kiln process${owner} that is using the state at ${root}…`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1000);
    await opts.onLocked?.();
  }
}

function lockOwner(root: string): string {
  try {
    const [pid, ...cmd] = readFileSync(join(root, 'db.owner'), 'utf8').trim().split(' ');
    return ` (pid ${pid}${cmd.length ? `: kiln ${cmd.join(' ')}` : ''})`;
  } catch {
    return '';
  }
}
