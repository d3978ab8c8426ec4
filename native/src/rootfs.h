/* Builds the container's filesystem in the child's private mount namespace and pivots into it. */
#ifndef KILN_ROOTFS_H
#define KILN_ROOTFS_H
#include "spec.h"

/* Host directory used as the (namespace-private) staging mount point; it holds nothing on the host. */
#define STAGE_DIR "/run/kiln-sandbox"

/* Mounts the overlay rootfs, /proc, /dev, /sys and the spec's mounts, then pivot_root()s into it.
 * Must run in a new mount namespace (and a new pid namespace, for /proc). Fails via child_fail(). */
void rootfs_enter(const struct spec *s);

/* After pivot_root: Docker's masked and read-only paths (skipped for privileged). */
void rootfs_harden(const struct spec *s);

/* mkdir -p inside the (already pivoted) container root, as root; used for the cwd. */
void rootfs_mkdir_p(const char *path);
#endif
