import { request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import type { TokenCredential } from '@azure/identity';
import { quoteError, RekeyError, type ErrorCode } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { sleep } from '../../src/engine/poll.js';
import { DEFAULT_RETRY_AFTER_MS, MAX_GRAPH_RESPONSE_BYTES, MAX_RETRY_AFTER_MS, MAX_THROTTLE_WAIT_MS, MIN_RETRY_AFTER_MS } from './constants.js';
import { identityErrorCode, quoteIdentityError } from './errors.js';
import type { AzureSettings } from './settings.js';

/** A failed Graph request, with the HTTP status and Graph's error code when a response arrived. */
export class GraphApiError extends RekeyError {
  readonly httpStatus: number | null;
  readonly graphCode: string | null;
  readonly graphMessage: string | null;

  constructor(code: ErrorCode, message: string, details: { httpStatus: number | null; graphCode?: string | null; graphMessage?: string | null; cause?: unknown }) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GraphApiError';
    this.httpStatus = details.httpStatus;
    this.graphCode = details.graphCode ?? null;
    this.graphMessage = details.graphMessage ?? null;
  }
}

export interface GraphCall {
  method: 'GET' | 'POST';
  /** The path after the endpoint, starting with /v1.0/. */
  path: string;
  body?: Record<string, unknown>;
  /** A short description of the call for messages and logs, such as `addPassword on application 1234`. */
  description: string;
}

interface GraphResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Node.js socket error codes of a server that could not be reached. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Maps a socket error to a code: a TLS verification failure cannot heal by retrying, the rest may. */
function networkErrorCode(error: NodeJS.ErrnoException): ErrorCode {
  if (error.name === 'AbortError') return 'TIMEOUT';
  if (NETWORK_ERROR_CODES.has(error.code ?? '')) return 'UNAVAILABLE';
  return isTlsError(error) ? 'PRECONDITION_FAILED' : 'UNAVAILABLE';
}

function isTlsError(error: NodeJS.ErrnoException): boolean {
  const code = error.code ?? '';
  return code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
}

function tlsHint(error: NodeJS.ErrnoException): string {
  return isTlsError(error) ? '. The server certificate is not trusted: set REKEY_AZURE_CA_FILE to the CA that issued it' : '';
}

/** Returns the wait that a 429 response requests, in milliseconds, from Retry-After in seconds or as an HTTP date. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number {
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || text.trim() === '') return DEFAULT_RETRY_AFTER_MS;
  const seconds = Number(text);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? DEFAULT_RETRY_AFTER_MS : Math.max(0, date - now);
}

function parseGraphError(text: string): { code: string | null; message: string | null } {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return {
      code: typeof parsed.error?.code === 'string' ? parsed.error.code : null,
      message: typeof parsed.error?.message === 'string' ? parsed.error.message.slice(0, 300) : null,
    };
  } catch {
    return { code: null, message: null };
  }
}

/**
 * Parses a successful response. The parser's own error would quote the text, which contains the
 * secret in an addPassword response, so it is replaced by one that names only the call.
 */
function parseBody(call: GraphCall, response: GraphResponse): unknown {
  if (response.text === '') return null;
  try {
    return JSON.parse(response.text);
  } catch {
    throw new GraphApiError('INTERNAL', `Graph ${call.description} returned HTTP ${response.status} with a body that is not JSON`, { httpStatus: response.status });
  }
}

function codeOfStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'TARGET_NOT_FOUND';
  if (status === 429) return 'THROTTLED';
  if (status >= 500) return 'UNAVAILABLE';
  if (status === 400) return 'INVALID_PARAMETERS';
  return 'INTERNAL';
}

/**
 * A small Microsoft Graph client on node:https for the application calls rekey makes. It gets
 * tokens from rekey's credential, trusts the configured CA, waits out 429 responses as long as
 * Retry-After requests (bounded by MAX_RETRY_AFTER_MS each and MAX_THROTTLE_WAIT_MS in total) and never retries
 * anything else, because addPassword is not idempotent. Secrets in request bodies stay wrapped
 * until the body is written, and responses are returned as parsed JSON.
 */
export class GraphClient {
  readonly #settings: AzureSettings;
  readonly #credential: TokenCredential;

  constructor(settings: AzureSettings, credential: TokenCredential) {
    this.#settings = settings;
    this.#credential = credential;
  }

