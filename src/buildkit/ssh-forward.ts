// --ssh through the session: for each agent id the Dockerfile mounts (RUN --mount=type=ssh) and the client
// has (SSH.CheckAgent), a unix socket in the build dir whose every connection is one ForwardAgent call on
// the session. kiln's sandbox then forwards that socket into the RUN like a local agent.
import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { codec } from './proto.js';
import { SessionCallError, type ClientSession } from './session-grpc.js';

const CHECK = '/moby.sshforward.v1.SSH/CheckAgent';
const FORWARD = '/moby.sshforward.v1.SSH/ForwardAgent';
const NOT_FOUND = 5;

/** SSH mount ids a Dockerfile names (`default` when a mount gives none). */
export function sshIds(text: string): string[] {
  const ids = new Set<string>();
  for (const m of text.matchAll(/--mount=([^\s\\]+)/g)) {
    const fields = Object.fromEntries(m[1].split(',').map((f) => [f.split('=')[0].toLowerCase(), f.split('=').slice(1).join('=')]));
    if (fields.type === 'ssh') ids.add(fields.id || 'default');
  }
  return [...ids];
}

function relay(session: ClientSession, id: string, conn: Socket): void {
  const bytes = codec<{ data: Buffer }>('moby.sshforward.v1.BytesMessage');
  const call = session.open(FORWARD, { 'buildkit.ssh.id': id });
  conn.on('data', (d: Buffer) => {
    conn.pause();
    call.send(bytes.encode({ data: d })).then(
      () => conn.resume(),
      () => conn.destroy(),
    );
  });
  conn.on('end', () => call.end());
  conn.on('error', () => call.cancel());
  void (async () => {
    try {
      for (;;) {
        const m = await call.recv();
        if (!m) break;
        conn.write(bytes.decode(m).data);
      }
    } catch {
      // the client's agent went away: so does this connection
    }
    conn.end();
  })();
}

/** Opens a socket per agent the client has; returns id → socket path and a close function. */
export async function forwardAgents(session: ClientSession, ids: string[], dir: string): Promise<{ sockets: Record<string, string>; close: () => void }> {
  const sockets: Record<string, string> = {};
  const servers: Server[] = [];
  if (!ids.length || !session.supports(CHECK) || !session.supports(FORWARD)) return { sockets, close: () => {} };
  const req = codec<{ ID: string }>('moby.sshforward.v1.CheckAgentRequest');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const id of ids) {
    try {
      await session.unary(CHECK, req.encode({ ID: id }));
    } catch (err) {
      if (err instanceof SessionCallError && err.code === NOT_FOUND) continue;
      throw err;
    }
    const path = join(dir, `agent-${servers.length}.sock`);
    const srv = createServer((conn) => relay(session, id, conn));
    await new Promise<void>((r) => srv.listen(path, r));
    servers.push(srv);
    sockets[id] = path;
  }
  return { sockets, close: () => servers.forEach((s) => s.close()) };
}
