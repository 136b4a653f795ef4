import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAzureKeyVaultStore, type AzureKeyVaultStore } from '../../providers/azure-key-vault/index.js';
import { RekeyError } from '../../src/errors.js';
import { SecretValue } from '../../src/secret.js';
import { FakeAzure } from '../fakes/azure.js';
import { stepContext } from '../support/aws.js';
import { createTestAuthority, type TestAuthority } from '../support/azure.js';

const NAME = 'app-db';
const PENDING = `${NAME}-rekey-pending`;

async function rejection(promise: Promise<unknown>): Promise<RekeyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RekeyError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('azure-key-vault store', () => {
  let authority: TestAuthority;
  let fake: FakeAzure;
  let store: AzureKeyVaultStore;
  let params: { vaultUrl: string; name: string };

  function env(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      REKEY_AZURE_AUTHORITY_HOST: fake.url,
      REKEY_AZURE_TENANT_ID: fake.tenantId,
      REKEY_AZURE_CLIENT_ID: fake.admin.clientId,
      REKEY_AZURE_CLIENT_SECRET: fake.admin.secret,
      REKEY_AZURE_CA_FILE: authority.caFile,
      REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      ...overrides,
    };
  }

  function version(rotationId: string, value = 'new-value'): { rotationId: string; keyId: string; value: SecretValue } {
    return { rotationId, keyId: `key-${rotationId.slice(0, 8)}`, value: SecretValue.fromString(value) };
  }

  beforeAll(() => {
    authority = createTestAuthority();
  });

  afterAll(() => {
    authority?.remove();
  });

  beforeEach(async () => {
    fake = await FakeAzure.start({ tls: { key: authority.serverKey, cert: authority.serverCert } });
    store = createAzureKeyVaultStore(env());
    params = { vaultUrl: fake.url, name: NAME };
    fake.writeSecret(NAME, 'old-value');
  });

  afterEach(async () => {
    await store?.close();
    await fake?.close();
  });

  describe('when a rotation stages and promotes', () => {
    it('keeps consumers on the old value until promote', async () => {
      const ctx = stepContext();
      await store.stage(params, version(ctx.rotationId), ctx);

      expect(fake.readSecret(NAME)).toBe('old-value');
      expect(fake.secretVersions(PENDING).map((entry) => entry.value)).toEqual(['new-value']);
      expect((await store.readPending(params, ctx.rotationId, ctx))?.reveal()).toBe('new-value');

      await store.promote(params, ctx.rotationId, ctx);

      expect(fake.readSecret(NAME)).toBe('new-value');
      expect(await store.readPending(params, ctx.rotationId, ctx)).toBeNull();
    });

    it('writes one version when stage and promote run twice', async () => {
      const ctx = stepContext();
      await store.stage(params, version(ctx.rotationId), ctx);
      await store.stage(params, version(ctx.rotationId), ctx);
      await store.promote(params, ctx.rotationId, ctx);
      await store.promote(params, ctx.rotationId, ctx);

      expect(fake.secretVersions(PENDING)).toHaveLength(1);
      expect(fake.secretVersions(NAME).map((entry) => entry.value)).toEqual(['old-value', 'new-value']);
    });

    it('describes the current key and the pending rotation', async () => {
      const ctx = stepContext();
      await store.stage(params, version(ctx.rotationId), ctx);
      expect(await store.describe(params, ctx)).toEqual({ currentKeyId: null, pendingRotationId: ctx.rotationId });

      await store.promote(params, ctx.rotationId, ctx);
      expect(await store.describe(params, ctx)).toEqual({ currentKeyId: version(ctx.rotationId).keyId, pendingRotationId: null });
    });

    it('creates a secret that does not exist yet at promote', async () => {
      const ctx = stepContext();
      const fresh = { vaultUrl: fake.url, name: 'brand-new' };
      await store.check(fresh, ctx);
      await store.stage(fresh, version(ctx.rotationId), ctx);
      expect(fake.readSecret('brand-new')).toBeUndefined();

      await store.promote(fresh, ctx.rotationId, ctx);
      expect(fake.readSecret('brand-new')).toBe('new-value');
    });
  });

  describe('when another writer interferes', () => {
    it('reports a write between stage and promote and overwrites nothing', async () => {
      const ctx = stepContext();
      await store.stage(params, version(ctx.rotationId), ctx);
      fake.writeSecret(NAME, 'written-by-a-person');

      const error = await rejection(store.promote(params, ctx.rotationId, ctx));

      expect(error.code).toBe('STORE_CONFLICT');
      expect(error.message).toContain(`secret ${NAME} in ${fake.url} has a new version`);
      expect(error.message).toContain(`since rotation ${ctx.rotationId} was staged`);
      expect(fake.readSecret(NAME)).toBe('written-by-a-person');
    });

    it('reports the pending version of another rotation', async () => {
      const first = stepContext();
      await store.stage(params, version(first.rotationId), first);
      const second = stepContext();

      const checked = await rejection(store.check(params, second));
      const staged = await rejection(store.stage(params, version(second.rotationId), second));

      expect(checked.code).toBe('STORE_CONFLICT');
      expect(checked.message).toContain(`of another rotation (${first.rotationId})`);
      expect(staged.code).toBe('STORE_CONFLICT');
      expect(fake.secretVersions(PENDING)).toHaveLength(1);
    });

    it('accepts a later attempt of the same rotation', async () => {
      const ctx = stepContext();
      await store.stage(params, version(ctx.rotationId, 'first-attempt'), ctx);
      await store.stage(params, version(`${ctx.rotationId}-2`, 'second-attempt'), ctx);

      expect((await store.readPending(params, `${ctx.rotationId}-2`, ctx))?.reveal()).toBe('second-attempt');
    });
  });

  describe('when a rotation is discarded', () => {
    it('disables the pending version and keeps the current one', async () => {
      const ctx = stepContext();
      await store.stage(params, version(ctx.rotationId), ctx);

      await store.discard(params, ctx.rotationId, ctx);
      await store.discard(params, ctx.rotationId, ctx);

      expect(fake.secretVersions(PENDING).map((entry) => entry.enabled)).toEqual([false]);
      expect(await store.readPending(params, ctx.rotationId, ctx)).toBeNull();
      expect(fake.readSecret(NAME)).toBe('old-value');
      await expect(store.check(params, stepContext())).resolves.toBeUndefined();
    });
  });

  describe('when the vault rejects rekey', () => {
    it('reports a missing role assignment', async () => {
      fake.vaultClients.clear();

      const error = await rejection(store.check(params, stepContext()));

      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toContain('Key Vault getSecret on secret app-db');
      expect(error.message).toContain('Give rekey\'s identity the Key Vault Secrets Officer role');
    });

    it('keeps challenge verification on unless configured', async () => {
      const strict = createAzureKeyVaultStore(env({ REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'false' }));

      const error = await rejection(strict.check(params, stepContext()));

      expect(error.code).toBe('INVALID_PARAMETERS');
      expect(error.message).toContain('set REKEY_AZURE_KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=true');
    });

    it('reports a disabled latest version', async () => {
      fake.disableSecretVersion(NAME, fake.writeSecret(NAME, 'disabled-value'));

      const error = await rejection(store.check(params, stepContext()));

      expect(error.code).toBe('PRECONDITION_FAILED');
      expect(error.message).toContain(`the latest version of secret ${NAME} in ${fake.url} is disabled, so its consumers cannot read it either`);
    });
  });

  it('never puts a staged value in an error', async () => {
    const ctx = stepContext();
    const value = `value-${randomUUID()}`;
    fake.vaultClients.clear();

    const error = await rejection(store.stage(params, version(ctx.rotationId, value), ctx));

    expect(error.code).toBe('PERMISSION_DENIED');
    expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toContain(value);
  });
});
