// RUN → exec vertex (BuildKit dispatchRun + dispatchRunMounts): shell wrapping, heredocs, env, mounts,
// network/security, progress name and the `RUN |N … # buildkit` history line.
import type { ExecMount, ExecOp, VertexInput } from '../../../solver/graph/ops.js';
import { DockerfileSyntaxError } from '../errors.js';
import type { RunCommand } from '../instructions.js';
import { chompHeredocContent, parseHeredocWord } from '../parser.js';
import type { RunMount } from '../run-mount.js';
import { processWord } from '../shell-lexer.js';
import { runCommandString } from './args.js';
import type { DispatchContext } from './context.js';
import { InputList } from './graph-emit.js';
import { commitToHistory, withShell } from './image-config.js';
import { cleanPath, joinPath } from './paths.js';
import { progressName, uppercaseCmd } from './progress.js';
import type { StageState } from './stage-state.js';

const base64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function summarizeHeredoc(doc: string): string {
  const lines = doc.trim().replace(/\r\n/g, '\n').split('\n');
  return lines[0]! + (lines.length > 1 ? '...' : '');
}

function heredocWord(s: string): ReturnType<typeof parseHeredocWord> {
  try { return parseHeredocWord(s); } catch { return undefined; }
}

export function dispatchRun(ctx: DispatchContext, d: StageState, c: RunCommand, sources: (StageState | undefined)[]): void {
  const platform = d.platform!;
  const inputs = new InputList();
  const rootIndex = inputs.index(d.state.ref);
  const mounts: ExecMount[] = [{ input: rootIndex, dest: '/', output: 0, type: 'bind' }];
  let customName = c.original;
  let args = [...c.cmdLine];

  if (c.files.length > 0) {
    if (args.length !== 1 || !c.prependShell) throw new DockerfileSyntaxError(`parsing produced an invalid run command: [${args.join(' ')}]`);
    if (heredocWord(args[0]!)) {
      const file = c.files[0]!;
      const data = file.chomp ? chompHeredocContent(file.data) : file.data;
      if (d.image.os !== 'windows' && data.startsWith('#!')) {
        // A script with a shebang: write it to a file and run that file.
        const script = ctx.emitter.add({ kind: 'file', base: -1, actions: [{ type: 'mkfile', path: '/' + file.name, mode: 0o755, data: base64(data) }] }, [], {
          platform, description: '[internal] preparing inline document',
        });
        mounts.push({ input: inputs.index(script), dest: '/dev/pipes/', selector: '/', readonly: true, output: -1, type: 'bind' });
        args = [joinPath('/dev/pipes/', file.name)];
      } else {
        args = [data];
      }
      customName += ` (${summarizeHeredoc(file.data)})`;
    } else {
      // Several heredocs or a command around one: hand the whole document to the shell.
      let doc = args[0]!;
      for (const f of c.files) doc += '\n' + f.data + f.name;
      args = [doc];
    }
  }
  if (c.prependShell) args = withShell(d.image, args);

  mounts.push(...runMounts(ctx, d, c, sources, inputs));

  const secretEnvs = c.mounts.filter((m) => m.type === 'secret' && m.env !== undefined).map((m) => m.env!);
  let nameEnv = d.state.env;
  for (const k of secretEnvs) nameEnv = nameEnv.set(k, '****');
  let shown: string;
  try { shown = processWord(customName, nameEnv, { escapeToken: ctx.escapeToken, rawQuotes: true, skipUnsetEnv: true }); } catch { shown = customName; }

  const op: ExecOp = {
    kind: 'exec',
    args,
    env: d.state.env.toArray(),
    cwd: d.state.dir || '/',
    user: d.state.user,
    mounts,
    network: c.network,
    security: c.security,
  };
  if (ctx.proxyEnv) op.proxyEnv = ctx.proxyEnv;
  // BuildKit's build arg for the RUN container's host name (default buildkitsandbox).
  const hostname = ctx.buildArgs.BUILDKIT_SANDBOX_HOSTNAME;
  if (hostname) op.hostname = hostname;
  const ref = ctx.emitter.add(op, inputs.inputs, {
    platform,
    description: progressName(d, uppercaseCmd(shown)),
    location: c,
    stage: d.stage.stageName,
    ignoreCache: d.ignoreCache,
  });
  d.state = { ...d.state, ref };
  commitToHistory(d.image, 'RUN ' + runCommandString(args, d.buildArgs, d.state.env), true, true, ctx.epoch);
}

