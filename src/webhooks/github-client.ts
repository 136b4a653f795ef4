import { isRekeyError, quoteError, RekeyError } from '../errors.js';
import { SecretValue } from '../secret.js';
import { PayloadReader } from './payload-reader.js';

/** The REST API root of github.com. GitHub Enterprise Server serves it at https://HOST/api/v3. */
export const GITHUB_API_URL = 'https://api.github.com';

/** The REST API version rekey's requests and response parsing follow. */
export const GITHUB_API_VERSION = '2022-11-28';

/** GitHub rejects REST requests without a User-Agent header ("Getting started with the REST API"). */
const USER_AGENT = 'rekey/0.1.0';

export interface FetchSecretScanningAlertOptions {
  /** The REST API root, for example GITHUB_API_URL; a trailing slash is ignored. */
  baseUrl: string;
  /**
   * A token that can read the alert: a fine-grained token or GitHub App token with the "Secret
   * scanning alerts" repository permission (read), or a classic token with the repo or
   * security_events scope.
   */
  token: string | SecretValue;
  owner: string;
  repo: string;
  alertNumber: number;
  /** Maximum time in milliseconds for the request, response body included. */
  timeoutMs: number;
  /** Cancels the request; the returned promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface SecretScanningAlert {
  /** The leaked value; null when GitHub omits it (the `hide_secret` parameter, or an alert without one). */
  secret: SecretValue | null;
  secretType: string;
  /** open or resolved. */
  state: string;
  createdAt: string;
}

/**
 * Fetches a secret scanning alert with GET /repos/{owner}/{repo}/secret-scanning/alerts/{alert_number},
 * which returns the leaked value that the webhook payload lacks. Makes one attempt and leaves
 * retries to the caller. Errors are RekeyErrors whose messages name the repository and alert
 * number and never the token:
 *
 * - TARGET_NOT_FOUND for 404, which GitHub also returns when the repository is public or secret
 *   scanning is disabled for it;
 * - PERMISSION_DENIED for 401 and for 403 other than a rate limit;
 * - UNAVAILABLE (retryable) for 429, for a 403 that is a rate limit, for 5xx and for network errors;
 * - TIMEOUT (retryable) when `timeoutMs` elapses first;
 * - INTERNAL for another status or a malformed alert.
 */
