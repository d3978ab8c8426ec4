// Every Dockerfile in the buildah and kaniko conformance corpora parses and types without throwing,
// except the ones listed with the reason they are meant to fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseDockerfile } from '../../frontends/dockerfile/parser.js';
import { parseStages } from '../../frontends/dockerfile/instructions.js';
import { conformanceDir, conformanceDockerfiles } from './conformance-paths.js';

const dockerfiles = conformanceDockerfiles;

// Files that are invalid on purpose, with the error kiln (like BuildKit) must give.
const expectedFailures: Record<string, RegExp> = {};

for (const [label, dir] of [
  ['buildah', join(conformanceDir, 'buildah', 'tests', 'conformance', 'testdata')],
  ['kaniko', join(conformanceDir, 'kaniko', 'integration')],
] as const) {
  test(`${label}: every Dockerfile parses into stages`, () => {
    const files = dockerfiles(dir);
    assert.ok(files.length > 50, `only ${files.length} files under ${dir}`);
    const failures: string[] = [];
    let ok = 0;
    for (const f of files) {
      const rel = relative(conformanceDir, f);
      try {
        const { stages } = parseStages(parseDockerfile(readFileSync(f, 'utf8')));
        assert.ok(stages.length > 0, `${rel}: no stages`);
        if (expectedFailures[rel]) failures.push(`${rel}: expected to fail but parsed`);
        else ok++;
      } catch (e) {
        const want = expectedFailures[rel];
        if (want && want.test((e as Error).message)) ok++;
        else failures.push(`${rel}: ${(e as Error).message}`);
      }
    }
    console.log(`# ${label}: ${ok}/${files.length} Dockerfiles as expected`);
    assert.deepEqual(failures, []);
  });
}
