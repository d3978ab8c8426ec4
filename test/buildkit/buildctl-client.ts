// A small buildctl of kiln's own for tests (buildctl is not packaged here): a gRPC client of BuildKit's
// Control service that solves (a frontend or a raw LLB definition), follows Status, and opens the
// client's Session, on which it serves what buildctl serves: file sync of `--local NAME=DIR` dirs
// (fsutil's DiffCopy, the sending side) and FileSend for outputs that come back (a file: raw chunks; a
// dir: fsutil's receiving side). On the session the client is the HTTP/2 server: Node's http2 server
// takes the session stream as its connection.
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, symlinkSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { buildkitServices, codec } from '../../src/buildkit/proto.js';
import { PACKET, packetCodec, type Stat } from '../../src/buildkit/fsutil-packets.js';
import { goModeOf, kindOf, unixPerm } from '../../src/buildkit/file-mode.js';
import { IgnoreMatcher } from '../../base/patterns/dockerignore.js';

const FILESYNC = '/moby.filesync.v1.FileSync/DiffCopy';
const FILESEND = '/moby.filesync.v1.FileSend/DiffCopy';
const GET_SECRET = '/moby.buildkit.secrets.v1.Secrets/GetSecret';

export interface Output {
  type: string;
  attrs?: Record<string, string>;
  /** Where a file output (oci, docker, tar) or a dir output (local) lands on the client. */
  dest?: string;
}

export interface VertexSeen {
  digest: string;
  name: string;
  cached: boolean;
  completed: boolean;
  error: string;
}

export interface SolveOutcome {
  response: Record<string, string>;
  vertices: Map<string, VertexSeen>;
  logs: string;
  /** File content bytes the session served to the builder. */
  servedBytes: number;
}

export interface SolveArgs {
  frontend?: string;
  frontendAttrs?: Record<string, string>;
  /** Raw LLB: the marshalled ops (the last one the terminal op) and per-op metadata. */
  definition?: { def: Buffer[]; metadata?: Record<string, unknown> };
  locals?: Record<string, string>;
  /** --secret id=ID: what the session serves for each id. */
  secrets?: Record<string, string>;
  outputs?: Output[];
  timeoutMs?: number;
}

/** A gRPC framed message (flag, length, payload) reader over an HTTP/2 stream. */
class Frames {
  private buf = Buffer.alloc(0);
  private queue: Buffer[] = [];
  private waiters: ((b: Buffer | undefined) => void)[] = [];
  private ended = false;

  constructor(stream: http2.ServerHttp2Stream) {
    stream.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 5) {
        const n = this.buf.readUInt32BE(1);
        if (this.buf.length < 5 + n) break;
        this.push(Buffer.from(this.buf.subarray(5, 5 + n)));
        this.buf = this.buf.subarray(5 + n);
      }
    });
    const end = () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  private push(b: Buffer) {
    const w = this.waiters.shift();
    if (w) w(b);
    else this.queue.push(b);
  }

  next(): Promise<Buffer | undefined> {
    const b = this.queue.shift();
    if (b || this.ended) return Promise.resolve(b);
    return new Promise((r) => this.waiters.push(r));
  }
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

function headerList(headers: http2.IncomingHttpHeaders, key: string): string[] {
  const raw = headers[key];
  if (raw === undefined) return [];
  const list = (Array.isArray(raw) ? raw : raw.split(', ')).filter(Boolean);
  return headers[`${key}-encoded`] ? list.map((v) => decodeURIComponent(v)) : list;
}

/** Go's filepath.Walk order (names sorted bytewise, parents first), filtered as buildctl's fsutil filters. */
function walk(root: string, include: string[], exclude: string[]): { rel: string; full: string }[] {
  const ex = new IgnoreMatcher(exclude);
  const out: { rel: string; full: string }[] = [];
  const included = (rel: string, isDir: boolean) =>
    include.length === 0 || include.some((p) => rel === p || rel.startsWith(`${p}/`) || (isDir && p.startsWith(`${rel}/`)));
  const visit = (rel: string) => {
    const names = readdirSync(rel ? join(root, rel) : root).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const p = rel ? `${rel}/${name}` : name;
      const full = join(root, p);
      const dir = lstatSync(full).isDirectory();
      if (ex.matches(p) && !(dir && ex.mayIncludeBelow(p))) continue;
      if (!included(p, dir)) continue;
      out.push({ rel: p, full });
      if (dir) visit(p);
    }
  };
  visit('');
  return out;
}

