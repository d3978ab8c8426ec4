// The resident engine's process (started by src/resident/client.ts startEngine, detached):
// `node engine.js engine serve ROOT`; idle timeout in seconds from KILN_ENGINE_IDLE (default 600).
import { log, ResidentEngine } from './engine.js';
import { codeStamp, startingPath, startingPid } from '../paths.js';
import { unlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

const root = process.argv[4];
const idle = Number(process.env.KILN_ENGINE_IDLE);
if (!root) {
  process.stderr.write('usage: engine.js engine serve ROOT\n');
  process.exit(2);
}
process.on('uncaughtException', (err) => {
  log(`crashed: ${err.stack ?? err}`);
  process.exit(70);
});
// This file is dist/bundle/engine.js (beside the CLI's main.js) or dist/src/resident/server/main.js.
const code = codeStamp([new URL(import.meta.url.endsWith('/bundle/engine.js') ? './main.js' : '../../cli/main.js', import.meta.url)]);
const engine = new ResidentEngine(root, Number.isFinite(idle) && idle > 0 ? idle : 600, code);
// ROOT/engine.starting (written by the client that spawned this process) names it only until it listens.
const clearStarting = () => {
  try {
    if (startingPid(root) === process.pid) unlinkSync(startingPath(root));
  } catch {
    // not there, or another engine's
  }
};
try {
  const listening = await engine.listen();
  clearStarting();
  if (!listening) {
    log(`another engine already listens on ${engine.path}`);
    process.exit(0);
  }
} catch (err) {
  clearStarting();
  log(`cannot start: ${(err as Error).message}`);
  process.exit(1);
}
// Started beside a build at a low priority (client.ts spawnEngine): builds run at the normal one.
if (process.env.KILN_ENGINE_NICE === '1') {
  delete process.env.KILN_ENGINE_NICE;
  try {
    setPriority(0);
  } catch (err) {
    log(`cannot take the normal CPU priority back: ${(err as Error).message}`);
  }
}
