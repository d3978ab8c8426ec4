// `kiln build`: buildx-compatible flags → an engine build request; progress on stderr; the image goes to
// the local store unless --output says otherwise.
import { readFileSync, statSync, existsSync } from 'node:fs';
import { resolve, join, basename } from 'node:path';
import type { Command } from '../command.js';
import { flagBool, flagList, flagString, FlagError } from '../flags.js';
import { openState } from '../context.js';
import { readStdin, readStdinInput } from '../stdin-context.js';
import { sandboxFlags, targetFromOptions } from '../build-options.js';
import { sshAgents } from '../../../native/network/ssh-agent.js';
import { parseBuildArgs, parseBuildContext } from '../build-options.js';
import { parseProgressMode, progressView } from '../progress/index.js';
import { runBuild, type BuildHooks, type BuildRequest, type BuildTarget } from '../../engine/build.js';
import type { OutputSpec } from '../../engine/exports.js';
import { parseReference } from '../../../base/oci/reference.js';
import { formatPlatform } from '../../../base/oci/platform.js';
import { resolveBuilder } from '../../client/builders.js';
import { parseAttestFlags } from '../../attest/flags.js';
import { checkOutputFile, checkOutputs, outputWriteError, writeOutputFile } from '../output-paths.js';
import type { ConvertWarning } from '../../../frontends/dockerfile/convert/types.js';
import { checkResultJSON, formatBuildWarnings, formatCheckReport } from '../../../frontends/dockerfile/lint/format.js';
import { UserError } from '../../../base/errors.js';

