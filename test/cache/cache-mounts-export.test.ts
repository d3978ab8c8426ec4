// RUN --mount=type=cache contents travel with --cache-to …,cache-mounts=… (docs/cache-format.md, "Cache
// mounts"): machine A (one state dir) exports, machine B (a fresh one) imports and its RUN sees A's files;
// a second export after 2 of 200 files changed uploads those 2 files (and the tree), not the dir; an import
// whose RUN is cached downloads no mount blob; a RUN with a secret keeps its cache mounts out unless the
// user says cache-mounts-with-secrets=true; a crafted tree cannot write outside the cache dir.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnAsync, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();

/** A proxy in front of the test registry that logs every request: method, path, body bytes. */
interface Logged {
  method: string;
  url: string;
  bodyBytes: number;
}
let proxy: { host: string; log: Logged[]; server: Server };
async function startProxy(): Promise<void> {
  const [upHost, upPort] = suite.reg.host.split(':');
  const log: Logged[] = [];
  const server = createServer((req, res) => {
    const entry: Logged = { method: req.method ?? '', url: req.url ?? '', bodyBytes: 0 };
    log.push(entry);
    req.on('data', (d: Buffer) => (entry.bodyBytes += d.length));
    const up = request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  proxy = { host: `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, log, server };
}
after(() => new Promise<void>((resolve) => (proxy ? proxy.server.close(() => resolve()) : resolve())));

const dirs: string[] = [];
function temp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
function machine(): string {
  const d = tempRoot();
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A build through the proxy: kiln runs in a child process while this one serves the proxy. */
async function build(root: string, context: string, args: string[]) {
  return kilnAsync(root, ['build', '--progress', 'rawjson', ...args, context]).done;
}

function ran(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'vertex.started' && /\bRUN\b/.test(String(e.name)))
    .map((e) => String(e.name));
}

/** 200 random 4 KiB files, a nested file, a symlink and a mode are written once; every run lists them. */
function mountContext(): string {
  return writeContext({
    Dockerfile: [
      `FROM ${suite.base}`,
      'ARG ROUND=1',
      'ARG CHANGE=',
      'RUN --mount=type=cache,id=files,target=/cache \\',
      '  if [ ! -e /cache/seeded ]; then i=0; while [ $i -lt 200 ]; do head -c 4096 /dev/urandom > /cache/f$i; i=$((i+1)); done; \\',
      '    mkdir -p /cache/sub && echo nested > /cache/sub/n && ln -s sub/n /cache/link && chmod 640 /cache/f7 && touch /cache/seeded; fi; \\',
      '  if [ "$CHANGE" = 1 ]; then head -c 4096 /dev/urandom > /cache/f3; head -c 4096 /dev/urandom > /cache/f150; fi; \\',
      '  cd /cache && find . | sort > /listing && md5sum f* sub/n > /sums && readlink link > /linktarget && stat -c %a f7 > /mode7 && echo round $ROUND',
      '',
    ].join('\n'),
  });
}

function registryJSON(path: string): any {
  return JSON.parse(execFileSync('curl', ['-sf', '-H', 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json', `http://${suite.reg.host}${path}`], { encoding: 'utf8' }));
}
/** The newest writer's manifest of a writers' index (docs/cache-format.md, "Several writers"), or the manifest itself. */
function newestWriter(doc: any, fetch: (digest: string) => any): any {
  if (doc.mediaType !== 'application/vnd.oci.image.index.v1+json') return doc;
  const created = (d: any) => d.annotations?.['io.kiln.cache.created'] ?? '';
  const newest = [...doc.manifests].sort((a: any, b: any) => created(b).localeCompare(created(a)))[0];
  return fetch(newest.digest);
}
function cacheConfig(repo: string, tag: string): any {
  const manifest = newestWriter(registryJSON(`/v2/${repo}/manifests/${tag}`), (d) => registryJSON(`/v2/${repo}/manifests/${d}`));
  return { manifest, config: registryJSON(`/v2/${repo}/blobs/${manifest.config.digest}`) };
}
/** The file blob digests of mount `id` in a registry cache (read from its tree). */
function mountFiles(repo: string, tag: string, id: string): { tree: string; files: Set<string> } {
  const { manifest, config } = cacheConfig(repo, tag);
  const ref = config.cacheMounts.find((m: any) => m.id === id);
  const tree = manifest.layers[ref.tree].digest;
  const gz = execFileSync('curl', ['-sf', `http://${suite.reg.host}/v2/${repo}/blobs/${tree}`]);
  const doc = JSON.parse(execFileSync('gunzip', ['-c'], { input: gz }).toString('utf8'));
  return { tree, files: new Set(doc.entries.filter((e: any) => e.type === 'file').map((e: any) => e.digest)) };
}

function outputOf(dest: string) {
  const read = (f: string) => readFileSync(join(dest, f), 'utf8');
  return { listing: read('listing'), sums: read('sums'), link: read('linktarget'), mode7: read('mode7') };
}

test('cache mounts: A exports, a fresh B (registry or local cache) sees the files; a re-export after 2 of 200 files changed uploads about 2 files; a cached RUN downloads no mount blob', async () => {
  await startProxy();
  const ctx = mountContext();
  const repo = 'team/mounts';
  const cacheTo = `type=registry,ref=${proxy.host}/${repo}:cache,mode=max,cache-mounts=true`;
  const localCache = temp('kiln-mount-local-');
  const a = machine();
  const outA = temp('kiln-mount-out-');
  const built = await build(a, ctx, ['--cache-to', cacheTo, '--cache-to', `type=local,dest=${localCache},mode=max,cache-mounts=files`, '-o', `type=local,dest=${outA}`]);
  assert.equal(built.status, 0, built.stderr);
  const wantA = outputOf(outA);
  assert.equal(wantA.sums.split('\n').filter(Boolean).length, 201);
  assert.equal(wantA.link, 'sub/n\n');
  assert.equal(wantA.mode7, '640\n');
  const { config } = cacheConfig(repo, 'cache');
  assert.deepEqual(config.cacheMounts.map((m: any) => [m.id, m.files]), [['files', 202]]);
  const first = mountFiles(repo, 'cache', 'files');
  assert.equal(first.files.size, 202);

  // B and D: fresh machines; the RUN runs (another ROUND) and sees A's files in its cache mount.
  for (const from of [`type=registry,ref=${proxy.host}/${repo}:cache`, `type=local,src=${localCache}`]) {
    const b = machine();
    const outB = temp('kiln-mount-out-');
    const cold = await build(b, ctx, ['--cache-from', from, '--build-arg', 'ROUND=2', '-o', `type=local,dest=${outB}`]);
    assert.equal(cold.status, 0, cold.stderr);
    assert.equal(ran(cold.stderr).length, 1, 'the RUN ran');
    assert.deepEqual(outputOf(outB), wantA, `files seen by B's RUN (cache from ${from})`);
    assert.match(cold.stderr, /cache mount files: 202 files \(\d+ bytes downloaded\)/);
  }

  // C: imports, but its RUN is cached: neither the tree nor any file of the mount is downloaded.
  const c = machine();
  const before = proxy.log.length;
  const cached = await build(c, ctx, ['--cache-from', `type=registry,ref=${proxy.host}/${repo}:cache`, '-o', `type=local,dest=${temp('kiln-mount-out-')}`]);
  assert.equal(cached.status, 0, cached.stderr);
  assert.deepEqual(ran(cached.stderr), []);
  const fetched = proxy.log.slice(before).filter((l) => l.method === 'GET' && l.url.includes('/blobs/sha256:')).map((l) => l.url.split('/blobs/')[1]);
  assert.ok(fetched.length > 0, 'C fetched the cache document and the image layer');
  for (const d of fetched) {
    assert.notEqual(d, first.tree, 'the mount tree was downloaded');
    assert.ok(!first.files.has(d!), `mount file blob ${d} was downloaded`);
  }
  assert.ok(!existsSync(join(c, 'cachemounts')) || readdirSync(join(c, 'cachemounts')).every((n) => readdirSync(join(c, 'cachemounts', n)).length === 0));

  // C exports (its RUN still cached, its mount dir never filled): the imported mount passes on, and the
  // same repository already holds the files, so C downloads only the tree. A fresh E gets A's files from it.
  const mark = proxy.log.length;
  const passOn = await build(c, ctx, ['--cache-from', `type=registry,ref=${proxy.host}/${repo}:cache`, '--cache-to', `type=registry,ref=${proxy.host}/${repo}:passed-on,mode=max,cache-mounts=files`]);
  assert.equal(passOn.status, 0, passOn.stderr);
  assert.deepEqual(ran(passOn.stderr), []);
  const passOnGets = proxy.log.slice(mark).filter((l) => l.method === 'GET' && l.url.includes('/blobs/sha256:')).map((l) => l.url.split('/blobs/')[1]!);
  assert.ok(!passOnGets.some((d) => first.files.has(d)), 'no mount file was downloaded to pass the mount on');
  assert.deepEqual(mountFiles(repo, 'passed-on', 'files').files, first.files);
  const outE = temp('kiln-mount-out-');
  const e = await build(machine(), ctx, ['--cache-from', `type=registry,ref=${proxy.host}/${repo}:passed-on`, '--build-arg', 'ROUND=5', '-o', `type=local,dest=${outE}`]);
  assert.equal(e.status, 0, e.stderr);
  assert.deepEqual(outputOf(outE), wantA);

  // B changes 2 of the 200 files and exports again to the same ref: 2 new file blobs, about 8 KiB.
  const b = machine();
  const warm = await build(b, ctx, ['--cache-from', `type=registry,ref=${proxy.host}/${repo}:cache`, '--build-arg', 'ROUND=2']);
  assert.equal(warm.status, 0, warm.stderr);
  const start = proxy.log.length;
  const changed = await build(b, ctx, ['--cache-from', `type=registry,ref=${proxy.host}/${repo}:cache`, '--cache-to', cacheTo, '--build-arg', 'ROUND=3', '--build-arg', 'CHANGE=1']);
  assert.equal(changed.status, 0, changed.stderr);
  const second = mountFiles(repo, 'cache', 'files');
  const added = [...second.files].filter((d) => !first.files.has(d));
  assert.equal(added.length, 2, 'two file contents changed');
  const pushes = proxy.log.slice(start).filter((l) => l.method === 'PUT' || l.method === 'PATCH' || l.method === 'POST');
  const uploadedDigests = new Set(pushes.map((l) => /[?&]digest=(sha256(?::|%3A)[a-f0-9]{64})/i.exec(l.url)?.[1]?.replace(/%3A/i, ':')).filter(Boolean));
  for (const d of added) assert.ok(uploadedDigests.has(d), `new file blob ${d} uploaded`);
  for (const d of uploadedDigests) assert.ok(!first.files.has(d!), `unchanged file blob ${d} uploaded again`);
  const uploadedBytes = pushes.reduce((n, l) => n + l.bodyBytes, 0);
  // 2 files (8 KiB) + the tree (~9 KiB gzip'd) + the RUN's layer (~5 KiB) + the cache document and its
  // manifest (~130 bytes a file), put twice (by digest and as this writer's tag, docs/cache-format.md
  // "Several writers"), + the writers' index: against ~800 KiB for the whole dir.
  assert.ok(uploadedBytes >= 2 * 4096 && uploadedBytes < 2 * 4096 + 128 * 1024, `uploaded ${uploadedBytes} bytes`);
});

test('a RUN with a secret keeps its cache mounts out of the cache unless cache-mounts-with-secrets=true; ids select mounts', () => {
  const canary = `s3cr3t-canary-${process.pid}-${Date.now()}`;
  const secretFile = join(temp('kiln-secret-'), 'tok');
  writeFileSync(secretFile, canary);
  const ctx = writeContext({
    Dockerfile: [
      `FROM ${suite.base}`,
      'RUN --mount=type=secret,id=tok --mount=type=cache,id=withsecret,target=/c cp /run/secrets/tok /c/leak',
      'RUN --mount=type=cache,id=plain,target=/p echo plain > /p/x',
      '',
    ].join('\n'),
  });
  const exportTo = (attrs: string) => {
    const dest = temp('kiln-mount-secret-');
    const r = kilnBuild(machine(), {}, ['--secret', `id=tok,src=${secretFile}`, '--cache-to', `type=local,dest=${dest},mode=max,${attrs}`], { context: ctx });
    assert.equal(r.status, 0, r.stderr);
    const grep = (() => {
      try {
        return execFileSync('grep', ['-rlaF', canary, dest], { encoding: 'utf8' });
      } catch {
        return '';
      }
    })();
    const index = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'));
    const blob = (d: string) => readFileSync(join(dest, 'blobs', 'sha256', d.slice(7)));
    const manifest = newestWriter(JSON.parse(blob(index.manifests[0].digest).toString('utf8')), (d) => JSON.parse(blob(d).toString('utf8')));
    const config = JSON.parse(blob(manifest.config.digest).toString('utf8'));
    return { ids: (config.cacheMounts ?? []).map((m: any) => m.id), leaked: grep !== '', stderr: r.stderr };
  };

  const all = exportTo('cache-mounts=true');
  assert.deepEqual(all.ids, ['plain']);
  assert.equal(all.leaked, false, 'the secret is nowhere in the exported cache');
  assert.match(all.stderr, /cache mount "withsecret" not exported: .*also mounts a secret or SSH agent \(add cache-mounts-with-secrets=true/);

  const listed = exportTo('"cache-mounts=plain,withsecret"');
  assert.deepEqual(listed.ids, ['plain']);
  assert.equal(listed.leaked, false);

  const semicolons = exportTo('cache-mounts=plain;nosuch');
  assert.deepEqual(semicolons.ids, ['plain']);
  assert.match(semicolons.stderr, /no RUN of this build mounts a cache with id "nosuch"/);

  const allowed = exportTo('cache-mounts=true,cache-mounts-with-secrets=true');
  assert.deepEqual(allowed.ids, ['plain', 'withsecret']);
  assert.equal(allowed.leaked, true, 'exported as the user asked');

  const bad = kilnBuild(machine(), {}, ['--secret', `id=tok,src=${secretFile}`, '--cache-to', `type=local,dest=${temp('kiln-x-')},cache-mounts=true,cache-mounts-with-secrets=yes`], { context: ctx });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /invalid value "yes" for --cache-to cache-mounts-with-secrets: expected true or false/);
});

/** A local cache (OCI layout) carrying one cache mount `evil` with the given tree entries and file blobs. */
function craftedCache(entries: unknown[], files: Buffer[]): string {
  const dir = temp('kiln-mount-crafted-');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (data: Buffer) => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'blobs', 'sha256', hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const json = Buffer.from(JSON.stringify({ version: 1, id: 'evil', entries }));
  const tree = put(gzipSync(json));
  const blobs = [{ ...tree, mediaType: 'application/vnd.kiln.cache.mount.tree.v1+json+gzip' }, ...files.map((f) => ({ ...put(f), mediaType: 'application/vnd.kiln.cache.mount.file.v1' }))];
  const config = Buffer.from(JSON.stringify({ version: 1, blobs: [], records: [], contents: {}, cacheMounts: [{ id: 'evil', tree: 0, files: files.length, bytes: 1 }] }));
  const cfg = put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.kiln.cache.v1',
      config: { mediaType: 'application/vnd.kiln.cache.config.v1+json', ...cfg },
      layers: blobs.map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })),
    }),
  );
  const m = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }));
  return dir;
}

