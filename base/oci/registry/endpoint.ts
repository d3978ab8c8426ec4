// Where a registry named in a reference is reached: Docker Hub's API host, and HTTP vs HTTPS. Plain HTTP
// is used only for loopback registries and those the user marked insecure.

export interface RegistryEndpoint {
  /** The registry as named in references (`docker.io`, `127.0.0.1:5000`). */
  domain: string;
  /** host[:port] actually contacted (`registry-1.docker.io` for docker.io). */
  host: string;
  scheme: 'http' | 'https';
  /** `scheme://host` */
  origin: string;
}

const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

/** host without its port; `[::1]:5000` → `::1`. */
export function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colons = hostPort.split(':').length - 1;
  if (colons === 1) return hostPort.slice(0, hostPort.indexOf(':'));
  return hostPort; // bare IPv6 or no port
}

export function isLoopbackHost(hostPort: string): boolean {
  const h = hostnameOf(hostPort).toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `KILN_INSECURE_REGISTRIES`: comma-separated host[:port] list. */
export function insecureRegistriesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.KILN_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^https?:\/\//, '').replace(/\/+$/, ''))
    .filter(Boolean);
}

export function registryEndpoint(domain: string, insecure: readonly string[] = []): RegistryEndpoint {
  const host = domain === 'docker.io' ? DOCKER_HUB_API_HOST : domain;
  // An insecure entry without a port covers every port of that host.
  const plain =
    isLoopbackHost(domain) ||
    insecure.some((entry) => entry === domain || entry === host || (!/:\d+$/.test(entry) && hostnameOf(domain) === entry));
  const scheme = plain ? 'http' : 'https';
  return { domain, host, scheme, origin: `${scheme}://${host}` };
}
