// An ordered environment like BuildKit's llb.EnvList: setting a key again moves it to the end, which is the
// order RUN sees its env in (and the order `ENV` history and image Env are compared in).
import type { EnvGetter } from '../shell-lexer.js';

export class EnvList implements EnvGetter {
  private constructor(private readonly entries: ReadonlyArray<readonly [string, string]>) {}

  static empty(): EnvList {
    return new EnvList([]);
  }

  /** From `KEY=value` strings (an image config's Env). */
  static fromArray(env: readonly string[]): EnvList {
    let l = EnvList.empty();
    for (const e of env) {
      const i = e.indexOf('=');
      l = i < 0 ? l.set(e, '') : l.set(e.slice(0, i), e.slice(i + 1));
    }
    return l;
  }

  set(key: string, value: string): EnvList {
    return new EnvList([...this.entries.filter(([k]) => k !== key), [key, value]]);
  }

  delete(key: string): EnvList {
    return new EnvList(this.entries.filter(([k]) => k !== key));
  }

  get(key: string): string | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }

  has(key: string): boolean {
    return this.entries.some(([k]) => k === key);
  }

  keys(): string[] {
    return this.entries.map(([k]) => k);
  }

  toArray(): string[] {
    return this.entries.map(([k, v]) => `${k}=${v}`);
  }
}
