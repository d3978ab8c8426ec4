// What the client serves on its session besides files: secrets (--secret) and registry credentials
// from its docker config (Auth.Credentials).
import type { CredentialProvider, Credentials } from '../../base/oci/registry/credentials.js';
import { codec } from './proto.js';
import { SessionCallError, type ClientSession } from './session-grpc.js';

const GET_SECRET = '/moby.buildkit.secrets.v1.Secrets/GetSecret';
const CREDENTIALS = '/moby.filesync.v1.Auth/Credentials';
const NOT_FOUND = 5;

/** The secrets among `ids` the client has; ids it does not know are left out (a required one fails at its RUN). */
export async function fetchSecrets(session: ClientSession, ids: string[]): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  if (!ids.length || !session.supports(GET_SECRET)) return out;
  const req = codec<{ ID: string; annotations?: Record<string, string> }>('moby.buildkit.secrets.v1.GetSecretRequest');
  const res = codec<{ data: Buffer }>('moby.buildkit.secrets.v1.GetSecretResponse');
  for (const id of ids) {
    try {
      out[id] = Buffer.from(res.decode(await session.unary(GET_SECRET, req.encode({ ID: id }))).data);
    } catch (err) {
      if (!(err instanceof SessionCallError && err.code === NOT_FOUND)) throw err;
    }
  }
  return out;
}

/** Registry credentials asked from the client, once per registry. */
export function sessionCredentials(session: ClientSession): CredentialProvider | undefined {
  if (!session.supports(CREDENTIALS)) return undefined;
  const req = codec<{ Host: string }>('moby.filesync.v1.CredentialsRequest');
  const res = codec<{ Username: string; Secret: string }>('moby.filesync.v1.CredentialsResponse');
  const cache = new Map<string, Promise<Credentials | undefined>>();
  return {
    source: "the client's docker config",
    lookup(domain) {
      let p = cache.get(domain);
      if (!p) {
        p = session.unary(CREDENTIALS, req.encode({ Host: domain })).then(
          (raw) => {
            const r = res.decode(raw);
            return r.Username || r.Secret ? { username: r.Username, password: r.Secret } : undefined;
          },
          () => undefined,
        );
        cache.set(domain, p);
      }
      return p;
    },
  };
}
