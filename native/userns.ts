// Rootless mode (see src/cli/rootless.ts): kiln runs in a user namespace made by native/build/kiln-userns.
import { readFileSync } from 'node:fs';

/** True when this process is in a user namespace other than the initial one (uid_map not the identity). */
export const inUserNamespace: boolean = (() => {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
})();