test('a crafted cache mount tree cannot write outside the cache dir, and a file that does not match its digest is refused', () => {
  const outside = temp('kiln-mount-canary-');
  writeFileSync(join(outside, 'canary'), 'untouched\n');
  const payload = Buffer.from('pwned\n');
  const d = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
  const file = (path: string) => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: payload.length, digest: d });
  const cases: [string, unknown[], Buffer[], RegExp][] = [
    ['dot-dot path', [file(`../../../../../../../..${outside}/pwned`)], [payload], /bad path/],
    ['absolute path', [file(`${outside}/pwned`)], [payload], /bad path/],
    ['file under a symlink', [{ path: 'up', type: 'symlink', uid: 0, gid: 0, target: outside }, file('up/pwned')], [payload], /is not inside a directory of the tree/],
    ['file under a missing dir', [file('a/b')], [payload], /is not inside a directory of the tree/],
    ['wrong content', [file('ok')], [payload], /digest mismatch/],
  ];
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN --mount=type=cache,id=evil,target=/c ls -A /c > /seen\n` });
  for (const [name, entries, files, why] of cases) {
    const cache = craftedCache(entries, files);
    // Same size, other bytes, under the digest the tree names.
    if (name === 'wrong content') writeFileSync(join(cache, 'blobs', 'sha256', d.slice(7)), 'PWNED\n');
    const out = temp('kiln-mount-out-');
    const r = kilnBuild(machine(), {}, ['--cache-from', `type=local,src=${cache}`, '-o', `type=local,dest=${out}`], { context: ctx });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /cache mount evil from .* not used \(the RUN starts with an empty cache\)/, name);
    assert.match(r.stderr, why, name);
    assert.equal(readFileSync(join(out, 'seen'), 'utf8'), '', `${name}: the RUN saw an empty cache`);
    assert.deepEqual(readdirSync(outside), ['canary'], `${name}: nothing written outside`);
    assert.equal(readFileSync(join(outside, 'canary'), 'utf8'), 'untouched\n');
  }
});

test('sharing modes keep their meaning: shared, locked and private users of an imported mount all see its files; a mount with contents is not refilled', () => {
  const cache = temp('kiln-mount-sharing-');
  const seedCtx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN --mount=type=cache,id=shared-id,target=/c i=0; while [ $i -lt 50 ]; do echo $i > /c/f$i; i=$((i+1)); done\n` });
  const a = kilnBuild(machine(), {}, ['--cache-to', `type=local,dest=${cache},mode=max,cache-mounts=shared-id`], { context: seedCtx });
  assert.equal(a.status, 0, a.stderr);
  const stage = (name: string, sharing: string) => [`FROM ${suite.base} AS ${name}`, `RUN --mount=type=cache,id=shared-id,target=/c,sharing=${sharing} sleep 1; ls /c | wc -l > /n; cat /c/f42 >> /n; echo mine-${name} > /c/${name}`];
  const ctx = writeContext({
    Dockerfile: [...stage('one', 'shared'), ...stage('two', 'locked'), ...stage('three', 'private'), ...stage('four', 'private'), `FROM ${suite.base}`, 'COPY --from=one /n /one', 'COPY --from=two /n /two', 'COPY --from=three /n /three', 'COPY --from=four /n /four', ''].join('\n'),
  });
  const b = machine();
  const out = temp('kiln-mount-out-');
  const r = kilnBuild(b, {}, ['--cache-from', `type=local,src=${cache}`, '-o', `type=local,dest=${out}`], { context: ctx });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /cache mount shared-id: 50 files/);
  const counts = ['one', 'two', 'three', 'four'].map((s) => readFileSync(join(out, s), 'utf8').trim().split(/\s+/));
  // Each saw the 50 imported files (plus, for shared/locked users of the one dir, what the other wrote first).
  for (const [n, f42] of counts) {
    assert.ok(Number(n) >= 50 && Number(n) <= 53, `saw ${n} files`);
    assert.equal(f42, '42');
  }
  // The two private users ran at once: at least one had an instance of its own, filled from the import too.
  const instances = readdirSync(join(b, 'cachemounts'));
  assert.ok(instances.length >= 2, `instances: ${instances}`);
  // A second build: the dirs have contents, so nothing is filled again (the files the RUNs wrote stay).
  const listCtx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN --mount=type=cache,id=shared-id,target=/c ls /c > /list\n` });
  const outAgain = temp('kiln-mount-out-');
  const again = kilnBuild(b, {}, ['--cache-from', `type=local,src=${cache}`, '-o', `type=local,dest=${outAgain}`], { context: listCtx });
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /cache mount shared-id: \d+ files/);
  assert.match(readFileSync(join(outAgain, 'list'), 'utf8'), /^one$/m, 'what the earlier RUN wrote is still there');
});
