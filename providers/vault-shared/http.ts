import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { quoteError, RekeyError, type ErrorCode } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { CAS_MISMATCH_ERROR, MAX_RESPONSE_BYTES } from './constants.js';

/** Address, namespace and request timeout of the Vault server that a client calls. */
export interface VaultEndpoint {
  /** Vault's address without the /v1 prefix, such as https://vault.example.com:8200. */
  address: URL;
  /** Sent as X-Vault-Namespace on every request, when set. */
  namespace: string | undefined;
  timeoutMs: number;
}

/** LIST is sent as `GET ...?list=true`, which Vault treats the same way and proxies pass through. */
export type VaultMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

/** A JSON request body whose secret values stay wrapped until the body is serialized for the wire. */
export type RequestValue = string | number | boolean | null | SecretValue | RequestValue[] | { [key: string]: RequestValue };
export type RequestBody = { [key: string]: RequestValue };

export interface VaultCall {
  method: VaultMethod;
  /** The API path after /v1/, with each segment already encoded, such as `secret/data/app`. */
  path: string;
  query?: Record<string, string>;
  body?: RequestBody;
}

export interface VaultHttpResponse {
  status: number;
  /** The parsed JSON body, null when the body is empty and undefined when it is not JSON. */
  body: unknown;
}

/** A failed Vault request, with Vault's HTTP status and its `errors` (scrubbed of the request's secrets). */
export class VaultApiError extends RekeyError {
  /** The HTTP status, or null when no response arrived. */
  readonly httpStatus: number | null;
  readonly vaultErrors: readonly string[];

  constructor(code: ErrorCode, message: string, details: { httpStatus: number | null; vaultErrors?: readonly string[]; cause?: unknown }) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'VaultApiError';
    this.httpStatus = details.httpStatus;
    this.vaultErrors = details.vaultErrors ?? [];
  }
}

/** Encodes each segment of a slash-separated path for a URL. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Returns a short name of a call for messages, such as `LIST auth/approle/role/ci/secret-id`. */
export function describeCall(call: VaultCall): string {
  return `${call.method} ${decodeURIComponent(call.path)}`;
}

/** Collects every secret value of a request body, to scrub them from quoted errors. */
export function secretsOf(value: RequestValue | undefined): SecretValue[] {
  if (value instanceof SecretValue) return [value];
  if (Array.isArray(value)) return value.flatMap(secretsOf);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(secretsOf);
  return [];
}

/** Serializes a request body with its secret values revealed. JSON.stringify alone would write "[redacted]". */
function serializeBody(body: RequestBody): string {
  const reveal = (value: RequestValue): unknown => {
    if (value instanceof SecretValue) return value.reveal();
    if (Array.isArray(value)) return value.map(reveal);
    if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, reveal(item)]));
    return value;
  };
  return JSON.stringify(reveal(body));
}

/** Node.js error codes of a socket that could not reach the server or lost it. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED',
]);

/** Node.js error codes of a TLS certificate that did not verify, which a retry cannot fix. */
const TLS_ERROR_CODES = new Set([
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REVOKED',
]);

class RequestTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no response within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Sends HTTP requests to one Vault server through a keep-alive agent that verifies TLS
 * certificates against the system's CAs, or against `ca` when it is given. Nothing here can turn
 * certificate verification off.
 */
export class VaultTransport {
  readonly endpoint: VaultEndpoint;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #https: boolean;

  constructor(endpoint: VaultEndpoint, ca: Buffer | undefined) {
    this.endpoint = endpoint;
    this.#https = endpoint.address.protocol === 'https:';
    this.#agent = this.#https ? new HttpsAgent({ keepAlive: true, ca, rejectUnauthorized: true }) : new HttpAgent({ keepAlive: true });
  }