export class BuildctlClient {
  private readonly control: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  constructor(addr: string) {
    const { Control } = buildkitServices();
    this.control = new Control(addr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 }) as never;
  }

  close(): void {
    this.control.close();
  }

  /** Opens a session serving the locals and the outputs; returns its id and a closer. */
  private openSession(locals: Record<string, string>, outputs: Output[], served: { bytes: number }, secrets: Record<string, string>) {
    const id = randomBytes(12).toString('hex');
    const md = new grpc.Metadata();
    md.set('x-docker-expose-session-uuid', id);
    md.set('x-docker-expose-session-name', 'kiln-test-buildctl');
    md.set('x-docker-expose-session-sharedkey', 'kiln-test-buildctl-key');
    for (const m of [FILESYNC, FILESEND, GET_SECRET]) md.add('x-docker-expose-session-grpc-method', m);
    const call = (this.control.Session as (md: grpc.Metadata) => grpc.ClientDuplexStream<{ data: Buffer }, { data: Buffer }>)(md);
    const bytes = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (call.write({ data: chunk })) cb();
        else call.once('drain', () => cb());
      },
      final(cb) {
        call.end();
        cb();
      },
    });
    call.on('data', (m: { data: Buffer }) => bytes.push(m.data));
    call.on('end', () => bytes.push(null));
    call.on('error', () => bytes.destroy());
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      void this.serve(stream, headers, locals, outputs, served, secrets).catch((err: Error) => {
        if (!stream.closed) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '2', 'grpc-message': encodeURIComponent(err.message) }, { endStream: true });
        }
      });
    });
    server.on('sessionError', () => {});
    server.emit('connection', bytes);
    return {
      id,
      close: () => {
        call.end();
        call.cancel();
        server.close();
      },
    };
  }

  private async serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, locals: Record<string, string>, outputs: Output[], served: { bytes: number }, secrets: Record<string, string>): Promise<void> {
    const path = headers[':path'];
    const frames = new Frames(stream);
    if (path === GET_SECRET) {
      const req = codec<{ ID: string }>('moby.buildkit.secrets.v1.GetSecretRequest').decode((await frames.next()) ?? Buffer.alloc(0));
      const value = secrets[req.ID];
      if (value === undefined) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': `secret ${req.ID} not found` }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame(codec<{ data: Buffer }>('moby.buildkit.secrets.v1.GetSecretResponse').encode({ data: Buffer.from(value) })));
      return;
    }
    const send = (payload: Buffer) => stream.write(frame(payload));
    const ok = () => {
      if (stream.closed) return;
      stream.end();
    };
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    const packets = packetCodec();
    if (path === FILESYNC) {
      const name = String(headers['dir-name'] ?? '');
      const dir = locals[name];
      if (!dir) throw new Error(`no local dir ${name}`);
      const entries = walk(dir, headerList(headers, 'include-patterns'), headerList(headers, 'exclude-patterns'));
      for (const e of entries) {
        const st = lstatSync(e.full, { bigint: true });
        const mode = goModeOf(Number(st.mode));
        const kind = kindOf(mode);
        const stat: Stat = { path: e.rel, mode, uid: 0, gid: 0, size: kind === 'file' ? Number(st.size) : 0, modTime: Number(st.mtimeNs), linkname: kind === 'symlink' ? readlinkSync(e.full) : '' };
        send(packets.encode({ type: PACKET.STAT, stat }));
      }
      send(packets.encode({ type: PACKET.STAT }));
      const buf = Buffer.alloc(32 * 1024);
      for (;;) {
        const raw = await frames.next();
        if (!raw) break;
        const p = packets.decode(raw);
        if (p.type === PACKET.FIN) {
          send(packets.encode({ type: PACKET.FIN }));
          break;
        }
        if (p.type !== PACKET.REQ) continue;
        const e = entries[p.ID ?? -1];
        if (!e) throw new Error(`request for unknown file ${p.ID}`);
        const fd = openSync(e.full, 'r');
        try {
          for (;;) {
            const n = readSync(fd, buf, 0, buf.length, null);
            if (n === 0) break;
            served.bytes += n;
            send(packets.encode({ type: PACKET.DATA, ID: p.ID, data: Buffer.from(buf.subarray(0, n)) }));
          }
        } finally {
          closeSync(fd);
        }
        send(packets.encode({ type: PACKET.DATA, ID: p.ID }));
      }
      ok();
      return;
    }
    if (path === FILESEND) {
      const out = outputs[Number(headers['buildkit-attachable-exporter-id'] ?? 0)];
      if (!out?.dest) throw new Error('no output target for this exporter');
      if (out.type !== 'local') {
        const bytesMsg = codec<{ data: Buffer }>('moby.filesync.v1.BytesMessage');
        const fd = openSync(out.dest, 'w');
        try {
          for (;;) {
            const raw = await frames.next();
            if (!raw) break;
            writeSync(fd, bytesMsg.decode(raw).data);
          }
        } finally {
          closeSync(fd);
        }
        ok();
        return;
      }
      // A dir: stats, then the contents of every file, then fin both ways.
      mkdirSync(out.dest, { recursive: true });
      const stats: Stat[] = [];
      for (;;) {
        const raw = await frames.next();
        if (!raw) throw new Error('output stream ended during the walk');
        const p = packets.decode(raw);
        if (!p.stat?.path) break;
        stats.push(p.stat);
      }
      const fds = new Map<number, number>();
      stats.forEach((s, i) => {
        if (s.path.split('/').includes('..')) throw new Error(`bad output path ${s.path}`);
        const full = join(out.dest!, s.path);
        const kind = kindOf(s.mode);
        if (kind === 'dir') mkdirSync(full, { recursive: true });
        else if (kind === 'symlink') symlinkSync(s.linkname, full);
        else if (kind === 'file') {
          writeFileSync(full, '');
          chmodSync(full, unixPerm(s.mode));
          fds.set(i, openSync(full, 'w'));
        }
      });
      for (const i of fds.keys()) send(packets.encode({ type: PACKET.REQ, ID: i }));
      while (fds.size) {
        const raw = await frames.next();
        if (!raw) throw new Error('output stream ended during the files');
        const p = packets.decode(raw);
        if (p.type !== PACKET.DATA) continue;
        const fd = fds.get(p.ID ?? -1);
        if (fd === undefined) continue;
        if (p.data?.length) writeSync(fd, p.data);
        else {
          closeSync(fd);
          fds.delete(p.ID!);
        }
      }
      send(packets.encode({ type: PACKET.FIN }));
      for (;;) {
        const raw = await frames.next();
        if (!raw || packets.decode(raw).type === PACKET.FIN) break;
      }
      ok();
      return;
    }
    throw new Error(`unknown session method ${path}`);
  }

  /** One build: Solve + Status (+ Session when there are locals or outputs to bring back). */
  async solve(args: SolveArgs): Promise<SolveOutcome> {
    const ref = randomBytes(12).toString('hex');
    const served = { bytes: 0 };
    const outputs = args.outputs ?? [];
    const session = this.openSession(args.locals ?? {}, outputs, served, args.secrets ?? {});
    const vertices = new Map<string, VertexSeen>();
    let logs = '';
    const status = (this.control.Status as (req: unknown) => grpc.ClientReadableStream<{ vertexes: { digest: string; name: string; cached: boolean; completed: unknown; error: string }[]; logs: { msg: Buffer }[] }>)({ Ref: ref });
    const statusDone = new Promise<void>((resolve) => {
      status.on('data', (s) => {
        for (const v of s.vertexes) vertices.set(v.digest, { digest: v.digest, name: v.name, cached: v.cached, completed: !!v.completed, error: v.error });
        for (const l of s.logs) logs += Buffer.from(l.msg).toString();
      });
      status.on('end', () => resolve());
      status.on('error', () => resolve());
    });
    try {
      const response = await new Promise<Record<string, string>>((resolve, reject) => {
        (this.control.Solve as (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { ExporterResponse: Record<string, string> }) => void) => void)(
          {
            Ref: ref,
            Definition: args.definition ?? null,
            Session: session.id,
            Frontend: args.frontend ?? '',
            FrontendAttrs: args.frontendAttrs ?? {},
            Exporters: outputs.map((o) => ({ Type: o.type, Attrs: o.attrs ?? {} })),
          },
          new grpc.Metadata(),
          { deadline: Date.now() + (args.timeoutMs ?? 300_000) },
          (err, res) => (err ? reject(err) : resolve(res.ExporterResponse)),
        );
      });
      await Promise.race([statusDone, new Promise((r) => setTimeout(r, 5000))]);
      return { response, vertices, logs, servedBytes: served.bytes };
    } finally {
      status.cancel();
      session.close();
    }
  }
}
