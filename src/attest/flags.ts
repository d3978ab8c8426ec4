// --sbom and --provenance (buildx spellings): --sbom[=true|false], --provenance[=true|false|mode=min|max|min|max].
import { UserError } from '../util/errors.js';
import type { AttestOptions } from './attach.js';

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

export function parseAttestFlags(sbom: string | undefined, provenance: string | undefined): AttestOptions | undefined {
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
