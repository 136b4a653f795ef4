import { readFileSync } from 'node:fs';
import type { IAMClient } from '@aws-sdk/client-iam';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from '../../jobs/worker.js';
import { createFileStore } from '../../providers/file-store/index.js';
import { verifyAuditFile, type AuditSink } from '../../src/audit/index.js';
import { createAuditSinkFor } from '../../src/audit/select.js';
import { accessKeyStatuses, adminIamClient, adminSecretsClient, callerIdentity, secretVersions } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { startHarness, type Harness } from '../support/harness.js';
import { spawnWorkerChild, type WorkerChild } from '../support/worker-child.js';

/*
 * A worker that stops responding without dying: its event loop is blocked past its lock, so it
 * renews nothing and BullMQ gives the job to the first worker whose stalled check finds it. In
 * the first case a second worker takes it. In the second, the stalled worker takes its own job
 * back when it wakes. Either way the rotation must mint once, write one store version and revoke once.
 */

const WORKER_ENV = {
  REKEY_WORKER_LOCK_MS: '2000',
  REKEY_WORKER_STALLED_INTERVAL_MS: '1000',
  REKEY_AWS_VERIFY_WINDOW_MS: '30000',
};
/** Longer than the lock and two stalled checks, so the job is taken while the worker sleeps. */
const STALL_MS = 12_000;
const CASE_TIMEOUT_MS = 90_000;

type AuditRecord = Record<string, unknown>;

function rotationRecords(path: string, rotationId: string): AuditRecord[] {
  return readFileSync(path, 'utf8').trim().split('\n')
    .map((line) => JSON.parse(line) as AuditRecord)
    .filter((record) => record.rotationId === rotationId);
}

function count(records: AuditRecord[], step: string, outcome: string): number {
  return records.filter((record) => record.step === step && record.outcome === outcome).length;
}

interface Submitted {
  runId: string;
  rotationId: string;
}

async function submit(harness: Harness, reason: string): Promise<Submitted> {
  const response = await harness.app.inject({
    method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
    payload: { reason, mode: 'incident', credentials: ['deployer-aws'] },
  });
  expect(response.statusCode, response.body).toBe(202);
  const body = response.json() as { runId: string; credentials: Array<{ rotationId: string }> };
  return { runId: body.runId, rotationId: body.credentials[0]?.rotationId ?? '' };
}

/** Checks one working key, the old one gone, every store current and one audited record of each step. */
async function expectSingleRotation(iam: IAMClient, environment: MixedEnvironment, harness: Harness, submitted: Submitted, records: AuditRecord[]): Promise<void> {
  const run = await harness.runtime.records.getRun(submitted.runId);
  expect(run?.status).toBe('completed');

  const store = createFileStore(harness.env);
  const value = await store.readCurrentValue('ci/deployer-aws');
  await store.close();
  const stored = JSON.parse(value?.reveal() ?? '{}') as { accessKeyId: string; secretAccessKey: string };
  expect(await accessKeyStatuses(iam, environment.aws.userName), 'IAM keys of the user').toEqual({ [stored.accessKeyId]: 'Active' });
  expect((await callerIdentity({ ...stored })).arn, 'STS with the stored key').toMatch(new RegExp(`:user/${environment.aws.userName}$`));
  expect(await callerIdentity(environment.aws.key), 'STS with the old key').toEqual({ error: 'InvalidClientTokenId' });

  const secrets = adminSecretsClient();
  try {
    const current = await secrets.send(new GetSecretValueCommand({ SecretId: environment.aws.secretId, VersionStage: 'AWSCURRENT' }));
    expect(JSON.parse(current.SecretString ?? '{}'), 'Secrets Manager AWSCURRENT').toEqual(stored);
    // The version the test created, and exactly one written by the rotation.
    const versions = Object.values(await secretVersions(secrets, environment.aws.secretId))
      .map((labels) => [...labels].sort())
      .sort((left, right) => (left[0] ?? '').localeCompare(right[0] ?? ''));
    expect(versions, 'Secrets Manager versions').toEqual([['AWSCURRENT', `rekey-key-id:${stored.accessKeyId}`], ['AWSPREVIOUS']]);
  } finally {
    secrets.destroy();
  }

  expect({
    minted: count(records, 'mint', 'succeeded'),
    staged: count(records, 'stage', 'succeeded'),
    promoted: count(records, 'promote', 'succeeded'),
    revoked: count(records, 'revoke', 'succeeded'),
  }, 'audited steps').toEqual({ minted: 1, staged: 1, promoted: 1, revoked: 1 });
  expect(records.find((record) => record.step === 'stage' && record.outcome === 'succeeded')?.newKeyId, 'staged key id').toBe(stored.accessKeyId);
}

