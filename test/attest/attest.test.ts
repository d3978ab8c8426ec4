// --sbom / --provenance: in-toto attestations attached to the pushed index as BuildKit does, read back with
// skopeo (layout) and kiln imagetools inspect --format (content).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnBin } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

const DPKG_STATUS = `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs.

Package: old-tool
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Description: removed, only its config files remain

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data
`;

const APK_INSTALLED = `C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
T:the musl c library

C:Q1def=
P:zlib
V:1.3.1-r0
A:x86_64
L:Zlib
`;

const PACKAGE_LOCK = JSON.stringify({
  name: 'app',
  version: '1.0.0',
  lockfileVersion: 3,
  packages: {
    '': { name: 'app', version: '1.0.0' },
    'node_modules/left-pad': { version: '1.3.0', license: 'WTFPL' },
    'node_modules/@scope/thing': { version: '2.0.1', license: 'MIT' },
  },
});

const files = {
  'status': DPKG_STATUS,
  'installed': APK_INSTALLED,
  'app/package-lock.json': PACKAGE_LOCK,
  'app/node_modules/express/package.json': JSON.stringify({ name: 'express', version: '4.19.2', license: 'MIT' }),
  'site/requests-2.31.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n\nPython HTTP for Humans.\n',
};

function dockerfile(base: string): string {
  return [
    `FROM ${base}`,
    'COPY status /var/lib/dpkg/status',
    'COPY installed /lib/apk/db/installed',
    'COPY app/ /app/',
    'COPY site/ /usr/lib/python3/dist-packages/',
    'ARG FLAVOUR=plain',
    'RUN echo "$FLAVOUR" > /flavour',
    '',
  ].join('\n');
}

function skopeoRaw(ref: string): any {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' }));
}

/** The digest of the busybox manifest for this machine's platform (what FROM resolved to). */
function baseManifestDigest(): string {
  const index = skopeoRaw(suite.base);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return index.manifests.find((m: any) => m.platform?.architecture === arch).digest;
}

