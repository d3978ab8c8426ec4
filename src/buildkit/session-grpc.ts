// A BuildKit client's session, seen from the builder. The client opens Control.Session and sends its
// bytes as BytesMessage frames; on those bytes it serves HTTP/2 gRPC (file sync, secrets, credentials,
// outputs) and the builder is the HTTP/2 client. This module turns the session call into a byte stream,
// speaks HTTP/2 over it, and frames gRPC messages (1 flag byte, 4 length bytes, payload) itself.
import { Duplex } from 'node:stream';
import * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

export class SessionCallError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One gRPC call on the session: raw message bytes both ways. */
export class SessionCall {
  private readonly queue: Buffer[] = [];
  private waiter: ((m: Buffer | undefined) => void) | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: Error | undefined;
  /** Payload bytes received (message bodies), for the sync statistics. */
  bytesIn = 0;

  constructor(private readonly stream: http2.ClientHttp2Stream) {
    stream.on('response', (headers) => this.checkStatus(headers));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('trailers', (headers) => this.checkStatus(headers));
    stream.on('end', () => this.finish());
    stream.on('close', () => this.finish());
    stream.on('error', (err) => this.finish(err));
  }

  private checkStatus(headers: http2.IncomingHttpHeaders): void {
    const status = headers['grpc-status'];
    if (status !== undefined && status !== '0') {
      const msg = decodeURIComponent(String(headers['grpc-message'] ?? ''));
      this.failure ??= new SessionCallError(Number(status), msg || `session call failed with status ${status}`);
    }
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 5) {
      const len = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + len) break;
      const msg = this.pending.subarray(5, 5 + len);
      this.pending = this.pending.subarray(5 + len);
      this.bytesIn += len;
      this.deliver(msg);
    }
  }

  private deliver(m: Buffer | undefined): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(m);
    } else if (m) this.queue.push(m);
  }

  private finish(err?: Error): void {
    if (err) this.failure ??= err;
    if (this.ended) return;
    this.ended = true;
    this.deliver(undefined);
  }

  /** The next message, or undefined at the end of the call; throws the call's error status. */
  async recv(): Promise<Buffer | undefined> {
    const m = this.queue.shift();
    if (m) return m;
    if (!this.ended) {
      const next = await new Promise<Buffer | undefined>((r) => (this.waiter = r));
      if (next) return next;
    }
    if (this.failure) throw this.failure;
    return undefined;
  }

  async send(payload: Buffer): Promise<void> {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(payload.length, 1);
    if (!this.stream.write(Buffer.concat([head, payload]))) {
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        this.stream.once('drain', () => {
          this.stream.off('error', onErr);
          resolve();
        });
        this.stream.once('error', onErr);
      });
    }
  }

  end(): void {
    if (!this.stream.closed) this.stream.end();
  }

  cancel(): void {
    if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** The session stream as a byte stream (BytesMessage.data in, BytesMessage.data out). */
function bytesOf(call: grpc.ServerDuplexStream<{ data: Buffer }, { data: Buffer }>): Duplex {
  const duplex = new Duplex({
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
  call.on('data', (m: { data: Buffer }) => duplex.push(m.data));
  call.on('end', () => duplex.push(null));
  call.on('error', (err) => duplex.destroy(err));
  call.on('cancelled', () => duplex.destroy());
  return duplex;
}

export class ClientSession {
  private readonly h2: http2.ClientHttp2Session;
  readonly closed: Promise<void>;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly sharedKey: string,
    readonly methods: Set<string>,
    call: grpc.ServerDuplexStream<{ data: Buffer }, { data: Buffer }>,
  ) {
    const bytes = bytesOf(call);
    this.h2 = http2.connect('http://localhost', { createConnection: () => bytes as unknown as import('node:net').Socket });
    this.h2.on('error', () => {});
    this.closed = new Promise((r) => {
      this.h2.once('close', r);
      call.once('cancelled', r);
      call.once('end', r);
      call.once('error', r);
    });
  }

  supports(method: string): boolean {
    return this.methods.has(method);
  }

  /** Opens a call to a service the client exposes. Header values may be lists (sent as repeated fields). */
  open(method: string, metadata: Record<string, string | string[]> = {}): SessionCall {
    const stream = this.h2.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers', ...metadata });
    return new SessionCall(stream);
  }

  /** One request, one response. */
  async unary(method: string, request: Buffer, metadata: Record<string, string | string[]> = {}): Promise<Buffer> {
    const call = this.open(method, metadata);
    await call.send(request);
    call.end();
    const res = await call.recv();
    while ((await call.recv()) !== undefined) {
      // a unary call has one response
    }
    if (!res) throw new SessionCallError(2, `${method}: no response`);
    return res;
  }

  close(): void {
    this.h2.close();
  }
}

/** Sessions by id; a solve may name a session that is still being opened. */
export class Sessions {
  private readonly open = new Map<string, ClientSession>();
  private readonly waiters = new Map<string, ((s: ClientSession) => void)[]>();

  add(s: ClientSession): void {
    this.open.set(s.id, s);
    for (const w of this.waiters.get(s.id) ?? []) w(s);
    this.waiters.delete(s.id);
    void s.closed.then(() => {
      if (this.open.get(s.id) === s) this.open.delete(s.id);
    });
  }

  async get(id: string, timeoutMs = 5000): Promise<ClientSession | undefined> {
    const s = this.open.get(id);
    if (s || !id) return s;
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      const w = (x: ClientSession) => {
        clearTimeout(timer);
        resolve(x);
      };
      const timer = setTimeout(() => {
        const l = this.waiters.get(id);
        if (l) l.splice(l.indexOf(w), 1);
        resolve(undefined);
      }, timeoutMs);
      list.push(w);
      this.waiters.set(id, list);
    });
  }
}
