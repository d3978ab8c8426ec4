// Build history: every build is recorded in the state dir (read by later processes without the lock),
// with its steps' states, why they ran, logs, results; retention by count and age; the timeline picture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';

const suite = buildSuite();

/** The <g class="vertex"> elements of a trace SVG, with their data attributes. */
function svgVertices(svg: string): Record<string, string>[] {
  return [...svg.matchAll(/<g class="vertex"([^>]*)>/g)].map((m) => Object.fromEntries([...m[1]!.matchAll(/ data-([a-z-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])));
}

test('builds are recorded: ls, inspect (steps, why they ran, result), logs, a failed build with its error', () => {
  const root = tempRoot();
  try {
    const context = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY a.txt /a.txt\nRUN cat /a.txt && echo history-log-line\n`, 'a.txt': 'one\n' });
    const first = kilnBuild(root, {}, ['-t', 'hist:1', '--build-arg', 'FLAVOUR=plain'], { context });
    assert.equal(first.status, 0, first.stderr);
    writeFileSync(join(context, 'a.txt'), 'two\n');
    const second = kilnBuild(root, {}, ['-t', 'hist:1'], { context });
    assert.equal(second.status, 0, second.stderr);
    const failed = kilnBuild(root, { Dockerfile: `FROM ${suite.base}\nRUN echo about-to-fail && exit 3\n` });
    assert.notEqual(failed.status, 0);

    const ls = kiln(root, ['history', 'ls']);
    assert.equal(ls.status, 0, ls.stderr);
    const rows = ls.stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 3);
    assert.match(rows[0]!, /^\S+ +failed /, 'newest first');
    // Steps include "[internal] load build context", read afresh by every build.
    assert.match(rows[1]!, /^\S+ +completed .* 3 ran, 1 cached /);
    assert.match(rows[2]!, /^\S+ +completed .* 4 ran, 0 cached /);
    const secondId = rows[1]!.split(/\s+/)[0]!;

    const inspect = kiln(root, ['history', 'inspect', secondId.slice(0, 12)]);
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.match(inspect.stdout, new RegExp(`^Result: +image ${second.digest} \\(.*hist:1\\)$`, 'm'));
    assert.match(inspect.stdout, /^ {2}#\d+ CACHED .*FROM /m);
    assert.match(inspect.stdout, /^ {2}#\d+ RAN .*COPY a\.txt \/a\.txt\n +why: files changed: \/a\.txt changed$/m);
    assert.match(inspect.stdout, /^ {2}#\d+ RAN .*RUN cat \/a\.txt && echo history-log-line\n +why: it builds on a step that changed: .*COPY a\.txt/m);
    const firstInspect = kiln(root, ['history', 'inspect', rows[2]!.split(/\s+/)[0]!]).stdout;
    assert.match(firstInspect, /^Build arg: +FLAVOUR=plain$/m);

    const logs = kiln(root, ['history', 'logs', secondId]);
    assert.match(logs.stdout, /^two\nhistory-log-line$/m);
    const failedInspect = kiln(root, ['history', 'inspect', 'latest']);
    assert.match(failedInspect.stdout, /^Status: +failed \(Dockerfile:2: .*exit code: 3/m);
    assert.match(failedInspect.stdout, /^ {2}#\d+ FAILED .*RUN echo about-to-fail/m);
    assert.match(kiln(root, ['history', 'logs', 'latest']).stdout, /about-to-fail/);

    const unknown = kiln(root, ['history', 'inspect', 'zzzz']);
    assert.notEqual(unknown.status, 0);
    assert.match(errorLine(unknown), /no build zzzz in the history/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('retention keeps the newest builds by count (KILN_HISTORY_KEEP, prune --keep) and by age (prune --max-age)', () => {
  const root = tempRoot();
  try {
    for (let i = 0; i < 3; i++) {
      const r = kilnBuild(root, { Dockerfile: `FROM ${suite.base}\nRUN echo ${i}\n` }, [], { env: { KILN_HISTORY_KEEP: '2' } });
      assert.equal(r.status, 0, r.stderr);
    }
    const ids = () => kiln(root, ['history', 'ls']).stdout.trim().split('\n').slice(1);
    assert.equal(ids().length, 2);
    assert.match(kiln(root, ['history', 'prune', '--keep', '1']).stdout, /^removed 1 build record$/m);
    assert.equal(ids().length, 1);
    assert.match(kiln(root, ['history', 'prune', '--max-age', '90m']).stdout, /^removed 0 build records$/m);
    const bad = kiln(root, ['history', 'prune', '--max-age', 'soon']);
    assert.match(errorLine(bad), /invalid --max-age "soon": expected a duration like 90m, 24h or 7d/);
    // 0s: everything finished is older than that.
    assert.match(kiln(root, ['history', 'prune', '--max-age', '0s']).stdout, /^removed 1 build record$/m);
    assert.equal(ids().length, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('kiln history trace draws one bar per step with its state, lanes for parallel stages, and the critical path', () => {
  const root = tempRoot();
  try {
    const dockerfile = [
      `FROM ${suite.base} AS a`,
      'RUN sleep 0.3 && echo a > /a',
      `FROM ${suite.base} AS b`,
      'RUN sleep 0.1 && echo b > /b',
      `FROM ${suite.base}`,
      'COPY --from=a /a /a',
      'COPY --from=b /b /b',
      '',
    ].join('\n');
    const context = writeContext({ Dockerfile: dockerfile });
    assert.equal(kilnBuild(root, {}, [], { context }).status, 0);
    // New content in stage b: COPY --from=b is keyed by the content it copies (as BuildKit), so it runs again.
    writeFileSync(join(context, 'Dockerfile'), dockerfile.replace('sleep 0.1 && echo b', 'sleep 0.2 && echo bb'));
    assert.equal(kilnBuild(root, {}, [], { context }).status, 0);
    const svgPath = join(root, 'trace.svg');
    const htmlPath = join(root, 'trace.html');
    assert.equal(kiln(root, ['history', 'trace', 'latest', '-o', svgPath]).status, 0);
    assert.equal(kiln(root, ['history', 'trace', 'latest', '-o', htmlPath]).status, 0);
    const svg = readFileSync(svgPath, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const bars = svgVertices(svg);
    const inspect = kiln(root, ['history', 'inspect', 'latest']).stdout;
    const steps = [...inspect.matchAll(/^ {2}#\d+ (\w+) +\S+ \S+ {2}(.*)$/gm)].map((m) => [m[2]!, m[1]!.toLowerCase()]);
    assert.equal(bars.length, steps.length);
    const state = (name: RegExp) => bars.find((b) => name.test(b.name!))?.state;
    assert.equal(state(/RUN sleep 0\.3/), 'cached');
    assert.equal(state(/RUN sleep 0\.2/), 'ran');
    assert.equal(state(/COPY --from=a/), 'cached');
    assert.equal(state(/COPY --from=b/), 'ran');
    // The stage that changed and the steps after it are the critical path; the cached stage is not on it.
    const critical = bars.filter((b) => b.critical === 'true').map((b) => b.name);
    assert.ok(critical.some((n) => /RUN sleep 0\.2/.test(n!)), critical.join(' | '));
    assert.ok(!critical.some((n) => /RUN sleep 0\.3/.test(n!)));
    assert.ok(Number(bars.find((b) => /RUN sleep 0\.2/.test(b.name!))!['duration-ms']) >= 200);
    const html = readFileSync(htmlPath, 'utf8');
    assert.match(html, /<title>kiln build /);
    assert.match(html, /<td>why it ran|<th>why it ran/);
    assert.ok(html.includes(svg.split('\n')[0]!));
    assert.match(errorLine(kiln(root, ['history', 'trace', 'latest', '-o', join(root, 'x.png')])), /must end in \.svg or \.html/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