export async function fetchSecretScanningAlert(options: FetchSecretScanningAlertOptions): Promise<SecretScanningAlert> {
  validateOptions(options);
  const label = `secret scanning alert ${options.alertNumber} of ${options.owner}/${options.repo}`;
  const token = typeof options.token === 'string' ? SecretValue.fromString(options.token) : options.token;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);

  let response: Response;
  let body: string;
  try {
    response = await fetch(alertUrl(options), {
      headers: {
        authorization: `Bearer ${token.reveal()}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': GITHUB_API_VERSION,
        'user-agent': USER_AGENT,
      },
      signal,
    });
    body = await response.text();
  } catch (error) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    if (timeout.aborted) {
      throw new RekeyError('TIMEOUT', `GitHub API request for ${label} timed out after ${options.timeoutMs} ms`, { cause: error });
    }
    const reason = quoteError(error instanceof Error && error.cause !== undefined ? error.cause : error, [token]);
    throw new RekeyError('UNAVAILABLE', `GitHub API request for ${label} failed: ${reason}`, { cause: error });
  }

  if (!response.ok) throw statusError(response, body, label, token);
  return parseAlert(body, label);
}

function validateOptions(options: FetchSecretScanningAlertOptions): void {
  if (!URL.canParse(options.baseUrl) || !/^https?:$/.test(new URL(options.baseUrl).protocol)) {
    throw new RekeyError('INVALID_PARAMETERS', `GitHub API base URL "${options.baseUrl}" is not an http(s) URL: expected one such as ${GITHUB_API_URL}`);
  }
  if (!isRepositoryPart(options.owner) || !isRepositoryPart(options.repo)) {
    throw new RekeyError(
      'INVALID_PARAMETERS',
      `GitHub repository ${JSON.stringify(`${options.owner}/${options.repo}`.slice(0, 200))} is invalid: owner and name must be non-empty and contain only letters, digits, ".", "-" and "_"`,
    );
  }
  if (!Number.isSafeInteger(options.alertNumber) || options.alertNumber < 1) {
    throw new RekeyError('INVALID_PARAMETERS', `GitHub alert number ${options.alertNumber} is invalid: expected a positive integer`);
  }
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
    throw new RekeyError('INVALID_PARAMETERS', `timeout ${options.timeoutMs} ms is invalid: expected a positive number of milliseconds`);
  }
}

/**
 * Checks an owner or repository name against the characters GitHub allows in them. This also
 * rejects "." and "..", which the URL parser would resolve as path segments.
 */
function isRepositoryPart(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,100}$/.test(name) && name !== '.' && name !== '..';
}

/** Appends the path to the base URL as text, because new URL(path, base) would drop the /api/v3 of a GitHub Enterprise Server root. */
function alertUrl(options: FetchSecretScanningAlertOptions): string {
  const root = options.baseUrl.replace(/\/+$/, '');
  const owner = encodeURIComponent(options.owner);
  const repo = encodeURIComponent(options.repo);
  return `${root}/repos/${owner}/${repo}/secret-scanning/alerts/${options.alertNumber}`;
}

/** Returns the `message` of a GitHub error body, truncated and scrubbed, or the bare status. */
function githubMessage(response: Response, body: string, token: SecretValue): string {
  let message: unknown;
  try {
    message = (JSON.parse(body) as { message?: unknown }).message;
  } catch {
    message = undefined;
  }
  const text = typeof message === 'string' && message !== '' ? `${response.status} ${message}` : `${response.status}`;
  return quoteError(text, [token]);
}

/**
 * GitHub responds to an exceeded rate limit with 403 or 429, and then sets x-ratelimit-remaining
 * to 0 (primary limit) or may send retry-after (secondary limit). Source: GitHub's "Rate limits
 * for the REST API".
 */
function isRateLimited(response: Response): boolean {
  return response.headers.get('x-ratelimit-remaining') === '0' || response.headers.has('retry-after');
}

function statusError(response: Response, body: string, label: string, token: SecretValue): RekeyError {
  const detail = githubMessage(response, body, token);
  const { status } = response;

  if (status === 404) {
    return new RekeyError('TARGET_NOT_FOUND', `GitHub found no ${label} (${detail}); GitHub also returns 404 when the repository is public or has secret scanning disabled`);
  }
  if (status === 429 || (status === 403 && isRateLimited(response))) {
    const retryAfter = response.headers.get('retry-after');
    const wait = retryAfter === null ? '' : `, retry after ${retryAfter} s`;
    return new RekeyError('UNAVAILABLE', `GitHub API rate limit reached while reading ${label} (${detail})${wait}`);
  }
  if (status === 401) {
    return new RekeyError('PERMISSION_DENIED', `GitHub rejected the token while reading ${label} (${detail}): check that the token is valid and not expired`);
  }
  if (status === 403) {
    return new RekeyError('PERMISSION_DENIED', `GitHub denied access to ${label} (${detail}): the token needs the "Secret scanning alerts" repository permission (read), or the repo or security_events scope`);
  }
  if (status >= 500) {
    return new RekeyError('UNAVAILABLE', `GitHub API failed while reading ${label} (${detail})`);
  }
  return new RekeyError('INTERNAL', `GitHub API returned unexpected status ${detail} for ${label}`);
}

/**
 * Validates the alert JSON. The body contains the secret, so neither a field's value nor a JSON
 * syntax error, whose V8 message can quote part of the input, reaches the error message.
 */
function parseAlert(body: string, label: string): SecretScanningAlert {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    throw new RekeyError('INTERNAL', `GitHub API returned a body that is not valid JSON for ${label}`);
  }

  try {
    const alert = PayloadReader.of('GitHub secret scanning alert', document);
    return {
      secretType: alert.string('secret_type'),
      state: alert.string('state'),
      createdAt: alert.dateTime('created_at'),
      secret: alert.secret('secret'),
    };
  } catch (error) {
    if (!isRekeyError(error)) throw error;
    throw new RekeyError('INTERNAL', `GitHub API returned an invalid ${label}: ${error.message}`);
  }
}