  /** Sends `call` and returns its parsed JSON body (null for 204). Throws GraphApiError. */
  async send(call: GraphCall, context: { logger: Logger; signal: AbortSignal }): Promise<unknown> {
    let waitedMs = 0;
    for (let attempt = 1; ; attempt += 1) {
      const token = await this.#token(context.signal);
      const response = await this.#request(call, token, context.signal);
      if (response.status === 429) {
        // A Retry-After of 0 would otherwise resend at once, over and over.
        const waitMs = Math.max(retryAfterMs(response.headers['retry-after']), MIN_RETRY_AFTER_MS);
        if (waitMs > MAX_RETRY_AFTER_MS || waitedMs + waitMs > MAX_THROTTLE_WAIT_MS) {
          throw new GraphApiError('THROTTLED', `Graph throttled ${call.description} and requested a wait of ${waitMs} ms, longer than rekey waits within one step, so the job retries later`, { httpStatus: 429, graphCode: 'TooManyRequests' });
        }
        // A 429 means Graph did not process the request, so sending it again creates nothing twice.
        context.logger.warn({ call: call.description, attempt, retryAfterMs: waitMs }, 'Graph throttled the request; waiting for the Retry-After time');
        await sleep(waitMs, context.signal);
        waitedMs += waitMs;
        continue;
      }
      if (response.status >= 200 && response.status < 300) return parseBody(call, response);
      throw this.#responseError(call, response);
    }
  }

  async #token(signal: AbortSignal): Promise<SecretValue> {
    let token;
    try {
      token = await this.#credential.getToken(this.#settings.graphScope, { abortSignal: signal });
    } catch (error) {
      throw new RekeyError(
        identityErrorCode(error),
        `rekey's Azure identity could not get a token for ${this.#settings.graphScope} from ${this.#settings.authorityHost}: ${quoteIdentityError(error)}`,
        { cause: error },
      );
    }
    if (token === null) throw new RekeyError('PERMISSION_DENIED', `rekey's Azure identity returned no token for ${this.#settings.graphScope}`);
    return SecretValue.fromString(token.token);
  }

  #responseError(call: GraphCall, response: GraphResponse): GraphApiError {
    const { code: graphCode, message: graphMessage } = parseGraphError(response.text);
    const detail = (graphMessage ?? '').replace(/\.$/, '');
    const quoted = graphCode === null ? `HTTP ${response.status}` : `HTTP ${response.status} ${graphCode}: ${detail}`;
    const code = codeOfStatus(response.status);
    const hint = code === 'PERMISSION_DENIED'
      ? '. Grant rekey\'s identity the Graph application permission Application.ReadWrite.OwnedBy and add it as an owner of the application'
      : '';
    return new GraphApiError(code, `Graph ${call.description} failed: ${quoted}${hint}`, { httpStatus: response.status, graphCode, graphMessage });
  }

  #request(call: GraphCall, token: SecretValue, signal: AbortSignal): Promise<GraphResponse> {
    const url = new URL(call.path, this.#settings.graphEndpoint);
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const headers: Record<string, string | number> = { authorization: `Bearer ${token.reveal()}`, accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }

    return new Promise<GraphResponse>((resolve, reject) => {
      const request = httpsRequest(url, {
        method: call.method,
        headers,
        signal,
        timeout: this.#settings.requestTimeoutMs,
        ...(this.#settings.ca === undefined ? {} : { ca: this.#settings.ca }),
      }, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_GRAPH_RESPONSE_BYTES) {
            response.destroy(new GraphApiError('INTERNAL', `Graph ${call.description} returned more than ${MAX_GRAPH_RESPONSE_BYTES} bytes`, { httpStatus: response.statusCode ?? null }));
            return;
          }
          chunks.push(chunk);
        });
        response.on('error', reject);
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }));
      });
      request.on('timeout', () => {
        request.destroy(new GraphApiError('TIMEOUT', `Graph ${call.description} timed out after ${this.#settings.requestTimeoutMs} ms`, { httpStatus: null }));
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof GraphApiError) {
          reject(error);
          return;
        }
        reject(new GraphApiError(networkErrorCode(error), `Graph ${call.description} failed: ${quoteError(error, [token])}${tlsHint(error)}`, { httpStatus: null, cause: error }));
      });
      request.end(body);
    });
  }
}
