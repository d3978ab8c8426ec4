// kiln serve --ui: the dashboard in a real headless Chromium (Debian's, driven by playwright-core): a wrong
// token is refused; with a token a running build appears and finishes, its timeline opens, its logs are
// read (streamed while it runs); the cache hit ratio and disk usage are shown. Screenshots are taken
// (into docs/images with KILN_UPDATE_SCREENSHOTS=1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { writeContext } from '../helpers/build.js';
import { serve, clientEnv, kilnClient, kilnClientAsync } from '../daemon/serve-helpers.js';
import { repoRoot } from '../helpers/fixtures.js';

const suite = buildSuite();

test('dashboard: token login, a running build appears and finishes, its timeline and logs; wrong token refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ui-'));
  const tokenFile = join(dir, 'tokens');
  writeFileSync(tokenFile, 'team:team-dashboard-token\nother:other-tenant-token\n');
  const sock = join(dir, 'k.sock');
  const s = await serve(['--addr', `unix://${sock}`, '--token-file', tokenFile, '--ui', '127.0.0.1:0']);
  let browser: Browser | undefined;
  try {
    let url: string | undefined;
    for (let i = 0; i < 200 && !url; i++) {
      url = /dashboard on (http:\/\/\S+)/.exec(s.stderr())?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(url, s.stderr());
    // The API refuses without a token; with a bearer token it answers.
    assert.equal((await fetch(`${url}/api/summary`)).status, 401);
    assert.equal((await fetch(`${url}/api/summary`, { headers: { authorization: 'Bearer team-dashboard-token' } })).status, 200);

    const env = clientEnv();
    writeFileSync(join(dir, 'client-token'), 'team-dashboard-token\n');
    assert.equal(kiln(suite.root, ['builder', 'create', 'ui', '--addr', `unix://${sock}`, '--token-file', join(dir, 'client-token'), '--use'], { env }).status, 0);
    // A first build, so the cache has something to hit.
    const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo warm > /warm\n` });
    assert.equal(kilnClient(suite.root, ['build', '--progress', 'plain', ctx], env).status, 0, 'warm-up build');

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await page.goto(url!);
    await page.fill('#token', 'not-the-token');
    await page.click('#login-button');
    assert.equal((await page.textContent('#login-error'))?.trim(), 'invalid token');
    await page.fill('#token', 'team-dashboard-token');
    await page.click('#login-button');
    await page.waitForSelector('#builds tr[data-status="completed"]');

    // A slow build through the service: it shows up as running, then completed.
    const slow = writeContext({
      Dockerfile: `FROM ${suite.base}\nRUN echo warm > /warm\nRUN for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done\n`,
    });
    const running = kilnClientAsync(suite.root, ['build', '--progress', 'plain', slow], env);
    const row = await page.waitForSelector('#builds tr[data-status="running"]', { timeout: 20_000 });
    const id = await row.getAttribute('data-build');
    assert.ok(id);
    // Open it while it runs: its logs stream in.
    await page.goto(`${url}/builds/${id}`);
    await page.waitForFunction(() => (document.getElementById('logs')?.textContent ?? '').includes('tick-2'), undefined, { timeout: 20_000 });
    const done = await running.done;
    assert.equal(done.status, 0, done.stderr);
    // When the build ends the page reloads itself to show the final state, then streams the whole log again.
    await page.waitForFunction(
      () => document.getElementById('status')?.textContent?.trim() === 'completed' && document.getElementById('logs')?.dataset.done === 'true',
      undefined,
      { timeout: 20_000 },
    );
    const logs = (await page.textContent('#logs')) ?? '';
    for (let i = 1; i <= 6; i++) assert.ok(logs.includes(`tick-${i}`), logs);
    const bars = await page.$$eval('#timeline g.vertex', (gs) => gs.map((g) => [g.getAttribute('data-name'), g.getAttribute('data-state')]));
    assert.ok(bars.some(([n, st]) => /RUN echo warm/.test(n!) && st === 'cached'), JSON.stringify(bars));
    assert.ok(bars.some(([n, st]) => /RUN for i in/.test(n!) && st === 'ran'), JSON.stringify(bars));
    // KILN_UPDATE_SCREENSHOTS=1 refreshes the README's pictures; otherwise they go to the test's dir.
    const shots = process.env.KILN_UPDATE_SCREENSHOTS ? join(repoRoot, 'docs', 'images') : dir;
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'dashboard-build.png'), fullPage: true });

    await page.goto(url!);
    await page.waitForSelector(`#builds tr[data-build="${id}"][data-status="completed"]`);
    assert.match((await page.textContent('#hit-ratio')) ?? '', /^[1-9][0-9]*%$/, 'some steps were cached');
    assert.match((await page.textContent('#disk')) ?? '', /[0-9.]+ (KiB|MiB|GiB)/);
    await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
    assert.ok(existsSync(join(shots, 'dashboard.png')));

    // Another tenant's token sees none of these builds.
    const other = await (await fetch(`${url}/api/summary`, { headers: { authorization: 'Bearer other-tenant-token' } })).json();
    assert.deepEqual(other.builds, []);

    // The history survives a restart of the service.
    await s.stop();
    const again = await serve(['--addr', `unix://${sock}`, '--token-file', tokenFile, '--ui', '127.0.0.1:0'], { root: s.root });
    try {
      let url2: string | undefined;
      for (let i = 0; i < 200 && !url2; i++) {
        url2 = /dashboard on (http:\/\/\S+)/.exec(again.stderr())?.[1];
        if (!url2) await new Promise((r) => setTimeout(r, 50));
      }
      const after = await (await fetch(`${url2}/api/summary`, { headers: { authorization: 'Bearer team-dashboard-token' } })).json();
      assert.ok(after.builds.some((b: { id: string; status: string }) => b.id === id && b.status === 'completed'));
    } finally {
      await again.stop();
    }
  } finally {
    await browser?.close();
    await s.stop();
  }
});
