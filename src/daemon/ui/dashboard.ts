// `kiln serve --ui HOST:PORT`: a small web dashboard, server-rendered HTML with a few lines of inline
// script (no CDN, works offline). It reads the builds' history from each tenant's state dir
// (<root>/tenants/<name>/history, written by the engine as builds run): running and recent builds, a
// build's timeline and its logs streaming live, the cache hit ratio of recent builds, disk usage and the
// GC policy. With a token file, a browser logs in with a token (kept in an HttpOnly session cookie) and
// sees its tenant only; without one (loopback only) it sees every tenant.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { State } from '../../../cache/state.js';
import { diskUsage } from '../../../cache/gc.js';
import { HistoryStore, type HistoryRecord } from '../../engine/history/store.js';
import { durationText, escapeXml, traceSvg } from '../../engine/history/trace.js';
import { dashboardPage, buildPage, loginPage, type BuildRow } from './pages.js';
import { HostCheck, LoginLimiter, Sessions } from './guard.js';

export interface DashboardOptions {
  host: string;
  port: number;
  /** kiln serve's state root (tenants under <root>/tenants). */
  root: string;
  /** token → tenant, when the service has a token file. */
  tokens?: Map<string, string>;
  sharedCache: boolean;
  /** The open state of a tenant, for disk usage (undefined when it has not built yet). */
  tenantState: (name: string) => Promise<State | undefined>;
  gcPolicy: string;
  /** Builds to show and to compute the cache hit ratio over. */
  recent?: number;
  /** Host names the dashboard is reached under besides its address and localhost (`--ui-host`). */
  hostNames?: string[];
}

export interface Dashboard {
  url: string;
  close(): Promise<void>;
}

const SESSION = 'kiln_session';