export const buildCommand: Command = {
  name: 'build',
  summary: 'Build an image from a Dockerfile',
  usage: 'kiln build [OPTIONS] PATH | -',
  flags: [
    { name: 'file', short: 'f', type: 'string', valueName: 'FILE', description: 'Name of the Dockerfile (default: PATH/Dockerfile)' },
    { name: 'tag', short: 't', type: 'string', multiple: true, valueName: 'NAME[:TAG]', description: 'Name and optionally a tag' },
    { name: 'build-arg', type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'Set build-time variables' },
    { name: 'target', type: 'string', valueName: 'STAGE', description: 'Target build stage' },
    { name: 'platform', type: 'string', multiple: true, valueName: 'os/arch[/variant]', description: 'Target platform(s)' },
    { name: 'build-context', type: 'string', multiple: true, valueName: 'NAME=VALUE', description: 'Additional build contexts (PATH, docker-image://REF, oci-layout://DIR[:TAG])' },
    { name: 'secret', type: 'string', multiple: true, valueName: 'id=ID,src=FILE', description: 'Secret to expose to the build (src=FILE or env=VAR)' },
    { name: 'network', type: 'string', valueName: 'MODE', description: 'Networking mode for RUN: default, none or host' },
    ...sandboxFlags,
    { name: 'no-cache', type: 'bool', description: 'Do not use the cache' },
    { name: 'no-cache-filter', type: 'string', multiple: true, valueName: 'STAGE', description: 'Do not cache the given stages' },
    { name: 'cache-from', type: 'string', multiple: true, valueName: 'type=registry,ref=REF', description: 'External cache sources (registry ref, type=local,src=DIR, or an image with inline cache)' },
    { name: 'cache-to', type: 'string', multiple: true, valueName: 'type=registry,ref=REF,mode=max', description: 'Cache export destinations (type=registry, type=local,dest=DIR, type=inline)' },
    { name: 'pull', type: 'bool', description: 'Always resolve base images from the registry' },
    { name: 'progress', type: 'string', valueName: 'MODE', description: 'auto, plain, tty, rawjson or quiet' },
    { name: 'push', type: 'bool', description: 'Push the image to its registry (short for --output type=registry)' },
    { name: 'load', type: 'bool', description: 'Keep the image in the local store (the default; accepted for buildx compatibility)' },
    { name: 'output', short: 'o', type: 'string', multiple: true, valueName: 'type=TYPE,dest=PATH', description: 'Output destination: image, oci, docker, local, tar' },
    { name: 'label', type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'Set metadata for the image' },
    { name: 'iidfile', type: 'string', valueName: 'FILE', description: 'Write the image digest to the file' },
    { name: 'metadata-file', type: 'string', valueName: 'FILE', description: 'Write build result metadata to the file' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the build output and print the image digest' },
    { name: 'explain', type: 'bool', description: 'Say why each step that ran was not cached (compared with the last build)' },
    { name: 'print-graph', type: 'string', optionalValue: 'json', valueName: 'json|dot', description: 'Print the build graph instead of building' },
    { name: 'sbom', type: 'string', optionalValue: 'true', valueName: 'true|false', description: 'Attach an SPDX SBOM attestation of each image (dpkg, apk, npm, Python packages)' },
    { name: 'provenance', type: 'string', optionalValue: 'mode=min', valueName: 'mode=min|max', description: 'Attach a SLSA provenance attestation (build args, context digest, base images, graph)' },
    { name: 'attest', type: 'string', multiple: true, valueName: 'type=sbom|provenance[,mode=max]', description: 'Attestations, buildx spelling (same as --sbom / --provenance)' },
    { name: 'sign', type: 'bool', description: 'Sign the pushed image (cosign format; needs --push and --key)' },
    { name: 'key', type: 'string', valueName: 'FILE', description: 'Private key for --sign (cosign.key with COSIGN_PASSWORD, or PEM PKCS#8 P-256)' },
    { name: 'check', type: 'bool', description: 'Only run the build checks and print what they find (same as --call=check)' },
    { name: 'call', type: 'string', valueName: 'build|check[,format=json]', description: 'What to do with the Dockerfile: build it (default) or only check it' },
    { name: 'builder', type: 'string', valueName: 'NAME|tcp://…|unix://…', description: 'Build on a remote builder (see kiln builder; default: the one in use, or the embedded engine)' },
  ],
  async run(args) {
    if (args.positionals.length !== 1) throw new FlagError('kiln build: requires exactly 1 argument: the context PATH (or - for a Dockerfile on stdin)');
    const pathArg = args.positionals[0]!;
    const fileFlag = flagString(args, 'file');
    let contextDir: string | undefined;
    let dockerfile: BuildTarget['dockerfile'];
    // `-`: a Dockerfile, or a tar of the whole context (then -f names a file in it).
    const stdin = pathArg === '-' ? await readStdinInput(readStdin()) : undefined;
    if (stdin?.kind === 'dockerfile') {
      if (fileFlag) throw new FlagError('kiln build: -f cannot be combined with a Dockerfile on stdin (-)');
      dockerfile = { text: stdin.text, name: 'Dockerfile' };
    } else {
      if (stdin && fileFlag === '-') throw new FlagError('kiln build: -f - cannot be combined with a context on stdin (-)');
      contextDir = stdin ? stdin.dir : resolve(pathArg);
      if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) throw new FlagError(`kiln build: context ${pathArg} is not a directory`);
      const dfPath = fileFlag === '-' ? undefined : stdin ? join(contextDir, fileFlag ?? basename(defaultDockerfile(contextDir))) : resolve(fileFlag ? fileFlag : defaultDockerfile(contextDir));
      let text: string;
      try {
        text = dfPath ? readFileSync(dfPath, 'utf8') : readStdin().toString('utf8');
      } catch {
        throw new FlagError(`kiln build: cannot read Dockerfile ${stdin && dfPath ? `${fileFlag ?? 'Dockerfile'} in the context tar on stdin` : dfPath}: no such file`);
      }
      dockerfile = { text, name: dfPath ? basename(dfPath) : 'Dockerfile', path: dfPath };
    }
    const labels: Record<string, string> = {};
    for (const l of flagList(args, 'label')) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new FlagError(`invalid value "${l}" for flag --label: expected KEY=VALUE`);
      labels[l.slice(0, eq)] = l.slice(eq + 1);
    }
    const contexts: Record<string, string> = {};
    for (const b of flagList(args, 'build-context')) {
      const eq = b.indexOf('=');
      if (eq <= 0) parseBuildContext(b); // the flag's own error
      contexts[b.slice(0, eq)] = b.slice(eq + 1);
    }
    const epochText = process.env.SOURCE_DATE_EPOCH;
    let sourceDateEpoch: number | undefined;
    if (epochText !== undefined && epochText !== '') {
      if (!/^[0-9]+$/.test(epochText)) throw new FlagError(`invalid SOURCE_DATE_EPOCH "${epochText}": expected seconds since 1970`);
      sourceDateEpoch = Number(epochText);
    }
    // The flags become a target exactly as a bake file's target does (build-options.ts targetFromOptions).
    const parsed = targetFromOptions({
      contextDir,
      dockerfile,
      target: flagString(args, 'target'),
      buildArgs: parseBuildArgs(flagList(args, 'build-arg')),
      labels,
      contexts,
      platforms: flagList(args, 'platform'),
      tags: flagList(args, 'tag'),
      outputs: flagList(args, 'output'),
      push: flagBool(args, 'push'),
      cacheFrom: flagList(args, 'cache-from'),
      cacheTo: flagList(args, 'cache-to'),
      noCache: flagBool(args, 'no-cache'),
      noCacheFilter: flagList(args, 'no-cache-filter'),
      pull: flagBool(args, 'pull'),
      sourceDateEpoch,
      attest: parseAttestFlags(flagString(args, 'sbom'), flagString(args, 'provenance'), flagList(args, 'attest')),
      secrets: flagList(args, 'secret'),
      ssh: flagList(args, 'ssh'),
      network: flagString(args, 'network'),
      extraHosts: flagList(args, 'add-host'),
      dns: flagList(args, 'dns'),
      allow: flagList(args, 'allow'),
    });
    const target = parsed.target;
    const outputs = target.outputs;
    checkOutputs(outputs);
    for (const flag of ['iidfile', 'metadata-file']) {
      const path = flagString(args, flag);
      if (path !== undefined) checkOutputFile(`--${flag}`, path);
    }
    const signKey = await signKeyFor(flagBool(args, 'sign'), flagString(args, 'key'), outputs);
    const printGraph = flagString(args, 'print-graph');
    if (printGraph !== undefined && printGraph !== 'json' && printGraph !== 'dot') throw new FlagError(`invalid value "${printGraph}" for flag --print-graph: expected json or dot`);
    const call = parseCall(flagBool(args, 'check'), flagString(args, 'call'));
    const quiet = flagBool(args, 'quiet');
    const mode = quiet ? 'quiet' : parseProgressMode(flagString(args, 'progress'));
    const req: BuildRequest = {
      targets: [target],
      printGraph: call.check ? 'json' : (printGraph as 'json' | 'dot' | undefined),
      check: call.check || undefined,
      explain: flagBool(args, 'explain') || mode === 'rawjson',
    };

    const view = progressView(printGraph || call.check ? 'quiet' : mode);
    const hooks: BuildHooks = { progress: (ev) => view.onEvent(ev) };
    // A remote builder (kiln serve) runs the same build; the local state is not opened.
    const builder = resolveBuilder(flagString(args, 'builder'));
    if (builder && call.check) throw new FlagError('kiln build: --check runs the checks locally: drop --builder');
    const state = builder ? undefined : await openState();
    const abort = new AbortController();
    const onSignal = () => abort.abort(new Error('build interrupted'));
    // `on`, not `once`: timeout(1) sends TERM to kiln and then to its whole group, and a second signal
    // arriving after a `once` listener is gone would kill Node before it prints "build canceled".
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    hooks.signal = abort.signal;
    const ssh = await sshAgents(parsed.ssh).catch(async (err) => {
      await (state as { close(): Promise<void> } | undefined)?.close();
      throw err;
    });
    target.ssh = ssh.sockets;
    try {
      const built = await (builder ? (await import('../../client/build-remote.js')).buildOnBuilder(builder, req, hooks) : runBuild(state!, req, hooks))
        .catch((e) => {
          // ^C / SIGTERM: the sandbox is killed and the state released; one line, as buildx's "canceled".
          if (abort.signal.aborted) throw new UserError('build canceled');
          // error=true in the checks: what they found comes before the error, as buildx prints it
          if (Array.isArray(e?.lintWarnings)) process.stderr.write(formatBuildWarnings(e.lintWarnings));
          throw outputWriteError(e, outputs);
        })
        .finally(() => view.finish());
      const result = { ...(built.targets[0] ?? { exports: [], images: [], explanations: [] }), graph: built.graph, warnings: built.warnings };
      if (call.check) return printCheck(result.warnings as ConvertWarning[], dockerfile, call.json);
      if (result.graph !== undefined) {
        process.stdout.write(result.graph.endsWith('\n') ? result.graph : result.graph + '\n');
        return 0;
      }
      if (flagBool(args, 'explain') && mode !== 'rawjson') {
        for (const e of result.explanations) process.stderr.write(`EXPLAIN ${e.name}: ${e.reason}\n`);
      }
      const lintFound = (result.warnings as ConvertWarning[]).flatMap((w) => (w.lint ? [w.lint] : []));
      for (const w of result.warnings as ConvertWarning[]) if (!w.lint) process.stderr.write(`WARNING: ${w.line ? `${dockerfile.name}:${w.line}: ` : ''}${w.message}\n`);
      process.stderr.write(formatBuildWarnings(lintFound));
      const digest = result.exports.find((e) => e.digest)?.digest;
      if (digest && !quiet && mode !== 'rawjson' && mode !== 'quiet') {
        const names = result.exports.flatMap((e) => e.names ?? []);
        process.stderr.write(`image ${digest}${names.length ? ` (${names.join(', ')})` : ''} for ${result.images.map((i) => formatPlatform(i.platform)).join(', ')}\n`);
      }
      if (signKey && digest) await signPushed(signKey, outputs, digest, (line) => !quiet && mode !== 'rawjson' && mode !== 'quiet' && process.stderr.write(line + '\n'));
      if (quiet && digest) process.stdout.write(`${digest}\n`);
      const iid = flagString(args, 'iidfile');
      if (iid && digest) writeOutputFile('--iidfile', iid, digest);
      const meta = flagString(args, 'metadata-file');
      if (meta) {
        const img = result.images[0];
        writeOutputFile('--metadata-file', meta, JSON.stringify({
          'containerimage.digest': digest,
          'image.name': result.exports.flatMap((e) => e.names ?? []).join(','),
          ...(img && result.images.length === 1 ? { 'containerimage.config': img.config } : {}),
        }, null, 2) + '\n');
      }
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      ssh.close();
      await state?.close();
    }
  },
};

