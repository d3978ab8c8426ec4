// Build errors a user can make: each is one line naming the Dockerfile line, and a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, errorLine } from '../helpers/build.js';

const suite = buildSuite();

function fails(dockerfile: string, pattern: RegExp, files: Record<string, string> = {}) {
  const r = kilnBuild(suite.root, { Dockerfile: dockerfile, ...files });
  assert.notEqual(r.status, 0, `expected failure for:\n${dockerfile}`);
  const line = errorLine(r);
  assert.match(line, pattern, r.stderr);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
}

test('unknown instruction', () => fails(`FROM ${suite.base}\nRUNN echo hi\n`, /^kiln: Dockerfile:2: unknown instruction: RUNN \(did you mean RUN\?\)$/));
test('unknown flag', () => fails(`FROM ${suite.base}\nCOPY --frm=x a b\n`, /^kiln: Dockerfile:2: unknown flag: --frm/));
test('COPY of a missing file', () => fails(`FROM ${suite.base}\nRUN true\nCOPY missing.txt /x\n`, /^kiln: Dockerfile:3: .*missing\.txt.*(not found|no such file)/));
test('unknown stage in --from', () => fails(`FROM ${suite.base}\nCOPY --from=nosuch /a /b\n`, /^kiln: Dockerfile:2: .*nosuch/));
test('stage cycle', () => fails(`FROM ${suite.base} AS a\nCOPY --from=b /x /x\nFROM ${suite.base} AS b\nCOPY --from=a /y /y\n`, /^kiln: Dockerfile:\d: circular dependency detected on stage: [ab]$/));
test('empty base name', () => fails(`ARG BASE\nFROM \${BASE}\n`, /^kiln: Dockerfile:2: base name \(\$\{BASE\}\) should not be blank$/));
test('unterminated heredoc', () => fails(`FROM ${suite.base}\nRUN <<EOF\necho hi\n`, /^kiln: Dockerfile:2: unterminated heredoc/));
test('RUN exit code', () => fails(`FROM ${suite.base}\nRUN exit 7\n`, /^kiln: Dockerfile:2: process "\/bin\/sh -c exit 7" did not complete successfully: exit code: 7$/));
test('a base image that does not exist', () => fails(`FROM ${suite.reg.host}/library/nope:1.0\nRUN true\n`, /^kiln: Dockerfile:1: .*nope:1\.0.*not found/));
test('bad flag value on the command line', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--output', 'type=bogus']);
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /--output: unknown type "bogus"/);
});
test('a syntax directive naming another frontend', () => fails(`# syntax=example.com/my/frontend:1\nFROM ${suite.base}\n`, /^kiln: Dockerfile:1: unsupported frontend "example\.com\/my\/frontend:1"/));
test('the built-in frontend serves docker/dockerfile:* syntax directives', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `# syntax=docker/dockerfile:1.7\nFROM ${suite.base}\nRUN true\n` });
  assert.equal(r.status, 0, r.stderr);
});
test('after a step fails, no other step\'s log lines are printed below its error', () => {
  // Stage "chatty" prints while stage "broken" fails; the final stage needs both, so they run in parallel.
  const dockerfile = [
    `FROM ${suite.base} AS chatty`,
    'RUN i=0; while [ $i -lt 60 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done',
    `FROM ${suite.base} AS broken`,
    'RUN sleep 0.5; echo about to fail; exit 3',
    `FROM ${suite.base}`,
    'COPY --from=chatty /etc/hostname /a',
    'COPY --from=broken /etc/hostname /b',
  ].join('\n');
  const r = kilnBuild(suite.root, { Dockerfile: dockerfile + '\n' }, ['--progress', 'plain']);
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trimEnd().split('\n');
  const err = lines.findIndex((l) => / ERROR: process .*exit 3/.test(l));
  assert.ok(err >= 0, r.stderr);
  assert.ok(lines.slice(0, err).some((l) => / tick \d+$/.test(l)), `the chatty stage ran before the failure:\n${r.stderr}`);
  assert.deepEqual(lines.slice(err + 1).filter((l) => / tick \d+$/.test(l)), [], r.stderr);
  assert.match(lines[lines.length - 1]!, /^kiln: Dockerfile:4: process .* exit code: 3$/);
});