test('--sbom --provenance=mode=max: attestation manifest in the pushed index, SBOM lists the planted packages, provenance the args and base', () => {
  const name = `${suite.reg.host}/kiln/attested:v1`;
  const context = writeContext({ ...files, Dockerfile: dockerfile(suite.base) });
  const r = kilnBuild(suite.root, {}, ['-t', name, '--push', '--sbom', '--provenance=mode=max', '--build-arg', 'FLAVOUR=spicy'], { context });
  assert.equal(r.status, 0, r.stderr);

  // Layout: an index with the image and its attestation manifest (unknown/unknown, pointing at the image).
  const index = skopeoRaw(name);
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(index.manifests.length, 2);
  const [image, att] = index.manifests;
  assert.notEqual(image.platform.os, 'unknown');
  assert.deepEqual(att.platform, { architecture: 'unknown', os: 'unknown' });
  assert.deepEqual(att.annotations, { 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
  const attManifest = skopeoRaw(`${name.replace(/:v1$/, '')}@${att.digest}`);
  assert.deepEqual(
    attManifest.layers.map((l: any) => [l.mediaType, l.annotations['in-toto.io/predicate-type']]),
    [
      ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
      ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v0.2'],
    ],
  );
  // The image itself still runs from the registry's index.
  assert.equal(kiln(suite.root, ['run', '--rm', name, 'cat', '/flavour']).stdout, 'spicy\n');

  // SBOM: every planted package, with purls; the deinstalled dpkg entry is left out.
  const sbomOut = kiln(suite.root, ['imagetools', 'inspect', name, '--format', '{{json .SBOM}}']);
  assert.equal(sbomOut.status, 0, sbomOut.stderr);
  const doc = JSON.parse(sbomOut.stdout).SPDX;
  assert.equal(doc.spdxVersion, 'SPDX-2.3');
  const purls = doc.packages.map((p: any) => p.externalRefs[0].referenceLocator).sort();
  assert.deepEqual(purls, [
    'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64',
    'pkg:apk/alpine/zlib@1.3.1-r0?arch=x86_64',
    'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64',
    'pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all',
    'pkg:npm/%40scope/thing@2.0.1',
    'pkg:npm/express@4.19.2',
    'pkg:npm/left-pad@1.3.0',
    'pkg:pypi/requests@2.31.0',
  ]);
  const requests = doc.packages.find((p: any) => p.name === 'requests');
  assert.equal(requests.licenseDeclared, 'Apache-2.0');
  assert.match(requests.sourceInfo, /\/usr\/lib\/python3\/dist-packages\/requests-2\.31\.0\.dist-info\/METADATA$/);

  // Provenance: build args, the base image pinned by digest, the context and graph digests, the graph (max).
  const provOut = kiln(suite.root, ['imagetools', 'inspect', name, '--format', '{{json .Provenance}}']);
  assert.equal(provOut.status, 0, provOut.stderr);
  const prov = JSON.parse(provOut.stdout).SLSA;
  assert.equal(prov.invocation.parameters.args['build-arg:FLAVOUR'], 'spicy');
  const baseDigest = baseManifestDigest();
  const material = prov.materials.find((m: any) => m.uri.startsWith(`pkg:docker/${suite.base.replace(/:latest$/, '')}@latest`));
  assert.ok(material, JSON.stringify(prov.materials));
  assert.equal(`sha256:${material.digest.sha256}`, baseDigest);
  const meta = prov.metadata['https://kiln.dev/build@v1#metadata'];
  assert.match(meta.contextDigest, /^sha256:[0-9a-f]{64}$/);
  assert.match(meta.graphDigest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(meta.dockerfileDigest, `sha256:${createHash('sha256').update(dockerfile(suite.base)).digest('hex')}`);
  assert.ok(prov.buildConfig.graph.some((v: any) => v.id === meta.graphDigest), 'the graph digest is a vertex of the recorded graph');
  assert.ok(prov.buildConfig.graph.some((v: any) => v.op.kind === 'exec'), 'the RUN is in the recorded graph');

});

test('--provenance=mode=min leaves out the graph; a changed context file changes the context digest; no flag, no attestation', () => {
  const name = `${suite.reg.host}/kiln/prov-min:v1`;
  const run = (extra: Record<string, string>, args: string[]) => {
    const r = kilnBuild(suite.root, { ...files, ...extra, Dockerfile: dockerfile(suite.base) }, ['-t', name, '--push', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r;
  };
  run({}, ['--provenance=mode=min']);
  const first = JSON.parse(kiln(suite.root, ['imagetools', 'inspect', name, '--format', '{{json .Provenance}}']).stdout).SLSA;
  assert.equal(first.buildConfig, undefined);
  assert.equal(first.invocation.parameters.args['build-arg:FLAVOUR'], undefined, 'no build args were given');
  run({ 'extra.txt': 'changed' }, ['--provenance=mode=min', '--build-arg', 'FLAVOUR=mild']);
  const second = JSON.parse(kiln(suite.root, ['imagetools', 'inspect', name, '--format', '{{json .Provenance}}']).stdout).SLSA;
  assert.equal(second.invocation.parameters.args['build-arg:FLAVOUR'], 'mild');
  const key = 'https://kiln.dev/build@v1#metadata';
  assert.notEqual(second.metadata[key].contextDigest, first.metadata[key].contextDigest);
  assert.notEqual(second.metadata[key].graphDigest, first.metadata[key].graphDigest);

  run({}, []);
  const plain = skopeoRaw(name);
  assert.equal(plain.mediaType, 'application/vnd.oci.image.manifest.v1+json', 'one platform without attestations is a plain manifest');
  assert.equal(kiln(suite.root, ['imagetools', 'inspect', name, '--format', '{{json .SBOM}}']).stdout.trim(), 'null');
});

test('bad --provenance and --format values are one-line errors', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n` }, ['--provenance=mode=everything']);
  assert.equal(r.status, 1);
  assert.equal(errorLine(r), 'kiln: invalid value "mode=everything" for flag --provenance: expected mode=min, mode=max, true or false');
  const f = kiln(suite.root, ['imagetools', 'inspect', suite.base, '--format', '{{json .Nope}}']);
  assert.equal(f.status, 1);
  assert.match(errorLine(f), /unknown field \.Nope/);
});

test('two platforms with --sbom: one attestation manifest per image; OCI archive and local store keep them; the SBOM view is per platform', () => {
  const name = `${suite.reg.host}/kiln/attested-multi:v1`;
  const context = writeContext({ 'status': DPKG_STATUS, Dockerfile: `FROM ${suite.base}\nCOPY status /var/lib/dpkg/status\n` });
  const r = kilnBuild(suite.root, {}, ['-t', name, '--push', '--sbom', '--platform', 'linux/amd64,linux/arm64'], { context });
  assert.equal(r.status, 0, r.stderr);
  const index = skopeoRaw(name);
  assert.equal(index.manifests.length, 4);
  const images = index.manifests.slice(0, 2);
  const atts = index.manifests.slice(2);
  assert.deepEqual(images.map((m: any) => `${m.platform.os}/${m.platform.architecture}`), ['linux/amd64', 'linux/arm64']);
  assert.deepEqual(atts.map((m: any) => m.annotations['vnd.docker.reference.digest']), images.map((m: any) => m.digest));
  const view = JSON.parse(kiln(suite.root, ['imagetools', 'inspect', name, '--format', '{{json .SBOM}}']).stdout);
  assert.deepEqual(Object.keys(view).sort(), ['linux/amd64', 'linux/arm64/v8']);
  // Each platform's SBOM has the arch of its own dpkg db (both planted the same file here) and names its image.
  for (const p of ['linux/amd64', 'linux/arm64/v8']) {
    assert.deepEqual(view[p].SPDX.packages.map((x: any) => x.name).sort(), ['libc6', 'tzdata']);
    assert.ok(view[p].SPDX.name.endsWith(`(${p})`), view[p].SPDX.name);
  }

  // OCI archive: the attestation blobs are in it and skopeo reads the image for a platform.
  const tar = join(suite.outs, 'attested.tar');
  const oci = kilnBuild(suite.root, {}, ['--sbom', '-o', `type=oci,dest=${tar}`], { context });
  assert.equal(oci.status, 0, oci.stderr);
  const ociIndex = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${tar}`], { encoding: 'utf8' }));
  assert.equal(ociIndex.manifests[1].annotations['vnd.docker.reference.type'], 'attestation-manifest');
  const ociConfig = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci-archive:${tar}`], { encoding: 'utf8' }));
  assert.equal(ociConfig.os, 'linux', 'skopeo picks the image, not the unknown/unknown attestation');
  assert.equal(ociConfig.rootfs.diff_ids.length, 2);

  // The local store: the image (an index with its attestation) still runs.
  const stored = kilnBuild(suite.root, {}, ['--sbom', '-t', 'attested-local:1'], { context });
  assert.equal(stored.status, 0, stored.stderr);
  const run = kiln(suite.root, ['run', '--rm', 'attested-local:1', 'head', '-1', '/var/lib/dpkg/status']);
  assert.equal(run.stdout, 'Package: libc6\n', run.stderr);
});

test('--sbom reads the final filesystem: packages removed by a later step are not listed', () => {
  const tar = join(suite.outs, 'removed.tar');
  const context = writeContext({
    'app/node_modules/keep/package.json': JSON.stringify({ name: 'keep', version: '1.0.0' }),
    'app/node_modules/gone/package.json': JSON.stringify({ name: 'gone', version: '2.0.0' }),
    'site/old-1.0.dist-info/METADATA': 'Name: old\nVersion: 1.0\n\n',
    Dockerfile: [
      `FROM ${suite.base}`,
      'COPY app/ /app/',
      'COPY site/ /usr/lib/python3/dist-packages/',
      // a whiteout for one package; an opaque directory (removed and made again) for the other tree
      'RUN rm -rf /app/node_modules/gone && rm -rf /usr/lib/python3/dist-packages && mkdir -p /usr/lib/python3/dist-packages/new-2.0.dist-info && printf "Name: new\\nVersion: 2.0\\n\\n" > /usr/lib/python3/dist-packages/new-2.0.dist-info/METADATA',
      '',
    ].join('\n'),
  });
  const r = kilnBuild(suite.root, {}, ['--sbom', '-o', `type=oci,dest=${tar}`], { context });
  assert.equal(r.status, 0, r.stderr);
  const dir = join(suite.outs, 'removed');
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', tar, '-C', dir]);
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${tar}`], { encoding: 'utf8' }));
  const attManifest = JSON.parse(readFileSync(join(dir, 'blobs/sha256', index.manifests[1].digest.slice(7)), 'utf8'));
  const statement = JSON.parse(readFileSync(join(dir, 'blobs/sha256', attManifest.layers[0].digest.slice(7)), 'utf8'));
  assert.equal(statement._type, 'https://in-toto.io/Statement/v0.1');
  assert.equal(statement.subject[0].digest.sha256, index.manifests[0].digest.slice(7));
  assert.deepEqual(statement.predicate.packages.map((p: any) => `${p.name}@${p.versionInfo}`).sort(), ['keep@1.0.0', 'new@2.0']);
});

