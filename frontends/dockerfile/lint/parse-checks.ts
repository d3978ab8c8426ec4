// Checks that need only the parsed Dockerfile: keyword casing, stage names, MAINTAINER, empty continuation
// lines, description comments (BuildKit's instructions.Parse with a linter, validateStageNames,
// validateCommandCasing).
import type { ParsedStages } from '../instructions.js';
import type { DockerfileAST, Node } from '../parser.js';
import type { Linter } from './linter.js';
import { MESSAGES } from './rules.js';

const RESERVED_STAGE_NAMES = new Set(['context', 'scratch']);

const isLower = (s: string): boolean => s === s.toLowerCase();
const isUpper = (s: string): boolean => s === s.toUpperCase();
const selfConsistent = (s: string): boolean => isLower(s) || isUpper(s);

/** The argument words of a node as written (FROM image AS Name → ['image', 'AS', 'Name']). */
const words = (n: Node): string[] => n.next.map((w) => w.value);
const range = (n: Node) => ({ line: n.startLine, endLine: n.endLine });

/** Per instruction, in file order: what BuildKit reports while it parses (up to the instruction at `beforeLine`). */
export function checkNodes(lint: Linter, ast: DockerfileAST, beforeLine = Infinity): void {
  for (const w of ast.warnings) {
    if (w.url.endsWith('/no-empty-continuation/')) lint.run('NoEmptyContinuation', { line: w.line, endLine: w.line }, MESSAGES.NoEmptyContinuation());
  }
  for (const n of ast.children) {
    if (n.startLine >= beforeLine) break;
    const keyword = n.keyword || n.value;
    if (n.value === 'maintainer') lint.run('MaintainerDeprecated', range(n), MESSAGES.MaintainerDeprecated());
    if (n.value === 'from') {
      const args = words(n);
      if (args.length === 3 && !isLower(args[2]!)) lint.run('StageNameCasing', range(n), MESSAGES.StageNameCasing(args[2]!));
      if (args.length >= 3 && selfConsistent(keyword)) {
        const asMatches = isLower(keyword) ? args[1] === args[1]!.toLowerCase() : args[1] === args[1]!.toUpperCase();
        if (!asMatches) lint.run('FromAsCasing', range(n), MESSAGES.FromAsCasing(keyword, args[1]!));
      }
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') checkDescription(lint, n, 'FROM', [args[2]!.toLowerCase()]);
    }
    if (n.value === 'arg') {
      const keys = words(n).map((a) => (a.includes('=') ? a.slice(0, a.indexOf('=')) : a));
      checkDescription(lint, n, 'ARG', keys);
    }
  }
}

/** A comment right above FROM … AS name / ARG name must start with that name to be its description. */
function checkDescription(lint: Linter, n: Node, instruction: string, keys: string[]): void {
  if (n.prevComment.length === 0 || keys.length === 0) return;
  const first = n.prevComment[n.prevComment.length - 1]!.split(' ')[0]!;
  if (keys.includes(first)) return;
  lint.run('InvalidDefinitionDescription', range(n), MESSAGES.InvalidDefinitionDescription(instruction, keys.length > 1 ? '<arg_key>' : keys[0]!));
}

/** Stage names: reserved words and duplicates. */
export function checkStageNames(lint: Linter, parsed: ParsedStages): void {
  const seen = new Set<string>();
  for (const st of parsed.stages) {
    if (st.stageName === '') continue;
    if (RESERVED_STAGE_NAMES.has(st.stageName)) lint.run('ReservedStageName', st, MESSAGES.ReservedStageName(st.stageName));
    if (seen.has(st.stageName)) lint.run('DuplicateStageName', st, MESSAGES.DuplicateStageName(st.stageName));
    seen.add(st.stageName);
  }
}

/** Keywords should all be upper case or all lower case, whichever most of them are. */
export function checkCommandCasing(lint: Linter, parsed: ParsedStages): void {
  let lower = 0;
  let upper = 0;
  const count = (k: string): void => {
    if (!selfConsistent(k)) return;
    if (isLower(k)) lower++;
    else upper++;
  };
  for (const st of parsed.stages) {
    count(st.keyword);
    for (const c of st.commands) count(c.keyword);
  }
  const majorityLower = lower > upper;
  const check = (k: string, where: { line: number; endLine: number }): void => {
    let casing = '';
    if (majorityLower && k.toLowerCase() !== k) casing = 'lowercase';
    else if (!majorityLower && k.toUpperCase() !== k) casing = 'uppercase';
    if (casing) lint.run('ConsistentInstructionCasing', where, MESSAGES.ConsistentInstructionCasing(k, casing));
  };
  for (const st of parsed.stages) {
    check(st.keyword, st);
    for (const c of st.commands) check(c.keyword, c);
  }
}
