import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IAMClient } from '@aws-sdk/client-iam';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { PROVIDERS, STORES } from '../../providers/registry.js';
import { verifyAuditFile, type AuditVerification } from '../../src/audit/index.js';
import type { CredentialProvider, Env } from '../../src/contracts.js';
import { Registry, type ProviderEntry } from '../../src/registry.js';
import {
  accessKeyStatuses, adminIamClient, adminSecretsClient, callerIdentity, createTestUser, deleteTestUser, secretVersions, uniqueName,
} from '../support/aws.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { AwsKeyPair } from '../support/moto.js';
import { PersistentRedis } from '../support/redis-server.js';

/*
 * Restarts a Redis of the test's own (append-only file on, fsync after every write) while a
 * rotation of several AWS access keys is in the middle of its verify steps. moto keeps its state
 * across the restart, so each case can check the provider side as well as rekey's own records.
 */

const CREDENTIAL_COUNT = 3;
const SETUP_TIMEOUT_MS = 120_000;
const WAIT_TIMEOUT_MS = 30_000;
/**
 * How long Redis stays down after the released steps returned from verify. The steps send their
 * next commands in this time, and a connection with maxRetriesPerRequest 2 (the API's) rejects them.
 */
const OUTAGE_AFTER_VERIFY_MS = 2_000;

/** Holds every verify call until the test opens it, and counts the calls that passed it. */
class VerifyGate {
  waiting = 0;
  returned = 0;
  #open!: () => void;
  readonly #opened = new Promise<void>((resolve) => {
    this.#open = resolve;
  });

  open(): void {
    this.#open();
  }

  async pass<T>(verify: () => Promise<T>): Promise<T> {
    this.waiting += 1;
    await this.#opened;
    try {
      return await verify();
    } finally {
      this.returned += 1;
    }
  }
}

/** Builds a registry of the real providers and stores whose verify waits at `gate` first. */
function registryWithGatedVerify(gate: VerifyGate): (env: Env) => Registry {
  return (env) => {
    const providers: ProviderEntry[] = PROVIDERS.map((entry) => ({
      ...entry,
      create: (providerEnv: Env): CredentialProvider => {
        const real = entry.create(providerEnv);
        const verify: CredentialProvider['verify'] = (params, material, ctx) => gate.pass(() => real.verify(params, material, ctx));
        // A proxy keeps every other method bound to the real provider and its private fields.
        return new Proxy(real, {
          get(target, property) {
            if (property === 'verify') return verify;
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
          },
        });
      },
    }));
    return new Registry(env, providers, STORES);
  };
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_TIMEOUT_MS} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Returns the run_id that Redis generates at each start, which differs between two server processes. */
async function serverRunId(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, protocol: 2, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info('server');
    return /run_id:(\w+)/.exec(info)?.[1] ?? '';
  } finally {
    client.disconnect();
  }
}

/** Reads every file of the append-only file directory, as text. */
function appendOnlyFiles(redis: PersistentRedis): string {
  const directory = join(redis.directory, 'appendonlydir');
  return readdirSync(directory).map((name) => readFileSync(join(directory, name), 'latin1')).join('\n');
}

interface Credential {
  id: string;
  userName: string;
  oldKey: AwsKeyPair;
  secretId: string;
  storePath: string;
}

interface CredentialStatus {
  credentialId: string;
  outcome: string;
  attempts: number;
  oldKeyId: string | null;
  newKeyId: string | null;
  error: unknown;
}

function inventoryOf(credentials: readonly Credential[]): string {
  const entries = credentials.map((credential) => `
      - id: ${credential.id}
        kind: aws-iam-access-key
        params: { userName: ${credential.userName} }
        stores:
          - store: file
            path: ${credential.storePath}
          - store: aws-secrets-manager
            secretId: ${credential.secretId}`);
  return `environments:\n  ci:\n    credentials:${entries.join('')}\n`;
}

interface RestartCase {
  when: string;
  /** Open the verify gate while Redis is down, so the steps send their next commands into the outage. */
  openGateWhileDown: boolean;
  /** How long Redis stays down after the released steps returned from verify. */
  outageMs?: number;
  env?: Record<string, string>;
}

