// --sbom and --provenance (buildx spellings): --sbom[=true|false], --provenance[=true|false|mode=min|max|min|max].
import { UserError } from '../../base/errors.js';
import { parseCsvOptions } from '../../base/csv-options.js';
import type { AttestOptions } from './attach.js';

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

/** buildx's `--attest type=sbom|provenance[,mode=min|max][,disabled=true]` folded into --sbom / --provenance values. */
function fromAttest(list: string[]): { sbom?: string; provenance?: string } {
  const out: { sbom?: string; provenance?: string } = {};
  for (const text of list) {
    const kv = parseCsvOptions('--attest', text);
    const disabled = kv.disabled === 'true';
    if (kv.type === 'sbom') out.sbom = disabled ? 'false' : 'true';
    else if (kv.type === 'provenance') out.provenance = disabled ? 'false' : `mode=${kv.mode || 'min'}`;
    else throw new UserError(`invalid value "${text}" for flag --attest: expected type=sbom or type=provenance[,mode=min|max]`);
  }
  return out;
}

export function parseAttestFlags(sbom: string | undefined, provenance: string | undefined, attest: string[] = []): AttestOptions | undefined {
  const a = fromAttest(attest);
  sbom ??= a.sbom;
  provenance ??= a.provenance;
  const out: AttestOptions = {};
  if (sbom !== undefined) {
    const v = sbom.toLowerCase().replace(/^generator=.*$/, 'true');
    if (TRUE.has(v)) out.sbom = true;
    else if (!FALSE.has(v)) throw new UserError(`invalid value "${sbom}" for flag --sbom: expected true or false`);
  }
  if (provenance !== undefined) {
    const v = provenance.toLowerCase();
    const mode = TRUE.has(v) ? 'min' : /^(?:mode=)?(min|max)$/.exec(v)?.[1];
    if (mode) out.provenance = mode as 'min' | 'max';
    else if (!FALSE.has(v)) throw new UserError(`invalid value "${provenance}" for flag --provenance: expected mode=min, mode=max, true or false`);
  }
  return out.sbom || out.provenance ? out : undefined;
}
