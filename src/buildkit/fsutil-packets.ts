// fsutil's transfer packets (proto/buildkit/fsutil.proto) as kiln uses them.
import { codec } from './proto.js';

export const PACKET = { STAT: 0, REQ: 1, DATA: 2, FIN: 3, ERR: 4 } as const;

export interface Stat {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  modTime: number;
  linkname: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
}

export interface Packet {
  type: number;
  stat?: Stat | null;
  ID?: number;
  data?: Buffer;
}

let c: ReturnType<typeof codec<Packet>> | undefined;
export function packetCodec() {
  return (c ??= codec<Packet>('fsutil.types.Packet'));
}