function mountTarget(d: StageState, m: RunMount): string {
  let target = m.target;
  if (!cleanPath(target).startsWith('/')) target = joinPath('/', d.state.dir || '/', target);
  if (target === '/') throw new DockerfileSyntaxError(`invalid mount target ${JSON.stringify(target)}`);
  return target;
}

function runMounts(ctx: DispatchContext, d: StageState, c: RunCommand, sources: (StageState | undefined)[], inputs: InputList): ExecMount[] {
  const out: ExecMount[] = [];
  let sshIndex = 0;
  c.mounts.forEach((m, i) => {
    if (m.type === 'secret') {
      out.push(secretMount(m));
      return;
    }
    if (m.type === 'ssh') {
      if (m.source !== '') throw new DockerfileSyntaxError('ssh does not support source');
      const hasPerm = m.uid !== undefined || m.gid !== undefined || m.mode !== undefined;
      out.push({
        input: -1, dest: m.target || `/run/buildkit/ssh_agent.${sshIndex}`, output: -1, type: 'ssh',
        ssh: { id: m.id || 'default', uid: hasPerm ? m.uid ?? 0 : 0, gid: hasPerm ? m.gid ?? 0 : 0, mode: hasPerm ? m.mode ?? 0o600 : 0o600, optional: !m.required },
      });
      sshIndex++;
      return;
    }
    const from = m.from === '' && m.type === 'cache' ? 'scratch' : m.from;
    let src: VertexInput | null;
    if (from !== '') {
      const s = sources[i];
      if (!s || !s.dispatched) throw new DockerfileSyntaxError(`cannot mount from stage ${JSON.stringify(m.from)} to ${JSON.stringify(m.target)}, stage needs to be defined before current command`);
      src = s.state.ref;
    } else {
      src = ctx.mainContext();
    }
    const target = mountTarget(d, m);
    if (m.type === 'tmpfs') {
      out.push({ input: -1, dest: target, output: -1, type: 'tmpfs', tmpfs: m.sizeLimit ? { size: m.sizeLimit } : {} });
      return;
    }
    const mount: ExecMount = { input: -1, dest: target, output: -1, type: m.type };
    if (m.readOnly) mount.readonly = true;
    if (m.type === 'cache') mount.cache = { id: m.id || cleanPath(m.target), sharing: m.sharing || 'shared' };
    const sourcePath = joinPath('/', m.source);
    if (sourcePath !== '/') {
      mount.selector = sourcePath;
    } else if (m.uid !== undefined || m.gid !== undefined || m.mode !== undefined) {
      // A cache dir owned by uid/gid with a mode: BuildKit prepares it as /cache in the mount's source.
      const owner = { user: { id: m.uid ?? 0 }, group: { id: m.gid ?? 0 } };
      src = ctx.emitter.add({ kind: 'file', base: src === null ? -1 : 0, actions: [{ type: 'mkdir', path: '/cache', mode: m.mode ?? 0o755, makeParents: false, owner }] }, src === null ? [] : [src], {
        platform: d.platform, description: '[internal] setting cache mount permissions',
      });
      mount.selector = '/cache';
    }
    mount.input = inputs.index(src);
    out.push(mount);
  });
  return out;
}

function secretMount(m: RunMount): ExecMount {
  let id = m.source !== '' ? m.source : m.id;
  if (id === '') {
    if (m.target === '') throw new DockerfileSyntaxError('one of source, target required');
    id = m.target.slice(m.target.lastIndexOf('/') + 1);
  }
  let dest = m.target;
  if (m.env === undefined && dest === '') dest = '/run/secrets/' + id.slice(id.lastIndexOf('/') + 1);
  const hasPerm = m.uid !== undefined || m.gid !== undefined || m.mode !== undefined;
  return {
    input: -1, dest, output: -1, type: 'secret',
    secret: { id, uid: hasPerm ? m.uid ?? 0 : 0, gid: hasPerm ? m.gid ?? 0 : 0, mode: hasPerm ? m.mode ?? 0o400 : 0o400, optional: !m.required, env: m.env },
  };
}
