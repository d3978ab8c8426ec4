// Per-build settings reach the op that needs them through the op registry (solver/ops/index.ts
// buildOps), not the environment every op gets, and never change a step's cache key (as in BuildKit:
// a secret's value, DNS, extra hosts, ssh agents and limits are not part of the exec op's key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildOps } from '../../solver/ops/index.js';
import type { ExecOp, Vertex } from '../../solver/graph/ops.js';
import { vertexDigest } from '../../solver/graph/builder.js';
import type { OpContext } from '../../solver/op.js';
import { vertexProgress } from '../../solver/progress.js';

const op: ExecOp = {
  kind: 'exec',
  args: ['/bin/sh', '-c', 'cat /run/secrets/token'],
  env: ['PATH=/bin'],
  cwd: '/',
  user: '',
  network: 'default',
  security: 'sandbox',
  mounts: [
    { input: 0, dest: '/', output: 0, type: 'bind' },
    { input: -1, dest: '/run/secrets/token', output: -1, type: 'secret', secret: { id: 'token', uid: 0, gid: 0, mode: 0o400, optional: false } },
  ],
};
const vertex: Vertex = { digest: vertexDigest(op, [{ digest: 'sha256:root', output: 0 }]), op, inputs: [{ digest: 'sha256:root', output: 0 }], meta: {} };
const ctx = (): OpContext => ({ vertex, progress: vertexProgress(() => {}, vertex.digest), signal: new AbortController().signal, env: {} as OpContext['env'], notes: {} });

test("a RUN's key does not change with the build's secrets, network defaults, dns, hosts, ssh or limits", async () => {
  const plain = await buildOps().exec.cacheMap(op, ctx());
  const loaded = await buildOps({
    run: {
      secrets: { token: Buffer.from('hunter2') },
      defaultNetwork: 'none',
      extraHosts: [{ host: 'db', ip: '10.0.0.5' }],
      dns: { nameservers: ['10.0.0.53'] },
      ssh: { default: '/tmp/agent.sock' },
      runLimits: { memoryBytes: 1 << 30, pids: 100 },
    },
    fetch: { denyLocalFetch: true },
  }).exec.cacheMap(op, ctx());
  assert.equal(loaded.digest, plain.digest);
  assert.ok(!JSON.stringify(loaded).includes('hunter2'));
  // What the op itself says does key it: another network mode is another step.
  const host = await buildOps().exec.cacheMap({ ...op, network: 'host' }, ctx());
  assert.notEqual(host.digest, plain.digest);
});

test('each build gets its own registry: settings of one build are not seen by another', () => {
  const a = buildOps({ run: { secrets: { token: Buffer.from('a') } } });
  const b = buildOps({ run: { secrets: { token: Buffer.from('b') } } });
  assert.notEqual(a.exec, b.exec);
  assert.equal(a.file, b.file, 'ops without settings are shared');
});
