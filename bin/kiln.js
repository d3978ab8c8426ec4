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

const bundle = new URL('../dist/bundle/main.js', import.meta.url);
await import(existsSync(bundle) ? bundle.href : '../dist/src/cli/main.js');
