// One build history for both APIs of kiln serve: a build through buildx (BuildKit's API) is recorded in the
// tenant's history that `kiln history ls|inspect --builder` reads, a build through kiln's own protocol is
// listed by `buildx history ls`, and `buildx history inspect|logs` show a build's outcome, steps and output
// from that same record (docker-sid's buildx 0.29, remote driver).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeContext } from '../helpers/build.js';
import { tempRoot } from '../helpers/kiln.js';
import { buildx, buildxSuite } from './buildx-harness.js';
import { clientEnv, kilnClient } from '../daemon/serve-helpers.js';

const s = buildxSuite();
const skip = s.peer.ok ? false : s.peer.reason;
const b = () => ['--builder', s.builder, '--progress', 'plain'];
const kilnAddr = () => `unix://${join(s.dir, 'kiln.sock')}`;

/** Every history record file under the server's root, wherever it is kept. */
function recordFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\/history\/[^/]+\.json$/.test(p)) out.push(p);
    }
  };
  walk(root);
  return out;
}

/** `buildx history ls` rows as [ref, status]. */
async function buildxHistory(): Promise<[string, string][]> {
  const h = await buildx(['history', 'ls', '--builder', s.builder, '--format', '{{.Ref}} {{.Status}}']);
  assert.equal(h.status, 0, h.stderr);
  return h.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(' ', 2) as [string, string]);
}

test('a buildx build is one record in the tenant history kiln history reads; a kiln-protocol build is listed by buildx history ls', { skip }, async () => {
  const marker = randomBytes(5).toString('hex');
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo via-buildx-${marker} > /m\n` });
  const before = recordFiles(s.server.root).length;
  const r = await buildx(['build', ...b(), ctx]);
  assert.equal(r.status, 0, r.stderr);

  // One record more, in the tenant's state, and no store of the BuildKit API's own.
  const files = recordFiles(s.server.root);
  assert.equal(files.length, before + 1, files.join('\n'));
  for (const f of files) assert.match(f, /\/tenants\/[^/]+\/history\/[0-9a-z]+\.json$/);
  assert.equal(existsSync(join(s.server.root, 'buildkit', 'history')), false);

  const env = clientEnv();
  const client = tempRoot();
  const inspect = kilnClient(client, ['history', 'inspect', 'latest', '--builder', kilnAddr()], env);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /^Origin: +buildkit:\S+$/m);
  assert.match(inspect.stdout, /^Status: +completed$/m);
  assert.match(inspect.stdout, new RegExp(`RAN .*RUN echo via-buildx-${marker}`));
  const id = /^ID: +(\S+)$/m.exec(inspect.stdout)![1]!;
  const ls = kilnClient(client, ['history', 'ls', '--builder', kilnAddr()], env);
  assert.match(ls.stdout, new RegExp(`^${id} +completed `, 'm'));

  // buildx lists it under the ref it gave the build, not kiln's id.
  const rows = await buildxHistory();
  assert.equal(rows.length, files.length, rows.join('\n'));
  assert.ok(!rows.some(([ref]) => ref === id), 'the buildx build is listed under its buildx ref');

  // A build through kiln's own protocol appears in buildx history ls under its kiln id.
  const ctx2 = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo via-kiln-${marker} > /k\n` });
  const k = kilnClient(client, ['build', '--progress', 'plain', '--builder', kilnAddr(), ctx2], env);
  assert.equal(k.status, 0, k.stderr);
  const kid = /^ID: +(\S+)$/m.exec(kilnClient(client, ['history', 'inspect', 'latest', '--builder', kilnAddr()], env).stdout)![1]!;
  const after = await buildxHistory();
  assert.equal(after.length, rows.length + 1, after.join('\n'));
  assert.deepEqual(after[0], [kid, 'Completed']);
});