describe('a worker that stalls past its lock in the middle of a rotation', () => {
  let iam: IAMClient;

  beforeAll(() => {
    iam = adminIamClient();
  });

  afterAll(() => {
    iam?.destroy();
  });

  it('second worker takes over', async () => {
    const environment = await createMixedEnvironment(iam);
    let harness: Harness | undefined;
    let child: WorkerChild | undefined;
    let takeover: { worker: Worker; audit: AuditSink } | undefined;
    try {
      harness = await startHarness({ inventory: environment.inventory, worker: false, env: { ...WORKER_ENV, REKEY_AWS_VERIFY_INTERVAL_MS: '200' } });
      child = spawnWorkerChild(harness.env, 'staged', { stallMs: STALL_MS });
      const submitted = await submit(harness, 'stalled worker, second worker takes over');

      // The second worker starts only once the first has the job and sleeps, so it cannot
      // take the job first: it can only take it over.
      await child.waitForOutput('kill-worker: stalling', 30_000);
      const audit = createAuditSinkFor(harness.env);
      takeover = { worker: startWorker({ ...harness.runtime, audit }), audit };
      await harness.waitForRun(submitted.runId, 45_000);

      // The stalled worker wakes, finds the fence moved on, and stops before its next step.
      await child.waitForOutput('lost the rotation to another worker', 30_000);
      child.stop();
      await takeover.worker.close();
      await takeover.audit.close();

      const auditFile = harness.env.REKEY_AUDIT_FILE ?? '';
      expect((await verifyAuditFile(auditFile)).ok).toBe(true);
      const records = rotationRecords(auditFile, submitted.rotationId);
      expect(records.filter((record) => record.outcome === 'resumed').map((record) => record.step), 'resumed records').toEqual(['stage', 'stage']);
      // Nothing the stalled worker did after it woke reached the audit trail: its last record is the stage.
      expect(count(records, 'verify', 'started'), 'verify attempts').toBe(1);
      await expectSingleRotation(iam, environment, harness, submitted, records);
    } finally {
      child?.stop();
      await takeover?.worker.close();
      await takeover?.audit.close();
      await harness?.close();
      await environment.cleanup();
    }
  }, CASE_TIMEOUT_MS);

  it('single worker resumes its own job', async () => {
    const environment = await createMixedEnvironment(iam);
    let harness: Harness | undefined;
    let child: WorkerChild | undefined;
    try {
      // A slow verify keeps the woken attempt busy until the stalled check has given the job back.
      harness = await startHarness({ inventory: environment.inventory, worker: false, env: { ...WORKER_ENV, REKEY_AWS_VERIFY_INTERVAL_MS: '8000' } });
      child = spawnWorkerChild(harness.env, 'staged', { stallMs: 5000 });
      const submitted = await submit(harness, 'stalled worker takes its own job back');
      await harness.waitForRun(submitted.runId, 60_000);
      await child.waitForOutput('lost the rotation to another worker', 30_000);
      child.stop();
      await child.waitForExit(10_000);

      expect(child.output()).toContain('this worker took back its own stalled rotation job');
      const auditFile = harness.env.REKEY_AUDIT_FILE ?? '';
      expect((await verifyAuditFile(auditFile)).ok).toBe(true);
      const records = rotationRecords(auditFile, submitted.rotationId);
      // The newer attempt resumes from the state the older one saved after its verify.
      expect(records.filter((record) => record.outcome === 'resumed').map((record) => record.step), 'resumed records').toEqual(['verify']);
      await expectSingleRotation(iam, environment, harness, submitted, records);
    } finally {
      child?.stop();
      await harness?.close();
      await environment.cleanup();
    }
  }, CASE_TIMEOUT_MS);
});
