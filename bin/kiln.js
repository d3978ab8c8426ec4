#!/usr/bin/env node
// Entry point. The CLI is compiled into dist/ and bundled into dist/bundle by `npm install` / `npm run
// build`; the bundle starts faster, the plain compiled modules are the fallback.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/bundle/main.js', import.meta.url);
await import(existsSync(bundle) ? bundle.href : '../dist/src/cli/main.js');