const CASES: RestartCase[] = [
  { when: 'while every credential waits in verify', openGateWhileDown: false },
  { when: 'while the steps go on and reach Redis', openGateWhileDown: true },
  // The locks of the active jobs expire during the outage. When Redis is back, the stalled check
  // can start a job again beside the attempt that still runs it, and BullMQ can reject the older
  // attempt's completion for its missing lock, so a job may run twice.
  {
    when: 'for longer than the job lock',
    openGateWhileDown: true,
    outageMs: 5_000,
    env: { REKEY_WORKER_LOCK_MS: '2000', REKEY_WORKER_STALLED_INTERVAL_MS: '1000' },
  },
];

describe.each(CASES)('when Redis restarts $when', ({ openGateWhileDown, outageMs, env }) => {
  let redis: PersistentRedis;
  let iam: IAMClient;
  let harness: Harness;
  const credentials: Credential[] = [];
  const gate = new VerifyGate();
  let runId: string;
  let runIdsOfServer: { before: string; after: string };
  let statusDuringOutage: { statusCode: number; code: unknown };
  let runStatus: string;
  let statuses: CredentialStatus[];
  let stored: Map<string, Record<string, string>>;
  let audit: { verification: AuditVerification; text: string };

  beforeAll(async () => {
    redis = await PersistentRedis.start();
    iam = adminIamClient();
    for (let index = 0; index < CREDENTIAL_COUNT; index += 1) {
      const { userName, keys } = await createTestUser(iam, 1);
      credentials.push({ id: `deployer-${index}`, userName, oldKey: keys[0]!, secretId: uniqueName('rekey-test/restart'), storePath: `ci/deployer-${index}` });
    }
    harness = await startHarness({ inventory: inventoryOf(credentials), registry: registryWithGatedVerify(gate), env: { ...env, REDIS_URL: redis.url } });

    const response = await harness.app.inject({
      method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth,
      payload: { reason: 'Redis restart test', mode: 'incident' },
    });
    expect(response.statusCode, response.body).toBe(202);
    runId = (response.json() as { runId: string }).runId;
    await waitUntil(() => gate.waiting === CREDENTIAL_COUNT, `all ${CREDENTIAL_COUNT} credentials wait in verify`);

    const before = await serverRunId(redis.url);
    await redis.shutdown();
    const duringOutage = await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth });
    statusDuringOutage = { statusCode: duringOutage.statusCode, code: (duringOutage.json() as { code?: unknown }).code };
    if (openGateWhileDown) {
      gate.open();
      await waitUntil(() => gate.returned === CREDENTIAL_COUNT, 'every verify returned');
      await new Promise((resolve) => setTimeout(resolve, outageMs ?? OUTAGE_AFTER_VERIFY_MS));
      await redis.launch();
    } else {
      await redis.launch();
      gate.open();
    }
    runIdsOfServer = { before, after: await serverRunId(redis.url) };

    const run = await harness.waitForRun(runId, WAIT_TIMEOUT_MS);
    runStatus = run.status;
    const status = await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth });
    statuses = (status.json() as { credentials: CredentialStatus[] }).credentials;

    const store = createFileStore(harness.env);
    stored = new Map();
    for (const credential of credentials) {
      const value = await store.readCurrentValue(credential.storePath);
      stored.set(credential.id, value === null ? {} : (JSON.parse(value.reveal()) as Record<string, string>));
    }
    await store.close();

    // The run's last audit record may follow its status change, so the worker stops first.
    await harness.worker?.close();
    const auditFile = harness.env.REKEY_AUDIT_FILE ?? '';
    audit = { verification: await verifyAuditFile(auditFile), text: readFileSync(auditFile, 'utf8') };
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    gate.open();
    await harness?.close();
    for (const credential of credentials) await deleteTestUser(iam, credential.userName).catch(() => undefined);
    iam?.destroy();
    await redis?.stop();
  });

  it('restarts the Redis server process', () => {
    expect(runIdsOfServer.after).not.toBe('');
    expect(runIdsOfServer.after).not.toBe(runIdsOfServer.before);
  });

  it('returns 503 while Redis is down', () => {
    expect(statusDuringOutage).toEqual({ statusCode: 503, code: 'REDIS_UNAVAILABLE' });
  });

  it('completes the run', () => {
    expect(runStatus, JSON.stringify(statuses)).toBe('completed');
  });

  it('rotates each credential in its first attempt', () => {
    for (const credential of credentials) {
      const status = statuses.find((entry) => entry.credentialId === credential.id);
      expect(status?.outcome, JSON.stringify(status)).toBe('rotated');
      expect(status?.attempts, JSON.stringify(status)).toBe(1);
      expect(status?.oldKeyId, credential.id).toBe(credential.oldKey.accessKeyId);
    }
  });

  it('leaves each user only its stored new key', async () => {
    for (const credential of credentials) {
      const newKeyId = statuses.find((entry) => entry.credentialId === credential.id)?.newKeyId ?? '';
      expect(newKeyId, credential.id).not.toBe(credential.oldKey.accessKeyId);
      expect(stored.get(credential.id)?.accessKeyId, `${credential.id} in the file store`).toBe(newKeyId);
      expect(await accessKeyStatuses(iam, credential.userName), `IAM keys of ${credential.userName}`).toEqual({ [newKeyId]: 'Active' });
    }
  });

  it('makes STS accept the new key and reject the old one', async () => {
    for (const credential of credentials) {
      const value = stored.get(credential.id) ?? {};
      const newKey = { accessKeyId: value.accessKeyId ?? '', secretAccessKey: value.secretAccessKey ?? '' };
      expect((await callerIdentity(newKey)).arn, `STS with the new key of ${credential.id}`).toMatch(new RegExp(`:user/${credential.userName}$`));
      expect(await callerIdentity(credential.oldKey), `STS with the old key of ${credential.id}`).toEqual({ error: 'InvalidClientTokenId' });
    }
  });

  it('makes the new key current in Secrets Manager', async () => {
    const secrets = adminSecretsClient();
    try {
      for (const credential of credentials) {
        const current = await secrets.send(new GetSecretValueCommand({ SecretId: credential.secretId, VersionStage: 'AWSCURRENT' }));
        expect(JSON.parse(current.SecretString ?? '{}'), `AWSCURRENT of ${credential.secretId}`).toEqual(stored.get(credential.id));
        const labels = Object.values(await secretVersions(secrets, credential.secretId)).flat();
        expect(labels, `labels of ${credential.secretId}`).not.toContain('AWSPENDING');
      }
    } finally {
      secrets.destroy();
    }
  });

  it('keeps an audit chain that verifies', () => {
    expect(audit.verification, JSON.stringify(audit.verification)).toEqual({ ok: true, records: audit.verification.records });
  });

  it('audits one mint and one revoke per credential', () => {
    const records = audit.text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const credential of credentials) {
      const own = records.filter((record) => record.credentialId === credential.id && record.outcome === 'succeeded');
      expect(own.filter((record) => record.step === 'mint'), `mint records of ${credential.id}`).toHaveLength(1);
      expect(own.filter((record) => record.step === 'revoke'), `revoke records of ${credential.id}`).toHaveLength(1);
      expect(records.filter((record) => record.credentialId === credential.id && record.outcome === 'failed'), `failed records of ${credential.id}`).toEqual([]);
    }
  });

  it('keeps the new secrets out of the append-only file, logs and audit', () => {
    const aof = appendOnlyFiles(redis);
    expect(aof, 'append-only file').toContain(runId);
    const logs = harness.logs.join('');
    for (const credential of credentials) {
      const secret = stored.get(credential.id)?.secretAccessKey ?? '';
      expect(secret.length, `stored secret of ${credential.id}`).toBeGreaterThan(0);
      expect(aof.includes(secret), `append-only file contains the secret of ${credential.id}`).toBe(false);
      expect(logs.includes(secret), `logs contain the secret of ${credential.id}`).toBe(false);
      expect(audit.text.includes(secret), `audit contains the secret of ${credential.id}`).toBe(false);
    }
  });
});