/** The methods each route answers; anything else is 405. */
const ROUTES: [RegExp, string[]][] = [
  [/^\/$/, ['GET', 'HEAD']],
  [/^\/login$/, ['GET', 'HEAD', 'POST']],
  [/^\/logout$/, ['POST']],
  [/^\/api\/summary$/, ['GET', 'HEAD']],
  [/^\/builds\/[0-9a-z]+$/, ['GET', 'HEAD']],
  [/^\/api\/builds\/[0-9a-z]+\/trace\.svg$/, ['GET', 'HEAD']],
  [/^\/api\/builds\/[0-9a-z]+\/events$/, ['GET']],
];

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const sessions = new Sessions();
  const limiter = new LoginLimiter();
  let hosts!: HostCheck; // known once the port is bound
  const recent = opts.recent ?? 50;

  const tenantOfToken = (given: string): string | undefined => {
    if (!opts.tokens) return undefined;
    const g = Buffer.from(given);
    let found: string | undefined;
    for (const [token, tenant] of opts.tokens) {
      const t = Buffer.from(token);
      if (t.length === g.length && timingSafeEqual(t, g)) found = tenant;
    }
    return found && (opts.sharedCache ? 'shared' : found);
  };

  /** Who is asking: '*' (no tokens configured), a tenant, or undefined (must log in). */
  const viewer = (req: IncomingMessage): string | undefined => {
    if (!opts.tokens) return '*';
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer) return tenantOfToken(bearer);
    const cookie = sessionOf(req);
    return cookie ? sessions.tenant(cookie) : undefined;
  };
  const sessionOf = (req: IncomingMessage) => (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${SESSION}=`))?.slice(SESSION.length + 1);

  const tenantsVisible = (who: string): string[] => {
    const dir = join(opts.root, 'tenants');
    const all = existsSync(dir) ? readdirSync(dir) : [];
    return who === '*' ? all : all.filter((t) => t === who);
  };

  const builds = (who: string): (HistoryRecord & { tenant: string })[] =>
    tenantsVisible(who)
      .flatMap((t) => new HistoryStore(join(opts.root, 'tenants', t)).list().map((r) => ({ ...r, tenant: t })))
      .sort((a, b) => b.started.localeCompare(a.started))
      .slice(0, recent);

  const findBuild = (who: string, id: string): { record: HistoryRecord; store: HistoryStore; tenant: string } | undefined => {
    if (!/^[0-9a-z]+$/.test(id)) return undefined;
    for (const t of tenantsVisible(who)) {
      const store = new HistoryStore(join(opts.root, 'tenants', t));
      const record = store.tryGet(id);
      if (record) return { record, store, tenant: t };
    }
    return undefined;
  };

  const rowOf = (r: HistoryRecord & { tenant: string }): BuildRow => ({
    id: r.id,
    tenant: r.tenant,
    status: r.status,
    started: r.started,
    duration: r.ended ? durationText(Date.parse(r.ended) - Date.parse(r.started)) : durationText(Date.now() - Date.parse(r.started)),
    ran: r.vertices.filter((v) => v.state === 'ran').length,
    cached: r.vertices.filter((v) => v.state === 'cached').length,
    dockerfile: r.dockerfile.name,
    digest: r.results.find((x) => x.digest)?.digest ?? '',
  });

  const summary = async (who: string) => {
    const list = builds(who);
    // Steps that could have been cached: everything but reading the build context.
    const steps = list.filter((r) => r.status !== 'running').flatMap((r) => r.vertices.filter((v) => !v.name.startsWith('[internal]') && (v.state === 'ran' || v.state === 'cached')));
    const hits = steps.filter((v) => v.state === 'cached').length;
    const usage = [];
    for (const t of tenantsVisible(who)) {
      const state = await opts.tenantState(t);
      const records = state ? await diskUsage(state) : [];
      usage.push({ tenant: t, records: records.length, bytes: records.reduce((n, r) => n + r.size, 0), reclaimable: records.filter((r) => r.reclaimable).reduce((n, r) => n + r.size, 0) });
    }
    return {
      builds: list.map(rowOf),
      cache: { builds: list.filter((r) => r.status !== 'running').length, steps: steps.length, hits, ratio: steps.length ? hits / steps.length : 0 },
      usage,
      gcPolicy: opts.gcPolicy,
    };
  };

  const send = (res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'content-security-policy': "frame-ancestors 'none'", ...headers });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // DNS rebinding: a page of another site resolving its name to this address is not answered.
    if (!hosts.allows(req.headers.host)) return send(res, 421, 'text/plain', `this dashboard does not answer for host ${JSON.stringify(String(req.headers.host ?? ''))} (kiln serve --ui-host NAME adds a name)`);
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const route = ROUTES.find(([re]) => re.test(url.pathname));
    if (!route) return send(res, 404, 'text/plain', 'not found');
    if (!route[1].includes(req.method ?? '')) return send(res, 405, 'text/plain', `method ${req.method} not allowed`, { allow: route[1].join(', ') });
    if (req.method === 'POST' && !hosts.sameOrigin(req)) return send(res, 403, 'text/plain', 'cross-origin request refused');
    if (url.pathname === '/logout') {
      const id = sessionOf(req);
      if (id) sessions.end(id);
      return send(res, 303, 'text/plain', 'logged out', { location: '/', 'set-cookie': `${SESSION}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
    }
    if (url.pathname === '/login' && req.method === 'POST') {
      const addr = req.socket.remoteAddress ?? '';
      const wait = limiter.retryAfter(addr);
      if (wait > 0) return send(res, 429, 'text/html; charset=utf-8', loginPage(`too many failed logins: try again in ${wait}s`), { 'retry-after': String(wait) });
      let body = '';
      for await (const chunk of req) {
        body += chunk;
        if (body.length > 4096) return send(res, 413, 'text/plain', 'too large');
      }
      const token = new URLSearchParams(body).get('token') ?? '';
      const tenant = tenantOfToken(token);
      if (!tenant) {
        limiter.failed(addr);
        return send(res, 401, 'text/html; charset=utf-8', loginPage('invalid token'));
      }
      const id = sessions.create(tenant);
      return send(res, 303, 'text/plain', 'logged in', { location: '/', 'set-cookie': `${SESSION}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(sessions.maxMs / 1000)}` });
    }
    const who = viewer(req);
    if (!who) {
      if (url.pathname.startsWith('/api/')) return send(res, 401, 'application/json', JSON.stringify({ error: 'a token is required' }));
      return send(res, 401, 'text/html; charset=utf-8', loginPage());
    }
    const logout = sessionOf(req) !== undefined && !!opts.tokens;
    if (url.pathname === '/login') return send(res, 303, 'text/plain', 'logged in', { location: '/' });
    if (url.pathname === '/') return send(res, 200, 'text/html; charset=utf-8', dashboardPage(await summary(who), logout));
    if (url.pathname === '/api/summary') return send(res, 200, 'application/json', JSON.stringify(await summary(who)));
    let m = /^\/builds\/([0-9a-z]+)$/.exec(url.pathname);
    if (m) {
      const found = findBuild(who, m[1]!);
      if (!found) return send(res, 404, 'text/html; charset=utf-8', '<!doctype html><p>No such build.</p>');
      return send(res, 200, 'text/html; charset=utf-8', buildPage(found.record, found.tenant, traceSvg(found.record), logout));
    }
    m = /^\/api\/builds\/([0-9a-z]+)\/trace\.svg$/.exec(url.pathname);
    if (m) {
      const found = findBuild(who, m[1]!);
      if (!found) return send(res, 404, 'text/plain', 'no such build');
      return send(res, 200, 'image/svg+xml', traceSvg(found.record));
    }
    m = /^\/api\/builds\/([0-9a-z]+)\/events$/.exec(url.pathname);
    if (m) {
      const found = findBuild(who, m[1]!);
      if (!found) return send(res, 404, 'text/plain', 'no such build');
      return streamEvents(req, res, found.store, found.record.id);
    }
    send(res, 404, 'text/plain', 'not found');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, 'text/plain', `error: ${escapeXml((err as Error).message)}`);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  hosts = new HostCheck(opts.host, port, opts.hostNames);
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Server-sent events of a build's log: what is on disk, then what is appended while it runs; `done` once
 * the build has finished and everything was sent.
 */
function streamEvents(req: IncomingMessage, res: ServerResponse, store: HistoryStore, id: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  let offset = 0;
  let closed = false;
  req.on('close', () => (closed = true));
  const tick = () => {
    if (closed) return;
    const got = store.events(id, offset);
    offset = got.offset;
    for (const ev of got.events) {
      if (ev.type === 'vertex.log' || ev.type === 'vertex.started' || ev.type === 'vertex.cached' || ev.type === 'vertex.failed' || ev.type === 'vertex.completed') {
        res.write(`data: ${JSON.stringify(ev)}\n\n`);
      }
    }
    const r = store.tryGet(id);
    if (r && r.status !== 'running' && store.events(id, offset).events.length === 0) {
      res.write(`event: done\ndata: ${JSON.stringify({ status: r.status })}\n\n`);
      res.end();
      return;
    }
    setTimeout(tick, 250);
  };
  tick();
}
