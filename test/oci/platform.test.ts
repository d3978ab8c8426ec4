import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compatiblePlatforms,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
} from '../../base/oci/platform.js';
import type { Descriptor, ImageIndex, Platform } from '../../base/oci/types.js';

const host = hostPlatform();

// specifier → parsed (as containerd's platforms.Parse), normalised
const parseCases: Array<[string, string, string]> = [
  ['linux/arm64/v8', 'linux/arm64/v8', 'linux/arm64/v8'],
  ['linux/arm64', 'linux/arm64', 'linux/arm64/v8'],
  ['linux/aarch64', 'linux/arm64', 'linux/arm64/v8'],
  ['linux/arm64/8', 'linux/arm64/v8', 'linux/arm64/v8'],
  ['linux/arm64/v9', 'linux/arm64/v9', 'linux/arm64/v9'],
  ['linux/x86_64', 'linux/amd64', 'linux/amd64'],
  ['linux/x86-64', 'linux/amd64', 'linux/amd64'],
  ['linux/amd64/v1', 'linux/amd64', 'linux/amd64'],
  ['linux/amd64/v3', 'linux/amd64/v3', 'linux/amd64/v3'],
  ['linux/arm', 'linux/arm', 'linux/arm/v7'],
  ['linux/arm/7', 'linux/arm/v7', 'linux/arm/v7'],
  ['linux/arm/v7', 'linux/arm/v7', 'linux/arm/v7'],
  ['linux/arm/v6', 'linux/arm/v6', 'linux/arm/v6'],
  ['linux/arm/5', 'linux/arm/v5', 'linux/arm/v5'],
  ['linux/armhf', 'linux/arm', 'linux/arm/v7'],
  ['linux/armel', 'linux/arm/v6', 'linux/arm/v6'],
  ['linux/i386', 'linux/386', 'linux/386'],
  ['Linux/AMD64', 'linux/amd64', 'linux/amd64'],
  ['macos/arm64', 'darwin/arm64', 'darwin/arm64/v8'],
  ['windows/amd64', 'windows/amd64', 'windows/amd64'],
  ['linux/s390x', 'linux/s390x', 'linux/s390x'],
  ['linux/ppc64le', 'linux/ppc64le', 'linux/ppc64le'],
  ['linux/riscv64', 'linux/riscv64', 'linux/riscv64'],
  ['linux', `linux/${host.architecture}`, formatPlatform(normalizePlatform({ os: 'linux', architecture: host.architecture }))],
  ['arm64', `${host.os}/arm64`, `${host.os}/arm64/v8`],
  ['aarch64', `${host.os}/arm64`, `${host.os}/arm64/v8`],
];

test('parsePlatform and normalizePlatform follow containerd', () => {
  for (const [spec, parsed, normalised] of parseCases) {
    const p = parsePlatform(spec);
    assert.equal(formatPlatform(p), parsed, spec);
    assert.equal(formatPlatform(normalizePlatform(p)), normalised, spec);
  }
});

test('invalid platform specifiers give one-line errors', () => {
  for (const spec of ['', 'linux/', '/amd64', 'linux/amd64/v8/x', 'lin ux/amd64', 'foo', 'linux/amd64,linux/arm64']) {
    assert.throws(
      () => parsePlatform(spec),
      (err: Error & { userFacing?: boolean }) => err.userFacing === true && err.message.includes('platform') && !err.message.includes('\n'),
      spec,
    );
  }
});

test('hostPlatform is normalised and matches node', () => {
  const h = hostPlatform();
  assert.deepEqual(normalizePlatform(h), h);
  assert.equal(h.os, process.platform);
  if (process.arch === 'x64') assert.equal(h.architecture, 'amd64');
  if (process.arch === 'arm64') assert.equal(formatPlatform(h), 'linux/arm64/v8');
});

test('platformMatches compares normalised platforms', () => {
  const cases: Array<[string, string, boolean]> = [
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/aarch64', 'linux/arm64', true],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/arm', 'linux/arm/v7', true],
    ['linux/armhf', 'linux/arm/v7', true],
    ['linux/arm/v7', 'linux/arm/v6', false],
    ['linux/amd64', 'linux/amd64/v1', true],
    ['linux/amd64', 'linux/amd64/v2', false],
    ['linux/amd64', 'linux/arm64', false],
    ['linux/amd64', 'windows/amd64', false],
  ];
  for (const [want, have, expected] of cases) {
    assert.equal(platformMatches(parsePlatform(want), parsePlatform(have)), expected, `${want} vs ${have}`);
  }
});

