// Who is calling: a bearer token from the token file, or the subject of a verified client certificate
// (mTLS). The identity names a tenant; each tenant has its own cache namespace. Token file lines are
// `TENANT:TOKEN` (several tokens may name one tenant: they share its cache) or a bare `TOKEN` (its own
// tenant, named after a hash of the token); `#` starts a comment.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { UserError } from '../../base/errors.js';
import { AUTH_HEADER } from '../protocol/builder.js';

export interface AuthConfig {
  /** token → tenant; undefined when no token file was given. */
  tokens?: Map<string, string>;
  /** Client certificates are required and verified against a CA. */
  mtls: boolean;
  /** All tenants use one cache namespace. */
  sharedCache: boolean;
}

const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function loadTokenFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`--token-file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const tokens = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const colon = line.indexOf(':');
    const tenant = colon > 0 ? line.slice(0, colon) : `token-${createHash('sha256').update(line).digest('hex').slice(0, 12)}`;
    const token = colon > 0 ? line.slice(colon + 1).trim() : line;
    if (!TENANT.test(tenant)) throw new UserError(`--token-file ${path}:${i + 1}: invalid tenant name "${tenant}" (letters, digits, . _ -)`);
    if (token.length < 8) throw new UserError(`--token-file ${path}:${i + 1}: token is shorter than 8 characters`);
    tokens.set(token, tenant);
  });
  if (tokens.size === 0) throw new UserError(`--token-file ${path}: no tokens in the file`);
  return tokens;
}

export class AuthError extends Error {}

/** The caller's tenant, or an AuthError saying why it is refused. */
export function identify(call: { metadata: grpc.Metadata; getAuthContext?: () => { sslPeerCertificate?: { subject?: Record<string, string | string[] | undefined> } } | null }, cfg: AuthConfig): string {
  let tenant = 'default';
  if (cfg.mtls) {
    const cert = call.getAuthContext?.()?.sslPeerCertificate;
    const cn = cert?.subject?.CN;
    const name = Array.isArray(cn) ? cn[0] : cn;
    if (!name) throw new AuthError('client certificate has no subject CN');
    tenant = TENANT.test(name) ? name : `cert-${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
  }
  if (cfg.tokens) {
    const header = String(call.metadata.get(AUTH_HEADER)[0] ?? '');
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new AuthError('this builder requires a token (kiln builder create … --token-file FILE)');
    const found = lookup(cfg.tokens, m[1]!);
    if (!found) throw new AuthError('invalid token');
    tenant = found;
  }
  return cfg.sharedCache ? 'shared' : tenant;
}

function lookup(tokens: Map<string, string>, given: string): string | undefined {
  const g = Buffer.from(given);
  for (const [token, tenant] of tokens) {
    const t = Buffer.from(token);
    if (t.length === g.length && timingSafeEqual(t, g)) return tenant;
  }
  return undefined;
}
