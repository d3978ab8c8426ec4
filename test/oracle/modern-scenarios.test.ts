// More of BuildKit's Dockerfile-frontend test scenarios (frontend/dockerfile/dockerfile_test.go), written
// as small Dockerfiles here and built by both kiln and BuildKit v0.25; images compared as in modern-images.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { differentialSuite, type DiffCase } from './modern-harness.js';

const image = (name: string, dockerfile: string, extra: Partial<DiffCase> = {}): DiffCase => ({ name, dockerfile, kind: 'image', ...extra });

differentialSuite([
  image('empty destination dir: COPY into an existing empty dir', 'FROM BUSYBOX\nRUN mkdir /empty\nCOPY a /empty/\n', { files: { a: 'a' } }),
  image('COPY of a single file to a dir path without slash that exists', 'FROM BUSYBOX\nRUN mkdir /exists\nCOPY a /exists\n', { files: { a: 'a' } }),
  image('COPY wildcards: several matches, character classes, nested', 'FROM BUSYBOX\nCOPY *.go /src/\nCOPY [ab].txt /ab/\nCOPY sub/*/x /nested/\n', {
    files: { 'a.go': 'a', 'b.go': 'b', 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'sub/one/x': '1', 'sub/two/x': '2' },
  }),
  image('COPY of a wildcard that matches nothing next to one that does', 'FROM BUSYBOX\nCOPY nothing* a /dst/\n', { files: { a: 'a' } }),
  image('COPY through a symlink in the context is copied as the link', 'FROM BUSYBOX\nCOPY dir /d\nCOPY link-to-file /lf\n', {
    files: { 'dir/real': 'r', target: 't' },
    prepare: (ctx) => {
      symlinkSync('real', join(ctx, 'dir/link'));
      symlinkSync('target', join(ctx, 'link-to-file'));
    },
  }),
  image('COPY relative destination follows WORKDIR', 'FROM BUSYBOX\nWORKDIR /w\nCOPY a .\nCOPY a rel/\nCOPY a ./named\nWORKDIR sub\nCOPY a ../up\n', { files: { a: 'a' } }),
  image('COPY --chown creates the destination path with that owner', 'FROM BUSYBOX\nCOPY --chown=1000:1000 a /new/deep/dir/\nCOPY --chown=1000 a /new2/file\n', { files: { a: 'a' } }),
  image('COPY --chown from variables', 'FROM BUSYBOX\nARG U=1001\nENV G=1002\nCOPY --chown=$U:$G a /a\nADD --chown=${U}:${G} a /b\n', { files: { a: 'a' } }),
  image('COPY overrides files of lower layers and of earlier COPYs', 'FROM BUSYBOX\nRUN echo old > /f && mkdir /d && echo old > /d/x\nCOPY f /f\nCOPY d /d\nCOPY f2 /f\n', { files: { f: 'new', f2: 'newer', 'd/x': 'new', 'd/y': 'y' } }),
  image('COPY --from a stage uses absolute paths, not that stage\'s WORKDIR', 'FROM BUSYBOX AS b\nWORKDIR /work\nRUN echo w > file\nFROM BUSYBOX\nCOPY --from=b /work/file /from-abs\nCOPY --from=b work/file /from-rel\n'),
  image('WORKDIR creates the directory; a later RUN sees it', 'FROM BUSYBOX\nWORKDIR /a/b/c\nRUN pwd > here\nWORKDIR /a\nRUN ls > list\n'),
  image('WORKDIR with USER: created owned by that user', 'FROM BUSYBOX\nUSER daemon\nWORKDIR /owned/by/daemon\nUSER root\n'),
  image('ENV with an empty value and spacing', 'FROM BUSYBOX\nENV EMPTY= SPACED="a  b" TAB="x\ty"\nENV   PADDED=1\n'),
  image('implicit FROM of an earlier stage declared with capitals', 'FROM BUSYBOX AS Base\nRUN echo base > /b\nFROM base AS mid\nRUN echo mid > /m\nFROM mid\nRUN echo top > /t\n'),
  { name: 'FROM names a stage only as the lower-case name: FROM MID is an image', kind: 'error', dockerfile: 'FROM BUSYBOX AS mid\nFROM MID\n', error: 'failed to parse stage name "MID": invalid reference format: repository name (library/MID) must be lowercase' },
  image('variable substitution in COPY sources and destination', 'FROM BUSYBOX\nARG SRC=a\nENV DST=/dest\nCOPY $SRC ${DST}/\nCOPY ${SRC:-none} $DST/second\n', { files: { a: 'a' } }),
  image('shell-form CMD and ENTRYPOINT wrap in the SHELL', 'FROM BUSYBOX\nSHELL ["/bin/ash", "-c"]\nENTRYPOINT exec top\nCMD run "quoted"\n'),
  image('automatic platform ARGs are available when declared', 'FROM BUSYBOX\nARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG BUILDPLATFORM\nRUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDPLATFORM" > /platform\n'),
  image('automatic platform ARGs in global scope for FROM', 'ARG TARGETARCH\nFROM BUSYBOX AS build-amd64\nRUN echo $TARGETARCH > /arch\nFROM build-$TARGETARCH\n'),
  { name: 'a stage name cannot hold a variable', kind: 'error', dockerfile: 'ARG TARGETARCH\nFROM BUSYBOX AS build-$TARGETARCH\n', error: 'invalid name for build stage: "build-$TARGETARCH", name can\'t start with a number or contain symbols' },
  image('labels from --label are added to the image', 'FROM BUSYBOX\nLABEL in.file=1\n', { args: ['--label', 'from.cli=2', '--label', 'in.file=overridden'] }),
  image('ADD of a tar with symlinks, hardlinks and directories', 'FROM BUSYBOX\nADD t.tar /x/\n', {
    prepare: (ctx) => {
      const src = join(ctx, 'tsrc');
      mkdirSync(join(src, 'd/e'), { recursive: true });
      writeFileSync(join(src, 'd/f'), 'f');
      symlinkSync('f', join(src, 'd/l'));
      linkSync(join(src, 'd/f'), join(src, 'd/h'));
      execFileSync('tar', ['-cf', join(ctx, 't.tar'), '-C', src, 'd']);
      rmSync(src, { recursive: true });
    },
  }),
  image('ADD of an xz archive and of a plain .gz file name', 'FROM BUSYBOX\nADD t.tar.xz /xz/\n', {
    prepare: (ctx) => {
      const src = join(ctx, 'xsrc');
      mkdirSync(src);
      writeFileSync(join(src, 'x'), 'x');
      execFileSync('tar', ['-cJf', join(ctx, 't.tar.xz'), '-C', src, 'x']);
      rmSync(src, { recursive: true });
    },
  }),
  image('ADD --unpack=false keeps an archive as a file', 'FROM BUSYBOX\nADD --unpack=false t.tar /keep/\n', {
    prepare: (ctx) => {
      writeFileSync(join(ctx, 'x'), 'x');
      execFileSync('tar', ['-cf', join(ctx, 't.tar'), '-C', ctx, 'x']);
    },
  }),
  image('COPY of an archive is not unpacked', 'FROM BUSYBOX\nCOPY t.tar /t.tar\n', {
    prepare: (ctx) => {
      writeFileSync(join(ctx, 'x'), 'x');
      execFileSync('tar', ['-cf', join(ctx, 't.tar'), '-C', ctx, 'x']);
    },
  }),
  image('RUN with a heredoc to a non-default shell and file descriptors', 'FROM BUSYBOX\nRUN <<EOT sh\necho one > /one\nEOT\nRUN cat <<EOT > /two\ntwo\nEOT\n'),
  image('a deleted file is whited out in the next layer', 'FROM BUSYBOX\nRUN echo x > /gone && mkdir -p /dir/sub && echo y > /dir/sub/f\nRUN rm /gone && rm -r /dir/sub\n'),
  image('COPY --link onto a base, then RUN over it', 'FROM BUSYBOX\nCOPY --link a /linked/a\nRUN cat /linked/a > /read\n', { files: { a: 'a' } }),
  image('long RUN history lines are kept whole', `FROM BUSYBOX\nRUN echo ${'x'.repeat(300)} > /long\n`),
  image('ARG default referencing another ARG and ENV', 'FROM BUSYBOX\nENV E=env\nARG A=a\nARG B=${A}-${E}\nRUN echo $B > /b\n'),
  image('ENV overrides an ARG of the same name', 'FROM BUSYBOX\nARG V=arg\nENV V=env\nRUN echo $V > /v\n', { args: ['--build-arg', 'V=cli'] }),
  image('USER with a group name', 'FROM BUSYBOX\nUSER nobody:nobody\nRUN touch /tmp/mine && cp -a /tmp/mine /tmp/mine2\n'),
]);
