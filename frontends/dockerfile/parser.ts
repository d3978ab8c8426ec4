// Dockerfile text -> BuildKit-shaped AST (frontend/dockerfile/parser/parser.go), line for line.
//
// Why not dockerfile-ast: its instruction text differs from BuildKit's in ways the dump tests catch (it
// drops the whitespace of a ` \` continuation line, e.g. parser/testfiles/continueIndent), it treats
// invalid JSON as JSON, and it reports no errors (duplicate directives, bad escape token, unterminated
// heredocs). BuildKit's algorithm is small, so kiln follows it directly and needs nothing from the library.
import { DirectiveParser, type Directive } from './directives.js';
import { DockerfileParseError, DockerfileSyntaxError, atLine } from './errors.js';
import { goQuote, goQuoteSlice, goTrimLeftSpace, goTrimSpace } from './go-text.js';
import { argNode, lineParserFor, splitCommand, type Heredoc, type Node, type ParseContext } from './line-parsers.js';
import { processWords } from './shell-lexer.js';

export type { Heredoc, Node } from './line-parsers.js';
export type { Directive } from './directives.js';

export interface ParseWarning {
  short: string;
  detail: string;
  url: string;
  line: number;
}

export interface DockerfileAST {
  /** Parser directives at the top of the file, in order. */
  directives: Directive[];
  /** Convenience: the value of each directive by name. */
  syntax?: string;
  escape?: string;
  check?: string;
  /** The escape character in effect: `\` or `` ` ``. */
  escapeToken: string;
  /** One node per instruction. */
  children: Node[];
  startLine: number;
  endLine: number;
  warnings: ParseWarning[];
}

const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);
const MAX_LINE_BYTES = 64 * 1024; // bufio.Scanner's default token limit

// Go: `^(\d*)<<(-?)\s*([^<]*)$` with \s = [\t\n\f\r ]
const RE_HEREDOC = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

function continuationRegex(escape: string): RegExp {
  const e = '\\' + escape;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** Splits like bufio.Scanner with a line function that keeps the newline. */
function scanLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl + 1;
    lines.push(text.slice(start, end));
    start = end;
  }
  return lines;
}

const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, '');
const isComment = (line: string): boolean => goTrimLeftSpace(line).startsWith('#');

/** Parses the heredoc word `<<[-]NAME` (quotes in NAME disable expansion); undefined if `src` is not one. */
export function parseHeredocWord(src: string): Heredoc | undefined {
  const m = RE_HEREDOC.exec(src);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest.length === 0) return undefined;
  const words = processWords(rest, undefined, { skipUnsetEnv: true });
  if (words.length !== 1) return undefined;
  const raw = processWords(rest, undefined, { skipUnsetEnv: true, rawQuotes: true });
  if (raw.length !== words.length) {
    throw new DockerfileSyntaxError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const quotes = (s: string): number => s.split("'").length + s.split('"').length - 2;
  return {
    name: words[0]!,
    expand: quotes(words[0]!) === quotes(raw[0]!),
    chomp: m[2] === '-',
    fileDescriptor: m[1] ? Number.parseInt(m[1], 10) : 0,
    content: '',
  };
}

