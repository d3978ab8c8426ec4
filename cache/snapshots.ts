// Unpacked layers ("snapshots"), one directory per layer diffID under snapshots/sha256/<hex>, in overlay
// upperdir form (whiteouts are 0/0 char devices, opaque dirs carry trusted.overlay.opaque). Because that
// form does not depend on the layers below, a layer is unpacked once and shared by every image using it.
// A snapshot dir appears by rename, so one that exists is complete.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { unpackLayer } from './layers/unpack.js';

export class SnapshotStore {
  private readonly layersDir: string;
  private readonly inflight = new Map<string, Promise<string>>();

  private readonly builtDir: string;
  private readonly tmpDir: string;
  private readonly workDir: string;

  constructor(readonly root: string) {
    this.layersDir = join(root, 'sha256');
    this.builtDir = join(root, 'layers');
    this.tmpDir = join(root, 'tmp');
    this.workDir = join(root, 'work');
    for (const d of [this.layersDir, this.builtDir, this.tmpDir, this.workDir]) mkdirSync(d, { recursive: true });
  }

  /**
   * A new, empty layer dir for a build step to fill (an overlay upperdir, or a file op's output), with a
   * workdir on the same filesystem for overlay (a file op, which writes the dir itself, asks for none: two
   * directory operations less per step). It becomes permanent only on commit(); a killed build leaves it
   * in tmp/, which the next open removes.
   */
  newLayer(): NewLayer & { workdir: string };
  newLayer(opts: { workdir: false }): NewLayer;
  newLayer(opts: { workdir?: false } = {}): NewLayer {
    const id = randomBytes(16).toString('hex');
    const dir = join(this.tmpDir, id);
    const workdir = opts.workdir === false ? undefined : join(this.workDir, id);
    mkdirSync(dir, { mode: 0o755 });
    if (workdir) mkdirSync(workdir);
    const final = join(this.builtDir, id);
    return {
      id,
      dir,
      workdir,
      commit: () => {
        if (workdir) rmSync(workdir, { recursive: true, force: true });
        renameSync(dir, final);
        return final;
      },
      discard: () => {
        if (workdir) rmSync(workdir, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  /** Makes a built layer findable by its diffID (a symlink sha256/<hex> → the layer's dir). */
  linkDiffId(diffId: string, dir: string): void {
    const link = this.dir(diffId);
    if (existsSync(link)) return;
    try {
      symlinkSync(dir, link);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }

  builtLayerDir(id: string): string {
    return join(this.builtDir, id);
  }

  dir(diffId: string): string {
    return join(this.layersDir, diffId.replace(/^sha256:/, ''));
  }

  has(diffId: string): boolean {
    return existsSync(this.dir(diffId));
  }

  /** Unpacks a layer blob into its snapshot unless it is there already; concurrent calls share one unpack. */
  ensure(diffId: string, open: () => Readable, mediaType: string): Promise<string> {
    const dest = this.dir(diffId);
    if (existsSync(dest)) return Promise.resolve(dest);
    const running = this.inflight.get(diffId);
    if (running) return running;
    const p = unpackLayer(open(), dest, { mediaType, expectedDiffId: diffId })
      .then(() => dest)
      .finally(() => this.inflight.delete(diffId));
    this.inflight.set(diffId, p);
    return p;
  }

  /** The overlay lowerdir list (topmost first) for an image's diff_ids (bottom first). */
  lowerdirs(diffIds: string[]): string[] {
    return diffIds.map((d) => this.dir(d)).reverse();
  }

  list(): string[] {
    return readdirSync(this.layersDir).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Removes half-unpacked temp dirs and unfinished build layers left by a killed process. */
  cleanTemp(): void {
    for (const d of [this.tmpDir, this.workDir]) {
      for (const name of readdirSync(d)) rmSync(join(d, name), { recursive: true, force: true });
    }
    for (const name of readdirSync(this.layersDir)) {
      if (!/^[a-f0-9]{64}$/.test(name)) rmSync(join(this.layersDir, name), { recursive: true, force: true });
    }
  }
}

export interface NewLayer {
  id: string;
  dir: string;
  /** The overlay workdir (unless the layer was made without one). */
  workdir?: string;
  /** Moves the layer into the store; returns its permanent dir. */
  commit(): string;
  discard(): void;
}
