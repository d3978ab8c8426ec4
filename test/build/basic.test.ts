// `kiln build` end to end: a Dockerfile using the common instructions builds into the local store, the
// image runs with `kiln run`, and its config and history are what BuildKit writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { kilnBuild, errorLine } from '../helpers/build.js';

const suite = buildSuite();

test('a single-stage Dockerfile builds, runs, and has the config BuildKit writes', () => {
  const r = kilnBuild(suite.root, {
    Dockerfile: [
      `FROM ${suite.base}`,
      'ARG GREETING=hello',
      'ENV APP_HOME=/app LANG=C.UTF-8',
      'WORKDIR $APP_HOME',
      'COPY greet.sh ./',
      'RUN chmod 0755 greet.sh && echo "$GREETING from RUN" > built.txt',
      'LABEL org.example.kind=test maintainer="kiln"',
      'EXPOSE 8080/tcp 53/udp',
      'VOLUME /data',
      'USER nobody',
      'STOPSIGNAL SIGTERM',
      'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
      'ENTRYPOINT ["/app/greet.sh"]',
      'CMD ["world"]',
    ].join('\n'),
    'greet.sh': '#!/bin/sh\necho "hi $1 from $(cat /app/built.txt) as $(id -u) in $(pwd)"\n',
  }, ['-t', 'kiln-test/basic:1']);
  assert.equal(r.status, 0, r.stderr);
  const cfg = r.config!.config!;
  assert.deepEqual(cfg.Entrypoint, ['/app/greet.sh']);
  assert.deepEqual(cfg.Cmd, ['world']);
  assert.equal(cfg.WorkingDir, '/app');
  assert.equal(cfg.User, 'nobody');
  assert.equal(cfg.StopSignal, 'SIGTERM');
  assert.deepEqual(cfg.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
  assert.deepEqual(cfg.Volumes, { '/data': {} });
  assert.deepEqual(cfg.Labels, { 'org.example.kind': 'test', maintainer: 'kiln' });
  assert.deepEqual(cfg.Healthcheck, { Test: ['CMD', 'true'], Interval: 5_000_000_000, Retries: 2 });
  assert.ok(cfg.Env.includes('APP_HOME=/app') && cfg.Env.includes('LANG=C.UTF-8'), cfg.Env.join(' '));
  assert.ok(!cfg.Env.some((e: string) => e.startsWith('GREETING=')), 'ARG values are not image env');
  // One layer for the base, then WORKDIR, COPY and RUN make layers; the rest are empty_layer entries.
  const history = r.config!.history!;
  const layered = history.filter((h) => !h.empty_layer);
  assert.equal(layered.length, r.config!.rootfs!.diff_ids.length);
  assert.equal(r.config!.rootfs!.diff_ids.length, 4);
  assert.match(history.find((h) => h.created_by?.startsWith('RUN'))!.created_by, /^RUN \|1 GREETING=hello \/bin\/sh -c chmod 0755 greet\.sh && echo "\$GREETING from RUN" > built\.txt # buildkit$/);
  assert.equal(history.find((h) => h.created_by?.startsWith('ENV'))!.empty_layer, true);

  const run = kiln(suite.root, ['run', '--rm', 'kiln-test/basic:1']);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'hi world from hello from RUN as 65534 in /app\n');
  const over = kiln(suite.root, ['run', '--rm', 'kiln-test/basic:1', 'there']);
  assert.equal(over.stdout, 'hi there from hello from RUN as 65534 in /app\n');
});

test('a failing RUN names the Dockerfile line and the exit code', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN echo about to fail\nRUN echo failing >&2; exit 3\n` });
  assert.notEqual(r.status, 0);
  assert.equal(errorLine(r), 'kiln: Dockerfile:3: process "/bin/sh -c echo failing >&2; exit 3" did not complete successfully: exit code: 3');
  assert.match(r.stderr, /failing/);
});
