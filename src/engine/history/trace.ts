// A build's timeline as a picture: a Gantt chart of its steps, one bar per vertex on the worker lane it
// ran on, coloured by state (ran, cached, failed, canceled), the critical path outlined. `traceSvg` is a
// standalone SVG (hover titles); `traceHtml` wraps it in a page with a tooltip and a table of the steps.
import type { HistoryRecord, HistoryVertex } from './store.js';

export interface PlacedVertex {
  vertex: HistoryVertex;
  lane: number;
  critical: boolean;
}

export interface TraceLayout {
  placed: PlacedVertex[];
  lanes: number;
  t0: number;
  t1: number;
}

const MIN_BAR_MS = 1;

/** Lanes by interval partitioning (a vertex takes the first lane free at its start); the critical path
 * walks back from the step that ended last through the input (that ran) that ended last. */
export function layoutTrace(r: HistoryRecord): TraceLayout {
  const vs = [...r.vertices].sort((a, b) => a.start - b.start || a.end - b.end);
  const laneEnds: number[] = [];
  const lanes = new Map<string, number>();
  for (const v of vs) {
    const end = Math.max(v.end, v.start + MIN_BAR_MS);
    let lane = laneEnds.findIndex((e) => e <= v.start);
    if (lane < 0) lane = laneEnds.push(0) - 1;
    laneEnds[lane] = end;
    lanes.set(v.digest, lane);
  }
  const byDigest = new Map(vs.map((v) => [v.digest, v]));
  const critical = new Set<string>();
  let cur = vs.filter((v) => v.state !== 'cached').reduce<HistoryVertex | undefined>((m, v) => (!m || v.end > m.end ? v : m), undefined);
  while (cur && !critical.has(cur.digest)) {
    critical.add(cur.digest);
    // Cached steps cost nothing: the path goes through the input that ran and ended last.
    cur = cur.inputs
      .map((d) => byDigest.get(d))
      .filter((x): x is HistoryVertex => !!x && x.state !== 'cached')
      .reduce<HistoryVertex | undefined>((m, v) => (!m || v.end > m.end ? v : m), undefined);
  }
  const t0 = Math.min(Date.parse(r.started), ...vs.map((v) => v.start));
  const t1 = Math.max(r.ended ? Date.parse(r.ended) : t0, ...vs.map((v) => v.end), t0 + 1);
  return { placed: vs.map((v) => ({ vertex: v, lane: lanes.get(v.digest)!, critical: critical.has(v.digest) })), lanes: laneEnds.length, t0, t1 };
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function durationText(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

const COLORS = { ran: '#3b82f6', cached: '#9ca3af', failed: '#ef4444', canceled: '#f59e0b' };
const LANE_H = 26;
const LEFT = 70;
const TOP = 46;
const WIDTH = 1000;

export function traceSvg(r: HistoryRecord): string {
  const L = layoutTrace(r);
  const span = L.t1 - L.t0;
  const x = (t: number) => LEFT + ((t - L.t0) / span) * (WIDTH - LEFT - 10);
  const height = TOP + Math.max(1, L.lanes) * LANE_H + 30;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<style>.bar{stroke:none}.critical{stroke:#111827;stroke-width:2}.label{fill:#fff;pointer-events:none}.axis{fill:#374151}</style>`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="10" y="18" font-size="13" font-weight="bold">${escapeXml(`build ${r.id} — ${r.status}, ${durationText(L.t1 - L.t0)}`)}</text>`);
  const legend = Object.entries(COLORS).map(([k, c], i) => `<rect x="${10 + i * 90}" y="26" width="10" height="10" fill="${c}"/><text class="axis" x="${24 + i * 90}" y="35">${k}</text>`);
  out.push(legend.join('') + `<rect x="${10 + 4 * 90}" y="26" width="10" height="10" fill="none" class="critical"/><text class="axis" x="${24 + 4 * 90}" y="35">critical path</text>`);
  for (let lane = 0; lane < L.lanes; lane++) out.push(`<text class="axis" x="10" y="${TOP + lane * LANE_H + 16}">worker ${lane + 1}</text>`);
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const t = L.t0 + (span * i) / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    out.push(`<line x1="${x(t)}" y1="${TOP - 4}" x2="${x(t)}" y2="${TOP + L.lanes * LANE_H}" stroke="#e5e7eb"/><text class="axis" text-anchor="${anchor}" x="${x(t)}" y="${height - 10}">${((t - L.t0) / 1000).toFixed(2)}s</text>`);
  }
  for (const p of L.placed) {
    const v = p.vertex;
    const x0 = x(v.start);
    const w = Math.max(3, x(Math.max(v.end, v.start + MIN_BAR_MS)) - x0);
    const y = TOP + p.lane * LANE_H + 3;
    const tip = `${v.name} — ${v.state}, ${durationText(v.end - v.start)}${v.reason ? ` — ${v.reason}` : ''}${v.error ? ` — ${v.error}` : ''}`;
    out.push(
      `<g class="vertex" data-digest="${v.digest}" data-state="${v.state}" data-critical="${p.critical}" data-name="${escapeXml(v.name)}" data-duration-ms="${v.end - v.start}">` +
        `<rect class="bar ${v.state}${p.critical ? ' critical' : ''}" x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${LANE_H - 6}" rx="3" fill="${COLORS[v.state]}"><title>${escapeXml(tip)}</title></rect>` +
        (w > 60 ? `<text class="label" x="${(x0 + 4).toFixed(1)}" y="${y + 14}">${escapeXml(v.name.length > w / 6 ? v.name.slice(0, Math.floor(w / 6) - 1) + '…' : v.name)}</text>` : '') +
        `</g>`,
    );
  }
  out.push('</svg>');
  return out.join('\n');
}

export function traceHtml(r: HistoryRecord): string {
  const rows = [...r.vertices]
    .sort((a, b) => a.start - b.start)
    .map((v) => `<tr class="${v.state}"><td>${escapeXml(v.name)}</td><td>${v.state}</td><td>${durationText(v.end - v.start)}</td><td>${escapeXml(v.reason ?? v.error ?? '')}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>kiln build ${escapeXml(r.id)}</title>
<style>body{font-family:sans-serif;margin:16px}#tip{position:fixed;display:none;background:#111827;color:#fff;padding:6px 8px;border-radius:4px;font-size:12px;max-width:520px;pointer-events:none}
table{border-collapse:collapse;margin-top:12px;font-size:12px}td,th{border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:left}tr.failed td{color:#b91c1c}</style></head>
<body>
<h1>Build ${escapeXml(r.id)}</h1>
<p>${escapeXml(r.dockerfile.name)} · ${escapeXml(r.platforms.join(', '))} · ${r.status} · started ${escapeXml(r.started)}</p>
${traceSvg(r)}
<div id="tip"></div>
<table><thead><tr><th>step</th><th>state</th><th>duration</th><th>why it ran / error</th></tr></thead><tbody>
${rows}
</tbody></table>
<script>
const tip = document.getElementById('tip');
for (const g of document.querySelectorAll('g.vertex')) {
  g.addEventListener('mousemove', (e) => {
    tip.style.display = 'block';
    tip.style.left = e.clientX + 12 + 'px';
    tip.style.top = e.clientY + 12 + 'px';
    tip.textContent = g.querySelector('title').textContent;
  });
  g.addEventListener('mouseleave', () => (tip.style.display = 'none'));
}
</script>
</body></html>
`;
}
