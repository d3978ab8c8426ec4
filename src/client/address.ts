// Builder addresses: unix:///path and tcp://host:port (what kiln serve --addr and kiln builder create take).
import { UserError } from '../../base/errors.js';

export interface Endpoint {
  /** The gRPC target: unix:///path or host:port. */
  target: string;
  host?: string;
  unix: boolean;
}

export function parseAddr(addr: string, flag = '--addr'): Endpoint {
  if (addr.startsWith('unix://')) {
    const path = addr.slice('unix://'.length);
    if (!path.startsWith('/')) throw new UserError(`invalid value "${addr}" for flag ${flag}: expected unix:///absolute/path`);
    return { target: `unix://${path}`, unix: true };
  }
  const m = /^tcp:\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535) throw new UserError(`invalid value "${addr}" for flag ${flag}: expected unix:///path or tcp://host:port`);
  return { target: `${m[1]}:${m[2]}`, host: m[1]!.replace(/^\[|\]$/g, ''), unix: false };
}

export function isLoopback(ep: Endpoint): boolean {
  if (ep.unix) return true;
  const h = ep.host!;
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export interface NodeConfig {
  name: string;
  addr: string;
  /** Platforms this node should build (as given to `kiln builder create --platform`); empty: ask the node. */
  platforms: string[];
  tls?: { ca?: string; cert?: string; key?: string; serverName?: string };
  tokenFile?: string;
}
