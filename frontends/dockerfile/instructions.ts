// Typed instructions from AST nodes (BuildKit instructions/parse.go). Words stay unexpanded: ARG/ENV
// scoping is applied during graph conversion with expand.ts.
import { DockerfileParseError, DockerfileSyntaxError, atLine } from './errors.js';
import { InstructionFlags } from './flags.js';
import { parseGoDuration } from '../../base/units.js';
import type { Heredoc, Node } from './line-parsers.js';
import { chompHeredocContent, parseHeredocWord, type DockerfileAST } from './parser.js';
import { parseMount, type RunMount } from './run-mount.js';
import { withSuggestion } from './suggest.js';

export interface Located {
  /** 1-based first and last line of the instruction */
  line: number;
  endLine: number;
  /** instruction text as joined by the parser */
  original: string;
  /** keyword as written */
  keyword: string;
  node: Node;
}

export interface KeyValue { key: string; value: string; /** old `ENV k v` form */ noDelim: boolean }
export interface ArgDef { key: string; value?: string; docComment: string }
/** A heredoc used as a COPY/ADD source. */
export interface SourceContent { path: string; data: string; expand: boolean }
/** A heredoc attached to RUN/CMD/ENTRYPOINT. */
export interface InlineFile { name: string; data: string; chomp: boolean }

export interface CommandLine {
  /** exec form: the array; shell form: one string */
  cmdLine: string[];
  /** true for shell form (the command runs through SHELL) */
  prependShell: boolean;
  files: InlineFile[];
}

export interface HealthConfig {
  test: string[];
  /** nanoseconds; 0 = not set */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

export type Command =
  | (Located & { name: 'env'; env: KeyValue[] })
  | (Located & { name: 'label'; labels: KeyValue[] })
  | (Located & { name: 'maintainer'; maintainer: string })
  | (Located & { name: 'add'; sources: string[]; sourceContents: SourceContent[]; dest: string; chown: string; chmod: string; link: boolean; keepGitDir?: boolean; checksum: string; unpack?: boolean; exclude: string[] })
  | (Located & { name: 'copy'; sources: string[]; sourceContents: SourceContent[]; dest: string; from: string; chown: string; chmod: string; link: boolean; parents: boolean; exclude: string[] })
  | (Located & { name: 'onbuild'; expression: string })
  | (Located & { name: 'workdir'; path: string })
  | (Located & CommandLine & { name: 'run'; mountSpecs: string[]; mounts: RunMount[]; network: 'default' | 'none' | 'host'; security: 'sandbox' | 'insecure'; devices: string[]; flagsUsed: string[] })
  | (Located & CommandLine & { name: 'cmd' })
  | (Located & CommandLine & { name: 'entrypoint' })
  | (Located & { name: 'healthcheck'; health: HealthConfig })
  | (Located & { name: 'expose'; ports: string[] })
  | (Located & { name: 'user'; user: string })
  | (Located & { name: 'volume'; volumes: string[] })
  | (Located & { name: 'stopsignal'; signal: string })
  | (Located & { name: 'arg'; args: ArgDef[] })
  | (Located & { name: 'shell'; shell: string[] });

export type RunCommand = Extract<Command, { name: 'run' }>;

export interface Stage extends Located {
  name: 'from';
  /** image reference or stage name, unexpanded */
  baseName: string;
  /** `AS name`, lowercased; '' when unnamed */
  stageName: string;
  /** --platform value, unexpanded; '' when not given */
  platform: string;
  commands: Command[];
  comments: string[];
  docComment: string;
}

export type Instruction = Command | Stage;

export const INSTRUCTION_NAMES = ['add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir'] as const;

const err = (m: string): DockerfileSyntaxError => new DockerfileSyntaxError(m);
const atLeastOne = (c: string): DockerfileSyntaxError => err(`${c} requires at least one argument`);
const exactlyOne = (c: string): DockerfileSyntaxError => err(`${c} requires exactly one argument`);
const noDest = (c: string): DockerfileSyntaxError => err(`${c} requires at least two arguments, but only one was provided. Destination could not be determined`);

/** The node's argument words; ONBUILD's nested instruction contributes its keyword and words. */
function nodeArgs(node: Node): string[] {
  const out: string[] = [];
  for (const a of node.next) {
    if (a.children.length === 0) out.push(a.value);
    else if (a.children.length === 1) out.push(a.children[0]!.keyword || a.children[0]!.value, ...nodeArgs(a.children[0]!));
  }
  return out;
}

function located(node: Node): Located {
  return { line: node.startLine, endLine: node.endLine, original: node.original, keyword: node.keyword, node };
}

function kvps(args: string[], cmd: string): KeyValue[] {
  if (args.length === 0) throw atLeastOne(cmd);
  if (args.length % 3 !== 0) throw err(`Bad input to ${cmd}, too many arguments`);
  const res: KeyValue[] = [];
  for (let j = 0; j < args.length; j += 3) {
    if (args[j]!.length === 0) throw err(`${cmd} names can not be blank`);
    res.push({ key: args[j]!, value: args[j + 1]!, noDelim: args[j + 2] === '' });
  }
  return res;
}

function commandLine(args: string[], node: Node, emptyAsNil: boolean): CommandLine {
  const json = !!node.attributes.json;
  let cmdLine = args.length === 0 ? [] : json ? args : [args.join(' ')];
  if (emptyAsNil && cmdLine.length === 0) cmdLine = [];
  return { cmdLine, prependShell: !json, files: node.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp })) };
}

