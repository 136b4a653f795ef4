import { quoteError, type ErrorCode } from '../../src/errors.js';
import type { SecretValue } from '../../src/secret.js';

/** Returns the AADSTS error codes an Entra ID error message carries, such as 7000215. */
export function aadstsCodes(error: unknown): number[] {
  const text = error instanceof Error ? error.message : String(error);
  return [...text.matchAll(/AADSTS(\d+)/g)].map((match) => Number(match[1]));
}

/**
 * Maps an @azure/identity error to a rekey error code. An error from Entra ID (an AADSTS code)
 * means it rejected the identity, which a retry cannot fix. Anything else, such as
 * `endpoints_resolution_error` when the authority cannot be reached, may heal by retrying.
 */
export function identityErrorCode(error: unknown): ErrorCode {
  if (error instanceof Error && error.name === 'AbortError') return 'TIMEOUT';
  return aadstsCodes(error).length > 0 ? 'PERMISSION_DENIED' : 'UNAVAILABLE';
}

/**
 * Quotes an @azure/identity error for a message. MSAL's text puts timestamps and trace ids before
 * the AADSTS description, so only the description's first sentence is quoted when there is one.
 * Otherwise the whole error is quoted, truncated. `secrets` are scrubbed either way.
 */
export function quoteIdentityError(error: unknown, secrets: readonly SecretValue[] = []): string {
  const text = error instanceof Error ? error.message : String(error);
  const description = /AADSTS\d+: [^.]*\./.exec(text);
  if (description === null) return quoteError(error, secrets);
  return quoteError(`${error instanceof Error ? error.name : 'Error'}: ${description[0]}`, secrets);
}
