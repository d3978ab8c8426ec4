// base/units.ts: the one size and duration grammar every flag, config value, environment variable and
// Dockerfile flag uses, and the two size formats (docker's decimal HumanSize, binary for limits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesOf, formatBytes, formatSize, parseDuration, parseGoDuration, parseMemorySize, ramInBytes, timeAgo } from '../../base/units.js';
import { FlagError, InputSyntaxError, UserError } from '../../base/errors.js';

test('sizes: go-units RAMInBytes grammar (binary multiples, optional b/ib, one space, any case)', () => {
  const cases: [string, number | undefined][] = [
    ['100', 100],
    ['512b', 512],
    ['64k', 64 * 1024],
    ['64kb', 64 * 1024],
    ['64KiB', 64 * 1024],
    ['100m', 100 * 1024 ** 2],
    ['1.5g', 1.5 * 1024 ** 3],
    ['1 G', 1024 ** 3],
    ['2t', 2 * 1024 ** 4],
    ['1p', 1024 ** 5],
    ['0.5k', 512],
    ['1.0001k', 1024],
    ['', undefined],
    ['m', undefined],
    ['-1m', undefined],
    ['1x', undefined],
    ['1mm', undefined],
    ['1  m', undefined],
    ['1e3', undefined],
    [' 1m', undefined],
  ];
  for (const [text, want] of cases) assert.equal(bytesOf(text), want, JSON.stringify(text));
});

test('sizes: each caller keeps its error (Dockerfile flag, CLI flag)', () => {
  assert.equal(ramInBytes('64m'), 64 << 20);
  assert.throws(() => ramInBytes('64q'), (e: Error) => e instanceof InputSyntaxError && e.message === "invalid size: '64q'");
  assert.equal(parseMemorySize('--memory', ' 512m '), 512 << 20);
  assert.throws(() => parseMemorySize('--memory', 'lots'), (e: Error) => e instanceof FlagError && e.message === 'invalid value "lots" for flag --memory: expected a size like 512m or 1g');
});

test('formatSize is docker images\' decimal HumanSize; formatBytes is binary', () => {
  assert.equal(formatSize(0), '0B');
  assert.equal(formatSize(999), '999B');
  assert.equal(formatSize(1000), '1kB');
  assert.equal(formatSize(1234567), '1.23MB');
  assert.equal(formatSize(5_000_000_000), '5GB');
  assert.equal(formatSize(12_500_000), '12.5MB');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(300 * 1024 ** 2), '300 MiB');
  assert.equal(formatBytes(1.5 * 1024 ** 3), '1.5 GiB');
});

test('Go durations: time.ParseDuration values and its three errors', () => {
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('1h30m'), 5400e9);
  assert.equal(parseGoDuration('2.5s'), 2.5e9);
  assert.equal(parseGoDuration('-1s'), -1e9);
  assert.equal(parseGoDuration('+300ms'), 300e6);
  assert.equal(parseGoDuration('1µs'), 1e3);
  assert.equal(parseGoDuration('.5s'), 0.5e9);
  const err = (s: string, message: string) => assert.throws(() => parseGoDuration(s), (e: Error) => e instanceof InputSyntaxError && e.message === message, s);
  err('', 'time: invalid duration ""');
  err('-', 'time: invalid duration "-"');
  err('10', 'time: missing unit in duration "10"');
  err('1d', 'time: unknown unit "d" in duration "1d"');
  err('s', 'time: invalid duration "s"');
  err('1s.', 'time: invalid duration "1s."');
});

test('kiln durations: Go form plus days, milliseconds out; bare seconds only where the flag takes them', () => {
  assert.equal(parseDuration('--filter until', '24h'), 86_400_000);
  assert.equal(parseDuration('--max-age', '7d'), 7 * 86_400_000);
  assert.equal(parseDuration('--max-age', '1h30m'), 5_400_000);
  assert.equal(parseDuration('--max-age', ' 250ms '), 250);
  assert.equal(parseDuration('--history-ttl', '4', { bareSeconds: true }), 4000);
  assert.equal(parseDuration('--history-ttl', '4s', { bareSeconds: true }), 4000);
  for (const bad of ['soon', '4', '-1h', '', '1y']) {
    assert.throws(
      () => parseDuration('--max-age', bad),
      (e: Error) => e instanceof UserError && e.message === `invalid --max-age "${bad}": expected a duration like 90m, 24h or 7d`,
      bad,
    );
  }
});

test('timeAgo reads as docker prints it', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(timeAgo('2026-01-01T12:00:00Z', now), 'Less than a second ago');
  assert.equal(timeAgo('2026-01-01T11:57:00Z', now), '3 minutes ago');
  assert.equal(timeAgo('2025-12-31T12:00:00Z', now), '1 day ago');
});
