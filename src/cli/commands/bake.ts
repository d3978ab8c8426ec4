// `kiln bake [-f FILE]... [TARGET|GROUP]...`: builds the targets of a Compose file or JSON bake file in one
// solve (src/engine/bake.ts), so steps the targets share run once.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { openState } from '../context.js';
import { parseBuildContext, parseCacheFrom, parseCacheTo, parseOutput, parsePlatforms } from '../build-options.js';
import { parseProgressMode, progressView } from '../progress/index.js';
import { bake, type BakeTarget } from '../../engine/bake.js';
import type { BuildRequest } from '../../engine/build.js';
import type { OutputSpec } from '../../engine/exports.js';
import { parseReference } from '../../../base/oci/reference.js';
import { formatPlatform } from '../../../base/oci/platform.js';
import { parseAttestFlags } from '../../attest/flags.js';
import { UserError } from '../../../base/errors.js';
import { defaultBakeFiles, loadBakeFiles, resolveTargets, type BakeTargetSpec } from './bake-file.js';
import { checkOutputFile, checkOutputs, outputWriteError, writeOutputFile } from '../output-paths.js';

function requestFor(spec: BakeTargetSpec, opts: { push: boolean; noCache: boolean; pull: boolean; attest: BuildRequest['attest']; sourceDateEpoch?: number }): BuildRequest {
  const where = `target ${spec.name}`;
  let dockerfile: BuildRequest['dockerfile'];
  if (spec.dockerfileInline !== undefined) dockerfile = { text: spec.dockerfileInline, name: 'Dockerfile' };
  else {
    try {
      dockerfile = { text: readFileSync(spec.dockerfile, 'utf8'), name: basename(spec.dockerfile), path: spec.dockerfile };
    } catch {
      throw new UserError(`${where}: cannot read Dockerfile ${spec.dockerfile}: no such file`);
    }
  }
  const wrap = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new UserError(`${where}: ${what}: ${(err as Error).message}`);
    }
  };
  for (const t of spec.tags) wrap('tags', () => parseReference(t));
  const outputs: OutputSpec[] = wrap('output', () => spec.outputs.map((o) => parseOutput(o, spec.tags)));
  if (opts.push) {
    const image = outputs.find((o) => o.type === 'image');
    if (image && image.type === 'image') image.push = true;
    else outputs.push({ type: 'image', names: spec.tags, push: true, attrs: {} });
  }
  if (outputs.length === 0) outputs.push({ type: 'image', names: spec.tags, push: false, attrs: {} });
  const buildContexts: NonNullable<BuildRequest['buildContexts']> = {};
  for (const [name, value] of Object.entries(spec.contexts)) {
    const { spec: c } = wrap('contexts', () => parseBuildContext(`${name}=${value}`));
    buildContexts[name] = c;
  }
  const buildArgs = { ...spec.args };
  if (opts.sourceDateEpoch !== undefined && buildArgs.SOURCE_DATE_EPOCH === undefined) buildArgs.SOURCE_DATE_EPOCH = String(opts.sourceDateEpoch);
  return {
    contextDir: spec.context,
    dockerfile,
    target: spec.target,
    buildArgs,
    labels: spec.labels,
    platforms: wrap('platforms', () => parsePlatforms(spec.platforms)),
    buildContexts,
    noCache: opts.noCache || spec.noCache,
    pull: opts.pull || spec.pull,
    cacheFrom: wrap('cache-from', () => spec.cacheFrom.map(parseCacheFrom)),
    cacheTo: wrap('cache-to', () => spec.cacheTo.map(parseCacheTo)),
    sourceDateEpoch: opts.sourceDateEpoch,
    outputs,
    attest: opts.attest,
  };
}

