import type { SecretValue } from './secret.js';

/**
 * The error catalogue. Each code is stable (never reused for another meaning), states whether
 * a retry can help, and carries the HTTP status the API layer uses when the error reaches a caller.
 */
export const ERROR_CATALOGUE = {
  INVALID_PARAMETERS: { retryable: false, status: 400, title: 'Invalid parameters' },
  PERMISSION_DENIED: { retryable: false, status: 403, title: 'Permission denied' },
  TARGET_NOT_FOUND: { retryable: false, status: 404, title: 'Target not found' },
  KEY_QUOTA: { retryable: false, status: 409, title: 'Key quota reached' },
  STORE_CONFLICT: { retryable: false, status: 409, title: 'Secret store conflict' },
  PRECONDITION_FAILED: { retryable: false, status: 412, title: 'Preflight check failed' },
  VERIFY_FAILED: { retryable: false, status: 422, title: 'New credential failed verification' },
  MATERIAL_LOST: { retryable: false, status: 500, title: 'Staged material not found' },
  FENCE_LOST: { retryable: false, status: 409, title: 'Another worker took over the rotation' },
  NOT_READY: { retryable: true, status: 503, title: 'New credential not usable yet' },
  THROTTLED: { retryable: true, status: 503, title: 'Provider throttled the request' },
  UNAVAILABLE: { retryable: true, status: 503, title: 'Provider unavailable' },
  TIMEOUT: { retryable: true, status: 504, title: 'Provider call timed out' },
  AUDIT_UNAVAILABLE: { retryable: true, status: 503, title: 'Audit trail cannot be written' },
  INTERNAL: { retryable: false, status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The maximum length of text quoted from a third-party error. */
const MAX_QUOTED_LENGTH = 300;

/**
 * A domain error thrown by providers, stores and the engine. Its message carries ids (user
 * names, key ids, store paths), never secret values.
 */
export class RekeyError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RekeyError';
    this.code = code;
    this.retryable = options?.retryable ?? ERROR_CATALOGUE[code].retryable;
    this.status = ERROR_CATALOGUE[code].status;
  }
}

export function isRekeyError(error: unknown): error is RekeyError {
  return error instanceof RekeyError;
}

/**
 * Quotes a third-party error for a message: its name and text, truncated, with every occurrence
 * of the given secret values replaced. Database drivers can echo a statement (and so a password)
 * in their errors, so callers pass every secret the failed call could have seen.
 */
export function quoteError(error: unknown, secrets: readonly SecretValue[] = []): string {
  let text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  for (const secret of secrets) {
    const plain = secret.reveal();
    if (plain.length > 0) text = text.split(plain).join('[scrubbed]');
  }
  return text.length > MAX_QUOTED_LENGTH ? `${text.slice(0, MAX_QUOTED_LENGTH)}…` : text;
}

/** The serialisable form of an error, as stored in job state and returned by the API. */
export interface ErrorSummary {
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export function summarizeError(error: unknown, secrets: readonly SecretValue[] = []): ErrorSummary {
  if (isRekeyError(error)) {
    return { code: error.code, message: quoteError(error.message, secrets), retryable: error.retryable };
  }
  return { code: 'INTERNAL', message: quoteError(error, secrets), retryable: false };
}
