import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessKeyStatuses, adminIamClient, createTestUser, deleteTestUser } from '../support/aws.js';
import { startHarness } from '../support/harness.js';
import { ThrottleProxy } from '../support/throttle-proxy.js';

/*
 * An incident that rotates many AWS keys at once, through a proxy that enforces a request rate
 * the way an AWS API does: a token bucket, where an empty bucket gets `Throttling`. With rekey's call
 * gate set below that rate, no request is throttled. With the gate opened wide, the same run is
 * throttled, which shows that the gate, not luck, keeps the first run under the rate.
 */

const USERS = 8;
/** Requests a second the proxy accepts, like an AWS API's token bucket. */
const PROVIDER_RATE = 12;
/** Each IAM provider call sends one or two requests, so 4 calls a second stay under 12 requests. */
const GATED_LIMITS = 'aws-iam-access-key=perSecond:4';
const OPEN_LIMITS = 'aws-iam-access-key=perSecond:1000,concurrency:100';

interface IncidentResult {
  status: string;
  outcomes: string[];
  throttled: number;
  createdKeys: number;
  keysPerUser: number[];
}

async function rotateAll(iam: IAMClient, limits: string): Promise<IncidentResult> {
  const users = await Promise.all(Array.from({ length: USERS }, () => createTestUser(iam, 1)));
  const proxy = await ThrottleProxy.start([], undefined, { perSecond: PROVIDER_RATE });
  const credentials = users.map((user, index) => `
      - id: deployer-${index}
        kind: aws-iam-access-key
        params: { userName: ${user.userName} }
        stores: [{ store: file, path: ci/deployer-${index} }]`).join('');
  const harness = await startHarness({
    inventory: `\nenvironments:\n  ci:\n    credentials:${credentials}\n`,
    env: { REKEY_AWS_ENDPOINT: proxy.url, REKEY_CALL_LIMITS: limits, REKEY_WORKER_CONCURRENCY: String(USERS), REKEY_AWS_VERIFY_INTERVAL_MS: '200' },
  });
  try {
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: 'large incident under a provider rate', mode: 'incident' },
    });
    expect(response.statusCode, response.body).toBe(202);
    const runId = (response.json() as { runId: string }).runId;
    const run = await harness.waitForRun(runId, 120_000);
    const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json() as { credentials: Array<{ outcome: string }> };
    const keysPerUser = await Promise.all(users.map(async (user) => Object.keys(await accessKeyStatuses(iam, user.userName)).length));
    return {
      status: run.status,
      outcomes: status.credentials.map((credential) => credential.outcome),
      throttled: proxy.requests().filter((request) => request.throttled).length,
      createdKeys: proxy.forwardedCount('CreateAccessKey'),
      keysPerUser,
    };
  } finally {
    await harness.close();
    await proxy.close();
    await Promise.all(users.map((user) => deleteTestUser(iam, user.userName).catch(() => undefined)));
  }
}

describe('a large incident against a rate-limited provider', () => {
  let iam: IAMClient;

  beforeAll(() => {
    iam = adminIamClient();
  });

  afterAll(() => {
    iam?.destroy();
  });

  it('stays under the rate with the gate', async () => {
    const result = await rotateAll(iam, GATED_LIMITS);
    expect(result.status).toBe('completed');
    expect(result.outcomes).toEqual(Array.from({ length: USERS }, () => 'rotated'));
    expect(result.throttled).toBe(0);
    expect(result.createdKeys).toBe(USERS);
    expect(result.keysPerUser).toEqual(Array.from({ length: USERS }, () => 1));
  }, 150_000);

  it('is throttled without the gate', async () => {
    const result = await rotateAll(iam, OPEN_LIMITS);
    expect(result.throttled).toBeGreaterThan(0);
  }, 150_000);
});
