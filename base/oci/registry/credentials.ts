// Registry credentials, read from Docker's config.json (`auths`), so `docker login` works for kiln too.
// Credential helpers (credsStore/credHelpers) are not run; their registries are reported as having none.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Where a registry client gets credentials: a config.json, the client of a remote build (asked over the
 * build stream), a tenant's store, or a chain of those. Asked once per registry per request that needs it.
 */
export interface CredentialProvider {
  /** Names the source in error messages; never a path of a builder when the error goes to a remote client. */
  readonly source: string;
  lookup(domain: string): Promise<Credentials | undefined>;
}

const DOCKER_HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

/** A config.json `auths` key in its comparable form: no scheme, no path, lowercase. */
function normaliseKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

export class CredentialStore implements CredentialProvider {
  private readonly byKey: Map<string, Credentials>;
  /** Where the credentials came from, for error messages (`~/.docker/config.json`). */
  readonly source: string;

  constructor(entries: Record<string, Credentials> = {}, source = 'the credential store') {
    this.byKey = new Map(Object.entries(entries));
    this.source = source;
  }

  /**
   * Reads `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). A missing file is an empty store;
   * an unreadable or malformed one is a UserError naming it.
   */
  static fromDockerConfig(opts: { configDir?: string; env?: NodeJS.ProcessEnv; shownAs?: string } = {}): CredentialStore {
    const env = opts.env ?? process.env;
    const dir = opts.configDir ?? env.DOCKER_CONFIG ?? join(homedir(), '.docker');
    const file = join(dir, 'config.json');
    const home = homedir();
    const shown = opts.shownAs ?? (file.startsWith(home + '/') ? '~' + file.slice(home.length) : file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new CredentialStore({}, shown);
      throw new UserError(`cannot read ${shown}: ${(err as Error).message}`);
    }
    let doc: { auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }> };
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new UserError(`malformed ${shown}: ${(err as Error).message}`);
    }
    const entries: Record<string, Credentials> = {};
    for (const [key, value] of Object.entries(doc.auths ?? {})) {
      if (!value || typeof value !== 'object') continue;
      if (typeof value.auth === 'string' && value.auth !== '') {
        const decoded = Buffer.from(value.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) throw new UserError(`malformed ${shown}: auths[${JSON.stringify(key)}].auth is not base64 of user:password`);
        entries[key] = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      } else if (typeof value.username === 'string' && typeof value.password === 'string') {
        entries[key] = { username: value.username, password: value.password };
      }
    }
    return new CredentialStore(entries, shown);
  }

  async lookup(domain: string): Promise<Credentials | undefined> {
    return this.get(domain);
  }

  /** Credentials for a registry as named in references (`docker.io`, `127.0.0.1:5000`). */
  get(domain: string): Credentials | undefined {
    const wanted = domain === 'docker.io' || domain === 'index.docker.io' ? DOCKER_HUB_KEYS : [domain];
    // Exact keys first (Docker Hub's canonical key is a URL), then any spelling with scheme or path.
    for (const key of wanted) {
      const hit = this.byKey.get(key);
      if (hit) return hit;
    }
    const normalised = new Set(wanted.map(normaliseKey));
    for (const [key, creds] of this.byKey) {
      if (normalised.has(normaliseKey(key))) return creds;
    }
    return undefined;
  }
}