export const bakeCommand: Command = {
  name: 'bake',
  summary: 'Build several targets from a Compose or bake file in one solve',
  usage: 'kiln bake [OPTIONS] [TARGET|GROUP...]',
  flags: [
    { name: 'file', short: 'f', type: 'string', multiple: true, valueName: 'FILE', description: `Bake file (default: ${['compose.yaml', 'docker-compose.yml', 'kiln-bake.json', 'docker-bake.json'].join(', ')} in this directory)` },
    { name: 'push', type: 'bool', description: 'Push every target to its registry (its tags)' },
    { name: 'load', type: 'bool', description: 'Keep the images in the local store (the default; accepted for buildx compatibility)' },
    { name: 'no-cache', type: 'bool', description: 'Do not use the cache' },
    { name: 'pull', type: 'bool', description: 'Always resolve base images from the registry' },
    { name: 'print', type: 'bool', description: 'Print the resolved targets as JSON instead of building' },
    { name: 'progress', type: 'string', valueName: 'MODE', description: 'auto, plain, tty, rawjson or quiet' },
    { name: 'set', type: 'string', multiple: true, valueName: 'TARGET.KEY=VALUE', description: 'Override a field: args.NAME, tags, platform, target, no-cache, output, cache-from, cache-to (TARGET may be *)' },
    { name: 'sbom', type: 'string', optionalValue: 'true', valueName: 'true|false', description: 'Attach an SPDX SBOM attestation to every image' },
    { name: 'provenance', type: 'string', optionalValue: 'mode=min', valueName: 'mode=min|max', description: 'Attach a SLSA provenance attestation to every image' },
    { name: 'attest', type: 'string', multiple: true, valueName: 'type=sbom|provenance[,mode=max]', description: 'Attestations, buildx spelling (same as --sbom / --provenance)' },
    { name: 'metadata-file', type: 'string', valueName: 'FILE', description: 'Write each target\'s image digest and names to the file' },
  ],
  async run(args) {
    const files = flagList(args, 'file');
    const paths = files.length ? files : defaultBakeFiles(process.cwd());
    if (!paths.length) throw new FlagError('kiln bake: no bake file: pass -f FILE or add compose.yaml / kiln-bake.json to this directory');
    const specs = resolveTargets(loadBakeFiles(paths), args.positionals);
    for (const s of flagList(args, 'set')) applySet(specs, s);
    if (flagBool(args, 'print')) {
      process.stdout.write(JSON.stringify({ target: Object.fromEntries(specs.map(({ name, ...rest }) => [name, rest])) }, null, 2) + '\n');
      return 0;
    }
    const epochText = process.env.SOURCE_DATE_EPOCH;
    if (epochText && !/^[0-9]+$/.test(epochText)) throw new FlagError(`invalid SOURCE_DATE_EPOCH "${epochText}": expected seconds since 1970`);
    const attest = parseAttestFlags(flagString(args, 'sbom'), flagString(args, 'provenance'), flagList(args, 'attest'));
    const targets: BakeTarget[] = specs.map((spec) => ({
      name: spec.name,
      request: requestFor(spec, { push: flagBool(args, 'push'), noCache: flagBool(args, 'no-cache'), pull: flagBool(args, 'pull'), attest, sourceDateEpoch: epochText ? Number(epochText) : undefined }),
    }));
    for (const t of targets) checkOutputs(t.request.outputs);
    const metaPath = flagString(args, 'metadata-file');
    if (metaPath !== undefined) checkOutputFile('--metadata-file', metaPath);
    const mode = parseProgressMode(flagString(args, 'progress'));
    const view = progressView(mode);
    const state = await openState();
    const abort = new AbortController();
    const onSignal = () => abort.abort(new Error('bake interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const result = await bake(state, { targets, progress: (ev) => view.onEvent(ev), signal: abort.signal })
        .catch((err) => {
          throw outputWriteError(err, targets.flatMap((t) => t.request.outputs));
        })
        .finally(() => view.finish());
      for (const w of result.warnings) process.stderr.write(`WARNING: ${w.target ? `${w.target}: ` : ''}${w.line ? `line ${w.line}: ` : ''}${w.message}\n`);
      const meta: Record<string, unknown> = {};
      for (const t of result.targets) {
        const digest = t.exports.find((e) => e.digest)?.digest;
        const names = t.exports.flatMap((e) => e.names ?? []);
        meta[t.name] = { 'containerimage.digest': digest, 'image.name': names.join(',') };
        if (mode !== 'rawjson' && mode !== 'quiet') process.stderr.write(`${t.name}: image ${digest}${names.length ? ` (${names.join(', ')})` : ''} for ${t.images.map((i) => formatPlatform(i.platform)).join(', ')}\n`);
      }
      const metaFile = flagString(args, 'metadata-file');
      if (metaFile) writeOutputFile('--metadata-file', metaFile, JSON.stringify(meta, null, 2) + '\n');
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await state.close();
    }
  },
};

/** --set TARGET.KEY=VALUE (buildx): TARGET `*` means every target. */
function applySet(specs: BakeTargetSpec[], text: string): void {
  const m = /^([^.=]+)\.([A-Za-z-]+)(?:\.([^=]+))?=(.*)$/s.exec(text);
  if (!m) throw new FlagError(`invalid value "${text}" for flag --set: expected TARGET.KEY=VALUE`);
  const [, target, key, sub, value] = m as unknown as [string, string, string, string | undefined, string];
  const hit = specs.filter((s) => target === '*' || s.name === target);
  if (!hit.length) throw new FlagError(`invalid value "${text}" for flag --set: no target "${target}" is being built`);
  for (const s of hit) {
    switch (key) {
      case 'args':
        if (!sub) throw new FlagError(`invalid value "${text}" for flag --set: expected ${target}.args.NAME=VALUE`);
        s.args[sub] = value;
        break;
      case 'labels':
        if (!sub) throw new FlagError(`invalid value "${text}" for flag --set: expected ${target}.labels.NAME=VALUE`);
        s.labels[sub] = value;
        break;
      case 'tags':
        s.tags = [value];
        break;
      case 'platform':
      case 'platforms':
        s.platforms = value.split(',');
        break;
      case 'target':
        s.target = value;
        break;
      case 'no-cache':
        s.noCache = value !== 'false';
        break;
      case 'output':
        s.outputs = [value];
        break;
      case 'cache-from':
        s.cacheFrom = [value];
        break;
      case 'cache-to':
        s.cacheTo = [value];
        break;
      default:
        throw new FlagError(`invalid value "${text}" for flag --set: unknown key "${key}"`);
    }
  }
}
