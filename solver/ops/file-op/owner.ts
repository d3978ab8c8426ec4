// COPY/ADD --chown and file-op owners: names are resolved in the destination state's /etc/passwd and
// /etc/group. As in BuildKit, a name that is not found falls back to 0; kiln also warns.
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
  let uid = 0;
  let gid = 0;
  let userName: string | undefined;
  if (opt.user) {
    if (opt.user.id !== undefined) uid = opt.user.id;
    else if (opt.user.name !== undefined) {
      await load();
      userName = opt.user.name;
      const id = findId(passwd, opt.user.name, 2);
      if (id === undefined) warn(`user "${opt.user.name}" not found in /etc/passwd of the destination; using uid 0`);
      uid = id ?? 0;
    }
  }
  if (opt.group) {
    if (opt.group.id !== undefined) gid = opt.group.id;
    else if (opt.group.name !== undefined) {
      await load();
      const id = findId(group, opt.group.name, 2);
      if (id === undefined) warn(`group "${opt.group.name}" not found in /etc/group of the destination; using gid 0`);
      gid = id ?? 0;
    }
  } else if (opt.user) {
    // `--chown=user` alone: the group is the user's primary group (or the same id when numeric).
    if (userName !== undefined) gid = findId(passwd, userName, 3) ?? 0;
    else gid = uid;
  }
  return { uid, gid };
}
