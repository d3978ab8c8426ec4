// The graph a Dockerfile converts to: ops, mounts, env, copy actions, dedup, unused stages, platforms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CopyAction, MkfileAction } from '../../solver/graph/ops.js';
import { ARM64, AMD64, DIGEST, convert, envMap, execOf, execs, fakeResolver, files, sources } from './helpers.js';

const BUSYBOX = `docker.io/library/busybox:latest@${DIGEST}`;

test('RUN: shell form through /bin/sh -c on the pinned base image, with the stage platform', async () => {
  const r = await convert('FROM busybox\nRUN echo hi\n', { targetPlatform: ARM64 });
  assert.deepEqual(sources(r.definition), [`docker-image://${BUSYBOX}`]);
  const run = execOf(r.definition, 'echo hi');
  assert.deepEqual(run.op.args, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(run.platform, ARM64);
  assert.equal(run.op.cwd, '/');
  assert.deepEqual(run.op.mounts, [{ input: 0, dest: '/', output: 0, type: 'bind' }]);
  assert.equal(run.meta.description, '[2/2] RUN echo hi');
  assert.deepEqual(run.meta.location, { file: 'Dockerfile', startLine: 2, endLine: 2 });
  assert.deepEqual(r.output, { digest: run.digest, output: 0 });
  assert.deepEqual(r.baseImage, { ref: BUSYBOX, digest: DIGEST });
});

test('RUN: exec form as is; SHELL changes the wrapper; USER and WORKDIR reach the exec', async () => {
  const r = await convert('FROM busybox\nRUN ["echo", "a b"]\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nUSER 1000:1000\nWORKDIR /w\nRUN make\n');
  assert.ok(execs(r.definition).some((e) => JSON.stringify(e.op.args) === JSON.stringify(['echo', 'a b'])));
  const make = execOf(r.definition, 'make');
  assert.deepEqual(make.op.args, ['/bin/bash', '-eo', 'pipefail', '-c', 'make']);
  assert.equal(make.op.user, '1000:1000');
  assert.equal(make.op.cwd, '/w');
  const mkdir = files(r.definition).find((f) => f.op.actions[0]!.type === 'mkdir')!;
  assert.deepEqual(mkdir.op.actions[0], { type: 'mkdir', path: '/w', mode: 0o755, makeParents: true, owner: { user: { id: 1000 }, group: { id: 1000 } } });
});

test('two stages sharing an identical first RUN share one vertex; unused stages are absent', async () => {
  const r = await convert(`FROM busybox AS a
RUN apk add make
RUN echo a > /a
FROM busybox AS b
RUN apk add make
RUN echo b > /b
FROM busybox AS unused
RUN exit 1
FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
`);
  assert.equal(execs(r.definition).filter((e) => e.op.args[2] === 'apk add make').length, 1);
  assert.equal(execs(r.definition).length, 3);
  assert.ok(!execs(r.definition).some((e) => e.op.args[2] === 'exit 1'));
  assert.deepEqual(r.stagesUsed, ['a', 'b', '3']);
  assert.equal(sources(r.definition).filter((s) => s.startsWith('docker-image://')).length, 1);
});

test('a stage that would fail to resolve is never resolved when the target does not need it', async () => {
  const resolver = fakeResolver();
  const r = await convert('FROM does-not-exist AS broken\nRUN x\nFROM busybox\nRUN y\n', { resolver });
  assert.deepEqual(resolver.calls, ['docker.io/library/busybox:latest']);
  assert.deepEqual(r.stagesUsed, ['1']);
});

test('ARG/ENV scoping: global ARG only in FROM unless redeclared; ENV shadows ARG; build args override defaults', async () => {
  const r = await convert(`ARG TAG=latest
ARG GLOBAL=g
FROM busybox:\${TAG}
RUN echo 1
ARG GLOBAL
ARG LOCAL=l
ARG OVER=default
RUN echo 2
ENV LOCAL=fromenv
RUN echo 3
`, { buildArgs: { OVER: 'cli', TAG: '1.36' } });
  assert.ok(sources(r.definition)[0]!.startsWith('docker-image://docker.io/library/busybox:1.36@'));
  const e1 = envMap(execOf(r.definition, 'echo 1').op.env);
  assert.equal(e1.GLOBAL, undefined);
  assert.equal(e1.TAG, undefined);
  const e2 = envMap(execOf(r.definition, 'echo 2').op.env);
  assert.deepEqual([e2.GLOBAL, e2.LOCAL, e2.OVER], ['g', 'l', 'cli']);
  const e3 = envMap(execOf(r.definition, 'echo 3').op.env);
  assert.equal(e3.LOCAL, 'fromenv');
  assert.deepEqual(r.image.config!.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LOCAL=fromenv']);
});

test('automatic platform ARGs for linux/arm64/v8: declared in the stage to be used, global by default', async () => {
  const r = await convert(`FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
ARG BUILDPLATFORM
ARG BUILDARCH
RUN echo build
FROM busybox
COPY --from=build /out /out
RUN echo final
`, { targetPlatform: ARM64, buildPlatform: AMD64 });
  const build = execOf(r.definition, 'echo build');
  assert.deepEqual(build.platform, AMD64);
  const env = envMap(build.op.env);
  assert.deepEqual([env.TARGETPLATFORM, env.TARGETOS, env.TARGETARCH, env.TARGETVARIANT, env.BUILDPLATFORM, env.BUILDARCH],
    ['linux/arm64/v8', 'linux', 'arm64', 'v8', 'linux/amd64', 'amd64']);
  const final = execOf(r.definition, 'echo final');
  assert.deepEqual(final.platform, ARM64);
  assert.equal(envMap(final.op.env).TARGETARCH, undefined);
  assert.deepEqual([r.image.os, r.image.architecture, r.image.variant], ['linux', 'arm64', 'v8']);
});

test('proxy build args reach RUN as proxyEnv without being declared, and stay out of env and history', async () => {
  const r = await convert('FROM busybox\nRUN wget x\n', { buildArgs: { HTTP_PROXY: 'http://127.0.0.1:3128' } });
  const run = execOf(r.definition, 'wget x');
  assert.deepEqual(run.op.proxyEnv, { HTTP_PROXY: 'http://127.0.0.1:3128' });
  assert.equal(envMap(run.op.env).HTTP_PROXY, undefined);
  assert.ok(!JSON.stringify(r.image.history).includes('3128'));
  assert.deepEqual(r.warnings, []);
});

test('unused build args give a warning', async () => {
  const r = await convert('FROM busybox\nARG USED\nRUN true\n', { buildArgs: { USED: '1', TYPO: '2', ALSO: '3' } });
  assert.deepEqual(r.warnings, [{ message: 'one or more build-args [ALSO TYPO] were not consumed' }]);
});

test('RUN --mount: bind from stage/context, cache with defaults, tmpfs, secret, ssh; network and security', async () => {
  const r = await convert(`FROM busybox AS deps
RUN echo deps
FROM busybox
WORKDIR /src
RUN --mount=type=bind,from=deps,source=/etc,target=/deps \\
    --mount=target=ctx \\
    --mount=type=cache,target=/root/.cache,sharing=locked \\
    --mount=type=cache,id=go,target=/go,uid=1000,mode=0700 \\
    --mount=type=tmpfs,target=/tmp,size=64m \\
    --mount=type=secret,id=tok,required \\
    --mount=type=secret,id=aws,env=AWS_KEY \\
    --mount=type=ssh \\
    --network=none --security=insecure make
`);
  const run = execOf(r.definition, 'make');
  const [root, bind, ctxMount, cache, cacheOwned, tmpfs, secret, secretEnv, ssh] = run.op.mounts;
  const input = (i: number) => run.inputs[i]!.digest;
  assert.equal(root!.dest, '/');
  assert.equal(input(bind!.input), execOf(r.definition, 'echo deps').digest);
  assert.deepEqual({ ...bind, input: 0 }, { input: 0, dest: '/deps', selector: '/etc', readonly: true, output: -1, type: 'bind' });
  assert.equal(r.definition.vertices.find((v) => v.digest === input(ctxMount!.input))!.op.kind, 'source');
  assert.deepEqual({ ...ctxMount, input: 0 }, { input: 0, dest: '/src/ctx', readonly: true, output: -1, type: 'bind' });
  assert.deepEqual(cache, { input: -1, dest: '/root/.cache', output: -1, type: 'cache', cache: { id: '/root/.cache', sharing: 'locked' } });
  assert.equal(cacheOwned!.cache!.id, 'go');
  assert.equal(cacheOwned!.selector, '/cache');
  const prep = r.definition.vertices.find((v) => v.digest === input(cacheOwned!.input))!;
  assert.deepEqual(prep.op, { kind: 'file', base: -1, actions: [{ type: 'mkdir', path: '/cache', mode: 0o700, makeParents: false, owner: { user: { id: 1000 }, group: { id: 0 } } }] });
  assert.deepEqual(tmpfs, { input: -1, dest: '/tmp', output: -1, type: 'tmpfs', tmpfs: { size: 64 * 1024 * 1024 } });
  assert.deepEqual(secret, { input: -1, dest: '/run/secrets/tok', output: -1, type: 'secret', secret: { id: 'tok', uid: 0, gid: 0, mode: 0o400, optional: false, env: undefined } });
  assert.equal(secretEnv!.secret!.env, 'AWS_KEY');
  assert.equal(secretEnv!.dest, '');
  assert.equal(secretEnv!.secret!.optional, true);
  assert.deepEqual(ssh, { input: -1, dest: '/run/buildkit/ssh_agent.0', output: -1, type: 'ssh', ssh: { id: 'default', uid: 0, gid: 0, mode: 0o600, optional: true } });
  assert.equal(run.op.network, 'none');
  assert.equal(run.op.security, 'insecure');
});

test('COPY: context source with dockerignore excludes, dest relative to WORKDIR, --chown names kept, --chmod octal', async () => {
  const r = await convert('FROM busybox\nWORKDIR /app\nCOPY --chown=app:staff --chmod=0640 --exclude=*.md src/ ./\nCOPY a.txt b.txt /dst/\nADD pkg.tar.gz /opt/\n', { dockerignorePatterns: ['.git', 'node_modules'] });
  const ctx = r.definition.vertices.find((v) => v.op.kind === 'source' && v.op.identifier === 'local://context')!;
  assert.deepEqual(ctx.op, { kind: 'source', identifier: 'local://context', attrs: { excludepatterns: '[".git","node_modules"]' } });
  const copies = files(r.definition).filter((f) => f.op.actions[0]!.type === 'copy');
  const a = copies[0]!.op.actions[0] as CopyAction;
  assert.equal(copies[0]!.inputs[a.src]!.digest, ctx.digest);
  assert.deepEqual(a, {
    type: 'copy', src: 1, srcPath: '/src', destPath: '/app/', createDestPath: true, owner: { user: { name: 'app' }, group: { name: 'staff' } }, mode: 0o640,
    excludePatterns: ['*.md'], followSymlink: true, dirCopyContents: true, allowWildcard: true, allowEmptyWildcard: true,
  });
  assert.deepEqual(copies[1]!.op.actions.map((x) => [(x as CopyAction).srcPath, (x as CopyAction).destPath]), [['/a.txt', '/dst/'], ['/b.txt', '/dst/']]);
  assert.equal((copies[2]!.op.actions[0] as CopyAction).attemptUnpackDockerCompatibility, true);
  assert.equal((copies[0]!.op.actions[0] as CopyAction).attemptUnpackDockerCompatibility, undefined);
});

test('COPY --from: stage by name and index, image ref resolved for the stage platform', async () => {
  const resolver = fakeResolver();
  const r = await convert('FROM busybox AS one\nRUN echo one\nFROM scratch\nCOPY --from=one /x /x\nCOPY --from=0 /y /y\nCOPY --from=alpine:3 /z /z\n', { resolver, targetPlatform: ARM64 });
  assert.ok(resolver.calls.includes('docker.io/library/alpine:3'));
  const [c1, c2, c3] = files(r.definition);
  const one = execOf(r.definition, 'echo one').digest;
  assert.equal(c1!.op.base, -1);
  assert.equal(c1!.inputs[(c1!.op.actions[0] as CopyAction).src]!.digest, one);
  assert.equal(c2!.inputs[(c2!.op.actions[0] as CopyAction).src]!.digest, one);
  const alpine = r.definition.vertices.find((v) => v.op.kind === 'source' && v.op.identifier.includes('alpine'))!;
  assert.deepEqual(alpine.platform, ARM64);
  assert.equal(c3!.inputs[(c3!.op.actions[0] as CopyAction).src]!.digest, alpine.digest);
  assert.equal(r.baseImage, undefined);
});

test('COPY --link copies into scratch and merges onto the stage', async () => {
  const r = await convert('FROM busybox\nCOPY --link a /a\n');
  const merge = r.definition.vertices.find((v) => v.op.kind === 'merge')!;
  const [lower, layer] = merge.inputs;
  assert.equal(r.definition.vertices.find((v) => v.digest === lower!.digest)!.op.kind, 'source');
  const copy = r.definition.vertices.find((v) => v.digest === layer!.digest)!;
  assert.equal(copy.op.kind === 'file' && copy.op.base, -1);
  assert.equal(merge.meta.description, '[2/2] LINK COPY --link a /a');
  assert.equal(copy.meta.description, '[2/2] COPY --link a /a');
  assert.deepEqual(r.output, { digest: merge.digest, output: 0 });
});

test('COPY --parents keeps the path after the /./ pivot as an include pattern', async () => {
  const r = await convert('FROM busybox\nCOPY --parents src/./pkg/**/*.go /out/\n');
  const a = files(r.definition)[0]!.op.actions[0] as CopyAction;
  assert.equal(a.srcPath, '/src');
  assert.deepEqual(a.includePatterns, ['pkg/**/*.go']);
});

test('ADD URL: http source with checksum and file name, not unpacked', async () => {
  const sum = 'sha256:' + 'c'.repeat(64);
  const r = await convert(`FROM busybox\nADD --checksum=${sum} https://127.0.0.1/dl/tool.tar.gz?x=1 /opt/\n`);
  const http = r.definition.vertices.find((v) => v.op.kind === 'source' && v.op.identifier.startsWith('https://'))!;
  assert.deepEqual(http.op, { kind: 'source', identifier: 'https://127.0.0.1/dl/tool.tar.gz?x=1', attrs: { filename: 'tool.tar.gz', checksum: sum } });
  const a = files(r.definition)[0]!.op.actions[0] as CopyAction;
  assert.deepEqual([a.srcPath, a.destPath, a.attemptUnpackDockerCompatibility], ['tool.tar.gz', '/opt/', undefined]);
});

test('heredocs: COPY <<EOF makes a file in scratch (expanded), RUN <<EOF runs the body, shebang runs a script', async () => {
  const r = await convert(`FROM busybox
ARG NAME=world
COPY <<EOF /greeting
hello \${NAME}
EOF
RUN <<EOF
echo one
echo two
EOF
RUN <<EOF
#!/bin/sh
echo script
EOF
`);
  const mkfiles = files(r.definition).filter((f) => f.op.actions[0]!.type === 'mkfile').map((f) => f.op.actions[0] as MkfileAction);
  assert.equal(Buffer.from(mkfiles[0]!.data, 'base64').toString(), 'hello world\n');
  assert.equal(mkfiles[0]!.mode, 0o644);
  assert.equal(mkfiles[1]!.path, '/EOF');
  assert.equal(mkfiles[1]!.mode, 0o755);
  execOf(r.definition, 'echo one\necho two\n');
  const script = execOf(r.definition, '/dev/pipes/EOF');
  assert.deepEqual(script.op.mounts[1], { input: 1, dest: '/dev/pipes/', selector: '/', readonly: true, output: -1, type: 'bind' });
  assert.equal(script.meta.description, '[4/4] RUN <<EOF (#!/bin/sh...)');
});

test('ONBUILD triggers of the base image run first in the stage and are cleared from the config', async () => {
  const resolver = fakeResolver({ 'docker.io/library/onbase:latest': { OnBuild: ['RUN echo triggered', 'COPY --from=helper /h /h'] } });
  const r = await convert('FROM busybox AS helper\nRUN echo help\nFROM onbase\nRUN echo after\nONBUILD RUN echo mine\n', { resolver });
  const triggered = execOf(r.definition, 'echo triggered');
  assert.match(triggered.meta.description!, /ONBUILD RUN echo triggered/);
  const after = execOf(r.definition, 'echo after');
  const copy = files(r.definition).find((f) => (f.op.actions[0] as CopyAction).srcPath === '/h')!;
  assert.equal(after.inputs[0]!.digest, copy.digest);
  assert.equal(copy.inputs[0]!.digest, triggered.digest);
  assert.deepEqual(r.image.config!.OnBuild, ['RUN echo mine']);
});

test('ONBUILD of a base stage runs in the child stage', async () => {
  const r = await convert('FROM busybox AS base\nONBUILD RUN echo child-only\nRUN echo base\nFROM base\nRUN echo child\n');
  const trig = execOf(r.definition, 'echo child-only');
  assert.equal(trig.inputs[0]!.digest, execOf(r.definition, 'echo base').digest);
  assert.equal(execOf(r.definition, 'echo child').inputs[0]!.digest, trig.digest);
});

test('noCache and noCacheFilter mark vertices to ignore the cache', async () => {
  const df = 'FROM busybox AS a\nRUN echo a\nFROM busybox\nCOPY --from=a /a /a\nRUN echo b\n';
  const all = await convert(df, { noCache: true });
  assert.ok(all.definition.vertices.every((v) => v.meta.ignoreCache === true));
  const some = await convert(df, { noCacheFilter: ['a'] });
  assert.equal(execOf(some.definition, 'echo a').meta.ignoreCache, true);
  assert.equal(execOf(some.definition, 'echo b').meta.ignoreCache, undefined);
});

test('named build contexts replace images and stages', async () => {
  const r = await convert('FROM busybox AS base\nRUN echo replaced\nFROM base\nCOPY --from=assets / /assets\n', {
    namedContexts: { base: { kind: 'image', ref: 'alpine:3.20' }, assets: { kind: 'local', name: 'assets' } },
  });
  assert.ok(!execs(r.definition).some((e) => e.op.args[2] === 'echo replaced'));
  assert.ok(sources(r.definition).includes(`docker-image://docker.io/library/alpine:3.20@${DIGEST}`));
  assert.ok(sources(r.definition).includes('local://assets'));
});

test('same Dockerfile converts to the same digests twice', async () => {
  const df = 'FROM busybox\nARG X=1\nRUN echo $X\nCOPY . /src\n';
  const [a, b] = await Promise.all([convert(df), convert(df)]);
  assert.deepEqual(a.definition.vertices.map((v) => v.digest), b.definition.vertices.map((v) => v.digest));
});

test('a scratch-only target has no output', async () => {
  const r = await convert('FROM scratch\nENV A=b\nCMD ["x"]\n');
  assert.equal(r.output, null);
  assert.deepEqual(r.definition.vertices, []);
  assert.deepEqual(r.image.config!.Cmd, ['x']);
});
