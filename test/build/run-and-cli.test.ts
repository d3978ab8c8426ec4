// RUN mounts, network and security options, and the remaining build flags: stdin Dockerfile,
// --build-context, --secret, --progress rawjson, --iidfile, --build-arg, --label.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';
import { waitFor } from '../helpers/wait.js';

const suite = buildSuite();

test('RUN --mount: bind from the context and from a stage, tmpfs, cache, secret', () => {
  const secretFile = join(suite.outs, 'token');
  writeFileSync(secretFile, 's3cret');
  const dest = join(suite.outs, 'mounts');
  const r = kilnBuild(
    suite.root,
    {
      Dockerfile: [
        `FROM ${suite.base} AS tools`,
        'RUN mkdir /tools && echo "from the tools stage" > /tools/msg',
        `FROM ${suite.base}`,
        'RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cat /mnt/data.txt > /from-context',
        'RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/msg > /from-stage',
        'RUN --mount=type=tmpfs,target=/scratch touch /scratch/gone && ls /scratch > /tmpfs-listing',
        'RUN --mount=type=cache,target=/cache,id=demo echo x >> /cache/count && wc -l < /cache/count > /cache-lines',
        'RUN --mount=type=secret,id=token test "$(cat /run/secrets/token)" = s3cret && echo secret-ok > /secret-check',
        'RUN --mount=type=secret,id=token,env=TOKEN test "$TOKEN" = s3cret && echo env-ok > /secret-env-check',
      ].join('\n'),
      'data.txt': 'context data\n',
    },
    ['--secret', `id=token,src=${secretFile}`, '-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  const read = (p: string) => readFileSync(join(dest, p), 'utf8');
  assert.equal(read('from-context'), 'context data\n');
  assert.equal(read('from-stage'), 'from the tools stage\n');
  assert.equal(read('tmpfs-listing'), 'gone\n');
  assert.ok(!existsSync(join(dest, 'scratch/gone')), 'tmpfs content is not in the image');
  assert.equal(read('cache-lines').trim(), '1');
  assert.equal(read('secret-check'), 'secret-ok\n');
  assert.equal(read('secret-env-check'), 'env-ok\n');
  assert.ok(!existsSync(join(dest, 'run/secrets/token')), 'the secret is not in the image');
  assert.ok(!existsSync(join(dest, 'cache/count')), 'the cache mount is not in the image');
});

test('RUN --network=none has only loopback; a missing secret is a clear error', () => {
  const dest = join(suite.outs, 'net');
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --network=none ls /sys/class/net > /ifaces\n` }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'ifaces'), 'utf8'), 'lo\n');
  const missing = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN --mount=type=secret,id=nope,required=true cat /run/secrets/nope\n` });
  assert.notEqual(missing.status, 0);
  assert.match(errorLine(missing), /Dockerfile:2: secret nope: not found \(pass it with --secret id=nope,src=FILE\)$/);
});

test('a Dockerfile on stdin builds with no context', () => {
  const r = kiln(suite.root, ['build', '--progress', 'plain', '-t', 'kiln-test/stdin', '-'], { input: `FROM ${suite.base}\nRUN echo from-stdin > /s\n` });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(kiln(suite.root, ['run', '--rm', 'kiln-test/stdin', 'cat', '/s']).stdout, 'from-stdin\n');
  const copy = kiln(suite.root, ['build', '-'], { input: `FROM ${suite.base}\nCOPY x /x\n` });
  assert.notEqual(copy.status, 0);
  assert.match(errorLine(copy), /Dockerfile:2: .*x.*not found/);
});

