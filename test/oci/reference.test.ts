import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, isValidReference } from '../../base/oci/reference.js';

const D = 'sha256:' + 'a'.repeat(64);

// input → [full form, domain, path, tag, digest, familiarName]
const valid: Array<[string, string, string, string, string | undefined, string | undefined, string]> = [
  ['busybox', 'docker.io/library/busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined, 'busybox'],
  ['library/busybox', 'docker.io/library/busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox'],
  ['index.docker.io/busybox', 'docker.io/library/busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox'],
  ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox'],
  ['user/app', 'docker.io/user/app:latest', 'docker.io', 'user/app', 'latest', undefined, 'user/app'],
  ['docker.io/user/app:v1', 'docker.io/user/app:v1', 'docker.io', 'user/app', 'v1', undefined, 'user/app'],
  ['docker.io/library/a/b', 'docker.io/library/a/b:latest', 'docker.io', 'library/a/b', 'latest', undefined, 'library/a/b'],
  ['localhost/foo', 'localhost/foo:latest', 'localhost', 'foo', 'latest', undefined, 'localhost/foo'],
  ['localhost:5000/a/b:tag@' + D, 'localhost:5000/a/b:tag@' + D, 'localhost:5000', 'a/b', 'tag', D, 'localhost:5000/a/b'],
  ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest', '127.0.0.1:5000', 'x', 'latest', undefined, '127.0.0.1:5000/x'],
  ['[::1]:5000/x:y', '[::1]:5000/x:y', '[::1]:5000', 'x', 'y', undefined, '[::1]:5000/x'],
  ['ghcr.io/owner/repo', 'ghcr.io/owner/repo:latest', 'ghcr.io', 'owner/repo', 'latest', undefined, 'ghcr.io/owner/repo'],
  ['a.b/c/d/e:t_1.x-y', 'a.b/c/d/e:t_1.x-y', 'a.b', 'c/d/e', 't_1.x-y', undefined, 'a.b/c/d/e'],
  ['busybox@' + D, 'docker.io/library/busybox@' + D, 'docker.io', 'library/busybox', undefined, D, 'busybox'],
  ['my-registry.example.com:443/team/app:1.0', 'my-registry.example.com:443/team/app:1.0', 'my-registry.example.com:443', 'team/app', '1.0', undefined, 'my-registry.example.com:443/team/app'],
  // An uppercase first component can only be a registry host.
  ['Foo/bar', 'Foo/bar:latest', 'Foo', 'bar', 'latest', undefined, 'Foo/bar'],
  ['foo__bar', 'docker.io/library/foo__bar:latest', 'docker.io', 'library/foo__bar', 'latest', undefined, 'foo__bar'],
  ['foo--bar.baz_q', 'docker.io/library/foo--bar.baz_q:latest', 'docker.io', 'library/foo--bar.baz_q', 'latest', undefined, 'foo--bar.baz_q'],
  ['registry:5000/x', 'registry:5000/x:latest', 'registry:5000', 'x', 'latest', undefined, 'registry:5000/x'],
  ['Busybox:tag'.toLowerCase(), 'docker.io/library/busybox:tag', 'docker.io', 'library/busybox', 'tag', undefined, 'busybox'],
  ['x:' + 'T'.repeat(128), 'docker.io/library/x:' + 'T'.repeat(128), 'docker.io', 'library/x', 'T'.repeat(128), undefined, 'x'],
];

test('valid references normalise like docker/distribution', () => {
  for (const [input, full, domain, path, tag, digest, familiar] of valid) {
    const r = parseReference(input);
    assert.equal(r.toString(), full, input);
    assert.equal(r.domain, domain, input);
    assert.equal(r.path, path, input);
    assert.equal(r.tag, tag, input);
    assert.equal(r.digest, digest, input);
    assert.equal(r.familiarName(), familiar, input);
  }
});

// input → a fragment the error message must contain
const invalid: Array<[string, string]> = [
  ['', 'at least one component'],
  ['Busybox', 'repository name (library/Busybox) must be lowercase'],
  ['foo/Bar', 'repository name (foo/Bar) must be lowercase'],
  ['localhost:5000/Up', 'repository name (Up) must be lowercase'],
  ['a'.repeat(64).replace(/a/g, 'b'), 'cannot specify 64-byte hexadecimal strings'],
  ['busybox@sha512:' + 'a'.repeat(128), 'unsupported digest algorithm sha512'],
  ['busybox@sha256:abc', 'invalid reference format'],
  ['a:b:c', 'invalid reference format'],
  ['x:' + 't'.repeat(129), 'invalid reference format'],
  ['foo/../bar', 'invalid reference format'],
  ['foo//bar', 'invalid reference format'],
  ['foo-', 'invalid reference format'],
  ['-foo', 'invalid reference format'],
  ['foo___bar', 'invalid reference format'],
  [':tag', 'invalid reference format'],
  ['foo_bar.com:8080/x', 'invalid reference format'],
  ['foo:', 'invalid reference format'],
  ['foo@', 'invalid reference format'],
  ['host:port/x', 'invalid reference format'],
  ['a/' + 'b'.repeat(260), 'must not be more than 255 characters'],
  ['busy box', 'invalid reference format'],
];

test('invalid references are rejected with distribution-style messages', () => {
  for (const [input, fragment] of invalid) {
    assert.throws(
      () => parseReference(input),
      (err: Error & { userFacing?: boolean }) => {
        assert.ok(err.message.includes(fragment), `${JSON.stringify(input)}: ${err.message} should contain ${fragment}`);
        assert.equal(err.userFacing, true);
        assert.ok(!err.message.includes('\n'));
        return true;
      },
      input,
    );
    assert.equal(isValidReference(input), false, input);
  }
});

test('familiarString, manifestReference, defaultTag and pinning', () => {
  assert.equal(parseReference('busybox').familiarString(), 'busybox:latest');
  assert.equal(parseReference('docker.io/user/app:v2').familiarString(), 'user/app:v2');
  assert.equal(parseReference('busybox', { defaultTag: false }).tag, undefined);
  assert.equal(parseReference('busybox', { defaultTag: false }).toString(), 'docker.io/library/busybox');
  const both = parseReference('localhost:5000/a:t@' + D);
  assert.equal(both.manifestReference, D, 'a digest wins over the tag when fetching');
  assert.equal(parseReference('localhost:5000/a:t').manifestReference, 't');
  const pinned = parseReference('127.0.0.1:5000/x:1').pinned(D);
  assert.equal(pinned.toString(), '127.0.0.1:5000/x@' + D);
  assert.equal(parseReference('127.0.0.1:5000/x').withTag('v9').toString(), '127.0.0.1:5000/x:v9');
  assert.throws(() => parseReference('x').withTag('-bad'), /invalid tag/);
  assert.throws(() => parseReference('x').pinned('md5:abc'), /invalid digest|unsupported digest algorithm md5/);
});
