// kiln's progress events as BuildKit StatusResponse messages, so buildx's tty and plain views show kiln's
// steps, logs, cached steps and errors the way they show BuildKit's: a vertex per step (started, then
// completed, cached or failed), its output as vertex logs (stream 1 stdout, 2 stderr), warnings.
import { createHash } from 'node:crypto';
import type { ProgressEvent } from '../../solver/progress.js';

export interface Timestamp {
  seconds: string;
  nanos: number;
}

export function timestamp(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) };
}

export interface VertexMsg {
  digest: string;
  inputs: string[];
  name: string;
  cached: boolean;
  started?: Timestamp;
  completed?: Timestamp;
  error: string;
}

export interface StatusResponse {
  vertexes: VertexMsg[];
  statuses: unknown[];
  logs: { vertex: string; timestamp: Timestamp; stream: string; msg: Buffer }[];
  warnings: { vertex: string; level: string; short: Buffer; detail: Buffer[]; url: string }[];
}

function empty(): StatusResponse {
  return { vertexes: [], statuses: [], logs: [], warnings: [] };
}

/** Keeps what BuildKit's messages need beyond one event (a step's name and start time). */
export class StatusTranslator {
  private readonly started = new Map<string, { name: string; at: number }>();
  counts = { total: 0, cached: 0, completed: 0, warnings: 0 };

  translate(ev: ProgressEvent): StatusResponse | undefined {
    const out = empty();
    switch (ev.type) {
      case 'vertex.started':
        this.started.set(ev.digest, { name: ev.name, at: ev.time });
        this.counts.total++;
        out.vertexes.push({ digest: ev.digest, inputs: [], name: ev.name, cached: false, started: timestamp(ev.time), error: '' });
        break;
      case 'vertex.cached': {
        const s = this.started.get(ev.digest);
        if (!s) this.counts.total++;
        this.counts.cached++;
        this.counts.completed++;
        out.vertexes.push({ digest: ev.digest, inputs: [], name: ev.name, cached: true, started: timestamp(s?.at ?? ev.time), completed: timestamp(ev.time), error: '' });
        break;
      }
      case 'vertex.completed': {
        const s = this.started.get(ev.digest);
        this.counts.completed++;
        out.vertexes.push({ digest: ev.digest, inputs: [], name: ev.name, cached: false, started: timestamp(s?.at ?? ev.time - ev.durationMs), completed: timestamp(ev.time), error: '' });
        break;
      }
      case 'vertex.failed': {
        const s = this.started.get(ev.digest);
        out.vertexes.push({ digest: ev.digest, inputs: [], name: ev.name, cached: false, started: timestamp(s?.at ?? ev.time), completed: timestamp(ev.time), error: ev.error });
        break;
      }
      case 'vertex.log':
        out.logs.push({ vertex: ev.digest, timestamp: timestamp(ev.time), stream: ev.stream === 'stderr' ? '2' : '1', msg: Buffer.from(ev.data) });
        break;
      case 'vertex.warning':
        this.counts.warnings++;
        out.warnings.push({ vertex: ev.digest, level: '1', short: Buffer.from(ev.message), detail: [], url: '' });
        break;
      case 'status': {
        // A message of the builder that belongs to no step: a step of its own, done at once.
        const digest = `sha256:${createHash('sha256').update(`${ev.time}\0${ev.message}`).digest('hex')}`;
        out.vertexes.push({ digest, inputs: [], name: ev.message, cached: false, started: timestamp(ev.time), completed: timestamp(ev.time), error: '' });
        break;
      }
      default:
        return undefined;
    }
    return out;
  }

  /** A step of the builder's own (exporting, sending outputs), started now; call the result to end it. */
  step(name: string, emit: (s: StatusResponse) => void): (error?: string, log?: string) => void {
    const digest = `sha256:${createHash('sha256').update(`${Date.now()}\0${Math.random()}\0${name}`).digest('hex')}`;
    const at = Date.now();
    emit({ ...empty(), vertexes: [{ digest, inputs: [], name, cached: false, started: timestamp(at), error: '' }] });
    return (error, log) => {
      if (log) emit({ ...empty(), logs: [{ vertex: digest, timestamp: timestamp(Date.now()), stream: '1', msg: Buffer.from(log.endsWith('\n') ? log : `${log}\n`) }] });
      emit({ ...empty(), vertexes: [{ digest, inputs: [], name, cached: false, started: timestamp(at), completed: timestamp(Date.now()), error: error ?? '' }] });
    };
  }
}
