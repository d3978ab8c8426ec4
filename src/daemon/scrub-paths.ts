// Text that goes back to a remote client names no path of the builder host: a build's own context dir
// becomes context-relative, the state dir, other build dirs and kiln's temporary dirs become placeholders.
// (Paths inside the image, such as "/app/x", are left alone: they are the user's.)
import { tmpdir } from 'node:os';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const REST = `[^\\s"':,;)]*`;

export class PathScrubber {
  private readonly rules: [RegExp, string][];

  constructor(stateRoot: string, buildDir?: string) {
    const rules: [string, string][] = [];
    if (buildDir) {
      rules.push([`${escape(buildDir)}/(?:context|named/[0-9]+)/`, ''], [`${escape(buildDir)}/(?:context|named/[0-9]+)(?=$|[^/])`, '.'], [`${escape(buildDir)}${REST}`, '<build dir>']);
    }
    rules.push([`${escape(stateRoot)}${REST}`, '<builder state>'], [`(?:${escape(tmpdir())}|/dev/shm)/kiln-${REST}`, '<builder tmp>']);
    // Only where a path starts (not inside a longer name such as a tenant's "h/tmp/kiln-x").
    this.rules = rules.map(([re, to]) => [new RegExp(`(?<![\\w.~/-])${re}`, 'g'), to]);
  }

  scrub(text: string): string {
    let out = text;
    for (const [re, to] of this.rules) out = out.replace(re, to);
    return out;
  }
}
