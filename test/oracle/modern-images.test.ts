// Images against BuildKit v0.25: the same Dockerfile built by both gives the same files (type, mode,
// owner, content, link target), the same config and history, and the same check warnings after the build.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { differentialSuite, type DiffCase } from './modern-harness.js';

const image = (name: string, dockerfile: string, extra: Partial<DiffCase> = {}): DiffCase => ({ name, dockerfile, kind: 'image', ...extra });

differentialSuite([
  image('COPY forms: files, directory contents, wildcards, --chown, octal --chmod, symlinks', [
    'FROM BUSYBOX',
    'ENV APP=/srv/app',
    'WORKDIR $APP',
    'COPY a.txt b.txt ./',
    'COPY dir /contents',
    'COPY dir/ /slash/',
    'COPY *.txt /glob/',
    'COPY --chown=nobody:nobody a.txt /owned/',
    'COPY --chown=1234:5678 dir /ids/',
    'COPY --chmod=0640 a.txt /modes/a',
    'COPY --chmod=751 dir /modes/dir',
    'COPY tool link /tools/',
  ].join('\n') + '\n', {
    files: { 'a.txt': 'A\n', 'b.txt': 'B\n', 'dir/one': '1\n', 'dir/sub/two': '2\n', tool: '#!/bin/sh\n' },
    prepare: (ctx) => {
      chmodSync(join(ctx, 'tool'), 0o4755);
      chmodSync(join(ctx, 'dir/sub'), 0o700);
      symlinkSync('tool', join(ctx, 'link'));
    },
  }),
  image('RUN changes across layers: deletions, replaced directories, modes, owners', [
    'FROM BUSYBOX',
    'RUN mkdir -p /data/keep /data/drop && echo k > /data/keep/k && echo d > /data/drop/d && chmod 0750 /data/keep',
    'RUN rm -rf /data/drop /bin/vi && rm -rf /data/keep && mkdir /data/keep && echo new > /data/keep/new',
    'RUN ln -s /data/keep/new /data/link && touch /data/empty && chown 42:43 /data/empty && chmod 4711 /data/empty',
  ].join('\n') + '\n'),
  image('multi-stage: COPY --from a stage and by index, with --chown and a wildcard', [
    'FROM BUSYBOX AS build',
    'RUN mkdir -p /out/bin && echo app > /out/bin/app && chmod 755 /out/bin/app && ln -s bin/app /out/run && echo c > /out/x.conf',
    'FROM BUSYBOX',
    'COPY --from=build /out /opt/app',
    'COPY --from=0 /out/run /opt/run-link',
    'COPY --from=build --chown=7:8 /out/*.conf /etc/app/',
  ].join('\n') + '\n'),
  image('ADD of a local archive is unpacked, a plain file is not', 'FROM BUSYBOX\nADD pkg.tar.gz /opt/pkg/\nADD plain.txt /opt/\n', {
    files: { 'plain.txt': 'p\n' },
    prepare: (ctx) => {
      const src = join(ctx, 'pkgsrc');
      mkdirSync(join(src, 'lib'), { recursive: true });
      writeFileSync(join(src, 'lib/x.so'), 'x', { mode: 0o644 });
      execFileSync('tar', ['-czf', join(ctx, 'pkg.tar.gz'), '--owner=7', '--group=8', '-C', src, 'lib']);
      rmSync(src, { recursive: true });
    },
  }),
  image('image config: ENV, ARG, LABEL, EXPOSE, VOLUME, HEALTHCHECK, STOPSIGNAL, SHELL, ENTRYPOINT, CMD, USER', [
    'FROM BUSYBOX',
    'ARG VERSION=1.2.3',
    'ENV A=1 B="two words" C=${VERSION}',
    'LABEL org.example.version=$VERSION maintainer="kiln team"',
    'EXPOSE 80 443/tcp 53/udp',
    'VOLUME ["/data", "/logs"]',
    'HEALTHCHECK --interval=30s --timeout=3s --retries=4 CMD wget -q -O- http://localhost/ || exit 1',
    'STOPSIGNAL SIGQUIT',
    'SHELL ["/bin/sh", "-e", "-c"]',
    'RUN echo $VERSION > /version',
    'USER nobody',
    'ENTRYPOINT ["/bin/echo"]',
    'CMD ["--help"]',
  ].join('\n') + '\n'),
  image('ENTRYPOINT drops the inherited CMD; CMD after it keeps', 'FROM BUSYBOX AS a\nCMD ["a"]\nFROM a AS b\nENTRYPOINT ["e"]\nFROM b\nCMD ["c"]\n'),
  image('variable forms: defaults, alternatives, prefix and suffix removal', [
    'FROM BUSYBOX',
    'ARG NAME=kiln-build.tar.gz',
    'ENV D=${UNSET:-fallback} P=${NAME:+set} S=${NAME%.tar.gz} R=${NAME#kiln-}',
    'RUN echo "$D $P $S $R" > /vars',
  ].join('\n') + '\n', { args: ['--build-arg', 'NAME=kiln-build.tar.gz'] }),
  image('build args reach RUN and its history as |N K=V', 'FROM BUSYBOX\nARG A=1\nARG B\nRUN echo $A$B > /ab\nARG C=3\nRUN echo $C > /c\n', { args: ['--build-arg', 'B=2'] }),
  image('heredocs: RUN and COPY', [
    'FROM BUSYBOX',
    'ARG WHO=world',
    'RUN <<EOT',
    'echo hello > /greeting',
    'chmod 600 /greeting',
    'EOT',
    'COPY <<EOT /etc/motd',
    'hello $WHO',
    'EOT',
    "COPY <<'EOT' /etc/raw",
    'hello $WHO',
    'EOT',
  ].join('\n') + '\n'),
  image('COPY --link and --exclude', 'FROM BUSYBOX\nCOPY --link dir /linked/\nCOPY --exclude=*.log --exclude=sub/skip dir /filtered/\n', {
    files: { 'dir/a.txt': 'a', 'dir/b.log': 'b', 'dir/sub/skip': 's', 'dir/sub/keep': 'k' },
  }),
  image('.dockerignore leaves files out of the context', 'FROM BUSYBOX\nCOPY . /ctx/\n', {
    files: { '.dockerignore': '*.secret\nbuild/\nlogs\n', 'a.txt': 'a', 'x.secret': 's', 'build/out': 'o', 'logs/x': 'l', 'sub/x.secret': 'n' },
  }),
  image('.dockerignore: a !exception re-includes a file inside an excluded directory', 'FROM BUSYBOX\nCOPY . /ctx/\n', {
    files: { '.dockerignore': 'build/\n!build/keep\n', 'build/out': 'o', 'build/keep': 'k' },
  }),
  image('WORKDIR is created, owned by USER; relative WORKDIR resolves', 'FROM BUSYBOX\nUSER 1000:1000\nWORKDIR /home/app\nWORKDIR sub\nUSER root\nWORKDIR /srv\n'),
  image('ONBUILD triggers run in the child stage', 'FROM BUSYBOX AS parent\nONBUILD RUN echo triggered > /onbuild\nONBUILD ENV FROM_ONBUILD=1\nFROM parent\nRUN cat /onbuild\n'),
  image('RUN --mount: bind from a stage, cache and tmpfs leave no trace', [
    'FROM BUSYBOX AS src',
    'RUN mkdir /out && echo data > /out/file',
    'FROM BUSYBOX',
    'RUN --mount=type=bind,from=src,source=/out,target=/mnt cp /mnt/file /copied',
    'RUN --mount=type=cache,target=/var/cache/x echo c > /var/cache/x/c && echo done > /done',
    'RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && ls /scratch > /listed',
  ].join('\n') + '\n'),
  image('a multi-line RUN keeps its continuation in history', 'FROM BUSYBOX\nRUN echo a \\\n  && echo b \\\n  > /ab\n'),
  image('build checks are listed after a build', 'FROM BUSYBOX as base\nMAINTAINER someone\nENV KEY value\nCMD echo hi\nWORKDIR rel\nEXPOSE 80/TCP\n'),
  image('a context with only a lowercase dockerfile', 'FROM BUSYBOX\nCOPY a /a\n', { dockerfileName: 'dockerfile', files: { a: 'lower' } }),
  image('ARG SOURCE_DATE_EPOCH in the Dockerfile does not set the epoch (BuildKit v0.25)', 'ARG SOURCE_DATE_EPOCH=1000000000\nFROM BUSYBOX\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH > /e\n', {
    extra: (peer, ours) => {
      for (const b of [peer, ours]) assert.notEqual(b.config!.created, '2001-09-09T01:46:40Z', 'created follows the build time, not the ARG default');
    },
  }),
  image('--build-arg SOURCE_DATE_EPOCH sets created and history times', 'FROM BUSYBOX\nRUN echo x > /x\nCOPY a /a\nENV E=1\n', {
    files: { a: 'a' },
    args: ['--build-arg', 'SOURCE_DATE_EPOCH=1000000000'],
    compareCreated: true,
  }),
  image('COPY of several sources to a path without a slash: each is copied in turn, the last one wins', 'FROM BUSYBOX\nCOPY a b /dst\n', { files: { a: 'a', b: 'b' } }),
  image('FROM --platform with an OS version is parsed', 'FROM --platform=windows(10.0.20348)/amd64 scratch\nCOPY f /f\n', { files: { f: 'f' } }),
  image('ARG scope: a global ARG is seen in a stage only when declared there again', 'ARG G=global\nFROM BUSYBOX\nRUN echo "[$G]" > /before\nARG G\nRUN echo "[$G]" > /after\n'),
  image('ENV: values see earlier ENV lines, not earlier pairs of the same line; quotes and escapes', [
    'FROM BUSYBOX',
    'ENV A=1',
    'ENV A=2 B=$A C="quoted $A" D=\'single $A\' E=esc\\ aped F=',
    'RUN env | grep -E "^[A-F]=" | sort > /env',
  ].join('\n') + '\n'),
  image('LABEL and EXPOSE with variables; VOLUME shell form; numeric STOPSIGNAL; HEALTHCHECK NONE', [
    'FROM BUSYBOX',
    'ARG PORT=8080',
    'LABEL "quoted key"="v 1" multi=a\\ b plain=$PORT',
    'EXPOSE $PORT ${PORT}/udp',
    'VOLUME /a /b',
    'STOPSIGNAL 9',
    'HEALTHCHECK NONE',
  ].join('\n') + '\n'),
  image('SHELL changes RUN and shell-form CMD; JSON-form RUN', 'FROM BUSYBOX\nSHELL ["/bin/sh", "-ec"]\nRUN echo $0 > /shell\nRUN ["/bin/sh", "-c", "echo json > /json"]\nCMD echo cmd\n'),
  image('COPY --chown with names from the image and ADD --chown/--chmod', 'FROM BUSYBOX\nCOPY --chown=nobody a /a\nCOPY --chown=nobody:nobody a /b\nADD --chown=10:20 --chmod=600 a /c\n', { files: { a: 'a' } }),
  image('COPY --chown=user:unknown-group keeps the user\'s primary group', 'FROM BUSYBOX\nCOPY --chown=nobody:no-such-group a /b\n', { files: { a: 'a' } }),
  image('COPY --from an image reference', 'FROM scratch\nCOPY --from=BUSYBOX /bin/busybox /bb\nCOPY --from=BUSYBOX /etc/passwd /etc/\n'),
  image('--target builds a middle stage', 'FROM BUSYBOX AS one\nRUN echo 1 > /one\nFROM one AS two\nRUN echo 2 > /two\nFROM two\nRUN echo 3 > /three\n', { args: ['--target', 'two'] }),
  image('heredocs: <<- strips tabs, several heredocs, quoted delimiter keeps variables', [
    'FROM BUSYBOX',
    'ENV X=expanded',
    'RUN <<-EOT',
    '\techo tabbed > /t',
    '\tEOT',
    'COPY <<A <<B /docs/',
    'a $X',
    'A',
    'b $X',
    'B',
    'RUN cat <<"EOT" > /q',
    'keep $X',
    'EOT',
  ].join('\n') + '\n'),
  image('scratch: COPY only, config of an image with no base', 'FROM scratch\nCOPY a /a\nENV K=v\nCMD ["/a"]\n', { files: { a: 'a' } }),
  image('ONBUILD instructions of the final image are kept in its config', 'FROM BUSYBOX\nONBUILD RUN echo child\nONBUILD COPY . /src\n'),
  image('the escape directive: backtick continuations, a backslash is literal', '# escape=`\nFROM BUSYBOX\nRUN echo a `\n  && echo "b\\\\c" > /ab\nCOPY a /c\n', { files: { a: 'x' } }),
  image('COPY to a file name, to a directory, dir contents with trailing /.', 'FROM BUSYBOX\nCOPY a /renamed\nCOPY a /dir/\nCOPY d/. /dcontents/\nCOPY d /dwhole\n', { files: { a: 'a', 'd/x': 'x', 'd/y/z': 'z' } }),
  image('RUN --network=none still runs; a relative WORKDIR of the base', 'FROM BUSYBOX\nWORKDIR /base\nFROM BUSYBOX\nRUN --network=none echo offline > /n\nWORKDIR rel\nRUN pwd > /pwd\n'),
  image('USER by name and uid:gid; id output of a RUN', 'FROM BUSYBOX\nUSER nobody\nRUN id > /tmp/id-nobody\nUSER 1234:5678\nRUN id > /tmp/id-num\nUSER root\nRUN id > /id-root && cp /tmp/id-* /\n'),
  image('COPY/ADD --chmod with symbolic modes (go-w, u=rw,g=r,o=r, a+X, g+s,o-rwx, go=u-w, +t, =rw …)', [
    'FROM BUSYBOX',
    'COPY --chmod=go-w a /x/a1',
    'COPY --chmod=u=rw,g=r,o=r a /x/a2',
    'COPY --chmod=a+X d /x/d',
    'ADD --chmod=g+s,o-rwx d /x/d2',
    'COPY --chmod=u+x,g-w d /x/d3',
    'COPY --chmod=u+x,a+X h /x/h-x-from-original',
    'COPY --chmod=go=u-w h /x/h-copy',
    'COPY --chmod=u=rwx,g=u,o= h /x/h-eq',
    'COPY --chmod=+t,o+t,u=s h /x/h-special',
    'COPY --chmod==rw h /x/h-all',
    'COPY --chmod=ug=rw-x+X d /x/d4/',
    'COPY --chmod=o+w --chown=5:6 d /p/q/r/',
    'COPY --chmod=a+X <<EOT /x/heredoc',
    'hi',
    'EOT',
  ].join('\n') + '\n', {
    files: { a: { content: 'a', mode: 0o777 }, h: { content: 'h', mode: 0o644 }, 'd/f': 'f', 'd/e/g': { content: 'g', mode: 0o750 } },
    prepare: (ctx) => {
      chmodSync(join(ctx, 'd/e'), 0o700);
      symlinkSync('f', join(ctx, 'd/l'));
    },
  }),
  { name: 'error: an invalid symbolic --chmod', kind: 'error', dockerfile: 'FROM BUSYBOX\nCOPY --chmod=x+u a /a\n', files: { a: 'a' }, error: 'invalid syntax' },
]);
