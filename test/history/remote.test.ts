// One history: a build through kiln serve is recorded once, in the tenant's history (the same record a
// local build has), and the client sees it with `kiln history ls/inspect --builder`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { serve, clientEnv, kilnClient, type Served } from '../daemon/serve-helpers.js';

const suite = buildSuite();
let server: Served;
let sock: string;

before(async () => {
  sock = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'kiln.sock');
  server = await serve(['--addr', `unix://${sock}`]);
});
after(async () => {
  await server?.stop();
});

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

test('a build through kiln serve is one record in the tenant\'s history, listed by kiln history ls --builder on the client', () => {
  const env = clientEnv();
  const marker = randomBytes(6).toString('hex');
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo remote-history-${marker}\n` });
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, ctx], env);
  assert.equal(r.status, 0, r.stderr);

  const files = recordFiles(server.root);
  assert.equal(files.length, 1, `exactly one record on the builder:\n${files.join('\n')}`);
  assert.match(files[0]!, /\/tenants\/[^/]+\/history\/[0-9a-z]+\.json$/, 'kept in the tenant\'s state');
  assert.equal(existsSync(join(server.root, 'history')), false, 'the daemon keeps no history of its own');

  const ls = kilnClient(suite.root, ['history', 'ls', '--builder', `unix://${sock}`], env);
  assert.equal(ls.status, 0, ls.stderr);
  const rows = ls.stdout.trim().split('\n').slice(1);
  assert.equal(rows.length, 1, ls.stdout);
  assert.match(rows[0]!, /^\S+ +completed .* [1-9]\d* ran, \d+ cached +Dockerfile$/);
  const id = rows[0]!.split(/\s+/)[0]!;
  assert.equal(files[0]!.endsWith(`/${id}.json`), true, 'the id the client sees is the record\'s');

  const inspect = kilnClient(suite.root, ['history', 'inspect', 'latest', '--builder', `unix://${sock}`], env);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, new RegExp(`^ID: +${id}$`, 'm'));
  assert.match(inspect.stdout, /^Origin: +serve:\S+$/m);
  assert.match(inspect.stdout, new RegExp(`RAN .*RUN echo remote-history-${marker}`));

  // kiln builder builds and logs read the same record.
  const builds = kilnClient(suite.root, ['builder', 'builds', `unix://${sock}`], env);
  assert.equal(builds.status, 0, builds.stderr);
  assert.equal(builds.stdout.trim().split('\n').length, 2, builds.stdout);
  assert.match(builds.stdout, new RegExp(`^\\S+ +${id} +completed `, 'm'));
  const logs = kilnClient(suite.root, ['builder', 'logs', `unix://${sock}`, id], env);
  assert.equal(logs.status, 0, logs.stderr);
  assert.match(logs.stdout, new RegExp(`^remote-history-${marker}$`, 'm'));
});