/** PATH/Dockerfile, or PATH/dockerfile when only that one exists (as BuildKit looks for both). */
function defaultDockerfile(contextDir: string): string {
  const upper = join(contextDir, 'Dockerfile');
  const lower = join(contextDir, 'dockerfile');
  return !existsSync(upper) && existsSync(lower) ? lower : upper;
}

/** --check / --call=build|check[,format=json|text]. */
function parseCall(check: boolean, call: string | undefined): { check: boolean; json: boolean } {
  if (call === undefined) return { check, json: false };
  const [what, ...opts] = call.split(',');
  if (what !== 'build' && what !== 'check') throw new FlagError(`invalid value "${call}" for flag --call: expected build or check[,format=json]`);
  let json = false;
  for (const o of opts) {
    if (o === 'format=json') json = true;
    else if (o !== 'format=text') throw new FlagError(`invalid value "${call}" for flag --call: unknown option ${o} (format=text or format=json)`);
  }
  return { check: check || what === 'check', json };
}

/** The check report on stdout; exit status 1 when a check found something or the Dockerfile has an error. */
function printCheck(warnings: ConvertWarning[], dockerfile: BuildTarget['dockerfile'], json: boolean): number {
  const found = warnings.flatMap((w) => (w.lint ? [w.lint] : []));
  const failed = warnings.find((w) => w.checkError);
  const error = failed ? failed.message : undefined;
  process.stdout.write(json ? checkResultJSON(found, error) : formatCheckReport(found, dockerfile.name, dockerfile.text, error, failed?.line ?? 0));
  return found.length > 0 || error ? 1 : 0;
}

