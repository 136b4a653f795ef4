import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A GitHub REST API stand-in for tests, listening on 127.0.0.1 on a free port. It serves
 * GET /repos/{owner}/{repo}/secret-scanning/alerts/{alert_number} with the field names and error
 * bodies of the real API (version 2022-11-28) and responds 404 Not Found, as GitHub does, to any
 * other method or path. Tests register alerts, tokens, a response delay and failures to inject,
 * and read back the requests it received.
 */

export interface FakeAlertInput {
  owner: string;
  repo: string;
  number: number;
  secretType?: string;
  secretTypeDisplayName?: string;
  /** The leaked value; null omits the field, as GitHub does for hide_secret=true. */
  secret?: string | null;
  state?: 'open' | 'resolved';
  validity?: 'active' | 'inactive' | 'unknown';
  createdAt?: string;
}

export interface RecordedRequest {
  method: string;
  /** The path and query string. */
  url: string;
  headers: IncomingMessage['headers'];
}

/** A failure response sent to the next `count` requests: 503 (service unavailable), 429 or 403 (rate limits). */
export interface InjectedFailure {
  status: 403 | 429 | 503;
  count: number;
}

export interface FakeGithubOptions {
  /** Tokens that may read alerts. */
  tokens: readonly string[];
  /** Valid tokens that lack the secret scanning permission, which GitHub rejects with 403. */
  forbiddenTokens?: readonly string[];
  /** A path the API is served under, such as /api/v3 on GitHub Enterprise Server. */
  pathPrefix?: string;
}

const API_VERSION = '2022-11-28';
const REST_DOCS = 'https://docs.github.com/rest';
const ALERT_DOCS = 'https://docs.github.com/rest/secret-scanning/secret-scanning#get-a-secret-scanning-alert';
const ALERT_PATH = /^\/repos\/([^/]+)\/([^/]+)\/secret-scanning\/alerts\/(\d+)$/;

export class FakeGithubApi {
  readonly requests: RecordedRequest[] = [];
  private readonly alerts = new Map<string, FakeAlertInput>();
  private readonly failures: InjectedFailure[] = [];
  private readonly pendingTimers = new Set<NodeJS.Timeout>();
  private delayMs = 0;

  private readonly server: Server;
  private origin = '';

  private constructor(private readonly options: FakeGithubOptions) {
    this.server = createServer((request, response) => this.handle(request, response));
  }

  static async start(options: FakeGithubOptions): Promise<FakeGithubApi> {
    const fake = new FakeGithubApi(options);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = fake.server.address() as AddressInfo;
    fake.origin = `http://127.0.0.1:${port}`;
    return fake;
  }

  /** The server's origin, http://127.0.0.1:<port>. */
  get url(): string {
    return this.origin;
  }

  /** The base URL a client uses, prefix included. */
  get baseUrl(): string {
    return `${this.url}${this.options.pathPrefix ?? ''}`;
  }

  get requestCount(): number {
    return this.requests.length;
  }

  addAlert(alert: FakeAlertInput): void {
    this.alerts.set(alertKey(alert.owner, alert.repo, alert.number), alert);
  }

  /** Delays every response by `ms` milliseconds. */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  injectFailure(failure: InjectedFailure): void {
    this.failures.push({ ...failure });
  }

