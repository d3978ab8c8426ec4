// What the dashboard checks before it answers: the Host header (a DNS-rebinding page in a browser reaches
// 127.0.0.1 under its own name: only the dashboard's own host names and localhost are answered), the
// Origin of state-changing requests, how often one address may try a token at /login, and how long a
// login session lives.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';

const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);

/** Lower-case `host` (brackets kept for IPv6) from a Host header or URL host; undefined when malformed. */
function hostPart(hostHeader: string): { host: string; port?: string } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?$/i.exec(hostHeader.trim());
  return m ? { host: m[1]!.toLowerCase(), port: m[2] } : undefined;
}

const bracket = (h: string) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h).toLowerCase();

export class HostCheck {
  private readonly names: Set<string>;

  /**
   * `bindHost` is the address the dashboard listens on; `extra` are names the operator serves it under
   * (a DNS name, a proxy's name). On a wildcard address, every address of this machine counts as its own.
   */
  constructor(bindHost: string, readonly port: number, extra: string[] = []) {
    const names = ['localhost', '127.0.0.1', '::1', ...extra];
    if (WILDCARD.has(bindHost)) {
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.push(a.address.replace(/%.*$/, ''));
    } else names.push(bindHost);
    this.names = new Set(names.map(bracket));
  }

  /** Whether a Host header (or the host of an Origin) names this dashboard. */
  allows(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    const h = hostPart(hostHeader);
    if (!h || !this.names.has(h.host)) return false;
    return (h.port ?? '80') === String(this.port);
  }

  /**
   * A state-changing request must come from the dashboard's own pages: a cross-site `Origin` (or
   * `Sec-Fetch-Site`), or `Origin: null`, is refused. Clients that are not browsers send neither.
   */
  sameOrigin(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    return url.protocol === 'http:' && url.host.toLowerCase() === String(req.headers.host ?? '').toLowerCase() && this.allows(url.host);
  }
}

function numberFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Failed token attempts per client address: after `attempts` in `windowMs`, /login answers 429 until the window passes. */
export class LoginLimiter {
  readonly attempts = numberFromEnv('KILN_UI_LOGIN_ATTEMPTS', 5);
  readonly windowMs = numberFromEnv('KILN_UI_LOGIN_WINDOW_MS', 60_000);
  private readonly failures = new Map<string, number[]>();

  /** Seconds until `addr` may try again; 0 when it may now. */
  retryAfter(addr: string, now = Date.now()): number {
    const recent = (this.failures.get(addr) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length) this.failures.set(addr, recent);
    else this.failures.delete(addr);
    return recent.length >= this.attempts ? Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000)) : 0;
  }

  failed(addr: string, now = Date.now()): void {
    // Bounded: an address flood cannot grow the table without limit.
    if (this.failures.size > 10_000) for (const [a] of this.failures) if (this.retryAfter(a, now) === 0) this.failures.delete(a);
    this.failures.set(addr, [...(this.failures.get(addr) ?? []), now]);
  }
}

/** Login sessions: expire after `idleMs` without a request and `maxMs` after login; logout ends them. */
export class Sessions {
  readonly idleMs = numberFromEnv('KILN_UI_SESSION_IDLE_MS', 30 * 60_000);
  readonly maxMs = numberFromEnv('KILN_UI_SESSION_MAX_MS', 12 * 3600_000);
  private readonly byId = new Map<string, { tenant: string; created: number; seen: number }>();

  create(tenant: string, now = Date.now()): string {
    this.prune(now);
    const id = randomBytes(24).toString('hex');
    this.byId.set(id, { tenant, created: now, seen: now });
    return id;
  }

  /** The tenant of a live session (and the session is kept alive); undefined when unknown or expired. */
  tenant(id: string, now = Date.now()): string | undefined {
    const s = this.byId.get(id);
    if (!s) return undefined;
    if (now - s.seen > this.idleMs || now - s.created > this.maxMs) {
      this.byId.delete(id);
      return undefined;
    }
    s.seen = now;
    return s.tenant;
  }

  end(id: string): void {
    this.byId.delete(id);
  }

  private prune(now: number): void {
    for (const [id, s] of this.byId) if (now - s.seen > this.idleMs || now - s.created > this.maxMs) this.byId.delete(id);
  }
}
