// .dockerignore: reading (moby/patternmatcher ignorefile) and matching (patternmatcher), plus the walk
// helper "may an excluded directory still contain re-included files?" (tonistiigi/fsutil).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { posix } from 'node:path';
import { InputSyntaxError } from '../errors.js';

/** Patterns from .dockerignore text: comments and blank lines dropped, paths cleaned, leading `/` removed. */
export function readDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw; // bufio.ScanLines drops one trailing \r
    if (i === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let p = line.trim();
    if (p === '') return;
    const invert = p[0] === '!';
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p[0] === '/') p = p.slice(1);
    }
    out.push(invert ? '!' + p : p);
  });
  return out;
}

/** Go's filepath.Clean for slash paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!rooted) parts.push('..');
      continue;
    }
    parts.push(seg);
  }
  const s = (rooted ? '/' : '') + parts.join('/');
  return s === '' ? (rooted ? '/' : '.') : s;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** One compiled pattern. */
export class IgnorePattern {
  readonly exclusion: boolean;
  /** the cleaned pattern without `!` */
  readonly pattern: string;
  readonly dirs: string[];
  private type: MatchType = 'exact';
  private re?: RegExp;

  constructor(pattern: string, exclusion: boolean) {
    this.pattern = pattern;
    this.exclusion = exclusion;
    this.dirs = pattern.split('/');
    this.compile();
  }

  private compile(): void {
    let reStr = '^';
    let type: MatchType = 'exact';
    const chars = Array.from(this.pattern);
    for (let i = 0, k = 0; k < chars.length; i++) {
      const ch = chars[k++]!;
      if (ch === '*') {
        if (chars[k] === '*') {
          k++;
          if (chars[k] === '/') k++;
          if (k >= chars.length) {
            if (type === 'exact') type = 'prefix';
            else { reStr += '.*'; type = 'regexp'; }
          } else {
            reStr += '(.*/)?';
            type = 'regexp';
          }
          if (i === 0) type = 'suffix';
        } else {
          reStr += '[^/]*';
          type = 'regexp';
        }
      } else if (ch === '?') {
        reStr += '[^/]';
        type = 'regexp';
      } else if ('.+()|{}$'.includes(ch)) {
        reStr += '\\' + ch;
      } else if (ch === '\\') {
        if (k < chars.length) {
          reStr += '\\' + chars[k++]!;
          type = 'regexp';
        } else {
          reStr += '\\\\';
        }
      } else if (ch === '[' || ch === ']') {
        reStr += ch;
        type = 'regexp';
      } else {
        reStr += ch;
      }
    }
    if (type === 'regexp') {
      try {
        this.re = new RegExp(reStr + '$', 'su');
      } catch {
        throw new InputSyntaxError(`syntax error in .dockerignore pattern: ${this.pattern}`);
      }
    }
    this.type = type;
  }

  match(path: string): boolean {
    switch (this.type) {
      case 'exact':
        return path === this.pattern;
      case 'prefix':
        return path.startsWith(this.pattern.slice(0, -2));
      case 'suffix': {
        const suffix = this.pattern.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix[0] === '/' && path === suffix.slice(1);
      }
      case 'regexp':
        return this.re!.test(path);
    }
  }
}

/** A list of ignore patterns; later patterns win, `!` re-includes. */
export class IgnoreMatcher {
  readonly patterns: IgnorePattern[] = [];
  readonly hasExclusions: boolean;

  constructor(patterns: readonly string[]) {
    let exclusions = false;
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p[0] === '!') {
        if (p.length === 1) throw new InputSyntaxError('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
        exclusions = true;
      }
      this.patterns.push(new IgnorePattern(p, exclusion));
    }
    this.hasExclusions = exclusions;
  }

  /** Is `file` (slash path relative to the context) excluded? A pattern matching a parent dir excludes it too. */
  matches(file: string): boolean {
    file = cleanPath(file);
    if (file === '.') return false;
    let matched = false;
    const parent = posix.dirname(file);
    const parentDirs = parent.split('/');
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue;
      let m = p.match(file);
      if (!m && parent !== '.') {
        for (let i = 0; i < parentDirs.length && !m; i++) m = p.match(parentDirs.slice(0, i + 1).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * For an excluded directory: may files below it be re-included by a `!` pattern, so that a walk must
   * still descend? (False means the whole directory can be skipped.)
   */
  mayIncludeBelow(dir: string): boolean {
    if (!this.hasExclusions) return false;
    const exceptions = this.patterns.filter((p) => p.exclusion);
    // Wildcards in an exception (other than a trailing /* or /**) can match anywhere: always descend.
    if (exceptions.some((p) => /[*[\]?^]/.test(withoutTrailingGlob(p.pattern)))) return true;
    const dirSlash = cleanPath(dir) + '/';
    return exceptions.some((p) => (withoutTrailingGlob(p.pattern) + '/').startsWith(dirSlash));
  }
}

function withoutTrailingGlob(p: string): string {
  if (p.endsWith('/**')) p = p.slice(0, -3);
  if (p.endsWith('/*')) p = p.slice(0, -2);
  return p;
}

/**
 * The ignore file that applies to a build: `<Dockerfile>.dockerignore` next to the Dockerfile wins over
 * `.dockerignore` at the context root. Returns its path and patterns, or undefined when there is none.
 */
export function loadDockerignore(contextDir: string, dockerfilePath: string): { path: string; patterns: string[] } | undefined {
  const specific = join(dirname(dockerfilePath), basename(dockerfilePath) + '.dockerignore');
  for (const p of [specific, join(contextDir, '.dockerignore')]) {
    if (existsSync(p)) return { path: p, patterns: readDockerignore(readFileSync(p, 'utf8')) };
  }
  return undefined;
}
