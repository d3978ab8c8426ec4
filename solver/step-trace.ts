// Per-step cost breakdown, for finding kiln's own overhead around the work a Dockerfile asks for. With
// KILN_TRACE_STEPS=1 every build step's time is split into phases (keying, cache lookup, snapshot,
// commit, record, layer packing…) and a table is printed on stderr when the process exits: one line per
// step, then the total and mean per phase. Off (the default), `traced` only calls its function.
//
// Times are wall-clock milliseconds per phase of one step; phases of different steps may overlap when
// steps run in parallel, so the totals are an upper bound of what the phase cost the build.

const enabled = process.env.KILN_TRACE_STEPS === '1';

interface StepRow {
  label: string;
  phases: Map<string, number>;
}

const rows = new Map<string, StepRow>();
let reported = false;

export function stepTraceEnabled(): boolean {
  return enabled;
}

/** Adds `ms` to `phase` of the step `id` (a vertex digest, or any id such as a layer's). */
export function addStepTime(id: string, label: string, phase: string, ms: number): void {
  if (!enabled) return;
  let row = rows.get(id);
  if (!row) rows.set(id, (row = { label, phases: new Map() }));
  row.phases.set(phase, (row.phases.get(phase) ?? 0) + ms);
  if (!reported) {
    reported = true;
    process.once('exit', () => process.stderr.write(stepTraceReport()));
  }
}

const layerOwners = new Map<string, { id: string; label: string }>();

/** Says which step made a layer, so work on the layer later (packing it) is counted to that step. */
export function noteLayerOwner(layerId: string, id: string, label: string): void {
  if (enabled) layerOwners.set(layerId, { id, label });
}

/** Like `traced`, for work on a layer: counted to the step that made it (or a row of its own). */
export function tracedLayer<T>(layerId: string | undefined, phase: string, fn: () => Promise<T>): Promise<T> {
  if (!enabled || !layerId) return fn();
  const owner = layerOwners.get(layerId) ?? { id: `layer:${layerId}`, label: `layer ${layerId.slice(0, 12)}` };
  return traced(owner.id, owner.label, phase, fn);
}

/** Runs `fn`, adding its wall time to `phase` of step `id` when tracing is on. */
export async function traced<T>(id: string, label: string, phase: string, fn: () => Promise<T> | T): Promise<T> {
  if (!enabled) return fn();
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    addStepTime(id, label, phase, performance.now() - t0);
  }
}

/** The table printed at exit (exported for tests and hosts that print it themselves). */
export function stepTraceReport(): string {
  const phases = [...new Set([...rows.values()].flatMap((r) => [...r.phases.keys()]))];
  const cell = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(2)).padStart(9);
  const lines = [`kiln step trace (ms; ${rows.size} steps)`, `${'step'.padEnd(40)}${phases.map((p) => p.padStart(9)).join('')}`];
  const totals = new Map<string, { sum: number; n: number }>();
  for (const r of rows.values()) {
    lines.push(`${r.label.slice(0, 39).padEnd(40)}${phases.map((p) => cell(r.phases.get(p))).join('')}`);
    for (const [p, ms] of r.phases) {
      const t = totals.get(p) ?? { sum: 0, n: 0 };
      totals.set(p, { sum: t.sum + ms, n: t.n + 1 });
    }
  }
  lines.push(`${'total'.padEnd(40)}${phases.map((p) => cell(totals.get(p)?.sum)).join('')}`);
  lines.push(`${'mean per step'.padEnd(40)}${phases.map((p) => cell(totals.get(p) && totals.get(p)!.sum / totals.get(p)!.n)).join('')}`);
  const cpu = process.cpuUsage();
  lines.push(`process cpu: user ${(cpu.user / 1000).toFixed(0)} ms, system ${(cpu.system / 1000).toFixed(0)} ms`);
  return `${lines.join('\n')}\n`;
}
