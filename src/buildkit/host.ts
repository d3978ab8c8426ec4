// What the BuildKit API needs from the process that hosts it (kiln serve): who a caller is, the tenant's
// state, this node's name and platforms. src/daemon provides it; src/buildkit never imports the daemon.
import type * as grpc from '@grpc/grpc-js';
import type { State } from '../../cache/state.js';

export interface HostTenant {
  readonly name: string;
  readonly state: State;
  /** Runs a build while no prune runs. */
  shared<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs a prune alone. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export interface BuildkitHost {
  root: string;
  name: string;
  platforms: string[];
  /** Entitlements builds may ask for (network.host, security.insecure). */
  entitlements: string[];
  /** The caller's tenant; throws when the call is refused. */
  identify(call: { metadata: grpc.Metadata; getAuthContext?: () => unknown }): string;
  tenant(name: string): Promise<HostTenant>;
  /** A build slot of this tenant; resolves with its release. */
  acquireSlot?(tenant: string, signal: AbortSignal): Promise<() => void>;
}
