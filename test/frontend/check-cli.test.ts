// `kiln build --check` / `--call=check[,format=json]` and the check findings of a normal build, as a user
// runs them; a context whose only Dockerfile is spelled `dockerfile`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { writeContext } from '../helpers/build.js';

const s = buildSuite();

test('--check prints the report on stdout, exits 1 when something is found and 0 when not, builds nothing', () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base} as base\nCMD echo hi\n` });
  const r = kiln(s.root, ['build', '--check', ctx]);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, [
    'Check complete, 2 warnings have been found!',
    '',
    "WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
    "'as' and 'FROM' keywords' casing do not match",
    'Dockerfile:1',
    '--------------------',
    `   1 | >>> FROM ${s.base} as base`,
    '   2 |     CMD echo hi',
    '   3 |     ',
    '--------------------',
    '',
    'WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
    'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
    'Dockerfile:2',
    '--------------------',
    `   1 |     FROM ${s.base} as base`,
    '   2 | >>> CMD echo hi',
    '   3 |     ',
    '--------------------',
    '',
  ].join('\n'));
  assert.equal(kiln(s.root, ['images']).stdout.includes('base'), false);
  const clean = writeContext({ Dockerfile: `FROM ${s.base}\nCMD ["sh"]\n` });
  const ok = kiln(s.root, ['build', '--call=check', clean]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'Check complete, no warnings found.\n');
});

test('--call=check,format=json gives BuildKit\'s lint result; an error is its buildError', () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nENV A b\nRUNN x\n` });
  const r = kiln(s.root, ['build', '--call=check,format=json', ctx]);
  assert.equal(r.status, 1);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.warnings, null);
  assert.equal(j.buildError.message, 'dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)');
  const bad = kiln(s.root, ['build', '--call=lint', ctx]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /invalid value "lint" for flag --call: expected build or check\[,format=json\]/);
});

test('a build lists the findings after it; error=true fails it naming the rules, after listing them', () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base} as base\nMAINTAINER me\n` });
  const r = kiln(s.root, ['build', '--progress', 'plain', '-o', `type=oci,dest=${s.outs}/w.tar`, ctx]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, / 2 warnings found:\n - FromAsCasing: 'as' and 'FROM' keywords' casing do not match \(line 1\)\n - MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label \(line 2\)\n/);
  const strict = kiln(s.root, ['build', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=error=true', '-o', `type=oci,dest=${s.outs}/x.tar`, ctx]);
  assert.equal(strict.status, 1);
  assert.match(strict.stderr, / - MaintainerDeprecated: [^\n]*\(line 2\)\nkiln: Dockerfile: lint violation found for rules: FromAsCasing, MaintainerDeprecated\n$/);
});

test('a context with only a lowercase dockerfile builds it', () => {
  const ctx = writeContext({ dockerfile: `FROM ${s.base}\nRUN echo lower > /which\n` });
  const r = kiln(s.root, ['build', '--progress', 'plain', ctx]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /RUN echo lower > \/which/);
  const none = writeContext({ 'Containerfile.txt': 'FROM scratch\n' });
  const missing = kiln(s.root, ['build', none]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /cannot read Dockerfile .*\/Dockerfile: no such file/);
});
