// Build checks without the reference builder: each rule's name, message and line, the check options,
// --check mode and error=true, as BuildKit v0.25 reports them (test/oracle/modern-checks pins the same
// against BuildKit itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert } from '../frontend-convert/helpers.js';
import { parseCheckOptions } from '../../frontends/dockerfile/lint/linter.js';
import { checkResultJSON, formatBuildWarnings, formatCheckReport, snippet } from '../../frontends/dockerfile/lint/format.js';
import type { LintWarning } from '../../frontends/dockerfile/lint/linter.js';
import type { ConvertResult } from '../../frontends/dockerfile/convert/types.js';

const found = (r: ConvertResult): string[] => r.warnings.flatMap((w) => (w.lint ? [`${w.lint.ruleName}:${w.lint.startLine} ${w.lint.detail}`] : [])).sort();

test('casing, stage names, MAINTAINER, empty continuation lines', async () => {
  const r = await convert('FROM busybox as Base\nfrom busybox AS base\nMAINTAINER me\nFROM busybox AS scratch\nRUN a \\\n\n b\n');
  assert.deepEqual(found(r), [
    "ConsistentInstructionCasing:2 Command 'from' should match the case of the command majority (uppercase)",
    'DuplicateStageName:2 Duplicate stage name "base", stage names should be unique',
    "FromAsCasing:1 'as' and 'FROM' keywords' casing do not match",
    "FromAsCasing:2 'AS' and 'from' keywords' casing do not match",
    'MaintainerDeprecated:3 Maintainer instruction is deprecated in favor of using label',
    'NoEmptyContinuation:7 Empty continuation line',
    'ReservedStageName:4 Stage name should not use the same name as reserved stage "scratch"',
    "StageNameCasing:1 Stage name 'Base' should be lowercase",
  ]);
});

test('per-instruction rules of the dispatched stages: JSON args, legacy forms, WORKDIR, repeats, secrets, EXPOSE', async () => {
  const r = await convert([
    'FROM busybox',
    'ENV A b',
    'LABEL k v',
    'ARG PUBLIC_KEY GITHUB_TOKEN',
    'ENV db_password=1',
    'WORKDIR rel',
    'WORKDIR again',
    'CMD echo a',
    'CMD ["b"]',
    'EXPOSE 80/TCP 127.0.0.1:8080:80',
  ].join('\n'));
  assert.deepEqual(found(r), [
    'ExposeInvalidFormat:10 EXPOSE instruction should not define an IP address or host-port mapping, found \'127.0.0.1:8080:80\'',
    "ExposeProtoCasing:10 Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
    'JSONArgsRecommended:8 JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
    '"ENV key=value" should be used instead of legacy "ENV key value" format',
    '"LABEL key=value" should be used instead of legacy "LABEL key value" format',
    'MultipleInstructionsDisallowed:8 Multiple CMD instructions should not be used in the same stage because only the last one will be used',
    'SecretsUsedInArgOrEnv:4 Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")',
    'SecretsUsedInArgOrEnv:5 Do not use ARG or ENV instructions for sensitive data (ENV "db_password")',
    'WorkdirRelativePath:6 Relative workdir "rel" can have unexpected results if the base image changes',
  ].map((s) => (s.startsWith('"ENV') ? `LegacyKeyValueFormat:2 ${s}` : s.startsWith('"LABEL') ? `LegacyKeyValueFormat:3 ${s}` : s)).sort());
});

test('UndefinedVar: base image env and declared ARGs count as defined; RUN is not checked; did-you-mean', async () => {
  const r = await convert('FROM busybox\nARG DECL\nENV FOO=1\nENV A=$FOOO B=$PATH C=$DECL\nRUN echo $NOPE\nLABEL x=$MISSING\n');
  assert.deepEqual(found(r), ["UndefinedVar:4 Usage of undefined variable '$FOOO' (did you mean $FOO?)", "UndefinedVar:6 Usage of undefined variable '$MISSING'"]);
});

test('FROM checks: undeclared ARG with did-you-mean, redundant $TARGETPLATFORM, constant --platform', async () => {
  const r = await convert('ARG BASE=busybox\nFROM --platform=$TARGETPLATFORM ${BASE} AS a\nFROM --platform=linux/arm64 ${BASE} AS b\nFROM --platform=linux/arm64 busybox AS on-arm64\nFROM ${BAES}busybox\n');
  assert.deepEqual(found(r), [
    'FromPlatformFlagConstDisallowed:3 FROM --platform flag should not use constant value "linux/arm64"',
    "RedundantTargetPlatform:2 Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    "UndefinedArgInFrom:5 FROM argument 'BAES' is not declared (did you mean BASE?)",
  ]);
});

test('stages the target does not need are not dispatched, so not checked, unless in --check mode', async () => {
  const df = 'FROM busybox AS unused\nENV X=$UNDEF\nFROM busybox\nRUN true\n';
  assert.deepEqual(found(await convert(df)), []);
  assert.deepEqual(found(await convert(df, { check: true })), ["UndefinedVar:2 Usage of undefined variable '$UNDEF'"]);
});

