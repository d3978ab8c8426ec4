// BuildKit's own parser cases: every testfiles dump byte for byte, the negative cases, line numbers, parseWords.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpAST, parseDockerfile } from '../../frontends/dockerfile/parser.js';
import { DockerfileParseError } from '../../frontends/dockerfile/errors.js';
import { parseWords } from '../../frontends/dockerfile/line-parsers.js';
import { buildkitDockerfileDir } from './conformance-paths.js';

const parserDir = join(buildkitDockerfileDir, 'parser');

const cases = readdirSync(join(parserDir, 'testfiles')).sort();
test('there are 33 parser testfiles cases', () => assert.equal(cases.length, 33));

for (const name of cases) {
  test(`testfiles/${name}: dump matches BuildKit byte for byte`, () => {
    const dir = join(parserDir, 'testfiles', name);
    const ast = parseDockerfile(readFileSync(join(dir, 'Dockerfile'), 'utf8'));
    assert.equal(dumpAST(ast) + '\n', readFileSync(join(dir, 'result'), 'utf8'));
  });
}

const negatives: Record<string, RegExp> = {
  empty_dockerfile: /file with no instructions/,
  only_comments: /file with no instructions/,
  env_no_value: /^Dockerfile:3: ENV must have two arguments$/,
  'shykes-nested-json': /^Dockerfile:1: when using JSON array syntax, arrays must be comprised of strings only$/,
};
for (const name of readdirSync(join(parserDir, 'testfiles-negative')).sort()) {
  test(`testfiles-negative/${name}: fails with a user-facing error`, () => {
    const text = readFileSync(join(parserDir, 'testfiles-negative', name, 'Dockerfile'), 'utf8');
    assert.throws(() => parseDockerfile(text), (err: unknown) => {
      assert.ok(err instanceof DockerfileParseError);
      assert.equal(err.userFacing, true);
      assert.match(err.message, negatives[name] ?? /./);
      return true;
    });
  });
}

test('testfile-line: instruction start/end lines as BuildKit', () => {
  const ast = parseDockerfile(readFileSync(join(parserDir, 'testfile-line', 'Dockerfile'), 'utf8'));
  assert.equal(ast.startLine, 5);
  assert.equal(ast.endLine, 31);
  assert.deepEqual(ast.children.map((c) => [c.startLine, c.endLine]), [[5, 5], [11, 12], [17, 31]]);
});

test('parseWords keeps quotes and splits only on unquoted whitespace', () => {
  const table: [string, string[]][] = [
    ['foo', ['foo']],
    ['foo bar', ['foo', 'bar']],
    ['foo\\ bar', ['foo\\ bar']],
    ['foo=bar', ['foo=bar']],
    ["foo bar 'abc xyz'", ['foo', 'bar', "'abc xyz'"]],
    ['foo bar "abc xyz"', ['foo', 'bar', '"abc xyz"']],
    ['àöû', ['àöû']],
    ['föo bàr "âbc xÿz"', ['föo', 'bàr', '"âbc xÿz"']],
  ];
  for (const [input, want] of table) assert.deepEqual(parseWords(input, { escapeToken: '\\' }), want, input);
});
