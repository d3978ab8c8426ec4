// `kiln history`: the builds this state dir has run (locally or for a kiln serve tenant), without
// taking the state's lock: ls, inspect, logs, trace (SVG or HTML timeline), prune.
import { writeFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { flagString, FlagError } from '../flags.js';
import { defaultStateRoot } from '../../../cache/state.js';
import { HistoryStore, retentionFromEnv, type HistoryRecord } from '../../engine/history/store.js';
import { parseDuration } from '../../../base/units.js';
import { durationText, traceHtml, traceSvg } from '../../engine/history/trace.js';
import { resolveBuilder } from '../../client/builders.js';
import { UserError } from '../../../base/errors.js';
import { printTable } from '../table.js';

const USAGE = `kiln history ls [--builder NAME|ADDR]
kiln history inspect ID|latest [--builder NAME|ADDR]
kiln history logs ID|latest [--vertex N]
kiln history trace ID|latest -o FILE.svg|FILE.html
kiln history prune [--keep N] [--max-age 24h]`;

function elapsed(r: HistoryRecord): string {
  return r.ended ? durationText(Date.parse(r.ended) - Date.parse(r.started)) : 'running';
}

function counts(r: HistoryRecord): string {
  const ran = r.vertices.filter((v) => v.state === 'ran').length;
  const cached = r.vertices.filter((v) => v.state === 'cached').length;
  return `${ran} ran, ${cached} cached`;
}

export const historyCommand: Command = {
  name: 'history',
  summary: 'Past builds: list, inspect, logs, timeline pictures',
  usage: USAGE,
  flags: [
    { name: 'vertex', type: 'string', valueName: 'N', description: 'logs: only step N (as numbered by inspect)' },
    { name: 'output', short: 'o', type: 'string', valueName: 'FILE', description: 'trace: write the timeline to FILE (.svg or .html)' },
    { name: 'keep', type: 'string', valueName: 'N', description: 'prune: keep the newest N builds' },
    { name: 'max-age', type: 'string', valueName: 'DURATION', description: 'prune: remove builds older than this (e.g. 24h, 7d)' },
    { name: 'builder', type: 'string', valueName: 'NAME|tcp://…|unix://…', description: 'ls, inspect: your builds on a remote builder (kiln serve) instead of this machine\'s' },
  ],
  async run(args) {
    const [sub, id, ...rest] = args.positionals;
    const store = new HistoryStore(process.env.KILN_ROOT || defaultStateRoot());
    if (rest.length) throw new FlagError(`kiln history: unexpected argument "${rest[0]}"\nusage:\n${USAGE}`);
    // With --builder: the same records, kept by the builder in your tenant's history.
    const builderName = flagString(args, 'builder');
    let remote: HistoryRecord[] | undefined;
    if (builderName !== undefined) {
      if (sub !== 'ls' && sub !== 'inspect') throw new FlagError(`kiln history ${sub ?? ''}: --builder works with ls and inspect`);
      const builder = resolveBuilder(builderName);
      if (!builder) throw new FlagError('the default builder is the embedded engine: its history is this machine\'s (drop --builder)');
      remote = await (await import('../../client/remote-history.js')).remoteHistory(builder);
    }
    const list = () => remote ?? store.list();
    const get = (idOrPrefix: string) => (remote ? pick(remote, idOrPrefix) : store.get(idOrPrefix));
    switch (sub) {
      case 'ls': {
        const rows = list().reverse();
        const table = [['ID', 'STATUS', 'STARTED', 'DURATION', 'STEPS', 'DOCKERFILE']];
        for (const r of rows) {
          table.push([r.id, r.status, r.started.slice(0, 19).replace('T', ' '), elapsed(r), counts(r), `${r.dockerfile.path ?? r.dockerfile.name}${r.target ? ` (${r.target})` : ''}`]);
        }
        printTable(table, { gap: 1, minWidths: [17, 10, 20, 10, 20] });
        return 0;
      }
      case 'inspect': {
        const r = get(need(id, 'inspect'));
        const lines = [
          `ID:         ${r.id}`,
          `Status:     ${r.status}${r.error ? ` (${r.error})` : ''}`,
          `Origin:     ${r.origin}`,
          `Started:    ${r.started}`,
          `Duration:   ${elapsed(r)}`,
          `Dockerfile: ${r.dockerfile.path ?? r.dockerfile.name} ${r.dockerfile.digest}`,
          ...(r.context ? [`Context:    ${r.context}`] : []),
          ...(r.target ? [`Target:     ${r.target}`] : []),
          `Platforms:  ${r.platforms.join(', ')}`,
          ...Object.entries(r.buildArgs).map(([k, v]) => `Build arg:  ${k}=${v}`),
          ...r.results.filter((x) => x.digest).map((x) => `Result:     ${x.type} ${x.digest}${x.names?.length ? ` (${x.names.join(', ')})` : ''}`),
          ...r.cacheImports.map((c) => `Cache from: ${c}`),
          ...r.cacheExports.map((c) => `Cache to:   ${c}`),
          '',
          'Steps:',
          ...r.vertices.map((v, i) => `  #${i + 1} ${v.state.toUpperCase().padEnd(8)} ${durationText(v.end - v.start).padStart(9)}  ${v.name}${v.reason ? `\n${' '.repeat(23)}why: ${v.reason}` : ''}${v.error ? `\n${' '.repeat(23)}error: ${v.error}` : ''}`),
        ];
        console.log(lines.join('\n'));
        return 0;
      }
      case 'logs': {
        const r = store.get(need(id, 'logs'));
        const n = flagString(args, 'vertex');
        let only: string | undefined;
        if (n !== undefined) {
          const v = r.vertices[Number(n) - 1];
          if (!/^[0-9]+$/.test(n) || !v) throw new FlagError(`invalid value "${n}" for flag --vertex: build ${r.id} has steps 1 to ${r.vertices.length}`);
          only = v.digest;
        }
        const names = new Map(r.vertices.map((v) => [v.digest, v.name]));
        let last: string | undefined;
        for (const ev of store.events(r.id).events) {
          if (ev.type !== 'vertex.log' || (only && ev.digest !== only)) continue;
          if (!only && ev.digest !== last) process.stdout.write(`#${names.get(ev.digest) ?? ev.digest}\n`);
          last = ev.digest;
          process.stdout.write(ev.data);
        }
        if (r.logsTruncated) process.stderr.write('kiln: the log of this build reached its size cap; later output was not kept\n');
        return 0;
      }
      case 'trace': {
        const r = store.get(need(id, 'trace'));
        const out = flagString(args, 'output');
        if (!out) throw new FlagError('kiln history trace: -o FILE.svg or -o FILE.html is required');
        if (out.endsWith('.svg')) writeFileSync(out, traceSvg(r));
        else if (out.endsWith('.html') || out.endsWith('.htm')) writeFileSync(out, traceHtml(r));
        else throw new FlagError(`invalid value "${out}" for flag -o: the file name must end in .svg or .html`);
        return 0;
      }
      case 'prune': {
        const policy = retentionFromEnv();
        const keep = flagString(args, 'keep');
        const age = flagString(args, 'max-age');
        if (keep !== undefined && !/^[0-9]+$/.test(keep)) throw new FlagError(`invalid value "${keep}" for flag --keep: expected a number`);
        const removed = store.prune({ keep: keep === undefined ? policy.keep : Number(keep), maxAgeMs: age === undefined ? policy.maxAgeMs : parseDuration('--max-age', age) });
        console.log(`removed ${removed.length} build record${removed.length === 1 ? '' : 's'}`);
        return 0;
      }
      default:
        throw new FlagError(`kiln history: expected ls, inspect, logs, trace or prune\nusage:\n${USAGE}`);
    }
  },
};

/** A record by id, unique id prefix or `latest` (as HistoryStore.get, over a list). */
function pick(records: HistoryRecord[], idOrPrefix: string): HistoryRecord {
  const matches = idOrPrefix === 'latest' ? records.slice(-1) : records.filter((r) => r.id.startsWith(idOrPrefix));
  if (matches.length === 0) throw new UserError(`no build ${idOrPrefix} in the history (kiln history ls lists them)`);
  if (matches.length > 1) throw new UserError(`build id ${idOrPrefix} is ambiguous: ${matches.slice(0, 5).map((r) => r.id).join(', ')}${matches.length > 5 ? ', …' : ''}`);
  return matches[0]!;
}

function need(id: string | undefined, sub: string): string {
  if (!id) throw new FlagError(`kiln history ${sub}: a build ID (or "latest") is required`);
  return id;
}
