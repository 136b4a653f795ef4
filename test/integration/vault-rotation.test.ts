import { readFileSync } from 'node:fs';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileStore } from '../../providers/file-store/index.js';
import { FakeVault } from '../fakes/vault.js';
import { accessKeyStatuses, adminIamClient, callerIdentity, createTestUser, deleteTestUser } from '../support/aws.js';
import { startHarness, type Harness } from '../support/harness.js';

/** Builds an inventory that rotates the IAM user's key into Vault KV (renamed fields) and the encrypted file store at once. */
function inventory(userName: string, fileFirst = false): string {
  const vaultTarget = `
          - store: vault-kv
            path: ci/deployer-aws
            fields: { accessKeyId: access_key_id, secretAccessKey: secret_access_key }`;
  const fileTarget = `
          - store: file
            path: ci/deployer-aws`;
  return `
environments:
  ci:
    credentials:
      - id: deployer-aws
        kind: aws-iam-access-key
        params: { userName: ${userName} }
        stores:${fileFirst ? fileTarget + vaultTarget : vaultTarget + fileTarget}
`;
}

interface RunView {
  status: string;
  credentials: Array<{ outcome: string; newKeyId: string | null; error: { code: string; message: string } | null }>;
}

describe('rotating an AWS key into Vault KV', () => {
  let iam: IAMClient;
  let vault: FakeVault;
  let harness: Harness;
  let userName: string;
  let oldKey: { accessKeyId: string; secretAccessKey: string };

  async function rotate(atBoundary?: Parameters<typeof startHarness>[0]['atBoundary'], fileFirst = false): Promise<RunView> {
    harness = await startHarness({
      inventory: inventory(userName, fileFirst),
      env: { REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_TOKEN: vault.rootToken },
      atBoundary,
    });
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason: 'vault test', mode: 'incident' } });
    const { runId } = response.json() as { runId: string };
    await harness.waitForRun(runId, 90_000);
    return (await harness.app.inject({ method: 'GET', url: `/v1/rotations/${runId}`, headers: harness.auth })).json() as RunView;
  }

  beforeEach(async () => {
    iam = adminIamClient();
    const user = await createTestUser(iam, 1);
    userName = user.userName;
    oldKey = user.keys[0]!;
    vault = await FakeVault.start();
    vault.writeKv('ci/deployer-aws', { access_key_id: oldKey.accessKeyId, secret_access_key: oldKey.secretAccessKey });
  });

  afterEach(async () => {
    await harness?.close();
    await vault?.close();
    await deleteTestUser(iam, userName).catch(() => undefined);
    iam?.destroy();
  });

  it('writes the new key to Vault and the file store', async () => {
    const run = await rotate();
    expect(run.status).toBe('completed');
    const newKeyId = run.credentials[0]!.newKeyId!;

    const inVault = vault.readKv('ci/deployer-aws') as { access_key_id: string; secret_access_key: string };
    expect(inVault.access_key_id).toBe(newKeyId);
    expect(vault.kvCustomMetadata('ci/deployer-aws')).toMatchObject({ rekey_key_id: newKeyId });
    const inFile = JSON.parse((await createFileStore(harness.env).readCurrentValue('ci/deployer-aws'))!.reveal()) as { accessKeyId: string; secretAccessKey: string };
    expect(inFile).toEqual({ accessKeyId: inVault.access_key_id, secretAccessKey: inVault.secret_access_key });

    expect((await callerIdentity({ accessKeyId: inVault.access_key_id, secretAccessKey: inVault.secret_access_key })).arn).toMatch(new RegExp(`:user/${userName}$`));
    expect(await callerIdentity(oldKey)).toEqual({ error: 'InvalidClientTokenId' });
    expect(vault.kvKeys().filter((path) => path.startsWith('rekey-pending/'))).toEqual([]);

    // The value travelled through the Vault client: it must not surface anywhere else.
    const redisKeys = await harness.runtime.redis.keys(`${harness.env.REKEY_REDIS_PREFIX}:*`);
    let redisDump = '';
    for (const key of redisKeys) {
      const type = await harness.runtime.redis.type(key);
      if (type === 'string') redisDump += await harness.runtime.redis.get(key);
      else if (type === 'hash') redisDump += JSON.stringify(await harness.runtime.redis.hgetall(key));
    }
    const places = { logs: harness.logs.join(''), audit: readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8'), redis: redisDump };
    for (const [place, text] of Object.entries(places)) {
      expect(text.includes(inVault.secret_access_key), place).toBe(false);
      expect(text.includes(vault.rootToken), place).toBe(false);
    }
  });

  it('reports a concurrent write and overwrites nothing', async () => {
    const human = { access_key_id: 'AKIAHUMANWRITE000000', secret_access_key: 'written-by-a-person' };
    let written = false;
    const run = await rotate(async (point) => {
      // Someone else writes the path between stage and promote.
      if (point === 'verified' && !written) {
        written = true;
        vault.writeKv('ci/deployer-aws', human);
      }
    });

    expect(run.status).toBe('failed');
    expect(run.credentials[0]?.outcome).toBe('failed');
    expect(run.credentials[0]?.error?.code).toBe('STORE_CONFLICT');
    expect(vault.readKv('ci/deployer-aws')).toEqual(human);
    // The old key stays the only one: the replacement was removed with the failed rotation.
    expect(await accessKeyStatuses(iam, userName)).toEqual({ [oldKey.accessKeyId]: 'Active' });
    expect((await callerIdentity(oldKey)).arn).toMatch(new RegExp(`:user/${userName}$`));
  });

  it('keeps both keys when a store already promoted the replacement', async () => {
    const human = { access_key_id: 'AKIAHUMANWRITE000001', secret_access_key: 'written-by-a-person' };
    let written = false;
    const run = await rotate(async (point) => {
      if (point === 'verified' && !written) {
        written = true;
        vault.writeKv('ci/deployer-aws', human);
      }
    }, true);

    expect(run.status).toBe('failed');
    const error = run.credentials[0]?.error;
    expect(error?.code).toBe('STORE_CONFLICT');
    expect(error?.message).toMatch(/is current in 1 of 2 stores, so it was kept and the old credential was not revoked$/);
    const inFile = JSON.parse((await createFileStore(harness.env).readCurrentValue('ci/deployer-aws'))!.reveal()) as { accessKeyId: string; secretAccessKey: string };
    expect(await accessKeyStatuses(iam, userName)).toEqual({ [oldKey.accessKeyId]: 'Active', [inFile.accessKeyId]: 'Active' });
    expect((await callerIdentity(inFile)).arn).toMatch(new RegExp(`:user/${userName}$`));
    expect(vault.readKv('ci/deployer-aws')).toEqual(human);
  });

  it('waits out a sealed Vault during stage without minting twice', async () => {
    let sealedOnce = false;
    const run = await rotate(async (point) => {
      if (point === 'minted' && !sealedOnce) {
        sealedOnce = true;
        vault.seal();
        setTimeout(() => vault.unseal(), 2000);
      }
    });

    expect(run.status).toBe('completed');
    const retries = harness.logs.join('').split('\n').filter((line) => line.includes('store write failed; retrying'));
    expect(retries.length).toBeGreaterThan(0);
    const records = (await import('node:fs')).readFileSync(harness.env.REKEY_AUDIT_FILE!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.filter((record) => record.step === 'mint' && record.outcome === 'succeeded')).toHaveLength(1);
    expect(Object.keys(await accessKeyStatuses(iam, userName))).toEqual([run.credentials[0]!.newKeyId]);
  });
});

