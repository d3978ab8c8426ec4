// buildx's option grammar, one of it: `type=local,dest=out,"name=a,b"` is one CSV record read as Go's
// encoding/csv (and buildx's csvvalue) reads it, then each field is KEY=VALUE split at the first `=`.
// Used by --output, --cache-to/--cache-from, --secret, --attest and RUN --mount.
import { FlagError, InputSyntaxError } from './errors.js';

/**
 * The fields of one CSV record: a field that starts with `"` is quoted (`""` inside is one quote, commas
 * are literal); a `"` anywhere else is an error, as in Go. Errors read like Go's csv.ParseError.
 */
export function csvFields(line: string): string[] {
  const fail = (index: number, what: string): never => {
    throw new InputSyntaxError(`parse error on line 1, column ${index + 1}: ${what}`);
  };
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) fail(i, 'extraneous or missing " in quoted-field');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') fail(i, 'extraneous or missing " in quoted-field');
    } else {
      const end = line.indexOf(',', i);
      field = line.slice(i, end < 0 ? line.length : end);
      const quote = field.indexOf('"');
      if (quote >= 0) fail(i + quote, 'bare " in non-quoted-field');
      i = end < 0 ? line.length : end;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

/**
 * A flag's `key=value,…` options (keys trimmed and lower-cased, values as given; a later key wins).
 * Errors are one line naming the flag: `invalid value "…" for flag --output: …`.
 */
export function parseCsvOptions(flag: string, text: string): Record<string, string> {
  let fields: string[];
  try {
    fields = csvFields(text);
  } catch (err) {
    throw new FlagError(`invalid value "${text}" for flag ${flag}: ${(err as Error).message}`);
  }
  const out: Record<string, string> = {};
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid value "${text}" for flag ${flag}: "${field}" is not key=value`);
    out[field.slice(0, eq).trim().toLowerCase()] = field.slice(eq + 1);
  }
  return out;
}
