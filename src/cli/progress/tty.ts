// The terminal view: a header with the elapsed time and step count, one line per step with its timer,
// the last log lines of running steps, finished steps collapsed to one line with CACHED/DONE marks.
// Redrawn in place ~8 times a second.
import type { ProgressEvent } from '../../../solver/progress.js';

interface Row {
  name: string;
  start?: number;
  end?: number;
  cached?: boolean;
  error?: string;
  logs: string[];
}

const LOG_LINES = 6;

export function ttyRenderer(out: NodeJS.WriteStream): { onEvent: (ev: ProgressEvent) => void; finish: () => void } {
  const rows = new Map<string, Row>();
  const begin = Date.now();
  let drawn = 0;
  const warnings: string[] = [];
  const draw = (final = false) => {
    const width = out.columns || 100;
    const now = Date.now();
    const list = [...rows.values()];
    const done = list.filter((r) => r.end !== undefined || r.cached).length;
    const lines = [`[+] Building ${((now - begin) / 1000).toFixed(1)}s (${done}/${list.length})${final ? ' FINISHED' : ''}`];
    for (const r of list) {
      const t = r.cached ? 'CACHED' : r.start !== undefined ? `${(((r.end ?? now) - r.start) / 1000).toFixed(1)}s` : '';
      const mark = r.error ? 'ERROR ' : '';
      const label = ` => ${mark}${r.name}`;
      const room = Math.max(10, width - t.length - 2);
      lines.push(label.length > room ? label.slice(0, room - 1) + '…' : label.padEnd(room) + ' ' + t);
      if (r.end === undefined && !r.cached && r.start !== undefined) {
        for (const l of r.logs.slice(-LOG_LINES)) lines.push(` => > ${l}`.slice(0, width - 1));
      }
    }
    let s = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const l of lines) s += `\x1b[2K${l}\n`;
    out.write(s);
    drawn = lines.length;
  };
  const timer = setInterval(() => draw(), 125);
  timer.unref();
  return {
    onEvent(ev) {
      if (ev.type === 'status' || ev.type === 'vertex.explain') return;
      const row = rows.get(ev.digest) ?? { name: 'name' in ev ? ev.name : ev.digest.slice(7, 19), logs: [] };
      rows.set(ev.digest, row);
      switch (ev.type) {
        case 'vertex.started':
          row.start = ev.time;
          break;
        case 'vertex.cached':
          row.cached = true;
          break;
        case 'vertex.completed':
          row.end = ev.time;
          break;
        case 'vertex.failed':
          row.end = ev.time;
          row.error = ev.error;
          break;
        case 'vertex.log':
          row.logs.push(...ev.data.split('\n').filter((l) => l.length > 0));
          if (row.logs.length > 50) row.logs.splice(0, row.logs.length - 50);
          break;
        case 'vertex.warning':
          warnings.push(ev.message);
          break;
      }
    },
    finish() {
      clearInterval(timer);
      draw(true);
      for (const r of rows.values()) {
        if (r.error && r.logs.length) {
          out.write(`------\n > ${r.name}:\n${r.logs.slice(-10).map((l) => `${l}\n`).join('')}------\n`);
        }
      }
      for (const w of warnings) out.write(`WARNING: ${w}\n`);
    },
  };
}
