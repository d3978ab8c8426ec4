// kiln sign / kiln verify / kiln build --sign: cosign-format signatures in a real registry, checked by kiln
// and, independently, by openssl (ECDSA P-256 / SHA-256 over the simple-signing payload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { kilnBuild, errorLine } from '../helpers/build.js';

const suite = buildSuite();

function skopeoRaw(ref: string): any {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' }));
}

test('build --sign: the signature verifies with kiln and openssl, and no longer after the tag moves to another image', () => {
  const keys = mkdtempSync(join(tmpdir(), 'kiln-keys-'));
  const env = { COSIGN_PASSWORD: 'correct horse' };
  const gen = kiln(suite.root, ['sign', '--generate-key', join(keys, 'cosign')], { env });
  assert.equal(gen.status, 0, gen.stderr);
  assert.match(readFileSync(join(keys, 'cosign.key'), 'utf8'), /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
  const pub = join(keys, 'cosign.pub');

  const repo = `${suite.reg.host}/kiln/signed`;
  const name = `${repo}:v1`;
  const a = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN echo first > /which\n` }, ['-t', name, '--push', '--sign', '--key', join(keys, 'cosign.key')], { env });
  assert.equal(a.status, 0, a.stderr);
  const digestA = a.digest!;
  const sigTag = `${repo}:${digestA.replace(':', '-')}.sig`;
  assert.match(a.stderr, new RegExp(`signed ${digestA}: ${sigTag.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));

  // The signature manifest as cosign lays it out.
  const sigManifest = skopeoRaw(sigTag);
  assert.equal(sigManifest.layers.length, 1);
  const layer = sigManifest.layers[0];
  assert.equal(layer.mediaType, 'application/vnd.dev.cosign.simplesigning.v1+json');
  const signature = layer.annotations['dev.cosignproject.cosign/signature'];
  assert.ok(signature);
  const payloadPath = join(keys, 'payload.json');
  execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${sigTag}`, `dir:${join(keys, 'sigdir')}`], { stdio: 'ignore' });
  const payload = readFileSync(join(keys, 'sigdir', layer.digest.replace('sha256:', '')));
  writeFileSync(payloadPath, payload);
  const doc = JSON.parse(payload.toString());
  assert.deepEqual(doc, {
    critical: { identity: { 'docker-reference': repo }, image: { 'docker-manifest-digest': digestA }, type: 'cosign container image signature' },
    optional: null,
  });
  // openssl, knowing nothing of kiln, accepts the signature with the public key.
  writeFileSync(join(keys, 'sig.der'), Buffer.from(signature, 'base64'));
  const ossl = execFileSync('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', join(keys, 'sig.der'), payloadPath], { encoding: 'utf8' });
  assert.equal(ossl.trim(), 'Verified OK');

  const ok = kiln(suite.root, ['verify', '--key', pub, name]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout)[0].critical.image['docker-manifest-digest'], digestA);
  assert.match(ok.stderr, /signatures were verified against the specified public key/);

  // The tag moves to another image: its verification fails; the first image, by digest, still verifies.
  const b = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN echo second > /which\n` }, ['-t', name, '--push']);
  assert.equal(b.status, 0, b.stderr);
  assert.notEqual(b.digest, digestA);
  const moved = kiln(suite.root, ['verify', '--key', pub, name]);
  assert.equal(moved.status, 1);
  assert.equal(errorLine(moved), `kiln: ${name}: no signatures found for ${b.digest} (no ${repo}:${b.digest!.replace(':', '-')}.sig)`);
  assert.equal(kiln(suite.root, ['verify', '--key', pub, `${repo}@${digestA}`]).status, 0);

  // Signed by someone else's key (an openssl PKCS#8 key): the signature exists, but not by our key.
  const other = join(keys, 'other.pem');
  execFileSync('sh', ['-c', `openssl ecparam -genkey -name prime256v1 | openssl pkcs8 -topk8 -nocrypt -out ${other} && openssl pkey -in ${other} -pubout -out ${other}.pub`]);
  const signed = kiln(suite.root, ['sign', '--key', other, name]);
  assert.equal(signed.status, 0, signed.stderr);
  assert.equal(signed.stdout.trim(), b.digest);
  const foreign = kiln(suite.root, ['verify', '--key', pub, name]);
  assert.equal(foreign.status, 1);
  assert.equal(errorLine(foreign), `kiln: ${name}: no matching signatures for ${b.digest} (1 signed by another key or corrupt)`);
  assert.equal(kiln(suite.root, ['verify', '--key', `${other}.pub`, name]).status, 0);
  // Signing again with the same key adds nothing; with the cosign key, a second signature is appended.
  assert.match(kiln(suite.root, ['sign', '--key', other, name]).stderr, /Already signed with this key/);
  assert.equal(kiln(suite.root, ['sign', '--key', join(keys, 'cosign.key'), name], { env }).status, 0);
  assert.equal(skopeoRaw(`${repo}:${b.digest!.replace(':', '-')}.sig`).layers.length, 2);
  assert.equal(kiln(suite.root, ['verify', '--key', pub, name]).status, 0);
});

test('sign errors: wrong password, missing key, --sign without --push', () => {
  const keys = mkdtempSync(join(tmpdir(), 'kiln-keys-'));
  assert.equal(kiln(suite.root, ['sign', '--generate-key', join(keys, 'k')], { env: { COSIGN_PASSWORD: 'right' } }).status, 0);
  const wrong = kiln(suite.root, ['sign', '--key', join(keys, 'k.key'), `${suite.base}`], { env: { COSIGN_PASSWORD: 'wrong' } });
  assert.equal(wrong.status, 1);
  assert.equal(errorLine(wrong), `kiln: ${join(keys, 'k.key')}: cannot decrypt the key: wrong password (COSIGN_PASSWORD)?`);
  const noPw = kiln(suite.root, ['sign', '--key', join(keys, 'k.key'), `${suite.base}`], { env: { COSIGN_PASSWORD: undefined } });
  assert.equal(errorLine(noPw), `kiln: ${join(keys, 'k.key')} is encrypted: set COSIGN_PASSWORD (may be empty) to its password`);
  const noKey = kiln(suite.root, ['sign', suite.base]);
  assert.equal(errorLine(noKey), 'kiln: kiln sign: --key FILE is required');
  const local = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--sign', '--key', join(keys, 'k.key')]);
  assert.equal(local.status, 1);
  assert.equal(errorLine(local), 'kiln: kiln build: --sign signs the pushed image: add --push and -t REGISTRY/REPO:TAG');
});
