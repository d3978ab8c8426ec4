// Proxy build args (BuildKit's ProxyEnv): whichever case the user gave (`--build-arg http_proxy=…` or
// HTTP_PROXY), the RUN process sees both spellings, as with BuildKit v0.25. They are not part of the
// cache key (exec.ts leaves them out), so a different proxy does not rebuild anything.
const KINDS = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'];

/** The proxy variables for a RUN's environment, both cases; names `env` already sets are left alone. */
export function proxyVariables(proxy: Record<string, string> | undefined, env: readonly string[]): string[] {
  if (!proxy) return [];
  const out: string[] = [];
  const set = (name: string) => env.some((e) => e.startsWith(`${name}=`));
  for (const kind of KINDS) {
    // Both given: the upper-case one wins (one value for the pair, as in BuildKit's ProxyEnv).
    const value = proxy[kind.toUpperCase()] ?? proxy[kind];
    if (value === undefined) continue;
    for (const name of [kind.toUpperCase(), kind]) if (!set(name)) out.push(`${name}=${value}`);
  }
  return out;
}
