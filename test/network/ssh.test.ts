// SSH agent forwarding: `--ssh default=SOCKET` (a real OpenSSH ssh-agent holding a fresh key) and
// `--ssh ID=KEYFILE` reach `RUN --mount=type=ssh` as a socket the RUN's user may use, with
// SSH_AUTH_SOCK pointing at it; the agent answers through it; nothing of it stays in the image.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { buildSuite } from '../helpers/suite.js';
import { repoRoot } from '../helpers/fixtures.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();
let dir: string;
let agent: ChildProcess;
let sock: string;
let context: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-ssh-test-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kiln-test-agent-key', '-f', join(dir, 'agent_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kiln-test-file-key', '-f', join(dir, 'file_key')]);
  sock = join(dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await delay(10);
  execFileSync('ssh-add', ['-q', join(dir, 'agent_key')], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
  context = writeContext({});
  execFileSync('gcc', ['-static', '-O2', '-o', join(context, 'ssh-probe'), join(repoRoot, 'test/network/ssh-probe.c')]);
});
after(() => {
  agent?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function build(name: string, lines: string[], args: string[]) {
  const dest = join(suite.outs, name);
  execFileSync('sh', ['-c', `cat > ${join(context, 'Dockerfile')}`], { input: [`FROM ${suite.base}`, 'COPY ssh-probe /ssh-probe', ...lines].join('\n') + '\n' });
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`, ...args], { context });
  return { ...r, dest };
}

test('--ssh default=SOCKET forwards a running ssh-agent to RUN --mount=type=ssh', () => {
  const r = build('agent', [
    'RUN --mount=type=ssh /ssh-probe > /keys && echo "$SSH_AUTH_SOCK" > /sock-env && stat -c "%a %u" "$SSH_AUTH_SOCK" > /sock-perm',
  ], ['--ssh', `default=${sock}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(r.dest, 'keys'), 'utf8'), 'kiln-test-agent-key\n');
  assert.equal(readFileSync(join(r.dest, 'sock-env'), 'utf8'), '/run/buildkit/ssh_agent.0\n');
  assert.equal(readFileSync(join(r.dest, 'sock-perm'), 'utf8'), '600 0\n');
  assert.ok(!existsSync(join(r.dest, 'run/buildkit')), 'the socket mount point is not in the image');
});

test('--ssh ID=KEYFILE loads the key into an agent of its own; uid and mode let another user use it', () => {
  const r = build('keyfile', [
    'USER 1000:1000',
    'RUN --mount=type=ssh,id=deploy,target=/tmp/agent.sock,uid=1000,mode=0600 /ssh-probe > /tmp/keys && stat -c "%a %u" /tmp/agent.sock > /tmp/perm',
  ], ['--ssh', `deploy=${join(dir, 'file_key')}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(r.dest, 'tmp/keys'), 'utf8'), 'kiln-test-file-key\n');
  assert.equal(readFileSync(join(r.dest, 'tmp/perm'), 'utf8'), '600 1000\n');
  assert.deepEqual(readdirSync(join(r.dest, 'tmp')).sort(), ['keys', 'perm']);
});

test('a required ssh mount without --ssh is a one-line error; an optional one is skipped', () => {
  const missing = build('missing', ['RUN --mount=type=ssh,required=true /ssh-probe'], []);
  assert.notEqual(missing.status, 0);
  assert.match(errorLine(missing), /Dockerfile:3: unset ssh forward key default: no SSH agent or key given \(pass it with --ssh default=\$SSH_AUTH_SOCK/);
  const optional = build('optional', ['RUN --mount=type=ssh ls /run/buildkit 2>&1 | wc -l > /count; echo "${SSH_AUTH_SOCK:-unset}" > /sock'], []);
  assert.equal(optional.status, 0, optional.stderr);
  assert.equal(readFileSync(join(optional.dest, 'sock'), 'utf8'), 'unset\n');
  const bad = build('bad', [], ['--ssh', `default=${join(dir, 'nope')}`]);
  assert.notEqual(bad.status, 0);
  assert.match(errorLine(bad), /--ssh default: .*nope does not exist/);
});
