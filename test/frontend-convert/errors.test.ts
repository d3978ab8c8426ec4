// Errors a user causes: one line, naming the Dockerfile line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert } from './helpers.js';

async function errorOf(df: string, opts: Parameters<typeof convert>[1] = {}): Promise<{ message: string; line: number; userFacing: boolean }> {
  try {
    await convert(df, opts);
  } catch (e) {
    const err = e as Error & { line: number; userFacing: boolean };
    return { message: err.message, line: err.line, userFacing: err.userFacing };
  }
  throw new Error('conversion did not fail');
}

const cases: [string, string, string, Parameters<typeof convert>[1]?][] = [
  ['empty base name', 'ARG X\nFROM busybox\nFROM ${X}\n', 'Dockerfile:3: base name (${X}) should not be blank'],
  ['circular dependency', 'FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n', 'Dockerfile:2: circular dependency detected on stage: a'],
  ['self copy is a cycle', 'FROM busybox AS a\nRUN x\nCOPY --from=a /x /y\n', 'Dockerfile:3: circular dependency detected on stage: a'],
  ['copy from a later stage', 'FROM busybox AS a\nCOPY --from=1 /x /x\nFROM busybox AS b\nRUN true\n', 'Dockerfile:2: cannot copy from stage "1", it needs to be defined before current stage "a"', { target: 'a' }],
  ['unknown stage index', 'FROM busybox\nCOPY --from=7 /x /x\n', 'Dockerfile:2: invalid stage index 7'],
  ['unknown stage name resolves as an image and fails', 'FROM busybox AS builder\nFROM busybox\nCOPY --from=does-not-exist /x /x\n', 'Dockerfile:3: does-not-exist: docker.io/library/does-not-exist:latest: not found'],
  ['unknown base image with a stage-name hint', 'FROM busybox AS does-not-exis\nFROM does-not-exist\n', 'Dockerfile:2: does-not-exist: docker.io/library/does-not-exist:latest: not found (did you mean does-not-exis?)'],
  ['variable in --from', 'FROM busybox\nARG S=a\nCOPY --from=$S /x /x\n', 'Dockerfile:3: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround'],
  ['invalid chmod', 'FROM busybox\nCOPY --chmod=999 a /a\n', "Dockerfile:2: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"],
  ['chmod too large', 'FROM busybox\nCOPY --chmod=17777 a /a\n', "Dockerfile:2: invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777"],
  ['checksum on COPY', 'FROM busybox\nCOPY --checksum=sha256:00 a /a\n', 'Dockerfile:2: unknown flag: --checksum'],
  ['checksum on a local ADD', 'FROM busybox\nADD --checksum=sha256:0000 a /a\n', 'Dockerfile:2: checksum requires HTTP(S) or Git sources'],
  ['URL in COPY', 'FROM busybox\nCOPY https://127.0.0.1/x /x\n', "Dockerfile:2: source can't be a URL for COPY"],
  ['git ADD unsupported', 'FROM busybox\nADD https://127.0.0.1/repo.git /src\n', 'Dockerfile:2: ADD from a git repository (https://127.0.0.1/repo.git) is not supported by kiln yet; clone it in a stage and COPY --from that stage'],
  ['bad platform', 'FROM --platform=linux/nosucharch busybox\n', 'Dockerfile:1: failed to parse platform linux/nosucharch: "linux/nosucharch": unknown operating system or architecture: invalid argument'],
  ['empty platform', 'FROM --platform=$NOPE busybox\n', 'Dockerfile:1: empty platform value from expression $NOPE'],
  ['unknown target', 'FROM busybox AS build\n', 'Dockerfile: target stage "buil" could not be found (did you mean build?)', { target: 'buil' }],
  ['mount from a later stage', 'FROM busybox AS a\nRUN --mount=from=b,target=/b true\nFROM busybox AS b\n', 'Dockerfile:2: cannot mount from stage "b" to "/b", stage needs to be defined before current command', { target: 'a' }],
  ['bad mount option after expansion', 'FROM busybox\nARG T=weird\nRUN --mount=type=$T,target=/x true\n', 'Dockerfile:3: unsupported mount type "weird"'],
  ['invalid stop signal', 'FROM busybox\nSTOPSIGNAL SIGNOPE\n', 'Dockerfile:2: invalid signal: SIGNOPE'],
  ['invalid expose', 'FROM busybox\nEXPOSE 80/bogus\n', 'Dockerfile:2: invalid port: "80/bogus": invalid proto: bogus'],
  ['uppercase image', 'FROM BusyBox\n', 'Dockerfile:1: failed to parse stage name "BusyBox": invalid reference format: repository name (library/BusyBox) must be lowercase'],
  ['no stages', 'ARG A=1\n', 'Dockerfile: dockerfile contains no stages to build'],
  ['error names the file given', 'FROM busybox\nCOPY --chmod=999 a b\n', "build.Dockerfile:2: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777", { dockerfileName: 'build.Dockerfile' }],
  ['a multi-line instruction is named by its whole range', 'FROM busybox\nCOPY --chmod=999 \\\n  a \\\n  /a\n', "Dockerfile:2-4: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"],
];

for (const [name, df, want, opts] of cases) {
  test(`error: ${name}`, async () => {
    const e = await errorOf(df, opts);
    assert.equal(e.message, want);
    assert.equal(e.userFacing, true);
    assert.ok(!e.message.includes('\n'));
  });
}

test('a failing stage the target does not need does not fail the conversion', async () => {
  const r = await convert('FROM busybox AS bad\nCOPY --chmod=999 a /x\nFROM busybox\nRUN ok\n');
  assert.deepEqual(r.stagesUsed, ['1']);
});

test('several sources with a wildcard to a non-dir dest are left to the executor (a pattern may match nothing)', async () => {
  const r = await convert('FROM busybox\nCOPY missing* foo hello\n');
  assert.ok(r.output);
});
