// What every op may use while solving: the state (content store, snapshots, images), registry access, the
// local directories the client shares (build contexts), and the platform of this machine. Settings only
// one op needs (RUN's secrets, network, limits…) are not here: the op registry hands them to that op
// (solver/ops/index.ts buildOps).
import type { State } from '../cache/state.js';
import type { RegistryClient } from '../base/oci/registry/client.js';
import type { GraphPlatform } from './graph/ops.js';

export interface SolverEnv {
  state: State;
  registry: RegistryClient;
  /** local://NAME sources: NAME → directory on this machine. */
  localDirs: Record<string, string>;
  hostPlatform: GraphPlatform;
  /** Re-resolve image tags from the registry even when resolved before (--pull). */
  pull?: boolean;
  /** Content hashes of local-context files by path, reused while their stat is unchanged (stat index). */
  fileHasher?: (realPath: string, st?: import('node:fs').Stats) => string;
}
