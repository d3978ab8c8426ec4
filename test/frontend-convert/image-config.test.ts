// The image config and history the conversion produces, compared with what BuildKit writes
// (dockerfile_history_test.go, convert_test.go, dispatch* in convert.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert, fakeResolver, history } from './helpers.js';

test('history lines for the BuildKit history test Dockerfile', async () => {
  const r = await convert(`FROM busybox AS base
ENV foo=bar
COPY foo /foo2
FROM busybox
LABEL lbl=val
COPY --from=base foo2 foo3
WORKDIR /
RUN echo bar > foo4
RUN ls
EXPOSE 2375 5000 1234/udp
`);
  assert.equal(r.image.history![0]!.created_by, 'BusyBox 1.36.1 (glibc), Debian 13');
  const own = r.image.history!.slice(1);
  assert.deepEqual(own.map((h) => [h.created_by, !!h.empty_layer]), [
    ['LABEL lbl=val', true],
    ['COPY foo2 foo3 # buildkit', false],
    ['WORKDIR /', true],
    ['RUN /bin/sh -c echo bar > foo4 # buildkit', false],
    ['RUN /bin/sh -c ls # buildkit', false],
    ['EXPOSE [1234/udp 2375/tcp 5000/tcp]', true],
  ]);
  assert.ok(own.every((h) => h.comment === 'buildkit.dockerfile.v0' && h.created === undefined));
  assert.deepEqual(r.image.config!.ExposedPorts, { '1234/udp': {}, '2375/tcp': {}, '5000/tcp': {} });
});

test('ARG history and the |N prefix on RUN (BuildKit TestHistoryArgs)', async () => {
  const r = await convert('FROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n');
  assert.deepEqual(history(r), ['ARG foo=bar', 'ARG bar=123', 'ARG foo=bar2', 'RUN |2 foo=bar2 bar=123 /bin/sh -c ls /etc/ # buildkit']);
});

test('metadata instructions: config values and history strings', async () => {
  const r = await convert(`FROM busybox
MAINTAINER Jane <jane@example.com>
ENV A=1 B="two words"
LABEL org.opencontainers.image.title="kiln test" version=1
USER app
VOLUME /data /cache
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=1s --timeout=10s --start-period=3s --start-interval=100ms --retries=5 CMD ["bin", "-c", "exit 0"]
SHELL ["/bin/ash", "-c"]
ENTRYPOINT echo hi
ONBUILD RUN echo later
`, { labels: { 'com.example.cli': 'yes' }, sourceDateEpoch: 1700000000 });
  const c = r.image.config!;
  assert.equal(r.image.author, 'Jane <jane@example.com>');
  assert.deepEqual(c.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1', 'B=two words']);
  assert.deepEqual(c.Labels, { 'org.opencontainers.image.title': 'kiln test', version: '1', 'com.example.cli': 'yes' });
  assert.equal(c.User, 'app');
  assert.deepEqual(c.Volumes, { '/data': {}, '/cache': {} });
  assert.equal(c.StopSignal, 'SIGTERM');
  assert.deepEqual(c.Healthcheck, { Test: ['CMD', 'bin', '-c', 'exit 0'], Interval: 1e9, Timeout: 10e9, StartPeriod: 3e9, StartInterval: 100e6, Retries: 5 });
  assert.deepEqual(c.Shell, ['/bin/ash', '-c']);
  assert.deepEqual(c.Entrypoint, ['/bin/ash', '-c', 'echo hi']);
  assert.equal(c.Cmd, null, 'ENTRYPOINT resets the CMD inherited from the base');
  assert.deepEqual(c.OnBuild, ['RUN echo later']);
  assert.deepEqual(history(r), [
    'MAINTAINER Jane <jane@example.com>',
    'ENV A=1 B=two words',
    'LABEL org.opencontainers.image.title=kiln test version=1',
    'USER app',
    'VOLUME [/data /cache]',
    'STOPSIGNAL SIGTERM',
    `HEALTHCHECK &{["CMD" "bin" "-c" "exit 0"] "1s" "10s" "3s" "100ms" '\\x05'}`,
    'SHELL [/bin/ash -c]',
    'ENTRYPOINT ["/bin/ash" "-c" "echo hi"]',
  ]);
  const own = r.image.history!.filter((h) => h.comment);
  assert.ok(own.every((h) => h.created === '2023-11-14T22:13:20Z' && h.empty_layer === true));
});

test('CMD then ENTRYPOINT in the same stage keeps the CMD; CMD sets ArgsEscaped; HEALTHCHECK NONE', async () => {
  const r = await convert('FROM busybox\nCMD ["serve"]\nENTRYPOINT ["/app"]\nHEALTHCHECK NONE\n');
  assert.deepEqual(r.image.config!.Cmd, ['serve']);
  assert.deepEqual(r.image.config!.Entrypoint, ['/app']);
  assert.equal(r.image.config!.ArgsEscaped, true);
  assert.deepEqual(r.image.config!.Healthcheck, { Test: ['NONE'] });
  assert.deepEqual(history(r), ['CMD ["serve"]', 'ENTRYPOINT ["/app"]', `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" '\\x00'}`]);
});

test('base image config is inherited: env, workdir, user, labels, ports; WORKDIR relative to it; EXPOSE expands variables', async () => {
  const resolver = fakeResolver({ 'docker.io/library/app:latest': { Env: ['PATH=/bin', 'HOME=/home/app'], WorkingDir: '/srv', User: 'app', Labels: { a: 'b' }, ExposedPorts: { '80/tcp': {} } } });
  const r = await convert('FROM app\nENV PORT=8080\nWORKDIR sub\nEXPOSE $PORT/udp 9000-9001\nRUN pwd\n', { resolver });
  const c = r.image.config!;
  assert.deepEqual(c.Env, ['PATH=/bin', 'HOME=/home/app', 'PORT=8080']);
  assert.equal(c.WorkingDir, '/srv/sub');
  assert.equal(c.User, 'app');
  assert.deepEqual(c.Labels, { a: 'b' });
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['80/tcp', '8080/udp', '9000/tcp', '9001/tcp']);
  assert.ok(history(r).includes('WORKDIR /srv/sub'));
  assert.ok(history(r).includes('EXPOSE [8080/udp 9000/tcp 9001/tcp]'));
});

