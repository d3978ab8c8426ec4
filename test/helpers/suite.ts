// The setup most build tests share: a real registry with the busybox fixture, a kiln state dir and a
// scratch dir for outputs, created before the file's tests and removed after them.
import { before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, pushBusybox, type TestRegistry } from './registry.js';
import { tempRoot } from './kiln.js';

export interface BuildSuite {
  reg: TestRegistry;
  /** The busybox image in the registry: HOST/library/busybox:latest */
  base: string;
  root: string;
  outs: string;
}

export function buildSuite(): BuildSuite {
  const s = {} as BuildSuite;
  before(async () => {
    s.reg = await startRegistry();
    s.base = pushBusybox(s.reg, 'library/busybox', 'latest');
    s.root = tempRoot();
    s.outs = mkdtempSync(join(tmpdir(), 'kiln-out-'));
  });
  after(async () => {
    await s.reg?.stop();
    if (s.root) rmSync(s.root, { recursive: true, force: true });
    if (s.outs) rmSync(s.outs, { recursive: true, force: true });
  });
  return s;
}
