// Go's filepath.Match for one path component (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), which is what
// BuildKit's COPY wildcards use, and expansion of a wildcard path against a view.
import type { FsView } from './view.js';
import { splitPath } from './view.js';

export function hasWildcard(p: string): boolean {
  return /[*?[\\]/.test(p);
}

function componentRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escape(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new Error(`syntax error in pattern ${pattern}`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^')) body = '^' + body.slice(1).replace(/\\(.)/g, '\\$1');
      re += `[${body.replace(/\]/g, '\\]')}]`;
      i = end;
    } else re += escape(c);
  }
  return new RegExp(re + '$', 's');
}

const escape = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export function matchComponent(pattern: string, name: string): boolean {
  return componentRegExp(pattern).test(name);
}

/** All existing paths matching a wildcard path in the view, sorted (no symlink following in matches). */
export async function expandWildcard(view: FsView, pattern: string): Promise<string[]> {
  let current = [''];
  for (const part of splitPath(pattern)) {
    const next: string[] = [];
    for (const base of current) {
      if (!hasWildcard(part)) {
        const p = base ? `${base}/${part}` : part;
        if (await view.lookup(await view.resolve(p, false))) next.push(p);
        continue;
      }
      const dir = await view.resolve(base, true);
      const e = await view.lookup(dir);
      if (!e || !e.stat.isDirectory()) continue;
      const re = componentRegExp(part);
      for (const name of await view.readdir(dir)) if (re.test(name)) next.push(base ? `${base}/${name}` : name);
    }
    current = next;
  }
  return current.filter((p) => p !== '').sort();
}
