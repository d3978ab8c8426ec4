// What kiln's per-step and multi-platform speed-ups must leave exactly as they were: a warm two-platform
// rebuild needs nothing from the registry (both platforms of the base are recorded locally) and gives the
// same index; 25 consecutive COPY steps give an image whose layers hold exactly the copied files (checked
// here by unpacking and hashing the blobs, not through kiln); a build SIGKILLed in the middle of those
// steps leaves a cache the next build uses, and that build gives the clean build's digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildSuite } from '../helpers/suite.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext } from '../helpers/build.js';
import { pushBusybox, startRegistry } from '../helpers/registry.js';

const suite = buildSuite();
const EPOCH = '1700000000';

/** One entry of a tar: name (ustar prefix joined), type flag and content. */
interface TarEntry {
  name: string;
  type: string;
  data: Buffer;
}

/** A minimal ustar/pax reader, independent of kiln's tar code: names, types and contents. */
function readTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let paxPath: string | undefined;
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, b: number) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = str(156, 157) || '0';
    const prefix = h.subarray(257, 263).toString('latin1').startsWith('ustar') ? str(345, 500) : '';
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      paxPath = m?.[1];
      continue;
    }
    out.push({ name: paxPath ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100)), type, data: Buffer.from(data) });
    paxPath = undefined;
  }
  return out;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (layout: string, digest: string) => readFileSync(join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));

/** The image of an OCI archive kiln wrote: its manifest digest, config and layers (uncompressed). */
function readOciImage(archive: string) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-oci-'));
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const manifestDigest: string = index.manifests[0].digest;
  const manifest = JSON.parse(blob(dir, manifestDigest).toString('utf8'));
  const config = JSON.parse(blob(dir, manifest.config.digest).toString('utf8'));
  const layers = manifest.layers.map((l: { digest: string; mediaType: string }) => {
    const raw = blob(dir, l.digest);
    assert.equal(sha256(raw), l.digest, 'a blob hashes to its descriptor');
    return l.mediaType.endsWith('gzip') ? gunzipSync(raw) : raw;
  });
  rmSync(dir, { recursive: true, force: true });
  return { manifestDigest, config, layers: layers as Buffer[] };
}

function copyContext(bytesPerFile: number): { files: Record<string, string>; dockerfile: string } {
  const files: Record<string, string> = {};
  const lines = [`FROM ${suite.base}`];
  for (let i = 1; i <= 25; i++) {
    const name = `f${String(i).padStart(2, '0')}.txt`;
    const line = `file ${i} of 25\n`;
    files[name] = line.repeat(Math.max(1, Math.floor(bytesPerFile / line.length)));
    lines.push(`COPY ${name} /files/`);
  }
  return { files, dockerfile: `${lines.join('\n')}\n` };
}

/** A context dir with fixed mtimes, so two copies of it give the same image. */
function fixedContext(files: Record<string, string>, dockerfile: string): string {
  const dir = writeContext({ ...files, Dockerfile: dockerfile });
  for (const name of readdirSync(dir)) utimesSync(join(dir, name), 1600000000, 1600000000);
  return dir;
}

