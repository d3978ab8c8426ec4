// COPY/ADD --chown and file-op owners: names are resolved in the destination state's /etc/passwd and
// /etc/group. As in BuildKit, a name that is not found changes nothing (uid 0, or the user's gid); kiln also warns.
import type { ChownOpt } from '../../graph/ops.js';
import type { FsView } from './view.js';

export interface Owner {
  uid: number;
  gid: number;
}

function findId(file: string | undefined, name: string, idField: number): number | undefined {
  for (const line of (file ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length > idField) {
      const n = Number(f[idField]);
      if (Number.isInteger(n)) return n;
    }
  }
  return undefined;
}

export async function resolveOwner(opt: ChownOpt | undefined, dest: FsView, warn: (msg: string) => void): Promise<Owner | undefined> {
  if (!opt || (!opt.user && !opt.group)) return undefined;
  let passwd: string | undefined;
  let group: string | undefined;
  const load = async () => {
    passwd ??= (await dest.readFile('/etc/passwd'))?.toString('utf8') ?? '';
    group ??= (await dest.readFile('/etc/group'))?.toString('utf8') ?? '';
  };
  // BuildKit's readUser: the user sets both ids (a name its passwd uid and primary gid, a number itself
  // as uid and gid); a group, when given and found, then replaces the gid. A name not found changes nothing.
  let uid = 0;
  let gid = 0;
  if (opt.user) {
    if (opt.user.id !== undefined) uid = gid = opt.user.id;
    else if (opt.user.name !== undefined) {
      await load();
      const id = findId(passwd, opt.user.name, 2);
      if (id === undefined) warn(`user "${opt.user.name}" not found in /etc/passwd of the destination; using uid 0`);
      else {
        uid = id;
        gid = findId(passwd, opt.user.name, 3) ?? 0;
      }
    }
  }
  if (opt.group) {
    if (opt.group.id !== undefined) gid = opt.group.id;
    else if (opt.group.name !== undefined) {
      await load();
      const id = findId(group, opt.group.name, 2);
      if (id === undefined) warn(`group "${opt.group.name}" not found in /etc/group of the destination; using gid ${gid}`);
      gid = id ?? gid;
    }
  }
  return { uid, gid };
}
