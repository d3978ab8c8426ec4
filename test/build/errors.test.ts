// Build errors a user can make: each is one line naming the Dockerfile line, and a non-zero exit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { tempRoot } from '../helpers/kiln.js';
import { kilnBuild, errorLine } from '../helpers/build.js';

let reg: TestRegistry;
let base: string;
let root: string;

before(async () => {
  reg = await startRegistry();
  base = pushBusybox(reg, 'library/busybox', 'latest');
  root = tempRoot();
});
after(async () => {
  await reg?.stop();
  rmSync(root, { recursive: true, force: true });
});

function fails(dockerfile: string, pattern: RegExp, files: Record<string, string> = {}) {
  const r = kilnBuild(root, { Dockerfile: dockerfile, ...files });
  assert.notEqual(r.status, 0, `expected failure for:\n${dockerfile}`);
  const line = errorLine(r);
  assert.match(line, pattern, r.stderr);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
}

test('unknown instruction', () => fails(`FROM ${base}\nRUNN echo hi\n`, /^kiln: Dockerfile:2: unknown instruction: RUNN \(did you mean RUN\?\)$/));
test('unknown flag', () => fails(`FROM ${base}\nCOPY --frm=x a b\n`, /^kiln: Dockerfile:2: unknown flag: --frm/));
test('COPY of a missing file', () => fails(`FROM ${base}\nRUN true\nCOPY missing.txt /x\n`, /^kiln: Dockerfile:3: .*missing\.txt.*(not found|no such file)/));
test('unknown stage in --from', () => fails(`FROM ${base}\nCOPY --from=nosuch /a /b\n`, /^kiln: Dockerfile:2: .*nosuch/));
test('stage cycle', () => fails(`FROM ${base} AS a\nCOPY --from=b /x /x\nFROM ${base} AS b\nCOPY --from=a /y /y\n`, /^kiln: Dockerfile:\d: circular dependency detected on stage: [ab]$/));
test('empty base name', () => fails(`ARG BASE\nFROM \${BASE}\n`, /^kiln: Dockerfile:2: base name \(\$\{BASE\}\) should not be blank$/));
test('unterminated heredoc', () => fails(`FROM ${base}\nRUN <<EOF\necho hi\n`, /^kiln: Dockerfile:2: unterminated heredoc/));
test('RUN exit code', () => fails(`FROM ${base}\nRUN exit 7\n`, /^kiln: Dockerfile:2: process "\/bin\/sh -c exit 7" did not complete successfully: exit code: 7$/));
test('a base image that does not exist', () => fails(`FROM ${reg.host}/library/nope:1.0\nRUN true\n`, /^kiln: Dockerfile:1: .*nope:1\.0.*not found/));
test('bad flag value on the command line', () => {
  const r = kilnBuild(root, { Dockerfile: `FROM ${base}\n` }, ['--output', 'type=bogus']);
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /--output: unknown type "bogus"/);
});
