// Differential tests against the reference: the same Dockerfiles built by kiln and by BuildKit (in
// Debian's dockerd) must give the same file tree (type, permission bits, owner, content, link targets)
// and the same image config. The Dockerfiles stay within what that BuildKit (v0.8) supports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { writeContext, type ContextFiles } from '../helpers/build.js';
import { startOracle, oracleBuild, unpackArchive, fileTree } from '../helpers/oracle.js';

let reg: TestRegistry;
let oracle: { stop(): Promise<void> };
let root: string;
let work: string;

before(async () => {
  reg = await startRegistry();
  pushBusybox(reg, 'library/busybox', 'latest');
  oracle = await startOracle();
  root = tempRoot();
  work = mkdtempSync(join(tmpdir(), 'kiln-diff-'));
});
after(async () => {
  await reg?.stop();
  await oracle?.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];

/**
 * A history entry as compared. kiln writes created_by as current BuildKit does; the oracle's v0.8 differs
 * in three formats that changed since: COPY/ADD lines now keep their flags (`COPY --chown=… a /b`),
 * EXPOSE prints a list (`EXPOSE [80/tcp]`, was `map[80/tcp:{}]`), HEALTHCHECK prints the struct with field
 * names. Those are compared by instruction only; everything else must match exactly.
 */
function historyLine(h: { created_by?: string; empty_layer?: boolean }): [string, boolean] {
  let line = h.created_by ?? '';
  line = line.replace(/^(COPY|ADD)( --[a-z]+=\S+)+ /, '$1 ');
  if (/^(EXPOSE|HEALTHCHECK) /.test(line)) line = line.split(' ')[0]!;
  return [line, !!h.empty_layer];
}

let n = 0;
function compare(name: string, dockerfile: string, files: ContextFiles, prepare?: (ctx: string) => void) {
  const context = writeContext({ Dockerfile: `ARG BASE\n${dockerfile}`, ...files });
  prepare?.(context);
  const dir = join(work, `case-${n++}`);
  mkdirSync(join(dir, 'oracle'), { recursive: true });
  mkdirSync(join(dir, 'kiln'), { recursive: true });
  const archive = oracleBuild(context, `kiln-oracle/${name}`, dir);
  const ref = unpackArchive(`docker-archive:${archive}`, join(dir, 'oracle'));
  const ours = join(dir, 'kiln.tar');
  const r = kiln(root, ['build', '--progress', 'plain', '--build-arg', `BASE=${reg.host}/library/busybox:latest`, '-o', `type=oci,dest=${ours}`, context]);
  assert.equal(r.status, 0, r.stderr);
  const got = unpackArchive(`oci-archive:${ours}`, join(dir, 'kiln'));
  const want = fileTree(ref.rootfs);
  const have = fileTree(got.rootfs);
  const diffs: string[] = [];
  for (const [p, e] of want) {
    const h = have.get(p);
    if (!h) diffs.push(`missing in kiln: ${p} ${JSON.stringify(e)}`);
    else if (JSON.stringify(h) !== JSON.stringify(e)) diffs.push(`differs: ${p} buildkit=${JSON.stringify(e)} kiln=${JSON.stringify(h)}`);
  }
  for (const p of have.keys()) if (!want.has(p)) diffs.push(`only in kiln: ${p}`);
  assert.deepEqual(diffs, [], `file trees differ for ${name}`);
  for (const k of CONFIG_KEYS) assert.deepEqual(got.config.config?.[k] ?? null, ref.config.config?.[k] ?? null, `config ${k}`);
  assert.equal(got.config.rootfs.diff_ids.length, ref.config.rootfs.diff_ids.length, 'layer count');
  assert.deepEqual(got.config.history.map(historyLine), ref.config.history.map(historyLine), 'history');
}

test('COPY forms, WORKDIR, USER and --chown', () =>
  compare(
    'copy',
    [
      'FROM ${BASE}',
      'ENV APP=/srv/app',
      'WORKDIR $APP',
      'COPY a.txt b.txt ./',
      'COPY dir /contents',
      'COPY dir/ /slash/',
      'COPY *.txt /glob/',
      'COPY --chown=nobody:nobody a.txt /owned/',
      'COPY --chown=1234:5678 dir /ids/',
      'COPY tool link /tools/',
      'USER nobody',
      'WORKDIR /home/nobody-work',
    ].join('\n'),
    { 'a.txt': 'A\n', 'b.txt': 'B\n', 'dir/one': '1\n', 'dir/sub/two': '2\n', tool: '#!/bin/sh\n' },
    (ctx) => {
      chmodSync(join(ctx, 'tool'), 0o4755);
      chmodSync(join(ctx, 'dir/sub'), 0o700);
      symlinkSync('tool', join(ctx, 'link'));
    },
  ));

test('RUN changes across layers: deletions, replaced directories, modes', () =>
  compare(
    'run',
    [
      'FROM ${BASE}',
      'RUN mkdir -p /data/keep /data/drop && echo k > /data/keep/k && echo d > /data/drop/d && chmod 0750 /data/keep',
      'RUN rm -rf /data/drop /bin/vi && rm -rf /data/keep && mkdir /data/keep && echo new > /data/keep/new',
      'RUN ln -s /data/keep/new /data/link && touch /data/empty && chown 42:43 /data/empty && chmod 4711 /data/empty',
    ].join('\n'),
    {},
  ));

test('multi-stage: COPY --from a stage, ADD of a local archive', () =>
  compare(
    'stages',
    [
      'FROM ${BASE} AS build',
      'RUN mkdir -p /out/bin && echo app > /out/bin/app && chmod 755 /out/bin/app && ln -s bin/app /out/run',
      'FROM ${BASE}',
      'COPY --from=build /out /opt/app',
      'COPY --from=build /out/run /opt/run-link',
      'ADD pkg.tar.gz /opt/pkg/',
    ].join('\n'),
    {},
    (ctx) => {
      const src = join(ctx, 'pkgsrc');
      mkdirSync(join(src, 'lib'), { recursive: true });
      writeFileSync(join(src, 'lib/x.so'), 'x', { mode: 0o644 });
      execFileSync('tar', ['-czf', join(ctx, 'pkg.tar.gz'), '--owner=7', '--group=8', '-C', src, 'lib']);
      rmSync(src, { recursive: true });
    },
  ));

test('image config: ENV, ARG, LABEL, EXPOSE, VOLUME, ENTRYPOINT/CMD, HEALTHCHECK, STOPSIGNAL, SHELL', () =>
  compare(
    'config',
    [
      'FROM ${BASE}',
      'ARG VERSION=1.2.3',
      'ENV A=1 B="two words" C=${VERSION}',
      'LABEL org.example.version=$VERSION maintainer="kiln team"',
      'EXPOSE 80 443/tcp 53/udp',
      'VOLUME ["/data", "/logs"]',
      'HEALTHCHECK --interval=30s --timeout=3s --retries=4 CMD wget -q -O- http://localhost/ || exit 1',
      'STOPSIGNAL SIGQUIT',
      'SHELL ["/bin/sh", "-e", "-c"]',
      'RUN echo $VERSION > /version',
      'ENTRYPOINT echo started',
      'CMD ["--help"]',
    ].join('\n'),
    {},
  ));
