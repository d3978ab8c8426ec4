// Which addresses a fetch on a shared builder may connect to. A tenant's `ADD http://…` must not reach
// the builder's own services: loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16 — cloud metadata —
// and fe80::/10), the unspecified address (0.0.0.0, ::, which connect to this host) and the addresses of
// this machine's interfaces. The check runs on the address actually connected to: after DNS resolution,
// inside the socket's lookup, so a name that resolves differently the second time gains nothing, and on
// every redirect hop (each hop connects anew through the same lookup).
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { UserError } from '../../errors.js';

export class LocalAddressError extends UserError {}

const ranges = (() => {
  const b = new BlockList();
  b.addSubnet('127.0.0.0', 8, 'ipv4');
  b.addSubnet('169.254.0.0', 16, 'ipv4');
  b.addSubnet('0.0.0.0', 8, 'ipv4');
  b.addAddress('::1', 'ipv6');
  b.addAddress('::', 'ipv6');
  b.addSubnet('fe80::', 10, 'ipv6');
  return b;
})();

/** `::ffff:127.0.0.1` / `::ffff:7f00:1` → `127.0.0.1`; anything else unchanged (without zone or brackets). */
function unmapped(ip: string): string {
  const a = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase();
  const dotted = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) return dotted[1]!;
  const hex = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return a;
}

/** Why `ip` is the builder's own (loopback, link-local, unspecified, an interface address), or undefined. */
export function builderLocalReason(ip: string): string | undefined {
  const a = unmapped(ip);
  const family = isIP(a);
  if (family === 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (ranges.check(a, type)) {
    if (a === '::' || a.startsWith('0.')) return 'the unspecified address, this host';
    if (a.startsWith('169.254.') || /^fe[89ab]/.test(a)) return 'a link-local address';
    return 'a loopback address of the builder';
  }
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (unmapped(i.address) === a) return "one of the builder's own addresses";
  }
  return undefined;
}

function refusal(host: string, ip: string, reason: string): LocalAddressError {
  const shown = host === ip ? ip : `${host} (${ip})`;
  return new LocalAddressError(`refusing to connect to ${shown}: ${reason} (kiln serve --allow-local-fetch allows it)`);
}

/** Throws LocalAddressError when a URL names a builder-local IP literally (no lookup happens for those). */
export function checkLiteralHost(url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0) return;
  const reason = builderLocalReason(host);
  if (reason) throw refusal(host, host, reason);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect / undici's connector: resolves the name, keeps only addresses that are not
 * the builder's own, and hands exactly those to the socket (so the checked address is the one connected).
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    const allowed = addresses.filter((a) => !builderLocalReason(a.address));
    if (allowed.length === 0) {
      const first = addresses[0];
      return callback(first ? refusal(hostname, first.address, builderLocalReason(first.address)!) : Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' }), '');
    }
    if (options.all) return callback(null, allowed);
    callback(null, allowed[0]!.address, allowed[0]!.family);
  });
}
