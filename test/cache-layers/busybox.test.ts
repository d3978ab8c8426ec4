// The real busybox fixture layer unpacks to exactly the rootfs it was made from, with the diffID its
// image config declares.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { unpackLayer } from '../../cache/layers/unpack.js';
import { busyboxAmd64Layer, describeTree, tempDir } from './tree.js';

test('the busybox gzip layer unpacks with the config diffID and matches rootfs.amd64', async () => {
  const layer = busyboxAmd64Layer();
  const work = tempDir();
  try {
    const dst = join(work, 'snapshot');
    const r = await unpackLayer(createReadStream(layer.blob), dst, { mediaType: layer.mediaType, expectedDiffId: layer.diffId });
    assert.equal(r.diffId, layer.diffId);
    const got = await describeTree(dst, { mtimes: false });
    const want = await describeTree(layer.rootfs, { mtimes: false });
    assert.ok(Object.keys(got).length > 100, 'busybox has its applet symlinks');
    assert.deepEqual(got, want);
    // The fixture tar was made with --mtime=@0.
    const st = (await describeTree(dst))['bin/busybox']!;
    assert.equal(st.mtimeNs, '0');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
