// BuildKit's vertex digest: sha256 of an op's marshalled bytes, exactly as the client sent them. Inputs
// name their ops by it, and progress shows kiln's steps under it so a client can match its own vertices.
import { createHash } from 'node:crypto';

export function opDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
