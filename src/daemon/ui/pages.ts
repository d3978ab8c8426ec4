// The dashboard's HTML: a login form, the builds overview (refreshed from /api/summary every second) and
// a build's page (timeline SVG, steps, live logs over server-sent events). Plain HTML, inline CSS and
// script; nothing fetched from elsewhere.
import type { HistoryRecord } from '../../engine/history/store.js';
import { durationText, escapeXml } from '../../engine/history/trace.js';
import { formatBytes } from '../../../base/units.js';

export interface BuildRow {
  id: string;
  tenant: string;
  status: string;
  started: string;
  duration: string;
  ran: number;
  cached: number;
  dockerfile: string;
  digest: string;
}

export interface Summary {
  builds: BuildRow[];
  cache: { builds: number; steps: number; hits: number; ratio: number };
  usage: { tenant: string; records: number; bytes: number; reclaimable: number }[];
  gcPolicy: string;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#fff;padding:10px 20px;font-weight:600}header a{color:#fff;text-decoration:none}
main{padding:16px 20px}table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
td,th{border-bottom:1px solid #e5e7eb;padding:5px 8px;text-align:left}th{background:#f3f4f6}
.status{font-weight:600}.running{color:#2563eb}.completed{color:#15803d}.failed{color:#b91c1c}.canceled{color:#b45309}
.cards{display:flex;gap:12px;margin-bottom:16px}.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:10px 14px;min-width:180px}
.card b{display:block;font-size:20px}pre{background:#111827;color:#e5e7eb;padding:10px;max-height:420px;overflow:auto;font-size:12px}
.error{color:#b91c1c}`;

function page(title: string, body: string, logout = false): string {
  const form = logout ? `<form method="post" action="/logout" id="logout" style="float:right;margin:0"><button type="submit" id="logout-button">Log out</button></form>` : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body><header>${form}<a href="/">kiln</a> · ${escapeXml(title)}</header><main>${body}</main></body></html>`;
}

export function loginPage(error?: string): string {
  return page(
    'log in',
    `<form method="post" action="/login" id="login">
<p>This build service needs a token (one of its --token-file tokens).</p>
${error ? `<p class="error" id="login-error">${escapeXml(error)}</p>` : ''}
<input type="password" name="token" id="token" placeholder="token" autofocus> <button type="submit" id="login-button">Log in</button></form>`,
  );
}


function rowsHtml(s: Summary): string {
  return s.builds
    .map(
      (b) => `<tr data-build="${b.id}" data-status="${b.status}"><td><a href="/builds/${b.id}">${b.id}</a></td><td>${escapeXml(b.tenant)}</td>` +
        `<td class="status ${b.status}">${b.status}</td><td>${escapeXml(b.started.slice(0, 19).replace('T', ' '))}</td><td>${b.duration}</td>` +
        `<td>${b.ran} ran, ${b.cached} cached</td><td>${escapeXml(b.dockerfile)}</td><td><code>${escapeXml(b.digest.slice(0, 19))}</code></td></tr>`,
    )
    .join('\n');
}

function cardsHtml(s: Summary): string {
  const disk = s.usage.reduce((n, u) => n + u.bytes, 0);
  const reclaim = s.usage.reduce((n, u) => n + u.reclaimable, 0);
  return `<div class="card">cache hit ratio (last ${s.cache.builds} builds)<b id="hit-ratio">${(s.cache.ratio * 100).toFixed(0)}%</b>${s.cache.hits} of ${s.cache.steps} steps cached</div>
<div class="card">build cache on disk<b id="disk">${formatBytes(disk)}</b>${formatBytes(reclaim)} reclaimable, ${s.usage.reduce((n, u) => n + u.records, 0)} records</div>
<div class="card">garbage collection<b id="gc">${escapeXml(s.gcPolicy)}</b></div>`;
}

export function dashboardPage(s: Summary, logout = false): string {
  return page(
    'builds',
    `<div class="cards" id="cards">${cardsHtml(s)}</div>
<table><thead><tr><th>build</th><th>tenant</th><th>status</th><th>started</th><th>duration</th><th>steps</th><th>Dockerfile</th><th>image</th></tr></thead>
<tbody id="builds">${rowsHtml(s)}</tbody></table>
<script>
const esc = (t) => String(t).replace(/[<>&"']/g, (c) => ({'<':'&lt;','>':'&gt;','&':'&amp;','"':'&quot;',"'":'&#39;'})[c]);
async function refresh() {
  try {
    const s = await (await fetch('/api/summary')).json();
    document.getElementById('builds').innerHTML = s.builds.map((b) =>
      '<tr data-build="' + b.id + '" data-status="' + b.status + '"><td><a href="/builds/' + b.id + '">' + b.id + '</a></td><td>' + esc(b.tenant) +
      '</td><td class="status ' + b.status + '">' + b.status + '</td><td>' + esc(b.started.slice(0, 19).replace('T', ' ')) + '</td><td>' + b.duration +
      '</td><td>' + b.ran + ' ran, ' + b.cached + ' cached</td><td>' + esc(b.dockerfile) + '</td><td><code>' + esc(b.digest.slice(0, 19)) + '</code></td></tr>').join('');
    document.getElementById('hit-ratio').textContent = Math.round(s.cache.ratio * 100) + '%';
  } catch {}
  setTimeout(refresh, 1000);
}
setTimeout(refresh, 1000);
</script>`,
    logout,
  );
}

export function buildPage(r: HistoryRecord, tenant: string, svg: string, logout = false): string {
  const steps = r.vertices
    .map((v, i) => `<tr class="${v.state}"><td>#${i + 1}</td><td>${escapeXml(v.name)}</td><td>${v.state}</td><td>${durationText(v.end - v.start)}</td><td>${escapeXml(v.reason ?? v.error ?? '')}</td></tr>`)
    .join('\n');
  return page(
    `build ${r.id}`,
    `<p>tenant ${escapeXml(tenant)} · ${escapeXml(r.dockerfile.name)} · ${escapeXml(r.platforms.join(', '))} · <span class="status ${r.status}" id="status">${r.status}</span>
${r.error ? `<span class="error">${escapeXml(r.error)}</span>` : ''}</p>
<h3>Timeline</h3><div id="timeline">${svg}</div>
<h3>Steps</h3><table><thead><tr><th></th><th>step</th><th>state</th><th>duration</th><th>why it ran / error</th></tr></thead><tbody>${steps}</tbody></table>
<h3>Logs</h3><pre id="logs"></pre>
<script>
const logs = document.getElementById('logs');
const es = new EventSource('/api/builds/${r.id}/events');
es.onmessage = (m) => {
  const ev = JSON.parse(m.data);
  if (ev.type === 'vertex.log') logs.textContent += ev.data;
  else if (ev.type === 'vertex.started') logs.textContent += '#' + ev.name + '\\n';
  logs.scrollTop = logs.scrollHeight;
};
es.addEventListener('done', (m) => {
  es.close();
  const st = JSON.parse(m.data).status;
  const el = document.getElementById('status');
  if (el.textContent !== st) location.reload();
  logs.dataset.done = 'true';
});
</script>`,
    logout,
  );
}
