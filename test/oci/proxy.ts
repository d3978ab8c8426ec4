// A small HTTP front for the real test registry, to put auth and faults between kiln and it: Bearer
// token auth, 503s, connections cut mid-body, Range stripped, blob redirects, replaced responses.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export interface ForwardOptions {
  /** Forward without the client's Range header (a server that ignores Range). */
  stripRange?: boolean;
  /** Send the headers and this many body bytes, then cut the connection. */
  cutAfterBytes?: number;
  /** Keep the client's Host header, so the registry's Location URLs point back through the proxy. */
  keepHost?: boolean;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, forward: (opts?: ForwardOptions) => void) => void;

export interface TestServer {
  host: string;
  url: string;
  seen: SeenRequest[];
  stop(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 whose handler may forward requests to `target` (http://host:port). */
export async function startProxy(target: string, handler: Handler): Promise<TestServer> {
  const seen: SeenRequest[] = [];
  const targetUrl = new URL(target);
  const server: Server = createServer((req, res) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const forward = (opts: ForwardOptions = {}) => {
      const headers = { ...req.headers, host: opts.keepHost ? req.headers.host : targetUrl.host };
      delete headers.authorization; // the registry behind the proxy is open
      if (opts.stripRange) delete headers.range;
      const upstream = httpRequest(
        { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          if (opts.cutAfterBytes === undefined) {
            up.pipe(res);
            return;
          }
          let sent = 0;
          up.on('data', (chunk: Buffer) => {
            if (sent >= opts.cutAfterBytes!) return;
            const part = chunk.subarray(0, opts.cutAfterBytes! - sent);
            sent += part.length;
            res.write(part);
            if (sent >= opts.cutAfterBytes!) {
              up.destroy();
              // Let the partial body reach the client, then reset the connection.
              setTimeout(() => res.socket?.destroy(), 50);
            }
          });
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    handler(req, res, forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface BearerOptions {
  user: string;
  password: string;
  /** Called for authorised registry requests; default forwards everything. */
  handler?: Handler;
}

/**
 * A registry front that demands Bearer tokens: 401 with a distribution-style challenge, tokens from
 * /token only for valid Basic credentials, then forwards to the real registry.
 */
export async function startBearerProxy(target: string, opts: BearerOptions): Promise<TestServer & { tokenRequests: URL[] }> {
  const tokenRequests: URL[] = [];
  // One token per scope asked for; writes (anything but GET/HEAD) need a token whose scope grants push.
  const issued = new Map<string, string>();
  const salt = Math.random().toString(36).slice(2);
  let self: TestServer;
  self = await startProxy(target, (req, res, forward) => {
    const url = new URL(req.url ?? '/', self.url);
    if (url.pathname === '/token') {
      tokenRequests.push(url);
      const expected = 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }));
        return;
      }
      const scope = url.searchParams.getAll('scope').join(' ');
      const token = `kiln-test-token-${salt}-${issued.size}`;
      issued.set(token, scope);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
      return;
    }
    const write = req.method !== 'GET' && req.method !== 'HEAD';
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const scope = given === undefined ? undefined : issued.get(given);
    if (scope === undefined || (write && !/:[a-z,]*push/.test(scope))) {
      const repo = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(url.pathname)?.[1];
      const wanted = repo ? `,scope="repository:${repo}:${write ? 'pull,push' : 'pull'}"` : '';
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${self.url}/token",service="test"${wanted}`,
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    (opts.handler ?? ((_q, _s, fwd) => fwd()))(req, res, forward);
  });
  return Object.assign(self, { tokenRequests });
}
