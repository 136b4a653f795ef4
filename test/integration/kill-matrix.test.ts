import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IAMClient } from '@aws-sdk/client-iam';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from '../../jobs/worker.js';
import { createFileStore } from '../../providers/file-store/index.js';
import { verifyAuditFile, type AuditSink } from '../../src/audit/index.js';
import { createAuditSinkFor } from '../../src/audit/select.js';
import type { BoundaryPoint } from '../../src/engine/rotation.js';
import { accessKeyStatuses, adminIamClient, adminSecretsClient, callerIdentity, secretVersions } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { startHarness, type Harness } from '../support/harness.js';
import { tryLogin } from '../support/postgres.js';
import { aclPasswordHashes, REDIS_ADMIN_URL, tryAuth } from '../support/redis.js';
import { spawnWorkerChild, type WorkerChild } from '../support/worker-child.js';

/*
 * Kills a real worker process with SIGKILL at each step boundary a credential passes. A second
 * worker then takes the job over through BullMQ's stalled-job check, and each case checks that
 * the rotation still ends with exactly one working replacement, current in every store.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPILED_WORKER = `${ROOT}dist/jobs/worker.js`;

/**
 * A dead worker's job goes back to the queue once its lock expires and a live worker's stalled
 * check finds it. With these values that takes a few seconds instead of the 30 s defaults' minute.
 */
const WORKER_ENV = {
  REKEY_WORKER_LOCK_MS: '2000',
  REKEY_WORKER_STALLED_INTERVAL_MS: '1000',
  REKEY_AWS_VERIFY_WINDOW_MS: '20000',
  REKEY_AWS_VERIFY_INTERVAL_MS: '200',
};

/** Bound on the child's run from start to its SIGKILL: start-up, preflight and the steps up to the boundary. */
const CHILD_TIMEOUT_MS = 30_000;
/** Bound on the takeover and the rest of the rotation after the kill. */
const RUN_TIMEOUT_MS = 45_000;
const CASE_TIMEOUT_MS = 90_000;

type Family = 'minted' | 'set';

interface CredentialCase {
  credentialId: 'deployer-aws' | 'app-db' | 'app-cache';
  family: Family;
  storePath: string;
}

const CREDENTIALS: CredentialCase[] = [
  { credentialId: 'deployer-aws', family: 'minted', storePath: 'ci/deployer-aws' },
  { credentialId: 'app-db', family: 'set', storePath: 'ci/app-db' },
  { credentialId: 'app-cache', family: 'set', storePath: 'ci/app-cache' },
];

/** The boundaries each family passes before retiring the old credential, in the engine's order. */
const BOUNDARIES: Record<Family, BoundaryPoint[]> = {
  minted: ['inspected', 'minted', 'staged', 'verified', 'promoted'],
  set: ['inspected', 'staged', 'applied', 'verified', 'promoted'],
};

/** The step the saved state names at each boundary, which the resumed attempt audits first. */
const STEP_AT_BOUNDARY: Record<BoundaryPoint, string> = {
  inspected: 'inspect',
  minted: 'mint',
  staged: 'stage',
  applied: 'apply',
  verified: 'verify',
  promoted: 'promote',
  revoked: 'revoke',
};

/**
 * Cases that fail because of a known product bug, by `credentialId@boundary`, with the bug. Such
 * a case runs as `it.fails`, so it turns red once the bug is fixed and the entry must go.
 */
const KNOWN_BUGS: Record<string, string> = {};

/**
 * Starts the in-process worker that takes the job over. The harness opens no audit trail when it
 * starts no worker, and a worker without one fails every step, so this worker gets its own sink.
 * It writes to the child's file, whose lock keeps one hash chain across processes.
 */
function startTakeoverWorker(harness: Harness): { worker: Worker; audit: AuditSink } {
  const audit = createAuditSinkFor(harness.env);
  const worker = startWorker({ ...harness.runtime, audit });
  return { worker, audit };
}

interface CredentialStatus {
  credentialId: string;
  outcome: string;
  oldKeyId: string | null;
  newKeyId: string | null;
  error: unknown;
}

function readAuditRecords(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Checks the provider side: the stored replacement works, the old credential does not, no other key exists. */
async function expectOnlyReplacementWorks(iam: IAMClient, environment: MixedEnvironment, credential: CredentialCase, stored: Record<string, string>): Promise<void> {
  if (credential.credentialId === 'deployer-aws') {
    const newKey = { accessKeyId: stored.accessKeyId ?? '', secretAccessKey: stored.secretAccessKey ?? '' };
    expect(await accessKeyStatuses(iam, environment.aws.userName), 'IAM keys of the user').toEqual({ [newKey.accessKeyId]: 'Active' });
    expect((await callerIdentity(newKey)).arn, 'STS with the stored key').toMatch(new RegExp(`:user/${environment.aws.userName}$`));
    expect(await callerIdentity(environment.aws.key), 'STS with the old key').toEqual({ error: 'InvalidClientTokenId' });
  } else if (credential.credentialId === 'app-db') {
    expect(stored.username, 'stored PostgreSQL user').toBe(environment.postgres.role);
    expect(await tryLogin(environment.postgres.role, stored.password ?? ''), 'login with the stored password').toBe('ok');
    expect(await tryLogin(environment.postgres.role, environment.postgres.password), 'login with the old password').toBe('28P01');
  } else {
    expect(stored.username, 'stored Redis user').toBe(environment.redis.user);
    expect(await aclPasswordHashes(REDIS_ADMIN_URL, environment.redis.user), 'Redis ACL password hashes').toEqual([sha256(stored.password ?? '')]);
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, stored.password ?? ''), 'AUTH with the stored password').toBe('OK');
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, environment.redis.password), 'AUTH with the old password').toBe('WRONGPASS');
  }
}