test('scratch stage: empty image with PATH and WorkingDir, os/arch of the target', async () => {
  const r = await convert('FROM scratch\nCOPY a /a\n');
  assert.deepEqual(r.image.config, { WorkingDir: '/', Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] });
  assert.equal(r.image.os, 'linux');
  assert.equal(r.image.architecture, 'amd64');
  assert.equal(r.baseImage, undefined);
  assert.deepEqual(history(r), ['COPY a /a # buildkit']);
});

test('target selects a stage; a child stage inherits its base stage config and history', async () => {
  const r = await convert('FROM busybox AS base\nENV X=1\nFROM base AS app\nCMD ["x"]\nFROM busybox\nRUN no\n', { target: 'app' });
  assert.deepEqual(history(r), ['ENV X=1', 'CMD ["x"]']);
  assert.deepEqual(r.stagesUsed, ['base', 'app']);
  assert.ok(r.baseImage?.ref.startsWith('docker.io/library/busybox:latest@'));
});

test('os.version: kept from the base on its own platform, dropped when the target is another OS/arch', async () => {
  const withVersion = {
    async resolve(ref: string, platform: { os: string; architecture: string }) {
      return { ref, digest: 'sha256:' + '1'.repeat(64), config: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2227', config: {} } };
    },
  };
  const same = await convert('FROM --platform=windows(10.0.20348)/amd64 winbase\nENV A=1\n', { resolver: withVersion, targetPlatform: { os: 'windows', architecture: 'amd64' } });
  assert.equal(same.image['os.version'], '10.0.20348.2227');
  const other = await convert('FROM --platform=windows/amd64 winbase\nENV A=1\n', { resolver: withVersion });
  assert.equal(other.image.os, 'linux');
  assert.equal(other.image['os.version'], undefined);
  await assert.rejects(convert('FROM --platform=windows(10.0/amd64 winbase\n', { resolver: withVersion }), /failed to parse platform windows\(10\.0\/amd64/);
});
