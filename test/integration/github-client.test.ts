import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { fetchSecretScanningAlert, GITHUB_API_VERSION, type FetchSecretScanningAlertOptions } from '../../src/webhooks/github-client.js';
import { FakeGithubApi } from '../fakes/github.js';

const TOKEN = 'ghp-test-token-8c41d2b7a9e05f13';
const FORBIDDEN_TOKEN = 'ghp-test-token-without-permission';
const LEAKED_SECRET = 'rekey-canary-7f3a91c2e5';

let github: FakeGithubApi;

beforeEach(async () => {
  github = await FakeGithubApi.start({ tokens: [TOKEN], forbiddenTokens: [FORBIDDEN_TOKEN] });
  github.addAlert({ owner: 'acme-corp', repo: 'payments-api', number: 42, secret: LEAKED_SECRET, secretType: 'aws_secret_access_key', createdAt: '2024-05-01T12:00:00Z' });
});

afterEach(async () => {
  await github.close();
});

function options(overrides: Partial<FetchSecretScanningAlertOptions> = {}): FetchSecretScanningAlertOptions {
  return { baseUrl: github.baseUrl, token: TOKEN, owner: 'acme-corp', repo: 'payments-api', alertNumber: 42, timeoutMs: 5_000, ...overrides };
}

/** Runs the fetch and returns the RekeyError it rejects with, failing the test otherwise. */
async function captureError(request: Promise<unknown>): Promise<RekeyError> {
  const error = await request.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(RekeyError);
  const rekeyError = error as RekeyError;
  expect(rekeyError.message).not.toContain(TOKEN);
  expect(rekeyError.message).not.toContain(LEAKED_SECRET);
  return rekeyError;
}

