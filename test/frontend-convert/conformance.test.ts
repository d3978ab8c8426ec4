// Every buildah and kaniko conformance Dockerfile converts to a graph with a fixed busybox-like resolver,
// except the ones listed with the reason they fail (the same reason BuildKit would give, or a kiln gap).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { conformanceDir } from '../frontend/conformance-paths.js';
import { convert } from './helpers.js';
import { conformanceDockerfiles } from '../frontend/conformance-paths.js';

const dockerfiles = conformanceDockerfiles;

// File (relative to the conformance dir) → the error it must give, and why.
const invalidSingleQuote = { error: /Dockerfile:\d+: failed to process "'a\\\\'b'": unexpected end of statement while looking for matching single-quote/, why: "ENV name='a\\'b' has an unterminated single quote; buildah's case expects the build to fail at that line" };
const capitalStage = { error: /failed to parse stage name "BUG_stage": invalid reference format: repository name \(library\/BUG_stage\) must be lowercase/, why: 'FROM BUG_stage names an image, not the stage declared AS BUG_stage (BuildKit v0.25 fails the same way)' };
const expectedFailures: Record<string, { error: RegExp; why: string }> = {
  'buildah/tests/conformance/testdata/Dockerfile.env': invalidSingleQuote,
  'buildah/tests/conformance/testdata/transientmount/Dockerfile.env': invalidSingleQuote,
  'buildah/cases.json#118 env-invalid-ssquote': invalidSingleQuote,
  // BuildKit v0.25 looks a FROM's stage up as written, against lower-cased stage names: `FROM BUG_stage` is
  // an (invalid) image name there too (checked with docker-sid buildx; kaniko accepts it)
  'kaniko/integration/dockerfiles/Dockerfile_test_from_multistage_capital': capitalStage,
  'kaniko/integration/dockerfiles/Dockerfile_test_issue_519': capitalStage,
};

/** kaniko's per-file --build-arg values (expectations.json). */
function kanikoBuildArgs(): Record<string, Record<string, string>> {
  const exp = JSON.parse(readFileSync(join(conformanceDir, 'kaniko', 'integration', 'expectations.json'), 'utf8')) as { buildArgs: Record<string, string[]> };
  const out: Record<string, Record<string, string>> = {};
  for (const [file, list] of Object.entries(exp.buildArgs)) {
    if (!Array.isArray(list)) continue;
    out[file] = Object.fromEntries(list.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  }
  return out;
}

interface Case { label: string; text: string; buildArgs?: Record<string, string> }

function corpus(): Case[] {
  const cases: Case[] = [];
  const kanikoArgs = kanikoBuildArgs();
  for (const dir of [join(conformanceDir, 'buildah', 'tests', 'conformance', 'testdata'), join(conformanceDir, 'kaniko', 'integration')]) {
    for (const f of dockerfiles(dir)) {
      const label = relative(conformanceDir, f);
      const base = label.slice(label.lastIndexOf('/') + 1);
      cases.push({ label, text: readFileSync(f, 'utf8'), buildArgs: label.startsWith('kaniko/') ? kanikoArgs[base] : undefined });
    }
  }
  const buildahCases = JSON.parse(readFileSync(join(conformanceDir, 'buildah', 'tests', 'conformance', 'cases.json'), 'utf8')) as { name: string; index: number; dockerfileContents?: string; buildArgs?: Record<string, string> }[];
  for (const c of buildahCases) {
    if (c.dockerfileContents) cases.push({ label: `buildah/cases.json#${c.index} ${c.name}`, text: c.dockerfileContents, buildArgs: c.buildArgs });
  }
  return cases;
}

test('buildah and kaniko Dockerfiles convert (expected failures listed with reasons)', async () => {
  const cases = corpus();
  assert.ok(cases.length > 250, `only ${cases.length} cases`);
  let converted = 0;
  const unexpected: string[] = [];
  const failedAsExpected: string[] = [];
  for (const c of cases) {
    const want = expectedFailures[c.label];
    try {
      const r = await convert(c.text, { buildArgs: c.buildArgs });
      assert.ok(r.image.config, `${c.label}: no config`);
      if (want) unexpected.push(`${c.label}: expected to fail (${want.why}) but converted`);
      else converted++;
    } catch (e) {
      const msg = (e as Error).message;
      if (want && want.error.test(msg)) failedAsExpected.push(`${c.label}: ${msg}`);
      else unexpected.push(`${c.label}: ${msg}`);
    }
  }
  console.log(`converted ${converted}/${cases.length}; failed as expected ${failedAsExpected.length}`);
  for (const f of failedAsExpected) console.log(`  expected failure: ${f}`);
  assert.deepEqual(unexpected, []);
});
