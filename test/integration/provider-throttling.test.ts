import { readFileSync } from 'node:fs';
import { IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { GetSecretValueCommand, ListSecretsCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { toRekeyError } from '../../providers/aws-shared.js';
import { verifyAuditFile } from '../../src/audit/index.js';
import {
  accessKeyStatuses, adminIamClient, adminSecretsClient, callerIdentity, createTestUser, deleteTestUser, secretVersions, uniqueName,
} from '../support/aws.js';
import { startHarness, type Harness } from '../support/harness.js';
import { MOTO_REGION, motoAdmin, type AwsKeyPair } from '../support/moto.js';
import { ThrottleProxy, type ProxiedRequest, type ThrottleResponse, type ThrottleRule } from '../support/throttle-proxy.js';

/*
 * Puts an HTTP proxy between rekey and moto that responds to selected AWS actions with AWS's
 * throttling responses before it forwards them. The SDK retries a throttled call up to three
 * attempts in all. Throttling that outlasts those attempts must be retried by rekey itself, by the
 * step's retry loop or by a new attempt of the job, without a second key or a second revoke.
 */

const RUN_TIMEOUT_MS = 90_000;
const CASE_TIMEOUT_MS = 120_000;
/** Attempts of one SDK call: the SDK's default for standard retries (@smithy/core 3.x). */
const SDK_ATTEMPTS = 3;

/** The requests of one SDK call, which share the SDK's invocation id. */
interface SdkCall {
  invocationId: string | null;
  requests: ProxiedRequest[];
}

/** Groups requests into SDK calls, in order of each call's first request. */
function sdkCalls(requests: readonly ProxiedRequest[]): SdkCall[] {
  const calls: SdkCall[] = [];
  for (const request of requests) {
    const call = calls.find((candidate) => candidate.invocationId !== null && candidate.invocationId === request.invocationId);
    if (call === undefined) calls.push({ invocationId: request.invocationId, requests: [request] });
    else call.requests.push(request);
  }
  return calls;
}

/** Returns the pause before each SDK call after the first: from the previous call's last request to its own first one. */
function pausesBetweenCalls(calls: readonly SdkCall[]): number[] {
  return calls.slice(1).map((call, index) => call.requests[0]!.at - calls[index]!.requests.at(-1)!.at);
}

function outcomes(calls: readonly SdkCall[]): string[][] {
  return calls.map((call) => call.requests.map((request) => (request.throttled ? 'throttled' : 'forwarded')));
}

function sdkAttempts(calls: readonly SdkCall[]): Array<Array<number | null>> {
  return calls.map((call) => call.requests.map((request) => request.sdkAttempt));
}

interface CredentialStatus {
  credentialId: string;
  rotationId: string;
  outcome: string;
  attempts: number;
  oldKeyId: string | null;
  newKeyId: string | null;
  error: unknown;
}

interface ThrottledRotation {
  proxy: ThrottleProxy;
  harness: Harness;
  userName: string;
  oldKey: AwsKeyPair;
  secretId: string;
  runStatus: string;
  credential: CredentialStatus;
  /** The file store's current value after the run. */
  stored: Record<string, string>;
  auditText: string;
  close(): Promise<void>;
}

/**
 * Rotates the access key of a new IAM user, with one key, through a proxy that throttles per
 * `rules`. The replacement goes to the file store and to Secrets Manager.
 */
async function rotateThroughProxy(iam: IAMClient, rules: ThrottleRule[], mode: 'incident' | 'scheduled' = 'incident'): Promise<ThrottledRotation> {
  const { userName, keys } = await createTestUser(iam, 1);
  const secretId = uniqueName('rekey-test/throttled');
  const proxy = await ThrottleProxy.start(rules);
  const grace = mode === 'scheduled' ? '\n        gracePeriod: 1s' : '';
  const inventory = `
environments:
  ci:
    credentials:
      - id: deployer-aws
        kind: aws-iam-access-key
        params: { userName: ${userName} }${grace}
        stores:
          - store: file
            path: ci/deployer-aws
          - store: aws-secrets-manager
            secretId: ${secretId}
`;
  const harness = await startHarness({ inventory, env: { REKEY_AWS_ENDPOINT: proxy.url } });
  const close = async (): Promise<void> => {
    await harness.close();
    await proxy.close();
    await deleteTestUser(iam, userName).catch(() => undefined);
  };

  try {
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: 'provider throttling test', mode },
    });
    expect(response.statusCode, response.body).toBe(202);
    const runId = (response.json() as { runId: string }).runId;
    const run = await harness.waitForRun(runId, RUN_TIMEOUT_MS);
    const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json() as { credentials: CredentialStatus[] };

    const store = createFileStore(harness.env);
    const value = await store.readCurrentValue('ci/deployer-aws');
    await store.close();
    return {
      proxy, harness, userName, oldKey: keys[0]!, secretId,
      runStatus: run.status,
      credential: status.credentials[0]!,
      stored: value === null ? {} : (JSON.parse(value.reveal()) as Record<string, string>),
      auditText: '',
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Stops the worker, so that every audit record is written, then reads and verifies the trail. */
async function finishAudit(rotation: ThrottledRotation): Promise<{ ok: boolean }> {
  await rotation.harness.worker?.close();
  const path = rotation.harness.env.REKEY_AUDIT_FILE ?? '';
  rotation.auditText = readFileSync(path, 'utf8');
  return verifyAuditFile(path);
}

/** Reads every key under the harness's Redis prefix, with its content, as one text. */
async function redisContent(harness: Harness): Promise<string> {
  const redis = harness.runtime.redis;
  const keys = await redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`);
  const parts = [...keys];
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === 'string') parts.push((await redis.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
    else if (type === 'list') parts.push(...(await redis.lrange(key, 0, -1)));
    else if (type === 'set') parts.push(...(await redis.smembers(key)));
    else if (type === 'zset') parts.push(...(await redis.zrange(key, 0, -1)));
    else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
  }
  return parts.join('\n');
}

/** Returns `[step, error code]` of each audit record of the rotation with the given outcome. */
function auditedErrors(rotation: ThrottledRotation, outcome: string): Array<[unknown, unknown]> {
  return rotation.auditText.trim().split('\n')
    .map((line) => JSON.parse(line) as { step?: unknown; outcome?: unknown; error?: { code?: unknown } })
    .filter((record) => record.outcome === outcome)
    .map((record) => [record.step, record.error?.code]);
}

/** Waits until IAM no longer lists `keyId` for the user, for a revoke that runs after a grace period. */
async function waitForKeyDeleted(iam: IAMClient, userName: string, keyId: string): Promise<void> {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  while (Object.keys(await accessKeyStatuses(iam, userName)).includes(keyId)) {
    if (Date.now() > deadline) throw new Error(`access key ${keyId} of ${userName} still exists after ${RUN_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Checks what every throttled rotation must end with: one working replacement, current everywhere, no secret in logs or audit. */
async function expectOneWorkingReplacement(iam: IAMClient, rotation: ThrottledRotation): Promise<void> {
  const newKeyId = rotation.credential.newKeyId ?? '';
  expect(rotation.runStatus, JSON.stringify(rotation.credential)).toBe('completed');
  expect(rotation.credential.oldKeyId, 'old key id').toBe(rotation.oldKey.accessKeyId);
  expect(rotation.stored.accessKeyId, 'file store').toBe(newKeyId);
  expect(await accessKeyStatuses(iam, rotation.userName), 'IAM keys of the user').toEqual({ [newKeyId]: 'Active' });

  const newKey = { accessKeyId: newKeyId, secretAccessKey: rotation.stored.secretAccessKey ?? '' };
  expect((await callerIdentity(newKey)).arn, 'STS with the new key').toMatch(new RegExp(`:user/${rotation.userName}$`));
  expect(await callerIdentity(rotation.oldKey), 'STS with the old key').toEqual({ error: 'InvalidClientTokenId' });

  const secrets = adminSecretsClient();
  try {
    const current = await secrets.send(new GetSecretValueCommand({ SecretId: rotation.secretId, VersionStage: 'AWSCURRENT' }));
    expect(JSON.parse(current.SecretString ?? '{}'), 'Secrets Manager AWSCURRENT').toEqual(rotation.stored);
    expect(Object.values(await secretVersions(secrets, rotation.secretId)).flat(), 'Secrets Manager labels').not.toContain('AWSPENDING');
  } finally {
    secrets.destroy();
  }

  expect(await finishAudit(rotation), 'audit chain').toMatchObject({ ok: true });
  const secret = newKey.secretAccessKey;
  expect(secret.length, 'stored secret').toBeGreaterThan(0);
  expect(rotation.harness.logs.join('').includes(secret), 'logs contain the new secret').toBe(false);
  expect(rotation.auditText.includes(secret), 'audit contains the new secret').toBe(false);
  const redis = await redisContent(rotation.harness);
  expect(redis, 'Redis content').toContain(rotation.credential.rotationId);
  expect(redis.includes(secret), 'Redis contains the new secret').toBe(false);
}

/** Checks that the proxy forwarded exactly one key creation and one deletion, the revoke of the old key. */
function expectOneMintAndOneRevoke(proxy: ThrottleProxy): void {
  expect(proxy.forwardedCount('CreateAccessKey'), 'CreateAccessKey calls that reached moto').toBe(1);
  expect(proxy.forwardedCount('DeleteAccessKey'), 'DeleteAccessKey calls that reached moto').toBe(1);
}

describe('throttling responses', () => {
  const RESPONSES: ThrottleResponse[] = ['throttling', 'slow-down', 'too-many-requests'];

  it.each(RESPONSES)('map to THROTTLED (%s)', async (response) => {
    const proxy = await ThrottleProxy.start([
      { action: 'ListAccessKeys', count: 1, response },
      { action: 'GetCallerIdentity', count: 1, response },
      { action: 'ListSecrets', count: 1, response },
    ]);
    const config = { endpoint: proxy.url, region: MOTO_REGION, credentials: motoAdmin(), maxAttempts: 1 };
    const iam = new IAMClient(config);
    const sts = new STSClient(config);
    const secrets = new SecretsManagerClient(config);
    const codes: Record<string, unknown> = {};
    try {
      await iam.send(new ListAccessKeysCommand({})).catch((error: unknown) => { codes.iam = toRekeyError(error, 'iam:ListAccessKeys', 'test').code; });
      await sts.send(new GetCallerIdentityCommand({})).catch((error: unknown) => { codes.sts = toRekeyError(error, 'sts:GetCallerIdentity', 'test').code; });
      await secrets.send(new ListSecretsCommand({})).catch((error: unknown) => { codes.secrets = toRekeyError(error, 'secretsmanager:ListSecrets', 'test').code; });
    } finally {
      iam.destroy();
      sts.destroy();
      secrets.destroy();
      await proxy.close();
    }
    expect(codes).toEqual({ iam: 'THROTTLED', sts: 'THROTTLED', secrets: 'THROTTLED' });
  });
});

describe('when AWS throttles a rotation', () => {
  let iam: IAMClient;

  beforeAll(() => {
    iam = adminIamClient();
  });

  afterAll(() => {
    iam?.destroy();
  });

  it('retries a throttled preflight', async () => {
    // The preflight's inspect lists the user's keys. One SDK call of throttled attempts fails the
    // preflight, whose job then runs again.
    const rotation = await rotateThroughProxy(iam, [{ action: 'ListAccessKeys', count: SDK_ATTEMPTS + 1 }]);
    try {
      await expectOneWorkingReplacement(iam, rotation);
      expectOneMintAndOneRevoke(rotation.proxy);
      expect(auditedErrors(rotation, 'failed'), 'failed records').toEqual([['inspect', 'THROTTLED']]);

      const calls = sdkCalls(rotation.proxy.requests('ListAccessKeys'));
      expect(outcomes(calls).slice(0, 2)).toEqual([['throttled', 'throttled', 'throttled'], ['throttled', 'forwarded']]);
      expect(sdkAttempts(calls).slice(0, 2)).toEqual([[1, 2, 3], [1, 2]]);
    } finally {
      await rotation.close();
    }
  }, CASE_TIMEOUT_MS);

  it('retries a throttled mint as a new job attempt', async () => {
    // Two SDK calls of three throttled attempts each fail the mint step twice. The third call's
    // second attempt reaches moto.
    const rotation = await rotateThroughProxy(iam, [{ action: 'CreateAccessKey', count: 2 * SDK_ATTEMPTS + 1 }]);
    try {
      await expectOneWorkingReplacement(iam, rotation);
      expectOneMintAndOneRevoke(rotation.proxy);
      expect(rotation.credential.attempts, 'job attempts').toBe(3);
      expect(auditedErrors(rotation, 'retrying'), 'retrying records').toEqual([['mint', 'THROTTLED'], ['mint', 'THROTTLED']]);

      const calls = sdkCalls(rotation.proxy.requests('CreateAccessKey'));
      expect(outcomes(calls)).toEqual([['throttled', 'throttled', 'throttled'], ['throttled', 'throttled', 'throttled'], ['throttled', 'forwarded']]);
      expect(sdkAttempts(calls)).toEqual([[1, 2, 3], [1, 2, 3], [1, 2]]);
      const [first, second] = pausesBetweenCalls(calls);
      expect(second, `pauses between the job attempts' calls: ${first}, ${second} ms`).toBeGreaterThan(first!);
    } finally {
      await rotation.close();
    }
  }, CASE_TIMEOUT_MS);

  it('retries a throttled stage within the step', async () => {
    const rotation = await rotateThroughProxy(iam, [{ action: 'PutSecretValue', count: 3 * SDK_ATTEMPTS }]);
    try {
      await expectOneWorkingReplacement(iam, rotation);
      expectOneMintAndOneRevoke(rotation.proxy);
      expect(rotation.credential.attempts, 'job attempts').toBe(1);
      const retries = rotation.harness.logs
        .map((line) => JSON.parse(line) as { msg?: string; error?: { code?: string } })
        .filter((line) => line.msg === 'store write failed; retrying')
        .map((line) => line.error?.code);
      expect(retries, 'logged store write retries').toEqual(['THROTTLED', 'THROTTLED', 'THROTTLED']);

      const calls = sdkCalls(rotation.proxy.requests('PutSecretValue'));
      expect(outcomes(calls)).toEqual([
        ['throttled', 'throttled', 'throttled'], ['throttled', 'throttled', 'throttled'], ['throttled', 'throttled', 'throttled'], ['forwarded'],
      ]);
      expect(sdkAttempts(calls)).toEqual([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1]]);
      const pauses = pausesBetweenCalls(calls);
      expect(pauses[1], `pauses between the step's calls: ${pauses.join(', ')} ms`).toBeGreaterThan(pauses[0]!);
      expect(pauses[2], `pauses between the step's calls: ${pauses.join(', ')} ms`).toBeGreaterThan(pauses[1]!);
    } finally {
      await rotation.close();
    }
  }, CASE_TIMEOUT_MS);

  it('retries a throttled revoke inline', async () => {
    const rotation = await rotateThroughProxy(iam, [{ action: 'DeleteAccessKey', count: 2 * SDK_ATTEMPTS + 1, response: 'too-many-requests' }]);
    try {
      await expectOneWorkingReplacement(iam, rotation);
      expectOneMintAndOneRevoke(rotation.proxy);
      expect(rotation.credential.outcome, 'outcome').toBe('rotated');
      expect(auditedErrors(rotation, 'failed'), 'failed records').toEqual([['revoke', 'THROTTLED'], ['revoke', 'THROTTLED']]);

      const calls = sdkCalls(rotation.proxy.requests('DeleteAccessKey'));
      expect(outcomes(calls)).toEqual([['throttled', 'throttled', 'throttled'], ['throttled', 'throttled', 'throttled'], ['throttled', 'forwarded']]);
      expect(sdkAttempts(calls)).toEqual([[1, 2, 3], [1, 2, 3], [1, 2]]);
      const [first, second] = pausesBetweenCalls(calls);
      expect(second, `pauses between the revoke attempts' calls: ${first}, ${second} ms`).toBeGreaterThan(first!);
    } finally {
      await rotation.close();
    }
  }, CASE_TIMEOUT_MS);

  it('retries a throttled disable as a new job attempt', async () => {
    const rotation = await rotateThroughProxy(iam, [{ action: 'UpdateAccessKey', count: 2 * SDK_ATTEMPTS + 1, response: 'slow-down' }], 'scheduled');
    try {
      expect(rotation.credential.outcome, JSON.stringify(rotation.credential)).toBe('revocation-scheduled');
      await waitForKeyDeleted(iam, rotation.userName, rotation.oldKey.accessKeyId);
      await expectOneWorkingReplacement(iam, rotation);
      expectOneMintAndOneRevoke(rotation.proxy);
      expect(rotation.proxy.forwardedCount('UpdateAccessKey'), 'UpdateAccessKey calls that reached moto').toBe(1);
      expect(rotation.credential.attempts, 'job attempts').toBe(3);
      expect(auditedErrors(rotation, 'retrying'), 'retrying records').toEqual([['disable', 'THROTTLED'], ['disable', 'THROTTLED']]);

      const calls = sdkCalls(rotation.proxy.requests('UpdateAccessKey'));
      expect(outcomes(calls)).toEqual([['throttled', 'throttled', 'throttled'], ['throttled', 'throttled', 'throttled'], ['throttled', 'forwarded']]);
      const [first, second] = pausesBetweenCalls(calls);
      expect(second, `pauses between the job attempts' calls: ${first}, ${second} ms`).toBeGreaterThan(first!);
    } finally {
      await rotation.close();
    }
  }, CASE_TIMEOUT_MS);

  // NOTE: fails until the engine keeps a replacement whose verify failed with a retryable error.
  // pollUntilStable polls again only on NOT_READY, so one throttled GetCallerIdentity (verify
  // makes one SDK attempt per poll) ends verify. The engine then discards the new key, and the
  // job's next attempt mints another one: three keys are created for two throttled calls.
  it('keeps the replacement when verify is throttled', async () => {
    const rotation = await rotateThroughProxy(iam, [{ action: 'GetCallerIdentity', count: 2 }]);
    try {
      await expectOneWorkingReplacement(iam, rotation);
      expectOneMintAndOneRevoke(rotation.proxy);
      expect(rotation.proxy.requests('GetCallerIdentity').filter((request) => request.throttled), 'throttled verify calls').toHaveLength(2);
    } finally {
      await rotation.close();
    }
  }, CASE_TIMEOUT_MS);
});
