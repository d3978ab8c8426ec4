// Progress events of a solve, per vertex: started, log output, cached, completed (with duration) or
// failed. Renderers (tty, plain, rawjson) and the remote protocol consume the same events.

export type ProgressEvent =
  | { type: 'vertex.started'; digest: string; name: string; time: number; key?: string }
  | { type: 'vertex.cached'; digest: string; name: string; time: number; key?: string }
  | { type: 'vertex.completed'; digest: string; name: string; time: number; durationMs: number }
  | { type: 'vertex.failed'; digest: string; name: string; time: number; error: string }
  | { type: 'vertex.log'; digest: string; stream: 'stdout' | 'stderr'; data: string; time: number }
  | { type: 'vertex.warning'; digest: string; message: string; time: number }
  | { type: 'vertex.explain'; digest: string; name: string; reason: string; time: number }
  | { type: 'status'; message: string; time: number };

export type ProgressSink = (ev: ProgressEvent) => void;

/** Per-vertex logger handed to op implementations. */
export interface VertexProgress {
  log(stream: 'stdout' | 'stderr', data: Buffer | string): void;
  warn(message: string): void;
  /** The last lines of output, for error messages. */
  tail(lines: number): string[];
}

export function vertexProgress(sink: ProgressSink, digest: string): VertexProgress {
  const recent: string[] = [];
  let partial = '';
  return {
    log(stream, data) {
      const text = typeof data === 'string' ? data : data.toString('utf8');
      sink({ type: 'vertex.log', digest, stream, data: text, time: Date.now() });
      const parts = (partial + text).split('\n');
      partial = parts.pop() ?? '';
      recent.push(...parts);
      if (recent.length > 200) recent.splice(0, recent.length - 200);
    },
    warn(message) {
      sink({ type: 'vertex.warning', digest, message, time: Date.now() });
    },
    tail(n) {
      const all = partial ? [...recent, partial] : recent;
      return all.slice(-n);
    },
  };
}
