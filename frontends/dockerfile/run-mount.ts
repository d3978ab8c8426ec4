// `RUN --mount=type=cache,target=/root/.cache,sharing=locked` parsing (BuildKit commands_runmount.go).
import { DockerfileSyntaxError } from './errors.js';
import { ramInBytes } from '../../base/units.js';
import { csvFields } from '../../base/csv-options.js';
import { withSuggestion } from './suggest.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type MountSharing = 'shared' | 'private' | 'locked';

export interface RunMount {
  type: MountType;
  from: string;
  source: string;
  target: string;
  readOnly: boolean;
  /** tmpfs size in bytes, 0 when not set */
  sizeLimit: number;
  /** the `id` option (cache id, secret id, ssh id) */
  id: string;
  sharing: MountSharing | '';
  required: boolean;
  /** secret: environment variable to expose it as */
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING: readonly MountSharing[] = ['shared', 'private', 'locked'];
const ALL_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

function parseBool(key: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new DockerfileSyntaxError(`invalid value for ${key}: ${v}`);
}

function mountFields(val: string): string[] {
  try {
    return csvFields(val);
  } catch (err) {
    throw new DockerfileSyntaxError(`failed to parse csv: ${(err as Error).message}`);
  }
}

function parseUint(v: string, radix: 8 | 10, what: string): number {
  const ok = radix === 8 ? /^[0-7]+$/.test(v) : /^[0-9]+$/.test(v);
  const n = ok ? Number.parseInt(v, radix) : NaN;
  if (!ok || n > 0xffffffff) throw new DockerfileSyntaxError(`invalid value ${v} for ${what}`);
  return n;
}

/**
 * Parses one --mount value. With an `expand` function, every value is expanded first (the full parse
 * BuildKit does once ARG/ENV are known); without one, only `from` is checked, as at instruction-parse time.
 */
export function parseMount(val: string, expand?: (word: string) => string): RunMount {
  const m: RunMount = { type: 'bind', from: '', source: '', target: '', readOnly: false, sizeLimit: 0, id: '', sharing: '', required: false };
  let roAuto = true;
  for (const field of mountFields(val)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (!expand) continue;
      switch (key) {
        case 'readonly': case 'ro': m.readOnly = true; roAuto = false; continue;
        case 'readwrite': case 'rw': m.readOnly = false; roAuto = false; continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') { m.required = true; continue; }
          throw new DockerfileSyntaxError(`unexpected key '${key}' for mount type '${m.type}'`);
        default:
          throw new DockerfileSyntaxError(`invalid field '${field}' must be a key=value pair`);
      }
    }
    if (expand) value = expand(value);
    else if (key === 'from') {
      const idx = value.indexOf('$');
      if (idx !== -1 && idx !== value.length - 1) throw new DockerfileSyntaxError(`'${key}' doesn't support variable expansion, define alias stage instead`);
    } else continue;

    switch (key) {
      case 'type': {
        const v = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(v)) throw new DockerfileSyntaxError(withSuggestion(`unsupported mount type ${JSON.stringify(value)}`, value, MOUNT_TYPES, true));
        m.type = v;
        break;
      }
      case 'from': m.from = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'target': case 'dst': case 'destination': m.target = value; break;
      case 'readonly': case 'ro': m.readOnly = parseBool(key, value); roAuto = false; break;
      case 'readwrite': case 'rw': m.readOnly = !parseBool(key, value); roAuto = false; break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new DockerfileSyntaxError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(key, value);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new DockerfileSyntaxError(`unexpected key '${key}' for mount type '${m.type}'`);
        try { m.sizeLimit = ramInBytes(value); } catch { throw new DockerfileSyntaxError(`invalid value for ${key}: ${value}`); }
        break;
      case 'id': m.id = value; break;
      case 'sharing': {
        const v = value.toLowerCase() as MountSharing;
        if (!SHARING.includes(v)) throw new DockerfileSyntaxError(withSuggestion(`unsupported sharing value ${JSON.stringify(value)}`, value, SHARING, true));
        m.sharing = v;
        break;
      }
      case 'mode': m.mode = parseUint(value, 8, 'mode'); break;
      case 'uid': m.uid = parseUint(value, 10, 'uid'); break;
      case 'gid': m.gid = parseUint(value, 10, 'gid'); break;
      case 'env': m.env = value; break;
      default:
        throw new DockerfileSyntaxError(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ALL_KEYS, true));
    }
  }

  if (m.type !== 'secret' && m.type !== 'ssh' && m.type !== 'cache') {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      if (m[k] !== undefined) throw new DockerfileSyntaxError(`${k} not allowed for ${JSON.stringify(m.type)} type mounts`);
    }
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from !== '') throw new DockerfileSyntaxError('secret mount should not have a from');
    if (m.sharing !== '') throw new DockerfileSyntaxError('secret mount should not define sharing');
    if (m.source === '' && m.target === '' && m.id === '') throw new DockerfileSyntaxError('invalid secret mount. one of source, target required');
    if (m.source !== '' && m.id !== '') throw new DockerfileSyntaxError("both source and id can't be set");
  }
  if (m.sharing !== '' && m.type !== 'cache') throw new DockerfileSyntaxError(`invalid cache sharing set for ${m.type} mount`);
  return m;
}
