// The resident engine's process (started by src/resident/client.ts startEngine, detached):
// `node engine.js engine serve ROOT`; idle timeout in seconds from KILN_ENGINE_IDLE (default 600).
import { log, ResidentEngine } from './engine.js';
import { codeStamp } from '../paths.js';

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
try {
  if (!(await engine.listen())) {
    log(`another engine already listens on ${engine.path}`);
    process.exit(0);
  }
} catch (err) {
  log(`cannot start: ${(err as Error).message}`);
  process.exit(1);
}
