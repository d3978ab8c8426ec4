// The OCI image model and registry client, in one import for callers outside base/oci.
export * from './mediatypes.js';
export * from './types.js';
export * from './digest.js';
export * from './manifest.js';
export * from './platform.js';
export * from './reference.js';
export * from './resolve.js';
export * from './layout.js';
export { RegistryClient, type RegistryClientOptions, type FetchedManifest } from './registry/client.js';
export { CredentialStore, type Credentials } from './registry/credentials.js';
export { RegistryError, NotFoundError, UnauthorizedError, DeniedError, UnreachableError } from './registry/errors.js';
export { registryEndpoint, insecureRegistriesFromEnv, isLoopbackHost, type RegistryEndpoint } from './registry/endpoint.js';
export { parseWwwAuthenticate, type Challenge } from './registry/auth.js';
export type { RetryPolicy } from './registry/retry.js';
