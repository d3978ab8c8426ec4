// BuildKit's shell lexer data: envVarTest (ProcessWord), wordsTest (ProcessWords), processWithMatches.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processWithMatches, processWord, processWords } from '../../frontends/dockerfile/shell-lexer.js';
import { buildkitDockerfileDir } from './conformance-paths.js';

const shellDir = join(buildkitDockerfileDir, 'shell');

test('envVarTest: every A and U line (W lines are Windows-only)', () => {
  const env = ['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL='];
  let checked = 0;
  let skipped = 0;
  const failures: string[] = [];
  for (const line of readFileSync(join(shellDir, 'envVarTest'), 'utf8').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const fields = line.split('|');
    assert.equal(fields.length, 3, line);
    const [platform, input, expected] = fields.map((f) => f.trim()) as [string, string, string];
    if (platform === 'W') { skipped++; continue; }
    let got: string;
    try {
      got = processWord(input, env);
    } catch {
      got = 'error';
    }
    if (got !== expected) failures.push(`${input} => ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
    checked++;
  }
  assert.deepEqual(failures, []);
  assert.equal(checked, 228);
  assert.equal(skipped, 2);
});

test('wordsTest: normal mode, cumulative ENV', () => {
  const env: string[] = [];
  const failures: string[] = [];
  let checked = 0;
  for (const line of readFileSync(join(shellDir, 'wordsTest'), 'utf8').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    if (line.startsWith('ENV ')) {
      env.push(line.slice(3).replace(/^ +/, ''));
      continue;
    }
    const parts = line.split('|');
    assert.equal(parts.length, 2, line);
    const input = parts[0]!.trim();
    const want = parts[1]!.replace(/^ +/, '').split(',');
    let got: string[];
    try {
      got = processWords(input, env);
    } catch {
      got = ['error'];
    }
    if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${input} => ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    checked++;
  }
  assert.deepEqual(failures, []);
  assert.ok(checked >= 20, `only ${checked} cases`);
});

interface MatchCase {
  input: string;
  envs: Record<string, string>;
  expected?: string;
  error?: boolean;
  matches?: string[];
  unmatched?: string[];
}

const data = JSON.parse(readFileSync(join(shellDir, 'processWithMatches.json'), 'utf8')) as Record<string, unknown>;
const groups = Object.entries(data).filter(([k, v]) => !k.startsWith('_') && Array.isArray(v)) as [string, MatchCase[]][];

test('processWithMatches.json has 56 cases', () => {
  assert.equal(groups.reduce((n, [, v]) => n + v.length, 0), 56);
});

for (const [group, list] of groups) {
  list.forEach((c, i) => {
    test(`${group}[${i}]: ${c.input}`, () => {
      if (c.error) {
        assert.throws(() => processWithMatches(c.input, c.envs), (e: unknown) => (e as { userFacing?: boolean }).userFacing === true);
        return;
      }
      const r = processWithMatches(c.input, c.envs);
      assert.equal(r.result, c.expected);
      if (c.matches) assert.deepEqual([...r.matched].sort(), [...c.matches].sort());
      if (c.unmatched) assert.deepEqual([...r.unmatched].sort(), [...c.unmatched].sort());
    });
  });
}
