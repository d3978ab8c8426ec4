// `kiln history --builder …`: the caller's builds on a remote builder, as the same HistoryRecord a local
// build has (each node keeps them in the tenant's history; ListBuilds carries each record whole).
import type { HistoryRecord } from '../engine/history/store.js';
import type { BuildRecordMsg } from '../protocol/builder.js';
import type { BuilderConfig } from './builders.js';
import { connect, unary } from './connect.js';

/** Every node's records of the caller's builds, oldest first. */
export async function remoteHistory(builder: BuilderConfig): Promise<HistoryRecord[]> {
  const out: HistoryRecord[] = [];
  for (const n of builder.nodes) {
    const conn = connect(n);
    try {
      const res = await unary<{ builds: BuildRecordMsg[] }>(conn, 'ListBuilds', {});
      for (const b of res.builds) if (b.record_json) out.push(JSON.parse(b.record_json) as HistoryRecord);
    } finally {
      conn.close();
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
