import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { State } from '../../cache/state.js';
import { exportToImageStore } from '../../src/export/image-store.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { makeFixture, type Fixture } from './request-fixture.js';

let fx: Fixture;
let root: string;
before(async () => {
  fx = await makeFixture();
  root = tempRoot('kiln-export-store-');
});
after(() => {
  rmSync(fx.work, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

/** The fixture's requests, with their layer blobs copied into the state's content store. */
function intoState(state: State): void {
  for (const img of fx.multi.images) for (const l of img.layers) state.content.putBytes(fx.content.readBytes(l.digest), l.digest);
}

test('built images are recorded under their names and listed by `kiln images`', async () => {
  const state = await State.open({ root });
  let single, multi;
  try {
    intoState(state);
    single = await exportToImageStore({ ...fx.single, names: ['docker.io/library/kiln-export-test:latest', '127.0.0.1:5000/team/app:v1'] }, state);
    multi = await exportToImageStore(fx.multi, state);
    const rec = await state.images.get('127.0.0.1:5000/team/app:v1');
    assert.equal(rec?.digest, single.written.root.digest);
    assert.equal(rec?.mediaType, OCI_MANIFEST);
    assert.deepEqual(rec?.platforms, [
      {
        platform: 'linux/amd64',
        manifestDigest: single.written.manifests[0]!.digest,
        configDigest: single.written.configs[0]!.digest,
        size: single.written.configs[0]!.size + fx.amd64.layers.reduce((n, l) => n + l.size, 0),
      },
    ]);
    // Everything a record names is in the content store.
    for (const r of [...single.records, ...multi.records]) {
      assert.ok(state.content.has(r.digest));
      for (const p of r.platforms) assert.ok(state.content.has(p.manifestDigest) && state.content.has(p.configDigest));
    }
    assert.equal(multi.records[0]!.mediaType, OCI_INDEX);
  } finally {
    await state.close();
  }
  const r = kiln(root, ['images', '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; platform: string; digest: string; id: string });
  assert.deepEqual(
    rows.map((x) => [x.name, x.platform, x.digest]).sort(),
    [
      ['127.0.0.1:5000/team/app:v1', 'linux/amd64', single.written.root.digest],
      ['docker.io/library/kiln-export-test:latest', 'linux/amd64', single.written.root.digest],
      ['docker.io/library/kiln-export-test:multi', 'linux/amd64', multi.written.root.digest],
      ['docker.io/library/kiln-export-test:multi', 'linux/arm64/v8', multi.written.root.digest],
    ],
  );
  const table = kiln(root, ['images']);
  assert.match(table.stdout, /^kiln-export-test\s+multi\s+[0-9a-f]{12}\s+linux\/arm64\/v8/m);
});
