// The `frontend.lint` subrequest (`docker buildx build --call=check`): kiln's build checks on the
// Dockerfile, answered as BuildKit's Dockerfile frontend answers it — result metadata with the lint
// results JSON (warnings, the Dockerfile as their source, the error that stopped the check), a text
// rendering, and the status code buildx exits with.
import type { ConvertWarning } from '../../frontends/dockerfile/convert/types.js';
import { sortWarnings } from '../../frontends/dockerfile/lint/format.js';

export const LINT_REQUEST = 'frontend.lint';
const LINT_VERSION = '1.0.0';

interface Range {
  start: { line: number };
  end: { line: number };
}

/** One range per line of the instruction, as BuildKit's parser reports an instruction's location. */
function ranges(start: number, end: number): Range[] {
  if (start <= 0) return [];
  return Array.from({ length: Math.max(end, start) - start + 1 }, (_, i) => ({ start: { line: start + i }, end: { line: start + i } }));
}

/** The subrequest's result metadata, from the warnings of a check-only conversion. */
export function lintMetadata(warnings: readonly ConvertWarning[], dockerfile: { name: string; text: string }): Record<string, Buffer> {
  const found = sortWarnings(warnings.flatMap((w) => (w.lint ? [w.lint] : [])));
  const failed = warnings.find((w) => w.checkError);
  const results = {
    warnings: found.map((w) => ({
      ruleName: w.ruleName,
      description: w.description,
      ...(w.url ? { url: w.url } : {}),
      detail: w.detail,
      // A warning about the whole file has no source (sourceIndex -1), as BuildKit's.
      location: w.startLine > 0 ? { ranges: ranges(w.startLine, w.endLine) } : { sourceIndex: -1 },
    })),
    sources: [{ filename: dockerfile.name, language: 'Dockerfile', data: Buffer.from(dockerfile.text).toString('base64') }],
    ...(failed ? { buildError: { message: failed.message, location: { ranges: ranges(failed.line ?? 0, failed.line ?? 0) } } } : {}),
  };
  const text = found.map((w) => `${w.ruleName}: ${w.detail}${w.startLine > 0 ? ` (${dockerfile.name}:${w.startLine})` : ''}\n`).join('') + (failed ? `ERROR: ${failed.message}\n` : '');
  return {
    'result.json': Buffer.from(JSON.stringify(results, null, 2)),
    'result.txt': Buffer.from(text),
    'result.statuscode': Buffer.from(found.length > 0 || failed ? '1' : '0'),
    version: Buffer.from(LINT_VERSION),
  };
}
