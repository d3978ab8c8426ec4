// Build slots of `kiln serve`: at most `max` builds run at once, and at most `perTenant` of one tenant, so
// one tenant cannot take every slot. Waiters are served first come, first served among those whose tenant
// is under its limit. A slot is held until the build has really ended (not when it was asked to stop), and
// a build canceled while it waits leaves the queue without ever starting.
export class BuildSlots {
  private running = 0;
  private readonly byTenant = new Map<string, number>();
  private readonly waiting: { tenant: string; grant: () => void }[] = [];

  constructor(
    readonly max: number,
    readonly perTenant: number,
  ) {}

  /** Builds running now. */
  get active(): number {
    return this.running;
  }

  /** Builds waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Whether a build of `tenant` would have to wait. */
  full(tenant: string): boolean {
    return this.running >= this.max || (this.byTenant.get(tenant) ?? 0) >= this.perTenant;
  }

  /** Resolves with the slot's release function; rejects with the signal's reason if aborted while waiting. */
  acquire(tenant: string, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const waiter = {
        tenant,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          this.running++;
          this.byTenant.set(tenant, (this.byTenant.get(tenant) ?? 0) + 1);
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.running--;
            const n = this.byTenant.get(tenant)! - 1;
            if (n === 0) this.byTenant.delete(tenant);
            else this.byTenant.set(tenant, n);
            this.pump();
          });
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
        this.pump();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.pump();
    });
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.max; ) {
      const w = this.waiting[i]!;
      if ((this.byTenant.get(w.tenant) ?? 0) >= this.perTenant) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      w.grant();
    }
  }
}
