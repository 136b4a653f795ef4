import type { ForceCloseResult } from '../../jobs/force-close.js';
import type { RunStatusView } from '../../jobs/status.js';
import type { SubmittedRun } from '../../jobs/submit.js';

export const CLI_USER_AGENT = 'rekey-cli/0.1.0';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

/** A small client of the rekey API, configured from REKEY_URL and REKEY_TOKEN. */
export class RekeyClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  static fromEnv(env: Readonly<Record<string, string | undefined>>): RekeyClient {
    const token = env.REKEY_TOKEN;
    if (token === undefined || token === '') throw new Error('REKEY_TOKEN is not set: export the API token the server was started with');
    return new RekeyClient(env.REKEY_URL ?? 'http://127.0.0.1:8080', token);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          'user-agent': CLI_USER_AGENT,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new Error(`cannot reach the rekey API at ${this.baseUrl}: ${(error as Error).message}; check REKEY_URL and that "rekey serve" runs`, { cause: error });
    }
    const text = await response.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (!response.ok) {
      const problem = (parsed ?? {}) as { code?: string; detail?: string };
      throw new ApiError(response.status, problem.code ?? 'HTTP_ERROR', problem.detail ?? `HTTP ${response.status}`);
    }
    return parsed as T;
  }

  rotate(environment: string, body: { reason: string; mode: 'scheduled' | 'incident'; credentials?: string[]; dryRun?: boolean }): Promise<SubmittedRun & { statusUrl: string }> {
    return this.request('POST', `/v1/environments/${encodeURIComponent(environment)}/rotations`, body);
  }

  status(runId: string): Promise<RunStatusView> {
    return this.request('GET', `/v1/rotations/${encodeURIComponent(runId)}`);
  }

  forceClose(environment: string, credentialId: string, reason: string): Promise<ForceCloseResult> {
    return this.request('POST', `/v1/environments/${encodeURIComponent(environment)}/credentials/${encodeURIComponent(credentialId)}/force-close`, { reason });
  }
}
