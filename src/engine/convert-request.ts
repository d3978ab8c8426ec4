// A build target's Dockerfile converted once per target platform (the plan step of build.ts).
import { convertDockerfile } from '../../frontends/dockerfile/convert/index.js';
import type { ConvertResult, NamedContext } from '../../frontends/dockerfile/convert/types.js';
import type { Platform } from '../../base/oci/types.js';
import type { ImageResolver } from './image-resolver.js';
import type { BuildTarget } from './request.js';

export interface ConvertSetting {
  buildPlatform: Platform;
  namedContexts: Record<string, NamedContext>;
  /** The local-source name of the request's context (bake shares one per directory). */
  contextName?: string;
  dockerignorePatterns: string[];
  resolver: ImageResolver;
  /** --check: only run the build checks. */
  check?: boolean;
}

export async function convertForPlatforms(req: BuildTarget, platforms: Platform[], s: ConvertSetting): Promise<ConvertResult[]> {
  const out: ConvertResult[] = [];
  for (const platform of platforms) {
    out.push(
      await convertDockerfile({
        dockerfile: req.dockerfile.text,
        dockerfileName: req.dockerfile.name,
        target: req.target,
        buildArgs: req.buildArgs,
        targetPlatform: platform,
        buildPlatform: s.buildPlatform,
        namedContexts: s.namedContexts,
        ...(s.contextName ? { contextName: s.contextName } : {}),
        dockerignorePatterns: s.dockerignorePatterns,
        resolver: s.resolver,
        sourceDateEpoch: req.sourceDateEpoch,
        noCache: req.noCache,
        noCacheFilter: req.noCacheFilter,
        labels: req.labels,
        check: s.check,
      }),
    );
  }
  return out;
}