function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = processWords(line, undefined, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch {
    words = [];
  }
  const docs: Heredoc[] = [];
  for (const w of words) {
    const h = parseHeredocWord(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** `<<-` heredocs: strip leading tabs from every line. */
export function chompHeredocContent(src: string): string {
  return src.replace(/^\t+/gm, '');
}

function canContainHeredoc(node: Node): boolean {
  let n = node;
  if (n.value === 'onbuild' && n.next[0] && n.next[0].children.length > 0) n = n.next[0].children[0]!;
  return HEREDOC_INSTRUCTIONS.has(n.value) && !n.attributes.json;
}

function nodeFromLine(line: string, ctx: ParseContext, comments: string[]): Node {
  const { cmd, flags, args } = splitCommand(line, ctx);
  const parsed = lineParserFor(cmd)(args, ctx, (sub) => nodeFromLine(sub, ctx, []));
  const node = argNode(cmd.toLowerCase());
  node.keyword = cmd;
  node.original = line;
  node.flags = flags;
  node.next = parsed.next;
  node.attributes = parsed.json ? { json: true } : {};
  node.prevComment = comments;
  return node;
}

export function parseDockerfile(input: string): DockerfileAST {
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  const lines = scanLines(text);
  const directiveParser = new DirectiveParser();
  const directives: Directive[] = [];
  const ctx: ParseContext = { escapeToken: '\\' };
  let contRe = continuationRegex('\\');
  const warnings: ParseWarning[] = [];
  const children: Node[] = [];
  let comments: string[] = [];
  let idx = 0; // next physical line to read
  let currentLine = 0; // lines consumed so far (1-based number of the last one read)

  const scan = (): string | undefined => {
    if (idx >= lines.length) return undefined;
    const l = lines[idx++]!;
    if (Buffer.byteLength(l) > MAX_LINE_BYTES) {
      throw new DockerfileParseError(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES - 1}`, idx);
    }
    return l;
  };

  // Strips the newline (and leading space on an instruction's first line), applies directives, drops comments.
  const processLine = (raw: string, stripLeft: boolean, lineNo: number): { text: string; directive: boolean } => {
    let token = trimNewline(raw);
    if (stripLeft) token = goTrimLeftSpace(token);
    let directive = false;
    try {
      const d = directiveParser.parseLine(token, lineNo);
      if (d) {
        directive = true;
        if (d.name === 'escape') {
          if (d.value !== '`' && d.value !== '\\') {
            throw new DockerfileSyntaxError(`invalid escape token '${d.value}' does not match \` or \\`);
          }
          ctx.escapeToken = d.value;
          contRe = continuationRegex(d.value);
        }
        directives.push(d);
      }
    } catch (err) {
      atLine(err, lineNo);
    }
    return { text: isComment(token) ? '' : token, directive };
  };

  const trimContinuation = (line: string): { text: string; end: boolean } => {
    if (contRe.test(line)) return { text: line.replace(contRe, '$1'), end: false };
    return { text: line, end: true };
  };

  for (let raw = scan(); raw !== undefined; raw = scan()) {
    if (isComment(raw)) {
      const comment = goTrimSpace(raw.slice(1)); // upstream drops the first byte, not the '#'
      if (comment === '') comments = [];
      else comments.push(comment);
    }
    const first = processLine(raw, true, currentLine + 1);
    if (first.directive) comments.pop();
    currentLine++;
    const startLine = currentLine;
    let { text: part, end: isEnd } = trimContinuation(first.text);
    if (isEnd && part.length === 0) continue;

    let buf = part;
    let hasEmptyContinuation = false;
    while (!isEnd) {
      const rawNext = scan();
      if (rawNext === undefined) break;
      const { text } = processLine(rawNext, false, currentLine + 1);
      currentLine++;
      if (isComment(rawNext)) continue;
      if (goTrimLeftSpace(trimNewline(text)).length === 0) {
        hasEmptyContinuation = true;
        continue;
      }
      ({ text: part, end: isEnd } = trimContinuation(text));
      buf += part;
    }

    if (hasEmptyContinuation) {
      warnings.push({
        short: 'Empty continuation line found in: ' + buf,
        detail: 'Empty continuation lines will become errors in a future release',
        url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
        line: currentLine,
      });
    }

    let child: Node;
    try {
      child = nodeFromLine(buf, ctx, comments);
    } catch (err) {
      atLine(err, startLine, currentLine);
    }

    if (canContainHeredoc(child) && buf.includes('<<')) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(buf);
      } catch (err) {
        atLine(err, startLine, currentLine);
      }
      for (const doc of docs) {
        let terminated = false;
        let content = doc.content;
        for (let l = scan(); l !== undefined; l = scan()) {
          currentLine++;
          let candidate = trimNewline(l);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += l;
        }
        if (!terminated) throw new DockerfileParseError(`unterminated heredoc ${goQuote(doc.name)}`, startLine);
        child.heredocs.push({ ...doc, content });
      }
    }

    child.startLine = startLine;
    child.endLine = currentLine;
    children.push(child);
    comments = [];
  }

  if (children.length === 0) throw new DockerfileParseError('file with no instructions', currentLine);

  const ast: DockerfileAST = {
    directives,
    escapeToken: ctx.escapeToken,
    children,
    startLine: children[0]!.startLine,
    endLine: children[children.length - 1]!.endLine,
    warnings,
  };
  for (const d of directives) ast[d.name] = d.value;
  return ast;
}

/** BuildKit's Node.Dump() for one node. */
export function dumpNode(node: Node): string {
  let s = node.value.toLowerCase();
  if (node.flags.length > 0) s += ' ' + goQuoteSlice(node.flags);
  for (const c of node.children) s += '(' + dumpNode(c) + ')\n';
  for (const n of node.next) s += ' ' + (n.children.length > 0 ? dumpNode(n) : goQuote(n.value));
  return goTrimSpace(s);
}

/** BuildKit's Dump() of the root: one `(instruction …)` line per instruction, no trailing newline. */
export function dumpAST(ast: DockerfileAST): string {
  let s = '';
  for (const c of ast.children) s += '(' + dumpNode(c) + ')\n';
  return goTrimSpace(s);
}
