// fsutil's Stat.mode is Go's os.FileMode: permission bits low, the file type as high bits (not the
// S_IF* bits of stat(2)). Conversions both ways.
export const GO_MODE = {
  dir: 1 << 31,
  symlink: 1 << 27,
  device: 1 << 26,
  namedPipe: 1 << 25,
  socket: 1 << 24,
  setuid: 1 << 23,
  setgid: 1 << 22,
  charDevice: 1 << 21,
  sticky: 1 << 20,
  irregular: 1 << 19,
} as const;

const TYPE_BITS = GO_MODE.dir | GO_MODE.symlink | GO_MODE.namedPipe | GO_MODE.socket | GO_MODE.device | GO_MODE.charDevice | GO_MODE.irregular;

export type EntryKind = 'file' | 'dir' | 'symlink' | 'other';

export function kindOf(goMode: number): EntryKind {
  const m = goMode >>> 0;
  if ((m & TYPE_BITS) >>> 0 === 0) return 'file';
  if (m & GO_MODE.dir) return 'dir';
  if (m & GO_MODE.symlink) return 'symlink';
  return 'other';
}

/** The unix permission bits (with setuid/setgid/sticky) of a Go mode. */
export function unixPerm(goMode: number): number {
  const m = goMode >>> 0;
  let perm = m & 0o777;
  if (m & GO_MODE.setuid) perm |= 0o4000;
  if (m & GO_MODE.setgid) perm |= 0o2000;
  if (m & GO_MODE.sticky) perm |= 0o1000;
  return perm;
}

/** A Go mode from lstat's mode. */
export function goModeOf(unixMode: number): number {
  let m = unixMode & 0o777;
  if (unixMode & 0o4000) m |= GO_MODE.setuid;
  if (unixMode & 0o2000) m |= GO_MODE.setgid;
  if (unixMode & 0o1000) m |= GO_MODE.sticky;
  const fmt = unixMode & 0o170000;
  if (fmt === 0o040000) m |= GO_MODE.dir;
  else if (fmt === 0o120000) m |= GO_MODE.symlink;
  else if (fmt === 0o010000) m |= GO_MODE.namedPipe;
  else if (fmt === 0o140000) m |= GO_MODE.socket;
  else if (fmt === 0o020000) m |= GO_MODE.device | GO_MODE.charDevice;
  else if (fmt === 0o060000) m |= GO_MODE.device;
  return m >>> 0;
}
