import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { MOTO_URL } from './moto.js';

/**
 * The error responses the proxy sends instead of forwarding a request:
 * - `throttling`: HTTP 400 with code `Throttling` (query protocol: IAM, STS) or `ThrottlingException`
 *   (JSON protocol: Secrets Manager), which is how AWS reports a rate limit.
 * - `slow-down`: HTTP 503 with code `SlowDown`, the code S3 uses for a rate limit.
 * - `too-many-requests`: HTTP 429 with a plain-text body and no AWS error code, as a load balancer
 *   or gateway in front of the endpoint sends it.
 */
export type ThrottleResponse = 'throttling' | 'slow-down' | 'too-many-requests';

export interface ThrottleRule {
  /** The AWS action: `Action` of a query-protocol request, or the operation in `X-Amz-Target`. */
  action: string;
  /** How many matching requests get the throttling response before the proxy forwards the rest. */
  count: number;
  response?: ThrottleResponse;
}

/**
 * A request rate the proxy enforces like an AWS API: a token bucket of `perSecond` tokens that
 * refills at `perSecond` a second. A request that finds it empty gets the `throttling` response.
 */
export interface RateLimit {
  perSecond: number;
}

/** One request the proxy received, without its body or signature. */
export interface ProxiedRequest {
  action: string;
  /** Milliseconds on the monotonic clock (performance.now) when the request arrived. */
  at: number;
  throttled: boolean;
  /** The HTTP status the client received. */
  status: number;
  /** The SDK's `amz-sdk-invocation-id`: the same for every attempt of one SDK call. */
  invocationId: string | null;
  /** The attempt number within the SDK call, from the `amz-sdk-request` header. */
  sdkAttempt: number | null;
}

/**
 * An HTTP proxy on a free loopback port in front of moto. It responds to the first `count`
 * requests of each rule's action with an AWS throttling response and forwards every other request
 * unchanged, Host header included, so moto still verifies the client's SigV4 signature.
 */
export class ThrottleProxy {
  readonly #server: Server;
  readonly #upstream: URL;
  readonly #remaining = new Map<string, { count: number; response: ThrottleResponse }>();
  readonly #requests: ProxiedRequest[] = [];
  readonly #rate: RateLimit | null;
  #tokens = 0;
  #refilledAt = performance.now();

  private constructor(server: Server, upstream: URL, rules: readonly ThrottleRule[], rate: RateLimit | null) {
    this.#server = server;
    this.#upstream = upstream;
    this.#rate = rate;
    this.#tokens = rate?.perSecond ?? 0;
    for (const rule of rules) this.#remaining.set(rule.action, { count: rule.count, response: rule.response ?? 'throttling' });
  }

  static async start(rules: readonly ThrottleRule[], upstream: string = MOTO_URL, rate: RateLimit | null = null): Promise<ThrottleProxy> {
    const server = createServer();
    const proxy = new ThrottleProxy(server, new URL(upstream), rules, rate);
    server.on('request', (req, res) => {
      proxy.#handle(req, res).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The endpoint URL to give rekey (REKEY_AWS_ENDPOINT) and SDK clients. */
  get url(): string {
    const address = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  /** Returns the requests of `action` in order of arrival, or every request when `action` is omitted. */
  requests(action?: string): ProxiedRequest[] {
    return this.#requests.filter((entry) => action === undefined || entry.action === action);
  }

  /** Counts the requests of `action` that reached moto. */
  forwardedCount(action: string): number {
    return this.requests(action).filter((entry) => !entry.throttled).length;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.#server.close((error) => (error === undefined ? resolve() : reject(error))));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const target = headerText(req, 'x-amz-target');
    const action = target === null ? queryAction(req, body) : target.slice(target.lastIndexOf('.') + 1);
    const entry: ProxiedRequest = {
      action,
      at: performance.now(),
      throttled: false,
      status: 0,
      invocationId: headerText(req, 'amz-sdk-invocation-id'),
      sdkAttempt: sdkAttemptOf(headerText(req, 'amz-sdk-request')),
    };
    this.#requests.push(entry);

    if (!this.#takeToken()) {
      entry.throttled = true;
      entry.status = sendThrottled(res, 'throttling', target === null ? 'query' : 'json');
      return;
    }
    const rule = this.#remaining.get(action);
    if (rule !== undefined && rule.count > 0) {
      rule.count -= 1;
      entry.throttled = true;
      entry.status = sendThrottled(res, rule.response, target === null ? 'query' : 'json');
      return;
    }
    entry.status = await this.#forward(req, body, res);
  }

  /** Takes a token from the rate bucket; true when there was one, or when no rate is set. */
  #takeToken(): boolean {
    if (this.#rate === null) return true;
    const now = performance.now();
    this.#tokens = Math.min(this.#rate.perSecond, this.#tokens + ((now - this.#refilledAt) * this.#rate.perSecond) / 1000);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #forward(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<number> {
    return new Promise((resolve, reject) => {
      const upstream = httpRequest({
        host: this.#upstream.hostname,
        port: this.#upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      }, (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
        response.on('end', () => resolve(response.statusCode ?? 502));
        response.on('error', reject);
      });
      upstream.on('error', reject);
      upstream.end(body);
    });
  }
}

function headerText(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}

/** Reads the `Action` parameter of a query-protocol request, from the form body or the URL. */
function queryAction(req: IncomingMessage, body: Buffer): string {
  const fromBody = new URLSearchParams(body.toString('utf8')).get('Action');
  if (fromBody !== null) return fromBody;
  return new URL(req.url ?? '/', 'http://proxy').searchParams.get('Action') ?? 'unknown';
}

/** Parses `attempt=2; max=3`, the value of the SDK's `amz-sdk-request` header. */
function sdkAttemptOf(header: string | null): number | null {
  const match = header === null ? null : /attempt=(\d+)/.exec(header);
  return match === null ? null : Number(match[1]);
}

/** Sends the throttling response and returns its HTTP status. */
function sendThrottled(res: ServerResponse, response: ThrottleResponse, protocol: 'query' | 'json'): number {
  const requestId = randomUUID();
  if (response === 'too-many-requests') {
    res.writeHead(429, { 'content-type': 'text/plain' });
    res.end('Too Many Requests\n');
    return 429;
  }

  const status = response === 'slow-down' ? 503 : 400;
  const message = response === 'slow-down' ? 'Please reduce your request rate.' : 'Rate exceeded';
  if (protocol === 'json') {
    const code = response === 'slow-down' ? 'SlowDown' : 'ThrottlingException';
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId, 'x-amzn-errortype': code });
    res.end(JSON.stringify({ __type: code, message }));
    return status;
  }

  const code = response === 'slow-down' ? 'SlowDown' : 'Throttling';
  res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
  res.end(
    `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>${code}</Code>` +
      `<Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  );
  return status;
}