test('kiln bake --attest type=sbom --provenance: each target gets its own attestations (its args, its packages)', () => {
  const reg = suite.reg.host;
  const dir = writeContext({
    'status': DPKG_STATUS,
    'installed': APK_INSTALLED,
    'Dockerfile': `FROM ${suite.base} AS base\nARG FLAVOUR\nFROM base AS deb\nCOPY status /var/lib/dpkg/status\nFROM base AS apk\nCOPY installed /lib/apk/db/installed\n`,
    'kiln-bake.json': JSON.stringify({
      group: { default: { targets: ['deb', 'apk'] } },
      target: {
        deb: { context: '.', target: 'deb', args: { FLAVOUR: 'debby' }, tags: [`${reg}/kiln/bake-deb:1`] },
        apk: { context: '.', target: 'apk', args: { FLAVOUR: 'alpy' }, tags: [`${reg}/kiln/bake-apk:1`] },
      },
    }),
  });
  const r = spawnSync(process.execPath, [kilnBin, 'bake', '--push', '--attest', 'type=sbom', '--provenance=mode=min'], { cwd: dir, env: { ...process.env, KILN_ROOT: suite.root }, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const read = (name: string, what: string) => JSON.parse(kiln(suite.root, ['imagetools', 'inspect', `${reg}/kiln/${name}:1`, '--format', `{{json .${what}}}`]).stdout);
  assert.deepEqual(read('bake-deb', 'SBOM').SPDX.packages.map((p: any) => p.name).sort(), ['libc6', 'tzdata']);
  assert.deepEqual(read('bake-apk', 'SBOM').SPDX.packages.map((p: any) => p.name).sort(), ['musl', 'zlib']);
  assert.equal(read('bake-deb', 'Provenance').SLSA.invocation.parameters.args['build-arg:FLAVOUR'], 'debby');
  assert.equal(read('bake-apk', 'Provenance').SLSA.invocation.parameters.args['build-arg:FLAVOUR'], 'alpy');
  assert.equal(read('bake-apk', 'Provenance').SLSA.invocation.parameters.args.target, 'apk');
});

test("--sbom on this machine's real dpkg database lists exactly the packages dpkg-query calls installed", () => {
  const context = writeContext({ Dockerfile: 'FROM scratch\nCOPY status /var/lib/dpkg/status\nCOPY os-release /etc/os-release\n' });
  writeFileSync(join(context, 'status'), readFileSync('/var/lib/dpkg/status'));
  writeFileSync(join(context, 'os-release'), readFileSync('/etc/os-release'));
  const tar = join(suite.outs, 'host-dpkg.tar');
  const r = kilnBuild(suite.root, {}, ['--sbom', '-o', `type=oci,dest=${tar}`], { context });
  assert.equal(r.status, 0, r.stderr);
  const dir = join(suite.outs, 'host-dpkg');
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', tar, '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const root = JSON.parse(readFileSync(join(dir, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const att = JSON.parse(readFileSync(join(dir, 'blobs/sha256', root.manifests[1].digest.slice(7)), 'utf8'));
  const doc = JSON.parse(readFileSync(join(dir, 'blobs/sha256', att.layers[0].digest.slice(7)), 'utf8')).predicate;
  const want = execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /^.i/.test(l))
    .map((l) => l.split(' ').slice(-3).join(' '))
    .sort();
  const distro = /^ID="?([a-z0-9._-]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))![1];
  assert.ok(want.length > 50, 'the machine has a real dpkg database');
  assert.deepEqual(doc.packages.map((p: any) => `${p.name} ${p.versionInfo} ${decodeURIComponent(/arch=([^&]+)/.exec(p.externalRefs[0].referenceLocator)![1]!)}`).sort(), want);
  assert.ok(doc.packages.every((p: any) => p.externalRefs[0].referenceLocator.startsWith(`pkg:deb/${distro}/`)));
});
