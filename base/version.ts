// kiln's version, in one place: `kiln --version`, the builder protocol's Info and client id, the registry
// User-Agent and the SBOM's tool name. test/unit/version.test.ts keeps it equal to package.json's.
export const KILN_VERSION = '0.1.0';
