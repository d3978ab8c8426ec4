// What `kiln serve` checks on every call before it reads a byte of the call's messages: that the caller is
// a tenant (token / client certificate), that the tenant is under its limit of concurrent calls, and how
// large a message of this method may be. gRPC reads a message's 5-byte header first: a message over the
// limit is refused there, before it is buffered (an unauthenticated 200 MiB message used to be buffered
// whole, then refused). The server-wide `grpc.max_receive_message_length` is the ceiling for all.
import * as grpc from '@grpc/grpc-js';
import { identify, type AuthConfig } from './auth.js';
import { errorMessage } from '../../base/errors.js';

export const MESSAGE_LIMITS = {
  /** The first message of Solve: the build request with the context manifest (~150 bytes a file). */
  solveStart: 32 * 1024 * 1024,
  /** Later Solve messages: context file chunks (64 KiB) and secrets. */
  solveStream: 1024 * 1024,
  /** Every other method's request: a build id, a few flags. */
  unary: 64 * 1024,
} as const;

export const SOLVE_PATH = '/kiln.v1.Builder/Solve';

/** Concurrent calls per tenant (Solve streams, queued builds included, and unary calls). */
export class CallCounter {
  private readonly calls = new Map<string, number>();
  constructor(readonly perTenant: number) {}

  take(tenant: string): boolean {
    const n = this.calls.get(tenant) ?? 0;
    if (n >= this.perTenant) return false;
    this.calls.set(tenant, n + 1);
    return true;
  }

  give(tenant: string): void {
    const n = (this.calls.get(tenant) ?? 1) - 1;
    if (n <= 0) this.calls.delete(tenant);
    else this.calls.set(tenant, n);
  }
}

/**
 * Sets the largest message this call will read from now on. grpc-js has one limit per server; its call
 * object keeps the limit in its message decoder, which is where it is lowered here per method.
 */
export function setMessageLimit(call: grpc.ServerInterceptingCallInterface, bytes: number): boolean {
  const base = call as unknown as { decoder?: { maxReadMessageLength?: unknown }; maxReceiveMessageSize?: unknown };
  if (!base.decoder || typeof base.decoder.maxReadMessageLength !== 'number' || typeof base.maxReceiveMessageSize !== 'number') return false;
  base.decoder.maxReadMessageLength = bytes;
  base.maxReceiveMessageSize = bytes; // also bounds a compressed message's decompressed size
  return true;
}

export function callGuard(auth: AuthConfig, counter: CallCounter): grpc.ServerInterceptor {
  return (method, call) => {
    const solve = method.path === SOLVE_PATH;
    // The first interceptor gets grpc-js's own call; a version that moves the decoder fails the tests.
    setMessageLimit(call, solve ? MESSAGE_LIMITS.solveStart : MESSAGE_LIMITS.unary);
    let tenant: string | undefined;
    const release = () => {
      if (tenant !== undefined) counter.give(tenant);
      tenant = undefined;
    };
    let first = true;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            let who: string;
            try {
              who = identify({ metadata, getAuthContext: () => call.getAuthContext() as ReturnType<NonNullable<Parameters<typeof identify>[0]['getAuthContext']>> }, auth);
            } catch (err) {
              // Refused before any message is read; what the client still sends is discarded unread.
              call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` });
              return;
            }
            if (!counter.take(who)) {
              call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: `tenant ${who} has ${counter.perTenant} calls open on this builder already (its limit); wait for one to end` });
              return;
            }
            tenant = who;
            mdNext(metadata);
          },
          onReceiveMessage: (message, msgNext) => {
            if (solve && first) setMessageLimit(call, MESSAGE_LIMITS.solveStream);
            first = false;
            msgNext(message);
          },
          onCancel: release,
        }),
      sendStatus: (status, next) => {
        release();
        next(status);
      },
    });
  };
}
