// One build history for both APIs of kiln serve: a build through buildx (BuildKit's API) is recorded in the
// tenant's history that `kiln history ls|inspect --builder` reads, a build through kiln's own protocol is
// listed by `buildx history ls`, and `buildx history inspect|logs` show a build's outcome, steps and output
// from that same record (docker-sid's buildx 0.29, remote driver).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { writeContext } from '../helpers/build.js';
import { tempRoot } from '../helpers/kiln.js';
import { buildx, buildxSuite, DOCKER } from './buildx-harness.js';
import { clientEnv, kilnClient, makeCerts, serve } from '../daemon/serve-helpers.js';

const s = buildxSuite();
const skip = s.peer.ok ? false : s.peer.reason;
const b = () => ['--builder', s.builder, '--progress', 'plain'];
const kilnAddr = () => `unix://${join(s.dir, 'kiln.sock')}`;

/** Every history record file under the server's root, wherever it is kept. */
function recordFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\/history\/[^/]+\.json$/.test(p)) out.push(p);
    }
  };
  walk(root);
  return out;
}

/** `buildx history ls` rows as [ref, status]. */
async function buildxHistory(): Promise<[string, string][]> {
  const h = await buildx(['history', 'ls', '--builder', s.builder, '--format', '{{.Ref}} {{.Status}}']);
  assert.equal(h.status, 0, h.stderr);
  return h.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(' ', 2) as [string, string]);
}

test('a buildx build is one record in the tenant history kiln history reads; a kiln-protocol build is listed by buildx history ls', { skip }, async () => {
  const marker = randomBytes(5).toString('hex');
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo via-buildx-${marker} > /m\n` });
  const before = recordFiles(s.server.root).length;
  const r = await buildx(['build', ...b(), ctx]);
  assert.equal(r.status, 0, r.stderr);

  // One record more, in the tenant's state, and no store of the BuildKit API's own.
  const files = recordFiles(s.server.root);
  assert.equal(files.length, before + 1, files.join('\n'));
  for (const f of files) assert.match(f, /\/tenants\/[^/]+\/history\/[0-9a-z]+\.json$/);
  assert.equal(existsSync(join(s.server.root, 'buildkit', 'history')), false);

  const env = clientEnv();
  const client = tempRoot();
  const inspect = kilnClient(client, ['history', 'inspect', 'latest', '--builder', kilnAddr()], env);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /^Origin: +buildkit:\S+$/m);
  assert.match(inspect.stdout, /^Status: +completed$/m);
  assert.match(inspect.stdout, new RegExp(`RAN .*RUN echo via-buildx-${marker}`));
  const id = /^ID: +(\S+)$/m.exec(inspect.stdout)![1]!;
  const ls = kilnClient(client, ['history', 'ls', '--builder', kilnAddr()], env);
  assert.match(ls.stdout, new RegExp(`^${id} +completed `, 'm'));

  // buildx lists it under the ref it gave the build, not kiln's id.
  const rows = await buildxHistory();
  assert.equal(rows.length, files.length, rows.join('\n'));
  assert.ok(!rows.some(([ref]) => ref === id), 'the buildx build is listed under its buildx ref');

  // A build through kiln's own protocol appears in buildx history ls under its kiln id.
  const ctx2 = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo via-kiln-${marker} > /k && echo kiln-said-${marker}\n` });
  const k = kilnClient(client, ['build', '--progress', 'plain', '--builder', kilnAddr(), ctx2], env);
  assert.equal(k.status, 0, k.stderr);
  const kid = /^ID: +(\S+)$/m.exec(kilnClient(client, ['history', 'inspect', 'latest', '--builder', kilnAddr()], env).stdout)![1]!;
  const after = await buildxHistory();
  assert.equal(after.length, rows.length + 1, after.join('\n'));
  assert.deepEqual(after[0], [kid, 'Completed']);
  // Its output too, from the same record (this build never passed through the BuildKit API).
  const logs = await buildx(['history', 'logs', '--builder', s.builder, kid]);
  assert.equal(logs.status, 0, logs.stderr);
  assert.match(logs.stderr, new RegExp(`^#(\\d+) \\[2/2\\] RUN echo via-kiln-${marker} > /k && echo kiln-said-${marker}\\n#\\1 [0-9.]+ kiln-said-${marker}\\n#\\1 DONE`, 'm'));
});

