// `kiln build --explain`: each step that ran says why it was not cached, compared with the last build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();

function explained(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('EXPLAIN '));
}

test('--explain names the changed file, build arg and instruction, and what depends on them', () => {
  const context = writeContext({
    Dockerfile: `FROM ${suite.base}\nARG MODE=dev\nCOPY src/ /src/\nRUN echo $MODE > /mode\nCOPY other.txt /other.txt\n`,
    'src/a': 'a\n',
    'src/b': 'b\n',
    'other.txt': 'o\n',
  });
  const build = (...args: string[]) => {
    const r = kilnBuild(suite.root, {}, ['--explain', ...args], { context });
    assert.equal(r.status, 0, r.stderr);
    return explained(r.stderr);
  };
  assert.ok(build().every((l) => l.endsWith('no earlier build of this Dockerfile and target to compare with')));
  assert.deepEqual(build(), [], 'nothing ran: nothing to explain');

  writeFileSync(join(context, 'src/b'), 'changed\n');
  assert.deepEqual(build(), [
    'EXPLAIN [2/4] COPY src/ /src/: files changed: /src/b changed',
    'EXPLAIN [3/4] RUN echo dev > /mode: it builds on a step that changed: [2/4] COPY src/ /src/',
    'EXPLAIN [4/4] COPY other.txt /other.txt: it builds on a step that changed: [3/4] RUN echo dev > /mode',
  ]);

  const withArg = build('--build-arg', 'MODE=prod');
  assert.equal(withArg[0], 'EXPLAIN [3/4] RUN echo prod > /mode: build arg or env changed: MODE=dev → MODE=prod');

  writeFileSync(join(context, 'other.txt'), 'o2\n');
  assert.deepEqual(build('--build-arg', 'MODE=prod'), ['EXPLAIN [4/4] COPY other.txt /other.txt: files changed: /other.txt changed']);

  writeFileSync(join(context, 'Dockerfile'), `FROM ${suite.base}\nARG MODE=dev\nCOPY src/ /src/\nRUN echo $MODE >> /mode\nCOPY other.txt /other.txt\n`);
  assert.match(build('--build-arg', 'MODE=prod')[0]!, /^EXPLAIN \[3\/4\] RUN echo prod >> \/mode: instruction changed: "\[3\/4\] RUN echo prod > \/mode" → "\[3\/4\] RUN echo prod >> \/mode"$/);
});

test('rawjson progress carries the explanations as events', () => {
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY f /f\n`, f: '1\n' });
  assert.equal(kilnBuild(suite.root, {}, [], { context }).status, 0);
  writeFileSync(join(context, 'f'), '2\n');
  const r = kilnBuild(suite.root, {}, ['--progress', 'rawjson'], { context });
  const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const ex = events.filter((e) => e.type === 'vertex.explain');
  assert.deepEqual(ex.map((e) => `${e.name}: ${e.reason}`), ['[2/2] COPY f /f: files changed: /f changed']);
});
