import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS, STORES } from '../../providers/registry.js';
import { createFileStore } from '../../providers/file-store/index.js';
import type { CredentialProvider, Env } from '../../src/contracts.js';
import { RekeyError } from '../../src/errors.js';
import { Registry, type ProviderEntry } from '../../src/registry.js';
import { accessKeyStatuses, adminIamClient, callerIdentity } from '../support/aws.js';
import { createMixedEnvironment, type MixedEnvironment } from '../support/environment.js';
import { startHarness, type Harness } from '../support/harness.js';
import { storedPassword, tryLogin } from '../support/postgres.js';
import { aclPasswordHashes, REDIS_ADMIN_URL, tryAuth } from '../support/redis.js';

/** Builds a registry of the real providers whose verify always throws VERIFY_FAILED. */
function registryWithFailingVerify(env: Env): Registry {
  const providers: ProviderEntry[] = PROVIDERS.map((entry) => ({
    ...entry,
    create: (providerEnv: Env): CredentialProvider => {
      const real = entry.create(providerEnv);
      const failingVerify = async (): Promise<never> => {
        throw new RekeyError('VERIFY_FAILED', 'the test rejects every new credential');
      };
      // A proxy keeps every other method bound to the real provider, whose private fields
      // an object created from its prototype would not have.
      return new Proxy(real, {
        get(target, property) {
          if (property === 'verify') return failingVerify;
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  }));
  return new Registry(env, providers, STORES);
}

async function rotate(harness: Harness, mode: 'incident' | 'scheduled'): Promise<{ runId: string; responses: string[] }> {
  const responses: string[] = [];
  const created = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason: 'invariant test', mode } });
  responses.push(created.body);
  const runId = (created.json() as { runId: string }).runId;
  await harness.waitForRun(runId, 90_000);
  const status = await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth });
  responses.push(status.body);
  responses.push((await harness.app.inject({ method: 'GET', url: '/v1/environments', headers: harness.auth })).body);
  return { runId, responses };
}

describe('when verification of every replacement fails', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let harness: Harness;
  let originalVerifier: string | null | undefined;
  let run: { status: string; credentials: Array<Record<string, unknown>> };

  beforeAll(async () => {
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam);
    originalVerifier = await storedPassword(environment.postgres.role);
    harness = await startHarness({ inventory: environment.inventory, registry: registryWithFailingVerify });
    const { runId } = await rotate(harness, 'incident');
    run = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    await environment?.cleanup();
    iam?.destroy();
  });

  it('fails every credential with VERIFY_FAILED', () => {
    expect(run.status).toBe('failed');
    for (const credential of run.credentials) {
      expect(credential.outcome).toBe('failed');
      expect((credential.error as { code: string }).code).toBe('VERIFY_FAILED');
      expect(credential.newKeyId).toBeNull();
    }
  });

  it('keeps the old AWS key working and removes the new one', async () => {
    expect(await accessKeyStatuses(iam, environment.aws.userName)).toEqual({ [environment.aws.key.accessKeyId]: 'Active' });
    expect((await callerIdentity(environment.aws.key)).arn).toMatch(new RegExp(`:user/${environment.aws.userName}$`));
  });

  it('restores the old PostgreSQL password', async () => {
    expect(await storedPassword(environment.postgres.role)).toBe(originalVerifier);
    expect(await tryLogin(environment.postgres.role, environment.postgres.password)).toBe('ok');
  });

  it('keeps only the old Redis password', async () => {
    expect(await aclPasswordHashes(REDIS_ADMIN_URL, environment.redis.user)).toHaveLength(1);
    expect(await tryAuth(REDIS_ADMIN_URL, environment.redis.user, environment.redis.password)).toBe('OK');
  });

  it('never accumulates keys over repeated failures', async () => {
    for (let round = 0; round < 3; round += 1) {
      const { runId } = await rotate(harness, 'incident');
      expect((await harness.runtime.records.getRun(runId))?.status).toBe('failed');
      expect(await accessKeyStatuses(iam, environment.aws.userName)).toEqual({ [environment.aws.key.accessKeyId]: 'Active' });
    }
  });

  it('leaves no pending version in the file store', async () => {
    const store = createFileStore(harness.env);
    const secrets = await store.listSecrets();
    expect(secrets.map((secret) => [secret.path, secret.currentKeyId, secret.pendingRotationId])).toEqual([
      ['ci/app-cache', null, null],
      ['ci/app-db', null, null],
      ['ci/deployer-aws', null, null],
    ]);
  });
});

