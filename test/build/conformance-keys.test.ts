// Cache keys as BuildKit v0.25 makes them (checked against it with docker-sid): a RUN's read-only mounts are
// keyed by the content of exactly what they expose, proxy build args are not part of any key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** `--progress plain`: the step's line is followed by `#N CACHED`. */
const cached = (stderr: string, step: string) => new RegExp(`${esc(step)}\\n#\\d+ CACHED`).test(stderr);
const ran = (stderr: string, step: string) => new RegExp(esc(step)).test(stderr) && !cached(stderr, step);

function build(context: string, tag: string) {
  const dest = join(suite.outs, tag);
  const r = kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  return { ...r, out: (p: string) => readFileSync(join(dest, p), 'utf8') };
}

test('RUN --mount=type=bind of the context: keyed by the mounted content only (a change under the source re-runs, one outside stays CACHED)', () => {
  const step = 'RUN --mount=type=bind,source=a,target=/m cat /m/f /m/sub/g > /out';
  const context = writeContext({
    Dockerfile: `FROM ${suite.base}\n${step}\n`,
    'a/f': 'one\n',
    'a/sub/g': 'g1\n',
    other: 'x\n',
  });
  const first = build(context, 'bind-ctx-1');
  assert.ok(ran(first.stderr, step), first.stderr);
  assert.equal(first.out('out'), 'one\ng1\n');

  writeFileSync(join(context, 'other'), 'y\n');
  const outside = build(context, 'bind-ctx-2');
  assert.ok(cached(outside.stderr, step), `a file outside the mount's source changed: still CACHED\n${outside.stderr}`);

  writeFileSync(join(context, 'a/sub/g'), 'g2\n');
  const inside = build(context, 'bind-ctx-3');
  assert.ok(ran(inside.stderr, step), `the mounted content changed: the RUN re-runs\n${inside.stderr}`);
  assert.equal(inside.out('out'), 'one\ng2\n', 'not the stale output of the first build');

  // A single file as the source.
  const fileStep = 'RUN --mount=type=bind,source=a/f,target=/f.txt cat /f.txt > /single';
  writeFileSync(join(context, 'Dockerfile'), `FROM ${suite.base}\n${fileStep}\n`);
  assert.ok(ran(build(context, 'bind-file-1').stderr, fileStep));
  writeFileSync(join(context, 'a/sub/g'), 'g3\n');
  assert.ok(cached(build(context, 'bind-file-2').stderr, fileStep), 'a sibling of the mounted file changed: CACHED');
  writeFileSync(join(context, 'a/f'), 'two\n');
  const changed = build(context, 'bind-file-3');
  assert.ok(ran(changed.stderr, fileStep));
  assert.equal(changed.out('single'), 'two\n');
});

test('RUN --mount=type=bind of the whole context: a new file re-runs, a .dockerignored one does not', () => {
  const step = 'RUN --mount=type=bind,target=/ctx ls /ctx/src > /list';
  const context = writeContext({
    Dockerfile: `FROM ${suite.base}\n${step}\n`,
    '.dockerignore': 'ignored\n.kiln-metadata.json\n',
    'src/a': 'a\n',
  });
  assert.ok(ran(build(context, 'bind-all-1').stderr, step));
  writeFileSync(join(context, 'ignored'), 'whatever\n');
  assert.ok(cached(build(context, 'bind-all-2').stderr, step), 'an ignored file is not part of the mount');
  writeFileSync(join(context, 'src/b'), 'b\n');
  const r = build(context, 'bind-all-3');
  assert.ok(ran(r.stderr, step), r.stderr);
  assert.equal(r.out('list'), 'a\nb\n');
});

test('RUN --mount=type=bind from a stage: CACHED when only an unrelated part of the stage changed, re-run when the mounted subtree did', () => {
  const step = 'RUN --mount=type=bind,from=src,source=/d,target=/m cat /m/f > /out';
  const context = writeContext({
    Dockerfile: [`FROM ${suite.base} AS src`, 'COPY d /d', 'COPY u /u', `FROM ${suite.base}`, step, ''].join('\n'),
    'd/f': 'same\n',
    u: '1\n',
  });
  const first = build(context, 'bind-stage-1');
  assert.ok(ran(first.stderr, step));
  writeFileSync(join(context, 'u'), '2\n');
  const unrelated = build(context, 'bind-stage-2');
  assert.ok(ran(unrelated.stderr, 'COPY u /u'), 'the stage itself changed');
  assert.ok(cached(unrelated.stderr, step), `the mounted /d is identical: CACHED\n${unrelated.stderr}`);
  mkdirSync(join(context, 'd/new'));
  const changed = build(context, 'bind-stage-3');
  assert.ok(ran(changed.stderr, step), changed.stderr);
  // The RUN's own base still counts by its key: a new base step re-runs it.
  writeFileSync(join(context, 'Dockerfile'), [`FROM ${suite.base} AS src`, 'COPY d /d', 'COPY u /u', `FROM ${suite.base}`, 'COPY u /u2', step, ''].join('\n'));
  assert.ok(ran(build(context, 'bind-stage-4').stderr, step));
});

