// .dockerignore reading and matching as BuildKit (moby/patternmatcher) does it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IgnoreMatcher, loadDockerignore, readDockerignore } from '../../base/patterns/dockerignore.js';

test('reading: comments, blanks, whitespace, ./ and leading / cleaned, ! kept', () => {
  const text = '\uFEFF# comment\n\n  *.log  \n/abs/path\n./rel/../other/\n! keep.log\n #not a comment\nbuild/**\r\n';
  assert.deepEqual(readDockerignore(text), ['*.log', 'abs/path', 'other', '!keep.log', '#not a comment', 'build/**']);
});

test('matching table', () => {
  const cases: [string[], string, boolean][] = [
    [['*.log'], 'a.log', true],
    [['*.log'], 'dir/a.log', false], // * does not cross /
    [['**/*.log'], 'dir/sub/a.log', true],
    [['**/*.log'], 'a.log', true],
    [['node_modules'], 'node_modules/x/y.js', true], // parent dir match excludes children
    [['dir/'], 'dir/file', true], // trailing slash cleaned
    [['dir'], 'dirx/file', false],
    [['a/**'], 'a/b/c', true],
    [['a/**/z'], 'a/z', true],
    [['a/**/z'], 'a/b/c/z', true],
    [['?.txt'], 'ab.txt', false],
    [['?.txt'], 'a.txt', true],
    [['[ab].txt'], 'b.txt', true],
    [['[^ab].txt'], 'c.txt', true],
    [['*.md', '!README.md'], 'README.md', false],
    [['*.md', '!README.md'], 'other.md', true],
    [['*', '!src'], 'src/main.go', false],
    [['*', '!src', 'src/*.tmp'], 'src/x.tmp', true],
    [['docs', '!docs/keep.md'], 'docs/keep.md', false],
    [['docs', '!docs/keep.md'], 'docs/other.md', true],
    [['a.b'], 'axb', false], // . is literal
    [['**'], 'anything/at/all', true],
    [['\\*star'], '*star', true],
    [['.'], 'x', false],
  ];
  for (const [patterns, file, want] of cases) {
    assert.equal(new IgnoreMatcher(patterns).matches(file), want, `${JSON.stringify(patterns)} ${file}`);
  }
});

test('context root is never excluded; "!" alone is an error', () => {
  assert.equal(new IgnoreMatcher(['*']).matches('.'), false);
  assert.throws(() => new IgnoreMatcher(['!']), /illegal exclusion pattern: "!"/);
});

test('walking: may an excluded directory hold re-included files?', () => {
  const m = new IgnoreMatcher(['docs', 'vendor', '!docs/keep.md']);
  assert.equal(m.mayIncludeBelow('docs'), true);
  assert.equal(m.mayIncludeBelow('vendor'), false);
  assert.equal(new IgnoreMatcher(['vendor']).mayIncludeBelow('vendor'), false);
  assert.equal(new IgnoreMatcher(['*', '!**/*.go']).mayIncludeBelow('anything'), true); // wildcard exception
  assert.equal(new IgnoreMatcher(['*', '!src/*']).mayIncludeBelow('src'), true);
});

test('<Dockerfile>.dockerignore next to the Dockerfile wins over .dockerignore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ignore-'));
  try {
    mkdirSync(join(dir, 'build'));
    writeFileSync(join(dir, '.dockerignore'), 'root-rule\n');
    writeFileSync(join(dir, 'build', 'app.Dockerfile'), 'FROM scratch\n');
    assert.deepEqual(loadDockerignore(dir, join(dir, 'build', 'app.Dockerfile'))?.patterns, ['root-rule']);
    writeFileSync(join(dir, 'build', 'app.Dockerfile.dockerignore'), 'specific\n!x\n');
    const got = loadDockerignore(dir, join(dir, 'build', 'app.Dockerfile'));
    assert.equal(got?.path, join(dir, 'build', 'app.Dockerfile.dockerignore'));
    assert.deepEqual(got?.patterns, ['specific', '!x']);
    rmSync(join(dir, '.dockerignore'));
    rmSync(join(dir, 'build', 'app.Dockerfile.dockerignore'));
    assert.equal(loadDockerignore(dir, join(dir, 'build', 'app.Dockerfile')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
