// `kiln run -it` in a real terminal (tmux): resizing the window passes the new size to the container's
// terminal and never freezes the session; closing the window ends kiln, the sandbox helper and the
// container, even one whose pid 1 ignores SIGHUP, and leaves the state usable.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSuite } from '../helpers/suite.js';
import { kiln } from '../helpers/kiln.js';
import { kilnBin } from '../helpers/kiln.js';
import { alive, descendants, sandboxHelpersUnder, sleep, Terminal, waitFor } from './procs.js';

const suite = buildSuite();
const terms: Terminal[] = [];
after(() => {
  for (const t of terms) t.close();
});

function runInTerminal(flags: string, cmd: string, size = { cols: 100, rows: 30 }): Terminal {
  const t = new Terminal(`${process.execPath} ${kilnBin} run -it --rm ${flags} ${suite.base} ${cmd}`, { KILN_ROOT: suite.root, PATH: process.env.PATH ?? '' }, size);
  terms.push(t);
  return t;
}

test('kiln run -it: a resized terminal gives the container its new size and the session keeps answering', async () => {
  const term = runInTerminal('', 'sh');
  assert.ok(await waitFor(() => /^\/ #\s*$/m.test(term.screen()), 60_000), term.screen());
  term.keys('stty size; echo mark-$((20+1))', 'Enter');
  assert.ok(await waitFor(() => term.screen().includes('mark-21'), 10_000), term.screen());
  assert.match(term.screen(), /^30 100$/m);
  for (const [cols, rows, n] of [[120, 40, 2], [80, 24, 3], [132, 50, 4]] as const) {
    term.resize(cols, rows);
    await sleep(500); // the new size travels tmux -> kiln's terminal -> SIGWINCH -> the container's pty
    term.keys(`stty size; echo mark-$((20+${n}))`, 'Enter');
    assert.ok(await waitFor(() => term.screen().includes(`mark-${20 + n}`), 10_000), `frozen after a resize to ${cols}x${rows}:\n${term.screen()}`);
    assert.match(term.screen(), new RegExp(`^${rows} ${cols}$`, 'm'));
  }
  term.keys('exit 6', 'Enter');
  assert.ok(await waitFor(() => term.exitStatus() !== undefined, 10_000), term.screen());
  assert.equal(term.exitStatus(), 6);
});

for (const pid1 of ['sh', `sh -c 'trap "" HUP TERM; echo ignoring-hup; while :; do sleep 1; done'`]) {
  test(`kiln run -it: closing the terminal ends kiln, the helper and the container (pid 1: ${pid1.slice(0, 14)}…)`, async () => {
    const marker = `lc-tty-${pid1.length}`;
    const term = runInTerminal(`--hostname ${marker}`, pid1);
    const ready = pid1 === 'sh' ? /^\/ #\s*$/m : /ignoring-hup/;
    assert.ok(await waitFor(() => ready.test(term.screen()), 60_000), term.screen());
    const kilnPid = term.panePid();
    const helpers = sandboxHelpersUnder(kilnPid);
    assert.equal(helpers.length, 1);
    const inside = [...descendants(helpers[0]!)];
    assert.ok(inside.length >= 1);
    term.close();
    const gone = await waitFor(() => !alive(kilnPid) && helpers.every((p) => !alive(p)) && inside.every((p) => !alive(p)), 6_000);
    assert.ok(gone, `left after the terminal closed: kiln ${alive(kilnPid)}, helper ${helpers.filter(alive)}, container ${inside.filter(alive)}`);
    const next = kiln(suite.root, ['run', '--rm', suite.base, 'echo', 'state-free'], { env: { KILN_LOCK_TIMEOUT: '2' } });
    assert.equal(next.status, 0, next.stderr);
    assert.equal(next.stdout, 'state-free\n');
  });
}
