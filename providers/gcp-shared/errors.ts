import { quoteError, RekeyError, type ErrorCode } from '../../src/errors.js';
import type { SecretValue } from '../../src/secret.js';

/** The parts of a Google API error that rekey reads: `{error: {code, message, status, details}}`. */
export interface GoogleApiError {
  /** The HTTP status, when the error came from an HTTP response. */
  httpStatus: number | undefined;
  /** The canonical status name, such as FAILED_PRECONDITION. */
  status: string | undefined;
  message: string;
  /** `error.details`, serialised, for matching the constraint of a precondition failure. */
  detailsText: string;
}

/** gRPC status codes by number, as google-gax reports them in `error.code`. */
const GRPC_STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED',
];

const STATUS_BY_HTTP: Record<number, string> = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};

/** Node.js socket error codes that mean the endpoint could not be reached. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Node.js error codes of a TLS certificate that did not verify, which a retry cannot fix. */
const TLS_ERROR_CODES = new Set([
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REVOKED',
]);

/** Returns the first Node.js error code (ECONNREFUSED, CERT_HAS_EXPIRED) in `error` or its causes. */
function socketErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_ERROR_CODES.has(code) || TLS_ERROR_CODES.has(code))) return code;
  }
  return undefined;
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; status?: unknown; details?: unknown };
}

function bodyOf(data: unknown): ErrorBody | undefined {
  if (typeof data === 'string') {
    try {
      return JSON.parse(data) as ErrorBody;
    } catch {
      return undefined;
    }
  }
  return typeof data === 'object' && data !== null ? (data as ErrorBody) : undefined;
}

/**
 * Reads the Google error of a failed call: a gaxios error with the JSON error body (IAM REST
 * calls), or a google-gax error with a numeric gRPC code (Secret Manager and IAM Credentials
 * clients). Returns undefined for anything else, such as a socket error.
 */
export function googleApiErrorOf(error: unknown): GoogleApiError | undefined {
  if (!(error instanceof Error)) return undefined;
  const details = error as Error & { code?: unknown; status?: unknown; response?: { status?: number; data?: unknown }; statusDetails?: unknown };

  const response = details.response;
  if (response !== undefined && typeof response.status === 'number') {
    // google-gax reads responses as streams, so its gaxios errors carry the body as the message.
    const body = (bodyOf(response.data) ?? bodyOf(error.message))?.error;
    return {
      httpStatus: response.status,
      status: typeof body?.status === 'string' ? body.status : STATUS_BY_HTTP[response.status],
      message: typeof body?.message === 'string' ? body.message : error.message,
      detailsText: body?.details === undefined ? '' : JSON.stringify(body.details),
    };
  }

  if (typeof details.code === 'number' && GRPC_STATUS_NAMES[details.code] !== undefined) {
    return {
      httpStatus: undefined,
      status: GRPC_STATUS_NAMES[details.code],
      message: error.message,
      detailsText: details.statusDetails === undefined ? '' : JSON.stringify(details.statusDetails),
    };
  }
  return undefined;
}

/** Returns the RekeyError inside `error` or its causes, such as one thrown while rekey fetched its own token. */
function innerRekeyError(error: unknown): RekeyError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (current instanceof RekeyError) return current;
  }
  return undefined;
}

function codeOfStatus(status: string | undefined): ErrorCode {
  switch (status) {
    case 'INVALID_ARGUMENT':
    case 'OUT_OF_RANGE':
      return 'INVALID_PARAMETERS';
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
      return 'PERMISSION_DENIED';
    case 'NOT_FOUND':
      return 'TARGET_NOT_FOUND';
    case 'FAILED_PRECONDITION':
    case 'ALREADY_EXISTS':
      return 'PRECONDITION_FAILED';
    case 'RESOURCE_EXHAUSTED':
      return 'THROTTLED';
    case 'DEADLINE_EXCEEDED':
    case 'CANCELLED':
      return 'TIMEOUT';
    case 'UNAVAILABLE':
    case 'INTERNAL':
    case 'ABORTED':
    case 'UNKNOWN':
      return 'UNAVAILABLE';
    default:
      return 'INTERNAL';
  }
}

/** Returns the code of `error`, marking whether a retry can help. */
export function gcpErrorCode(error: unknown): ErrorCode {
  const inner = innerRekeyError(error);
  if (inner !== undefined) return inner.code;
  const google = googleApiErrorOf(error);
  if (google !== undefined) {
    if (google.httpStatus !== undefined && google.httpStatus >= 500) return 'UNAVAILABLE';
    return codeOfStatus(google.status);
  }
  const code = socketErrorCode(error);
  if (code !== undefined) return TLS_ERROR_CODES.has(code) ? 'PRECONDITION_FAILED' : 'UNAVAILABLE';
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) return 'TIMEOUT';
  return 'INTERNAL';
}

/**
 * Converts the error of one GCP call into a RekeyError. `permission` is the IAM permission the
 * call needs (iam.serviceAccountKeys.create) and `subject` the resource it acted on, so that the
 * message names what an operator should check. `secrets` are scrubbed from the quoted text.
 * The client library's error is quoted, never attached as the cause: its request configuration
 * can carry the form body (an access token, an assertion) in clear.
 */
export function toRekeyError(error: unknown, permission: string, subject: string, secrets: readonly SecretValue[] = []): RekeyError {
  const inner = innerRekeyError(error);
  if (inner !== undefined) return inner;

  const code = gcpErrorCode(error);
  const socketCode = socketErrorCode(error);
  if (socketCode !== undefined && TLS_ERROR_CODES.has(socketCode)) {
    return new RekeyError(code, `TLS verification failed for ${permission} on ${subject}: ${quoteError(error, secrets)}. Set REKEY_GCP_CA_FILE to the CA certificate file that signed the endpoint's certificate`);
  }
  const google = googleApiErrorOf(error);
  const quoted = google === undefined ? quoteError(error, secrets) : quoteError(`${google.status ?? google.httpStatus ?? 'error'}: ${google.message}`, secrets);
  if (code === 'PERMISSION_DENIED') {
    return new RekeyError(code, `${permission} on ${subject} was denied: ${quoted}. Grant rekey's GCP identity a role with ${permission} and check its credentials`);
  }
  return new RekeyError(code, `${permission} on ${subject} failed: ${quoted}`);
}