test('check options: skip, experimental, error; the build arg replaces the directive; bad options are errors', async () => {
  const df = '# check=skip=MaintainerDeprecated\nFROM busybox as b\nMAINTAINER x\n';
  assert.deepEqual(found(await convert(df)), ["FromAsCasing:2 'as' and 'FROM' keywords' casing do not match"]);
  assert.deepEqual(found(await convert(df, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=FromAsCasing' } })), ['MaintainerDeprecated:3 Maintainer instruction is deprecated in favor of using label']);
  assert.deepEqual(found(await convert('# check=skip=all\nFROM busybox as b\n')), []);
  await assert.rejects(convert('# check=error=true\nFROM busybox as b\nMAINTAINER x\n'), (e: Error & { lintWarnings?: LintWarning[] }) => {
    assert.equal(e.message, 'Dockerfile: lint violation found for rules: FromAsCasing, MaintainerDeprecated');
    return true;
  });
  await assert.rejects(convert('# check=bogus=1\nFROM busybox\n'), /Dockerfile:1: failed to parse check options: invalid check option "bogus"$/);
  await assert.rejects(convert('FROM busybox\n', { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'error=maybe' } }), /failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: failed to parse check option "error=maybe": strconv\.ParseBool: parsing "maybe": invalid syntax/);
  assert.deepEqual(parseCheckOptions(' skip = A , B ; experimental=all;error=1 '), { skipAll: false, skip: new Set(['A', 'B']), experimentalAll: true, experimental: new Set(), error: true });
  const experimental = '# check=experimental=InvalidDefinitionDescription\nFROM busybox\n# not a description\nARG foo=1\n';
  assert.deepEqual(found(await convert(experimental)), ['InvalidDefinitionDescription:4 Comment for ARG should follow the format: `# foo <description>`']);
  assert.deepEqual(found(await convert(experimental.replace('# check=experimental=InvalidDefinitionDescription\n', ''))), []);
});

test('--check mode: an error comes back with the findings made before it, in BuildKit words', async () => {
  const r = await convert('FROM busybox as b\nMAINTAINER x\nCOPY\nENV A b\n', { check: true });
  assert.deepEqual(found(r), ["FromAsCasing:1 'as' and 'FROM' keywords' casing do not match", 'MaintainerDeprecated:2 Maintainer instruction is deprecated in favor of using label']);
  const err = r.warnings.find((w) => w.checkError);
  assert.equal(err?.message, 'dockerfile parse error on line 3: COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  const v = await convert('# check=error=true\nFROM busybox as b\n', { check: true });
  assert.equal(v.warnings.find((w) => w.checkError)?.message, 'lint violation found for rules: FromAsCasing');
});

test('a failing build keeps what the checks found, for the CLI to print before the error', async () => {
  await assert.rejects(convert('FROM busybox as b\nCOPY --chmod=999 a /a\n'), (e: Error & { lintWarnings?: LintWarning[] }) => {
    assert.deepEqual(e.lintWarnings?.map((w) => w.ruleName), ['FromAsCasing']);
    return true;
  });
});

test('report formats: snippet padding as BuildKit, check report, list after a build, JSON ranges per line', () => {
  const text = 'FROM a\nRUN b\nENV A \\\n  b\nCMD c\nUSER d\nLABEL e=f\n';
  assert.equal(snippet('Dockerfile', text, 1, 1), ['Dockerfile:1', '--------------------', '   1 | >>> FROM a', '   2 |     RUN b', '   3 |     ENV A \\', '--------------------'].join('\n'));
  assert.equal(snippet('Dockerfile', text, 3, 4), ['Dockerfile:3', '--------------------', '   2 |     RUN b', '   3 | >>> ENV A \\', '   4 | >>>   b', '   5 |     CMD c', '--------------------'].join('\n'));
  const w: LintWarning = { ruleName: 'LegacyKeyValueFormat', description: 'd', url: 'https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/', detail: 'msg', startLine: 3, endLine: 4 };
  assert.ok(formatCheckReport([w], 'Dockerfile', text).startsWith('Check complete, 1 warning has been found!\n\nWARNING: LegacyKeyValueFormat - https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/\nmsg\nDockerfile:3\n'));
  assert.equal(formatCheckReport([], 'Dockerfile', text), 'Check complete, no warnings found.\n');
  assert.equal(formatBuildWarnings([w, { ...w, startLine: 1, endLine: 1, ruleName: 'X' }]), ' 2 warnings found:\n - X: msg (line 1)\n - LegacyKeyValueFormat: msg (line 3)\n');
  assert.deepEqual(JSON.parse(checkResultJSON([w])).warnings[0].location.ranges, [{ start: { line: 3 }, end: { line: 3 } }, { start: { line: 4 }, end: { line: 4 } }]);
  assert.deepEqual(JSON.parse(checkResultJSON([], 'boom')), { warnings: null, buildError: { message: 'boom' } });
});

test('a 10,000-deep ${a:-${a:-…}} is one clear error, not a stack overflow', async () => {
  let w = 'x';
  for (let i = 0; i < 10_000; i++) w = '${a:-' + w + '}';
  await assert.rejects(convert(`FROM busybox\nENV b=${w}\n`), (e: Error & { userFacing?: boolean }) => {
    assert.equal(e.userFacing, true);
    assert.match(e.message, /^Dockerfile:2: failed to process "\$\{a:-\$\{a:-.{0,60}… \(60001 characters\): variable substitutions nested more than 1000 levels deep$/);
    return true;
  });
  const ok = await convert('FROM busybox\nENV b=${a:-${a:-${a:-deep}}}\n');
  assert.ok(ok.image.config?.Env?.includes('b=deep'));
});

test('did-you-mean for a misspelled ARG in FROM --platform; a multi-line instruction names its range', async () => {
  await assert.rejects(convert('FROM --platform=$TARGETPLATFROM busybox\n'), /Dockerfile:1: empty platform value from expression \$TARGETPLATFROM \(did you mean TARGETPLATFORM\?\)$/);
  await assert.rejects(convert('FROM busybox\nRUN --mount=type=bind \\\n  --mount=typo=1 \\\n  true\n'), (e: Error) => {
    assert.equal(e.message, "Dockerfile:2-4: unexpected key 'typo' in 'typo=1' (did you mean type?)");
    return true;
  });
});
