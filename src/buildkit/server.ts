// The BuildKit API endpoint of `kiln serve --buildkit-addr`: Control and the frontend gateway on one
// gRPC server, on the same engine, tenants and state as kiln's own protocol, so `docker buildx create
// --driver remote` and buildctl use kiln as their builder.
import * as grpc from '@grpc/grpc-js';
import { ControlService } from './control.js';
import { GatewayService } from './gateway.js';
import type { BuildkitHost } from './host.js';
import { buildkitServices } from './proto.js';

/** A request bigger than this (a huge LLB definition) is refused before it is read. */
const MAX_MESSAGE = 64 * 1024 * 1024;

export class BuildkitServer {
  readonly server: grpc.Server;
  readonly control: ControlService;

  constructor(host: BuildkitHost) {
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE, 'grpc.max_send_message_length': MAX_MESSAGE });
    const { Control, LLBBridge } = buildkitServices();
    this.control = new ControlService(host);
    const gateway = new GatewayService(host, this.control);
    this.server.addService(Control.service, this.control.handlers());
    this.server.addService(LLBBridge.service, gateway.handlers());
  }

  /** Binds and starts; returns the bound port (tcp with port 0 gets its real port). */
  listen(addr: string, creds: grpc.ServerCredentials): Promise<number> {
    return new Promise((resolve, reject) => this.server.bindAsync(addr, creds, (err, port) => (err ? reject(err) : resolve(port))));
  }

  /** Cancels running builds and closes the listener. */
  async shutdown(): Promise<void> {
    for (const b of this.control.builds.running()) b.solve?.abort.abort(new Error('the builder is shutting down'));
    await new Promise<void>((r) => this.server.tryShutdown(() => r()));
  }
}