function sourcesAndDest(args: string[], heredocs: Heredoc[], cmd: string): { sources: string[]; sourceContents: SourceContent[]; dest: string } {
  const dest = args[args.length - 1]!;
  const heredocWord = (w: string): Heredoc | undefined => {
    try { return parseHeredocWord(w); } catch { return undefined; }
  };
  if (heredocWord(dest)) throw err(`${cmd} cannot accept a heredoc as a destination`);
  const byName = new Map(heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const sourceContents: SourceContent[] = [];
  for (const src of args.slice(0, -1)) {
    const h = heredocWord(src);
    if (!h) { sources.push(src); continue; }
    let data = byName.get(h.name)?.content ?? '';
    if (h.chomp) data = chompHeredocContent(data);
    sourceContents.push({ path: h.name, data, expand: h.expand });
  }
  return { sources, sourceContents, dest };
}

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function docComment(comments: string[], name: string): string {
  if (name === '') return '';
  for (const line of comments) if (line.startsWith(name + ' ')) return line.slice(name.length + 1);
  return '';
}

function durationFlag(name: string, value: string): number {
  if (value === '') return 0;
  const d = parseGoDuration(value);
  if (d === 0) return 0;
  if (d < 1e6) throw err(`Interval "${name}" cannot be less than 1ms`);
  return d;
}

function parseFrom(node: Node, args: string[], flags: InstructionFlags): Stage {
  let stageName = '';
  if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
    stageName = args[2]!.toLowerCase();
    if (!VALID_STAGE_NAME.test(stageName)) throw err(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
  } else if (args.length !== 1) {
    throw err('FROM requires either one or three arguments');
  }
  const platform = flags.string('platform');
  flags.parse();
  return { ...located(node), name: 'from', baseName: args[0]!, stageName, platform: platform.value, commands: [], comments: node.prevComment, docComment: docComment(node.prevComment, stageName) };
}

function parseRun(node: Node, args: string[], flags: InstructionFlags): RunCommand {
  const mount = flags.strings('mount');
  const network = flags.string('network', 'default');
  const security = flags.string('security', 'sandbox');
  const device = flags.strings('device');
  flags.parse();
  // Mounts with variables are parsed fully once ARG/ENV are known (expand.ts); the rest fail early here.
  const mounts = mount.values.map((spec) => (spec.includes('$') ? parseMount(spec) : parseMount(spec, (w) => w)));
  if (!['default', 'none', 'host'].includes(network.value)) throw err(`invalid network mode ${JSON.stringify(network.value)}`);
  if (!['sandbox', 'insecure'].includes(security.value)) throw err(`security ${JSON.stringify(security.value)} is not valid`);
  return {
    ...located(node), name: 'run', ...commandLine(args, node, false),
    mountSpecs: mount.values, mounts, network: network.value as RunCommand['network'], security: security.value as RunCommand['security'],
    devices: device.values, flagsUsed: flags.used(),
  };
}

function parseHealthcheck(node: Node, args: string[], flags: InstructionFlags): Command {
  if (args.length === 0) throw atLeastOne('HEALTHCHECK');
  let typ = args[0]!.toUpperCase();
  const rest = args.slice(1);
  const health: HealthConfig = { test: [], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (typ === 'NONE') {
    if (rest.length !== 0) throw err('HEALTHCHECK NONE takes no arguments');
    health.test = [typ];
    return { ...located(node), name: 'healthcheck', health };
  }
  const interval = flags.string('interval');
  const timeout = flags.string('timeout');
  const startPeriod = flags.string('start-period');
  const startInterval = flags.string('start-interval');
  const retries = flags.string('retries');
  flags.parse();
  if (typ !== 'CMD') throw err(`Unknown type "${typ}" in HEALTHCHECK (try CMD)`);
  const cmd = commandLine(rest, node, false).cmdLine;
  if (cmd.length === 0) throw err('Missing command after HEALTHCHECK CMD');
  if (!node.attributes.json) typ = 'CMD-SHELL';
  health.test = [typ, ...cmd];
  health.interval = durationFlag('interval', interval.value);
  health.timeout = durationFlag('timeout', timeout.value);
  health.startPeriod = durationFlag('start-period', startPeriod.value);
  health.startInterval = durationFlag('start-interval', startInterval.value);
  if (retries.value !== '') {
    if (!/^[+-]?[0-9]+$/.test(retries.value)) throw err(`strconv.ParseInt: parsing ${JSON.stringify(retries.value)}: invalid syntax`);
    const n = Number.parseInt(retries.value, 10);
    if (n > 2147483647 || n < -2147483648) throw err(`strconv.ParseInt: parsing ${JSON.stringify(retries.value)}: value out of range`);
    if (n < 0) throw err(`--retries cannot be negative (${n})`);
    health.retries = n;
  }
  return { ...located(node), name: 'healthcheck', health };
}

function parseOnbuild(node: Node, args: string[], flags: InstructionFlags): Command {
  if (args.length === 0) throw atLeastOne('ONBUILD');
  flags.parse();
  const trigger = args[0]!.trim().toUpperCase();
  if (trigger === 'ONBUILD') throw err('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') throw err(`${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = node.original.replace(/^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*/i, '');
  for (const h of node.heredocs) expression += '\n' + h.content + h.name;
  return { ...located(node), name: 'onbuild', expression };
}

/** Converts one instruction node; throws DockerfileParseError with the node's line. */
export function parseInstruction(node: Node): Instruction {
  try {
    return parseInstructionInner(node);
  } catch (e) {
    atLine(e, node.startLine, node.endLine);
  }
}

function parseInstructionInner(node: Node): Instruction {
  const args = nodeArgs(node);
  const flags = new InstructionFlags(node.flags);
  const loc = (): Located => located(node);
  switch (node.value) {
    case 'env':
      flags.parse();
      return { ...loc(), name: 'env', env: kvps(args, 'ENV') };
    case 'maintainer':
      if (args.length !== 1) throw exactlyOne('MAINTAINER');
      flags.parse();
      return { ...loc(), name: 'maintainer', maintainer: args[0]! };
    case 'label':
      flags.parse();
      return { ...loc(), name: 'label', labels: kvps(args, 'LABEL') };
    case 'add': {
      if (args.length < 2) throw noDest('ADD');
      const chown = flags.string('chown');
      const chmod = flags.string('chmod');
      const link = flags.bool('link');
      const keepGitDir = flags.bool('keep-git-dir');
      const checksum = flags.string('checksum');
      const unpack = flags.bool('unpack');
      const exclude = flags.strings('exclude');
      flags.parse();
      return {
        ...loc(), name: 'add', ...sourcesAndDest(args, node.heredocs, 'ADD'), chown: chown.value, chmod: chmod.value, link: link.value === 'true',
        keepGitDir: keepGitDir.used ? keepGitDir.value === 'true' : undefined, checksum: checksum.value,
        unpack: unpack.used ? unpack.value === 'true' : undefined, exclude: exclude.values,
      };
    }
    case 'copy': {
      if (args.length < 2) throw noDest('COPY');
      const chown = flags.string('chown');
      const from = flags.string('from');
      const chmod = flags.string('chmod');
      const link = flags.bool('link');
      const exclude = flags.strings('exclude');
      const parents = flags.bool('parents');
      flags.parse();
      return {
        ...loc(), name: 'copy', ...sourcesAndDest(args, node.heredocs, 'COPY'), from: from.value, chown: chown.value, chmod: chmod.value,
        link: link.value === 'true', parents: parents.value === 'true', exclude: exclude.values,
      };
    }
    case 'from':
      return parseFrom(node, args, flags);
    case 'onbuild':
      return parseOnbuild(node, args, flags);
    case 'workdir':
      if (args.length !== 1) throw exactlyOne('WORKDIR');
      flags.parse();
      return { ...loc(), name: 'workdir', path: args[0]! };
    case 'run':
      return parseRun(node, args, flags);
    case 'cmd':
      flags.parse();
      return { ...loc(), name: 'cmd', ...commandLine(args, node, false) };
    case 'entrypoint':
      flags.parse();
      return { ...loc(), name: 'entrypoint', ...commandLine(args, node, true) };
    case 'healthcheck':
      return parseHealthcheck(node, args, flags);
    case 'expose':
      if (args.length === 0) throw atLeastOne('EXPOSE');
      flags.parse();
      return { ...loc(), name: 'expose', ports: [...args].sort() };
    case 'user':
      if (args.length !== 1) throw exactlyOne('USER');
      flags.parse();
      return { ...loc(), name: 'user', user: args[0]! };
    case 'volume': {
      if (args.length === 0) throw atLeastOne('VOLUME');
      flags.parse();
      const volumes = args.map((v) => v.trim());
      if (volumes.some((v) => v === '')) throw err('VOLUME specified can not be an empty string');
      return { ...loc(), name: 'volume', volumes };
    }
    case 'stopsignal':
      if (args.length !== 1) throw exactlyOne('STOPSIGNAL');
      return { ...loc(), name: 'stopsignal', signal: args[0]! };
    case 'arg': {
      if (args.length < 1) throw atLeastOne('ARG');
      const defs = args.map((a): ArgDef => {
        const i = a.indexOf('=');
        if (i === 0) throw err('ARG names can not be blank');
        const key = i < 0 ? a : a.slice(0, i);
        return i < 0 ? { key, docComment: docComment(node.prevComment, key) } : { key, value: a.slice(i + 1), docComment: docComment(node.prevComment, key) };
      });
      return { ...loc(), name: 'arg', args: defs };
    }
    case 'shell': {
      flags.parse();
      const shell = commandLine(args, node, false).cmdLine;
      if (shell.length === 0) throw atLeastOne('SHELL');
      if (!node.attributes.json) throw err(`SHELL requires the arguments to be in JSON form`);
      return { ...loc(), name: 'shell', shell };
    }
  }
  throw err(withSuggestion(`unknown instruction: ${node.keyword || node.value}`, node.keyword || node.value, INSTRUCTION_NAMES.map((n) => n.toUpperCase()), false));
}

export interface ParsedStages {
  /** ARG instructions before the first FROM */
  metaArgs: Extract<Command, { name: 'arg' }>[];
  stages: Stage[];
}

/** Splits the instructions into global ARGs and build stages. */
export function parseStages(ast: DockerfileAST): ParsedStages {
  const metaArgs: ParsedStages['metaArgs'] = [];
  const stages: Stage[] = [];
  for (const node of ast.children) {
    const inst = parseInstruction(node);
    if (inst.name === 'from') {
      stages.push(inst);
      continue;
    }
    if (stages.length === 0) {
      if (inst.name === 'arg') {
        metaArgs.push(inst);
        continue;
      }
      throw new DockerfileParseError('no build stage in current context', node.startLine);
    }
    stages[stages.length - 1]!.commands.push(inst);
  }
  return { metaArgs, stages };
}