/** Returns a loopback port that nothing listens on: one the system just handed out and that was closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('fetchSecretScanningAlert', () => {
  it('returns the alert with the secret wrapped', async () => {
    const alert = await fetchSecretScanningAlert(options());
    expect(alert.secretType).toBe('aws_secret_access_key');
    expect(alert.state).toBe('open');
    expect(alert.createdAt).toBe('2024-05-01T12:00:00Z');
    expect(alert.secret).toBeInstanceOf(SecretValue);
    expect(alert.secret?.reveal()).toBe(LEAKED_SECRET);
    expect(JSON.stringify(alert)).not.toContain(LEAKED_SECRET);
  });

  it('sends the documented request headers', async () => {
    await fetchSecretScanningAlert(options());
    expect(github.requestCount).toBe(1);
    const [request] = github.requests;
    expect(request?.method).toBe('GET');
    expect(request?.url).toBe('/repos/acme-corp/payments-api/secret-scanning/alerts/42');
    expect(request?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(request?.headers.accept).toBe('application/vnd.github+json');
    expect(request?.headers['x-github-api-version']).toBe(GITHUB_API_VERSION);
    expect(request?.headers['x-github-api-version']).toBe('2022-11-28');
    expect(request?.headers['user-agent']).toBe('rekey/0.1.0');
  });

  it('accepts a token wrapped in a SecretValue', async () => {
    const alert = await fetchSecretScanningAlert(options({ token: SecretValue.fromString(TOKEN) }));
    expect(alert.secret?.reveal()).toBe(LEAKED_SECRET);
    expect(github.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('returns a null secret when GitHub omits it', async () => {
    github.addAlert({ owner: 'acme-corp', repo: 'payments-api', number: 7, secret: null, state: 'resolved' });
    const alert = await fetchSecretScanningAlert(options({ alertNumber: 7 }));
    expect(alert).toEqual({ secret: null, secretType: 'github_personal_access_token', state: 'resolved', createdAt: '2024-05-01T12:00:00Z' });
  });

  it('keeps the path of a GitHub Enterprise Server base URL', async () => {
    const enterprise = await FakeGithubApi.start({ tokens: [TOKEN], pathPrefix: '/api/v3' });
    try {
      enterprise.addAlert({ owner: 'acme-corp', repo: 'payments-api', number: 3, secret: LEAKED_SECRET });
      const alert = await fetchSecretScanningAlert(options({ baseUrl: `${enterprise.baseUrl}/`, alertNumber: 3 }));
      expect(alert.secret?.reveal()).toBe(LEAKED_SECRET);
      expect(enterprise.requests[0]?.url).toBe('/api/v3/repos/acme-corp/payments-api/secret-scanning/alerts/3');
    } finally {
      await enterprise.close();
    }
  });

  describe('when GitHub rejects the request', () => {
    it('maps an unknown alert to TARGET_NOT_FOUND', async () => {
      const error = await captureError(fetchSecretScanningAlert(options({ alertNumber: 9999 })));
      expect(error.code).toBe('TARGET_NOT_FOUND');
      expect(error.retryable).toBe(false);
      expect(error.message).toBe(
        'GitHub found no secret scanning alert 9999 of acme-corp/payments-api (404 Not Found); GitHub also returns 404 when the repository is public or has secret scanning disabled',
      );
    });

    it('maps a wrong token to PERMISSION_DENIED', async () => {
      const error = await captureError(fetchSecretScanningAlert(options({ token: 'ghp-wrong-token-0000' })));
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toBe(
        'GitHub rejected the token while reading secret scanning alert 42 of acme-corp/payments-api (401 Bad credentials): check that the token is valid and not expired',
      );
      expect(error.message).not.toContain('ghp-wrong-token-0000');
    });

    it('maps a token without permission to PERMISSION_DENIED', async () => {
      const error = await captureError(fetchSecretScanningAlert(options({ token: FORBIDDEN_TOKEN })));
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toContain('secret scanning alert 42 of acme-corp/payments-api (403 Resource not accessible by personal access token)');
      expect(error.message).not.toContain(FORBIDDEN_TOKEN);
    });

    it('maps 503 to a retryable UNAVAILABLE', async () => {
      github.injectFailure({ status: 503, count: 1 });
      const error = await captureError(fetchSecretScanningAlert(options()));
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe('GitHub API failed while reading secret scanning alert 42 of acme-corp/payments-api (503 Service unavailable)');
      expect(github.requestCount).toBe(1);
    });

    it('maps 429 to a retryable UNAVAILABLE', async () => {
      github.injectFailure({ status: 429, count: 1 });
      const error = await captureError(fetchSecretScanningAlert(options()));
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(
        'GitHub API rate limit reached while reading secret scanning alert 42 of acme-corp/payments-api (429 You have exceeded a secondary rate limit.), retry after 60 s',
      );
    });

    it('maps a 403 rate limit to UNAVAILABLE', async () => {
      github.injectFailure({ status: 403, count: 1 });
      const error = await captureError(fetchSecretScanningAlert(options()));
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.message).toBe('GitHub API rate limit reached while reading secret scanning alert 42 of acme-corp/payments-api (403 API rate limit exceeded for user ID 1.)');
    });

    it('succeeds once an injected failure is spent', async () => {
      github.injectFailure({ status: 503, count: 1 });
      await captureError(fetchSecretScanningAlert(options()));
      const alert = await fetchSecretScanningAlert(options());
      expect(alert.secret?.reveal()).toBe(LEAKED_SECRET);
      expect(github.requestCount).toBe(2);
    });
  });

  describe('when GitHub does not answer', () => {
    it('maps a slow response to TIMEOUT', async () => {
      github.setDelay(2_000);
      const started = Date.now();
      const error = await captureError(fetchSecretScanningAlert(options({ timeoutMs: 200 })));
      expect(error.code).toBe('TIMEOUT');
      expect(error.retryable).toBe(true);
      expect(error.message).toBe('GitHub API request for secret scanning alert 42 of acme-corp/payments-api timed out after 200 ms');
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(github.requestCount).toBe(1);
    });

    it('maps a refused connection to UNAVAILABLE', async () => {
      const port = await closedPort();
      const error = await captureError(fetchSecretScanningAlert(options({ baseUrl: `http://127.0.0.1:${port}` })));
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.retryable).toBe(true);
      expect(error.message).toMatch(/^GitHub API request for secret scanning alert 42 of acme-corp\/payments-api failed: Error: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    });

    it('rejects with the reason of an aborted signal', async () => {
      github.setDelay(2_000);
      const controller = new AbortController();
      const reason = new Error('worker shutting down');
      setTimeout(() => controller.abort(reason), 50);
      await expect(fetchSecretScanningAlert(options({ signal: controller.signal }))).rejects.toBe(reason);
    });
  });

  describe('when the options are invalid', () => {
    const cases: Array<{ name: string; overrides: Partial<FetchSecretScanningAlertOptions>; message: string }> = [
      { name: 'zero alert number', overrides: { alertNumber: 0 }, message: 'GitHub alert number 0 is invalid: expected a positive integer' },
      { name: 'fractional alert number', overrides: { alertNumber: 4.2 }, message: 'GitHub alert number 4.2 is invalid: expected a positive integer' },
      { name: 'empty owner', overrides: { owner: '' }, message: 'GitHub repository "/payments-api" is invalid: owner and name must be non-empty and contain only letters, digits, ".", "-" and "_"' },
      { name: 'dot-dot repository', overrides: { repo: '..' }, message: 'GitHub repository "acme-corp/.." is invalid: owner and name must be non-empty and contain only letters, digits, ".", "-" and "_"' },
      { name: 'repository with a slash', overrides: { repo: '../../user' }, message: 'GitHub repository "acme-corp/../../user" is invalid: owner and name must be non-empty and contain only letters, digits, ".", "-" and "_"' },
      { name: 'non-http base URL', overrides: { baseUrl: 'file:///etc/passwd' }, message: 'GitHub API base URL "file:///etc/passwd" is not an http(s) URL: expected one such as https://api.github.com' },
      { name: 'zero timeout', overrides: { timeoutMs: 0 }, message: 'timeout 0 ms is invalid: expected a positive number of milliseconds' },
    ];

    for (const testCase of cases) {
      it(`rejects ${testCase.name} without a request`, async () => {
        const error = await captureError(fetchSecretScanningAlert(options(testCase.overrides)));
        expect(error.code).toBe('INVALID_PARAMETERS');
        expect(error.message).toBe(testCase.message);
        expect(github.requestCount).toBe(0);
      });
    }
  });
});
