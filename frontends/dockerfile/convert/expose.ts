// EXPOSE port specs (`80`, `53/udp`, `8000-8002`, `127.0.0.1:80:80`) → "port/proto" keys, BuildKit's parsePort.
import { DockerfileSyntaxError } from '../errors.js';

const fail = (m: string): never => { throw new DockerfileSyntaxError(m); };

function portNumber(raw: string): number {
  if (raw === '') throw new Error('value is empty');
  if (!/^[+-]?\d+$/.test(raw)) throw new Error('invalid syntax');
  const n = Number(raw);
  if (n < 0 || n > 65535) throw new Error('value out of range (0–65535)');
  return n;
}

function portRange(ports: string): [number, number] {
  if (ports === '') throw new Error('empty string specified for ports');
  const dash = ports.indexOf('-');
  const start = dash < 0 ? ports : ports.slice(0, dash);
  const end = dash < 0 ? '' : ports.slice(dash + 1);
  const s = portNumber(start);
  if (dash < 0 || start === end) return [s, s];
  const e = portNumber(end);
  if (e < s) throw new Error('invalid port range: ' + ports);
  return [s, e];
}

export function parseExposedPort(raw: string): string[] {
  const parts = raw.split(':');
  const container = parts[parts.length - 1]!;
  const host = parts.length >= 2 ? parts[parts.length - 2]! : '';
  const slash = container.indexOf('/');
  const port = slash < 0 ? container : container.slice(0, slash);
  let proto = slash < 0 ? '' : container.slice(slash + 1);
  if (port === '') fail(`invalid port: ${JSON.stringify(raw)}: no port specified`);
  if (proto === '') proto = 'tcp';
  else if (!['tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) fail(`invalid port: ${JSON.stringify(raw)}: invalid proto: ${proto}`);
  let range: [number, number];
  try { range = portRange(port); } catch { return fail('invalid containerPort: ' + port); }
  if (host !== '') {
    let hr: [number, number];
    try { hr = portRange(host); } catch { return fail('invalid hostPort: ' + host); }
    if (range[1] - range[0] !== hr[1] - hr[0] && range[1] !== range[0]) fail(`invalid ranges specified for container and host Ports: ${port} and ${host}`);
  }
  const out: string[] = [];
  for (let p = range[0]; p <= range[1]; p++) out.push(`${p}/${proto.toLowerCase()}`);
  return out;
}
