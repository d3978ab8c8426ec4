// `kiln bake [-f FILE]... [TARGET|GROUP]...`: builds the targets of a Compose file or JSON bake file in one
// solve (src/engine/build.ts runBuild, the same path as kiln build), so steps the targets share run once;
// each target keeps its own secrets, ssh agents, network and hosts.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { openState } from '../context.js';
import { targetFromOptions, type OptionWrap, type ParsedTarget } from '../build-options.js';
import { parseProgressMode, progressView } from '../progress/index.js';
import { runBuild, type BuildHooks, type BuildTarget } from '../../engine/build.js';
import { resolveBuilder } from '../../client/builders.js';
import { sshAgents } from '../../../native/network/ssh-agent.js';
import { formatPlatform } from '../../../base/oci/platform.js';
import { parseAttestFlags } from '../../attest/flags.js';
import { UserError } from '../../../base/errors.js';
import { defaultBakeFiles, loadBakeFiles, resolveTargets, type BakeTargetSpec } from './bake-file.js';
import { checkOutputFile, checkOutputs, outputWriteError, writeOutputFile } from '../output-paths.js';

/** A bake file's target → the same options `kiln build`'s flags make (build-options.ts targetFromOptions). */
function parseTarget(spec: BakeTargetSpec, opts: { push: boolean; noCache: boolean; pull: boolean; attest: BuildTarget['attest']; sourceDateEpoch?: number }): ParsedTarget {
  const where = `target ${spec.name}`;
  let dockerfile: BuildTarget['dockerfile'];
  if (spec.dockerfileInline !== undefined) dockerfile = { text: spec.dockerfileInline, name: 'Dockerfile' };
  else {
    try {
      dockerfile = { text: readFileSync(spec.dockerfile, 'utf8'), name: basename(spec.dockerfile), path: spec.dockerfile };
    } catch {
      throw new UserError(`${where}: cannot read Dockerfile ${spec.dockerfile}: no such file`);
    }
  }
  const wrap: OptionWrap = (what, f) => {
    try {
      return f();
    } catch (err) {
      throw new UserError(`${where}: ${what}: ${(err as Error).message}`);
    }
  };
  return targetFromOptions(
    {
      name: spec.name,
      contextDir: spec.context,
      dockerfile,
      target: spec.target,
      buildArgs: spec.args,
      labels: spec.labels,
      contexts: spec.contexts,
      platforms: spec.platforms,
      tags: spec.tags,
      outputs: spec.outputs,
      push: opts.push,
      cacheFrom: spec.cacheFrom,
      cacheTo: spec.cacheTo,
      noCache: opts.noCache || spec.noCache,
      pull: opts.pull || spec.pull,
      sourceDateEpoch: opts.sourceDateEpoch,
      attest: opts.attest,
      secrets: spec.secrets,
      ssh: spec.ssh,
      network: spec.network,
      extraHosts: spec.extraHosts,
    },
    wrap,
  );
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
    { name: 'builder', type: 'string', valueName: 'NAME|tcp://…|unix://…', description: 'Build on a remote builder (see kiln builder; default: the one in use, or the embedded engine)' },
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
    const parsed = specs.map((spec) => parseTarget(spec, { push: flagBool(args, 'push'), noCache: flagBool(args, 'no-cache'), pull: flagBool(args, 'pull'), attest, sourceDateEpoch: epochText ? Number(epochText) : undefined }));
    const targets = parsed.map((p) => p.target);
    for (const t of targets) checkOutputs(t.outputs);
    const metaPath = flagString(args, 'metadata-file');
    if (metaPath !== undefined) checkOutputFile('--metadata-file', metaPath);
    const mode = parseProgressMode(flagString(args, 'progress'));
    const view = progressView(mode);
    // A remote builder (kiln serve) builds each target as `kiln build --builder` would; the local state is not opened.
    const builder = resolveBuilder(flagString(args, 'builder'));
    const state = builder ? undefined : await openState();
    const abort = new AbortController();
    const onSignal = () => abort.abort(new Error('bake interrupted'));
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Each target's own SSH agents: a target sees only the keys its bake file entry names.
    const agents: { close(): void }[] = [];
    try {
      for (const [i, p] of parsed.entries()) {
        if (!p.ssh.length) continue;
        const a = await sshAgents(p.ssh);
        agents.push(a);
        targets[i]!.ssh = a.sockets;
      }
      const hooks: BuildHooks = { progress: (ev) => view.onEvent(ev), signal: abort.signal };
      const result = await (builder ? (await import('../../client/build-remote.js')).buildOnBuilder(builder, { targets }, hooks) : runBuild(state!, { targets }, hooks))
        .catch((err) => {
          if (abort.signal.aborted) throw new UserError('bake canceled');
          throw outputWriteError(err, targets.flatMap((t) => t.outputs));
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
      for (const a of agents) a.close();
      await state?.close();
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
