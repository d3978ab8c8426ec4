// Symbolic `--chmod` modes (`go-w`, `u=rw,g=r,o=r`, `a+X`, `go=u-w`) as BuildKit applies them: BSD
// setmode/getmode semantics with a umask of 0, evaluated per copied file against that file's own mode.
// `X` looks at the file's original mode (a directory, or any execute bit already set); `s` and `t` are
// ignored when only "other" is named. Parsing compiles the string once; applying is a small interpreter.

const S_IFDIR = 0o040000;
const S_IFMT = 0o170000;
const ISUID = 0o4000;
const ISGID = 0o2000;
const ISTXT = 0o1000;
const IRWXU = 0o700;
const IRWXG = 0o070;
const IRWXO = 0o007;
const IXALL = 0o111;
const STANDARD_BITS = ISUID | ISGID | IRWXU | IRWXG | IRWXO;
/** ~umask with a umask of 0: every permission bit. */
const ALL = 0o7777;

type Command =
  | { op: '+' | '-' | 'X'; bits: number }
  /** Copy the u, g or o bits (of the mode being built) onto the named classes. */
  | { op: 'u' | 'g' | 'o'; bits: number; toU: boolean; toG: boolean; toO: boolean; set: boolean; clear: boolean };

export class SymbolicModeError extends Error {}

export function isSymbolicMode(spec: string): boolean {
  return spec !== '' && !/^[0-7]+$/.test(spec);
}

/** Compiles `spec`; throws SymbolicModeError ("invalid syntax", BuildKit's words) when it is not one. */
export function parseSymbolicMode(spec: string): Command[] {
  const cmds: Command[] = [];
  const add = (op: '+' | '-' | '=' | 'X', who: number, perm: number): void => {
    if (op === '=') {
      cmds.push({ op: '-', bits: who || STANDARD_BITS });
      op = '+';
    }
    cmds.push({ op, bits: (who || ALL) & perm });
  };
  const addCopy = (from: 'u' | 'g' | 'o', who: number, op: '+' | '-' | '='): void => {
    const any = who === 0;
    cmds.push({
      op: from,
      bits: any ? ALL : ~0,
      toU: any || (who & 0o400) !== 0,
      toG: any || (who & 0o040) !== 0,
      toO: any || (who & 0o004) !== 0,
      set: op !== '-',
      clear: op !== '+',
    });
  };
  const bad = (): never => {
    throw new SymbolicModeError('invalid syntax');
  };
  let p = 0;
  const at = (): string => spec[p] ?? '';
  if (spec === '') bad();
  for (;;) {
    let who = 0;
    for (;; p++) {
      const c = at();
      if (c === 'a') who |= STANDARD_BITS;
      else if (c === 'u') who |= ISUID | IRWXU;
      else if (c === 'g') who |= ISGID | IRWXG;
      else if (c === 'o') who |= IRWXO;
      else break;
    }
    // One clause may chain several operations: `u+x-w`, `go=u-w`.
    for (;;) {
      const op = at();
      if (op !== '+' && op !== '-' && op !== '=') bad();
      p++;
      let equalDone = false;
      let perm = 0;
      let xBits = 0;
      let whoHere = who;
      for (;; p++) {
        const c = at();
        if (c === 'r') perm |= 0o444;
        else if (c === 'w') perm |= 0o222;
        else if (c === 'x') perm |= IXALL;
        else if (c === 'X') xBits = IXALL;
        else if (c === 's') {
          if (!whoHere || whoHere & ~IRWXO) perm |= ISUID | ISGID;
        } else if (c === 't') {
          if (!whoHere || whoHere & ~IRWXO) {
            whoHere |= ISTXT;
            perm |= ISTXT;
          }
        } else if (c === 'u' || c === 'g' || c === 'o') {
          if (perm) {
            add(op as '+' | '-' | '=', whoHere, perm);
            perm = 0;
          }
          if (op === '=') equalDone = true;
          if (op === '+' && xBits) {
            add('X', whoHere, xBits);
            xBits = 0;
          }
          addCopy(c, whoHere, op as '+' | '-' | '=');
        } else {
          if (perm || (op === '=' && !equalDone)) {
            add(op as '+' | '-' | '=', whoHere, perm);
            perm = 0;
          }
          if (xBits) add('X', whoHere, xBits);
          break;
        }
      }
      const next = at();
      if (next === '') return cmds;
      if (next === ',') {
        p++;
        break;
      }
      // anything else must start another operation of the same clause
    }
  }
}

/** The permission bits (07777) a file of `mode` (with its type bits) gets under the compiled `cmds`. */
export function applySymbolicMode(cmds: Command[], mode: number): number {
  const original = mode;
  let m = mode & 0o7777;
  for (const c of cmds) {
    switch (c.op) {
      case '+':
        m |= c.bits;
        break;
      case '-':
        m &= ~c.bits;
        break;
      case 'X':
        if ((original & S_IFMT) === S_IFDIR || original & IXALL) m |= c.bits;
        break;
      default: {
        const value = c.op === 'u' ? (m & IRWXU) >> 6 : c.op === 'g' ? (m & IRWXG) >> 3 : m & IRWXO;
        if (c.clear) {
          const clr = c.set ? IRWXO : value;
          if (c.toU) m &= ~((clr << 6) & c.bits);
          if (c.toG) m &= ~((clr << 3) & c.bits);
          if (c.toO) m &= ~(clr & c.bits);
        }
        if (c.set) {
          if (c.toU) m |= (value << 6) & c.bits;
          if (c.toG) m |= (value << 3) & c.bits;
          if (c.toO) m |= value & c.bits;
        }
      }
    }
  }
  return m & 0o7777;
}