describe('when a worker dies between mint and stage', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let harness: Harness;
  const minted: string[] = [];
  let crashes = 0;
  let run: { status: string; credentials: Array<Record<string, unknown>> };

  beforeAll(async () => {
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam, { gracePeriod: '1h' });
    harness = await startHarness({
      inventory: environment.inventory,
      atBoundary: async (point) => {
        if (point !== 'minted') return;
        const keys = Object.keys(await accessKeyStatuses(iam, environment.aws.userName));
        minted.push(...keys.filter((id) => id !== environment.aws.key.accessKeyId && !minted.includes(id)));
        if (crashes === 0) {
          crashes += 1;
          // The job fails here with a retryable error, as if the worker had died: the key is
          // minted and recorded, its secret is in memory only and no store has it.
          throw new RekeyError('UNAVAILABLE', 'simulated worker crash after mint');
        }
      },
    });
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason: 'crash test', mode: 'scheduled', credentials: ['deployer-aws'] } });
    const runId = (response.json() as { runId: string }).runId;
    await harness.waitForRun(runId, 90_000);
    run = (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json();
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    await environment?.cleanup();
    iam?.destroy();
  });

  it('retries and completes the rotation', () => {
    expect(crashes).toBe(1);
    expect(run.status).toBe('completed');
    expect(run.credentials[0]).toMatchObject({ outcome: 'revocation-scheduled', attempts: 2, oldKeyId: environment.aws.key.accessKeyId });
  });

  it('leaves exactly the old key, disabled, and one new key', async () => {
    expect(minted).toHaveLength(2);
    const newKeyId = run.credentials[0]?.newKeyId as string;
    expect(newKeyId).toBe(minted[1]);
    expect(await accessKeyStatuses(iam, environment.aws.userName)).toEqual({ [environment.aws.key.accessKeyId]: 'Inactive', [newKeyId]: 'Active' });
  });

  it('audits the discarded key and the resumed attempt', () => {
    const records = readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const discards = records.filter((record) => record.step === 'discard' && record.outcome === 'succeeded');
    expect(discards.map((record) => [record.newKeyId, (record.detail as Record<string, unknown>).reason])).toEqual([[minted[0], 'lost before staging']]);
    expect(records.filter((record) => record.outcome === 'retrying')).toHaveLength(1);
    expect(records.filter((record) => record.outcome === 'resumed').map((record) => record.step)).toEqual(['mint']);
  });
});

describe('when secrets pass through a rotation', () => {
  let iam: IAMClient;
  let environment: MixedEnvironment;
  let harness: Harness;
  const responses: string[] = [];
  const canaries: Array<{ name: string; value: string }> = [];

  beforeAll(async () => {
    iam = adminIamClient();
    environment = await createMixedEnvironment(iam);
    harness = await startHarness({ inventory: environment.inventory });
    const result = await rotate(harness, 'incident');
    responses.push(...result.responses);

    const store = createFileStore(harness.env);
    for (const path of ['ci/deployer-aws', 'ci/app-db', 'ci/app-cache']) {
      const value = await store.readCurrentValue(path);
      const fields = JSON.parse(value?.reveal() ?? '{}') as Record<string, string>;
      for (const name of ['secretAccessKey', 'password']) {
        if (fields[name] !== undefined) canaries.push({ name: `${path}.${name}`, value: fields[name] });
      }
    }
    canaries.push({ name: 'old postgres password', value: environment.postgres.password });
    canaries.push({ name: 'old redis password', value: environment.redis.password });
    canaries.push({ name: 'old aws secret', value: environment.aws.key.secretAccessKey });
    // An unkeyed hash prefix of a password would let anyone test guesses against it offline.
    for (const canary of [...canaries]) {
      canaries.push({ name: `SHA-256 prefix of ${canary.name}`, value: createHash('sha256').update(canary.value).digest('hex').slice(0, 16) });
    }
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    await environment?.cleanup();
    iam?.destroy();
  });

  it('finds the three new secrets in the store', () => {
    expect(canaries).toHaveLength(12);
    expect(canaries.map((canary) => canary.name).slice(0, 3)).toEqual(['ci/deployer-aws.secretAccessKey', 'ci/app-db.password', 'ci/app-cache.password']);
  });

  it('keeps every secret out of the logs', () => {
    const logs = harness.logs.join('');
    expect(logs.length).toBeGreaterThan(1000);
    for (const canary of canaries) expect(logs.includes(canary.value), canary.name).toBe(false);
  });

  it('keeps every secret out of the audit trail', () => {
    const audit = readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8');
    for (const canary of canaries) expect(audit.includes(canary.value), canary.name).toBe(false);
  });

  it('keeps every secret out of the HTTP responses', () => {
    const bodies = responses.join('\n');
    expect(bodies).toContain('deployer-aws');
    for (const canary of canaries) expect(bodies.includes(canary.value), canary.name).toBe(false);
  });

  it('keeps every secret out of Redis', async () => {
    const redis = harness.runtime.redis;
    const keys = await redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`);
    expect(keys.length).toBeGreaterThan(5);
    let dump = keys.join('\n');
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'string') dump += await redis.get(key);
      else if (type === 'hash') dump += JSON.stringify(await redis.hgetall(key));
      else if (type === 'list') dump += (await redis.lrange(key, 0, -1)).join('\n');
      else if (type === 'set') dump += (await redis.smembers(key)).join('\n');
      else if (type === 'zset') dump += (await redis.zrange(key, 0, -1)).join('\n');
      else if (type === 'stream') dump += JSON.stringify(await redis.xrange(key, '-', '+'));
    }
    expect(dump).toContain('deployer-aws');
    for (const canary of canaries) expect(dump.includes(canary.value), canary.name).toBe(false);
  });
});
