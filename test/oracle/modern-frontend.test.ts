// Scenarios of BuildKit's Dockerfile-frontend tests (frontend/dockerfile/dockerfile_test.go and friends:
// COPY --exclude/--link, heredocs, variable expansion, multi-stage copies, WORKDIR/USER, config
// instructions, ONBUILD, .dockerignore), written here as small Dockerfiles and built by both kiln and
// BuildKit v0.25; images and errors compared as in modern-images.
import { linkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { differentialSuite, type DiffCase } from './modern-harness.js';

const image = (name: string, dockerfile: string, extra: Partial<DiffCase> = {}): DiffCase => ({ name, dockerfile, kind: 'image', ...extra });
const fails = (name: string, dockerfile: string, error: string, extra: Partial<DiffCase> = {}): DiffCase => ({ name, dockerfile, kind: 'error', error, ...extra });
const lines = (...l: string[]): string => l.join('\n') + '\n';

differentialSuite([
  // COPY --exclude / --link
  image('COPY --exclude: ** patterns, a directory, several flags', 'FROM BUSYBOX\nCOPY --exclude=**/*.tmp --exclude=docs src /app/\n', {
    files: { 'src/a.go': 'a', 'src/x.tmp': 't', 'src/deep/er/y.tmp': 'y', 'src/deep/er/z.go': 'z', 'src/docs/readme': 'r' },
  }),
  image('COPY --exclude with wildcard sources', 'FROM BUSYBOX\nCOPY --exclude=b* *.txt /t/\n', { files: { 'a.txt': 'a', 'b.txt': 'b', 'bc.txt': 'c', 'd.md': 'd' } }),
  image('COPY --link --from a stage with --chown', lines('FROM BUSYBOX AS build', 'RUN mkdir /out && echo o > /out/f', 'FROM BUSYBOX', 'COPY --link --from=build --chown=1:2 /out /o')),
  image('COPY --link relative to WORKDIR, twice onto the same path', 'FROM BUSYBOX\nWORKDIR /w\nCOPY --link a .\nCOPY --link b ./a\n', { files: { a: 'a', b: 'b' } }),
  // heredocs
  image('heredoc COPY with --chmod and --chown, and into a WORKDIR', lines('FROM BUSYBOX', 'WORKDIR /etc/app', 'COPY --chmod=0755 --chown=7:8 <<EOT run.sh', '#!/bin/sh', 'echo run', 'EOT')),
  image('heredoc RUN with a shebang and variables from ENV', lines('FROM BUSYBOX', 'ENV WHO=env', 'RUN <<EOT', '#!/bin/sh', 'echo "$WHO" > /who', 'EOT')),
  image('heredoc: two heredocs feeding one RUN', lines('FROM BUSYBOX', 'RUN cat <<A > /a && cat <<B > /b', 'first', 'A', 'second', 'B')),
  image('heredoc: a COPY of several inline files to a directory', lines('FROM BUSYBOX', 'COPY <<one.txt <<two.txt /docs/', '1', 'one.txt', '2', 'two.txt')),
  // ARG / ENV expansion
  image('ARG/ENV: nested defaults, escaped dollars, several ARGs on one line', lines(
    'FROM BUSYBOX',
    'ARG A=1 B=2',
    'ENV N=${UNSET:-${A:-x}} E=a\\$b Q="$A-$B" R=\'$A\'',
    'RUN echo "$N $E $Q $R" > /vars',
  )),
  image('a global ARG is redeclared in a stage and overridden by --build-arg', lines('ARG V=global', 'FROM BUSYBOX', 'ARG V', 'RUN echo $V > /v', 'FROM BUSYBOX', 'ARG V=local', 'COPY --from=0 /v /v0', 'RUN echo $V > /v1'), { args: ['--build-arg', 'V=cli'] }),
  image('ENV PATH extended with $PATH reaches RUN', 'FROM BUSYBOX\nENV PATH=/custom/bin:$PATH\nRUN echo $PATH > /path\n'),
  fails('error: COPY --from does not expand variables', lines('ARG SRC=build', 'FROM BUSYBOX AS build', 'RUN echo b > /b', 'FROM BUSYBOX', 'ARG SRC', 'COPY --from=${SRC} /b /b'), 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround'),
  fails('error: ${VAR:?message} of an unset variable', 'FROM BUSYBOX\nENV X=${NOPE:?mustbeset}\n', 'mustbeset'),
  // multi-stage copies
  image('COPY --from a stage with --chown and --chmod together', lines('FROM BUSYBOX AS build', 'RUN mkdir -p /out/sub && echo o > /out/sub/f && chmod 600 /out/sub/f', 'FROM BUSYBOX', 'COPY --from=build --chown=10:20 --chmod=750 /out /o')),
  image('COPY --from a scratch stage and chained stages', lines('FROM scratch AS files', 'COPY a /a', 'FROM files AS more', 'COPY b /b', 'FROM BUSYBOX', 'COPY --from=more / /all/'), { files: { a: 'a', b: 'b' } }),
  image('COPY --from keeps hard links within one copy', lines('FROM BUSYBOX AS build', 'RUN mkdir /out && echo x > /out/one && ln /out/one /out/two', 'FROM BUSYBOX', 'COPY --from=build /out /o')),
  // WORKDIR / USER
  image('WORKDIR from ENV, an existing WORKDIR keeps its owner', lines('FROM BUSYBOX', 'ENV D=/data', 'USER nobody', 'WORKDIR $D/sub', 'WORKDIR /tmp', 'USER root')),
  image('USER name:group and RUN id', 'FROM BUSYBOX\nUSER nobody:root\nRUN id > /tmp/id\nUSER root\nRUN cp /tmp/id /id\n'),
  image('USER uid with no passwd entry: RUN id and WORKDIR owner', 'FROM BUSYBOX\nUSER 4321\nWORKDIR /home/x\nRUN id > /home/x/id\n'),
  // config instructions
  image('VOLUME JSON and variables, then RUN writes into the volume dir', lines('FROM BUSYBOX', 'ENV V=/vol', 'VOLUME ["$V", "/other"]', 'RUN mkdir -p /vol && echo in > /vol/f')),
  image('STOPSIGNAL from an ARG, and a realtime signal', 'FROM BUSYBOX AS a\nARG SIG=SIGUSR1\nSTOPSIGNAL $SIG\nFROM BUSYBOX\nSTOPSIGNAL SIGRTMIN+3\n'),
  image('ENTRYPOINT shell form with CMD exec form; CMD with a variable in JSON is literal', 'FROM BUSYBOX\nENTRYPOINT echo start\nCMD ["echo", "$HOME"]\n'),
  image('empty ENTRYPOINT and CMD JSON lists', 'FROM BUSYBOX AS a\nENTRYPOINT ["x"]\nCMD ["y"]\nFROM a\nENTRYPOINT []\nCMD []\n'),
  image('SHELL is inherited by a child stage and wraps its shell forms', lines('FROM BUSYBOX AS base', 'SHELL ["/bin/sh", "-xc"]', 'FROM base', 'RUN echo child > /c', 'ENTRYPOINT run it', 'CMD also')),
  image('LABEL: several keys over continuation lines, overriding an inherited label', lines('FROM BUSYBOX AS a', 'LABEL keep=1 over=old', 'FROM a', 'LABEL over=new \\', '  "spaced key"="spaced value" \\', '  empty=""')),
  image('MAINTAINER sets the author', 'FROM BUSYBOX\nMAINTAINER Jane Doe <jane@example.com>\n'),
  image('HEALTHCHECK with start period and start interval; EXPOSE duplicates', 'FROM BUSYBOX\nHEALTHCHECK --start-period=5s --start-interval=1s --retries=2 CMD ["true"]\nEXPOSE 80 80/tcp 90/udp 90/udp\n'),
  // ONBUILD
  image('ONBUILD COPY from the child\'s context', 'FROM BUSYBOX AS parent\nONBUILD COPY a /onbuild-a\nONBUILD RUN cat /onbuild-a > /copied\nFROM parent\n', { files: { a: 'a' } }),
  // .dockerignore
  image('.dockerignore: **, ?, leading slash, comments, exceptions', 'FROM BUSYBOX\nCOPY . /ctx/\n', {
    files: {
      '.dockerignore': '# a comment\n**/*.log\n!important.log\n/root.txt\nfile?.md\ndir/*/tmp\n',
      'a.log': 'a', 'important.log': 'i', 'sub/b.log': 'b', 'root.txt': 'r', 'sub/root.txt': 's', 'file1.md': '1', 'file10.md': '10',
      'dir/x/tmp': 't', 'dir/x/keep': 'k', 'dir/tmp': 'dt',
    },
  }),
  image('.dockerignore may list the Dockerfile and itself', 'FROM BUSYBOX\nCOPY . /ctx/\n', { files: { '.dockerignore': 'Dockerfile\n.dockerignore\n', a: 'a' } }),
  image('.dockerignore: an excluded directory with an exception two levels down', 'FROM BUSYBOX\nCOPY . /ctx/\n', {
    files: { '.dockerignore': 'build\n!build/sub/keep\n', 'build/out': 'o', 'build/sub/keep': 'k', 'build/sub/other': 'x', 'build/empty/x': 'e' },
  }),
  // COPY details
  image('COPY JSON form with spaces in names', 'FROM BUSYBOX\nCOPY ["a b.txt", "/dst dir/"]\n', { files: { 'a b.txt': 'ab' } }),
  image('COPY keeps hard links of the context', 'FROM BUSYBOX\nCOPY d /d\n', {
    files: { 'd/one': '1' },
    prepare: (ctx) => linkSync(join(ctx, 'd/one'), join(ctx, 'd/two')),
  }),
  image('COPY of an empty directory', 'FROM BUSYBOX\nCOPY empty /e\nCOPY empty /f/\n', { prepare: (ctx) => mkdirSync(join(ctx, 'empty')) }),
  image('ADD of a directory holding an archive does not unpack it', 'FROM BUSYBOX\nADD d /d\n', { files: { 'd/x.tar': 'not really a tar' } }),
  // RUN mounts
  image('RUN --mount=type=bind of the context by default, and cache mounts with uid/gid', lines(
    'FROM BUSYBOX',
    'RUN --mount=target=/ctx cat /ctx/a > /a',
    'RUN --mount=type=cache,id=c1,target=/cache,uid=1000,gid=1000,sharing=locked stat -c %u:%g /cache > /cache-owner',
  ), { files: { a: 'a' } }),
  image('RUN --mount=type=secret that is optional and missing', 'FROM BUSYBOX\nRUN --mount=type=secret,id=s (test -f /run/secrets/s && echo yes || echo no) > /had\n'),
  fails('error: ADD --checksum of a local file', 'FROM BUSYBOX\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 a /a\n', 'checksum requires HTTP(S) or Git sources', { files: { a: 'a' } }),
]);
