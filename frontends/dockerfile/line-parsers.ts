// Per-instruction argument parsers (BuildKit parser/line_parsers.go and split_command.go): they turn the
// text after the keyword into the `next` list of a node. No quote removal or expansion happens here.
import { DockerfileSyntaxError } from './errors.js';
import { goTrimLeftSpace, goTrimSpace, isGoSpace } from './go-text.js';

/** One node of BuildKit's AST. Instruction nodes have `value` lowercased; argument nodes keep it verbatim. */
export interface Node {
  value: string;
  /** Argument nodes (BuildKit's `Next` chain). */
  next: Node[];
  /** Only for ONBUILD's argument: the nested instruction. */
  children: Node[];
  flags: string[];
  attributes: { json?: boolean };
  heredocs: Heredoc[];
  /** The instruction text as joined from its lines (comments and continuations removed). */
  original: string;
  /** The keyword as written (e.g. `From`); empty for argument nodes. */
  keyword: string;
  startLine: number;
  endLine: number;
  /** Comment lines directly above the instruction (used for doc comments / lint). */
  prevComment: string[];
}

export interface Heredoc {
  name: string;
  fileDescriptor: number;
  /** Unquoted delimiter: variables in the content are expanded. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the content lines. */
  chomp: boolean;
  /** Raw content, every line with its newline, exactly as in the file. */
  content: string;
}

export interface ParseContext {
  escapeToken: string;
}

export function argNode(value: string): Node {
  return { value, next: [], children: [], flags: [], attributes: {}, heredocs: [], original: '', keyword: '', startLine: 0, endLine: 0, prevComment: [] };
}

// Go regexp `[\t\v\f\r ]+`
const RE_WHITESPACE = /[\t\v\f\r ]+/g;

/** Go's Regexp.Split(s, n) with the whitespace regexp. */
export function splitWhitespace(s: string, n: number): string[] {
  if (n === 0) return [];
  if (s.length === 0) return [''];
  const out: string[] = [];
  let beg = 0;
  let end = 0;
  RE_WHITESPACE.lastIndex = 0;
  for (let m = RE_WHITESPACE.exec(s); m; m = RE_WHITESPACE.exec(s)) {
    if (n > 0 && out.length === n - 1) break;
    end = m.index;
    if (m.index + m[0].length !== 0) out.push(s.slice(beg, end));
    beg = m.index + m[0].length;
  }
  if (end !== s.length) out.push(s.slice(beg));
  return out;
}

// Go code that indexes a string byte by byte sees each UTF-8 byte as a rune (so 0x85 and 0xA0 bytes count as
// spaces and non-ASCII flag values come out as Latin-1 mojibake). Working on the Latin-1 view reproduces that.
const toBytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const fromBytes = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');

/** Splits an instruction line into keyword, `--flags` and the rest. */
export function splitCommand(line: string, ctx: ParseContext): { cmd: string; flags: string[]; args: string } {
  const cmdline = splitWhitespace(goTrimSpace(line), 2);
  let args = '';
  let flags: string[] = [];
  if (cmdline.length === 2) ({ args, flags } = extractBuilderFlags(cmdline[1]!, ctx));
  return { cmd: cmdline[0]!, flags, args: goTrimSpace(args) };
}

// Flag words are built byte by byte, so they keep the Latin-1 view (upstream writes each byte as a rune).
function extractBuilderFlags(text: string, ctx: ParseContext): { args: string; flags: string[] } {
  const line = toBytes(text);
  const esc = ctx.escapeToken;
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  const rest = (pos: number): { args: string; flags: string[] } => ({ args: fromBytes(line.slice(pos)), flags: words });
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isGoSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return rest(pos);
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isGoSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return rest(pos);
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === esc) {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === esc) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return { args: '', flags: words };
}

/** Words separated by unquoted whitespace; quotes and escapes are kept (ENV/LABEL/ARG values). */
export function parseWords(rest: string, ctx: ParseContext): string[] {
  const esc = ctx.escapeToken;
  const chars = Array.from(rest);
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOK = false;
  let sb = '';
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isGoSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOK || sb.length > 0) words.push(sb);
      break;
    }
    if (phase === 'word') {
      if (isGoSpace(ch)) {
        phase = 'spaces';
        if (blankOK || sb.length > 0) words.push(sb);
        sb = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === esc) {
        if (pos + 1 === chars.length) continue;
        sb += ch;
        pos++;
        ch = chars[pos]!;
      }
      sb += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === esc && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      pos++;
      sb += ch;
      ch = chars[pos]!;
    }
    sb += ch;
  }
  return words;
}

