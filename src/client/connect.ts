// Connecting to a builder node: its address (unix:///path or tcp://host:port), TLS material (CA, client
// certificate) and bearer token; errors from the server become one clear line for the user.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { builderService, AUTH_HEADER } from '../daemon/protocol.js';
import { UserError } from '../util/errors.js';
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
    case grpc.status.UNAVAILABLE:
      return new BuilderError(`cannot reach ${where}: ${e.details}`);
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

/** Calls a unary method with the node's credentials. */
export function unary<Res>(conn: Connection, method: string, req: object, timeoutMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    conn.client[method](req, conn.metadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: Res) =>
      err ? reject(describeError(conn.node, err)) : resolve(res),
    );
  });
}
