// COPY and ADD → file vertex (BuildKit dispatchCopy): sources from the context, a stage, an image, a URL
// or a heredoc; destination relative to WORKDIR; --chown/--chmod/--link/--exclude/--parents.
import type { CopyAction, FileAction, VertexInput } from '../../../solver/graph/ops.js';
import { DockerfileSyntaxError } from '../errors.js';
import type { Command } from '../instructions.js';
import { checkCopyIgnored } from '../lint/command-checks.js';
import { processWord } from '../shell-lexer.js';
import type { DispatchContext } from './context.js';
import { parseChmod, parseChown } from './file-owner.js';
import { InputList } from './graph-emit.js';
import { commitToHistory } from './image-config.js';
import { destRelativeToWorkdir, normalizePath } from './paths.js';
import { progressName, uppercaseCmd } from './progress.js';
import type { StageState } from './stage-state.js';

export type CopyLike = Extract<Command, { name: 'copy' | 'add' }>;

const base64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** git@host:repo, git://…, ssh://…, or an http(s) URL of a `.git` repository. */
export function isGitSource(src: string): boolean {
  if (/^(git@|git:\/\/|ssh:\/\/)/.test(src)) return true;
  if (/^https?:\/\//.test(src)) {
    const path = src.replace(/[#?].*$/, '');
    return /\.git\/?$/.test(path);
  }
  return false;
}

export function isHTTPSource(src: string): boolean {
  return /^https?:\/\//.test(src) && !isGitSource(src);
}

/** File name an ADD of a URL saves as: the last path element, or `__unnamed__`. */
export function urlFileName(src: string): string {
  try {
    const u = new URL(src);
    const parts = u.pathname.split('/').filter((p) => p !== '');
    const base = parts[parts.length - 1];
    return base && base !== '.' ? decodeURIComponent(base) : '__unnamed__';
  } catch {
    return '__unnamed__';
  }
}

function checksumValid(c: string): boolean {
  return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(c) && (!c.startsWith('sha256:') || /^sha256:[a-f0-9]{64}$/.test(c));
}

/**
 * `source` is the stage/image state for COPY --from (undefined = the build context).
 */
export function dispatchCopy(ctx: DispatchContext, d: StageState, c: CopyLike, source: StageState | undefined): void {
  const isAdd = c.name === 'add';
  const platform = d.platform!;
  const dest = destRelativeToWorkdir(d.state.dir || '/', c.dest);
  const owner = parseChown(c.chown);
  const { mode, modeStr } = parseChmod(c.chmod);
  const parents = c.name === 'copy' && c.parents;
  const checksum = c.name === 'add' ? c.checksum : '';

  if (checksum !== '') {
    if (!isAdd) throw new DockerfileSyntaxError("checksum can't be specified for COPY");
    if (c.sources.length !== 1) throw new DockerfileSyntaxError("checksum can't be specified for multiple sources");
    if (!isHTTPSource(c.sources[0]!) && !isGitSource(c.sources[0]!)) throw new DockerfileSyntaxError('checksum requires HTTP(S) or Git sources');
  }
  // Several sources to a destination without a trailing slash: BuildKit v0.25 does not refuse it (the
  // classic builder's "must be a directory" rule is not BuildKit's); each source is copied in turn.
  let commit = isAdd ? 'ADD' : 'COPY';
  if (parents) commit += ' --parents';
  if (c.chown !== '') commit += ' --chown=' + c.chown;
  if (c.chmod !== '') commit += ' --chmod=' + c.chmod;

  let shown: string;
  try { shown = processWord(c.original, d.state.env, { escapeToken: ctx.escapeToken }); } catch { shown = c.original; }
  const name = uppercaseCmd(shown);
  const progress = progressName(d, name);

  const inputs = new InputList();
  const link = c.link && mode === undefined && modeStr === undefined;
  const baseIndex = link ? -1 : inputs.index(d.state.ref);
  const actions: FileAction[] = [];
  const common = (): Partial<CopyAction> => {
    const o: Partial<CopyAction> = { createDestPath: true };
    if (owner) o.owner = owner;
    if (mode !== undefined) o.mode = mode;
    if (modeStr !== undefined) o.modeStr = modeStr;
    if (c.exclude.length > 0) o.excludePatterns = [...c.exclude];
    return o;
  };

  for (const src of c.sources) {
    commit += ' ' + src;
    if (isGitSource(src)) {
      if (!isAdd) throw new DockerfileSyntaxError("source can't be a git ref for COPY");
      throw new DockerfileSyntaxError(`ADD from a git repository (${src}) is not supported by kiln yet; clone it in a stage and COPY --from that stage`);
    }
    if (isHTTPSource(src)) {
      if (!isAdd) throw new DockerfileSyntaxError("source can't be a URL for COPY");
      const f = urlFileName(src);
      const attrs: Record<string, string> = { filename: f };
      if (checksum !== '') {
        if (!checksumValid(checksum)) throw new DockerfileSyntaxError(`invalid checksum digest format: ${checksum}`);
        attrs.checksum = checksum;
      }
      const http = ctx.emitter.add({ kind: 'source', identifier: src, attrs }, [], { description: progress, location: c, stage: d.stage.stageName, ignoreCache: d.ignoreCache });
      const a: CopyAction = { type: 'copy', src: inputs.index(http), srcPath: f, destPath: dest, ...common() };
      if (isAdd && c.name === 'add' && c.unpack) a.attemptUnpackDockerCompatibility = true;
      actions.push(a);
      continue;
    }
    if (!source) checkCopyIgnored(ctx.lint, ctx.ignoreMatcher(), isAdd, src, c);
    let srcPath = src;
    let includePatterns: string[] | undefined;
    if (parents) {
      // `a/./b/c`: everything after the pivot keeps its directories under dest.
      const pivot = srcPath.indexOf('/./');
      let pattern: string;
      if (pivot < 0) { pattern = srcPath; srcPath = '/'; } else { pattern = srcPath.slice(pivot + 3); srcPath = srcPath.slice(0, pivot); }
      includePatterns = [normalizePath('/', pattern, false).replace(/^\//, '')];
    }
    srcPath = normalizePath('/', srcPath, false);
    const from = source ? source.state.ref : ctx.mainContext();
    const a: CopyAction = {
      type: 'copy', src: inputs.index(from), srcPath, destPath: dest, ...common(),
      followSymlink: true, dirCopyContents: true, allowWildcard: true, allowEmptyWildcard: true,
    };
    if (includePatterns) a.includePatterns = includePatterns;
    if (parents) a.parents = true;
    const unpack = isAdd ? (c.name === 'add' && c.unpack !== undefined ? c.unpack : true) : false;
    if (unpack) a.attemptUnpackDockerCompatibility = true;
    actions.push(a);
  }

  for (const sc of c.sourceContents) {
    commit += ' <<' + sc.path;
    const doc = ctx.emitter.add({ kind: 'file', base: -1, actions: [{ type: 'mkfile', path: '/' + sc.path.replace(/^\/+/, ''), mode: 0o644, data: base64(sc.data) }] }, [], {
      platform, description: '[internal] preparing inline document',
    });
    actions.push({ type: 'copy', src: inputs.index(doc), srcPath: '/' + sc.path.replace(/^\/+/, ''), destPath: dest, ...common() });
  }
  commit += ' ' + c.dest;

  const meta = { platform, location: c, stage: d.stage.stageName, ignoreCache: d.ignoreCache };
  if (link) {
    const layer = ctx.emitter.add({ kind: 'file', base: -1, actions }, inputs.inputs, { ...meta, description: progress });
    d.cmdIndex--; // the merge shares the copy's step number
    const linkName = progressName(d, 'LINK ' + name);
    let ref: VertexInput = layer;
    if (d.state.ref !== null) ref = ctx.emitter.add({ kind: 'merge' }, [d.state.ref, layer], { ...meta, platform: undefined, description: linkName });
    d.state = { ...d.state, ref };
  } else {
    const ref = ctx.emitter.add({ kind: 'file', base: baseIndex, actions }, inputs.inputs, { ...meta, description: progress });
    d.state = { ...d.state, ref };
  }
  commitToHistory(d.image, commit, true, true, ctx.epoch);
}