test('compatiblePlatforms orders fallbacks like containerd platforms.Only', () => {
  const order = (s: string, strict = false) => compatiblePlatforms(parsePlatform(s), { strict }).map(formatPlatform);
  assert.deepEqual(order('linux/arm/v7'), ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  assert.deepEqual(order('linux/arm/v5'), ['linux/arm/v5']);
  assert.deepEqual(order('linux/arm64'), ['linux/arm64/v8', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  assert.deepEqual(order('linux/amd64'), ['linux/amd64', 'linux/386']);
  assert.deepEqual(order('linux/amd64/v3'), ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386']);
  assert.deepEqual(order('linux/amd64', true), ['linux/amd64']);
  assert.deepEqual(order('linux/s390x'), ['linux/s390x']);
});

function entry(platform: Platform | undefined, n: number): Descriptor {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: 'sha256:' + n.toString(16).padStart(64, '0'),
    size: 100 + n,
    ...(platform ? { platform } : {}),
  };
}
function index(...platforms: Array<string | undefined>): ImageIndex {
  return {
    schemaVersion: 2,
    manifests: platforms.map((p, i) => {
      if (p === undefined) return entry(undefined, i);
      if (p === 'unknown/unknown') return entry({ os: 'unknown', architecture: 'unknown' }, i);
      const [os, architecture, variant] = p.split('/');
      return entry({ os: os!, architecture: architecture!, ...(variant ? { variant } : {}) }, i);
    }),
  };
}

test('selectManifest picks the best entry, falling back through variants in order', () => {
  // want, index entries, chosen entry position (or an error fragment)
  const cases: Array<[string, Array<string | undefined>, number | string]> = [
    ['linux/amd64', ['linux/amd64', 'linux/arm64/v8'], 0],
    ['linux/arm64', ['linux/amd64', 'linux/arm64/v8'], 1],
    ['linux/arm64/v8', ['linux/amd64', 'linux/arm64'], 1],
    ['linux/aarch64', ['linux/arm64/v8'], 0],
    ['linux/arm/v7', ['linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7'], 2],
    ['linux/arm/v7', ['linux/arm/v5', 'linux/arm/v6'], 1],
    ['linux/arm/v7', ['linux/arm/v5'], 0],
    ['linux/arm', ['linux/arm/v6', 'linux/arm'], 1],
    ['linux/arm64', ['linux/arm/v7', 'linux/arm/v6'], 0],
    ['linux/amd64', ['linux/386'], 0],
    ['linux/amd64', ['unknown/unknown', 'linux/amd64'], 1],
    ['linux/amd64', [undefined, 'linux/amd64'], 1],
    ['linux/amd64', ['linux/amd64', 'linux/amd64'], 0],
    ['linux/arm/v6', ['linux/arm/v7', 'linux/amd64'], 'matches platform linux/arm/v6; available: linux/arm/v7, linux/amd64'],
    ['linux/s390x', ['linux/amd64', 'linux/arm64/v8', 'unknown/unknown'], 'available: linux/amd64, linux/arm64/v8'],
    ['windows/amd64', ['linux/amd64'], 'available: linux/amd64'],
    ['linux/amd64', [], 'available: (none)'],
  ];
  for (const [want, entries, expected] of cases) {
    const idx = index(...entries);
    if (typeof expected === 'number') {
      assert.equal(selectManifest(idx, parsePlatform(want)), idx.manifests[expected], `${want} in ${entries.join(',')}`);
    } else {
      assert.throws(
        () => selectManifest(idx, parsePlatform(want), { ref: 'example/ref' }),
        (err: Error & { userFacing?: boolean }) => err.userFacing === true && err.message.includes(expected) && err.message.includes('example/ref'),
        `${want} in ${entries.join(',')}`,
      );
    }
  }
  assert.throws(() => selectManifest(index('linux/386'), parsePlatform('linux/amd64'), { strict: true }), /available: linux\/386/);
});

test('an OS version in the specifier, as containerd writes it: windows(10.0.20348)/amd64', () => {
  assert.deepEqual(parsePlatform('windows(10.0.20348)/amd64'), { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348' });
  assert.deepEqual(normalizePlatform(parsePlatform('windows(10.0.17763.1234)/amd64')), { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1234' });
  assert.deepEqual(parsePlatform('linux()/arm64'), parsePlatform('linux/arm64'));
  assert.throws(() => parsePlatform('windows(10.0/amd64'), /invalid platform/);
});