describe('rotating an AppRole secret-id through the queue', () => {
  let vault: FakeVault;
  let harness: Harness;

  afterEach(async () => {
    await harness?.close();
    await vault?.close();
  });

  async function login(vaultServer: FakeVault, roleId: string, secretId: string): Promise<number> {
    const response = await fetch(new URL('/v1/auth/approle/login', vaultServer.url), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role_id: roleId, secret_id: secretId }),
    });
    return response.status;
  }

  it('replaces the secret-id in Vault KV and destroys the old one', async () => {
    vault = await FakeVault.start();
    const roleId = vault.createAppRole('deployer', { tokenTtlSeconds: 600 });
    const created = await fetch(new URL('/v1/auth/approle/role/deployer/secret-id', vault.url), { method: 'POST', headers: { 'x-vault-token': vault.rootToken } });
    const oldSecretId = ((await created.json()) as { data: { secret_id: string } }).data.secret_id;
    vault.writeKv('ci/deployer-approle', { role_id: roleId, secret_id: oldSecretId });

    harness = await startHarness({
      inventory: `
environments:
  ci:
    credentials:
      - id: deployer-approle
        kind: vault-approle-secret-id
        params: { role: deployer }
        stores:
          - store: vault-kv
            path: ci/deployer-approle
`,
      env: { REKEY_VAULT_ADDR: vault.url, REKEY_VAULT_TOKEN: vault.rootToken },
    });
    const response = await harness.app.inject({ method: 'POST', url: '/v1/environments/ci/rotations', headers: harness.auth, payload: { reason: 'approle', mode: 'incident' } });
    const run = await harness.waitForRun((response.json() as { runId: string }).runId);

    expect(run.status).toBe('completed');
    const current = vault.readKv('ci/deployer-approle') as { role_id: string; secret_id: string };
    expect(current.role_id).toBe(roleId);
    expect(current.secret_id).not.toBe(oldSecretId);
    expect(await login(vault, roleId, current.secret_id)).toBe(200);
    expect(await login(vault, roleId, oldSecretId)).toBe(400);
    expect(vault.secretIdAccessors('deployer')).toHaveLength(1);
  });
});