test('proxy build args: the RUN sees both spellings, a different proxy stays CACHED, nothing of them in the image config or history', () => {
  const step = 'RUN env | grep -i _proxy | sort > /proxies';
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\n${step}\n` });
  const proxied = (tag: string, http: string) => {
    const dest = join(suite.outs, tag);
    const args = ['-o', `type=local,dest=${dest}`, '--build-arg', `http_proxy=${http}`, '--build-arg', 'HTTPS_PROXY=http://127.0.0.1:3129', '--build-arg', 'no_proxy=.internal', '--build-arg', 'ALL_PROXY=socks5://127.0.0.1:1080', '--build-arg', 'ftp_proxy=http://127.0.0.1:21'];
    const r = kilnBuild(suite.root, {}, args, { context });
    assert.equal(r.status, 0, r.stderr);
    return { ...r, dest };
  };
  const first = proxied('proxy-1', 'http://127.0.0.1:3128');
  assert.ok(ran(first.stderr, step));
  assert.equal(
    readFileSync(join(first.dest, 'proxies'), 'utf8'),
    [
      'ALL_PROXY=socks5://127.0.0.1:1080', 'FTP_PROXY=http://127.0.0.1:21', 'HTTPS_PROXY=http://127.0.0.1:3129', 'HTTP_PROXY=http://127.0.0.1:3128', 'NO_PROXY=.internal',
      'all_proxy=socks5://127.0.0.1:1080', 'ftp_proxy=http://127.0.0.1:21', 'http_proxy=http://127.0.0.1:3128', 'https_proxy=http://127.0.0.1:3129', 'no_proxy=.internal', '',
    ].join('\n'),
  );
  const other = proxied('proxy-2', 'http://127.0.0.1:9999');
  assert.ok(cached(other.stderr, step), `only the proxy changed: CACHED\n${other.stderr}`);

  const image = kilnBuild(suite.root, {}, ['--build-arg', 'HTTP_PROXY=http://127.0.0.1:3128'], { context });
  assert.equal(image.status, 0, image.stderr);
  const config = JSON.stringify(image.config);
  assert.doesNotMatch(config, /3128|HTTP_PROXY/, 'no proxy in Env or history');
  assert.ok(image.config!.history!.some((h: any) => /^RUN \/bin\/sh -c env \| grep/.test(h.created_by)), config);
});

test('COPY --from a stage: CACHED when only an unrelated part of the stage changed, re-run when the copied files did', () => {
  const step = 'COPY --from=src /d /copied';
  const dockerfile = (extra: string) => [`FROM ${suite.base} AS src`, 'COPY d /d', 'COPY u /u', extra, `FROM ${suite.base}`, step, ''].join('\n');
  const context = writeContext({ Dockerfile: dockerfile(''), 'd/f': 'copied by the COPY test\n', u: '1\n' });
  assert.ok(ran(build(context, 'copy-stage-1').stderr, step));
  writeFileSync(join(context, 'u'), '2\n');
  const unrelated = build(context, 'copy-stage-2');
  assert.ok(cached(unrelated.stderr, step), `the copied /d is identical: CACHED\n${unrelated.stderr}`);
  writeFileSync(join(context, 'Dockerfile'), dockerfile('RUN chmod 600 /d/f'));
  const changed = build(context, 'copy-stage-3');
  assert.ok(ran(changed.stderr, step), `a mode under /d changed: the COPY re-runs\n${changed.stderr}`);
  // The base a COPY writes onto still counts by its key.
  writeFileSync(join(context, 'Dockerfile'), dockerfile('RUN chmod 600 /d/f').replace(`FROM ${suite.base}\n${step}`, `FROM ${suite.base}\nRUN echo > /base\n${step}`));
  assert.ok(ran(build(context, 'copy-stage-4').stderr, step));
});

test('RUN --mount=type=bind of the context shows no .dockerignored file (read-only and rw), so none can give a stale CACHED result', () => {
  const ro = 'RUN --mount=type=bind,target=/ctx find /ctx | sort > /ro; cat /ctx/docs/keep.md > /kept';
  const rw = 'RUN --mount=type=bind,target=/ctx,rw ls -a /ctx/app > /rw; echo scratch > /ctx/app/new';
  const sub = 'RUN --mount=type=bind,source=app,target=/app cat /app/secret.env > /sub 2>&1 || echo hidden > /sub';
  const context = writeContext({
    Dockerfile: `FROM ${suite.base}\n${ro}\n${rw}\n${sub}\n`,
    // (.kiln-metadata.json: the test helper's --metadata-file, written into the context after each build)
    '.dockerignore': '.kiln-metadata.json\napp/secret.env\nnode_modules\ndocs\n!docs/keep.md\n',
    'app/main.js': 'main\n',
    'app/secret.env': 'TOKEN=1\n',
    'node_modules/dep/index.js': 'dep\n',
    'docs/keep.md': 'kept\n',
    'docs/drop.md': 'dropped\n',
  });
  const first = build(context, 'bind-ignored-1');
  const seen = first.out('ro').split('\n').filter(Boolean);
  assert.deepEqual(seen, ['/ctx', '/ctx/.dockerignore', '/ctx/Dockerfile', '/ctx/app', '/ctx/app/main.js', '/ctx/docs', '/ctx/docs/keep.md']);
  assert.equal(first.out('kept'), 'kept\n');
  assert.equal(first.out('rw'), '.\n..\nmain.js\n');
  assert.equal(first.out('sub'), 'hidden\n');
  // Nothing of the rw mount's writes reached the context.
  assert.throws(() => readFileSync(join(context, 'app', 'new')), /ENOENT/);
  // An ignored file changes: invisible to the RUNs, so CACHED is right.
  writeFileSync(join(context, 'app/secret.env'), 'TOKEN=2\n');
  const again = build(context, 'bind-ignored-2');
  for (const step of [ro, rw, sub]) assert.ok(cached(again.stderr, step), `${step}\n${again.stderr}`);
});