/** Checks that AWS Secrets Manager, the AWS key's second store, serves the replacement and contains no pending version. */
async function expectSecretsManagerCurrent(environment: MixedEnvironment, stored: Record<string, string>): Promise<void> {
  const secrets = adminSecretsClient();
  try {
    const current = await secrets.send(new GetSecretValueCommand({ SecretId: environment.aws.secretId, VersionStage: 'AWSCURRENT' }));
    expect(JSON.parse(current.SecretString ?? '{}'), 'Secrets Manager AWSCURRENT').toEqual(stored);
    const labels = Object.values(await secretVersions(secrets, environment.aws.secretId)).flat();
    expect(labels, 'Secrets Manager version labels').not.toContain('AWSPENDING');
  } finally {
    secrets.destroy();
  }
}

async function runKillCase(iam: IAMClient, credential: CredentialCase, boundary: BoundaryPoint): Promise<void> {
  const environment = await createMixedEnvironment(iam);
  let harness: Harness | undefined;
  let child: WorkerChild | undefined;
  let takeover: { worker: Worker; audit: AuditSink } | undefined;
  try {
    harness = await startHarness({ inventory: environment.inventory, worker: false, env: WORKER_ENV });
    child = spawnWorkerChild(harness.env, boundary);

    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: `kill matrix: SIGKILL at ${boundary}`, mode: 'incident', credentials: [credential.credentialId] },
    });
    expect(response.statusCode, response.body).toBe(202);
    const submitted = response.json() as { runId: string; credentials: Array<{ credentialId: string; rotationId: string }> };
    const rotationId = submitted.credentials[0]?.rotationId;

    const exit = await child.waitForExit(CHILD_TIMEOUT_MS);
    expect(exit, `kill-worker output:\n${child.output()}`).toEqual({ code: null, signal: 'SIGKILL' });

    takeover = startTakeoverWorker(harness);
    const run = await harness.waitForRun(submitted.runId, RUN_TIMEOUT_MS);
    const status = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${submitted.runId}`, headers: harness.auth })).json() as { credentials: CredentialStatus[] };
    const rotated = status.credentials.find((entry) => entry.credentialId === credential.credentialId);
    expect(run.status, JSON.stringify(status)).toBe('completed');
    expect(rotated?.outcome, JSON.stringify(rotated)).toBe('rotated');

    // The file store is every credential's first store: its current version is the replacement.
    const store = createFileStore(harness.env);
    const value = await store.readCurrentValue(credential.storePath);
    const stored = value === null ? {} : (JSON.parse(value.reveal()) as Record<string, string>);
    const metadata = (await store.listSecrets()).find((secret) => secret.path === credential.storePath);
    await store.close();
    expect(metadata?.currentKeyId, 'file store current key id').toBe(rotated?.newKeyId);
    expect(metadata?.pendingRotationId, 'file store pending version').toBeNull();
    if (credential.credentialId === 'deployer-aws') {
      expect(rotated?.oldKeyId, 'old key id').toBe(environment.aws.key.accessKeyId);
      expect(stored.accessKeyId, 'stored access key id').toBe(rotated?.newKeyId);
      await expectSecretsManagerCurrent(environment, stored);
    }

    await expectOnlyReplacementWorks(iam, environment, credential, stored);

    // The run's last audit record may follow its status change, so the worker stops first.
    await takeover.worker.close();
    await takeover.audit.close();
    const auditFile = harness.env.REKEY_AUDIT_FILE ?? '';
    const verification = await verifyAuditFile(auditFile);
    expect(verification.ok, JSON.stringify(verification)).toBe(true);
    const records = readAuditRecords(auditFile).filter((record) => record.rotationId === rotationId);
    const resumed = records.filter((record) => record.outcome === 'resumed');
    expect(resumed[0]?.step, 'first resumed record of the rotation').toBe(STEP_AT_BOUNDARY[boundary]);
    if (boundary === 'minted') {
      // The key minted before the kill never reached a store, so the takeover must delete it.
      const discarded = records.filter((record) => record.step === 'discard' && record.outcome === 'succeeded');
      expect(discarded.map((record) => (record.detail as Record<string, unknown> | undefined)?.reason), 'discarded keys').toEqual(['lost before staging']);
    }
  } finally {
    child?.stop();
    await takeover?.worker.close();
    await takeover?.audit.close();
    await harness?.close();
    await environment.cleanup();
  }
}

describe('kill matrix: a worker killed with SIGKILL at a step boundary', () => {
  let iam: IAMClient;

  beforeAll(() => {
    if (!existsSync(COMPILED_WORKER)) {
      throw new Error(`${COMPILED_WORKER} is missing: the kill matrix runs the compiled worker in a child process; run npm run build first`);
    }
    iam = adminIamClient();
  });

  afterAll(() => {
    iam?.destroy();
  });

  for (const credential of CREDENTIALS) {
    for (const boundary of BOUNDARIES[credential.family]) {
      const bug = KNOWN_BUGS[`${credential.credentialId}@${boundary}`];
      const test = bug === undefined ? it : it.fails;
      test(`${credential.credentialId} recovers from a kill at ${boundary}`, () => runKillCase(iam, credential, boundary), CASE_TIMEOUT_MS);
    }
  }
});
