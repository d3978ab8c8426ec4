// `--ssh ID=PATH[,PATH…]`: each PATH is an SSH agent socket or a private key file. Sockets are used as
// they are; key files are loaded into a private ssh-agent (OpenSSH's, started for the build and stopped
// after it), as buildx loads keys into an agent of its own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export class SshAgentError extends Error {
  readonly userFacing = true;
}

export interface SshAgents {
  /** id → agent socket */
  sockets: Record<string, string>;
  close(): void;
}

export async function sshAgents(specs: { id: string; paths: string[] }[]): Promise<SshAgents> {
  const sockets: Record<string, string> = {};
  const agents: ChildProcess[] = [];
  const dirs: string[] = [];
  const close = () => {
    for (const a of agents) a.kill('SIGTERM');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    for (const { id, paths } of specs) {
      const stats = paths.map((p) => {
        try {
          return statSync(p);
        } catch {
          throw new SshAgentError(`--ssh ${id}: ${p} does not exist`);
        }
      });
      if (paths.length === 1 && stats[0]!.isSocket()) {
        sockets[id] = paths[0]!;
        continue;
      }
      if (stats.some((s) => s.isSocket())) throw new SshAgentError(`--ssh ${id}: give either one agent socket or key files, not both`);
      const dir = mkdtempSync(join(tmpdir(), 'kiln-ssh-'));
      dirs.push(dir);
      const sock = join(dir, 'agent.sock');
      let agent: ChildProcess;
      try {
        agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      } catch {
        throw new SshAgentError(`--ssh ${id}: ssh-agent is needed to load key files (apt-get install openssh-client)`);
      }
      agents.push(agent);
      const failed = new Promise<never>((_, reject) => agent.once('error', () => reject(new SshAgentError(`--ssh ${id}: cannot start ssh-agent (apt-get install openssh-client)`))));
      for (let i = 0; i < 200 && !existsSync(sock); i++) await Promise.race([delay(10), failed]);
      if (!existsSync(sock)) throw new SshAgentError(`--ssh ${id}: ssh-agent did not start`);
      for (const key of paths) {
        const r = spawnSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: '', DISPLAY: '' }, input: '', encoding: 'utf8' });
        if (r.status !== 0) throw new SshAgentError(`--ssh ${id}: cannot load key ${key}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
      }
      sockets[id] = sock;
    }
  } catch (err) {
    close();
    throw err;
  }
  return { sockets, close };
}
