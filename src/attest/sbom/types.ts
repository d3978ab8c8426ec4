// What the SBOM scanners read (a root filesystem, without mounting it) and what they find.

/** Read access to an image's root filesystem. Paths are absolute inside the image; symlinks resolve inside it. */
export interface RootfsReader {
  /** A regular file's bytes, or undefined when absent or not a file. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** Entries of a directory with their kinds (symlinks not followed), sorted by name; [] when absent or not a directory. */
  readdir(path: string): Promise<{ name: string; kind: EntryKind }[]>;
  /** 'dir', 'file', 'symlink', 'other', or undefined when absent (symlinks not followed). */
  kind(path: string): Promise<EntryKind | undefined>;
}

export type EntryKind = 'dir' | 'file' | 'symlink' | 'other';

export type PackageType = 'deb' | 'apk' | 'npm' | 'pypi';

export interface FoundPackage {
  type: PackageType;
  name: string;
  version: string;
  /** Package URL (purl.org), e.g. pkg:deb/debian/libc6@2.36-9?arch=amd64 */
  purl: string;
  /** Declared license as the package database states it (not necessarily an SPDX expression). */
  license?: string;
  /** The file the package was found in, e.g. /var/lib/dpkg/status */
  location: string;
  arch?: string;
  supplier?: string;
}
