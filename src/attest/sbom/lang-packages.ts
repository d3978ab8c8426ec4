// Language packages found anywhere in the root filesystem: npm (package-lock.json files and installed
// node_modules/*/package.json) and Python (*.dist-info / *.egg-info metadata directories).
import type { FoundPackage, RootfsReader } from './types.js';

const SKIP_DIRS = new Set(['/proc', '/sys', '/dev']);
const MAX_DEPTH = 24;

export function npmPurl(name: string, version: string): string {
  const encoded = name.startsWith('@') ? `%40${name.slice(1)}` : name;
  return `pkg:npm/${encoded.split('/').map((s, i) => (i === 0 && s.startsWith('%40') ? s : encodeURIComponent(s))).join('/')}@${encodeURIComponent(version)}`;
}

export function pypiPurl(name: string, version: string): string {
  return `pkg:pypi/${name.toLowerCase().replace(/[-_.]+/g, '-')}@${encodeURIComponent(version)}`;
}

function licenseOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string') return (v as { type: string }).type;
  return undefined;
}

function parseJSON(buf: Buffer | undefined): any {
  if (!buf) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

function npmPackage(name: string, version: string, location: string, license?: string): FoundPackage {
  return { type: 'npm', name, version, purl: npmPurl(name, version), location, license };
}

/** package-lock.json, lockfile v1 (dependencies tree) and v2/v3 (packages map). */
export function parsePackageLock(doc: any, location: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  if (doc && typeof doc.packages === 'object' && doc.packages) {
    for (const [key, p] of Object.entries<any>(doc.packages)) {
      if (key === '' || !p || p.link || typeof p.version !== 'string') continue;
      const i = key.lastIndexOf('node_modules/');
      const name = typeof p.name === 'string' ? p.name : i >= 0 ? key.slice(i + 'node_modules/'.length) : undefined;
      if (name) out.push(npmPackage(name, p.version, location, licenseOf(p.license)));
    }
    return out;
  }
  const walk = (deps: any) => {
    if (!deps || typeof deps !== 'object') return;
    for (const [name, d] of Object.entries<any>(deps)) {
      if (d && typeof d.version === 'string' && !d.version.startsWith('file:')) out.push(npmPackage(name, d.version, location));
      walk(d?.dependencies);
    }
  };
  walk(doc?.dependencies);
  return out;
}

/** Email-header style metadata (METADATA, PKG-INFO): the first value of each field, until the body. */
function headerFields(text: string): Map<string, string> {
  const f = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') break;
    const colon = line.indexOf(':');
    if (colon > 0 && !/^[ \t]/.test(line)) {
      const k = line.slice(0, colon).toLowerCase();
      if (!f.has(k)) f.set(k, line.slice(colon + 1).trim());
    }
  }
  return f;
}

async function scanPythonDir(fs: RootfsReader, dir: string): Promise<FoundPackage | undefined> {
  const file = dir.endsWith('.dist-info') ? `${dir}/METADATA` : `${dir}/PKG-INFO`;
  const text = (await fs.readFile(file)) ?? (dir.endsWith('.egg-info') && (await fs.kind(dir)) === 'file' ? await fs.readFile(dir) : undefined);
  if (!text) return undefined;
  const f = headerFields(text.toString('utf8'));
  const name = f.get('name');
  const version = f.get('version');
  if (!name || !version) return undefined;
  const license = f.get('license-expression') ?? (f.get('license') && f.get('license') !== 'UNKNOWN' ? f.get('license') : undefined);
  return { type: 'pypi', name, version, purl: pypiPurl(name, version), license, location: file };
}

/** Installed packages under a node_modules dir (scoped ones included, nested node_modules followed). */
async function scanNodeModules(fs: RootfsReader, dir: string, out: FoundPackage[], depth: number): Promise<void> {
  if (depth > MAX_DEPTH) return;
  for (const e of await fs.readdir(dir)) {
    if (e.name.startsWith('.') || e.kind !== 'dir') continue;
    const dirs = e.name.startsWith('@') ? (await fs.readdir(`${dir}/${e.name}`)).filter((x) => x.kind === 'dir').map((x) => `${e.name}/${x.name}`) : [e.name];
    for (const d of dirs) {
      const pkgDir = `${dir}/${d}`;
      const entries = await fs.readdir(pkgDir);
      if (entries.some((x) => x.name === 'package.json' && x.kind === 'file')) {
        const pj = parseJSON(await fs.readFile(`${pkgDir}/package.json`));
        if (pj && typeof pj.name === 'string' && typeof pj.version === 'string') out.push(npmPackage(pj.name, pj.version, `${pkgDir}/package.json`, licenseOf(pj.license)));
      }
      if (entries.some((x) => x.name === 'node_modules' && x.kind === 'dir')) await scanNodeModules(fs, `${pkgDir}/node_modules`, out, depth + 1);
    }
  }
}

export async function scanLanguagePackages(fs: RootfsReader): Promise<FoundPackage[]> {
  const out: FoundPackage[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH || SKIP_DIRS.has(dir)) return;
    for (const { name, kind } of await fs.readdir(dir)) {
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (name === 'package-lock.json' && kind === 'file') {
        const doc = parseJSON(await fs.readFile(path));
        if (doc) out.push(...parsePackageLock(doc, path));
        continue;
      }
      if (kind !== 'dir') {
        if (kind === 'file' && name.endsWith('.egg-info')) {
          const p = await scanPythonDir(fs, path);
          if (p) out.push(p);
        }
        continue;
      }
      if (name === 'node_modules') await scanNodeModules(fs, path, out, depth + 1);
      else if (name.endsWith('.dist-info') || name.endsWith('.egg-info')) {
        const p = await scanPythonDir(fs, path);
        if (p) out.push(p);
      } else await walk(path, depth + 1);
    }
  };
  await walk('/', 0);
  return out;
}
