// Distribution package databases: dpkg's status file (and distroless status.d/), apk's installed db.
import type { FoundPackage, RootfsReader } from './types.js';

/** RFC 822-style paragraphs (dpkg) → one field map each; continuation lines join the previous field. */
function paragraphs(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of block.split('\n')) {
      if (/^[ \t]/.test(line) && last) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      else {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        last = line.slice(0, colon).trim();
        fields.set(last, line.slice(colon + 1).trim());
      }
    }
    if (fields.size) out.push(fields);
  }
  return out;
}

/** The distribution id (`debian`, `ubuntu`, `alpine`) from /etc/os-release, or the fallback. */
export async function osReleaseId(fs: RootfsReader, fallback: string): Promise<string> {
  const text = (await fs.readFile('/etc/os-release')) ?? (await fs.readFile('/usr/lib/os-release'));
  const m = text && /^ID="?([A-Za-z0-9._-]+)"?$/m.exec(text.toString('utf8'));
  return m ? m[1]!.toLowerCase() : fallback;
}

const purlPart = (s: string) => encodeURIComponent(s);

export async function scanDpkg(fs: RootfsReader): Promise<FoundPackage[]> {
  const files: string[] = [];
  if ((await fs.kind('/var/lib/dpkg/status')) === 'file') files.push('/var/lib/dpkg/status');
  for (const e of await fs.readdir('/var/lib/dpkg/status.d')) if (e.kind === 'file' && !e.name.endsWith('.md5sums')) files.push(`/var/lib/dpkg/status.d/${e.name}`);
  if (!files.length) return [];
  const distro = await osReleaseId(fs, 'debian');
  const out: FoundPackage[] = [];
  for (const file of files) {
    const text = (await fs.readFile(file))?.toString('utf8') ?? '';
    for (const p of paragraphs(text)) {
      const name = p.get('Package');
      const version = p.get('Version');
      const status = p.get('Status');
      // Only installed packages (status.d files of distroless images have no Status field).
      // The third word of Status is the package's state: only `installed` counts (not half-installed, config-files…).
      if (!name || !version || (status !== undefined && status.split(/\s+/)[2] !== 'installed')) continue;
      const arch = p.get('Architecture');
      out.push({
        type: 'deb',
        name,
        version,
        arch,
        supplier: p.get('Maintainer'),
        purl: `pkg:deb/${distro}/${purlPart(name)}@${purlPart(version)}${arch ? `?arch=${purlPart(arch)}` : ''}`,
        location: file,
      });
    }
  }
  return out;
}

export async function scanApk(fs: RootfsReader): Promise<FoundPackage[]> {
  const file = '/lib/apk/db/installed';
  const text = (await fs.readFile(file))?.toString('utf8');
  if (!text) return [];
  const distro = await osReleaseId(fs, 'alpine');
  const out: FoundPackage[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of block.split('\n')) if (line.length > 2 && line[1] === ':' && !f.has(line[0]!)) f.set(line[0]!, line.slice(2));
    const name = f.get('P');
    const version = f.get('V');
    if (!name || !version) continue;
    const arch = f.get('A');
    out.push({
      type: 'apk',
      name,
      version,
      arch,
      license: f.get('L'),
      supplier: f.get('m'),
      purl: `pkg:apk/${distro}/${purlPart(name)}@${purlPart(version)}${arch ? `?arch=${purlPart(arch)}` : ''}`,
      location: file,
    });
  }
  return out;
}
