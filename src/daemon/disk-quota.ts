// A tenant's disk quota on `kiln serve`: its state dir (build cache, layers, synced context files) may not
// grow past it. Checked before a build starts, while it runs (a RUN can write gigabytes between two
// checks, so the check also runs when the build ends, before anything is exported or reported as done),
// and the build over it fails with one line saying how to free space.
import { dirSize } from '../../cache/gc.js';
import { formatBytes } from '../../base/units.js';
import { UserError } from '../../base/errors.js';

export class QuotaExceeded extends UserError {}

export class DiskQuota {
  constructor(
    readonly tenant: string,
    readonly dir: string,
    readonly bytes: number,
  ) {}

  /** Throws QuotaExceeded when the tenant's state dir (plus `extra` bytes about to be written) is over the quota. */
  check(extra = 0): void {
    const used = dirSize(this.dir) + extra;
    if (used > this.bytes) throw new QuotaExceeded(`tenant ${this.tenant} is over its disk quota on this builder: ${formatBytes(used)} of ${formatBytes(this.bytes)} (kiln builder prune frees space)`);
  }

  /** Checks every `everyMs` while a build runs; aborts it with QuotaExceeded. Returns the stop function. */
  watch(abort: AbortController, everyMs = 2000): () => void {
    const timer = setInterval(() => {
      try {
        this.check();
      } catch (err) {
        abort.abort(err);
      }
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
