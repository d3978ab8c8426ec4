// HTTP authentication against registries: parsing WWW-Authenticate challenges and the token cache of the
// distribution token protocol (Bearer realm/service/scope).

export interface Challenge {
  /** lowercase scheme: `bearer`, `basic`… */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header (RFC 7235): one or more challenges, each a scheme followed by
 * comma-separated `key=value` or `key="quoted, value"` parameters.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (re: RegExp) => {
    while (i < n && re.test(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skip(/[\s,]/);
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skip(/[\s,]/);
      const save = i;
      const key = token();
      skip(/\s/);
      if (!key || header[i] !== '=') {
        i = save; // not a parameter: the start of the next challenge
        break;
      }
      i++; // '='
      skip(/\s/);
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && !/\s/.test(header[i]!)) i++;
        value = header.slice(start, i);
      }
      challenge.params[key.toLowerCase()] = value;
    }
  }
  return out;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Tokens by (realm, service, scope), valid until shortly before the server says they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();

  private static key(realm: string, service: string | undefined, scope: string): string {
    return `${realm}\n${service ?? ''}\n${scope}`;
  }

  get(realm: string, service: string | undefined, scope: string, now = Date.now()): string | undefined {
    const hit = this.tokens.get(TokenCache.key(realm, service, scope));
    if (!hit) return undefined;
    if (hit.expiresAt <= now) {
      this.tokens.delete(TokenCache.key(realm, service, scope));
      return undefined;
    }
    return hit.token;
  }

  /** `expiresInSeconds` defaults to 60 as the token spec says; 10 s of margin covers clock and latency. */
  set(realm: string, service: string | undefined, scope: string, token: string, expiresInSeconds = 60, now = Date.now()): void {
    const lifetime = Math.max(expiresInSeconds, 60) * 1000 - 10_000;
    this.tokens.set(TokenCache.key(realm, service, scope), { token, expiresAt: now + lifetime });
  }

  delete(realm: string, service: string | undefined, scope: string): void {
    this.tokens.delete(TokenCache.key(realm, service, scope));
  }
}

export function basicAuthHeader(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
}
