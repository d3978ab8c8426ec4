// --platform wasi/wasm: FROM scratch images that COPY a WebAssembly module, read back with skopeo; a RUN
// for wasm is refused before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

// A valid module: one type () -> (), one function exported as _start, whose body is `end`.
const MODULE = Buffer.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
  0x03, 0x02, 0x01, 0x00,
  0x07, 0x0a, 0x01, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00,
  0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
]);

function skopeo(args: string[]): any {
  return JSON.parse(execFileSync('skopeo', [...args], { encoding: 'utf8' }));
}

test('wasi/wasm image: an index with a variant-free wasi/wasm entry, config with the module as entrypoint, the module in the layer', () => {
  assert.ok(WebAssembly.validate(MODULE), 'the fixture is a valid module');
  const name = `${suite.reg.host}/kiln/wasm-hello:v1`;
  const context = writeContext({ Dockerfile: 'FROM scratch\nCOPY hello.wasm /hello.wasm\nENTRYPOINT ["/hello.wasm"]\n' });
  writeFileSync(join(context, 'hello.wasm'), MODULE);
  const r = kilnBuild(suite.root, {}, ['--platform', 'wasi/wasm', '-t', name, '--push'], { context });
  assert.equal(r.status, 0, r.stderr);

  const index = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${name}`]);
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.deepEqual(index.manifests[0].platform, { architecture: 'wasm', os: 'wasi' });

  // skopeo picks the wasi/wasm entry when asked for that platform.
  const config = skopeo(['inspect', '--config', '--tls-verify=false', '--override-os', 'wasi', '--override-arch', 'wasm', `docker://${name}`]);
  assert.equal(config.os, 'wasi');
  assert.equal(config.architecture, 'wasm');
  assert.equal(config.variant, undefined);
  assert.deepEqual(config.config.Entrypoint, ['/hello.wasm']);
  assert.equal(config.rootfs.diff_ids.length, 1);
  const manifest = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${name.replace(/:v1$/, '')}@${index.manifests[0].digest}`]);
  assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  assert.deepEqual(manifest.layers.map((l: any) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip']);

  // The layer holds exactly the module.
  const out = mkdtempSync(join(tmpdir(), 'kiln-wasm-'));
  const local = kilnBuild(suite.root, {}, ['--platform', 'wasi/wasm', '-o', `type=local,dest=${out}`], { context });
  assert.equal(local.status, 0, local.stderr);
  assert.deepEqual(readFileSync(join(out, 'hello.wasm')), MODULE);

  // --platform wasi is short for wasi/wasm; the image is the same.
  const full = kilnBuild(suite.root, {}, ['--platform', 'wasi/wasm'], { context });
  const short = kilnBuild(suite.root, {}, ['--platform', 'wasi'], { context });
  assert.equal(short.status, 0, short.stderr);
  assert.equal(short.digest, full.digest);
  const shown = kiln(suite.root, ['imagetools', 'inspect', name]);
  assert.match(shown.stdout, /Platform: {2}wasi\/wasm$/m);
});

test('wasi/wasm: the module made in a linux stage on the build platform, COPY --from into scratch', () => {
  const hex = [...MODULE].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  const dockerfile = [
    `FROM --platform=$BUILDPLATFORM ${suite.base} AS build`,
    'ARG TARGETPLATFORM',
    `RUN printf '${hex}' > /app.wasm && echo "$TARGETPLATFORM" > /target`,
    'FROM scratch',
    'COPY --from=build /app.wasm /target /',
    'ENTRYPOINT ["/app.wasm"]',
    '',
  ].join('\n');
  const out = mkdtempSync(join(tmpdir(), 'kiln-wasm-'));
  const r = kilnBuild(suite.root, { Dockerfile: dockerfile }, ['--platform', 'wasi/wasm', '-o', `type=oci,dest=${join(out, 'img.tar')}`]);
  assert.equal(r.status, 0, r.stderr);
  const raw = skopeo(['inspect', '--raw', `oci-archive:${join(out, 'img.tar')}`]);
  assert.deepEqual(raw.manifests[0].platform, { architecture: 'wasm', os: 'wasi' });
  const local = kilnBuild(suite.root, { Dockerfile: dockerfile }, ['--platform', 'wasi/wasm', '-o', `type=local,dest=${join(out, 'fs')}`]);
  assert.equal(local.status, 0, local.stderr);
  assert.deepEqual(readFileSync(join(out, 'fs', 'app.wasm')), MODULE);
  assert.equal(readFileSync(join(out, 'fs', 'target'), 'utf8'), 'wasi/wasm\n');
});

test('wasi/wasm: RUN is refused before anything runs, naming its line; a variant is refused', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base} AS tools\nRUN echo should-not-run-${Date.now()}\nFROM scratch\nCOPY x.wasm /x.wasm\nRUN ["/x.wasm"]\n`, 'x.wasm': 'not really' }, ['--platform', 'wasi/wasm']);
  assert.equal(r.status, 1);
  assert.equal(
    errorLine(r),
    'kiln: Dockerfile:5: RUN cannot run for wasi/wasm: kiln runs RUN steps in Linux containers and has no WebAssembly runtime; build the module in a stage FROM --platform=$BUILDPLATFORM and COPY it into the wasi/wasm image',
  );
  assert.doesNotMatch(r.stderr, /COPY x\.wasm/, 'nothing ran');
  const v = kilnBuild(suite.root, { Dockerfile: 'FROM scratch\n' }, ['--platform', 'wasi/wasm/v1']);
  assert.equal(v.status, 1);
  assert.match(errorLine(v), /wasm has no variants \(use wasi\/wasm\)/);
});
