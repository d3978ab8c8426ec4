// What ops may use while solving: the state (content store, snapshots, images), registry access, the
// local directories the client shares (build contexts), secrets, and the platform of this machine.
import type { State } from '../cache/state.js';
import type { RegistryClient } from '../base/oci/registry/client.js';
import type { GraphPlatform } from './graph/ops.js';

export interface SolverEnv {
  state: State;
  registry: RegistryClient;
  /** local://NAME sources: NAME → directory on this machine. */
  localDirs: Record<string, string>;
  /** RUN --mount=type=secret: id → content. */
  secrets: Record<string, Buffer>;
  hostPlatform: GraphPlatform;
  /** Re-resolve image tags from the registry even when resolved before (--pull). */
  pull?: boolean;
  /** Content hashes of local-context files by path, reused while their stat is unchanged (stat index). */
  fileHasher?: (realPath: string, st?: import('node:fs').Stats) => string;
  /** What RUN's `default` network means in this build (`kiln build --network`): kiln's bridge unless none or host. */
  defaultNetwork?: 'none' | 'host' | 'bridge';
  /** --add-host entries for RUN's /etc/hosts. */
  extraHosts?: { host: string; ip: string }[];
  /** --dns: resolv.conf for RUN instead of the host's. */
  dns?: { nameservers?: string[]; search?: string[]; options?: string[] };
  /** RUN --mount=type=ssh: id → the SSH agent socket to forward (--ssh ID=SOCKET). */
  ssh?: Record<string, string>;
  /** ADD http(s)://: refuse the builder's own loopback, link-local and interface addresses (kiln serve without --allow-local-fetch). */
  denyLocalFetch?: boolean;
  /** With denyLocalFetch: HOST:PORT origins allowed anyway (kiln serve --allow-local-fetch HOST:PORT). */
  localFetchAllowed?: string[];
  /** Resource limits for each RUN (and, with `cgroupParent`, for all RUNs of the build together). */
  runLimits?: { memoryBytes?: number; pids?: number; cpuShares?: number; cpuQuotaUs?: number; cpuPeriodUs?: number };
  /**
   * Where cache mounts of steps run without the cache (--no-cache, --no-cache-filter) live: a dir of this
   * build only, removed after it, so they start empty (as in BuildKit) and are shared by this build's RUNs.
   */
  uncachedMountsRoot?: string;
  /** Fills an empty RUN cache mount from the caches imported with --cache-from (cache/remote/mount-seed.ts). */
  cacheMountSeeder?: import('../cache/remote/mount-seed.js').CacheMountSeeder;
  /** A cgroup all RUNs of this build share, with the build's limits (made and removed by the sandbox helper). */
  buildCgroup?: { name: string; limits?: SolverEnv['runLimits'] };
}