/** --sign: the key, loaded before the build (a wrong password fails before anything runs). */
async function signKeyFor(sign: boolean, keyPath: string | undefined, outputs: OutputSpec[]) {
  if (!sign) {
    if (keyPath) throw new FlagError('kiln build: --key is only used with --sign');
    return undefined;
  }
  if (!keyPath) throw new FlagError('kiln build: --sign needs --key FILE');
  if (!outputs.some((o) => o.type === 'image' && o.push && o.names.length)) throw new FlagError('kiln build: --sign signs the pushed image: add --push and -t REGISTRY/REPO:TAG');
  return (await import('../../sign/keys.js')).loadPrivateKey(keyPath);
}

/** Signs the pushed image under each pushed name's repository. */
async function signPushed(key: import('node:crypto').KeyObject, outputs: OutputSpec[], digest: string, say: (line: string) => unknown): Promise<void> {
  const { signImage } = await import('../../sign/cosign.js');
  const { RegistryClient } = await import('../../../base/oci/registry/client.js');
  const client = new RegistryClient();
  try {
    for (const o of outputs) {
      if (o.type !== 'image' || !o.push) continue;
      for (const name of o.names) {
        const r = await signImage(client, parseReference(name), key, { digest });
        say(`signed ${digest}: ${r.signatureRef}`);
      }
    }
  } finally {
    await client.close();
  }
}