type LineParser = (rest: string, ctx: ParseContext, parseSub: (line: string) => Node) => { next: Node[]; json?: boolean };

const none = { next: [] as Node[] };

function parseIgnore(): { next: Node[] } {
  return { next: [argNode('')] };
}

function parseSubCommand(rest: string, _ctx: ParseContext, parseSub: (line: string) => Node): { next: Node[] } {
  if (rest === '') return none;
  const holder = argNode('');
  holder.children = [parseSub(rest)];
  return { next: [holder] };
}

function parseNameVal(rest: string, key: string, ctx: ParseContext): { next: Node[] } {
  const words = parseWords(rest, ctx);
  if (words.length === 0) return none;
  if (!words[0]!.includes('=')) {
    const parts = splitWhitespace(rest, 2);
    if (parts.length < 2) throw new DockerfileSyntaxError(`${key} must have two arguments`);
    return { next: [argNode(parts[0]!), argNode(parts[1]!), argNode('')] };
  }
  const next: Node[] = [];
  for (const word of words) {
    const i = word.indexOf('=');
    if (i < 0) {
      throw new DockerfileSyntaxError(`Syntax error - can't find = in ${goQuoteLite(word)}. Must be of the form: name=value`);
    }
    next.push(argNode(word.slice(0, i)), argNode(word.slice(i + 1)), argNode('='));
  }
  return { next };
}

function goQuoteLite(s: string): string {
  return JSON.stringify(s);
}

function parseNameOrNameVal(rest: string, ctx: ParseContext): { next: Node[] } {
  return { next: parseWords(rest, ctx).map(argNode) };
}

function parseStringsWhitespaceDelimited(rest: string): { next: Node[] } {
  if (rest === '') return none;
  return { next: splitWhitespace(rest, -1).map(argNode) };
}

function parseString(rest: string): { next: Node[] } {
  if (rest === '') return none;
  return { next: [argNode(rest)] };
}

class NotStringArray extends DockerfileSyntaxError {
  constructor() {
    super('when using JSON array syntax, arrays must be comprised of strings only');
  }
}

/** A JSON array of strings, or undefined when the text is not JSON (then callers fall back to shell form). */
function parseJSON(text: string): string[] | undefined {
  const rest = goTrimLeftSpace(text);
  if (!rest.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(rest);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  return parsed.map((v) => {
    if (typeof v !== 'string') throw new NotStringArray();
    return v.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'); // as Go's decoder
  });
}

function parseMaybeJSON(rest: string): { next: Node[]; json?: boolean } {
  if (rest === '') return none;
  const arr = parseJSON(rest);
  if (arr) return { next: arr.map(argNode), json: true };
  return { next: [argNode(rest)] };
}

function parseMaybeJSONToList(rest: string): { next: Node[]; json?: boolean } {
  const arr = parseJSON(rest);
  if (arr) return { next: arr.map(argNode), json: true };
  return parseStringsWhitespaceDelimited(rest);
}

function parseHealthConfig(rest: string): { next: Node[]; json?: boolean } {
  // byte-wise scan for the first word, as upstream
  const b = toBytes(rest);
  let sep = 0;
  while (sep < b.length && !isGoSpace(b[sep]!)) sep++;
  let nxt = sep;
  while (nxt < b.length && isGoSpace(b[nxt]!)) nxt++;
  if (sep === 0) return none;
  const cmd = parseMaybeJSON(fromBytes(b.slice(nxt)));
  return { next: [argNode(fromBytes(b.slice(0, sep))), ...cmd.next], json: cmd.json };
}

export const LINE_PARSERS: Readonly<Record<string, LineParser>> = {
  add: parseMaybeJSONToList,
  arg: (r, c) => parseNameOrNameVal(r, c),
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (r, c) => parseNameVal(r, 'ENV', c),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (r, c) => parseNameVal(r, 'LABEL', c),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

export function lineParserFor(cmd: string): LineParser {
  return LINE_PARSERS[cmd.toLowerCase()] ?? parseIgnore;
}
