// Where the shared conformance data lives: ../shared/conformance beside the repository checkout.
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

export const conformanceDir = join(repoRoot, '..', 'shared', 'conformance');
export const buildkitDockerfileDir = join(conformanceDir, 'buildkit', 'frontend', 'dockerfile');
