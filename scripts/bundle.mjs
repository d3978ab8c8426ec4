#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and the commands it loads on demand) into a few files
// in dist/bundle with esbuild. Loading ~100 small ES modules costs more start-up time than running a
// container; one bundle per command saves ~60 ms on every `kiln` call. level (a native addon) stays
// external. bin/kiln.js prefers the bundle and falls back to dist/src when it is missing.
//
// A kiln process may be running from the bundle while it is rebuilt (several people and test runs share
// a checkout): chunks have content-hashed names and are written first, main.js is renamed into place
// last, and chunks that no main.js uses any more are removed only when they are an hour old.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist', 'bundle');

// undici takes ~60 ms to load (and pulls in Node's own copy behind fetch), but most `kiln build` runs
// never open a connection: a warm rebuild resolves its base image from the db. For the two modules that
// use it, `undici` is a small stand-in that loads the real one (as a separate chunk) on the first request.
const lazyUndiciImporters = [/[/\\]base[/\\]oci[/\\]registry[/\\]transport\.js$/, /[/\\]solver[/\\]ops[/\\]source-http\.js$/];
const lazyUndici = `
let loading;
const load = () => (loading ??= import('kiln-real-undici').then((m) => (m.Agent ? m : m.default)));
export class Agent {
  #opts;
  #agent;
  constructor(opts) { this.#opts = opts; }
  async #get() {
    if (!this.#agent) { const u = await load(); this.#agent ??= new u.Agent(this.#opts); }
    return this.#agent;
  }
  async request(opts) { return (await this.#get()).request(opts); }
  async close() { if (this.#agent) await this.#agent.close(); }
  async destroy(err) { if (this.#agent) await this.#agent.destroy(err); }
}
export async function request(url, opts) { return (await load()).request(url, opts); }
`;
const eagerUndici = [];
const undiciPath = createRequire(import.meta.url).resolve('undici');
const lazyUndiciPlugin = {
  name: 'kiln-lazy-undici',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, (args) => {
      if (lazyUndiciImporters.some((r) => r.test(args.importer))) return { path: 'lazy-undici', namespace: 'kiln-lazy' };
      // kiln's own modules load undici lazily: one the list above misses (moved or new) fails the bundle.
      if (!/[/\\]node_modules[/\\]/.test(args.importer)) eagerUndici.push(args.importer);
      return undefined;
    });
    b.onResolve({ filter: /^kiln-real-undici$/ }, () => ({ path: undiciPath }));
    b.onLoad({ filter: /^lazy-undici$/, namespace: 'kiln-lazy' }, () => ({ contents: lazyUndici, loader: 'js', resolveDir: root }));
  },
};
const result = await build({
  // main.js: the CLI; engine.js: the resident engine's process (src/resident/server), sharing its chunks.
  entryPoints: { main: `${root}/dist/src/cli/main.js`, engine: `${root}/dist/src/resident/server/main.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['level', 'classic-level'],
  // CommonJS dependencies (undici) call require(): give the ES module bundle one.
  banner: { js: "import { createRequire as __kilnRequire } from 'node:module'; const require = __kilnRequire(import.meta.url);" },
  logLevel: 'warning',
  write: false,
  plugins: [lazyUndiciPlugin],
});
if (eagerUndici.length) throw new Error(`bundle: ${eagerUndici.join(', ')} import undici eagerly; add them to lazyUndiciImporters`);
// attach.js: what bin/kiln.js loads first for build and bake (src/resident/attach.ts); one small file with
// Node built-ins only, so that handing a build to the resident engine costs no bundle load.
const attach = await build({
  entryPoints: { attach: `${root}/dist/src/resident/attach.js` },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  write: false,
});
result.outputFiles.push(...attach.outputFiles);
mkdirSync(outdir, { recursive: true });
const fresh = new Set(result.outputFiles.map((f) => basename(f.path)));
const entryNames = new Set(['main.js', 'engine.js', 'attach.js']);
const entries = result.outputFiles.filter((f) => entryNames.has(basename(f.path)));
for (const f of [...result.outputFiles.filter((f) => !entries.includes(f)), ...entries]) {
  const tmp = `${f.path}.tmp-${process.pid}`;
  writeFileSync(tmp, f.contents);
  renameSync(tmp, f.path);
}
const hourAgo = Date.now() - 3600_000;
for (const name of readdirSync(outdir)) {
  if (fresh.has(name)) continue;
  const p = join(outdir, name);
  try {
    if (statSync(p).mtimeMs < hourAgo) rmSync(p, { force: true });
  } catch {
    // removed meanwhile by another run
  }
}
