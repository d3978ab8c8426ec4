// Waiting for something to become true, instead of sleeping for a fixed time and hoping it did.

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** How often the condition is checked (default 20 ms). */
  intervalMs?: number;
  /** What was awaited, for the timeout's error message. */
  what?: string;
}

/**
 * Resolves with the first truthy value `cond` returns (it may be async); rejects when `timeoutMs` passes
 * first, naming what was awaited (and the last error `cond` threw, if any).
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${opts.what ?? cond.toString()}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
