// Registry credentials of a tenant's build on `kiln serve`. A tenant's pulls, pushes and cache exports
// never borrow the operator's DOCKER_CONFIG (one tenant would read and overwrite another team's images):
// they use, in this order, what the client answers over the build stream from its own docker config
// (BuildKit's session auth), the operator's store for that tenant (`--tenant-credentials DIR`, read from
// DIR/TENANT/config.json at each build), and the operator's own config only with `--operator-credentials`.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CredentialStore, type CredentialProvider, type Credentials } from '../../base/oci/registry/credentials.js';
import { UserError } from '../../base/errors.js';
import type { SolveResponse } from '../protocol/builder.js';

export interface TenantCredentialConfig {
  /** DIR of `--tenant-credentials DIR`: DIR/TENANT/config.json, Docker's format. */
  dir?: string;
  /** `--operator-credentials`: the server's own $DOCKER_CONFIG serves every tenant (after the others). */
  operator?: boolean;
}

/** How long a client may take to answer a credentials request before the build fails. */
const ANSWER_TIMEOUT_MS = Number(process.env.KILN_CREDENTIALS_TIMEOUT_MS) || 60_000;

/** Asks the client of one build for credentials, one request per registry, over the Solve stream. */
export class ClientCredentials implements CredentialProvider {
  readonly source = "the client's docker config";
  private readonly answers = new Map<string, Promise<Credentials | undefined>>();
  private readonly pending = new Map<string, (c: Credentials | undefined) => void>();

  constructor(
    private readonly send: (m: SolveResponse) => void,
    private readonly signal: AbortSignal,
  ) {}

  lookup(domain: string): Promise<Credentials | undefined> {
    let answer = this.answers.get(domain);
    if (!answer) {
      answer = this.ask(domain);
      this.answers.set(domain, answer);
    }
    return answer;
  }

  /** An answer from the client (SolveRequest.credentials); one not asked for is ignored. */
  answer(m: { id: string; username: string; password: string }): void {
    const resolve = this.pending.get(m.id);
    if (!resolve) return;
    this.pending.delete(m.id);
    resolve(m.username || m.password ? { username: m.username, password: m.password } : undefined);
  }

  private ask(host: string): Promise<Credentials | undefined> {
    this.signal.throwIfAborted();
    const id = randomBytes(8).toString('hex');
    return new Promise<Credentials | undefined>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.signal.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      const onAbort = () => (done(), reject(this.signal.reason));
      const timer = setTimeout(() => (done(), reject(new UserError(`the client did not answer the builder's request for ${host} credentials within ${ANSWER_TIMEOUT_MS / 1000}s`))), ANSWER_TIMEOUT_MS);
      this.signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, (c) => (done(), resolve(c)));
      this.send({ need_credentials: { id, host } });
    });
  }
}

/** The first provider that has credentials for a registry answers. */
class ChainedCredentials implements CredentialProvider {
  readonly source: string;

  constructor(private readonly providers: CredentialProvider[]) {
    this.source = providers.length ? providers.map((p) => p.source).join(' or ') : 'any source this builder allows for the tenant';
  }

  async lookup(domain: string): Promise<Credentials | undefined> {
    for (const p of this.providers) {
      const found = await p.lookup(domain);
      if (found) return found;
    }
    return undefined;
  }
}

/** The credentials one build of `tenant` may use. Sources are named without builder paths (the error goes to the client). */
export function tenantCredentials(config: TenantCredentialConfig, tenant: string, client: ClientCredentials | undefined): CredentialProvider {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tenant)) throw new Error(`invalid tenant name ${JSON.stringify(tenant)}`);
  const chain: CredentialProvider[] = [];
  if (client) chain.push(client);
  if (config.dir) chain.push(CredentialStore.fromDockerConfig({ configDir: join(config.dir, tenant), shownAs: `the builder's store for tenant ${tenant}` }));
  if (config.operator) chain.push(CredentialStore.fromDockerConfig({ shownAs: "the builder operator's docker config" }));
  return new ChainedCredentials(chain);
}
