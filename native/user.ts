// Resolves a container user spec (`name`, `uid`, `name:group`, `uid:gid`) against the image's
// /etc/passwd and /etc/group, the way runc/docker do: names must exist, numeric ids need not (an unknown
// uid gets gid 0), and a user's supplementary groups come from /etc/group, with the primary gid first.
import { InRootError } from './in-root.js';
import { readFileInLayers } from './layers-in-root.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

export class UserLookupError extends Error {
  readonly userFacing = true;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

function parsePasswd(text: string | undefined): PasswdEntry[] {
  if (!text) return [];
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] || '/' });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  if (!text) return [];
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

const isNumeric = (s: string) => /^[0-9]+$/.test(s);

export function resolveUser(spec: string, files: { passwd?: string; group?: string }): ResolvedUser {
  const [userPart = '', groupPart] = (spec || '0').split(':', 2) as [string, string | undefined];
  const users = parsePasswd(files.passwd);
  const groups = parseGroup(files.group);
  let uid: number;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  const byName = users.find((u) => u.name === userPart);
  if (byName) {
    ({ uid, gid, home, name } = byName);
  } else if (isNumeric(userPart)) {
    uid = Number(userPart);
    const byId = users.find((u) => u.uid === uid);
    if (byId) ({ gid, home, name } = byId);
  } else {
    throw new UserLookupError(`unable to find user ${userPart}: no matching entries in passwd file`);
  }
  let memberOf: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    const g = groups.find((x) => x.name === groupPart);
    if (g) gid = g.gid;
    else if (isNumeric(groupPart)) gid = Number(groupPart);
    else throw new UserLookupError(`unable to find group ${groupPart}: no matching entries in group file`);
  } else if (name !== undefined) {
    // Supplementary groups from /etc/group apply only when no explicit group was given (as in runc).
    memberOf = groups.filter((g) => g.members.includes(name!)).map((g) => g.gid);
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new UserLookupError(`user ${spec}: id out of range`);
  // The primary gid is always one of the process's groups too (the CVE-2023-25173 fix in containerd and
  // BuildKit): `id` as root in busybox shows groups=0(root),10(wheel).
  const additionalGids = [...new Set([gid, ...memberOf])];
  return { uid, gid, additionalGids, home };
}

/** /etc/passwd and /etc/group larger than this are refused (a link to a huge file, not a real user db). */
export const USER_DB_MAX_BYTES = 4 << 20;

/**
 * Resolves `spec` against the image's own /etc/passwd and /etc/group, read inside the image (layers
 * topmost first): a symlink there to a host file resolves inside the image, a FIFO or device there is
 * refused at once with a clear error (never opened for reading, so it cannot block), and an oversized
 * file is refused instead of read.
 */
export function resolveImageUser(spec: string, lowerdirs: string[]): ResolvedUser {
  const read = (path: string): string | undefined => {
    try {
      return readFileInLayers(lowerdirs, path, { maxBytes: USER_DB_MAX_BYTES })?.toString('utf8');
    } catch (err) {
      if (!(err instanceof InRootError)) throw err;
      const why = err.code === 'ENOTREG' ? 'not a regular file' : err.code === 'EFBIG' ? `larger than ${USER_DB_MAX_BYTES} bytes` : 'a symlink loop';
      throw new UserLookupError(`unable to look up user ${spec}: ${path} in the image is ${why}`);
    }
  };
  return resolveUser(spec, { passwd: read('/etc/passwd'), group: read('/etc/group') });
}
