// Plain progress, as BuildKit prints it when stdout is not a terminal: each vertex gets a number in the
// order it first appears; its log lines carry the time since it started.
import type { ProgressEvent } from '../../../solver/progress.js';

export function plainRenderer(out: NodeJS.WritableStream): { onEvent: (ev: ProgressEvent) => void; finish: () => void } {
  const numbers = new Map<string, number>();
  const started = new Map<string, number>();
  const partial = new Map<string, string>();
  let next = 1;
  const num = (d: string) => {
    let n = numbers.get(d);
    if (n === undefined) numbers.set(d, (n = next++));
    return n;
  };
  const flushPartial = (d: string) => {
    const rest = partial.get(d);
    if (rest) out.write(`#${num(d)} ${secs(Date.now() - (started.get(d) ?? Date.now()))} ${rest}\n`);
    partial.delete(d);
  };
  return {
    onEvent(ev) {
      switch (ev.type) {
        case 'vertex.started':
          started.set(ev.digest, ev.time);
          out.write(`\n#${num(ev.digest)} ${ev.name}\n`);
          break;
        case 'vertex.cached':
          out.write(`\n#${num(ev.digest)} ${ev.name}\n#${num(ev.digest)} CACHED\n`);
          break;
        case 'vertex.log': {
          const lines = ((partial.get(ev.digest) ?? '') + ev.data).split('\n');
          partial.set(ev.digest, lines.pop() ?? '');
          const t = secs(ev.time - (started.get(ev.digest) ?? ev.time));
          for (const l of lines) out.write(`#${num(ev.digest)} ${t} ${l}\n`);
          break;
        }
        case 'vertex.warning':
          out.write(`#${num(ev.digest)} WARNING: ${ev.message}\n`);
          break;
        case 'vertex.completed':
          flushPartial(ev.digest);
          out.write(`#${num(ev.digest)} DONE ${(ev.durationMs / 1000).toFixed(1)}s\n`);
          break;
        case 'vertex.failed':
          flushPartial(ev.digest);
          out.write(`#${num(ev.digest)} ERROR: ${ev.error}\n`);
          break;
        case 'status':
          out.write(`${ev.message}\n`);
          break;
      }
    },
    finish() {},
  };
}

function secs(ms: number): string {
  return (ms / 1000).toFixed(3);
}
