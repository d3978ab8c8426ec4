// src/cli/table.ts: the one table printer of `kiln images`, `du`, `history ls` and `builder ls/builds`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable } from '../../src/cli/table.js';

test('columns are as wide as their widest cell plus the gap; the last is not padded; no trailing spaces', () => {
  const lines = formatTable([
    ['REPOSITORY', 'TAG', 'SIZE'],
    ['kiln-test/a-long-name', 'latest', '1.2MB'],
    ['b', '', ''],
  ]);
  assert.deepEqual(lines, ['REPOSITORY              TAG      SIZE', 'kiln-test/a-long-name   latest   1.2MB', 'b']);
});

test('gap and minimum widths: history ls keeps its fixed layout and widens for a longer cell', () => {
  const opts = { gap: 1, minWidths: [17, 10] };
  const [head, row] = formatTable([['ID', 'STATUS', 'DOCKERFILE'], ['abc', 'completed', 'Dockerfile']], opts);
  assert.equal(head, `${'ID'.padEnd(17)} ${'STATUS'.padEnd(10)} DOCKERFILE`);
  assert.equal(row, `${'abc'.padEnd(17)} ${'completed'.padEnd(10)} Dockerfile`);
  const [head2, , long] = formatTable([['ID', 'STATUS', 'DOCKERFILE'], ['abc', 'completed', 'Dockerfile'], ['x'.repeat(20), 'running', 'Dockerfile.dev']], opts);
  assert.equal(long, `${'x'.repeat(20)} ${'running'.padEnd(10)} Dockerfile.dev`);
  assert.equal(head2!.indexOf('STATUS'), long!.indexOf('running'), 'columns stay aligned');
});
