// Sends a build's outputs back to the client over its session (FileSend.DiffCopy): a file output
// (oci, docker, tar archives) as raw BytesMessage chunks, a dir output (type=local) with fsutil's sender
// protocol: a stat per entry in walk order, then the contents of the files the client asks for.
// The exporter's index in the solve request picks the client's target (buildkit-attachable-exporter-id).
import { closeSync, createReadStream, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../base/errors.js';
import { goModeOf, kindOf } from './file-mode.js';
import { PACKET, packetCodec, type Stat } from './fsutil-packets.js';
import { codec } from './proto.js';
import type { ClientSession } from './session-grpc.js';

export const FILESEND = '/moby.filesync.v1.FileSend/DiffCopy';
const CHUNK = 64 * 1024;

function target(session: ClientSession, exporterId: number, md: Record<string, string> = {}) {
  if (!session.supports(FILESEND)) throw new UserError('the client does not take outputs back (its session has no FileSend)');
  const headers: Record<string, string> = { 'buildkit-attachable-exporter-id': String(exporterId) };
  for (const [k, v] of Object.entries(md)) headers[`exporter-md-${k}`] = v;
  return session.open(FILESEND, headers);
}

/** Streams one file to the client's output writer. Returns the bytes sent. */
export async function sendFile(session: ClientSession, exporterId: number, path: string, signal?: AbortSignal): Promise<number> {
  const bytes = codec<{ data: Buffer }>('moby.filesync.v1.BytesMessage');
  const call = target(session, exporterId);
  let sent = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
      signal?.throwIfAborted();
      await call.send(bytes.encode({ data: chunk as Buffer }));
      sent += (chunk as Buffer).length;
    }
    call.end();
    while ((await call.recv()) !== undefined) {
      // the client answers nothing; wait for its status
    }
    return sent;
  } catch (err) {
    call.cancel();
    throw err;
  }
}

/** Go's filepath.Walk order: depth first, names sorted bytewise within each dir. */
function walk(root: string, rel = '', out: { rel: string; full: string }[] = []) {
  const dir = rel ? join(root, rel) : root;
  const names = readdirSync(dir).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  for (const name of names) {
    const p = rel ? `${rel}/${name}` : name;
    const full = join(root, p);
    out.push({ rel: p, full });
    if (lstatSync(full).isDirectory()) walk(root, p, out);
  }
  return out;
}

/** Sends a dir to the client's output dir (type=local). Returns the content bytes sent. */
export async function sendDir(session: ClientSession, exporterId: number, dir: string, signal?: AbortSignal): Promise<number> {
  const packets = packetCodec();
  const call = target(session, exporterId);
  const files = new Map<number, string>();
  let sent = 0;
  try {
    const entries = walk(dir);
    for (let i = 0; i < entries.length; i++) {
      const st = lstatSync(entries[i].full, { bigint: true });
      const mode = goModeOf(Number(st.mode));
      const stat: Stat = {
        path: entries[i].rel,
        mode,
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: kindOf(mode) === 'file' ? Number(st.size) : 0,
        modTime: Number(st.mtimeNs),
        linkname: kindOf(mode) === 'symlink' ? readlinkSync(entries[i].full) : '',
      };
      if (kindOf(mode) === 'file') files.set(i, entries[i].full);
      await call.send(packets.encode({ type: PACKET.STAT, stat }));
    }
    await call.send(packets.encode({ type: PACKET.STAT }));
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      signal?.throwIfAborted();
      const raw = await call.recv();
      if (!raw) break;
      const p = packets.decode(raw);
      if (p.type === PACKET.ERR) throw new UserError(`the client could not take the output: ${p.data?.toString() ?? ''}`);
      if (p.type === PACKET.FIN) {
        await call.send(packets.encode({ type: PACKET.FIN }));
        call.end();
        continue;
      }
      if (p.type !== PACKET.REQ) continue;
      const path = files.get(p.ID ?? -1);
      if (path === undefined) throw new UserError(`protocol: the client asked for output file ${p.ID}, which was not offered`);
      files.delete(p.ID!);
      const fd = openSync(path, 'r');
      try {
        for (;;) {
          const n = readSync(fd, buf, 0, CHUNK, null);
          if (n === 0) break;
          await call.send(packets.encode({ type: PACKET.DATA, ID: p.ID, data: Buffer.from(buf.subarray(0, n)) }));
          sent += n;
        }
      } finally {
        closeSync(fd);
      }
      await call.send(packets.encode({ type: PACKET.DATA, ID: p.ID }));
    }
    return sent;
  } catch (err) {
    call.cancel();
    throw err;
  }
}
