// The offline busybox base image (amd64 + arm64), made once per checkout by test/fixtures/make-busybox.sh.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const fixturesDir = join(repoRoot, 'test', '.fixtures');
export const busyboxDir = join(fixturesDir, 'busybox');

let made = false;
/** Makes (or reuses) the busybox fixture and returns its paths. */
export function busyboxFixture(): { ociLayout: string; rootfs: { amd64: string; arm64: string } } {
  if (!made) {
    execFileSync('bash', [join(repoRoot, 'test', 'fixtures', 'make-busybox.sh'), busyboxDir], { stdio: 'inherit' });
    made = true;
  }
  return {
    ociLayout: join(busyboxDir, 'oci'),
    rootfs: { amd64: join(busyboxDir, 'rootfs-amd64'), arm64: join(busyboxDir, 'rootfs-arm64') },
  };
}