test('a warm two-platform rebuild asks the registry nothing: both platforms of the base are recorded locally, the index is the same', async () => {
  const reg = await startRegistry();
  const root = tempRoot();
  const outs = mkdtempSync(join(tmpdir(), 'kiln-mp-'));
  let stopped = false; // (a second stop() of a registry killed by a signal would wait for an exit that came already)
  try {
    const base = pushBusybox(reg, 'library/busybox', 'latest');
    const files = { Dockerfile: `FROM ${base}\nARG TARGETPLATFORM\nRUN uname -m > /arch && echo "$TARGETPLATFORM" > /platform\n` };
    const platforms = ['--platform', 'linux/amd64,linux/arm64'];
    const env = { SOURCE_DATE_EPOCH: EPOCH };
    const cold = kilnBuild(root, files, [...platforms, '-o', `type=oci,dest=${join(outs, 'cold.tar')}`], { env });
    assert.equal(cold.status, 0, cold.stderr);
    const images = kiln(root, ['images']);
    const baseRows = images.stdout.split('\n').filter((l) => l.startsWith(base.split(':latest')[0]!));
    assert.deepEqual(baseRows.map((l) => l.split(/\s+/)[3]).sort(), ['linux/amd64', 'linux/arm64/v8'], images.stdout);

    await reg.stop(); // from here on, anything asked of the registry fails the build
    stopped = true;
    const warm = kilnBuild(root, files, [...platforms, '-o', `type=oci,dest=${join(outs, 'warm.tar')}`], { env, context: cold.context });
    assert.equal(warm.status, 0, warm.stderr);
    assert.equal((warm.stderr.match(/^#\d+ CACHED$/gm) ?? []).length >= 2, true, 'both RUN steps were cached');
    const indexOf = (tar: string) => JSON.parse(execFileSync('tar', ['-xOf', join(outs, tar), 'index.json'], { encoding: 'utf8' }));
    assert.deepEqual(indexOf('warm.tar'), indexOf('cold.tar'));

    const local = kilnBuild(root, files, [...platforms, '-o', `type=local,dest=${join(outs, 'dir')}`], { env, context: cold.context });
    assert.equal(local.status, 0, local.stderr);
    assert.equal(readFileSync(join(outs, 'dir', 'linux_amd64', 'arch'), 'utf8'), 'x86_64\n');
    assert.equal(readFileSync(join(outs, 'dir', 'linux_arm64', 'arch'), 'utf8'), 'aarch64\n');
    assert.equal(readFileSync(join(outs, 'dir', 'linux_arm64', 'platform'), 'utf8'), 'linux/arm64\n');
  } finally {
    if (!stopped) await reg.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(outs, { recursive: true, force: true });
  }
});

test('25 COPY steps: each layer holds exactly its file (unpacked and hashed here), and the image is the same from a fresh state and with --no-cache', () => {
  const { files, dockerfile } = copyContext(300);
  const ctx = fixedContext(files, dockerfile);
  const env = { SOURCE_DATE_EPOCH: EPOCH };
  const roots = [tempRoot(), tempRoot()];
  try {
    const a = kilnBuild(roots[0]!, {}, ['-o', `type=oci,dest=${join(suite.outs, 'c25-a.tar')}`], { env, context: ctx });
    assert.equal(a.status, 0, a.stderr);
    const image = readOciImage(join(suite.outs, 'c25-a.tar'));
    assert.equal(image.layers.length, 26);
    assert.deepEqual(image.layers.map(sha256), image.config.rootfs.diff_ids, 'each diffID is the sha256 of its uncompressed layer');
    image.layers.slice(1).forEach((layer, i) => {
      const name = `f${String(i + 1).padStart(2, '0')}.txt`;
      const entries = readTar(layer);
      assert.deepEqual(entries.map((e) => `${e.type} ${e.name}`), ['5 files/', `0 files/${name}`], `layer ${i + 1}`);
      assert.equal(entries[1]!.data.toString('utf8'), files[name]);
    });
    // Another state dir, and the same one with every step run again: the same bytes.
    const b = kilnBuild(roots[1]!, {}, ['-o', `type=oci,dest=${join(suite.outs, 'c25-b.tar')}`], { env, context: ctx });
    assert.equal(b.status, 0, b.stderr);
    const c = kilnBuild(roots[0]!, {}, ['--no-cache', '-o', `type=oci,dest=${join(suite.outs, 'c25-c.tar')}`], { env, context: ctx });
    assert.equal(c.status, 0, c.stderr);
    assert.equal(readOciImage(join(suite.outs, 'c25-b.tar')).manifestDigest, image.manifestDigest);
    assert.equal(readOciImage(join(suite.outs, 'c25-c.tar')).manifestDigest, image.manifestDigest);
  } finally {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
    rmSync(ctx, { recursive: true, force: true });
  }
});

test('a build SIGKILLed in the middle of 25 COPY steps leaves a cache the next build uses; it ends with the clean build\'s digest', async () => {
  // Files of 1 MiB: each step takes long enough that the kill lands while later steps are still to run.
  const { files, dockerfile } = copyContext(1 << 20);
  const ctx = fixedContext(files, dockerfile);
  const env = { SOURCE_DATE_EPOCH: EPOCH };
  const clean = tempRoot();
  const killed = tempRoot();
  try {
    const reference = kilnBuild(clean, {}, ['-t', 'kill/test'], { env, context: ctx });
    assert.equal(reference.status, 0, reference.stderr);
    assert.ok(reference.digest);

    // Killed three times, each time later in the build: right after step K of 26 (the FROM is step 1) is
    // reported done. The steps that ran in the next build must all come after K: those up to K were
    // recorded before the kill, and the build takes them from the cache (it shows the topmost as CACHED).
    const ran = (stderr: string) => [...stderr.matchAll(/\[\s*(\d+)\/26\] COPY [^\n]*\n#\d+ DONE/g)].map((m) => Number(m[1]));
    const cachedCopies = (stderr: string) => [...stderr.matchAll(/\[\s*(\d+)\/26\] COPY [^\n]*\n#\d+ CACHED/g)].map((m) => Number(m[1]));
    let recorded = 0;
    for (const k of [5, 12, 19]) {
      const run = kilnAsync(killed, ['build', '--progress', 'plain', '-t', 'kill/test', ctx], { env });
      const seen = new RegExp(`\\[\\s*${k}/26\\] COPY [^\\n]*\\n#\\d+ DONE`);
      run.child.stderr!.on('data', () => {
        if (seen.test(run.output().stderr)) run.child.kill('SIGKILL');
      });
      const r = await run.done;
      assert.equal(run.child.signalCode, 'SIGKILL', `the build was killed before it ended:\n${r.stderr.slice(-600)}`);
      assert.doesNotMatch(r.stderr, /^image sha256:/m);
      assert.ok(ran(r.stderr).every((i) => i > recorded), `steps up to ${recorded} were recorded before the last kill, yet ran again:\n${r.stderr}`);
      if (recorded) assert.ok(Math.max(...cachedCopies(r.stderr)) >= recorded, `the cache was used:\n${r.stderr}`);
      recorded = k;
    }
    const resumed = kilnBuild(killed, {}, ['-t', 'kill/test'], { env, context: ctx });
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.ok(ran(resumed.stderr).every((i) => i > recorded), `only the steps after ${recorded} ran:\n${resumed.stderr}`);
    assert.equal(resumed.digest, reference.digest);
    // The state opened again has no half-written layers left, and a run of the image sees every file.
    assert.deepEqual(existsSync(join(killed, 'snapshots', 'tmp')) ? readdirSync(join(killed, 'snapshots', 'tmp')) : [], []);
    const ls = kiln(killed, ['run', '--rm', 'kill/test', 'sh', '-c', 'ls /files | wc -l; md5sum /files/f25.txt']);
    assert.equal(ls.status, 0, ls.stderr);
    const [count, sum] = ls.stdout.trim().split('\n');
    assert.equal(count!.trim(), '25');
    assert.equal(sum!.split(/\s+/)[0], createHash('md5').update(files['f25.txt']!).digest('hex'));
  } finally {
    rmSync(clean, { recursive: true, force: true });
    rmSync(killed, { recursive: true, force: true });
    rmSync(ctx, { recursive: true, force: true });
  }
});
