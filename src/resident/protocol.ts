// The resident engine's wire format: one JSON object per line, both ways, over the state dir's unix socket.
// A connection carries one request: a build (then output and at most one exit back), or status, release
// or stop. Output is base64 so that a chunk may end inside a UTF-8 character.
import type { Socket } from 'node:net';

export interface BuildRequestMessage {
  t: 'build';
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  umask: number;
  /** stdin's bytes, base64, when the command reads stdin (`-f -`). */
  stdin?: string;
  tty: { stdout: boolean; stderr: boolean; columns?: number };
}

export type ClientMessage =
  | BuildRequestMessage
  | { t: 'signal'; sig: 'SIGINT' | 'SIGTERM' }
  | { t: 'status' }
  | { t: 'release' }
  | { t: 'stop' };

export interface EngineStatus {
  pid: number;
  root: string;
  idleTimeoutSeconds: number;
  startedAt: number;
  buildsServed: number;
  running: number;
  queued: number;
  stateOpen: boolean;
}

export type EngineMessage =
  /** First on every connection: which kiln code the engine runs (see paths.ts codeStamp). */
  | { t: 'hello'; pid: number; code: string }
  | { t: 'started'; pid: number }
  | { t: 'out'; fd: 1 | 2; d: string }
  | { t: 'exit'; code: number }
  | ({ t: 'status' } & EngineStatus)
  | { t: 'released' }
  | { t: 'stopping'; pid: number };

export function send(sock: Socket, msg: ClientMessage | EngineMessage): void {
  if (!sock.destroyed && sock.writable) sock.write(JSON.stringify(msg) + '\n');
}

/** Calls onMessage for each complete line the socket delivers; a line that is not JSON ends the connection. */
export function readMessages<T>(sock: Socket, onMessage: (msg: T) => void): void {
  let pending = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let msg: T;
      try {
        msg = JSON.parse(line) as T;
      } catch {
        sock.destroy();
        return;
      }
      onMessage(msg);
    }
  });
}
