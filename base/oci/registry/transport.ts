// One HTTP exchange with a registry, done right: anonymous first, then the auth the registry asks for
// (Basic or Bearer tokens, remembered per registry so later requests authenticate up front); redirects
// followed by hand so Authorization never leaves the registry's origin; non-2xx answers turned into
// one-line errors. Retrying is the caller's loop (`retrying`), because a body can fail after the headers.
import { Agent, type Dispatcher } from 'undici';
import type { ImageReference } from '../reference.js';
import { basicAuthHeader, parseWwwAuthenticate, TokenCache, type Challenge } from './auth.js';
import type { CredentialProvider, Credentials } from './credentials.js';
import { registryEndpoint, type RegistryEndpoint } from './endpoint.js';
import {
  DeniedError,
  NotFoundError,
  RegistryError,
  UnauthorizedError,
  UnreachableError,
  networkErrorCode,
  networkErrorMessage,
  parseErrorBody,
} from './errors.js';
import { backoffDelay, isRetryable, sleep, type RetryPolicy } from './retry.js';
import { fetchLimits, meteredBody, type FetchLimits } from './fetch-limits.js';

export type ResponseData = Dispatcher.ResponseData;

/** A 5xx (or a token server's 5xx): worth retrying. */
export class ServerError extends RegistryError {
  readonly retryable = true;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  ref: ImageReference;
  /** Path below /v2/<repository>/, e.g. `manifests/latest` or `blobs/sha256:…`. */
  path: string;
  /** An absolute or registry-relative URL to use instead of `path` (upload sessions' Location). */
  url?: string;
  /** A request body; a Buffer so that it can be sent again after an auth challenge or a redirect. */
  body?: Buffer;
  /** Writes need push access. */
  push?: boolean;
  headers?: Record<string, string>;
  /** Names the thing in error messages: `127.0.0.1:5000/busybox:latest`. */
  subject: string;
  /** What a 404 means: a missing image or a missing blob (or an upload session). */
  kind: 'manifest' | 'blob' | 'upload';
}

type HostAuth = { kind: 'bearer'; realm: string; service?: string } | { kind: 'basic' };

const MAX_REDIRECTS = 10;
const MAX_ERROR_BODY = 64 * 1024;

export interface TransportOptions {
  credentials: CredentialProvider;
  userAgent: string;
  insecureRegistries: string[];
  retry: RetryPolicy;
}

export class RegistryTransport {
  private readonly agent: Agent;
  private readonly tokens = new TokenCache();
  private readonly hostAuth = new Map<string, HostAuth>();
  private readonly tokenRequests = new Map<string, Promise<string>>();
  /** Timeouts and the minimum transfer rate of every request and body. */
  readonly limits: FetchLimits;