test('buildx history inspect shows a build\'s status, steps and image digest; buildx history logs prints its RUN output', { skip }, async () => {
  const marker = randomBytes(5).toString('hex');
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo logs-line-${marker}\nRUN echo second > /second\n` });
  const meta = join(s.dir, `meta-${marker}.json`);
  const r = await buildx(['build', ...b(), '-o', `type=image,name=kiln-history/inspect:${marker}`, '--metadata-file', meta, ctx]);
  assert.equal(r.status, 0, r.stderr);
  const md = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>;
  const ref = md['buildx.build.ref']!.split('/').at(-1)!;
  const digest = md['containerimage.digest']!;
  assert.match(digest, /^sha256:[a-f0-9]{64}$/);

  const inspect = await buildx(['history', 'inspect', '--builder', s.builder, ref]);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /^Dockerfile:\s+Dockerfile$/m);
  assert.match(inspect.stdout, /^Build Steps:\s+3\/3 \(33% cached\)$/m); // FROM cached, both RUNs ran
  assert.doesNotMatch(inspect.stdout, /^Error:/m);
  // The image the build made, read by buildx from the builder's content store.
  assert.match(inspect.stdout, new RegExp(`^${digest}\\s+application/vnd\\.oci\\.image\\.manifest\\.v1\\+json$`, 'm'));
  assert.match(inspect.stdout, new RegExp(`^Print build logs: docker buildx history logs ${ref}$`, 'm'));

  const logs = await buildx(['history', 'logs', '--builder', s.builder, ref]);
  assert.equal(logs.status, 0, logs.stderr);
  assert.match(logs.stderr, new RegExp(`^#(\\d+) \\[2/3\\] RUN echo logs-line-${marker}\\n#\\1 [0-9.]+ logs-line-${marker}\\n#\\1 DONE`, 'm'));
  assert.match(logs.stderr, /^#\d+ \[1\/3\] FROM .*\n#\d+ CACHED$/m);

  // A failed build: buildx shows kiln's error, and the output of the step that failed.
  const fail = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo about-to-fail-${marker} && exit 3\n` });
  const f = await buildx(['build', ...b(), fail]);
  assert.notEqual(f.status, 0);
  const fi = await buildx(['history', 'inspect', '--builder', s.builder]);
  assert.equal(fi.status, 0, fi.stderr);
  assert.match(fi.stdout, new RegExp(`^Error:\\s+Unknown Dockerfile:2: process "/bin/sh -c echo about-to-fail-${marker} && exit 3" did not complete successfully: exit code: 3$`, 'm'));
  assert.match(fi.stdout, /^Build Steps:\s+1\/2 /m);
  const fl = await buildx(['history', 'logs', '--builder', s.builder]);
  assert.match(fl.stderr, new RegExp(`^#\\d+ [0-9.]+ about-to-fail-${marker}$`, 'm'));
  assert.match(fl.stderr, /^#\d+ ERROR: .*exit code: 3$/m);
});

/** A Dockerfile's --call=check on kiln and on dockerd 28's builder (the default builder of docker-sid). */
async function checkBoth(files: Record<string, string>, format = 'text') {
  const ctx = writeContext(files);
  const call = `--call=check${format === 'json' ? ',format=json' : ''}`;
  const onKiln = await buildx(['build', '--builder', s.builder, call, ctx]);
  const onDockerd = await buildx(['build', '--builder', 'default', call, ctx]);
  return { onKiln, onDockerd };
}

test('buildx build --call=check prints kiln\'s check results as BuildKit\'s, with the exit code dockerd 28\'s builder gives', { skip }, async () => {
  const warned = { Dockerfile: 'FROM scratch as base\nMAINTAINER someone\nCOPY a /a\n', a: 'a\n' };
  const text = await checkBoth(warned);
  assert.equal(text.onKiln.status, 1, text.onKiln.stderr);
  assert.equal(text.onKiln.status, text.onDockerd.status);
  assert.match(text.onKiln.stdout, /^Check complete, 2 warnings have been found!\n\nWARNING: FromAsCasing - https:\/\/docs\.docker\.com\/go\/dockerfile\/rule\/from-as-casing\/\n'as' and 'FROM' keywords' casing do not match\n/);
  assert.equal(text.onKiln.stdout, text.onDockerd.stdout);
  // Nothing but the Dockerfile and its ignore file crossed for it, and nothing ran.
  assert.doesNotMatch(text.onKiln.stderr, /load build context|exporting/);

  const json = await checkBoth(warned, 'json');
  assert.equal(json.onKiln.status, json.onDockerd.status);
  const strip = (out: string) => {
    const r = JSON.parse(out) as { sources: { definition?: unknown }[] };
    for (const src of r.sources) delete src.definition;
    return r;
  };
  assert.deepEqual(strip(json.onKiln.stdout), strip(json.onDockerd.stdout));

  const clean = await checkBoth({ Dockerfile: 'FROM scratch AS base\nCOPY a /a\n', a: 'a\n' });
  assert.equal(clean.onKiln.status, 0, clean.onKiln.stderr);
  assert.equal(clean.onDockerd.status, 0);
  assert.equal(clean.onKiln.stdout, clean.onDockerd.stdout);
  assert.equal(clean.onKiln.stdout, 'Check complete, no warnings found.\n');

  // A Dockerfile the check cannot finish: the warnings, then the error at its line, exit 1 — as on BuildKit.
  const broken = await checkBoth({ Dockerfile: 'FROM scratch as base\nFROM ${NOPE}\n' });
  assert.equal(broken.onKiln.status, 1);
  assert.equal(broken.onKiln.stdout, broken.onDockerd.stdout);
  assert.match(broken.onKiln.stdout, /WARNING: UndefinedArgInFrom /);
  const errorOf = (r: { stderr: string }) => r.stderr.slice(r.stderr.indexOf('ERROR: '));
  assert.match(errorOf(broken.onKiln), /^ERROR: base name \(\$\{NOPE\}\) should not be blank\n.*Dockerfile:2\n-+\n   1 \|     FROM scratch as base\n   2 \| >>> FROM \$\{NOPE\}\n/);
  assert.equal(errorOf(broken.onKiln), errorOf(broken.onDockerd));
});

test('the content store buildx history inspect reads is read-only and takes only sha256 digests', { skip }, async () => {
  const grpc = await import('@grpc/grpc-js');
  const { contentServiceDef } = await import('../../src/buildkit/content-service.js');
  const Content = contentServiceDef();
  const client = new Content(`unix://${join(s.dir, 'buildkitd.sock')}`, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown>;
  const unary = (method: string, req: unknown) =>
    new Promise<{ err: { code: number; details: string } | null; res: unknown }>((resolve) => (client[method] as (r: unknown, cb: (e: unknown, r: unknown) => void) => void).call(client, req, (err, res) => resolve({ err: err as { code: number; details: string } | null, res })));
  try {
    // A record's image, as buildx reads it: the manifest bytes, whole.
    const marker = randomBytes(4).toString('hex');
    const meta = join(s.dir, `meta-content-${marker}.json`);
    const r = await buildx(['build', ...b(), '-o', `type=image,name=kiln-history/content:${marker}`, '--metadata-file', meta, writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo ${marker} > /c\n` })]);
    assert.equal(r.status, 0, r.stderr);
    const digest = (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!;
    const info = await unary('Info', { digest });
    assert.equal(info.err, null);
    const size = Number((info.res as { info: { size: string } }).info.size);
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = (client.Read as (r: unknown) => NodeJS.ReadableStream).call(client, { digest, offset: '0', size: '0' });
      stream.on('data', (m: { data: Buffer }) => chunks.push(m.data));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const bytes = Buffer.concat(chunks);
    assert.equal(bytes.length, size);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, digest);

    // Names that are not a sha256 digest reach no file; nothing can be written or changed.
    for (const bad of ['sha256:../../../../etc/passwd', '../db.owner', `sha512:${'0'.repeat(128)}`, `sha256:${'0'.repeat(64)}`]) {
      const got = await unary('Info', { digest: bad });
      assert.equal(got.err?.code, grpc.status.NOT_FOUND, bad);
    }
    const upd = await unary('Update', { info: { digest, size: String(size), labels: { x: 'y' } } });
    assert.equal(upd.err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(upd.err!.details, /read-only/);
  } finally {
    (client as unknown as { close(): void }).close();
  }
});

test('over mTLS, the content store answers each tenant from its own state: bob cannot read the image of alice\'s build', { skip }, async () => {
  const grpc = await import('@grpc/grpc-js');
  const { contentServiceDef } = await import('../../src/buildkit/content-service.js');
  const certs = makeCerts();
  const dir = join(s.dir, 'tls-content');
  mkdirSync(dir);
  const server = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--buildkit-addr', 'tcp://127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca]);
  for (let i = 0; i < 100 && !/BuildKit API on/.test(server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  const endpoint = /BuildKit API on tcp:\/\/(\S+)/.exec(server.stderr())![1]!;
  const name = `kiln-test-${randomBytes(4).toString('hex')}`;
  const alice = certs.client('alice');
  const clients: { close(): void }[] = [];
  const info = (who: { cert: string; key: string }, digest: string) => {
    const creds = grpc.credentials.createSsl(readFileSync(certs.ca), readFileSync(who.key), readFileSync(who.cert));
    const c = new (contentServiceDef())(endpoint, creds) as unknown as { Info(r: unknown, cb: (e: { code: number } | null) => void): void; close(): void };
    clients.push(c);
    return new Promise<number>((resolve) => c.Info({ digest }, (err) => resolve(err ? err.code : grpc.status.OK)));
  };
  try {
    execFileSync(DOCKER, ['buildx', 'create', '--driver', 'remote', '--name', name, '--driver-opt', `cacert=${certs.ca},cert=${alice.cert},key=${alice.key}`, `tcp://${endpoint}`], { stdio: 'ignore' });
    const meta = join(dir, 'meta.json');
    const r = await buildx(['build', '--builder', name, '--progress', 'plain', '-o', 'type=image,name=kiln-history/alice:1', '--metadata-file', meta, writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo alice-${randomBytes(4).toString('hex')} > /a\n` })]);
    assert.equal(r.status, 0, r.stderr);
    const digest = (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest']!;
    assert.equal(await info(alice, digest), grpc.status.OK);
    assert.equal(await info(certs.client('bob'), digest), grpc.status.NOT_FOUND);
    assert.equal(await info(certs.rogue, digest), grpc.status.UNAVAILABLE);
  } finally {
    for (const c of clients) c.close();
    spawnSync(DOCKER, ['buildx', 'rm', '--force', name], { stdio: 'ignore', timeout: 60_000 });
    await server.stop();
    rmSync(server.root, { recursive: true, force: true });
  }
});