  async close(): Promise<void> {
    for (const timer of this.pendingTimers) clearTimeout(timer);
    this.pendingTimers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((error) => (error === undefined ? resolve() : reject(error))));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    this.requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const [status, body, headers] = this.respond(request);
    const send = (): void => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      response.end(JSON.stringify(body));
    };
    if (this.delayMs === 0) {
      send();
      return;
    }
    const timer = setTimeout(() => {
      this.pendingTimers.delete(timer);
      if (!response.destroyed) send();
    }, this.delayMs);
    this.pendingTimers.add(timer);
  }

  private respond(request: IncomingMessage): [number, unknown, Record<string, string>] {
    const url = new URL(request.url ?? '/', this.url);
    const prefix = this.options.pathPrefix ?? '';
    const match = request.method === 'GET' && url.pathname.startsWith(prefix) ? ALERT_PATH.exec(url.pathname.slice(prefix.length)) : null;
    if (match === null) return [404, { message: 'Not Found', documentation_url: REST_DOCS, status: '404' }, {}];

    const authorization = request.headers.authorization;
    if (authorization === undefined) return [401, { message: 'Requires authentication', documentation_url: REST_DOCS, status: '401' }, {}];
    const token = authorization.replace(/^(Bearer|token) /, '');
    const forbidden = this.options.forbiddenTokens?.includes(token) ?? false;
    if (!this.options.tokens.includes(token) && !forbidden) {
      return [401, { message: 'Bad credentials', documentation_url: REST_DOCS, status: '401' }, {}];
    }

    const version = request.headers['x-github-api-version'];
    if (version !== undefined && version !== API_VERSION) {
      return [400, { message: `API version ${String(version)} is not supported.`, documentation_url: REST_DOCS, status: '400' }, {}];
    }

    const failure = this.takeFailure();
    if (failure !== undefined) return failureResponse(failure);
    if (forbidden) {
      return [403, { message: 'Resource not accessible by personal access token', documentation_url: ALERT_DOCS, status: '403' }, {}];
    }

    const [, owner = '', repo = '', number = ''] = match;
    const alert = this.alerts.get(alertKey(decodeURIComponent(owner), decodeURIComponent(repo), Number(number)));
    if (alert === undefined) return [404, { message: 'Not Found', documentation_url: ALERT_DOCS, status: '404' }, {}];
    return [200, renderAlert(alert, this.url, url.searchParams.get('hide_secret') === 'true'), {}];
  }

  private takeFailure(): InjectedFailure | undefined {
    const failure = this.failures[0];
    if (failure === undefined) return undefined;
    failure.count -= 1;
    if (failure.count <= 0) this.failures.shift();
    return failure;
  }
}

function alertKey(owner: string, repo: string, number: number): string {
  return `${owner.toLowerCase()}/${repo.toLowerCase()}#${number}`;
}

function failureResponse(failure: InjectedFailure): [number, unknown, Record<string, string>] {
  if (failure.status === 503) {
    return [503, { code: 'service_unavailable', message: 'Service unavailable', documentation_url: REST_DOCS }, {}];
  }
  if (failure.status === 429) {
    return [429, { message: 'You have exceeded a secondary rate limit.', documentation_url: REST_DOCS, status: '429' }, { 'retry-after': '60' }];
  }
  return [
    403,
    { message: 'API rate limit exceeded for user ID 1.', documentation_url: REST_DOCS, status: '403' },
    { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1767225600' },
  ];
}

/** Renders an alert with the fields of GitHub's "Get a secret scanning alert" response. */
function renderAlert(alert: FakeAlertInput, origin: string, hideSecret: boolean): Record<string, unknown> {
  const api = `${origin}/repos/${alert.owner}/${alert.repo}/secret-scanning/alerts/${alert.number}`;
  const rendered: Record<string, unknown> = {
    number: alert.number,
    created_at: alert.createdAt ?? '2024-05-01T12:00:00Z',
    updated_at: null,
    url: api,
    html_url: `https://github.com/${alert.owner}/${alert.repo}/security/secret-scanning/${alert.number}`,
    locations_url: `${api}/locations`,
    state: alert.state ?? 'open',
    resolution: null,
    resolved_at: null,
    resolved_by: null,
    secret_type: alert.secretType ?? 'github_personal_access_token',
    secret_type_display_name: alert.secretTypeDisplayName ?? 'GitHub Personal Access Token',
    push_protection_bypassed: false,
    push_protection_bypassed_by: null,
    push_protection_bypassed_at: null,
    resolution_comment: null,
    validity: alert.validity ?? 'active',
    publicly_leaked: false,
    multi_repo: false,
  };
  if (!hideSecret && alert.secret !== null && alert.secret !== undefined) rendered.secret = alert.secret;
  return rendered;
}
