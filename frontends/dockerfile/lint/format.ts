// How check results read: the `--check` report (rule, URL, message, the Dockerfile lines around it), the
// short list printed after a build, and the JSON of `--call=check,format=json` — all as buildx prints them.
import type { LintWarning } from './linter.js';

/** Stable order by line, keeping the order the rules reported in within a line. */
export function sortWarnings(ws: readonly LintWarning[]): LintWarning[] {
  return ws.map((w, i) => ({ w, i })).sort((a, b) => a.w.startLine - b.w.startLine || a.i - b.i).map((x) => x.w);
}

/**
 * `Dockerfile:N` and the lines around the instruction (its own lines marked `>>>`), padded as BuildKit's
 * errdefs Source.Print does: four lines of context for a one-line instruction, two for a longer one.
 */
export function snippet(fileName: string, text: string, startLine: number, endLine: number): string {
  const lines = text.split('\n');
  if (startLine < 1 || startLine > lines.length) return '';
  let start = startLine;
  let end = Math.min(Math.max(endLine, startLine), lines.length);
  const pad = end === start ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (start > 1) { start--; p++; }
    if (end !== lines.length) { end++; p++; }
  }
  const out = [`${fileName}:${startLine}`, '--------------------'];
  for (let n = start; n <= end; n++) {
    const mark = n >= startLine && n <= Math.max(endLine, startLine) ? '>>>' : '   ';
    out.push(` ${String(n).padStart(3)} | ${mark} ${lines[n - 1]}`);
  }
  out.push('--------------------');
  return out.join('\n');
}

/** The `kiln build --check` report. */
export function formatCheckReport(ws: readonly LintWarning[], fileName: string, text: string, error?: string, errorLine = 0): string {
  const sorted = sortWarnings(ws);
  const parts: string[] = [];
  if (sorted.length === 0) parts.push('Check complete, no warnings found.');
  else parts.push(`Check complete, ${sorted.length} warning${sorted.length === 1 ? ' has' : 's have'} been found!`);
  for (const w of sorted) {
    let block = `WARNING: ${w.ruleName}${w.url ? ` - ${w.url}` : ''}\n${w.detail}`;
    const s = snippet(fileName, text, w.startLine, w.endLine);
    if (s) block += '\n' + s;
    parts.push(block);
  }
  if (error) {
    const s = errorLine > 0 ? snippet(fileName, text, errorLine, errorLine) : '';
    parts.push(`ERROR: ${error}${s ? '\n' + s : ''}`);
  }
  return parts.join('\n\n') + '\n';
}

/** The list printed after a build: ` - Rule: message (line N)`. */
export function formatBuildWarnings(ws: readonly LintWarning[]): string {
  if (ws.length === 0) return '';
  const head = ` ${ws.length} warning${ws.length === 1 ? '' : 's'} found:`;
  return [head, ...sortWarnings(ws).map((w) => ` - ${w.ruleName}: ${w.detail}${w.startLine > 0 ? ` (line ${w.startLine})` : ''}`)].join('\n') + '\n';
}

/** `--call=check,format=json`: BuildKit's lint result shape. */
export function checkResultJSON(ws: readonly LintWarning[], error?: string): string {
  const warnings = sortWarnings(ws).map((w) => ({
    ruleName: w.ruleName,
    description: w.description,
    ...(w.url ? { url: w.url } : {}),
    detail: w.detail,
    // one range per line of the instruction, as BuildKit's Node.Location()
    location: { ranges: w.startLine > 0 ? Array.from({ length: w.endLine - w.startLine + 1 }, (_, i) => ({ start: { line: w.startLine + i }, end: { line: w.startLine + i } })) : [] },
  }));
  return JSON.stringify({ warnings: warnings.length > 0 ? warnings : null, ...(error ? { buildError: { message: error } } : {}) }, null, 2) + '\n';
}
