// Connecting to a builder node: its address (unix:///path or tcp://host:port), TLS material (CA, client
// certificate) and bearer token; errors from the server become one clear line for the user.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { builderService, AUTH_HEADER } from '../protocol/builder.js';
import { UserError } from '../../base/errors.js';
import { parseAddr } from './address.js';
export { parseAddr, isLoopback } from './address.js';

import type { NodeConfig } from './address.js';
export type { NodeConfig };

function readOption(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export interface Connection {
  node: NodeConfig;
  client: grpc.Client & Record<string, any>;
  metadata(): grpc.Metadata;
  close(): void;
}

export function connect(node: NodeConfig): Connection {
  const ep = parseAddr(node.addr);
  let creds = grpc.credentials.createInsecure();
  const options: grpc.ChannelOptions = { 'grpc.max_receive_message_length': 8 * 1024 * 1024 };
  if (node.tls) {
    const ca = node.tls.ca ? readOption(node.tls.ca, 'TLS CA') : null;
    const key = node.tls.cert && node.tls.key ? readOption(node.tls.key, 'TLS key') : null;
    const cert = node.tls.cert && node.tls.key ? readOption(node.tls.cert, 'TLS certificate') : null;
    creds = grpc.credentials.createSsl(ca, key, cert);
    // Node warns when TLS is used with an IP address as server name (the certificate's IP SAN is checked all the same).
    if (/^[0-9.]+$|:/.test(ep.host ?? '')) process.noDeprecation = true;
    if (node.tls.serverName) options['grpc.ssl_target_name_override'] = node.tls.serverName;
  }
  const token = node.tokenFile ? readOption(node.tokenFile, 'token file').toString('utf8').trim() : undefined;
  const Ctor = builderService();
  const client = new Ctor(ep.target, creds, options) as grpc.Client & Record<string, any>;
  return {
    node,
    client,
    metadata() {
      const md = new grpc.Metadata();
      if (token) md.set(AUTH_HEADER, `Bearer ${token}`);
      return md;
    },
    close: () => client.close(),
  };
}

export class BuilderError extends UserError {}

/** A gRPC failure as the one line a user should see. */
export function describeError(node: NodeConfig, err: unknown): Error {
  const e = err as grpc.ServiceError;
  if (typeof e?.code !== 'number') return err as Error;
  const where = `builder ${node.name} (${node.addr})`;
  switch (e.code) {
    case grpc.status.UNAUTHENTICATED:
      return new BuilderError(`${where} ${e.details.startsWith('refused') ? e.details : `refused the request: ${e.details}`}`);
    case grpc.status.UNAVAILABLE: {
      const detail = e.details
        .replace(/^No connection established\. Last error: /, '')
        .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)\.?\s*Resolution note:[\s\S]*$/, '')
        .replace(/\s+/g, ' ')
        .trim();
      if (/alert certificate required/.test(detail)) return new BuilderError(`${where} refused the connection: it requires a client certificate (kiln builder create --tls-cert/--tls-key)`);
      if (/alert (unknown ca|bad certificate|certificate unknown|decrypt error|access denied)/.test(detail)) return new BuilderError(`${where} refused the client certificate: not signed by a CA it trusts`);
      // With TLS 1.3 a server that rejects the client certificate may just reset the connection.
      if (node.tls?.cert && /ECONNRESET|socket hang up/.test(detail)) return new BuilderError(`${where} refused the client certificate: not signed by a CA it trusts`);
      if (/self[- ]signed|unable to (get local issuer|verify)|certificate verify failed|UNABLE_TO_VERIFY|DEPTH_ZERO|ERR_TLS_CERT_ALTNAME/i.test(detail)) return new BuilderError(`cannot trust ${where}: its certificate is not signed by the CA given (kiln builder create --tls-ca) or does not name this address`);
      if (/wrong version number|packet length too long|ERR_SSL/.test(detail)) return new BuilderError(`cannot talk to ${where}: TLS on one side only (check --tls-* of kiln serve and kiln builder create)`);
      return new BuilderError(`cannot reach ${where}: ${detail}`);
    }
    case grpc.status.CANCELLED:
      return new BuilderError(e.details && e.details !== 'Cancelled on client' ? e.details : 'build canceled');
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.NOT_FOUND:
    case grpc.status.FAILED_PRECONDITION:
      return new BuilderError(e.details);
    default:
      return new BuilderError(`${where}: ${e.details}`);
  }
}

/**
 * describeError, plus for a TLS node that could not be reached: one TLS handshake of our own to say why
 * (gRPC reports a rejected client certificate as a reset, a refused connection, or an alert, by timing).
 */
export async function explainError(node: NodeConfig, err: unknown): Promise<Error> {
  const e = err as grpc.ServiceError;
  if (e?.code !== grpc.status.UNAVAILABLE || !node.tls) return describeError(node, err);
  const ep = parseAddr(node.addr);
  const port = Number(ep.target.slice(ep.target.lastIndexOf(':') + 1));
  const where = `builder ${node.name} (${node.addr})`;
  const tls = await import('node:tls');
  const reason = await new Promise<string>((resolve) => {
    const sock = tls.connect({
      host: ep.host,
      port,
      ca: node.tls!.ca ? readFileSync(node.tls!.ca) : undefined,
      cert: node.tls!.cert ? readFileSync(node.tls!.cert) : undefined,
      key: node.tls!.key ? readFileSync(node.tls!.key) : undefined,
      servername: node.tls!.serverName ?? (/^[0-9.]+$|:/.test(ep.host ?? '') ? undefined : ep.host),
      ALPNProtocols: ['h2'],
    });
    const done = (r: string) => {
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done('ok'), 2000);
    // After the handshake, a server that rejects our certificate closes or alerts on the first read.
    sock.on('secureConnect', () => sock.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')));
    sock.on('data', () => {
      clearTimeout(timer);
      done('ok');
    });
    sock.on('error', (x: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done(`${x.code ?? ''} ${x.message}`);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      done('closed');
    });
  });
  if (/ECONNREFUSED/.test(reason)) return new BuilderError(`cannot reach ${where}: connection refused (is kiln serve running?)`);
  if (/certificate required/.test(reason) || (!node.tls.cert && /closed|ECONNRESET/.test(reason))) return new BuilderError(`${where} refused the connection: it requires a client certificate (kiln builder create --tls-cert/--tls-key)`);
  if (/unknown ca|bad certificate|certificate unknown|decrypt error|access denied/.test(reason) || (node.tls.cert && /closed|ECONNRESET/.test(reason))) return new BuilderError(`${where} refused the client certificate: not signed by a CA it trusts`);
  if (/self[- ]signed|UNABLE_TO_VERIFY|unable to (get local issuer|verify)|DEPTH_ZERO|ERR_TLS_CERT_ALTNAME|SELF_SIGNED/i.test(reason)) return new BuilderError(`cannot trust ${where}: its certificate is not signed by the CA given (kiln builder create --tls-ca) or does not name this address`);
  if (/wrong version number|packet length too long|ERR_SSL/.test(reason)) return new BuilderError(`cannot talk to ${where}: TLS on one side only (check --tls-* of kiln serve and kiln builder create)`);
  return describeError(node, err);
}

/** Calls a unary method with the node's credentials. */
export function unary<Res>(conn: Connection, method: string, req: object, timeoutMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    conn.client[method](req, conn.metadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: Res) =>
      err ? explainError(conn.node, err).then(reject, reject) : resolve(res),
    );
  });
}
