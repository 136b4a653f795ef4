import { readFileSync } from 'node:fs';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminIamClient, accessKeyStatuses, callerIdentity } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { startHarness, type Harness } from '../support/harness.js';
import { REDIS_ADMIN_URL, tryAuth } from '../support/redis.js';

describe('when an operator asks to revoke first', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let harness: Harness;
  let records: Array<Record<string, unknown>>;
  let status: { status: string; credentials: Array<Record<string, unknown>> };

  beforeAll(async () => {
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam);
    harness = await startHarness({ inventory: environment.inventory });
    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: 'key posted publicly', mode: 'incident', revokeFirst: true, credentials: ['deployer-aws', 'app-cache'] },
    });
    const { runId } = response.json() as { runId: string };
    await harness.waitForRun(runId, 90_000);
    status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
    records = readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    await environment?.cleanup();
    iam?.destroy();
  });

  function succeededSteps(credentialId: string): string[] {
    return records.filter((record) => record.credentialId === credentialId && record.outcome === 'succeeded').map((record) => String(record.step));
  }

  it('rotates both credentials', () => {
    expect(status.status).toBe('completed');
    expect(status.credentials.map((credential) => credential.outcome)).toEqual(['rotated', 'rotated']);
  });

  it('disables the AWS key before minting its replacement', () => {
    expect(succeededSteps('deployer-aws')).toEqual(['inspect', 'inspect', 'disable', 'mint', 'stage', 'verify', 'promote', 'revoke', 'confirm']);
  });

  it('removes the Redis password before applying the new one', () => {
    expect(succeededSteps('app-cache')).toEqual(['inspect', 'inspect', 'revoke', 'generate', 'stage', 'apply', 'verify', 'promote']);
  });

  it('records who asked for it', () => {
    const early = (credentialId: string): string[][] => records
      .filter((record) => record.credentialId === credentialId && (record.detail as Record<string, unknown> | undefined)?.revokeFirst === true)
      .map((record) => [String(record.step), String(record.outcome), String(record.actor)]);
    expect(early('deployer-aws')).toEqual([['disable', 'started', 'bootstrap-admin'], ['disable', 'succeeded', 'bootstrap-admin']]);
    expect(early('app-cache')).toEqual([['revoke', 'started', 'bootstrap-admin'], ['revoke', 'succeeded', 'bootstrap-admin']]);
    const requested = records.find((record) => record.step === 'run' && record.outcome === 'requested');
    expect((requested?.detail as Record<string, unknown>).revokeFirst).toBe(true);
  });

  it('leaves the old credentials rejected and the new ones working', async () => {
    expect(await callerIdentity(environment.aws.key)).toEqual({ error: 'InvalidClientTokenId' });
    expect(Object.keys(await accessKeyStatuses(iam, environment.aws.userName))).toHaveLength(1);
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, environment.redis.password)).toBe('WRONGPASS');
  });
});
