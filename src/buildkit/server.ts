// The BuildKit API endpoint of `kiln serve --buildkit-addr`: Control and the frontend gateway on one
// gRPC server, on the same engine, tenants and state as kiln's own protocol, so `docker buildx create
// --driver remote` and buildctl use kiln as their builder.
import * as grpc from '@grpc/grpc-js';
import * as tls from 'node:tls';
import { ContentService, contentServiceDef } from './content-service.js';
import { ControlService } from './control.js';
import { GatewayService } from './gateway.js';
import type { BuildkitHost } from './host.js';
import { buildkitServices } from './proto.js';

/** A request bigger than this (a huge LLB definition) is refused before it is read. */
const MAX_MESSAGE = 64 * 1024 * 1024;

export class BuildkitServer {
  readonly server: grpc.Server;
  readonly control: ControlService;
  private readonly tlsServers: tls.Server[] = [];

  constructor(host: BuildkitHost) {
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE, 'grpc.max_send_message_length': MAX_MESSAGE });
    const { Control, LLBBridge } = buildkitServices();
    this.control = new ControlService(host);
    const gateway = new GatewayService(host, this.control);
    this.server.addService(Control.service, this.control.handlers());
    this.server.addService(LLBBridge.service, gateway.handlers());
    this.server.addService(contentServiceDef().service, new ContentService(host).handlers());
  }

  /** Binds and starts; returns the bound port (tcp with port 0 gets its real port). */
  listen(addr: string, creds: grpc.ServerCredentials): Promise<number> {
    return new Promise((resolve, reject) => this.server.bindAsync(addr, creds, (err, port) => (err ? reject(err) : resolve(port))));
  }

  /**
   * TLS on tcp, terminated here rather than by gRPC: buildx's remote driver dials TLS without ALPN, which
   * Node's HTTP/2 server refuses. The decrypted connections go to the gRPC server as they are, so the
   * client certificate (mTLS: the tenant) is still what the calls see.
   */
  async listenTls(host: string, port: number, creds: { cert: Buffer; key: Buffer; ca?: Buffer }): Promise<number> {
    const injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const srv = tls.createServer({ cert: creds.cert, key: creds.key, ca: creds.ca, requestCert: !!creds.ca, rejectUnauthorized: !!creds.ca, ALPNProtocols: ['h2'] }, (socket) => {
      // Node's HTTP/2 server reads a TLS socket without ALPN as HTTP/1: this one speaks h2 (prior knowledge).
      if (!socket.alpnProtocol) (socket as { alpnProtocol: string | false | null }).alpnProtocol = 'h2';
      injector.injectConnection(socket);
    });
    srv.on('tlsClientError', () => {});
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => resolve());
    });
    this.tlsServers.push(srv);
    const addr = srv.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  /** Cancels running builds and closes the listener. */
  async shutdown(): Promise<void> {
    for (const srv of this.tlsServers) srv.close();
    for (const b of this.control.builds.running()) b.solve?.abort.abort(new Error('the builder is shutting down'));
    await new Promise<void>((r) => this.server.tryShutdown(() => r()));
  }
}
