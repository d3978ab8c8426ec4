// The /etc/hosts and /etc/resolv.conf a RUN sees (bind-mounted over the image's, as BuildKit does, so
// neither lands in a layer): localhost names plus --add-host entries; the host's resolvers, or --dns.
import { readFileSync } from 'node:fs';

export interface ExtraHost {
  host: string;
  ip: string;
}

export interface DnsConfig {
  nameservers?: string[];
  search?: string[];
  options?: string[];
}

/** BuildKit's hosts file for RUN containers, plus extra hosts. */
export function hostsFile(hostname: string, extraHosts: ExtraHost[] = []): string {
  let text = `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
  for (const h of extraHosts) text += `${h.ip}\t${h.host}\n`;
  return text;
}

const isLoopback = (ip: string) => /^127\./.test(ip) || ip === '::1' || ip === '0.0.0.0';

/**
 * resolv.conf for a RUN. With `dns` set, exactly that. Otherwise the host's file; in a network namespace
 * of its own (bridge) loopback resolvers cannot be reached, so they are dropped, and if none is left
 * Docker's fallback (8.8.8.8, 8.8.4.4) is used, as dockerd does.
 */
export function resolvConf(network: 'none' | 'host' | 'bridge', dns?: DnsConfig, hostFile = '/etc/resolv.conf'): string {
  if (dns && (dns.nameservers?.length || dns.search?.length || dns.options?.length)) {
    let text = '';
    for (const ns of dns.nameservers ?? []) text += `nameserver ${ns}\n`;
    if (dns.search?.length) text += `search ${dns.search.join(' ')}\n`;
    if (dns.options?.length) text += `options ${dns.options.join(' ')}\n`;
    return text;
  }
  let host = '';
  try {
    host = readFileSync(hostFile, 'utf8');
  } catch {
    host = '';
  }
  if (network === 'host') return host;
  const lines = host.split('\n').filter((l) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    return !m || !isLoopback(m[1]!);
  });
  let text = lines.join('\n').replace(/\n*$/, '\n');
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) text += 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n';
  return text;
}