  constructor(private readonly opts: TransportOptions) {
    // One keep-alive pool per origin (registry and its blob storage), shared by every request.
    const limits = (this.limits = fetchLimits());
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      connections: 16,
      connect: { timeout: limits.connectTimeoutMs },
      headersTimeout: limits.idleTimeoutMs,
      bodyTimeout: limits.idleTimeoutMs,
    });
  }

  endpoint(domain: string): RegistryEndpoint {
    return registryEndpoint(domain, this.opts.insecureRegistries);
  }

  /**
   * Sends one request (plus the auth and redirect hops it needs) and returns a 2xx response whose body the
   * caller must consume or destroy. Throws RegistryError subclasses for error statuses; network errors
   * are thrown as they come, for `retrying` to judge.
   */
  async send(req: RegistryRequest): Promise<ResponseData> {
    const ep = this.endpoint(req.ref.domain);
    const scope = `repository:${req.ref.path}:${req.push ? 'pull,push' : 'pull'}`;
    let url = req.url ? new URL(req.url, ep.origin) : new URL(`${ep.origin}/v2/${req.ref.path}/${req.path}`);
    let authorization = await this.preauthorize(ep, scope, req);
    let reauthorized = false;
    for (let hops = 0; ; ) {
      const sameOrigin = url.origin === ep.origin;
      const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, ...req.headers };
      if (authorization && sameOrigin) headers.authorization = authorization;
      const res = await this.agent.request({ origin: url.origin, path: url.pathname + url.search, method: req.method, headers, body: req.body });
      const status = res.statusCode;
      if (status >= 200 && status < 300) return res;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location && (req.method === 'GET' || req.method === 'HEAD' || status === 307 || status === 308)) {
        await res.body.dump();
        if (++hops > MAX_REDIRECTS) throw new RegistryError(`${req.subject}: more than ${MAX_REDIRECTS} redirects`, status);
        url = new URL(String(location), url);
        continue;
      }
      if (status === 401 && sameOrigin && !reauthorized) {
        const header = res.headers['www-authenticate'];
        await res.body.dump();
        const challenges = parseWwwAuthenticate(Array.isArray(header) ? header.join(', ') : (header ?? ''));
        authorization = await this.authorize(ep, challenges, scope, req, authorization);
        reauthorized = true;
        continue;
      }
      throw await this.statusError(res, req, ep);
    }
  }

  /** Runs `fn` until it succeeds, a non-retryable error occurs, or attempts run out; network errors become UnreachableError. */
  async retrying<T>(domain: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    const policy = this.opts.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (isRetryable(err) && attempt < policy.attempts) {
          await sleep(backoffDelay(policy, attempt));
          continue;
        }
        throw this.finalError(err, domain, attempt);
      }
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private finalError(err: unknown, domain: string, attempts: number): unknown {
    if ((err as { userFacing?: unknown })?.userFacing === true) return err;
    const code = networkErrorCode(err);
    if (code !== undefined) {
      const after = attempts > 1 ? ` (after ${attempts} attempts)` : '';
      // A connection that was made and then lost is not the same problem as a host we cannot reach.
      const lost = code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED' || code === 'UND_ERR_BODY_TIMEOUT';
      const what = lost ? `connection to registry ${domain} lost` : `cannot reach registry ${domain}`;
      return new UnreachableError(`${what}: ${networkErrorMessage(err)}${after}`, undefined, code, { cause: err });
    }
    return err;
  }

  /** The Authorization a request can carry before being challenged, from what this registry asked last time. */
  private async preauthorize(ep: RegistryEndpoint, scope: string, req: RegistryRequest): Promise<string | undefined> {
    const known = this.hostAuth.get(ep.domain);
    if (!known) return undefined;
    if (known.kind === 'basic') {
      const creds = await this.opts.credentials.lookup(ep.domain);
      return creds ? basicAuthHeader(creds.username, creds.password) : undefined;
    }
    const cached = this.tokens.get(known.realm, known.service, scope);
    if (cached) return `Bearer ${cached}`;
    return `Bearer ${await this.fetchToken(ep, known.realm, known.service, scope, req)}`;
  }

  /** Answers a 401's challenges; throws UnauthorizedError when we have nothing to answer with. */
  private async authorize(ep: RegistryEndpoint, challenges: Challenge[], scope: string, req: RegistryRequest, sent: string | undefined): Promise<string> {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      const realm = bearer.params.realm!;
      const service = bearer.params.service;
      const wanted = bearer.params.scope || scope;
      this.hostAuth.set(ep.domain, { kind: 'bearer', realm, service });
      // A token obtained meanwhile (by a parallel request) is used; the one just refused is replaced.
      const cached = this.tokens.get(realm, service, wanted);
      if (cached && `Bearer ${cached}` !== sent) return `Bearer ${cached}`;
      this.tokens.delete(realm, service, wanted);
      return `Bearer ${await this.fetchToken(ep, realm, service, wanted, req)}`;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.hostAuth.set(ep.domain, { kind: 'basic' });
      const creds = await this.opts.credentials.lookup(ep.domain);
      if (!creds) throw this.unauthorized(ep, req, undefined, creds);
      return basicAuthHeader(creds.username, creds.password);
    }
    throw new UnauthorizedError(`${req.subject}: unauthorized: registry ${ep.domain} sent no Basic or Bearer challenge`, 401);
  }

  /** A token for the scope; parallel requests (layer downloads) share one token request. */
  private fetchToken(ep: RegistryEndpoint, realm: string, service: string | undefined, scope: string, req: RegistryRequest): Promise<string> {
    const key = `${realm}\n${service ?? ''}\n${scope}`;
    let pending = this.tokenRequests.get(key);
    if (!pending) {
      pending = this.requestToken(ep, realm, service, scope, req).finally(() => this.tokenRequests.delete(key));
      this.tokenRequests.set(key, pending);
    }
    return pending;
  }

  /** The distribution token protocol: GET realm?service=…&scope=…, with Basic credentials when we have them. */
  private async requestToken(ep: RegistryEndpoint, realm: string, service: string | undefined, scope: string, req: RegistryRequest): Promise<string> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UnauthorizedError(`${req.subject}: registry ${ep.domain} sent an invalid token realm ${JSON.stringify(realm)}`, 401);
    }
    if (service) url.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const creds = await this.opts.credentials.lookup(ep.domain);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, accept: 'application/json' };
    if (creds) headers.authorization = basicAuthHeader(creds.username, creds.password);
    const res = await this.agent.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers });
    if (res.statusCode === 401 || res.statusCode === 403) {
      const { message } = parseErrorBody(await readText(res));
      throw this.unauthorized(ep, req, message, creds);
    }
    if (res.statusCode >= 500) {
      await res.body.dump();
      throw new ServerError(`${req.subject}: token server ${url.origin} returned ${res.statusCode}`, res.statusCode);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError(`${req.subject}: token server ${url.origin} returned ${res.statusCode}`, res.statusCode);
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(await readText(res, 1024 * 1024));
    } catch {
      throw new RegistryError(`${req.subject}: token server ${url.origin} returned invalid JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) throw new RegistryError(`${req.subject}: token server ${url.origin} returned no token`);
    this.tokens.set(realm, service, scope, token, typeof body.expires_in === 'number' ? body.expires_in : undefined);
    return token;
  }

  private unauthorized(ep: RegistryEndpoint, req: RegistryRequest, serverMessage: string | undefined, creds: Credentials | undefined): UnauthorizedError {
    const why = creds
      ? `credentials for ${ep.domain} from ${this.opts.credentials.source} were rejected`
      : `no credentials for ${ep.domain} in ${this.opts.credentials.source}`;
    return new UnauthorizedError(`${req.subject}: unauthorized: ${serverMessage || 'authentication required'} (${why})`, 401, 'UNAUTHORIZED');
  }

  private async statusError(res: ResponseData, req: RegistryRequest, ep: RegistryEndpoint): Promise<RegistryError> {
    const status = res.statusCode;
    const { code, message } = parseErrorBody(req.method === 'HEAD' ? '' : await readText(res, MAX_ERROR_BODY));
    if (req.method === 'HEAD') await res.body.dump();
    if (status === 404) {
      return new NotFoundError(`${req.subject}: ${req.kind === 'blob' ? 'blob ' : ''}not found in registry`, status, code);
    }
    if (status === 401) return this.unauthorized(ep, req, message, await this.opts.credentials.lookup(ep.domain));
    if (status === 403) return new DeniedError(`${req.subject}: denied: ${message || 'requested access to the resource is denied'}`, status, code);
    if (status === 429) return new RegistryError(`${req.subject}: too many requests to ${ep.domain}: ${message || 'rate limit exceeded'}`, status, code);
    const detail = [code, message].filter(Boolean).join(': ');
    const text = `${req.subject}: registry ${ep.domain} returned ${status}${res.statusText ? ` ${res.statusText}` : ''}${detail ? `: ${detail}` : ''}`;
    return status >= 500 ? new ServerError(text, status, code) : new RegistryError(text, status, code);
  }
}

/** Reads a response body as text, at most `limit` bytes (the rest is discarded). */
export async function readText(res: ResponseData, limit = MAX_ERROR_BODY): Promise<string> {
  return (await readBytes(res, limit, false)).toString('utf8');
}

/**
 * Reads a whole body into memory. Over `limit` bytes: with `strict`, throws (the document is too large
 * to be what it claims); otherwise truncates.
 */
export async function readBytes(res: ResponseData, limit: number, strict = true, subject = 'response'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of meteredBody(res.body as AsyncIterable<Buffer>, fetchLimits(), subject)) {
    total += chunk.length;
    if (total > limit) {
      res.body.destroy();
      if (strict) throw new RegistryError(`response larger than ${limit} bytes`);
      chunks.push(chunk.subarray(0, chunk.length - (total - limit)));
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
