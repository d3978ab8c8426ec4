// Registry failures a user can cause or fix (bad name, missing tag, credentials, unreachable host), each
// a one-line message naming the image or registry.
import { UserError } from '../../errors.js';

export class RegistryError extends UserError {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The repository, tag, manifest or blob does not exist (404, MANIFEST_UNKNOWN, NAME_UNKNOWN, BLOB_UNKNOWN). */
export class NotFoundError extends RegistryError {}
/** 401 after trying the credentials we have (or having none). */
export class UnauthorizedError extends RegistryError {}
/** 403: authenticated but not allowed. */
export class DeniedError extends RegistryError {}
/** Connection-level failure: refused, DNS, TLS, reset after all retries. */
export class UnreachableError extends RegistryError {}

/** The first error of a distribution-spec error body, `{"errors":[{"code":…,"message":…}]}`. */
export function parseErrorBody(text: string): { code?: string; message?: string } {
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }> };
    const e = doc.errors?.[0];
    if (!e) return {};
    return {
      code: typeof e.code === 'string' ? e.code : undefined,
      message: typeof e.message === 'string' ? e.message : undefined,
    };
  } catch {
    return {};
  }
}

/** The message of a network error; undici wraps dual-stack connect failures in an AggregateError. */
export function networkErrorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return networkErrorMessage(err.errors[0]);
  if (err instanceof Error) {
    if (err.message) return err.message;
    const code = (err as { code?: string }).code;
    if (code) return code;
  }
  return String(err);
}

/** The errno-style code of a network error (ECONNRESET, UND_ERR_SOCKET…), looking through wrappers. */
export function networkErrorCode(err: unknown): string | undefined {
  if (err instanceof AggregateError && err.errors.length > 0) return networkErrorCode(err.errors[0]);
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const cause = (err as { cause?: unknown }).cause;
    if (cause) return networkErrorCode(cause);
  }
  return undefined;
}
