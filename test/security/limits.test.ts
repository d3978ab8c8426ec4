// Kiln's config file ($KILN_CONFIG): resource limits per RUN and per build (one cgroup shared by all
// of a build's RUNs, removed when the build's last RUN ends); the config is a ceiling a request cannot raise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, errorLine } from '../helpers/build.js';
import { sandboxLimits } from '../../src/engine/limits.js';

const suite = buildSuite();

function withConfig(name: string, config: unknown): NodeJS.ProcessEnv {
  const path = join(suite.outs, `${name}.json`);
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config));
  return { KILN_CONFIG: path };
}

const forkLoop = 'RUN (for i in $(seq 24); do sleep 2 & done; wait) 2> /fork-errors; grep -c "can.t fork" /fork-errors > /fork-failures; true';

function forkFailures(name: string, env: NodeJS.ProcessEnv): number {
  const dest = join(suite.outs, name);
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\n${forkLoop} # ${name}\n` }, ['-o', `type=local,dest=${dest}`], { env });
  assert.equal(r.status, 0, r.stderr);
  return Number(readFileSync(join(dest, 'fork-failures'), 'utf8').trim());
}

/** kiln-build-* cgroups under this process's pids cgroup (the helpers make theirs under their own, which is ours). */
function buildCgroups(): string[] {
  const own = /^\d+:pids:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  const dir = join('/sys/fs/cgroup/pids', own);
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('kiln-build-')) : [];
}

test('limits.run.pids caps each RUN; limits.build.pids caps the build; no config, no cap', () => {
  assert.equal(forkFailures('no-limit', withConfig('none', {})), 0);
  assert.ok(forkFailures('run-pids', withConfig('run-pids', { limits: { run: { pids: 8 } } })) > 0);
  assert.ok(forkFailures('build-pids', withConfig('build-pids', { limits: { build: { pids: 8 } } })) > 0);
  assert.deepEqual(buildCgroups(), [], 'the build cgroup is removed with its last RUN');
});

test('limits.run.memory: a RUN that needs more is killed and reported out of memory', () => {
  const env = withConfig('run-memory', { limits: { run: { memory: '32m' } } });
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo \${#x}\n` }, [], { env });
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /Dockerfile:2: .*did not complete successfully: exit code: 137 \(out of memory\)/);
  const small = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN x=$(head -c 1000000 /dev/zero | tr '\\0' a); echo \${#x}\n` }, [], { env });
  assert.equal(small.status, 0, small.stderr);
});

test('a bad config file is a one-line error naming it', () => {
  const r = kilnBuild(suite.root, { Dockerfile: `FROM ${suite.base}\nRUN true\n` }, [], { env: withConfig('bad', { limits: { run: { memory: 'lots' } } }) });
  assert.notEqual(r.status, 0);
  assert.match(errorLine(r), /kiln config .*bad\.json: limits\.run\.memory: invalid memory size "lots"/);
});

test('the config is a ceiling: a request may lower a limit, not raise it', () => {
  const env = withConfig('ceiling', { limits: { run: { memory: '1g', cpus: 1 }, build: { pids: 100 } } });
  const l = sandboxLimits({ run: { memoryBytes: 8 * 1024 ** 3, cpus: 0.5 }, build: { pids: 10_000 } }, { ...process.env, ...env });
  assert.equal(l.runLimits?.memoryBytes, 1024 ** 3);
  assert.equal(l.runLimits?.cpuQuotaUs, 50_000);
  assert.equal(l.runLimits?.cpuPeriodUs, 100_000);
  assert.equal(l.buildCgroup?.limits?.pids, 100);
});

test('the config\'s "entitlements" list caps what --allow can grant', () => {
  const df = { Dockerfile: `FROM ${suite.base}\nRUN --network=host true\n` };
  const refused = kilnBuild(suite.root, df, ['--allow', 'network.host'], { env: withConfig('no-entitlements', { entitlements: [] }) });
  assert.notEqual(refused.status, 0);
  assert.match(errorLine(refused), /Dockerfile:2: network mode "host" needs the network.host entitlement, which this builder does not grant \(kiln config .*no-entitlements\.json: entitlements\)/);
  const granted = kilnBuild(suite.root, df, ['--allow', 'network.host'], { env: withConfig('host-entitlement', { entitlements: ['network.host'] }) });
  assert.equal(granted.status, 0, granted.stderr);
  const notAsked = kilnBuild(suite.root, df, [], { env: withConfig('host-entitlement2', { entitlements: ['network.host'] }) });
  assert.match(errorLine(notAsked), /pass --allow network.host/);
});
