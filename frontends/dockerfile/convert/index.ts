// Dockerfile → build graph + image config (kiln's dockerfile2llb). Parses, expands global ARGs, works out
// which stages the target needs, resolves their bases, then dispatches each needed stage's instructions.
import type { VertexInput } from '../../../solver/graph/ops.js';
import { DockerfileParseError } from '../errors.js';
import { parseStages } from '../instructions.js';
import { checkCommandCasing, checkNodes, checkStageNames } from '../lint/parse-checks.js';
import { checkDefaultBaseNames, checkFromLines } from '../lint/from-checks.js';
import { checkConfig, Linter } from '../lint/linter.js';
import { parseDockerfile } from '../parser.js';
import { IgnoreMatcher } from '../../../base/patterns/dockerignore.js';
import { suggest } from '../suggest.js';
import { buildMetaArgs, PROXY_ARGS } from './args.js';
import type { DispatchContext } from './context.js';
import { dispatchCommand } from './dispatch.js';
import { EnvList } from './env-list.js';
import { GraphEmitter } from './graph-emit.js';
import { DEFAULT_PATH } from './image-config.js';
import { dispatchUser, dispatchWorkdir } from './instructions-meta.js';
import { defaultPlatformArgs } from './platform.js';
import { buildStageStates, linkStages, resolveStages } from './stages.js';
import type { StageState } from './stage-state.js';
import type { ConvertOptions, ConvertResult, ConvertWarning } from './types.js';

export type * from './types.js';

/** Build args BuildKit knows without an ARG instruction (they never trigger the unused-arg warning). */
const BUILTIN_ARGS = new Set([...PROXY_ARGS, 'SOURCE_DATE_EPOCH', 'BUILDKIT_INLINE_CACHE', 'BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE', 'BUILDKIT_CACHE_MOUNT_NS', 'BUILDKIT_MULTI_PLATFORM', 'BUILDKIT_CONTEXT_KEEP_GIT_DIR', 'BUILDKIT_DOCKERFILE_CHECK', 'BUILDKIT_SANDBOX_HOSTNAME']);

function proxyEnv(buildArgs: Record<string, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const k of Object.keys(buildArgs).sort()) if (PROXY_ARGS.has(k)) out[k] = buildArgs[k]!;
  return Object.keys(out).length > 0 ? out : undefined;
}

function sourceDateEpoch(opts: ConvertOptions): number | undefined {
  if (opts.sourceDateEpoch !== undefined) return opts.sourceDateEpoch;
  const v = opts.buildArgs?.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  // BuildKit's dockerui wording, Go's ParseInt error included
  if (!/^\d+$/.test(v)) throw new DockerfileParseError(`invalid SOURCE_DATE_EPOCH: ${v}: strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`, 0, opts.dockerfileName ?? 'Dockerfile');
  return Number(v);
}

/** Sets the stage's starting env, workdir and user from its base config (BuildKit dispatchStages). */
function initFromBaseConfig(ctx: DispatchContext, d: StageState): void {
  const cfg = (d.image.config ??= {});
  if (d.platform!.os !== 'windows' && !(cfg.Env ?? []).some((e) => e.startsWith('PATH='))) cfg.Env = [...(cfg.Env ?? []), `PATH=${DEFAULT_PATH}`];
  let env = d.state.env;
  for (const e of cfg.Env ?? []) {
    const i = e.indexOf('=');
    env = i < 0 ? env.set(e, '') : env.set(e.slice(0, i), e.slice(i + 1));
  }
  d.state = { ...d.state, env };
  if (cfg.WorkingDir) dispatchWorkdir(ctx, d, cfg.WorkingDir);
  if (cfg.User) dispatchUser(undefined, d, cfg.User);
}

/** An error that fails the build because a check reported something and the checks say `error=true`. */
export class LintViolationError extends DockerfileParseError {
  constructor(detail: string, file: string) {
    super(detail, 0, file);
    this.name = 'LintViolationError';
  }
}