  /**
   * Sends one request, with `token` as X-Vault-Token when given, and returns the status and the
   * parsed body whatever the status. Throws a VaultApiError only when no response arrives.
   */
  async send(call: VaultCall, token: SecretValue | undefined, signal: AbortSignal | undefined): Promise<VaultHttpResponse> {
    signal?.throwIfAborted();
    const url = this.#url(call);
    const headers: Record<string, string> = { accept: 'application/json', 'x-vault-request': 'true' };
    if (token !== undefined) headers['x-vault-token'] = token.reveal();
    if (this.endpoint.namespace !== undefined) headers['x-vault-namespace'] = this.endpoint.namespace;
    const payload = call.body === undefined ? undefined : serializeBody(call.body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }

    try {
      return await this.#exchange(url, call.method === 'LIST' ? 'GET' : call.method, headers, payload, signal);
    } catch (error) {
      throw this.#networkError(call, error, signal);
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  #url(call: VaultCall): URL {
    const base = this.endpoint.address.href.replace(/\/+$/, '');
    const url = new URL(`${base}/v1/${call.path}`);
    for (const [name, value] of Object.entries(call.query ?? {})) url.searchParams.set(name, value);
    if (call.method === 'LIST') url.searchParams.set('list', 'true');
    return url;
  }

  #exchange(url: URL, method: string, headers: Record<string, string>, payload: string | undefined, signal: AbortSignal | undefined): Promise<VaultHttpResponse> {
    return new Promise((resolve, reject) => {
      const send = this.#https ? httpsRequest : httpRequest;
      const request = send(url, { method, headers, agent: this.#agent });
      const timer = setTimeout(() => request.destroy(new RequestTimeout(this.endpoint.timeoutMs)), this.endpoint.timeoutMs);
      const onAbort = (): void => {
        request.destroy(signal?.reason instanceof Error ? signal.reason : new Error('request aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };

      request.on('error', (error) => {
        finish();
        reject(error);
      });
      request.on('response', (response) => {
        readBody(response).then(
          (body) => {
            finish();
            resolve({ status: response.statusCode ?? 0, body });
          },
          (error: unknown) => {
            finish();
            reject(error);
          },
        );
      });
      request.end(payload);
    });
  }

  #networkError(call: VaultCall, error: unknown, signal: AbortSignal | undefined): VaultApiError {
    const where = `${describeCall(call)} at ${this.endpoint.address.origin}`;
    if (error instanceof RequestTimeout) {
      return new VaultApiError('TIMEOUT', `Vault did not respond to ${where} within ${error.timeoutMs} ms`, { httpStatus: null });
    }
    if (signal?.aborted === true) {
      return new VaultApiError('TIMEOUT', `${where} was aborted before Vault responded`, { httpStatus: null, cause: error });
    }

    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && TLS_ERROR_CODES.has(code)) {
      return new VaultApiError(
        'PRECONDITION_FAILED',
        `TLS verification of Vault failed for ${where}: ${quoteError(error)}. Set REKEY_VAULT_CACERT to the CA certificate file that signed Vault's certificate`,
        { httpStatus: null, cause: error },
      );
    }
    const message = typeof code === 'string' && NETWORK_ERROR_CODES.has(code)
      ? `could not reach Vault for ${where}: ${quoteError(error)}`
      : `${where} failed before Vault responded: ${quoteError(error)}`;
    return new VaultApiError('UNAVAILABLE', message, { httpStatus: null, cause: error });
  }
}

/** Reads a response body and parses it as JSON: null for an empty body, undefined for one that is not JSON. */
function readBody(response: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        response.destroy(new Error(`response body larger than ${MAX_RESPONSE_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.on('error', reject);
    response.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        resolve(null);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch {
        resolve(undefined);
      }
    });
  });
}

/** Returns the `errors` of a Vault error body, or the `data.error` that some 404s carry instead. */
export function vaultErrorsOf(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const { errors, data } = body as { errors?: unknown; data?: unknown };
  if (Array.isArray(errors)) return errors.filter((item): item is string => typeof item === 'string');
  const error = (data as { error?: unknown } | null | undefined)?.error;
  return typeof error === 'string' ? [error] : [];
}

/** Classifies a Vault error response by whether a retry can help. */
function errorCodeOf(status: number, errors: readonly string[]): ErrorCode {
  if (status === 400 && errors.some((error) => error.includes(CAS_MISMATCH_ERROR))) return 'STORE_CONFLICT';
  if (status === 401 || status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'TARGET_NOT_FOUND';
  if (status === 429) return 'THROTTLED';
  // 412: a Vault Enterprise performance standby has not caught up with the state the request needs yet.
  if (status === 412 || status >= 500) return 'UNAVAILABLE';
  if (status === 400 || status === 405) return 'INVALID_PARAMETERS';
  return 'INTERNAL';
}

function hintFor(code: ErrorCode, call: VaultCall): string {
  switch (code) {
    case 'PERMISSION_DENIED':
      return `: check that rekey's Vault token is valid and that its policy grants this operation on ${decodeURIComponent(call.path)}`;
    case 'STORE_CONFLICT':
      return ': another writer changed the secret after rekey read its version';
    case 'UNAVAILABLE':
      return ': Vault is sealed, unreachable or not ready, so the request can be retried';
    case 'THROTTLED':
      return ': a Vault rate limit quota rejected the request; retry later';
    default:
      return '';
  }
}

/**
 * Converts a Vault error response into a VaultApiError. Vault's error text is quoted with every
 * secret of the request scrubbed, because some errors echo a parameter (AppRole's "invalid
 * secret_id" names the secret ID it was given).
 */
export function responseError(call: VaultCall, response: VaultHttpResponse, secrets: readonly SecretValue[]): VaultApiError {
  const errors = vaultErrorsOf(response.body).map((error) => quoteError(error.trim(), secrets));
  const code = errorCodeOf(response.status, errors);
  let detail = errors.length > 0 ? errors.join('; ') : 'no error text';
  if (response.body === undefined) detail = 'a body that is not JSON';
  return new VaultApiError(code, `Vault rejected ${describeCall(call)} with HTTP ${response.status} (${detail})${hintFor(code, call)}`, {
    httpStatus: response.status,
    vaultErrors: errors,
  });
}