test('--build-context: a local dir and a docker-image:// replacement for a FROM', () => {
  const extra = writeContext({ 'extra.txt': 'extra context\n' });
  const dest = join(suite.outs, 'ctx');
  const r = kilnBuild(
    suite.root,
    { Dockerfile: 'FROM alpine-that-does-not-exist\nCOPY --from=extra extra.txt /extra.txt\n' },
    ['--build-context', `extra=${extra}`, '--build-context', `alpine-that-does-not-exist=docker-image://${suite.base}`, '-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'extra.txt'), 'utf8'), 'extra context\n');
  assert.ok(existsSync(join(dest, 'bin/busybox')));
  rmSync(extra, { recursive: true, force: true });
});

test('--progress rawjson, --iidfile, --build-arg, --label', () => {
  const iid = join(suite.outs, 'iid');
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nARG WHO=nobody\nRUN echo "hi $WHO"\n` }, ['--progress', 'rawjson', '--iidfile', iid, '--build-arg', 'WHO=kiln', '--label', 'team=build']);
  assert.equal(r.status, 0, r.stderr);
  const events = r.stderr.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const started = events.filter((e) => e.type === 'vertex.started');
  assert.ok(started.some((e) => /RUN echo "hi kiln"/.test(e.name)), JSON.stringify(started));
  assert.ok(events.some((e) => e.type === 'vertex.log' && e.data.includes('hi kiln')));
  assert.ok(events.some((e) => e.type === 'vertex.completed' && typeof e.durationMs === 'number'));
  assert.equal(readFileSync(iid, 'utf8'), r.digest);
  assert.equal(r.config!.config!.Labels.team, 'build');
});

test('a second build of the same Dockerfile is served from the cache', () => {
  const files = { Dockerfile: `FROM ${suite.base}\nCOPY a /a\nRUN echo ran > /ran\n`, a: 'a\n' };
  const context = writeContext(files);
  const first = kilnBuild(suite.root, {}, [], { context });
  assert.equal(first.status, 0, first.stderr);
  const second = kilnBuild(suite.root, {}, [], { context });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, /RUN echo ran > \/ran\n#\d+ CACHED/);
  assert.equal(second.digest, first.digest);
  writeFileSync(join(context, 'a'), 'changed\n');
  const third = kilnBuild(suite.root, {}, [], { context });
  assert.doesNotMatch(third.stderr, /RUN echo ran > \/ran\n#\d+ CACHED/);
  assert.notEqual(third.digest, first.digest);
});

test('--build-context NAME=oci-layout://DIR:TAG replaces a FROM with an image from an OCI layout', async () => {
  const { busyboxFixture } = await import('../helpers/fixtures.js');
  const dest = join(suite.outs, 'layout');
  const r = kilnBuild(
    suite.root,
    { Dockerfile: 'FROM base-from-layout\nRUN echo "on $(cat /etc/group | head -1)" > /proof\n' },
    ['--build-context', `base-from-layout=oci-layout://${busyboxFixture().ociLayout}:latest`, '-o', `type=local,dest=${dest}`],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dest, 'proof'), 'utf8'), 'on root:x:0:\n');
});

test('a build killed mid-RUN leaves the state usable and no process behind', async () => {
  const { kilnAsync } = await import('../helpers/kiln.js');
  const { readdirSync } = await import('node:fs');
  const { execFileSync } = await import('node:child_process');
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo started && sleep 31337\n` });
  const run = kilnAsync(suite.root, ['build', '--progress', 'plain', context]);
  await waitFor(() => run.output().stderr.includes('started'), { timeoutMs: 30_000, what: 'the RUN to start' });
  run.child.kill('SIGKILL');
  await run.done;
  // The sandbox notices its parent is gone and takes the container with it.
  const left = () => execFileSync('sh', ['-c', 'pgrep -f "slee[p] 31337" || true'], { encoding: 'utf8' }).trim();
  await waitFor(() => left() === '', { timeoutMs: 5_000, what: 'no container process left' }).catch(() => {});
  assert.equal(left(), '', 'no container process is left');
  const again = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN echo after > /after\n` }, ['-t', 'kiln-test/after-kill']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(readdirSync(join(suite.root, 'snapshots', 'tmp')), [], 'the unfinished layer was cleaned up');
  assert.equal(kiln(suite.root, ['run', '--rm', 'kiln-test/after-kill', 'cat', '/after']).stdout, 'after\n');
});
