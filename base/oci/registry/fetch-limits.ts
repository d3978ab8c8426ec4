// Time limits of registry and HTTP fetches, so a server that stalls or trickles cannot hold a build (or a
// shared builder's slot) forever: a connect timeout, an idle timeout (no byte for that long, before or
// during the body), and a minimum transfer rate measured over windows of the time kiln spent waiting for
// data (time the consumer spends writing to disk does not count). Tunable through the environment.
import { UserError } from '../../errors.js';

export interface FetchLimits {
  connectTimeoutMs: number;
  /** No response headers, or no body byte, for this long: the request fails. */
  idleTimeoutMs: number;
  /** Bytes per second, averaged over each `rateWindowMs` of waiting; 0 turns the check off. */
  minBytesPerSec: number;
  rateWindowMs: number;
}

function envNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new UserError(`invalid value "${raw}" for ${name}: expected a number ≥ 0`);
  return v;
}

/** KILN_FETCH_CONNECT_TIMEOUT_MS (30 s), KILN_FETCH_IDLE_TIMEOUT_MS (120 s), KILN_FETCH_MIN_RATE (1000 B/s), KILN_FETCH_MIN_RATE_WINDOW_MS (30 s). */
export function fetchLimits(env: NodeJS.ProcessEnv = process.env): FetchLimits {
  return {
    connectTimeoutMs: envNumber(env, 'KILN_FETCH_CONNECT_TIMEOUT_MS', 30_000) || 30_000,
    idleTimeoutMs: envNumber(env, 'KILN_FETCH_IDLE_TIMEOUT_MS', 120_000) || 120_000,
    minBytesPerSec: envNumber(env, 'KILN_FETCH_MIN_RATE', 1000),
    rateWindowMs: envNumber(env, 'KILN_FETCH_MIN_RATE_WINDOW_MS', 30_000) || 30_000,
  };
}

export class TransferTooSlowError extends UserError {}

/**
 * The chunks of `body`, failing with TransferTooSlowError when a window of waiting brought fewer bytes
 * than the minimum rate. Leaving the loop early (break, throw) destroys the body.
 */
export async function* meteredBody(body: AsyncIterable<Buffer>, limits: FetchLimits, subject: string): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  let waited = 0;
  let got = 0;
  let done = false;
  try {
    for (;;) {
      const t0 = performance.now();
      const r = await it.next();
      waited += performance.now() - t0;
      if (r.done) {
        done = true;
        return;
      }
      got += r.value.length;
      if (limits.minBytesPerSec > 0 && waited >= limits.rateWindowMs) {
        if ((got * 1000) / waited < limits.minBytesPerSec) {
          throw new TransferTooSlowError(
            `${subject}: transfer slower than ${limits.minBytesPerSec} bytes/s (${got} bytes in ${(waited / 1000).toFixed(1)}s; KILN_FETCH_MIN_RATE sets the minimum)`,
          );
        }
        waited = 0;
        got = 0;
      }
      yield r.value;
    }
  } finally {
    if (!done) await it.return?.();
  }
}
