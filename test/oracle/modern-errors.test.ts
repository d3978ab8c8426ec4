// Errors against BuildKit v0.25: both builders fail, and both print the words a user would search for
// (BuildKit's wording: "did you mean", "not found", the lint-violation list, …).
import { differentialSuite, type DiffCase } from './modern-harness.js';

const fails = (name: string, dockerfile: string, error: string, extra: Partial<DiffCase> = {}): DiffCase => ({ name, dockerfile, kind: 'error', error, ...extra });

differentialSuite([
  fails('error: COPY of a missing file', 'FROM BUSYBOX\nCOPY nope/f /dst/\n', '"/nope/f": not found'),
  fails('error: misspelled --target gets did-you-mean', 'FROM BUSYBOX AS build\nRUN true\nFROM build\n', 'target stage "biuld" could not be found (did you mean build?)', { args: ['--target', 'biuld'] }),
  fails('error: misspelled ARG in FROM --platform gets did-you-mean', 'FROM --platform=$TARGETPLATFROM BUSYBOX\n', 'empty platform value from expression $TARGETPLATFROM (did you mean TARGETPLATFORM?)'),
  fails('error: unknown instruction gets did-you-mean', 'FROM BUSYBOX\nCOPPY a /b\n', 'unknown instruction: COPPY (did you mean COPY?)'),
  fails('error: misspelled --mount key gets did-you-mean', 'FROM BUSYBOX\nRUN --mount=type=bind,source=x \\\n  --mount=typo=1 \\\n  true\n', "unexpected key 'typo' in 'typo=1' (did you mean type?)"),
  fails('error: # check=error=true fails the build naming the rules', '# check=error=true\nFROM BUSYBOX as base\nMAINTAINER x\n', 'lint violation found for rules: FromAsCasing, MaintainerDeprecated'),
  fails('error: invalid BUILDKIT_DOCKERFILE_CHECK', 'FROM BUSYBOX\n', 'failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: failed to parse check option "error=maybe"', {
    args: ['--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=error=maybe'],
  }),
  fails('error: invalid SOURCE_DATE_EPOCH build arg', 'FROM BUSYBOX\n', 'strconv.ParseInt: parsing "abc": invalid syntax', { args: ['--build-arg', 'SOURCE_DATE_EPOCH=abc'] }),
  fails('error: blank base name', 'ARG X\nFROM ${X}\n', 'base name (${X}) should not be blank'),
  fails('error: invalid reference from the default ARGs', 'ARG BASE\nARG TAG\nFROM ${BASE}:${TAG}\n', 'failed to parse stage name ":": invalid reference format'),
  fails('error: circular stages', 'FROM BUSYBOX AS a\nCOPY --from=b /x /x\nFROM BUSYBOX AS b\nCOPY --from=a /y /y\n', 'circular dependency detected on stage: a'),
  // --chownn: one edit from chown only (--chwon is as far from chmod as from chown, and BuildKit's pick between ties varies)
  fails('error: misspelled flag gets did-you-mean', 'FROM BUSYBOX\nCOPY --chownn=1 a /a\n', 'unknown flag: --chownn (did you mean chown?)', { files: { a: 'a' } }),
  fails('error: invalid stage name', 'FROM BUSYBOX AS 1bad\n', 'invalid name for build stage: "1bad", name can\'t start with a number or contain symbols'),
  fails('error: ONBUILD ONBUILD', 'FROM BUSYBOX\nONBUILD ONBUILD RUN x\n', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
  fails('error: HEALTHCHECK interval below 1ms', 'FROM BUSYBOX\nHEALTHCHECK --interval=1ns CMD true\n', 'Interval "interval" cannot be less than 1ms'),
  fails('error: EXPOSE with an unknown protocol', 'FROM BUSYBOX\nEXPOSE 80/bogus\n', 'invalid proto: bogus'),
  fails('error: STOPSIGNAL with an unknown signal', 'FROM BUSYBOX\nSTOPSIGNAL SIGNOPE\n', 'invalid signal: SIGNOPE'),
  fails('error: SHELL needs JSON form', 'FROM BUSYBOX\nSHELL /bin/sh -c\n', 'SHELL requires the arguments to be in JSON form'),
  fails('error: ARG with a blank name', 'FROM BUSYBOX\nARG =x\n', 'ARG names can not be blank'),
  fails('error: COPY needs a destination', 'FROM BUSYBOX\nCOPY a\n', 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'),
  fails('error: a RUN that fails', 'FROM BUSYBOX\nRUN exit 3\n', 'did not complete successfully: exit code: 3'),
  fails('error: a required secret that was not given', 'FROM BUSYBOX\nRUN --mount=type=secret,id=mysecret,required=true cat /run/secrets/mysecret\n', 'secret mysecret: not found'),
  fails('error: a required ssh mount without an agent', 'FROM BUSYBOX\nRUN --mount=type=ssh,required=true true\n', 'unset ssh forward key default'),
]);
