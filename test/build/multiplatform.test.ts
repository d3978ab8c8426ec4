// Multi-platform builds: foreign RUN steps under QEMU (binfmt_misc, registered by kiln as root), one
// image per platform in an index, the cross-compilation pattern solved once, push of the index, and
// `kiln run --platform`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { kilnBuild, kilnBuildAsync } from '../helpers/build.js';
import { startProxy } from '../oci/proxy.js';

const suite = buildSuite();

test('kiln setup binfmt registers the arm64 emulator (or finds it registered)', () => {
  const r = kiln(suite.root, ['setup', 'binfmt', '--platforms', 'linux/arm64']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^linux\/arm64: (registered qemu-aarch64|already runnable) \(.*qemu.*aarch64.*, flags F\)$/m);
  assert.match(readFileSync('/proc/sys/fs/binfmt_misc/qemu-aarch64', 'utf8'), /^enabled\n[\s\S]*flags: \w*F/);
});

test('a two-platform build runs each RUN on its platform and exports an index of both', () => {
  const dest = join(suite.outs, 'mp');
  const archive = join(suite.outs, 'mp.tar');
  const files = { Dockerfile: `FROM ${suite.base}\nARG TARGETPLATFORM\nRUN uname -m > /arch && echo "$TARGETPLATFORM" > /platform\n` };
  const local = kilnBuild(suite.root, files, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=local,dest=${dest}`]);
  assert.equal(local.status, 0, local.stderr);
  assert.equal(readFileSync(join(dest, 'linux_amd64/arch'), 'utf8'), 'x86_64\n');
  assert.equal(readFileSync(join(dest, 'linux_arm64/arch'), 'utf8'), 'aarch64\n');
  assert.equal(readFileSync(join(dest, 'linux_arm64/platform'), 'utf8'), 'linux/arm64\n');
  const oci = kilnBuild(suite.root, files, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=oci,dest=${archive}`]);
  assert.equal(oci.status, 0, oci.stderr);
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}`], { encoding: 'utf8' }));
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(index.manifests.map((m: any) => `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? '/' + m.platform.variant : ''}`), ['linux/amd64', 'linux/arm64/v8']);
});

test('FROM --platform=$BUILDPLATFORM stages run once, natively, for every target platform; the index pushes and runs', () => {
  const name = `${suite.reg.host}/kiln/multi:1`;
  const r = kilnBuild(
    suite.root,
    {
      Dockerfile: [
        `FROM --platform=$BUILDPLATFORM ${suite.base} AS build`,
        'RUN echo "compiled on $(uname -m)" > /artifact && echo cross-compile-step-ran',
        `FROM ${suite.base}`,
        'COPY --from=build /artifact /artifact',
        'RUN echo "runs on $(uname -m)" >> /artifact',
      ].join('\n'),
    },
    ['--platform', 'linux/amd64,linux/arm64', '-t', name, '--push'],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal((r.stderr.match(/^#\d+ \d+\.\d+ cross-compile-step-ran$/gm) ?? []).length, 1, 'the build stage ran once');
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`], { encoding: 'utf8' }));
  assert.equal(raw.manifests.length, 2);
  const tools = kiln(suite.root, ['imagetools', 'inspect', name]);
  assert.equal(tools.status, 0, tools.stderr);
  assert.match(tools.stdout, /^MediaType: application\/vnd\.oci\.image\.index\.v1\+json$/m);
  assert.deepEqual(tools.stdout.match(/^ {2}Platform: {2}(.*)$/gm)?.map((l) => l.trim()), ['Platform:  linux/amd64', 'Platform:  linux/arm64/v8']);
  assert.deepEqual(JSON.parse(kiln(suite.root, ['imagetools', 'inspect', '--raw', name]).stdout), raw);
  const arm = kiln(suite.root, ['run', '--rm', '--platform', 'linux/arm64', name, 'cat', '/artifact']);
  assert.equal(arm.status, 0, arm.stderr);
  assert.equal(arm.stdout, 'compiled on x86_64\nruns on aarch64\n');
  const amd = kiln(suite.root, ['run', '--rm', name, 'cat', '/artifact']);
  assert.equal(amd.stdout, 'compiled on x86_64\nruns on x86_64\n');
});

test('oci-mediatypes=false pushes a Docker manifest list with Docker manifests; another client pulls both platforms', () => {
  const name = `${suite.reg.host}/kiln/multi-docker:1`;
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN uname -m > /arch\n` }, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=registry,name=${name},oci-mediatypes=false`]);
  assert.equal(r.status, 0, r.stderr);
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`], { encoding: 'utf8' }));
  assert.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  assert.deepEqual(raw.manifests.map((m: any) => [m.mediaType, m.platform.architecture]), [
    ['application/vnd.docker.distribution.manifest.v2+json', 'amd64'],
    ['application/vnd.docker.distribution.manifest.v2+json', 'arm64'],
  ]);
  const arm = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${name}`], { encoding: 'utf8' }));
  assert.equal(arm.Architecture, 'arm64');
  const config = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${suite.reg.host}/kiln/multi-docker@${raw.manifests[1].digest}`], { encoding: 'utf8' }));
  assert.equal(config.config.mediaType, 'application/vnd.docker.container.image.v1+json');
  assert.ok(config.layers.every((l: any) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
});

test('a registry that refuses OCI manifests gets a Docker manifest list instead, with a warning', async () => {
  // In front of the test registry: manifest PUTs with an OCI media type are refused (415), as by older registries.
  const front = await startProxy(suite.reg.url, (req, res, forward) => {
    if (req.method === 'PUT' && /\/manifests\//.test(req.url ?? '') && String(req.headers['content-type']).startsWith('application/vnd.oci.')) {
      req.resume();
      res.writeHead(415, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: 'unsupported media type' }] }));
      return;
    }
    forward({ keepHost: true });
  });
  try {
    const name = `${front.host}/kiln/legacy:1`;
    const r = await kilnBuildAsync(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN uname -m > /arch\n` }, ['--platform', 'linux/amd64,linux/arm64', '-t', name, '--push']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^WARNING: .*415.*; pushing Docker media types instead/m);
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${suite.reg.host}/kiln/legacy:1`], { encoding: 'utf8' }));
    assert.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(raw.manifests.length, 2);
  } finally {
    await front.stop();
  }
});