export async function convertDockerfile(opts: ConvertOptions): Promise<ConvertResult> {
  if (!opts.check) {
    const lint = new Linter();
    try {
      return await convert(opts, lint);
    } catch (e) {
      // what the checks found before the error is shown with it
      if (e instanceof DockerfileParseError && lint.warnings.length > 0) e.lintWarnings = lint.warnings;
      throw e;
    }
  }
  // --check: the checks' findings, plus the error that stopped the conversion if one did.
  const lint = new Linter();
  try {
    const r = await convert(opts, lint);
    const v = r.lintViolation;
    if (v) r.warnings.push({ message: v, checkError: true });
    return r;
  } catch (e) {
    if (!(e instanceof DockerfileParseError)) throw e;
    const warnings: ConvertWarning[] = lint.warnings.map((w) => ({ line: w.startLine, message: `${w.ruleName}: ${w.detail}`, lint: w }));
    warnings.push({ message: e.inInstruction ? `dockerfile parse error on line ${e.line}: ${e.detail}` : e.detail, line: e.line, checkError: true });
    return { definition: new GraphEmitter(opts.dockerfileName ?? 'Dockerfile', false).builder.definition([]), output: null, image: {}, warnings, stagesUsed: [] };
  }
}

async function convert(opts: ConvertOptions, lint: Linter): Promise<ConvertResult & { lintViolation?: string }> {
  const file = opts.dockerfileName ?? 'Dockerfile';
  const buildArgs = { ...(opts.buildArgs ?? {}) };
  if (opts.dockerfile.length === 0) throw new DockerfileParseError('the Dockerfile cannot be empty', 0, file);
  const rethrowWithFile = (e: unknown): never => {
    if (e instanceof DockerfileParseError && !e.message.startsWith(file + ':') && !e.message.startsWith(file + ' ')) throw new DockerfileParseError(e.detail, e.line, file, e.endLine);
    throw e;
  };
  let ast: ReturnType<typeof parseDockerfile>;
  let parsed: ReturnType<typeof parseStages>;
  try {
    ast = parseDockerfile(opts.dockerfile);
  } catch (e) {
    return rethrowWithFile(e);
  }
  checkSyntaxDirective(ast, file);
  try {
    lint.configure(checkConfig(ast.check, buildArgs.BUILDKIT_DOCKERFILE_CHECK));
  } catch (e) {
    const d = ast.directives.find((x) => x.name === 'check');
    throw new DockerfileParseError((e as Error).message, buildArgs.BUILDKIT_DOCKERFILE_CHECK === undefined && d ? d.line : 0, file);
  }
  try {
    parsed = parseStages(ast);
  } catch (e) {
    if (!(e instanceof DockerfileParseError)) throw e;
    checkNodes(lint, ast, e.line); // what BuildKit found in the instructions before the bad one
    const located = new DockerfileParseError(e.detail, e.line, file, e.endLine);
    located.inInstruction = true;
    throw located;
  }
  checkNodes(lint, ast);
  if (parsed.stages.length === 0) throw new DockerfileParseError('dockerfile contains no stages to build', 0, file);
  checkStageNames(lint, parsed);
  checkCommandCasing(lint, parsed);
  const warnings: ConvertWarning[] = [];
  const escapeToken = ast.escapeToken;

  const targetName = opts.target ?? parsed.stages[parsed.stages.length - 1]!.stageName;
  const platformArgs = EnvList.fromArray(defaultPlatformArgs(opts.buildPlatform, opts.targetPlatform, targetName, buildArgs).map(([k, v]) => `${k}=${v}`));
  let meta: ReturnType<typeof buildMetaArgs>;
  try {
    meta = buildMetaArgs(platformArgs, parsed.metaArgs, buildArgs, escapeToken);
  } catch (e) {
    return rethrowWithFile(e);
  }
  let defaultMeta: EnvList | undefined;
  try {
    defaultMeta = buildMetaArgs(platformArgs, parsed.metaArgs, {}, escapeToken).env;
  } catch {
    defaultMeta = undefined;
  }
  checkDefaultBaseNames(lint, parsed.stages, defaultMeta, escapeToken);
  checkFromLines(lint, parsed.stages, meta.env, new Set([...meta.declared, ...meta.env.keys()]), opts.targetPlatform, escapeToken);
  const epoch = sourceDateEpoch(opts);
  let globalArgs = meta.env;
  if (epoch !== undefined && globalArgs.has('SOURCE_DATE_EPOCH')) globalArgs = globalArgs.set('SOURCE_DATE_EPOCH', String(epoch));

  const emitter = new GraphEmitter(file, !!opts.noCache);
  const stages = buildStageStates(parsed.stages, globalArgs, opts, escapeToken, file);

  let target: StageState | undefined;
  if (opts.target) {
    target = stages.byStageName(opts.target);
    if (!target) {
      const hint = suggest(opts.target, stages.names(), true);
      throw new DockerfileParseError(`target stage ${JSON.stringify(opts.target)} could not be found${hint ? ` (did you mean ${hint}?)` : ''}`, 0, file);
    }
  } else {
    target = stages.states[stages.states.length - 1]!;
  }
  linkStages(stages, file);

  let contextRef: VertexInput | undefined;
  let ignore: IgnoreMatcher | undefined | null = null;
  const ctx: DispatchContext = {
    opts, fileName: file, emitter, stages, globalArgs, buildArgs, escapeToken, epoch, warnings, lint,
    proxyEnv: proxyEnv(buildArgs),
    ignoreMatcher: () => {
      if (ignore === null) ignore = opts.dockerignorePatterns?.length ? new IgnoreMatcher(opts.dockerignorePatterns) : undefined;
      return ignore;
    },
    mainContext: () => {
      if (!contextRef) {
        const name = opts.contextName ?? 'context';
        const excludes = opts.dockerignorePatterns ?? [];
        contextRef = emitter.add(
          { kind: 'source', identifier: `local://${name}`, attrs: excludes.length > 0 ? { excludepatterns: JSON.stringify(excludes) } : undefined },
          [], { description: `[internal] load build context` },
        );
      }
      return contextRef;
    },
  };

  const resolveCtx = { opts, fileName: file, emitter, stages };
  const reachable = await resolveStages(resolveCtx, target);
  // A check without a target checks every stage, so every stage is dispatched.
  if (opts.check && !opts.target) for (const s of stages.states) if (!reachable.has(s)) for (const r of await resolveStages(resolveCtx, s)) reachable.add(r);

  for (const d of stages.states) {
    if (!reachable.has(d) || d.dispatched) continue;
    d.init();
    d.dispatched = true;
    d.platform ??= opts.targetPlatform;
    initFromBaseConfig(ctx, d);
    for (const entry of d.commands) dispatchCommand(ctx, d, entry);
  }

  // Unused --build-arg values (BuildKit/docker: "were not consumed").
  const declared = new Set<string>(meta.declared);
  for (const d of reachable) for (const c of d.commands) if (c.command.name === 'arg') for (const a of c.command.args) declared.add(a.key);
  const unused = Object.keys(buildArgs).filter((k) => !declared.has(k) && !BUILTIN_ARGS.has(k) && !platformArgs.has(k)).sort();
  if (unused.length > 0) warnings.push({ message: `one or more build-args [${unused.join(' ')}] were not consumed` });

  const image = target.image;
  image.config ??= {};
  if (opts.labels && Object.keys(opts.labels).length > 0) image.config.Labels = { ...(image.config.Labels ?? {}), ...opts.labels };
  const tp = opts.targetPlatform;
  const sameOsArch = image.os === tp.os && image.architecture === tp.architecture;
  image.os = tp.os;
  image.architecture = tp.architecture;
  if (tp.variant || !sameOsArch) {
    if (tp.variant) image.variant = tp.variant;
    else delete image.variant;
  }
  // The base's OS version stays while the target is its OS and architecture (BuildKit sets the target's
  // version otherwise; kiln's target platform carries none).
  if (!sameOsArch) delete image['os.version'];
  delete image.created;
  delete image.rootfs;

  const output = target.state.ref;
  for (const w of lint.warnings) warnings.push({ line: w.startLine, message: `${w.ruleName}: ${w.detail}`, lint: w });
  const violation = lint.violation();
  if (violation && !opts.check) throw new LintViolationError(violation, file);
  return {
    lintViolation: violation,
    definition: emitter.builder.definition(output ? [output] : []),
    output,
    image,
    baseImage: target.baseImage,
    warnings,
    stagesUsed: stages.states.filter((s) => reachable.has(s) && !s.unregistered).map((s) => s.label),
  };
}

/**
 * `# syntax=` names the frontend. kiln has one built in, the Dockerfile frontend, which serves every
 * docker/dockerfile version (BuildKit's own images: docker/dockerfile, docker/dockerfile-upstream, from
 * any registry or mirror, with or without a digest); any other frontend image is a clear error, not a
 * silent substitute.
 */
function checkSyntaxDirective(ast: ReturnType<typeof parseDockerfile>, file: string): void {
  const d = ast.directives.find((x) => x.name === 'syntax');
  if (!d) return;
  const image = d.value.replace(/@sha256:[a-f0-9]{64}$/, '');
  if (/^([^/]+\/)?docker\/dockerfile(-upstream)?(:[A-Za-z0-9._-]+)?$/.test(image)) return;
  throw new DockerfileParseError(`unsupported frontend "${d.value}" in the syntax directive: kiln has only the built-in Dockerfile frontend (docker/dockerfile:*)`, d.line, file);
}
