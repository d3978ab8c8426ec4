#!/usr/bin/env node
// Entry point. The CLI is compiled into dist/ and bundled into dist/bundle by `npm install` / `npm run
// build`; the bundle starts faster, the plain compiled modules are the fallback.
import { existsSync } from 'node:fs';

// An unsupported Node fails later in ways that print stacks (missing APIs); say so in one line instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 20)) {
  process.stderr.write(`kiln: Node.js ${process.versions.node} is not supported; kiln needs Node.js 20.20 or newer (see package.json "engines")\n`);
  process.exit(1);
}

const pick = (bundled, compiled) => {
  const url = new URL(bundled, import.meta.url);
  return existsSync(url) ? url.href : compiled;
};

// `kiln build` / `kiln bake` go to the state dir's resident engine when one runs (src/resident): a small
// module, loaded instead of the CLI bundle. It returns undefined when this process should build itself.
const args = process.argv.slice(2);
let code;
if (args[0] === 'build' || args[0] === 'bake') {
  const { attachToEngine } = await import(pick('../dist/bundle/attach.js', '../dist/src/resident/attach.js'));
  code = await attachToEngine(args);
}
if (code === undefined) await import(pick('../dist/bundle/main.js', '../dist/src/cli/main.js'));
else process.exitCode = code;
