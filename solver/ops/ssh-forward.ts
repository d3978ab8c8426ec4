// RUN --mount=type=ssh: a unix socket inside the sandbox that relays each connection to the client's
// SSH agent (--ssh ID=SOCKET). The relay socket gets the mount's uid/gid/mode (the agent's own socket
// keeps its permissions), and lives only as long as the RUN. As in BuildKit, the agent never sees more
// than the connections the RUN opens; no key material passes through kiln.
import { chmodSync, chownSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';

export interface AgentRelay {
  path: string;
  close(): Promise<void>;
}

export async function relayAgent(agentSocket: string, path: string, owner: { uid: number; gid: number; mode: number }): Promise<AgentRelay> {
  const open = new Set<Socket>();
  const server = createServer((conn) => {
    const up = connect(agentSocket);
    open.add(conn).add(up);
    const done = () => {
      conn.destroy();
      up.destroy();
      open.delete(conn);
      open.delete(up);
    };
    conn.on('error', done).on('close', done);
    up.on('error', done).on('close', done);
    conn.pipe(up);
    up.pipe(conn);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, owner.mode & 0o777);
  chownSync(path, owner.uid, owner.gid);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
