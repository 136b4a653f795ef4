import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { verifyAuditFile } from '../../src/audit/index.js';
import { accessKeyStatuses, adminIamClient, adminSecretsClient, callerIdentity, secretVersions } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { startHarness, type Harness } from '../support/harness.js';
import { tryLogin } from '../support/postgres.js';
import { REDIS_ADMIN_URL, tryAuth } from '../support/redis.js';

describe('when an incident run rotates AWS, PostgreSQL and Redis credentials', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let harness: Harness;
  let runId: string;
  let status: { status: string; credentials: Array<Record<string, unknown>> };
  const stored: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam);
    harness = await startHarness({ inventory: environment.inventory });

    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: 'compromised package ran in CI', mode: 'incident' },
    });
    expect(response.statusCode).toBe(202);
    runId = (response.json() as { runId: string }).runId;
    await harness.waitForRun(runId, 90_000);
    status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();

    const store = createFileStore(harness.env);
    for (const path of ['ci/deployer-aws', 'ci/app-db', 'ci/app-cache']) {
      const value = await store.readCurrentValue(path);
      stored[path] = value === null ? {} : (JSON.parse(value.reveal()) as Record<string, string>);
    }
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    await environment?.cleanup();
    iam?.destroy();
  });

  it('completes the run with every credential rotated', () => {
    expect(status.status).toBe('completed');
    const outcomes = Object.fromEntries(status.credentials.map((credential) => [credential.credentialId, credential.outcome]));
    expect(outcomes).toEqual({ 'deployer-aws': 'rotated', 'app-db': 'rotated', 'app-cache': 'rotated' });
  });

  it('reports old and new key ids of the AWS key', () => {
    const aws = status.credentials.find((credential) => credential.credentialId === 'deployer-aws');
    expect(aws?.oldKeyId).toBe(environment.aws.key.accessKeyId);
    expect(aws?.newKeyId).toBe(stored['ci/deployer-aws']?.accessKeyId);
    expect(aws?.confirmed).toBe(true);
  });

  it('rejects the old AWS key and accepts the stored one', async () => {
    expect(await callerIdentity(environment.aws.key)).toEqual({ error: 'InvalidClientTokenId' });
    const fresh = stored['ci/deployer-aws']!;
    const identity = await callerIdentity({ accessKeyId: fresh.accessKeyId!, secretAccessKey: fresh.secretAccessKey! });
    expect(identity.arn).toMatch(new RegExp(`:user/${environment.aws.userName}$`));
    expect(Object.keys(await accessKeyStatuses(iam, environment.aws.userName))).toEqual([fresh.accessKeyId]);
  });

  it('writes the AWS key to Secrets Manager as AWSCURRENT', async () => {
    const secrets = adminSecretsClient();
    const current = await secrets.send(new GetSecretValueCommand({ SecretId: environment.aws.secretId, VersionStage: 'AWSCURRENT' }));
    expect(JSON.parse(current.SecretString ?? '{}')).toEqual(stored['ci/deployer-aws']);
    const labels = Object.values(await secretVersions(secrets, environment.aws.secretId)).flat();
    expect(labels.filter((label) => label === 'AWSCURRENT')).toHaveLength(1);
    expect(labels).not.toContain('AWSPENDING');
    secrets.destroy();
  });

  it('rejects the old PostgreSQL password and accepts the stored one', async () => {
    expect(await tryLogin(environment.postgres.role, environment.postgres.password)).toBe('28P01');
    expect(await tryLogin(environment.postgres.role, stored['ci/app-db']!.password!)).toBe('ok');
  });

  it('rejects the old Redis password and accepts the stored one', async () => {
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, environment.redis.password)).toBe('WRONGPASS');
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, stored['ci/app-cache']!.password!)).toBe('OK');
  });

  it('records an intact audit trail with every step', async () => {
    const verification = await verifyAuditFile(harness.env.REKEY_AUDIT_FILE!);
    expect(verification.ok).toBe(true);
    const { readFileSync } = await import('node:fs');
    const records = readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const succeeded = (credentialId: string): string[] => records
      .filter((record) => record.credentialId === credentialId && record.outcome === 'succeeded')
      .map((record) => String(record.step));
    expect(succeeded('deployer-aws')).toEqual(['inspect', 'inspect', 'mint', 'stage', 'verify', 'promote', 'revoke', 'confirm']);
    expect(succeeded('app-db')).toEqual(['inspect', 'inspect', 'generate', 'stage', 'apply', 'verify', 'promote', 'revoke', 'confirm']);
    expect(records.filter((record) => record.step === 'run').map((record) => record.outcome)).toEqual(['requested', 'succeeded']);
    expect(new Set(records.map((record) => record.trigger))).toEqual(new Set(['api']));
  });
});
